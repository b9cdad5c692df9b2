//! The `sessionSource` section: where visits come from (ISPyB, the MySQL/MariaDB scheduling
//! database many synchrotrons run) and how their rows become Sessions.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ldap::human_duration;
use super::{Problem, check_absolute, problem};
use crate::template::Template;

/// Placeholders of `sessionSource.ispyb.dataDirectory` (besides `templateVariables`).
pub const VISIT_DIRECTORY_PLACEHOLDERS: &[&str] = &[
    "instrument",
    "year",
    "proposalCode",
    "proposalNumber",
    "visit",
];

/// Columns the sessions query must return (plus `gid` with `gidFrom: column`).
pub const SESSION_COLUMNS: &[&str] = &[
    "sessionId",
    "proposalCode",
    "proposalNumber",
    "visit",
    "instrument",
    "startDate",
    "endDate",
];
/// The column holding the visit's gid with `gidFrom: column`.
pub const GID_COLUMN: &str = "gid";
/// Columns the members query must return.
pub const MEMBER_COLUMNS: &[&str] = &["sessionId", "login"];

/// The built-in sessions query, on ISPyB's own tables. `@windowStart` and `@windowEnd` are
/// set before it runs. A visit with a NULL date is read too, so that it is reported rather
/// than silently missing.
pub const BUILT_IN_SESSIONS_QUERY: &str = "\
SELECT bs.sessionId AS sessionId, p.proposalCode AS proposalCode, \
p.proposalNumber AS proposalNumber, bs.visit_number AS visit, \
bs.beamLineName AS instrument, bs.startDate AS startDate, bs.endDate AS endDate \
FROM BLSession bs JOIN Proposal p ON p.proposalId = bs.proposalId \
WHERE (bs.startDate <= @windowEnd OR bs.startDate IS NULL) \
AND (bs.endDate >= @windowStart OR bs.endDate IS NULL)";

/// The built-in members query: the people on each visit the sessions query can return.
pub const BUILT_IN_MEMBERS_QUERY: &str = "\
SELECT shp.sessionId AS sessionId, per.login AS login \
FROM Session_has_Person shp \
JOIN Person per ON per.personId = shp.personId \
JOIN BLSession bs ON bs.sessionId = shp.sessionId \
WHERE (bs.startDate <= @windowEnd OR bs.startDate IS NULL) \
AND (bs.endDate >= @windowStart OR bs.endDate IS NULL)";

/// Session synchronisation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionSourceConfig {
    /// The scheduling database.
    pub ispyb: IspybConfig,
    /// Where a visit's Unix gid comes from.
    #[serde(default)]
    pub gid_from: GidFrom,
    /// Time between syncs in `serve`.
    #[serde(default = "default_interval", with = "human_duration")]
    pub interval: Duration,
}

/// Where a visit's gid comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GidFrom {
    /// The `gidNumber` of the LDAP posixGroup whose name is the session's name
    /// (`cm37235-2`), read with the `ldap` section's connection and group search.
    #[default]
    Ldap,
    /// The `gid` column of the sessions query (which must then be given).
    Column,
}

/// The ISPyB database and how its visits map to Sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IspybConfig {
    /// `mysql://user@host:3306/database`; TLS when the URL asks (`?require_ssl=true`).
    pub url: String,
    /// File holding the database password (never in the URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// CA certificates (PEM) trusted for TLS, besides the built-in roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Which visits are synced: those whose dates overlap `[now - after, now + before]`.
    #[serde(default)]
    pub window: SyncWindow,
    /// Only visits on these instruments (beamlines); every instrument when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instruments: Vec<String>,
    /// The data directory of a visit; placeholders `instrument`, `year` (of the start
    /// date), `proposalCode`, `proposalNumber`, `visit` and `templateVariables`.
    #[serde(default = "default_data_directory")]
    pub data_directory: Template,
    /// Instrument → LDAP groups whose members join every session on that instrument.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub staff: BTreeMap<String, Vec<String>>,
    /// Replacements of the built-in queries for a site whose schema differs.
    #[serde(default)]
    pub queries: IspybQueries,
}

/// How far around now visits are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncWindow {
    /// Visits starting up to this long from now are synced already.
    #[serde(default = "default_before", with = "human_duration")]
    pub before: Duration,
    /// Visits that ended up to this long ago are still synced.
    #[serde(default = "default_after", with = "human_duration")]
    pub after: Duration,
}

impl Default for SyncWindow {
    fn default() -> Self {
        Self {
            before: default_before(),
            after: default_after(),
        }
    }
}

/// Site-specific queries; unset ones are the built-in queries on ISPyB's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IspybQueries {
    /// Returns one row per visit with the columns [`SESSION_COLUMNS`] (and `gid` with
    /// `gidFrom: column`); may use `@windowStart` and `@windowEnd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<String>,
    /// Returns one row per person on a visit with the columns [`MEMBER_COLUMNS`]; may use
    /// `@windowStart` and `@windowEnd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<String>,
}

