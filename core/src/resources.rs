//! The `User`, `Session` and `Project` custom resources (group `homestead.dev`, version
//! `v1alpha1`).
//!
//! All are cluster-scoped and have a status subresource; User and Session share one status
//! shape, a Project's adds its effective gid and its number of members.

// kube-derive takes one `printcolumn(...)` per column, each with its own `type_`.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::HookEvent;

/// API group of every homestead resource, label and annotation.
pub const GROUP: &str = "homestead.dev";
/// API version of `User` and `Session`.
pub const VERSION: &str = "v1alpha1";

/// One person (or a team account) with a Unix identity.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "homestead.dev",
    version = "v1alpha1",
    kind = "User",
    plural = "users",
    singular = "user",
    status = "ResourceStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "homestead",
    doc = "A person (or team account) whose pods run as their Unix uid and gid",
    printcolumn(name = "Username", type_ = "string", json_path = ".spec.username"),
    printcolumn(name = "UID", type_ = "integer", json_path = ".spec.uid"),
    printcolumn(name = "GID", type_ = "integer", json_path = ".spec.gid"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// Login name as the API server reports it (after the configured prefix is stripped) and
    /// as the filesystem knows it. `metadata.name` is its DNS-1123 form.
    pub username: String,
    /// Unix user id. Must be positive.
    pub uid: i64,
    /// Primary Unix group id. Must be positive.
    pub gid: i64,
    /// Further Unix groups the user's pods carry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supplemental_groups: Vec<i64>,
    /// A disabled user keeps their namespace and data, loses access, and their pods are refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Overrides the namespace name the configured template would give.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Overrides the configured storage paths of this user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<UserStorage>,
}

/// Per-user storage overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserStorage {
    /// Overrides for the private volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private: Option<StorageOverride>,
    /// Overrides for the shared volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<StorageOverride>,
}

/// Overrides of one configured storage class of data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageOverride {
    /// Backend path used instead of the configured `pathTemplate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Requested capacity used instead of the configured size, e.g. `100Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// One experiment visit shared by several users.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "homestead.dev",
    version = "v1alpha1",
    kind = "Session",
    plural = "sessions",
    singular = "session",
    status = "ResourceStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "homestead",
    doc = "An experiment visit whose members share a namespace, a Unix group and a data directory",
    printcolumn(name = "Proposal", type_ = "string", json_path = ".spec.proposalCode"),
    printcolumn(name = "Number", type_ = "integer", json_path = ".spec.proposalNumber"),
    printcolumn(name = "Visit", type_ = "integer", json_path = ".spec.visit"),
    printcolumn(name = "Instrument", type_ = "string", json_path = ".spec.instrument"),
    printcolumn(name = "GID", type_ = "integer", json_path = ".spec.gid"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Lifecycle", type_ = "string", json_path = ".status.lifecycle"),
    printcolumn(name = "Ended", type_ = "boolean", json_path = ".spec.ended"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// Proposal code, e.g. `cm`.
    pub proposal_code: String,
    /// Proposal number, e.g. `37235`.
    pub proposal_number: u64,
    /// Visit number within the proposal, e.g. `2`.
    pub visit: u64,
    /// Instrument (beamline), e.g. `i03`.
    #[serde(default)]
    pub instrument: String,
    /// Scheduled start, kept as written (e.g. `2024-03-15 9:00:00.0`).
    #[serde(default)]
    pub start_date: String,
    /// Scheduled end, kept as written.
    #[serde(default)]
    pub end_date: String,
    /// Root directory of the visit's data, e.g. `/dls/i03/data/2024/cm37235-2/`.
    pub data_directory: String,
    /// Unix group id of the session. Must be positive.
    pub gid: i64,
    /// Usernames of the members.
    #[serde(default)]
    pub members: Vec<String>,
    /// Member whose identity unattributed pods take when the configuration allows it
    /// (`unattributedPods: defaultMember`); the first member when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_member: Option<String>,
    /// The visit is over as far as its source knows: the ISPyB sync sets it when the visit
    /// leaves the sync window or the database, and clears it if the visit comes back. The
    /// Session, its namespace and its data are kept; nothing is deleted because of it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ended: bool,
}

/// A namespace that people own, share and hand over (a team's or a group's).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "homestead.dev",
    version = "v1alpha1",
    kind = "Project",
    plural = "projects",
    singular = "project",
    status = "ProjectStatus",
    derive = "PartialEq",
    derive = "Default",
    category = "homestead",
    doc = "A namespace owned by one user and shared with members, whose pods run as the person with the project's Unix group",
    printcolumn(name = "Owner", type_ = "string", json_path = ".spec.owner"),
    printcolumn(name = "Members", type_ = "integer", json_path = ".status.members"),
    printcolumn(name = "GID", type_ = "integer", json_path = ".status.gid"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".status.namespace"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Username of the owner: bound to the configured owner role, and the default gid.
    pub owner: String,
    /// People the project is shared with, each with a role (a key of `projects.roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<ProjectMember>,
    /// Share the project with every User (present and future) with this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_users: Option<AllUsers>,
    /// The project's Unix group: pods run with it as runAsGroup and fsGroup. The owner's
    /// primary gid when unset. Must be positive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    /// The namespace; the configured template (`namespaces.project`) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Further namespaces `<namespace>-<name>`, managed the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_namespaces: Vec<String>,
    /// A project volume `homestead-project`, mounted at `storage.project.mountPath`; none
    /// when unset. `{}` takes the configured path and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageOverride>,
    /// Take over a namespace that already exists (and no other homestead object owns);
    /// what is in it is left alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// What deleting the Project does to its namespaces.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// On a change of `owner`: re-stamp the old owner's workloads in the project
    /// namespaces to the new owner (true, the default), or leave them running as the old
    /// owner (false; the old owner must then stay a member whose role runs pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = true))]
    pub transfer_workloads: Option<bool>,
}

impl ProjectSpec {
    /// `transferWorkloads`, true when unset.
    pub fn transfers_workloads(&self) -> bool {
        self.transfer_workloads.unwrap_or(true)
    }
}

/// One person a Project is shared with.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectMember {
    /// The member's username.
    pub username: String,
    /// Their role: a key of `projects.roles` (by default `admin`, `edit` or `view`).
    pub role: String,
}

