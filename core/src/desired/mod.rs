//! What the controller wants to exist for a `User` or a `Session`: every object, exactly as
//! it is server-side applied, plus what must be absent. Pure: the reconcilers feed it the
//! resource, the configuration and the few cluster objects it depends on (the sources of
//! cloned Secrets, the members' `User`s) and apply what it returns.

mod intent;
mod objects;
mod session;
mod storage;
mod user;

/// Lookups the planners' tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{DesiredObjects, Kind, Object};

    /// Every planned object's key, for failure messages.
    pub(crate) fn keys(plan: &DesiredObjects) -> Vec<String> {
        plan.objects.iter().map(|o| o.key().to_string()).collect()
    }

    /// The planned object of `kind` named `name`; panics (in a test) when it is missing.
    pub(crate) fn find<'a>(plan: &'a DesiredObjects, kind: Kind, name: &str) -> &'a Object {
        plan.objects
            .iter()
            .find(|o| o.kind() == kind && o.key().name == name)
            .unwrap_or_else(|| panic!("no {kind:?} {name} in {:#?}", keys(plan)))
    }
}

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

pub use intent::{ANNOTATION_APPLIED, is_met, reduce};
pub use objects::{Kind, Object, ObjectKey};
pub use session::session_objects;
pub use storage::{claim_ref_for, keep_existing_storage, pv_name, storage_objects};
pub use user::user_objects;

use crate::config::SecretRef;
use crate::names::{LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_SESSION, LABEL_USER};
use crate::resources::{GROUP, VERSION};

/// Value of `app.kubernetes.io/managed-by` on everything homestead creates.
pub const MANAGED_BY: &str = "homestead";
/// The field manager of every write homestead makes for its own objects: the controller's
/// objects and status, the webhook configurations and the certificate Secret. Each identity
/// source writes under its own ([`crate::sources::Source::FIELD_MANAGER`]), so that what a
/// source owns stays apart from what the controller owns.
pub const FIELD_MANAGER: &str = "homestead";
/// Finalizer on `User`s and `Session`s.
pub const FINALIZER: &str = "homestead.dev/cleanup";
/// RoleBinding giving a user their own namespace.
pub const OWNER_ROLE_BINDING: &str = "homestead-owner";
/// ConfigMap with a user's details.
pub const USER_CONFIG_MAP: &str = "homestead";
/// ConfigMap with a session's details.
pub const SESSION_CONFIG_MAP: &str = "sessionspaces";
/// ServiceAccount (and its RoleBinding) running a session's workflows.
pub const WORKFLOW_SERVICE_ACCOUNT: &str = "argo-workflow";
/// RoleBinding giving a session's members its namespace.
pub const MEMBER_ROLE_BINDING: &str = "visit-member";
/// Secret cloned into every session namespace from `controller.artifactSecret`.
pub const ARTIFACT_SECRET: &str = "artifact-s3";
/// Name of the configured ResourceQuota and LimitRange.
pub const QUOTA_NAME: &str = "homestead";

