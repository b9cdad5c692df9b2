//! What the controller wants to exist for a `User` or a `Session`: every object, exactly as
//! it is server-side applied, plus what must be absent. Pure: the reconcilers feed it the
//! resource, the configuration and the few cluster objects it depends on (the sources of
//! cloned Secrets, the members' `User`s) and apply what it returns.

mod binding;
mod intent;
mod objects;
mod project;
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

pub use binding::{VolumeHeal, unbound_claims, volumes_to_heal};
pub use intent::{ANNOTATION_APPLIED, is_met, reduce};
pub use objects::{Kind, Object, ObjectKey};
pub use project::{
    PROJECT_CONFIG_MAP, PROJECT_ROLE_BINDING_PREFIX, project_gid, project_objects,
    project_role_binding, project_roles,
};
pub use session::session_objects;
pub use storage::{apply_order, claim_ref_for, keep_existing_storage, pv_name, storage_objects};
pub use user::user_objects;

use crate::config::SecretRef;
use crate::names::{LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_PROJECT, LABEL_SESSION, LABEL_USER};
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

/// The kinds of owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// A `User`.
    User,
    /// A `Session`.
    Session,
    /// A `Project`.
    Project,
}

impl OwnerKind {
    /// `User` or `Session`.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::User => "User",
            OwnerKind::Session => "Session",
            OwnerKind::Project => "Project",
        }
    }

    /// The label naming the owner on a namespace and its objects.
    pub fn label(self) -> &'static str {
        match self {
            OwnerKind::User => LABEL_USER,
            OwnerKind::Session => LABEL_SESSION,
            OwnerKind::Project => LABEL_PROJECT,
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

    /// The owner reference namespaced children and the owner's namespace carry (a
    /// cluster-scoped owner may own them). The namespace carries it so that homestead
    /// recognises the namespaces it made by the owner's uid, which nobody can know before
    /// the owner exists ([`namespace_ownership`]); its fate is still the finalizer's
    /// decision (with `deleteNamespaces` off, cleanup removes the reference first).
    /// PersistentVolumes carry none: they are never deleted.
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

/// Whether an existing namespace is the one homestead made for an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceOwnership {
    /// homestead's labels for this owner and an owner reference naming its uid.
    Owned,
    /// homestead's labels for this owner and no homestead owner reference, made before
    /// homestead set one: objects homestead made in it name the owner's uid. It is adopted
    /// (the next apply adds the reference).
    MadeBeforeReferences,
    /// Not this owner's: never adopted, nothing in it is touched. Says why.
    NotOwned(String),
}

/// Decides whether the namespace with `meta` is the one homestead made for `owner`: its
/// labels must say so, and — since anyone able to create or label a namespace could write
/// labels — its `ownerReferences` must name the owner's uid (a namespace created for a
/// User or Session that does not exist yet cannot). A labelled namespace without any
/// homestead owner reference is adopted only when `children_name_owner`: objects homestead
/// made in it carry owner references with the owner's uid (namespaces homestead made
/// before it referenced its owner).
pub fn namespace_ownership(
    owner: &Owner,
    meta: &kube::core::ObjectMeta,
    children_name_owner: bool,
) -> NamespaceOwnership {
    let kind = owner.kind.as_str();
    let name = &owner.name;
    if !owner.created(meta.labels.as_ref()) {
        return NamespaceOwnership::NotOwned(format!(
            "its labels do not say homestead created it for {kind} {name}"
        ));
    }
    let homestead_refs: Vec<&OwnerReference> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.api_version.starts_with(&format!("{GROUP}/")))
        .collect();
    if homestead_refs
        .iter()
        .any(|r| r.kind == kind && r.uid == owner.uid && !owner.uid.is_empty())
    {
        return NamespaceOwnership::Owned;
    }
    if let Some(other) = homestead_refs.first() {
        return NamespaceOwnership::NotOwned(format!(
            "it carries homestead's labels for {kind} {name}, but its ownerReferences name {} {} (uid {}), not this {kind} (uid {})",
            other.kind, other.name, other.uid, owner.uid
        ));
    }
    if children_name_owner {
        return NamespaceOwnership::MadeBeforeReferences;
    }
    NamespaceOwnership::NotOwned(format!(
        "it carries homestead's labels for {kind} {name}, but no ownerReference names this {kind} (uid {}): someone else created or labelled it",
        owner.uid
    ))
}

/// True when a (live) object's `metadata.ownerReferences` name `owner`'s uid.
pub fn references_owner(owner: &Owner, object: &serde_json::Value) -> bool {
    !owner.uid.is_empty()
        && object
            .pointer("/metadata/ownerReferences")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|refs| {
                refs.iter().any(|r| {
                    r.get("uid").and_then(serde_json::Value::as_str) == Some(owner.uid.as_str())
                })
            })
}

