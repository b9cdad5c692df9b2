//! Validation: the backstop run on the final object. Every denial names the offending
//! field and carries a short stable reason code.

use std::path::{Component, Path};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::config::Config;
use crate::denial::Denial;
use crate::directory::{Directory, NamespaceOwner};
use crate::identity::{Identity, Requester};
use crate::names;
use crate::pod::{SecurityContext, Volume, VolumeMount};
use crate::resources::{Project, Session, User};
use crate::workload::PodView;

/// Every reason `pod` may not run as `identity`; empty when it may.
pub fn validate_pod(config: &Config, identity: &Identity, pod: &PodView<'_>) -> Vec<Denial> {
    let mut denials = Vec::new();
    let Some(spec) = &pod.spec else {
        return denials;
    };
    let prefix = &*pod.field;
    let pod_sc = spec.security_context.as_ref();
    let pod_uid = pod_sc.and_then(|sc| sc.run_as_user);

    // Pod-level security context.
    if let Some(sc) = pod_sc {
        let field = |name: &str| format!("{prefix}spec.securityContext.{name}");
        if let Some(u) = sc.run_as_user {
            check_uid(&mut denials, identity, &field("runAsUser"), u);
        }
        if sc.run_as_non_root == Some(false) {
            denials.push(Denial::new(
                "run_as_root",
                field("runAsNonRoot"),
                "runAsNonRoot must not be false",
            ));
        }
        for (name, gid) in [("runAsGroup", sc.run_as_group), ("fsGroup", sc.fs_group)] {
            if let Some(gid) = gid {
                check_group(&mut denials, identity, &field(name), gid);
            }
        }
        for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
            check_group(
                &mut denials,
                identity,
                &format!("{}[{i}]", field("supplementalGroups")),
                *gid,
            );
        }
        if sc
            .windows_options
            .as_ref()
            .is_some_and(|w| w.host_process == Some(true))
        {
            denials.push(Denial::new(
                "host_namespace",
                field("windowsOptions.hostProcess"),
                "host process pods are not allowed",
            ));
        }
    }

    // Host namespaces.
    for (name, on) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if on == Some(true) {
            denials.push(Denial::new(
                "host_namespace",
                format!("{prefix}spec.{name}"),
                "sharing the host's namespaces is not allowed",
            ));
        }
    }

    // Volumes.
    for (i, volume) in spec.volumes.iter().flatten().enumerate() {
        check_volume(
            &mut denials,
            config,
            identity,
            &format!("{prefix}spec.volumes[{i}]"),
            volume,
        );
    }

    // Containers of every sort.
    for (list, i, container) in pod.containers() {
        check_container(
            &mut denials,
            config,
            identity,
            &format!("{prefix}spec.{list}[{i}]"),
            pod_uid,
            container.security_context.as_ref(),
            container.volume_mounts.as_deref().unwrap_or_default(),
        );
    }

    // The label the pod index reads: a pod must name its user; a template, if it names one,
    // the right one (templates stamped before the label existed have none).
    let user = identity.user.name.as_str();
    match pod.user_label() {
        Some(label) if label == user => {}
        None if !pod.pointer.is_empty() => {}
        label => denials.push(Denial::new(
            "forged_run_as",
            format!("{prefix}metadata.labels[\"{}\"]", names::LABEL_USER),
            format!(
                "is {:?}; this runs as User {user:?}",
                label.unwrap_or_default()
            ),
        )),
    }
    denials
}

fn check_uid(denials: &mut Vec<Denial>, identity: &Identity, field: &str, uid: i64) {
    if uid == 0 {
        denials.push(Denial::new(
            "run_as_root",
            field,
            "running as root (uid 0) is not allowed",
        ));
    } else if uid != identity.uid() {
        denials.push(Denial::new(
            "wrong_uid",
            field,
            format!(
                "uid {uid} is not {}'s uid {}",
                identity.username(),
                identity.uid()
            ),
        ));
    }
}

fn check_group(denials: &mut Vec<Denial>, identity: &Identity, field: &str, gid: i64) {
    if !identity.has_group(gid) {
        denials.push(Denial::new(
            "groups",
            field,
            format!(
                "gid {gid} is not one of {}'s groups ({})",
                identity.username(),
                groups_text(identity)
            ),
        ));
    }
}