/// The role every User gets in a Project shared with all users.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllUsers {
    /// A key of `projects.roles`.
    pub role: String,
}

/// What deleting a Project does to its namespaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the namespaces (as `controller.deleteNamespaces` says; volumes are kept).
    #[default]
    Delete,
    /// Keep the namespaces and everything in them; homestead removes its labels and
    /// RoleBindings and manages them no more.
    Keep,
}

/// Status of a `Project`: the common status plus what the printer columns show.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectStatus {
    /// Phase, namespace, reason, conditions, observed generation.
    #[serde(flatten)]
    pub common: ResourceStatus,
    /// The effective gid (`spec.gid`, else the owner's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    /// How many people have a role besides the owner (`allUsers` not counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<i64>,
    /// The owner the project's workloads were last handed to: a `spec.owner` that
    /// differs is a hand-over still to be done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Who ran pods in the project (the owner and the members whose role runs pods) when
    /// its workloads were last looked at: someone missing from `spec` now was unshared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runners: Option<Vec<String>>,
}

/// Lifecycle phase of a `User` or `Session`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Seen, nothing created yet.
    #[default]
    New,
    /// Objects are being created or repaired.
    Deploying,
    /// Every object exists and matches.
    Deployed,
    /// The finalizer is cleaning up.
    Deleting,
    /// Reconciling failed; `reason` says why.
    Failed,
    /// A Session before it opens (`startDate` - `sessions.opensBefore`): nothing is
    /// created yet.
    Scheduled,
    /// A Session after it ended (`endDate` + `sessions.gracePeriod`, or `spec.ended`):
    /// what `sessions.afterGrace` says was done.
    Ended,
}

impl Phase {
    /// The phase as written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::New => "New",
            Phase::Deploying => "Deploying",
            Phase::Deployed => "Deployed",
            Phase::Deleting => "Deleting",
            Phase::Failed => "Failed",
            Phase::Scheduled => "Scheduled",
            Phase::Ended => "Ended",
        }
    }
}

