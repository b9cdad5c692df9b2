//! homestead's configuration: one YAML file, every field defaulted in code.
//!
//! [`Config::from_yaml`] parses and checks a file and reports *every* problem with its
//! path (`storage.private.pathTemplate: unknown placeholder {usr}; ...`). Templates are
//! parsed as the file is read, so nothing is parsed twice.

mod controller;
mod hooks;
mod kinds;
mod ldap;
mod project;
mod session_source;
mod sessions;
mod storage;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use controller::{
    CloneTarget, ControllerConfig, PodSecurityConfig, PodSecurityLevel, RbacConfig, SecretClone,
    SecretRef,
};
pub use hooks::{DEFAULT_HOOK_TIMEOUT, HookConfig, HookEvent, HookKind, HookUrl, MAX_HOOK_TIMEOUT};
pub use kinds::{TrustedSubmitter, WorkloadKind, guess_resource, is_label_key};
pub use ldap::{LdapAttributes, LdapConfig, LdapSearch};
pub use project::{PROJECT_PLACEHOLDERS, PROJECT_STORAGE_PLACEHOLDERS, ProjectConfig, ProjectRole};
pub use session_source::{
    BUILT_IN_MEMBERS_QUERY, BUILT_IN_SESSIONS_QUERY, GID_COLUMN, GidFrom, IspybConfig,
    IspybQueries, MEMBER_COLUMNS, SESSION_COLUMNS, SessionSourceConfig, SyncWindow,
    VISIT_DIRECTORY_PLACEHOLDERS,
};
pub use sessions::{AfterGrace, MAX_LIFECYCLE_DURATION, SessionLifecycleConfig};
pub(crate) use storage::is_quantity;
pub use storage::{Backend, CsiSource, StorageConfig, StorageSet};

use crate::template::Template;

/// Placeholders of user namespace templates (besides `templateVariables`).
pub const USER_PLACEHOLDERS: &[&str] = &["username", "uid", "gid"];
/// Placeholders of session namespace templates (besides `templateVariables`).
pub const SESSION_PLACEHOLDERS: &[&str] = &[
    "proposalCode",
    "proposalNumber",
    "visit",
    "instrument",
    "gid",
];
/// Placeholders of the session data path template (besides `templateVariables`).
pub const SESSION_DATA_PLACEHOLDERS: &[&str] = &[
    "dataDirectory",
    "proposalCode",
    "proposalNumber",
    "visit",
    "instrument",
    "gid",
];
/// Placeholders of the shared path template (besides `templateVariables`).
pub const SHARED_PLACEHOLDERS: &[&str] = &["namespace"];

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Config {
    /// Prefix the API server adds to usernames (e.g. `oidc:`); stripped from
    /// `userInfo.username`, added to RoleBinding subjects.
    pub username_prefix: String,
    /// Namespace name templates.
    pub namespaces: NamespaceTemplates,
    /// Site constants usable in every template, e.g. `tenant: 7` for `t{tenant:03}-...`.
    pub template_variables: BTreeMap<String, TemplateVariable>,
    /// Private, shared and session-data storage.
    pub storage: StorageSet,
    /// Dataset claims.
    pub datasets: DatasetConfig,
    /// Usernames whose pod creations are attributed by the `homestead.dev/run-as`
    /// annotation rather than by who they are (the built-in workload controllers).
    pub trusted_controllers: Vec<String>,
    /// Usernames of Argo Workflows' workflow controller: trusted only for the pods of a
    /// Workflow (owner reference) and the Workflows of a CronWorkflow, and then only for
    /// the `homestead.dev/run-as` stamp homestead wrote into that Workflow.
    pub workflow_controllers: Vec<String>,
    /// Services that create objects on behalf of people and name the person in a label of
    /// the object (JupyterHub's KubeSpawner, the Argo server in SSO mode): a request from
    /// exactly such an identity is attributed to the person its label names.
    pub trusted_submitters: Vec<TrustedSubmitter>,
    /// Custom resources whose controllers make pods from pod templates inside them
    /// (Kubeflow's PyTorchJob, Spark, ...): stamped and validated like built-in workloads.
    pub workload_kinds: Vec<WorkloadKind>,
    /// What a pod in a session namespace gets when neither a person nor a trusted
    /// controller created it.
    pub unattributed_pods: UnattributedPods,
    /// Security allow-lists.
    pub security: SecurityConfig,
    /// The usernames homestead itself runs as (its controller's ServiceAccount). Only
    /// they may delete a managed namespace or change its `homestead.dev/managed`,
    /// `homestead.dev/user` and `homestead.dev/session` labels.
    pub homestead_usernames: Vec<String>,
    /// Groups whose members are cluster admins: they may change, debug and enter anyone's
    /// pods and workloads (keeping their stamp) and set the dataset label on claims.
    pub admin_groups: Vec<String>,
    /// Controller settings (RBAC roles, service accounts, quotas, secret clones, ...).
    pub controller: ControllerConfig,
    /// Projects: member roles and the owner's role.
    pub projects: ProjectConfig,
    /// Directory synchronisation; absent means no LDAP sync.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
    /// Sessions from the facility's scheduling database; absent means Sessions are written
    /// by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_source: Option<SessionSourceConfig>,
    /// When sessions open and close around their dates, and what an ended one becomes.
    pub sessions: SessionLifecycleConfig,
    /// The site's hooks, told of (or, when blocking, asked about) every User, Session and
    /// Project change.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<HookConfig>,
}

