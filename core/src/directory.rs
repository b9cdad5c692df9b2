//! The directory: who owns which managed namespace, who is a member of what, which dataset
//! claims each namespace has. Built from `User`, `Session`, `Project` and
//! `PersistentVolumeClaim` objects — read from a file offline, or from the controller's caches in a cluster — and
//! then only read, by every admission request, without locks or I/O.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use thiserror::Error;

use crate::config::Config;
use crate::names::{self, LABEL_DATASET};
use crate::resources::{Lifecycle, Project, Session, SessionSpec, User, UserSpec};
use crate::template::Value;

/// A person as admission sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// `metadata.name` (the DNS-1123 form of the username).
    pub name: String,
    /// Unix login name.
    pub username: String,
    /// Unix uid.
    pub uid: i64,
    /// Primary gid.
    pub gid: i64,
    /// Supplemental gids.
    pub supplemental_groups: Vec<i64>,
    /// Disabled users are refused.
    pub disabled: bool,
    /// The user's own namespace.
    pub namespace: String,
}

/// A session as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    /// `metadata.name`.
    pub name: String,
    /// The session namespace.
    pub namespace: String,
    /// Session gid.
    pub gid: i64,
    /// Root of the visit's data.
    pub data_directory: String,
    /// Usernames of the members, in the order written.
    pub members: Vec<String>,
    /// The member unattributed pods run as, when the configuration allows it.
    pub default_member: Option<String>,
    /// Where the session is in its life: `Ended` when its source marked it ended
    /// (`spec.ended`), else what the controller last wrote in `status.lifecycle` (`Active`
    /// before it wrote anything). Admission never reads a clock.
    pub lifecycle: Lifecycle,
    /// `spec.ended`: the session's source ended it.
    pub ended_by_source: bool,
    /// `spec.endDate` as written, for messages.
    pub end_date: String,
}

impl SessionEntry {
    /// True when `username` is a member.
    pub fn is_member(&self, username: &str) -> bool {
        self.members.iter().any(|m| m == username)
    }
}

/// A project as admission sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEntry {
    /// `metadata.name`.
    pub name: String,
    /// The project namespace, then its child namespaces.
    pub namespaces: Vec<String>,
    /// The project gid (`spec.gid`, else the owner's primary gid).
    pub gid: i64,
    /// The owner's username.
    pub owner: String,
    /// Every person with a role, by username: the owner with the owner role, then the
    /// members (a member listed twice keeps the first role; the owner keeps the owner's).
    pub roles: Vec<(String, String)>,
    /// The role every User has, when the project is shared with all users.
    pub all_users: Option<String>,
    /// The project has a project volume (`spec.storage`).
    pub storage: bool,
}

impl ProjectEntry {
    /// The role of `username`: their own, else the all-users role. The caller checks that
    /// the person is a User.
    pub fn role_of(&self, username: &str) -> Option<&str> {
        self.roles
            .iter()
            .find(|(u, _)| u == username)
            .map(|(_, r)| r.as_str())
            .or(self.all_users.as_deref())
    }
}

/// Who a managed namespace belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceOwner {
    /// A user namespace.
    User(Arc<UserEntry>),
    /// A session namespace.
    Session(Arc<SessionEntry>),
    /// A project namespace (or one of its child namespaces).
    Project(Arc<ProjectEntry>),
}

impl NamespaceOwner {
    /// `User/<name>`, `Session/<name>` or `Project/<name>`.
    pub fn object(&self) -> String {
        match self {
            NamespaceOwner::User(u) => format!("User/{}", u.name),
            NamespaceOwner::Session(s) => format!("Session/{}", s.name),
            NamespaceOwner::Project(p) => format!("Project/{}", p.name),
        }
    }
}

/// A dataset claim of a namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dataset {
    /// Dataset name (the label value); mounts at `<mountRoot>/<name>`.
    pub name: String,
    /// The PVC's name.
    pub claim: String,
}

/// Something in the directory's input that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryProblem {
    /// `User/ada`, `Session/cm37235-2`, `PersistentVolumeClaim/ns/name`.
    pub object: String,
    /// Why it was skipped.
    pub reason: String,
}

impl fmt::Display for DirectoryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.reason)
    }
}