fn groups_text(identity: &Identity) -> String {
    let mut all: Vec<i64> = identity.supplemental_groups.clone();
    all.push(identity.gid);
    all.sort_unstable();
    all.dedup();
    all.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[allow(clippy::too_many_arguments)]
fn check_container(
    denials: &mut Vec<Denial>,
    config: &Config,
    identity: &Identity,
    path: &str,
    pod_uid: Option<i64>,
    sc: Option<&SecurityContext<'_>>,
    mounts: &[VolumeMount<'_>],
) {
    let field = |name: &str| format!("{path}.securityContext.{name}");
    match sc.and_then(|sc| sc.run_as_user) {
        Some(uid) => check_uid(denials, identity, &field("runAsUser"), uid),
        None if pod_uid.is_none() => denials.push(Denial::new(
            "run_as_root",
            field("runAsUser"),
            "no runAsUser here or on the pod; the image's user may be root",
        )),
        None => {}
    }
    if sc.is_none() {
        denials.push(no_escalation(&field("allowPrivilegeEscalation")));
    }
    if let Some(sc) = sc {
        if sc.run_as_non_root == Some(false) {
            denials.push(Denial::new(
                "run_as_root",
                field("runAsNonRoot"),
                "runAsNonRoot must not be false",
            ));
        }
        if let Some(gid) = sc.run_as_group {
            check_group(denials, identity, &field("runAsGroup"), gid);
        }
        if sc.privileged == Some(true) {
            denials.push(Denial::new(
                "privileged",
                field("privileged"),
                "privileged containers are not allowed",
            ));
        }
        if sc.allow_privilege_escalation == Some(true) {
            denials.push(Denial::new(
                "privilege_escalation",
                field("allowPrivilegeEscalation"),
                "privilege escalation is not allowed",
            ));
        }
        if sc.allow_privilege_escalation.is_none() {
            denials.push(no_escalation(&field("allowPrivilegeEscalation")));
        }
        if sc.proc_mount.as_deref().is_some_and(|m| m != "Default") {
            denials.push(Denial::new(
                "privileged",
                field("procMount"),
                "only the Default procMount is allowed",
            ));
        }
        if sc
            .windows_options
            .as_ref()
            .is_some_and(|w| w.host_process == Some(true))
        {
            denials.push(Denial::new(
                "host_namespace",
                field("windowsOptions.hostProcess"),
                "host process containers are not allowed",
            ));
        }
        for (i, cap) in sc.added_capabilities().iter().enumerate() {
            let bare = cap.strip_prefix("CAP_").unwrap_or(cap);
            let allowed = config
                .security
                .allowed_capabilities
                .iter()
                .any(|a| a.eq_ignore_ascii_case(bare));
            if !allowed {
                denials.push(Denial::new(
                    "capability",
                    format!("{path}.securityContext.capabilities.add[{i}]"),
                    format!("adding capability {cap} is not allowed"),
                ));
            }
        }
    }
    for (i, mount) in mounts.iter().enumerate() {
        for (name, sub) in [
            ("subPath", &mount.sub_path),
            ("subPathExpr", &mount.sub_path_expr),
        ] {
            if let Some(sub) = sub
                && sub.split(['/', '\\']).any(|part| part == "..")
            {
                denials.push(Denial::new(
                    "sub_path",
                    format!("{path}.volumeMounts[{i}].{name}"),
                    format!("{sub:?} must not contain '..' as a path element"),
                ));
            }
        }
    }
}

/// A container whose `allowPrivilegeEscalation` is not explicitly false: a setuid binary
/// in its image could regain privileges.
fn no_escalation(field: &str) -> Denial {
    Denial::new(
        "privilege_escalation",
        field,
        "must be false (explicitly): without it a setuid binary in the image can regain privileges",
    )
}

/// The volume sources a pod may use, for messages.
const ALLOWED_SOURCES: &str = "configMap, secret, downwardAPI, projected, emptyDir, persistentVolumeClaim, ephemeral, hostPath (under security.allowedHostPaths) and csi (drivers in security.allowedCsiDrivers)";

fn check_volume(
    denials: &mut Vec<Denial>,
    config: &Config,
    identity: &Identity,
    path: &str,
    volume: &Volume<'_>,
) {
    if let Some(source) = &volume.refused {
        denials.push(Denial::new(
            "volume_source",
            format!("{path}.{source}"),
            format!("{source} volumes are not allowed; a pod may use {ALLOWED_SOURCES}"),
        ));
    }
    if let Some(host) = &volume.host_path
        && !host_path_allowed(&config.security.allowed_host_paths, &host.path)
    {
        denials.push(Denial::new(
            "host_path",
            format!("{path}.hostPath.path"),
            format!("hostPath {:?} is not under an allowed prefix", host.path),
        ));
    }
    if let Some(csi) = &volume.csi
        && !config
            .security
            .allowed_csi_drivers
            .iter()
            .any(|d| d == &*csi.driver)
    {
        denials.push(Denial::new(
            "volume_source",
            format!("{path}.csi.driver"),
            format!(
                "inline CSI driver {:?} is not in security.allowedCsiDrivers",
                csi.driver
            ),
        ));
    }
    if let Some(ephemeral) = &volume.ephemeral {
        let spec = format!("{path}.ephemeral.volumeClaimTemplate.spec");
        for (set, field, what) in [
            (ephemeral.volume_name, "volumeName", "name a volume"),
            (
                ephemeral.data_source,
                "dataSource",
                "clone a claim or snapshot",
            ),
            (
                ephemeral.data_source_ref,
                "dataSourceRef",
                "clone a claim or snapshot",
            ),
        ] {
            if set {
                denials.push(Denial::new(
                    "ephemeral_claim",
                    format!("{spec}.{field}"),
                    format!("an ephemeral claim may not {what}; it must be new, empty storage"),
                ));
            }
        }
    }
    if let Some(pvc) = &volume.persistent_volume_claim {
        let prefix = format!("{}-", names::VOLUME_PRIVATE);
        if pvc.claim_name.starts_with(&prefix) && pvc.claim_name != identity.private_claim {
            denials.push(Denial::new(
                "foreign_claim",
                format!("{path}.persistentVolumeClaim.claimName"),
                format!(
                    "{:?} is another member's private claim; {}'s is {:?}",
                    pvc.claim_name,
                    identity.username(),
                    identity.private_claim
                ),
            ));
        }
    }
}

/// True when `path` is one of `allowed` or below one, compared by path components.
pub fn host_path_allowed(allowed: &[String], path: &str) -> bool {
    let path = Path::new(path);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return false;
    }
    allowed
        .iter()
        .any(|prefix| path.starts_with(Path::new(prefix)))
}

/// The labels only homestead writes: they make a namespace (or an object) homestead's.
pub const HOMESTEAD_LABELS: [&str; 4] = [
    names::LABEL_MANAGED,
    names::LABEL_USER,
    names::LABEL_SESSION,
    names::LABEL_PROJECT,
];

/// The homestead labels that differ between `old` and `new` (a missing object has no
/// labels): [`HOMESTEAD_LABELS`], and `app.kubernetes.io/managed-by` when either side says
/// `homestead`.
pub fn homestead_labels_changed(
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) -> Vec<&'static str> {
    let label = |meta: Option<&ObjectMeta>, key: &str| {
        meta.and_then(|m| m.labels.as_ref())
            .and_then(|l| l.get(key))
            .cloned()
    };
    let mut changed: Vec<&'static str> = HOMESTEAD_LABELS
        .into_iter()
        .filter(|key| label(old, key) != label(new, key))
        .collect();
    let (old_by, new_by) = (
        label(old, names::LABEL_MANAGED_BY),
        label(new, names::LABEL_MANAGED_BY),
    );
    let homestead = Some(crate::desired::MANAGED_BY.to_owned());
    if old_by != new_by && (old_by == homestead || new_by == homestead) {
        changed.push(names::LABEL_MANAGED_BY);
    }
    changed
}