/// The resource a set of objects belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// User or Session.
    pub kind: OwnerKind,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid` (owner references need it).
    pub uid: String,
}

/// The two kinds of owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// A `User`.
    User,
    /// A `Session`.
    Session,
}

impl OwnerKind {
    /// `User` or `Session`.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::User => "User",
            OwnerKind::Session => "Session",
        }
    }

    /// The label naming the owner on a namespace and its objects.
    pub fn label(self) -> &'static str {
        match self {
            OwnerKind::User => LABEL_USER,
            OwnerKind::Session => LABEL_SESSION,
        }
    }
}

impl Owner {
    /// Labels on every object of this owner.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
            (self.kind.label().to_owned(), self.name.clone()),
        ])
    }

    /// Labels of the owner's namespace: the object labels plus `homestead.dev/managed=true`.
    pub fn namespace_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels();
        labels.insert(LABEL_MANAGED.to_owned(), "true".to_owned());
        labels
    }

    /// The owner reference namespaced children carry (a cluster-scoped owner may own
    /// namespaced objects). Namespaces and PersistentVolumes carry none: the namespace's
    /// fate is the finalizer's decision, and PersistentVolumes are never deleted.
    pub fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: format!("{GROUP}/{VERSION}"),
            kind: self.kind.as_str().to_owned(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: Some(true),
            block_owner_deletion: None,
        }
    }

    /// True when a namespace's labels say this owner created it.
    pub fn created(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        labels.is_some_and(|l| {
            l.get(LABEL_MANAGED_BY).map(String::as_str) == Some(MANAGED_BY)
                && l.get(self.kind.label()) == Some(&self.name)
        })
    }
}

/// Source Secrets of clones, by namespace and name, as read from the cluster.
pub type SecretSources = BTreeMap<(String, String), Secret>;

/// Everything one owner should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredObjects {
    /// The namespace (also `objects[0]`).
    pub namespace: String,
    /// Objects to apply, the Namespace first, then in dependency order.
    pub objects: Vec<Object>,
    /// Objects that must not exist (a disabled user's RoleBinding).
    pub absent: Vec<ObjectKey>,
    /// For sessions: the member claims wanted; any other homestead member claim in the
    /// namespace is stale and is deleted (its PersistentVolume stays).
    pub member_claims: Option<Vec<String>>,
    /// What could not be planned (a member without a User, a missing clone source); the
    /// rest of the plan still applies.
    pub problems: Vec<String>,
}

/// Why nothing at all can be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredObjectsError {
    /// The resource's namespace or names cannot be formed.
    #[error("{0}")]
    Invalid(String),
}

/// The secret clones configured for this kind of owner, as (source, name of the copy).
pub fn clone_sources(config: &crate::config::Config, kind: OwnerKind) -> Vec<(SecretRef, String)> {
    use crate::config::CloneTarget;
    let mut out: Vec<(SecretRef, String)> = config
        .controller
        .secret_clones
        .iter()
        .filter(|c| match (c.to, kind) {
            (CloneTarget::All, _)
            | (CloneTarget::Users, OwnerKind::User)
            | (CloneTarget::Sessions, OwnerKind::Session) => true,
            (CloneTarget::Users, OwnerKind::Session) | (CloneTarget::Sessions, OwnerKind::User) => {
                false
            }
        })
        .map(|c| {
            (
                c.from.clone(),
                c.name.clone().unwrap_or_else(|| c.from.name.clone()),
            )
        })
        .collect();
    if kind == OwnerKind::Session
        && let Some(from) = &config.controller.artifact_secret
    {
        out.push((from.clone(), ARTIFACT_SECRET.to_owned()));
    }
    out
}

/// User and Session fixtures for tests, here and in the binary crate's tests.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use crate::resources::{Session, SessionSpec, User, UserSpec};

    pub fn user(username: &str, uid: i64) -> User {
        let name = crate::names::object_name(username).unwrap();
        let mut user = User::new(
            &name,
            UserSpec {
                username: username.into(),
                uid,
                gid: uid,
                supplemental_groups: vec![2000, 2001],
                ..Default::default()
            },
        );
        user.metadata.uid = Some(format!("uid-{name}"));
        user
    }

    pub fn session(members: &[&str]) -> Session {
        let mut session = Session::new(
            "cm37235-2",
            SessionSpec {
                proposal_code: "cm".into(),
                proposal_number: 37235,
                visit: 2,
                instrument: "i03".into(),
                start_date: "2024-03-15 9:00:00.0".into(),
                end_date: "2034-05-24 9:00:00.0".into(),
                data_directory: "/dls/i03/data/2024/cm37235-2/".into(),
                gid: 159620,
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                default_member: None,
                ended: false,
            },
        );
        session.metadata.uid = Some("uid-session".into());
        session
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn owner_labels_and_reference() {
        let owner = Owner {
            kind: OwnerKind::Session,
            name: "cm37235-2".into(),
            uid: "u1".into(),
        };
        let labels = owner.namespace_labels();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_SESSION], "cm37235-2");
        assert_eq!(labels[LABEL_MANAGED_BY], "homestead");
        let r = owner.reference();
        assert_eq!(
            (r.api_version.as_str(), r.kind.as_str(), r.uid.as_str()),
            ("homestead.dev/v1alpha1", "Session", "u1")
        );
        assert_eq!(r.controller, Some(true));
    }

    #[test]
    fn created_needs_both_labels_naming_this_owner() {
        let owner = Owner {
            kind: OwnerKind::User,
            name: "ada".into(),
            uid: String::new(),
        };
        assert!(owner.created(Some(&owner.namespace_labels())));
        assert!(!owner.created(None));
        let mut other = owner.namespace_labels();
        other.insert(LABEL_USER.into(), "bob".into());
        assert!(!owner.created(Some(&other)), "another user's namespace");
        let mut unmanaged = owner.namespace_labels();
        unmanaged.remove(LABEL_MANAGED_BY);
        assert!(!owner.created(Some(&unmanaged)), "labelled by hand");
        let session = Owner {
            kind: OwnerKind::Session,
            ..owner.clone()
        };
        assert!(
            !session.created(Some(&owner.namespace_labels())),
            "a user namespace is not a session's"
        );
    }

    #[test]
    fn clones_are_filtered_by_target() {
        let config = Config::from_yaml(
            r#"
controller:
  secretClones:
    - {from: {namespace: infra, name: a}, to: users}
    - {from: {namespace: infra, name: b}, name: bee, to: sessions}
    - {from: {namespace: infra, name: c}}
  artifactSecret: {namespace: argo, name: minio}
"#,
        )
        .unwrap();
        let names = |kind| {
            clone_sources(&config, kind)
                .into_iter()
                .map(|(from, name)| format!("{}/{}->{name}", from.namespace, from.name))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(OwnerKind::User), ["infra/a->a", "infra/c->c"]);
        assert_eq!(
            names(OwnerKind::Session),
            ["infra/b->bee", "infra/c->c", "argo/minio->artifact-s3"]
        );
    }
}
