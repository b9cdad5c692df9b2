//! Projects: the roles members may have, and the owner's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Problem, problem};

/// Placeholders of the project namespace template (besides `templateVariables`). The owner
/// is deliberately not one: handing a project over must not move its namespace.
pub const PROJECT_PLACEHOLDERS: &[&str] = &["name"];
/// Placeholders of the project volume's path template (besides `templateVariables`).
pub const PROJECT_STORAGE_PLACEHOLDERS: &[&str] = &["name", "namespace", "gid"];

/// Project settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ProjectConfig {
    /// The roles a member may have, by the name written in `spec.members[].role`.
    pub roles: BTreeMap<String, ProjectRole>,
    /// The role the owner has (a key of `roles`).
    pub owner_role: String,
}

/// One role of a project member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectRole {
    /// The ClusterRole a RoleBinding gives people of this role in the project namespaces.
    pub cluster_role: String,
    /// People of this role run pods in the project (as themselves, with the project gid)
    /// and get a private claim there; without it admission refuses their pods.
    #[serde(default)]
    pub runs_pods: bool,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        let role = |cluster_role: &str, runs_pods| ProjectRole {
            cluster_role: cluster_role.to_owned(),
            runs_pods,
        };
        Self {
            roles: BTreeMap::from([
                ("admin".to_owned(), role("admin", true)),
                ("edit".to_owned(), role("edit", true)),
                ("view".to_owned(), role("view", false)),
            ]),
            owner_role: "admin".to_owned(),
        }
    }
}

impl ProjectConfig {
    /// The role named `name`, if configured.
    pub fn role(&self, name: &str) -> Option<&ProjectRole> {
        self.roles.get(name)
    }

    pub(super) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        if !self.roles.contains_key(&self.owner_role) {
            problems.push(problem(
                &format!("{path}.ownerRole"),
                format!("{:?} is not one of the roles", self.owner_role),
            ));
        }
        for (name, role) in &self.roles {
            if !crate::names::is_dns1123_label(name) {
                problems.push(problem(
                    &format!("{path}.roles.{name}"),
                    "a role name must be a DNS-1123 label (it names a RoleBinding)".into(),
                ));
            }
            if role.cluster_role.trim().is_empty() {
                problems.push(problem(
                    &format!("{path}.roles.{name}.clusterRole"),
                    "is empty".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_and_problems() {
        let config = Config::default();
        assert_eq!(config.projects.owner_role, "admin");
        assert!(config.projects.role("edit").unwrap().runs_pods);
        assert!(!config.projects.role("view").unwrap().runs_pods);
        assert_eq!(config.namespaces.project.source(), "p-{name}");
        assert_eq!(
            config.storage.project.mount_path.as_deref(),
            Some("/project")
        );

        let config = Config::from_yaml(
            "projects: {roles: {lead: {clusterRole: admin, runsPods: true}}, ownerRole: lead}",
        )
        .unwrap();
        assert_eq!(config.projects.roles.len(), 1, "roles replace the defaults");

        let err = Config::from_yaml(
            "projects: {roles: {Bad_Name: {clusterRole: ''}}, ownerRole: boss}\nnamespaces: {project: '{owner}-{name}'}",
        )
        .unwrap_err()
        .to_string();
        for want in [
            "projects.ownerRole: \"boss\" is not one of the roles",
            "projects.roles.Bad_Name: a role name",
            "projects.roles.Bad_Name.clusterRole: is empty",
            "namespaces.project: unknown placeholder {owner}",
        ] {
            assert!(err.contains(want), "missing {want:?} in {err}");
        }
    }
}