/// Setting, changing or removing `homestead.dev/skip-hooks` on a User, Session or Project
/// (`old` → `new` metadata) is for cluster admins (and homestead) only: the annotation
/// lets a delete through the site's blocking hooks, so anyone else who may edit the object
/// (a Project's owner given `update` on Projects, say) is refused.
pub fn skip_hooks_denial(
    requester: Requester<'_>,
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) -> Option<Denial> {
    let value = |meta: Option<&ObjectMeta>| {
        meta.and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(names::ANNOTATION_SKIP_HOOKS))
            .cloned()
    };
    if value(old) == value(new)
        || matches!(requester, Requester::Admin(_) | Requester::Homestead(_))
    {
        return None;
    }
    Some(Denial::new(
        "homestead_annotation",
        format!("metadata.annotations[\"{}\"]", names::ANNOTATION_SKIP_HOOKS),
        format!(
            "only a cluster admin may set, change or remove this annotation; {} may not",
            requester.name()
        ),
    ))
}

/// The denial of a homestead label set, changed or removed by `requester`.
pub fn label_denial(key: &str, requester: &str) -> Denial {
    Denial::new(
        "homestead_label",
        format!("metadata.labels[\"{key}\"]"),
        format!("only homestead may set, change or remove this label; {requester} may not"),
    )
}