/// A site constant for templates: a number (zero-paddable) or text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TemplateVariable {
    /// A number, e.g. `7`.
    Number(i64),
    /// Text, e.g. `dls`.
    Text(String),
}

/// Namespace name templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NamespaceTemplates {
    /// Namespace of each user; placeholders `username` (its DNS-1123 form), `uid`, `gid`.
    pub user: Template,
    /// Namespace of each session; placeholders `proposalCode`, `proposalNumber`, `visit`,
    /// `instrument`, `gid`.
    pub session: Template,
    /// Namespace of each project without `spec.namespace`; placeholder `name` (the
    /// Project's name).
    pub project: Template,
}

impl Default for NamespaceTemplates {
    fn default() -> Self {
        Self {
            user: Template::new("home-{username}"),
            session: Template::new("{proposalCode}{proposalNumber}-{visit}"),
            project: Template::new("p-{name}"),
        }
    }
}

/// Dataset claims (PVCs labelled `homestead.dev/dataset=<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatasetConfig {
    /// Datasets mount at `<mountRoot>/<name>`.
    pub mount_root: String,
    /// Mount datasets read-only.
    pub read_only: bool,
}

impl Default for DatasetConfig {
    fn default() -> Self {
        Self {
            mount_root: "/mnt/datasets".into(),
            read_only: false,
        }
    }
}

/// What to do with a pod in a session namespace created by neither a person nor a trusted
/// controller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UnattributedPods {
    /// Refuse it, saying why.
    #[default]
    Deny,
    /// Run it as the session's default member.
    DefaultMember,
}

/// Security allow-lists and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// hostPath volumes are refused unless their path is one of these or below one.
    pub allowed_host_paths: Vec<String>,
    /// Capabilities containers may add (e.g. `NET_BIND_SERVICE`); all others are refused.
    pub allowed_capabilities: Vec<String>,
    /// CSI drivers pods may use inline (`volumes[].csi`); all others are refused. List
    /// only drivers whose inline volumes cannot reach another identity's data.
    pub allowed_csi_drivers: Vec<String>,
    /// Containers of every kind a pod (or template) may have; more is refused before any
    /// work is done, so no request can cost the webhook much memory.
    pub max_containers: usize,
    /// Volumes a pod (or template) may have; more is refused the same way.
    pub max_volumes: usize,
    /// A Session's `dataDirectory` must be one of these or below one; empty: any absolute
    /// path but `/`.
    pub session_data_roots: Vec<String>,
}

/// The largest `security.maxContainers` and `security.maxVolumes` accepted: what the pod
/// parser reads of one list at most.
pub const MAX_LIMIT: usize = crate::pod::MAX_ENTRIES;

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            allowed_host_paths: Vec::new(),
            allowed_capabilities: Vec::new(),
            allowed_csi_drivers: Vec::new(),
            max_containers: 64,
            max_volumes: 128,
            session_data_roots: Vec::new(),
        }
    }
}