/// The JSON Patch that removes `owner`'s reference from a namespace (`meta` as it is), so
/// that the garbage collector leaves the namespace alone once the owner is gone; `None`
/// when there is none. The `test` makes it fail rather than remove another entry.
pub fn release_namespace_patch(
    owner: &Owner,
    meta: &kube::core::ObjectMeta,
) -> Option<serde_json::Value> {
    let index = meta
        .owner_references
        .as_ref()?
        .iter()
        .position(|r| r.uid == owner.uid && !owner.uid.is_empty())?;
    Some(serde_json::json!([
        {"op": "test", "path": format!("/metadata/ownerReferences/{index}/uid"), "value": owner.uid},
        {"op": "remove", "path": format!("/metadata/ownerReferences/{index}")},
    ]))
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
            (CloneTarget::Users, OwnerKind::Session | OwnerKind::Project)
            | (CloneTarget::Sessions, OwnerKind::User | OwnerKind::Project) => false,
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

/// User, Session and Project fixtures for tests, here and in the binary crate's tests.
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
    fn namespaces_are_recognised_by_the_owners_uid() {
        let ada = Owner {
            kind: OwnerKind::User,
            name: "ada".into(),
            uid: "uid-ada".into(),
        };
        let reference = |kind: &str, name: &str, uid: &str| OwnerReference {
            api_version: format!("{GROUP}/{VERSION}"),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let meta = |labels: Option<BTreeMap<String, String>>, refs: Vec<OwnerReference>| {
            kube::core::ObjectMeta {
                name: Some("home-ada".into()),
                labels,
                owner_references: (!refs.is_empty()).then_some(refs),
                ..Default::default()
            }
        };
        let ours = Some(ada.namespace_labels());
        let foreign_ref = OwnerReference {
            api_version: "apps/v1".into(),
            ..reference("Deployment", "x", "uid-x")
        };
        // (labels, owner references, children name ada's uid, decision or words of why not)
        let table: Vec<(
            _,
            Vec<OwnerReference>,
            bool,
            Result<NamespaceOwnership, &str>,
        )> = vec![
            (
                ours.clone(),
                vec![ada.reference()],
                false,
                Ok(NamespaceOwnership::Owned),
            ),
            (
                ours.clone(),
                vec![foreign_ref.clone(), ada.reference()],
                false,
                Ok(NamespaceOwnership::Owned),
            ),
            // Made by homestead before namespaces carried the reference.
            (
                ours.clone(),
                vec![],
                true,
                Ok(NamespaceOwnership::MadeBeforeReferences),
            ),
            // An attacker's namespace for a future User: labels, no uid to name.
            (
                ours.clone(),
                vec![],
                false,
                Err("no ownerReference names this User (uid uid-ada)"),
            ),
            (
                ours.clone(),
                vec![foreign_ref],
                false,
                Err("no ownerReference names this User"),
            ),
            // A former User of the same name (another uid), even with evidence inside.
            (
                ours.clone(),
                vec![reference("User", "ada", "uid-old")],
                true,
                Err("name User ada (uid uid-old), not this User (uid uid-ada)"),
            ),
            (
                ours.clone(),
                vec![reference("Session", "ada", "uid-ada")],
                true,
                Err("name Session ada"),
            ),
            // A reference without labels is not enough either.
            (
                None,
                vec![ada.reference()],
                true,
                Err("its labels do not say homestead created it for User ada"),
            ),
        ];
        for (labels, refs, children, want) in table {
            let got = namespace_ownership(&ada, &meta(labels.clone(), refs.clone()), children);
            match want {
                Ok(want) => assert_eq!(got, want, "{labels:?} {refs:?} {children}"),
                Err(words) => match got {
                    NamespaceOwnership::NotOwned(why) => {
                        assert!(why.contains(words), "{words:?} in {why:?}")
                    }
                    other => panic!("{labels:?} {refs:?} {children}: {other:?}"),
                },
            }
        }
        let no_uid = Owner {
            uid: String::new(),
            ..ada.clone()
        };
        assert!(matches!(
            namespace_ownership(&no_uid, &meta(ours, vec![no_uid.reference()]), false),
            NamespaceOwnership::NotOwned(_)
        ));
    }

    #[test]
    fn references_and_their_release() {
        let ada = Owner {
            kind: OwnerKind::User,
            name: "ada".into(),
            uid: "uid-ada".into(),
        };
        let child = serde_json::json!({"metadata": {"ownerReferences": [ada.reference()]}});
        assert!(references_owner(&ada, &child));
        let other = Owner {
            uid: "uid-other".into(),
            ..ada.clone()
        };
        assert!(!references_owner(&other, &child));
        assert!(!references_owner(
            &ada,
            &serde_json::json!({"metadata": {}})
        ));
        let meta = kube::core::ObjectMeta {
            owner_references: Some(vec![other.reference(), ada.reference()]),
            ..Default::default()
        };
        assert_eq!(
            release_namespace_patch(&ada, &meta).unwrap(),
            serde_json::json!([
                {"op": "test", "path": "/metadata/ownerReferences/1/uid", "value": "uid-ada"},
                {"op": "remove", "path": "/metadata/ownerReferences/1"},
            ])
        );
        assert_eq!(
            release_namespace_patch(&ada, &kube::core::ObjectMeta::default()),
            None
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