/// Namespace CREATE/UPDATE/DELETE: only homestead may give a namespace homestead's labels,
/// change or remove them, or delete a managed namespace.
pub fn validate_namespace(
    requester: Requester<'_>,
    operation: &str,
    managed_in_directory: bool,
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) -> Vec<Denial> {
    if matches!(requester, Requester::Homestead(_)) {
        return Vec::new();
    }
    let who = requester.name();
    match operation {
        "DELETE" => {
            let managed = old
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(names::LABEL_MANAGED))
                .is_some_and(|v| v == "true")
                || (old.is_none() && managed_in_directory);
            if managed {
                vec![Denial::new(
                    "managed_namespace",
                    "metadata.name",
                    format!("only homestead may delete a managed namespace; {who} may not"),
                )]
            } else {
                Vec::new()
            }
        }
        "CREATE" | "UPDATE" => homestead_labels_changed(old, new)
            .into_iter()
            .map(|key| label_denial(key, who))
            .collect(),
        _ => Vec::new(),
    }
}

/// Who may delete a claim homestead manages besides homestead: Kubernetes deleting the
/// claim's namespace, or the claim because its owner (the User or Session) is gone.
pub const CLAIM_CLEANERS: &[&str] = &[
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:kube-controller-manager",
];

/// Who binds claims to volumes (writes `spec.volumeName` of a pending claim) besides
/// homestead and cluster admins.
pub const VOLUME_BINDERS: &[&str] = &[
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:kube-controller-manager",
];

/// True for the claim names homestead makes: `homestead-private`, `homestead-shared`,
/// `homestead-data` and `homestead-private-<member>`, and every other `homestead-` name.
pub fn is_homestead_claim(name: &str) -> bool {
    name.starts_with("homestead-")
}

/// The private claim of a session member, or `None` for any other claim.
fn private_claim_owner(name: &str) -> Option<&str> {
    name.strip_prefix(names::VOLUME_PRIVATE)
        .and_then(|rest| rest.strip_prefix('-'))
}

/// True when `requester` may read the private claim `claim` of the namespace `owner`
/// manages by cloning or snapshotting it: in a user namespace whoever works there acts
/// for its owner; in a session namespace only the member the claim is for.
fn may_copy_claim(owner: &NamespaceOwner, requester: Requester<'_>, claim: &str) -> bool {
    if requester.is_privileged() {
        return true;
    }
    match (owner, private_claim_owner(claim)) {
        (_, None) | (NamespaceOwner::User(_), _) => true,
        (NamespaceOwner::Session(_) | NamespaceOwner::Project(_), Some(member)) => {
            match requester {
                Requester::Person(person) => names::object_name(person).is_ok_and(|n| n == member),
                _ => false,
            }
        }
    }
}