impl IspybQueries {
    /// The sessions query in force.
    pub fn sessions(&self) -> &str {
        self.sessions.as_deref().unwrap_or(BUILT_IN_SESSIONS_QUERY)
    }

    /// The members query in force.
    pub fn members(&self) -> &str {
        self.members.as_deref().unwrap_or(BUILT_IN_MEMBERS_QUERY)
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_before() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_after() -> Duration {
    Duration::from_secs(30 * 86_400)
}

fn default_data_directory() -> Template {
    Template::new("/dls/{instrument}/data/{year}/{proposalCode}{proposalNumber}-{visit}/")
}

impl SessionSourceConfig {
    /// The columns the sessions query must return.
    pub fn session_columns(&self) -> Vec<&'static str> {
        let mut columns = SESSION_COLUMNS.to_vec();
        if self.gid_from == GidFrom::Column {
            columns.push(GID_COLUMN);
        }
        columns
    }

    /// True when the sync reads LDAP groups (visit gids or instrument staff).
    pub fn needs_ldap(&self) -> bool {
        self.gid_from == GidFrom::Ldap || !self.ispyb.staff.is_empty()
    }

    /// Problems of this section; `variables` are the configured `templateVariables` and
    /// `has_ldap` says whether an `ldap` section exists.
    pub(super) fn check(
        &self,
        path: &str,
        variables: &[&str],
        has_ldap: bool,
        problems: &mut Vec<Problem>,
    ) {
        let ispyb = &self.ispyb;
        let at = |field: &str| format!("{path}.ispyb.{field}");
        match ispyb.url.strip_prefix("mysql://") {
            None => problems.push(problem(
                &at("url"),
                format!("{:?} must start with mysql://", ispyb.url),
            )),
            Some(rest) => {
                let authority = rest.split(['/', '?']).next().unwrap_or_default();
                if authority
                    .rsplit_once('@')
                    .is_some_and(|(user, _)| user.contains(':'))
                {
                    problems.push(problem(
                        &at("url"),
                        "must not hold a password; put it in passwordFile".into(),
                    ));
                }
            }
        }
        for (field, file) in [
            ("passwordFile", &ispyb.password_file),
            ("caFile", &ispyb.ca_file),
        ] {
            if let Some(file) = file {
                check_absolute(&at(field), file, problems);
            }
        }
        let mut allowed = VISIT_DIRECTORY_PLACEHOLDERS.to_vec();
        allowed.extend(variables.iter().copied());
        if let Err(e) = ispyb.data_directory.check(&allowed) {
            problems.push(problem(&at("dataDirectory"), e.to_string()));
        }
        check_absolute(
            &at("dataDirectory"),
            ispyb.data_directory.source(),
            problems,
        );
        for (i, instrument) in ispyb.instruments.iter().enumerate() {
            if instrument.trim().is_empty() {
                problems.push(problem(
                    &at(&format!("instruments[{i}]")),
                    "is empty".into(),
                ));
            }
        }
        for (instrument, groups) in &ispyb.staff {
            if instrument.trim().is_empty() {
                problems.push(problem(&at("staff"), "has an empty instrument name".into()));
            }
            for (i, group) in groups.iter().enumerate() {
                if group.trim().is_empty() {
                    problems.push(problem(
                        &at(&format!("staff.{instrument}[{i}]")),
                        "is empty".into(),
                    ));
                }
            }
        }
        for (field, query) in [
            ("queries.sessions", &ispyb.queries.sessions),
            ("queries.members", &ispyb.queries.members),
        ] {
            if query.as_ref().is_some_and(|q| q.trim().is_empty()) {
                problems.push(problem(&at(field), "is empty".into()));
            }
        }
        if self.gid_from == GidFrom::Column && ispyb.queries.sessions.is_none() {
            problems.push(problem(
                &format!("{path}.gidFrom"),
                "`column` needs queries.sessions: a sessions query returning a `gid` column \
                 (ISPyB's own tables hold no gid)"
                    .into(),
            ));
        }
        if self.needs_ldap() && !has_ldap {
            let why = if self.gid_from == GidFrom::Ldap {
                "gidFrom: ldap"
            } else {
                "ispyb.staff"
            };
            problems.push(problem(
                path,
                format!("{why} reads LDAP groups and needs the ldap section"),
            ));
        }
        if self.interval < Duration::from_secs(10) {
            problems.push(problem(
                &format!("{path}.interval"),
                "must be at least 10s".into(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    const LDAP: &str = "ldap:\n  url: ldap://127.0.0.1:389\n  users: {base: 'ou=people,dc=x', filter: '(objectClass=posixAccount)'}\n  groups: {base: 'ou=groups,dc=x', filter: '(objectClass=posixGroup)'}\n";

    fn problems(yaml: &str) -> Vec<String> {
        match Config::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(ConfigError::Invalid(problems)) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn the_issue_example_parses_with_defaults() {
        let yaml = format!(
            "{LDAP}sessionSource:
  ispyb:
    url: mysql://reader@ispyb.example.org:3306/ispyb
    passwordFile: /etc/homestead/ispyb-password
    window: {{before: 7d, after: 30d}}
    instruments: [i03, i04, i24]
    dataDirectory: \"/dls/{{instrument}}/data/{{year}}/{{proposalCode}}{{proposalNumber}}-{{visit}}/\"
    staff: {{i03: [i03-staff], i24: [i24-staff]}}
  gidFrom: ldap
  interval: 1m
"
        );
        let source = Config::from_yaml(&yaml).unwrap().session_source.unwrap();
        assert_eq!(source.interval, Duration::from_secs(60));
        assert_eq!(source.ispyb.window.before, Duration::from_secs(7 * 86_400));
        assert_eq!(source.ispyb.window.after, Duration::from_secs(30 * 86_400));
        assert_eq!(source.ispyb.staff["i03"], ["i03-staff"]);
        assert_eq!(source.gid_from, GidFrom::Ldap);
        assert_eq!(source.ispyb.queries.sessions(), BUILT_IN_SESSIONS_QUERY);
        assert_eq!(source.session_columns(), SESSION_COLUMNS);

        let minimal = format!("{LDAP}sessionSource: {{ispyb: {{url: 'mysql://r@db/ispyb'}}}}\n");
        let source = Config::from_yaml(&minimal).unwrap().session_source.unwrap();
        assert_eq!(source.ispyb.window, SyncWindow::default());
        assert_eq!(source.ispyb.data_directory, default_data_directory());
    }

    #[test]
    fn every_problem_names_its_field() {
        let cases: &[(&str, &str)] = &[
            (
                "sessionSource: {ispyb: {url: 'postgres://db/x'}, gidFrom: column, queries: {}}",
                "",
            ),
            (
                "sessionSource: {ispyb: {url: 'postgres://db/x'}}",
                "sessionSource.ispyb.url: \"postgres://db/x\" must start with mysql://",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://reader:secret@db/x'}}",
                "sessionSource.ispyb.url: must not hold a password",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', passwordFile: secret}}",
                "sessionSource.ispyb.passwordFile: \"secret\" must be an absolute path",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', dataDirectory: '/data/{beamline}/'}}",
                "sessionSource.ispyb.dataDirectory: unknown placeholder {beamline}",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', dataDirectory: 'data/{visit}'}}",
                "sessionSource.ispyb.dataDirectory: \"data/{visit}\" must be an absolute path",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', instruments: ['']}}",
                "sessionSource.ispyb.instruments[0]: is empty",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', staff: {i03: ['']}}}",
                "sessionSource.ispyb.staff.i03[0]: is empty",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x', queries: {members: ' '}}}",
                "sessionSource.ispyb.queries.members: is empty",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x'}, gidFrom: column}",
                "sessionSource.gidFrom: `column` needs queries.sessions",
            ),
            (
                "sessionSource: {ispyb: {url: 'mysql://r@db/x'}, interval: 1s}",
                "sessionSource.interval: must be at least 10s",
            ),
        ];
        for (yaml, want) in cases {
            let yaml = format!("{LDAP}{yaml}\n");
            if want.is_empty() {
                // Unknown fields are parse errors, not problems.
                assert!(Config::from_yaml(&yaml).is_err(), "{yaml}");
                continue;
            }
            let found = problems(&yaml);
            assert!(
                found.iter().any(|p| p.starts_with(want)),
                "missing {want:?} in {found:#?}"
            );
        }
    }

    #[test]
    fn ldap_is_needed_for_ldap_gids_and_for_staff() {
        let found = problems("sessionSource: {ispyb: {url: 'mysql://r@db/x'}}");
        assert_eq!(
            found,
            ["sessionSource: gidFrom: ldap reads LDAP groups and needs the ldap section"]
        );
        let column = "sessionSource: {gidFrom: column, ispyb: {url: 'mysql://r@db/x', \
                      queries: {sessions: 'SELECT 1'}";
        assert!(problems(&format!("{column}}}}}")).is_empty());
        let found = problems(&format!("{column}, staff: {{i03: [staff]}}}}}}"));
        assert_eq!(
            found,
            ["sessionSource: ispyb.staff reads LDAP groups and needs the ldap section"]
        );
    }

    #[test]
    fn template_variables_may_appear_in_the_data_directory() {
        let yaml = format!(
            "{LDAP}templateVariables: {{site: dls}}\nsessionSource: {{ispyb: {{url: 'mysql://r@db/x', \
             dataDirectory: '/{{site}}/{{instrument}}/{{visit}}'}}}}\n"
        );
        assert!(problems(&yaml).is_empty());
    }
}
