//! The `ldap` section: where the site directory is and how its entries map to Users.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Problem, problem};

/// LDAP sync settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    #[serde(default, rename = "startTLS")]
    pub start_tls: bool,
    /// CA certificate (PEM) for ldaps/StartTLS; the system roots when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// DN to bind as; anonymous when unset.
    #[serde(default, rename = "bindDN", skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    /// File holding the bind password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password_file: Option<String>,
    /// Where people are.
    #[serde(default = "LdapSearch::users_default")]
    pub users: LdapSearch,
    /// Where groups are.
    #[serde(default = "LdapSearch::groups_default")]
    pub groups: LdapSearch,
    /// Attribute names.
    #[serde(default)]
    pub attributes: LdapAttributes,
    /// Sync only members of these groups (by group name); everyone when empty.
    #[serde(default)]
    pub only_members_of: Vec<String>,
    /// Entries per page of the paged-results control. The server must let the bind DN page
    /// through every entry (OpenLDAP: `limits dn.exact="<bindDN>" size.prtotal=unlimited`);
    /// a search cut short by a size limit fails the sync instead of disabling people.
    #[serde(default = "default_page_size")]
    pub page_size: i32,
    /// Time between syncs in `serve`.
    #[serde(default = "default_interval", with = "human_duration")]
    pub interval: Duration,
}

/// A search base and filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LdapSearch {
    /// Search base DN.
    pub base: String,
    /// Search filter.
    pub filter: String,
}

impl LdapSearch {
    fn users_default() -> Self {
        Self {
            base: String::new(),
            filter: "(objectClass=posixAccount)".into(),
        }
    }

    fn groups_default() -> Self {
        Self {
            base: String::new(),
            filter: "(objectClass=posixGroup)".into(),
        }
    }
}

/// Attribute names of the directory schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LdapAttributes {
    /// Login name of a person.
    pub username: String,
    /// Numeric user id.
    pub uid: String,
    /// Numeric primary group id (on people and groups).
    pub gid: String,
    /// Name of a group.
    pub group: String,
    /// Member usernames of a group.
    pub member: String,
}

impl Default for LdapAttributes {
    fn default() -> Self {
        Self {
            username: "uid".into(),
            uid: "uidNumber".into(),
            gid: "gidNumber".into(),
            group: "cn".into(),
            member: "memberUid".into(),
        }
    }
}

fn default_page_size() -> i32 {
    500
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}

impl LdapConfig {
    pub(super) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        let scheme_ok = self.url.starts_with("ldap://") || self.url.starts_with("ldaps://");
        if !scheme_ok {
            problems.push(problem(
                &format!("{path}.url"),
                format!("{:?} must start with ldap:// or ldaps://", self.url),
            ));
        }
        if self.start_tls && self.url.starts_with("ldaps://") {
            problems.push(problem(
                &format!("{path}.startTLS"),
                "cannot be used with ldaps://".into(),
            ));
        }
        if self.bind_dn.is_some() != self.bind_password_file.is_some() {
            problems.push(problem(
                &format!("{path}.bindPasswordFile"),
                "bindDN and bindPasswordFile go together".into(),
            ));
        }
        if !(1..=10_000).contains(&self.page_size) {
            problems.push(problem(
                &format!("{path}.pageSize"),
                "must be between 1 and 10000".into(),
            ));
        }
        if self.interval < Duration::from_secs(10) {
            problems.push(problem(
                &format!("{path}.interval"),
                "must be at least 10s".into(),
            ));
        }
        for (field, search) in [("users", &self.users), ("groups", &self.groups)] {
            if search.base.is_empty() {
                problems.push(problem(
                    &format!("{path}.{field}.base"),
                    "is required".into(),
                ));
            }
            if !(search.filter.starts_with('(') && search.filter.ends_with(')')) {
                problems.push(problem(
                    &format!("{path}.{field}.filter"),
                    format!("{:?} must be a parenthesised LDAP filter", search.filter),
                ));
            }
        }
    }
}

/// `5m`, `30s`, `1h 30m` as written in the file.
pub(super) mod human_duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("interval {text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn ldap_section_parses_with_defaults() {
        let yaml = r#"
ldap:
  url: ldap://127.0.0.1:3890
  bindDN: cn=admin,dc=example,dc=org
  bindPasswordFile: /run/secrets/ldap
  users:  { base: "ou=people,dc=example,dc=org", filter: "(objectClass=posixAccount)" }
  groups: { base: "ou=groups,dc=example,dc=org", filter: "(objectClass=posixGroup)" }
  interval: 2m
"#;
        let ldap = Config::from_yaml(yaml).unwrap().ldap.unwrap();
        assert_eq!(ldap.interval, Duration::from_secs(120));
        assert_eq!(ldap.page_size, 500);
        assert_eq!(ldap.attributes.member, "memberUid");
    }

    #[test]
    fn ldap_problems_have_paths() {
        let yaml = "ldap:\n  url: http://x\n  users: {base: '', filter: 'objectClass=x'}\n  groups: {base: g, filter: '(a=b)'}\n";
        let text = Config::from_yaml(yaml).unwrap_err().to_string();
        for want in [
            "ldap.url:",
            "ldap.users.base: is required",
            "ldap.users.filter:",
        ] {
            assert!(text.contains(want), "missing {want:?} in {text}");
        }
    }
}