/// PersistentVolumeClaim CREATE/UPDATE/DELETE in the managed namespace `owner` manages:
/// no binding to a chosen volume, no copy of another member's private claim, the dataset
/// label only by homestead or an admin and never on homestead's claims, and homestead's
/// claims made and deleted only by homestead.
pub fn validate_claim(
    owner: &NamespaceOwner,
    requester: Requester<'_>,
    operation: &str,
    name: &str,
    old: Option<&PersistentVolumeClaim>,
    new: Option<&PersistentVolumeClaim>,
) -> Vec<Denial> {
    let who = requester.name();
    let homestead = matches!(requester, Requester::Homestead(_));
    let ours = is_homestead_claim(name);
    if operation == "DELETE" {
        if ours && !homestead && !CLAIM_CLEANERS.contains(&who) {
            return vec![Denial::new(
                "managed_claim",
                "metadata.name",
                format!(
                    "{name:?} is a claim homestead manages; only homestead deletes it, {who} may not"
                ),
            )];
        }
        return Vec::new();
    }
    if !matches!(operation, "CREATE" | "UPDATE") {
        return Vec::new();
    }
    let Some(new) = new else {
        return Vec::new();
    };
    let mut denials = Vec::new();
    if ours && operation == "CREATE" && !homestead {
        denials.push(Denial::new(
            "managed_claim",
            "metadata.name",
            format!("claims named homestead-... are homestead's; {who} may not create {name:?}"),
        ));
    }
    let dataset = |c: Option<&PersistentVolumeClaim>| {
        c.and_then(|c| c.metadata.labels.as_ref())
            .and_then(|l| l.get(names::LABEL_DATASET))
            .cloned()
    };
    let field = format!("metadata.labels[\"{}\"]", names::LABEL_DATASET);
    if dataset(Some(new)) != dataset(old) && !requester.is_privileged() {
        denials.push(Denial::new(
            "dataset_label",
            field.as_str(),
            format!(
                "only homestead or a cluster admin may set, change or remove it; {who} may not"
            ),
        ));
    }
    if ours && dataset(Some(new)).is_some() {
        denials.push(Denial::new(
            "dataset_label",
            field.as_str(),
            format!("{name:?} is a claim homestead manages; it is never a dataset"),
        ));
    }
    let spec = new.spec.as_ref();
    let volume = |c: Option<&PersistentVolumeClaim>| {
        c.and_then(|c| c.spec.as_ref())
            .and_then(|s| s.volume_name.clone())
            .filter(|v| !v.is_empty())
    };
    let binds = volume(Some(new));
    if binds.is_some()
        && binds != volume(old)
        && !requester.is_privileged()
        && !VOLUME_BINDERS.contains(&who)
    {
        denials.push(Denial::new(
            "claim_volume",
            "spec.volumeName",
            format!(
                "{who} may not bind a claim to a chosen volume ({:?}); volumes are bound by homestead, an admin or Kubernetes",
                binds.unwrap_or_default()
            ),
        ));
    }
    // A claim's data sources are fixed once it exists: only creations are read.
    let sources = [
        (
            "dataSource",
            spec.and_then(|s| s.data_source.as_ref()).map(|d| {
                (
                    d.api_group.as_deref(),
                    d.kind.as_str(),
                    d.name.as_str(),
                    None,
                )
            }),
        ),
        (
            "dataSourceRef",
            spec.and_then(|s| s.data_source_ref.as_ref()).map(|d| {
                (
                    d.api_group.as_deref(),
                    d.kind.as_str(),
                    d.name.as_str(),
                    d.namespace.as_deref(),
                )
            }),
        ),
    ];
    for (field, source) in sources {
        let Some((group, kind, source_name, namespace)) = source else {
            continue;
        };
        if operation != "CREATE" || requester.is_privileged() {
            continue;
        }
        if namespace.is_some_and(|ns| !ns.is_empty()) {
            denials.push(Denial::new(
                "foreign_claim",
                format!("spec.{field}.namespace"),
                "a claim may not copy data from another namespace",
            ));
        } else if group.unwrap_or_default().is_empty()
            && kind == "PersistentVolumeClaim"
            && !may_copy_claim(owner, requester, source_name)
        {
            denials.push(Denial::new(
                "foreign_claim",
                format!("spec.{field}.name"),
                format!(
                    "{source_name:?} is another member's private claim; {who} may not clone it"
                ),
            ));
        }
    }
    denials
}

/// VolumeSnapshot CREATE/UPDATE in the managed namespace `owner` manages: a snapshot is
/// readable (restorable) by everyone in the namespace, so in a session namespace only
/// homestead or an admin snapshots a member's private claim.
pub fn validate_snapshot(
    owner: &NamespaceOwner,
    requester: Requester<'_>,
    claim: Option<&str>,
) -> Vec<Denial> {
    let Some(claim) = claim else {
        return Vec::new();
    };
    let private = private_claim_owner(claim).is_some();
    if private
        && matches!(
            owner,
            NamespaceOwner::Session(_) | NamespaceOwner::Project(_)
        )
        && !requester.is_privileged()
    {
        return vec![Denial::new(
            "foreign_claim",
            "spec.source.persistentVolumeClaimName",
            format!(
                "{claim:?} is a member's private claim; every member could restore a snapshot of it, so {} may not take one",
                requester.name()
            ),
        )];
    }
    Vec::new()
}

fn check_positive(denials: &mut Vec<Denial>, field: &str, id: i64) {
    if id <= 0 {
        denials.push(Denial::new(
            "invalid_object",
            field,
            format!("{id} must be positive"),
        ));
    }
}