/// Why a directory file could not be read at all.
#[derive(Debug, Error)]
pub enum DirectoryError {
    /// The text is not YAML or JSON documents.
    #[error("directory is not YAML/JSON documents: {0}")]
    Parse(String),
    /// A document is not a User, Session, PersistentVolumeClaim or List of them.
    #[error("directory document {index}: {reason}")]
    Document {
        /// Zero-based index of the document.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The parsed objects of a directory file.
#[derive(Debug, Clone, Default)]
pub struct DirectoryObjects {
    /// Users.
    pub users: Vec<User>,
    /// Sessions.
    pub sessions: Vec<Session>,
    /// PersistentVolumeClaims (dataset claims are those labelled `homestead.dev/dataset`).
    pub claims: Vec<PersistentVolumeClaim>,
    /// Projects.
    pub projects: Vec<Project>,
}

impl DirectoryObjects {
    /// Parses multi-document YAML (or JSON documents); `kind: List` documents are unpacked.
    pub fn from_yaml(text: &str) -> Result<Self, DirectoryError> {
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(text).map_err(|e| DirectoryError::Parse(e.to_string()))?;
        let mut objects = Self::default();
        for (index, document) in documents.into_iter().enumerate() {
            if document.is_null() {
                continue;
            }
            objects
                .push(document)
                .map_err(|reason| DirectoryError::Document { index, reason })?;
        }
        Ok(objects)
    }

    fn push(&mut self, document: serde_json::Value) -> Result<(), String> {
        let kind = document
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_owned();
        let describe = |e: serde_json::Error| format!("{kind}: {e}");
        match kind.as_str() {
            "User" => self
                .users
                .push(serde_json::from_value(document).map_err(describe)?),
            "Session" => self
                .sessions
                .push(serde_json::from_value(document).map_err(describe)?),
            "PersistentVolumeClaim" => self
                .claims
                .push(serde_json::from_value(document).map_err(describe)?),
            "Project" => self
                .projects
                .push(serde_json::from_value(document).map_err(describe)?),
            "List" | "UserList" | "SessionList" | "ProjectList" | "PersistentVolumeClaimList" => {
                let items = match document {
                    serde_json::Value::Object(mut map) => map.remove("items"),
                    _ => None,
                };
                for item in items
                    .and_then(|i| i.as_array().cloned())
                    .unwrap_or_default()
                {
                    self.push(item)?;
                }
            }
            "" => return Err("has no kind".into()),
            other => {
                return Err(format!(
                    "kind {other} is not one of User, Session, Project, PersistentVolumeClaim, List"
                ));
            }
        }
        Ok(())
    }
}

/// The admission-time view of users, sessions, namespaces and datasets.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    users: HashMap<String, Arc<UserEntry>>,
    /// Users by object name (the `homestead.dev/user` label of pods).
    names: HashMap<String, Arc<UserEntry>>,
    /// Users by uid (the first by object name, when the directory has a clash).
    uids: HashMap<i64, Arc<UserEntry>>,
    /// Users by primary gid (the first by object name).
    gids: HashMap<i64, Arc<UserEntry>>,
    namespaces: HashMap<String, NamespaceOwner>,
    /// Every namespace a User, Session or Project renders, managed yet or not:
    /// `User/<name>`, `Session/<name>` or `Project/<name>`.
    holders: HashMap<String, String>,
    datasets: HashMap<String, Vec<Dataset>>,
}

/// The namespace a user manages: `spec.namespace`, else the configured template.
pub fn user_namespace(config: &Config, spec: &UserSpec) -> Result<String, String> {
    if let Some(ns) = &spec.namespace {
        return Ok(ns.clone());
    }
    let name = names::object_name(&spec.username).map_err(|e| e.to_string())?;
    Ok(config.namespaces.user.render(|key| match key {
        "username" => Some(Value::Text(&name)),
        "uid" => Some(Value::Number(spec.uid)),
        "gid" => Some(Value::Number(spec.gid)),
        other => config.variable(other),
    }))
}

/// The namespace a session manages, from the configured template.
pub fn session_namespace(config: &Config, spec: &SessionSpec) -> String {
    config
        .namespaces
        .session
        .render(|key| session_value(config, spec, key))
}

/// The value of a session's template placeholder (`proposalCode`, `proposalNumber`,
/// `visit`, `instrument`, `gid`), else of a configured `templateVariables` entry.
pub fn session_value<'a>(
    config: &'a Config,
    spec: &'a SessionSpec,
    key: &str,
) -> Option<Value<'a>> {
    let number = |n: u64| Value::Number(i64::try_from(n).unwrap_or(i64::MAX));
    match key {
        "proposalCode" => Some(Value::Text(&spec.proposal_code)),
        "proposalNumber" => Some(number(spec.proposal_number)),
        "visit" => Some(number(spec.visit)),
        "instrument" => Some(Value::Text(&spec.instrument)),
        "gid" => Some(Value::Number(spec.gid)),
        other => config.variable(other),
    }
}