/// Where a Session is in its life, as the controller last planned it from its dates (see
/// `homestead_core::lifecycle`). Admission reads it from the cache; it never reads a clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Lifecycle {
    /// Before `startDate` - `sessions.opensBefore`.
    Scheduled,
    /// Open: pods run.
    #[default]
    Active,
    /// After `endDate` + `sessions.gracePeriod`, or marked `spec.ended` by its source.
    Ended,
}

impl Lifecycle {
    /// The value as written in `status.lifecycle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Scheduled => "Scheduled",
            Lifecycle::Active => "Active",
            Lifecycle::Ended => "Ended",
        }
    }
}

/// Status shared by `User` and `Session`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// Lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The namespace this resource manages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Why the phase is `Failed`, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Standard conditions (`Ready`, `NamespaceOwned`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Sessions only: where the session is in its life (`Scheduled`, `Active`, `Ended`).
    /// Kept across failed reconciles, so admission still knows a session has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// What the site's hooks were last asked or told, and about which generation (see
    /// `homestead_core::hooks`). Only the controller writes it (the status subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<HookRecord>,
}

/// The change the site's hooks were last asked about or told of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookRecord {
    /// The `metadata.generation` the change is about.
    #[serde(default)]
    pub generation: i64,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub event: HookEvent,
    /// Every blocking hook for this change agreed (or was skipped by
    /// `homestead.dev/skip-hooks`): it is not asked again.
    #[serde(default)]
    pub agreed: bool,
    /// The change was applied and the notifying hooks were told of it (queued).
    #[serde(default)]
    pub notified: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn crds_are_cluster_scoped_with_status_and_columns() {
        for crd in [User::crd(), Session::crd(), Project::crd()] {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Cluster");
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, VERSION);
            assert!(
                version
                    .subresources
                    .as_ref()
                    .and_then(|s| s.status.as_ref())
                    .is_some()
            );
            let columns: Vec<_> = version
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.as_str())
                .collect();
            assert!(
                columns.contains(&"Phase") && columns.contains(&"Age"),
                "{columns:?}"
            );
        }
    }

    #[test]
    fn user_spec_round_trips_camel_case() {
        let json = serde_json::json!({
            "username": "ada", "uid": 1001, "gid": 1001,
            "supplementalGroups": [2000], "disabled": true
        });
        let spec: UserSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(spec.supplemental_groups, vec![2000]);
        assert!(spec.disabled);
        assert_eq!(serde_json::to_value(&spec).unwrap(), json);
    }

    #[test]
    fn project_spec_round_trips_and_defaults() {
        let json = serde_json::json!({
            "owner": "ada",
            "members": [{"username": "bob", "role": "edit"}],
            "allUsers": {"role": "view"},
            "gid": 4000,
            "childNamespaces": ["ci"],
            "storage": {"size": "1Ti"},
            "adopt": true,
            "deletionPolicy": "Keep"
        });
        let spec: ProjectSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(spec.deletion_policy, DeletionPolicy::Keep);
        assert_eq!(spec.members[0].role, "edit");
        assert_eq!(serde_json::to_value(&spec).unwrap(), json);
        let spec: ProjectSpec =
            serde_json::from_value(serde_json::json!({"owner": "ada"})).unwrap();
        assert_eq!(spec.deletion_policy, DeletionPolicy::Delete);
        assert!(spec.storage.is_none() && !spec.adopt && spec.gid.is_none());
        let status: ProjectStatus = serde_json::from_value(
            serde_json::json!({"phase": "Deployed", "namespace": "p-x", "gid": 4000, "members": 2}),
        )
        .unwrap();
        assert_eq!(status.common.phase, Some(Phase::Deployed));
        assert_eq!((status.gid, status.members), (Some(4000), Some(2)));
    }

    #[test]
    fn project_columns() {
        let crd = Project::crd();
        let columns: Vec<_> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.to_uppercase())
            .collect();
        assert_eq!(
            columns,
            ["OWNER", "MEMBERS", "GID", "NAMESPACE", "PHASE", "AGE"]
        );
    }
}