/// The built-in Kubernetes identities that create pods and workloads from templates.
pub const DEFAULT_TRUSTED_CONTROLLERS: &[&str] = &[
    "system:serviceaccount:kube-system:replicaset-controller",
    "system:serviceaccount:kube-system:deployment-controller",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:daemon-set-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:cronjob-controller",
    "system:serviceaccount:kube-system:replication-controller",
    "system:kube-controller-manager",
];

/// The ServiceAccount Argo Workflows' workflow controller runs as when installed by its
/// own manifests or chart (namespace `argo`).
pub const DEFAULT_WORKFLOW_CONTROLLER: &str = "system:serviceaccount:argo:argo-workflow-controller";

/// Groups whose members are cluster admins by default.
pub const DEFAULT_ADMIN_GROUPS: &[&str] = &["system:masters"];

/// The ServiceAccount homestead runs as when installed by its chart.
pub const DEFAULT_HOMESTEAD_USERNAME: &str = "system:serviceaccount:homestead:homestead";

impl Default for Config {
    fn default() -> Self {
        Self {
            username_prefix: String::new(),
            namespaces: NamespaceTemplates::default(),
            template_variables: BTreeMap::new(),
            storage: StorageSet::default(),
            datasets: DatasetConfig::default(),
            trusted_controllers: DEFAULT_TRUSTED_CONTROLLERS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            workflow_controllers: vec![DEFAULT_WORKFLOW_CONTROLLER.to_owned()],
            trusted_submitters: Vec::new(),
            workload_kinds: Vec::new(),
            unattributed_pods: UnattributedPods::default(),
            security: SecurityConfig::default(),
            homestead_usernames: vec![DEFAULT_HOMESTEAD_USERNAME.to_owned()],
            admin_groups: DEFAULT_ADMIN_GROUPS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            controller: ControllerConfig::default(),
            projects: ProjectConfig::default(),
            ldap: None,
            session_source: None,
            sessions: SessionLifecycleConfig::default(),
            hooks: Vec::new(),
        }
    }
}