/// The namespace a project manages: `spec.namespace`, else the configured template.
pub fn project_namespace(config: &Config, project: &Project) -> String {
    if let Some(ns) = &project.spec.namespace {
        return ns.clone();
    }
    let name = project.name_any();
    config.namespaces.project.render(|key| match key {
        "name" => Some(Value::Text(&name)),
        other => config.variable(other),
    })
}

/// The child namespace `child` of the project namespace `namespace`.
pub fn child_namespace(namespace: &str, child: &str) -> String {
    format!("{namespace}-{child}")
}

/// Every namespace a project manages: its namespace, then each child namespace.
pub fn project_namespaces(config: &Config, project: &Project) -> Vec<String> {
    let namespace = project_namespace(config, project);
    let mut all = vec![namespace.clone()];
    all.extend(
        project
            .spec
            .child_namespaces
            .iter()
            .map(|c| child_namespace(&namespace, c)),
    );
    all
}

impl Directory {
    /// Builds the directory without Projects; see [`Directory::build_with_projects`].
    pub fn build<'a>(
        config: &Config,
        users: impl IntoIterator<Item = &'a User>,
        sessions: impl IntoIterator<Item = &'a Session>,
        claims: impl IntoIterator<Item = &'a PersistentVolumeClaim>,
        managed: Option<&HashSet<String>>,
    ) -> (Self, Vec<DirectoryProblem>) {
        Self::build_with_projects(config, users, sessions, [], claims, managed)
    }

    /// Builds the directory. `managed` is the set of namespaces labelled
    /// `homestead.dev/managed=true` in a cluster; `None` (offline) trusts the templates.
    /// Objects that cannot be used are left out and reported; the rest still count.
    pub fn build_with_projects<'a>(
        config: &Config,
        users: impl IntoIterator<Item = &'a User>,
        sessions: impl IntoIterator<Item = &'a Session>,
        projects: impl IntoIterator<Item = &'a Project>,
        claims: impl IntoIterator<Item = &'a PersistentVolumeClaim>,
        managed: Option<&HashSet<String>>,
    ) -> (Self, Vec<DirectoryProblem>) {
        let mut dir = Self::default();
        let mut problems = Vec::new();
        let is_managed = |ns: &str| managed.is_none_or(|m| m.contains(ns));

        let mut users: Vec<&User> = users.into_iter().collect();
        users.sort_by_key(|u| u.name_any());
        for user in users {
            let object = format!("User/{}", user.name_any());
            match user_entry(config, user) {
                Err(reason) => problems.push(DirectoryProblem { object, reason }),
                Ok(entry) => {
                    if dir.users.contains_key(&entry.username) {
                        problems.push(DirectoryProblem {
                            object,
                            reason: format!(
                                "username {:?} is already taken by another User",
                                entry.username
                            ),
                        });
                        continue;
                    }
                    let entry = Arc::new(entry);
                    dir.holders
                        .entry(entry.namespace.clone())
                        .or_insert_with(|| format!("User/{}", user.name_any()));
                    if is_managed(&entry.namespace)
                        && let Err(reason) =
                            dir.claim(&entry.namespace, NamespaceOwner::User(entry.clone()))
                    {
                        problems.push(DirectoryProblem { object, reason });
                        continue;
                    }
                    dir.names.insert(entry.name.clone(), entry.clone());
                    dir.uids.entry(entry.uid).or_insert_with(|| entry.clone());
                    dir.gids.entry(entry.gid).or_insert_with(|| entry.clone());
                    dir.users.insert(entry.username.clone(), entry);
                }
            }
        }

        let mut sessions: Vec<&Session> = sessions.into_iter().collect();
        sessions.sort_by_key(|s| s.name_any());
        for session in sessions {
            let object = format!("Session/{}", session.name_any());
            match session_entry(config, session) {
                Err(reason) => problems.push(DirectoryProblem { object, reason }),
                Ok(entry) => {
                    dir.holders
                        .entry(entry.namespace.clone())
                        .or_insert_with(|| object.clone());
                    if is_managed(&entry.namespace)
                        && let Err(reason) = dir.claim(
                            &entry.namespace.clone(),
                            NamespaceOwner::Session(Arc::new(entry)),
                        )
                    {
                        problems.push(DirectoryProblem { object, reason });
                    }
                }
            }
        }

        let mut projects: Vec<&Project> = projects.into_iter().collect();
        projects.sort_by_key(|p| p.name_any());
        for project in projects {
            let object = format!("Project/{}", project.name_any());
            let entry = match project_entry(config, &dir, project) {
                Ok(entry) => Arc::new(entry),
                Err(reason) => {
                    problems.push(DirectoryProblem { object, reason });
                    continue;
                }
            };
            for namespace in &entry.namespaces {
                dir.holders
                    .entry(namespace.clone())
                    .or_insert_with(|| object.clone());
                if is_managed(namespace)
                    && let Err(reason) =
                        dir.claim(namespace, NamespaceOwner::Project(entry.clone()))
                {
                    problems.push(DirectoryProblem {
                        object: object.clone(),
                        reason,
                    });
                }
            }
        }

        for pvc in claims {
            let Some(dataset) = pvc.labels().get(LABEL_DATASET) else {
                continue;
            };
            let ns = pvc.namespace().unwrap_or_default();
            let object = format!("PersistentVolumeClaim/{ns}/{}", pvc.name_any());
            if !names::is_dns1123_label(dataset)
                || dataset.len() > 63 - names::VOLUME_DATASET_PREFIX.len()
            {
                problems.push(DirectoryProblem {
                    object,
                    reason: format!(
                        "dataset name {dataset:?} is not a DNS-1123 label of at most 55 characters"
                    ),
                });
                continue;
            }
            if !dir.namespaces.contains_key(&ns) {
                continue;
            }
            let list = dir.datasets.entry(ns).or_default();
            if list.iter().any(|d| &d.name == dataset) {
                problems.push(DirectoryProblem {
                    object,
                    reason: format!("dataset {dataset:?} is already claimed in this namespace"),
                });
                continue;
            }
            list.push(Dataset {
                name: dataset.clone(),
                claim: pvc.name_any(),
            });
        }
        for list in dir.datasets.values_mut() {
            list.sort();
        }
        (dir, problems)
    }

    /// Reads a directory file (see [`DirectoryObjects::from_yaml`]) and builds it offline.
    pub fn from_yaml(
        config: &Config,
        text: &str,
    ) -> Result<(Self, Vec<DirectoryProblem>), DirectoryError> {
        let objects = DirectoryObjects::from_yaml(text)?;
        Ok(Self::build_with_projects(
            config,
            &objects.users,
            &objects.sessions,
            &objects.projects,
            &objects.claims,
            None,
        ))
    }

    fn claim(&mut self, namespace: &str, owner: NamespaceOwner) -> Result<(), String> {
        if let Some(existing) = self.namespaces.get(namespace) {
            let by = existing.object();
            return Err(format!(
                "namespace {namespace:?} is already managed by {by}"
            ));
        }
        self.namespaces.insert(namespace.to_owned(), owner);
        Ok(())
    }

    /// Who owns a managed namespace; `None` for namespaces homestead does not manage.
    pub fn namespace(&self, namespace: &str) -> Option<&NamespaceOwner> {
        self.namespaces.get(namespace)
    }

    /// A user by username.
    pub fn user(&self, username: &str) -> Option<&Arc<UserEntry>> {
        self.users.get(username)
    }

    /// A user by object name.
    pub fn user_by_name(&self, name: &str) -> Option<&Arc<UserEntry>> {
        self.names.get(name)
    }

    /// The user with `uid`, if any.
    pub fn user_with_uid(&self, uid: i64) -> Option<&Arc<UserEntry>> {
        self.uids.get(&uid)
    }

    /// The user whose primary gid is `gid`, if any.
    pub fn user_with_gid(&self, gid: i64) -> Option<&Arc<UserEntry>> {
        self.gids.get(&gid)
    }

    /// The User, Session or Project (`User/<name>`, `Session/<name>`, `Project/<name>`)
    /// whose namespace is `namespace`, managed yet or not.
    pub fn namespace_holder(&self, namespace: &str) -> Option<&str> {
        self.holders.get(namespace).map(String::as_str)
    }

    /// Dataset claims of a namespace, sorted by name.
    pub fn datasets(&self, namespace: &str) -> &[Dataset] {
        self.datasets
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Number of managed namespaces.
    pub fn namespace_count(&self) -> usize {
        self.namespaces.len()
    }
}