fn check_object_name(denials: &mut Vec<Denial>, meta: &ObjectMeta, field: &str, username: &str) {
    match names::object_name(username) {
        Err(e) => denials.push(Denial::new("invalid_object", field, e.to_string())),
        Ok(mapped) => match &meta.name {
            Some(name) if *name != mapped => denials.push(Denial::new(
                "invalid_object",
                "metadata.name",
                format!("{name:?} must be {mapped:?}, the object name of {field} {username:?}"),
            )),
            None if meta.generate_name.is_some() => denials.push(Denial::new(
                "invalid_object",
                "metadata.generateName",
                format!("must not be used; the name must be {mapped:?}"),
            )),
            _ => {}
        },
    }
}

/// True for namespaces no User or Session may have: `default`, `kube-*` and homestead's own.
pub fn is_system_namespace(config: &Config, namespace: &str) -> bool {
    namespace == "default"
        || namespace.starts_with("kube-")
        || config.homestead_namespaces().any(|ns| ns == namespace)
}

/// Refuses a namespace that is a system one or already another User's or Session's.
fn check_namespace_free(
    denials: &mut Vec<Denial>,
    config: &Config,
    directory: &Directory,
    field: &str,
    namespace: &str,
    object: &str,
) {
    if is_system_namespace(config, namespace) {
        denials.push(Denial::new(
            "namespace_taken",
            field,
            format!(
                "namespace {namespace:?} is a system namespace (default, kube-*, homestead's own)"
            ),
        ));
    } else if let Some(other) = directory.namespace_holder(namespace)
        && other != object
    {
        denials.push(Denial::new(
            "namespace_taken",
            field,
            format!("namespace {namespace:?} is already {other}'s"),
        ));
    }
}

/// A `User` as written: positive ids, a username that maps to `metadata.name`, a uid no
/// other User has, a namespace that is neither a system one nor another's.
pub fn validate_user(config: &Config, directory: &Directory, user: &User) -> Vec<Denial> {
    let mut denials = Vec::new();
    let spec = &user.spec;
    check_object_name(
        &mut denials,
        &user.metadata,
        "spec.username",
        &spec.username,
    );
    check_positive(&mut denials, "spec.uid", spec.uid);
    check_positive(&mut denials, "spec.gid", spec.gid);
    for (i, gid) in spec.supplemental_groups.iter().enumerate() {
        check_positive(&mut denials, &format!("spec.supplementalGroups[{i}]"), *gid);
    }
    if let Some(ns) = &spec.namespace
        && !names::is_dns1123_label(ns)
    {
        denials.push(Denial::new(
            "invalid_object",
            "spec.namespace",
            format!("{ns:?} is not a valid namespace name"),
        ));
    }
    let name = user.metadata.name.as_deref().unwrap_or_default();
    if let Some(other) = directory.user_with_uid(spec.uid)
        && other.name != name
    {
        denials.push(Denial::new(
            "uid_taken",
            "spec.uid",
            format!(
                "uid {} is already User/{}'s ({}); one uid is one person",
                spec.uid, other.name, other.username
            ),
        ));
    }
    if let Ok(namespace) = crate::directory::user_namespace(config, spec) {
        let field = if spec.namespace.is_some() {
            "spec.namespace"
        } else {
            "spec.username"
        };
        check_namespace_free(
            &mut denials,
            config,
            directory,
            field,
            &namespace,
            &format!("User/{name}"),
        );
    }
    denials
}