/// One problem in a configuration, with the path of the field it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path, e.g. `storage.private.pathTemplate`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The text is not YAML of the right shape.
    #[error("configuration is not valid YAML of the expected shape: {0}")]
    Parse(String),
    /// The YAML parsed but has problems.
    #[error("configuration has {} problem(s):\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Config {
    /// Parses and checks a YAML configuration. An empty document gives the defaults.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = if text.trim().is_empty() {
            Config::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?
        };
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Value of a site constant for templates.
    pub fn variable(&self, name: &str) -> Option<crate::template::Value<'_>> {
        use crate::template::Value;
        self.template_variables.get(name).map(|v| match v {
            TemplateVariable::Number(n) => Value::Number(*n),
            TemplateVariable::Text(t) => Value::Text(t),
        })
    }

    /// `userInfo.username` with the configured prefix removed; `None` when the configured
    /// prefix is set and the name does not carry it (so it is not a directory person).
    pub fn strip_username_prefix<'a>(&self, username: &'a str) -> Option<&'a str> {
        if self.username_prefix.is_empty() {
            Some(username)
        } else {
            username.strip_prefix(self.username_prefix.as_str())
        }
    }

    /// The trusted submitter `username` is (exactly), if any.
    pub fn trusted_submitter(&self, username: &str) -> Option<&TrustedSubmitter> {
        self.trusted_submitters
            .iter()
            .find(|s| s.username == username)
    }

    /// The configured workload kind of `group`, `version` and `kind`, if any.
    pub fn workload_kind(&self, group: &str, version: &str, kind: &str) -> Option<&WorkloadKind> {
        self.workload_kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.kind == kind)
    }

    /// The namespaces homestead itself runs in: those of its ServiceAccount usernames
    /// (`system:serviceaccount:<namespace>:<name>`).
    pub fn homestead_namespaces(&self) -> impl Iterator<Item = &str> {
        self.homestead_usernames.iter().filter_map(|u| {
            u.strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .map(|(namespace, _)| namespace)
        })
    }

    /// Every problem in this configuration; empty when it is usable.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let vars: Vec<&str> = self.template_variables.keys().map(String::as_str).collect();
        let mut template = |path: &str, template: &Template, allowed: &[&str]| {
            let mut all: Vec<&str> = allowed.to_vec();
            all.extend(vars.iter().copied());
            if let Err(e) = template.check(&all) {
                problems.push(problem(path, e.to_string()));
            }
        };
        template("namespaces.user", &self.namespaces.user, USER_PLACEHOLDERS);
        template(
            "namespaces.session",
            &self.namespaces.session,
            SESSION_PLACEHOLDERS,
        );
        template(
            "namespaces.project",
            &self.namespaces.project,
            PROJECT_PLACEHOLDERS,
        );
        template(
            "storage.project.pathTemplate",
            &self.storage.project.path_template,
            PROJECT_STORAGE_PLACEHOLDERS,
        );
        template(
            "storage.private.pathTemplate",
            &self.storage.private.path_template,
            USER_PLACEHOLDERS,
        );
        template(
            "storage.shared.pathTemplate",
            &self.storage.shared.path_template,
            SHARED_PLACEHOLDERS,
        );
        template(
            "storage.session.pathTemplate",
            &self.storage.session.path_template,
            SESSION_DATA_PLACEHOLDERS,
        );
        for name in self.template_variables.keys() {
            let builtin = USER_PLACEHOLDERS
                .iter()
                .chain(SESSION_DATA_PLACEHOLDERS)
                .chain(SHARED_PLACEHOLDERS)
                .chain(VISIT_DIRECTORY_PLACEHOLDERS)
                .chain(PROJECT_STORAGE_PLACEHOLDERS)
                .any(|b| b == name);
            if builtin {
                problems.push(problem(
                    &format!("templateVariables.{name}"),
                    "shadows a built-in placeholder".into(),
                ));
            }
        }
        self.storage.check("storage", &mut problems);
        check_absolute(
            "datasets.mountRoot",
            &self.datasets.mount_root,
            &mut problems,
        );
        for (i, prefix) in self.security.allowed_host_paths.iter().enumerate() {
            check_absolute(
                &format!("security.allowedHostPaths[{i}]"),
                prefix,
                &mut problems,
            );
        }
        for (i, root) in self.security.session_data_roots.iter().enumerate() {
            let path = format!("security.sessionDataRoots[{i}]");
            check_absolute(&path, root, &mut problems);
            if root.trim_end_matches('/').is_empty() {
                problems.push(problem(&path, "\"/\" would allow every directory".into()));
            }
        }
        for (path, value) in [
            ("security.maxContainers", self.security.max_containers),
            ("security.maxVolumes", self.security.max_volumes),
        ] {
            if !(1..=MAX_LIMIT).contains(&value) {
                problems.push(problem(
                    path,
                    format!("{value} must be between 1 and {MAX_LIMIT}"),
                ));
            }
        }
        for (i, driver) in self.security.allowed_csi_drivers.iter().enumerate() {
            if driver.trim().is_empty() {
                problems.push(problem(
                    &format!("security.allowedCsiDrivers[{i}]"),
                    "is empty".into(),
                ));
            }
        }
        for (i, cap) in self.security.allowed_capabilities.iter().enumerate() {
            let ok = !cap.is_empty()
                && !cap.starts_with("CAP_")
                && cap
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit());
            if !ok {
                problems.push(problem(
                    &format!("security.allowedCapabilities[{i}]"),
                    format!("{cap:?} is not a capability name as Kubernetes writes it (e.g. NET_BIND_SERVICE)"),
                ));
            }
        }
        for (field, names) in [
            ("trustedControllers", &self.trusted_controllers),
            ("workflowControllers", &self.workflow_controllers),
        ] {
            for (i, name) in names.iter().enumerate() {
                if name.trim().is_empty() {
                    problems.push(problem(&format!("{field}[{i}]"), "is empty".into()));
                }
            }
        }
        kinds::check_submitters(
            &self.trusted_submitters,
            &[
                ("homesteadUsernames", &self.homestead_usernames),
                ("trustedControllers", &self.trusted_controllers),
                ("workflowControllers", &self.workflow_controllers),
            ],
            &mut problems,
        );
        kinds::check_kinds(&self.workload_kinds, &mut problems);
        if self.homestead_usernames.is_empty() {
            problems.push(problem(
                "homesteadUsernames",
                "needs at least one username (homestead's own ServiceAccount)".into(),
            ));
        }
        for (i, group) in self.admin_groups.iter().enumerate() {
            if group.trim().is_empty() {
                problems.push(problem(&format!("adminGroups[{i}]"), "is empty".into()));
            }
        }
        for (i, name) in self.homestead_usernames.iter().enumerate() {
            if name.trim().is_empty() {
                problems.push(problem(
                    &format!("homesteadUsernames[{i}]"),
                    "is empty".into(),
                ));
            }
        }
        self.controller.check("controller", &mut problems);
        self.projects.check("projects", &mut problems);
        self.sessions.check("sessions", &mut problems);
        hooks::check(&self.hooks, &mut problems);
        if let Some(ldap) = &self.ldap {
            ldap.check("ldap", &mut problems);
        }
        if let Some(source) = &self.session_source {
            source.check("sessionSource", &vars, self.ldap.is_some(), &mut problems);
        }
        problems
    }
}