fn user_entry(config: &Config, user: &User) -> Result<UserEntry, String> {
    let spec = &user.spec;
    let name = names::object_name(&spec.username).map_err(|e| e.to_string())?;
    if spec.uid <= 0 {
        return Err(format!("spec.uid {} must be positive", spec.uid));
    }
    if spec.gid <= 0 {
        return Err(format!("spec.gid {} must be positive", spec.gid));
    }
    if let Some(bad) = spec.supplemental_groups.iter().find(|g| **g <= 0) {
        return Err(format!(
            "spec.supplementalGroups has {bad}; groups must be positive"
        ));
    }
    let namespace = user_namespace(config, spec)?;
    if !names::is_dns1123_label(&namespace) {
        return Err(format!(
            "namespace {namespace:?} is not a valid namespace name"
        ));
    }
    Ok(UserEntry {
        name,
        username: spec.username.clone(),
        uid: spec.uid,
        gid: spec.gid,
        supplemental_groups: spec.supplemental_groups.clone(),
        disabled: spec.disabled,
        namespace,
    })
}

fn session_entry(config: &Config, session: &Session) -> Result<SessionEntry, String> {
    let spec = &session.spec;
    if spec.gid <= 0 {
        return Err(format!("spec.gid {} must be positive", spec.gid));
    }
    if !spec.data_directory.starts_with('/') {
        return Err(format!(
            "spec.dataDirectory {:?} must be an absolute path",
            spec.data_directory
        ));
    }
    let namespace = session_namespace(config, spec);
    if !names::is_dns1123_label(&namespace) {
        return Err(format!(
            "namespace {namespace:?} is not a valid namespace name"
        ));
    }
    Ok(SessionEntry {
        name: session.name_any(),
        namespace,
        gid: spec.gid,
        data_directory: spec.data_directory.clone(),
        members: spec.members.clone(),
        default_member: spec
            .default_member
            .clone()
            .or_else(|| spec.members.first().cloned()),
        lifecycle: if spec.ended {
            Lifecycle::Ended
        } else {
            session
                .status
                .as_ref()
                .and_then(|s| s.lifecycle)
                .unwrap_or_default()
        },
        ended_by_source: spec.ended,
        end_date: spec.end_date.clone(),
    })
}