/// A `Session` as written: a proposal code and namespace that make a name (neither a
/// system namespace nor another's), an absolute data directory under the configured roots,
/// a positive gid, members that are usernames.
pub fn validate_session(config: &Config, directory: &Directory, session: &Session) -> Vec<Denial> {
    let mut denials = Vec::new();
    let spec = &session.spec;
    let code = &spec.proposal_code;
    if code.is_empty()
        || !code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        denials.push(Denial::new(
            "invalid_object",
            "spec.proposalCode",
            format!("{code:?} must be lowercase letters and digits"),
        ));
    }
    let namespace = crate::directory::session_namespace(config, spec);
    if !names::is_dns1123_label(&namespace) {
        denials.push(Denial::new(
            "invalid_object",
            "spec",
            format!("the session namespace {namespace:?} is not a valid namespace name"),
        ));
    }
    check_namespace_free(
        &mut denials,
        config,
        directory,
        "spec",
        &namespace,
        &format!(
            "Session/{}",
            session.metadata.name.as_deref().unwrap_or_default()
        ),
    );
    let dir = &spec.data_directory;
    let roots = &config.security.session_data_roots;
    if !dir.starts_with('/') || dir.split('/').any(|p| p == "..") {
        denials.push(Denial::new(
            "invalid_object",
            "spec.dataDirectory",
            format!("{dir:?} must be an absolute path without '..'"),
        ));
    } else if dir.trim_end_matches('/').is_empty() {
        denials.push(Denial::new(
            "data_directory",
            "spec.dataDirectory",
            "\"/\" would give the session the whole file system",
        ));
    } else if !roots.is_empty() && !host_path_allowed(roots, dir) {
        denials.push(Denial::new(
            "data_directory",
            "spec.dataDirectory",
            format!(
                "{dir:?} is not under a data root ({}; security.sessionDataRoots)",
                roots.join(", ")
            ),
        ));
    }
    check_positive(&mut denials, "spec.gid", spec.gid);
    for (i, member) in spec.members.iter().enumerate() {
        if let Err(e) = names::object_name(member) {
            denials.push(Denial::new(
                "invalid_object",
                format!("spec.members[{i}]"),
                e.to_string(),
            ));
        }
    }
    if let Some(default) = &spec.default_member
        && !spec.members.contains(default)
    {
        denials.push(Denial::new(
            "invalid_object",
            "spec.defaultMember",
            format!("{default:?} is not a member"),
        ));
    }
    denials
}