pub(crate) fn problem(path: &str, message: String) -> Problem {
    Problem {
        path: path.to_owned(),
        message,
    }
}

pub(crate) fn check_absolute(path: &str, value: &str, problems: &mut Vec<Problem>) {
    if !value.starts_with('/') {
        problems.push(problem(path, format!("{value:?} must be an absolute path")));
    } else if value.split('/').any(|part| part == "..") {
        problems.push(problem(path, format!("{value:?} must not contain '..'")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert_eq!(config.namespaces.user.source(), "home-{username}");
        assert_eq!(Config::from_yaml("").unwrap(), config);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let yaml = r#"
namespaces:
  user: "home-{usr}"
storage:
  private:
    pathTemplate: "/export/home/{usr}"
datasets:
  mountRoot: relative/path
security:
  allowedCapabilities: [CAP_SYS_ADMIN]
"#;
        let Err(ConfigError::Invalid(problems)) = Config::from_yaml(yaml) else {
            panic!("expected problems");
        };
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for want in [
            "namespaces.user: unknown placeholder {usr}",
            "storage.private.pathTemplate: unknown placeholder {usr}",
            "datasets.mountRoot: \"relative/path\" must be an absolute path",
            "security.allowedCapabilities[0]:",
        ] {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "missing {want:?} in {lines:#?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_parse_errors() {
        let err = Config::from_yaml("namespace:\n  user: x\n").unwrap_err();
        assert!(
            matches!(err, ConfigError::Parse(ref m) if m.contains("namespace")),
            "{err}"
        );
    }

    #[test]
    fn variables_extend_templates() {
        let yaml =
            "templateVariables: {tenant: 7}\nnamespaces: {user: \"t{tenant:03}-u{uid:06}\"}\n";
        let config = Config::from_yaml(yaml).unwrap();
        let rendered = config.namespaces.user.render(|n| match n {
            "uid" => Some(crate::template::Value::Number(1001)),
            other => config.variable(other),
        });
        assert_eq!(rendered, "t007-u001001");
    }

    #[test]
    fn homestead_usernames_must_not_be_empty() {
        assert_eq!(
            Config::default().homestead_usernames,
            vec![DEFAULT_HOMESTEAD_USERNAME.to_owned()]
        );
        let Err(ConfigError::Invalid(problems)) = Config::from_yaml("homesteadUsernames: []")
        else {
            panic!("expected problems");
        };
        assert_eq!(problems[0].path, "homesteadUsernames");
    }

    #[test]
    fn prefix_is_stripped() {
        let config = Config::from_yaml("usernamePrefix: \"oidc:\"").unwrap();
        assert_eq!(config.strip_username_prefix("oidc:ada"), Some("ada"));
        assert_eq!(config.strip_username_prefix("ada"), None);
        assert_eq!(Config::default().strip_username_prefix("ada"), Some("ada"));
    }
}