fn project_entry(
    config: &Config,
    dir: &Directory,
    project: &Project,
) -> Result<ProjectEntry, String> {
    let spec = &project.spec;
    let gid = match spec.gid {
        Some(gid) if gid <= 0 => return Err(format!("spec.gid {gid} must be positive")),
        Some(gid) => gid,
        None => match dir.user(&spec.owner) {
            Some(owner) => owner.gid,
            None => {
                return Err(format!(
                    "the owner {:?} has no User, so the project has no gid",
                    spec.owner
                ));
            }
        },
    };
    let namespaces = project_namespaces(config, project);
    if let Some(bad) = namespaces.iter().find(|ns| !names::is_dns1123_label(ns)) {
        return Err(format!("namespace {bad:?} is not a valid namespace name"));
    }
    let mut roles = vec![(spec.owner.clone(), config.projects.owner_role.clone())];
    for member in &spec.members {
        if !roles.iter().any(|(u, _)| *u == member.username) {
            roles.push((member.username.clone(), member.role.clone()));
        }
    }
    Ok(ProjectEntry {
        name: project.name_any(),
        namespaces,
        gid,
        owner: spec.owner.clone(),
        roles,
        all_users: spec.all_users.as_ref().map(|a| a.role.clone()),
        storage: spec.storage.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECTORY: &str = r#"
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: ada}
spec: {username: ada, uid: 1001, gid: 1001, supplementalGroups: [2000]}
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: ada-again}
spec: {username: ada, uid: 1009, gid: 1009}
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: root}
spec: {username: root, uid: 0, gid: 0}
---
apiVersion: homestead.dev/v1alpha1
kind: Session
metadata: {name: cm37235-2}
spec:
  proposalCode: cm
  proposalNumber: 37235
  visit: 2
  instrument: i03
  dataDirectory: /dls/i03/data/2024/cm37235-2/
  gid: 159620
  members: [ada, bob]