/// A `Project` as written: an owner and members who are enabled Users with configured
/// roles, a gid that is positive and no other User's primary group, namespaces that are
/// valid names and neither system namespaces nor another's, and sane storage. On an
/// update (`old`), handing it to a new owner without transferring workloads keeps the
/// old owner a member whose role runs pods.
pub fn validate_project(
    config: &Config,
    directory: &Directory,
    project: &Project,
    old: Option<&Project>,
) -> Vec<Denial> {
    let mut denials = Vec::new();
    if let Some(old) = old
        && let Some(problem) = crate::handover::untransferred_owner_problem(config, old, project)
    {
        denials.push(Denial::new("old_owner_dropped", "spec.owner", problem));
    }
    let spec = &project.spec;
    let name = project.metadata.name.as_deref().unwrap_or_default();
    let object = format!("Project/{name}");
    let known_user = |denials: &mut Vec<Denial>, field: &str, username: &str| {
        if let Err(e) = names::object_name(username) {
            denials.push(Denial::new("invalid_object", field, e.to_string()));
            return;
        }
        match directory.user(username) {
            None => denials.push(Denial::new(
                "unknown_user",
                field,
                format!("{username:?} is not a User"),
            )),
            Some(user) if user.disabled => denials.push(Denial::new(
                "disabled_user",
                field,
                format!("User {username:?} is disabled"),
            )),
            Some(_) => {}
        }
    };
    let known_role = |denials: &mut Vec<Denial>, field: &str, role: &str| {
        if config.projects.role(role).is_none() {
            let roles: Vec<&str> = config.projects.roles.keys().map(String::as_str).collect();
            denials.push(Denial::new(
                "invalid_object",
                field,
                format!(
                    "role {role:?} is not one of {} (projects.roles)",
                    roles.join(", ")
                ),
            ));
        }
    };
    known_user(&mut denials, "spec.owner", &spec.owner);
    let mut seen: Vec<&str> = Vec::new();
    for (i, member) in spec.members.iter().enumerate() {
        let field = format!("spec.members[{i}]");
        known_user(&mut denials, &format!("{field}.username"), &member.username);
        known_role(&mut denials, &format!("{field}.role"), &member.role);
        if seen.contains(&member.username.as_str()) {
            denials.push(Denial::new(
                "invalid_object",
                format!("{field}.username"),
                format!("{:?} is listed twice", member.username),
            ));
        }
        seen.push(&member.username);
    }
    if let Some(all) = &spec.all_users {
        known_role(&mut denials, "spec.allUsers.role", &all.role);
    }
    if let Some(gid) = spec.gid {
        check_positive(&mut denials, "spec.gid", gid);
        if let Some(other) = directory.user_with_gid(gid)
            && other.username != spec.owner
        {
            denials.push(Denial::new(
                "gid_taken",
                "spec.gid",
                format!(
                    "gid {gid} is User/{}'s primary group ({}); a project needs a group of its own",
                    other.name, other.username
                ),
            ));
        }
    }
    let namespace = crate::directory::project_namespace(config, project);
    let field = if spec.namespace.is_some() {
        "spec.namespace"
    } else {
        "metadata.name"
    };
    if !names::is_dns1123_label(&namespace) {
        denials.push(Denial::new(
            "invalid_object",
            field,
            format!("the project namespace {namespace:?} is not a valid namespace name"),
        ));
    }
    check_namespace_free(&mut denials, config, directory, field, &namespace, &object);
    for (i, child) in spec.child_namespaces.iter().enumerate() {
        let field = format!("spec.childNamespaces[{i}]");
        let full = crate::directory::child_namespace(&namespace, child);
        if !names::is_dns1123_label(child) || !names::is_dns1123_label(&full) {
            denials.push(Denial::new(
                "invalid_object",
                field.as_str(),
                format!("{full:?} is not a valid namespace name"),
            ));
            continue;
        }
        if spec.child_namespaces[..i].contains(child) {
            denials.push(Denial::new(
                "invalid_object",
                field.as_str(),
                format!("{child:?} is listed twice"),
            ));
        }
        check_namespace_free(&mut denials, config, directory, &field, &full, &object);
    }
    if let Some(storage) = &spec.storage {
        if let Some(size) = &storage.size
            && !crate::config::is_quantity(size)
        {
            denials.push(Denial::new(
                "invalid_object",
                "spec.storage.size",
                format!("{size:?} is not a quantity such as 100Gi"),
            ));
        }
        if let Some(path) = &storage.path
            && (!path.starts_with('/') || path.split('/').any(|p| p == ".."))
        {
            denials.push(Denial::new(
                "invalid_object",
                "spec.storage.path",
                format!("{path:?} must be an absolute path without '..'"),
            ));
        }
    }
    denials
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admins_and_homestead_touch_the_skip_hooks_annotation() {
        let meta = |value: Option<&str>| ObjectMeta {
            annotations: value.map(|v| {
                [(names::ANNOTATION_SKIP_HOOKS.to_owned(), v.to_owned())]
                    .into_iter()
                    .collect()
            }),
            ..ObjectMeta::default()
        };
        let (none, quota, both) = (meta(None), meta(Some("quota")), meta(Some("quota,storage")));
        for (requester, old, new, refused) in [
            (Requester::Person("ada"), Some(&none), Some(&quota), true),
            (Requester::Person("ada"), None, Some(&quota), true),
            (Requester::Person("ada"), Some(&quota), Some(&both), true),
            (Requester::Person("ada"), Some(&quota), Some(&none), true),
            (
                Requester::Other("system:serviceaccount:x:y"),
                Some(&none),
                Some(&quota),
                true,
            ),
            (
                Requester::TrustedController("c"),
                Some(&none),
                Some(&quota),
                true,
            ),
            // Leaving it as it is, while changing something else, is anyone's.
            (Requester::Person("ada"), Some(&quota), Some(&quota), false),
            (Requester::Person("ada"), Some(&none), Some(&none), false),
            (Requester::Admin("root"), Some(&none), Some(&quota), false),
            (Requester::Admin("root"), Some(&quota), Some(&none), false),
            (Requester::Homestead("hs"), Some(&none), Some(&quota), false),
        ] {
            let denial = skip_hooks_denial(requester, old, new);
            assert_eq!(
                denial.is_some(),
                refused,
                "{requester:?} {old:?} -> {new:?}"
            );
            if let Some(denial) = denial {
                let text = denial.to_string();
                assert!(
                    text.contains("homestead.dev/skip-hooks") && text.contains("cluster admin"),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn host_paths_compare_by_component() {
        let allowed = vec!["/scratch".to_owned(), "/data/shared/".to_owned()];
        for (path, ok) in [
            ("/scratch", true),
            ("/scratch/ada/run-1", true),
            ("/data/shared/x", true),
            ("/scratchy", false),
            ("/scratch/../etc", false),
            ("scratch/ada", false),
            ("/", false),
            ("/etc", false),
        ] {
            assert_eq!(host_path_allowed(&allowed, path), ok, "{path}");
        }
        assert!(!host_path_allowed(&[], "/scratch"));
    }

    #[test]
    fn denials_read_field_then_reason() {
        let d = Denial::new(
            "privileged",
            "spec.containers[0].securityContext.privileged",
            "privileged containers are not allowed",
        );
        assert_eq!(
            d.to_string(),
            "spec.containers[0].securityContext.privileged: privileged containers are not allowed"
        );
        assert_eq!(Denial::new("x", "", "why").to_string(), "why");
    }
}