---
{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
 "metadata": {"name": "imagenet-claim", "namespace": "cm37235-2", "labels": {"homestead.dev/dataset": "imagenet"}}}
"#;

    #[test]
    fn builds_namespaces_users_and_datasets() {
        let config = Config::default();
        let (dir, problems) = Directory::from_yaml(&config, DIRECTORY).unwrap();
        assert!(
            matches!(dir.namespace("home-ada"), Some(NamespaceOwner::User(u)) if u.uid == 1001)
        );
        let Some(NamespaceOwner::Session(s)) = dir.namespace("cm37235-2") else {
            panic!("session namespace missing");
        };
        assert!(s.is_member("bob") && !s.is_member("eve"));
        assert_eq!(s.default_member.as_deref(), Some("ada"));
        assert_eq!(
            dir.datasets("cm37235-2"),
            &[Dataset {
                name: "imagenet".into(),
                claim: "imagenet-claim".into()
            }]
        );
        assert!(dir.namespace("default").is_none());
        assert_eq!(dir.user_by_name("ada").map(|u| u.uid), Some(1001));
        assert_eq!(
            dir.user_with_uid(1001).map(|u| u.name.as_str()),
            Some("ada")
        );
        assert_eq!(dir.namespace_holder("cm37235-2"), Some("Session/cm37235-2"));
        assert_eq!(dir.namespace_holder("home-ada"), Some("User/ada"));
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("User/ada-again") && problems[0].contains("already taken"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("User/root") && problems[1].contains("must be positive"),
            "{problems:?}"
        );
    }

    #[test]
    fn only_managed_namespaces_count_in_a_cluster() {
        let config = Config::default();
        let objects = DirectoryObjects::from_yaml(DIRECTORY).unwrap();
        let managed: HashSet<String> = ["cm37235-2".to_owned()].into();
        let (dir, _) = Directory::build(
            &config,
            &objects.users,
            &objects.sessions,
            &objects.claims,
            Some(&managed),
        );
        assert!(
            dir.namespace("home-ada").is_none(),
            "not labelled managed, so not managed"
        );
        assert!(dir.user("ada").is_some(), "users are still known");
        assert!(dir.namespace("cm37235-2").is_some());
    }

    #[test]
    fn bad_documents_are_named() {
        let err =
            DirectoryObjects::from_yaml("kind: User\nspec: {}\n---\nkind: Pod\n").unwrap_err();
        assert!(
            err.to_string().starts_with("directory document 0: User:"),
            "{err}"
        );
        let err = DirectoryObjects::from_yaml("{\"kind\": \"Pod\"}").unwrap_err();
        assert!(err.to_string().contains("kind Pod is not one of"), "{err}");
    }

    #[test]
    fn lists_are_unpacked() {
        let text = r#"{"kind":"List","items":[{"kind":"User","metadata":{"name":"x"},"spec":{"username":"x","uid":5,"gid":5}}]}"#;
        assert_eq!(DirectoryObjects::from_yaml(text).unwrap().users.len(), 1);
    }

    #[test]
    fn namespace_templates_pad() {
        let config = Config::from_yaml(
            "templateVariables: {tenant: 3}\nnamespaces: {user: 't{tenant:03}-u{uid:06}'}",
        )
        .unwrap();
        let spec = UserSpec {
            username: "ada".into(),
            uid: 42,
            gid: 42,
            ..Default::default()
        };
        assert_eq!(user_namespace(&config, &spec).unwrap(), "t003-u000042");
    }
}
