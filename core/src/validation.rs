//! Validation: the backstop run on the final object. Every denial names the offending
//! field and carries a short stable reason code.

use std::path::{Component, Path};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::config::Config;
use crate::denial::Denial;
use crate::identity::Identity;
use crate::names;
use crate::pod::{SecurityContext, Volume, VolumeMount};
use crate::resources::{Session, User};
use crate::workload::PodView;

/// Every reason `pod` may not run as `identity`; empty when it may.
pub fn validate_pod(config: &Config, identity: &Identity, pod: &PodView<'_>) -> Vec<Denial> {
    let mut denials = Vec::new();
    let Some(spec) = &pod.spec else {
        return denials;
    };
    let prefix = pod.field;
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
    let containers = spec
        .containers
        .iter()
        .flatten()
        .map(|c| ("containers", c.security_context.as_ref(), &c.volume_mounts))
        .enumerate()
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| {
                    (
                        "initContainers",
                        c.security_context.as_ref(),
                        &c.volume_mounts,
                    )
                })
                .enumerate(),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| {
                    (
                        "ephemeralContainers",
                        c.security_context.as_ref(),
                        &c.volume_mounts,
                    )
                })
                .enumerate(),
        );
    for (i, (list, sc, mounts)) in containers {
        let path = format!("{prefix}spec.{list}[{i}]");
        check_container(
            &mut denials,
            config,
            identity,
            &path,
            pod_uid,
            sc,
            mounts.as_deref().unwrap_or_default(),
        );
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
        if let Some(sub) = &mount.sub_path
            && sub.split(['/', '\\']).any(|part| part == "..")
        {
            denials.push(Denial::new(
                "sub_path",
                format!("{path}.volumeMounts[{i}].subPath"),
                format!("{sub:?} must not contain '..'"),
            ));
        }
        if let Some(sub) = &mount.sub_path_expr
            && sub.contains("..")
        {
            denials.push(Denial::new(
                "sub_path",
                format!("{path}.volumeMounts[{i}].subPathExpr"),
                format!("{sub:?} must not contain '..'"),
            ));
        }
    }
}

fn check_volume(
    denials: &mut Vec<Denial>,
    config: &Config,
    identity: &Identity,
    path: &str,
    volume: &Volume<'_>,
) {
    if let Some(host) = &volume.host_path
        && !host_path_allowed(&config.security.allowed_host_paths, &host.path)
    {
        denials.push(Denial::new(
            "host_path",
            format!("{path}.hostPath.path"),
            format!("hostPath {:?} is not under an allowed prefix", host.path),
        ));
    }
    if let Some(source) = volume.inline_source {
        denials.push(Denial::new(
            "inline_volume",
            format!("{path}.{source}"),
            format!("inline {source} volumes are not allowed; use a PersistentVolumeClaim"),
        ));
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

/// Namespace UPDATE/DELETE: only homestead may drop or change the labels of a managed
/// namespace, or delete it.
pub fn validate_namespace(
    config: &Config,
    requester: &str,
    operation: &str,
    managed_in_directory: bool,
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) -> Vec<Denial> {
    let label = |meta: Option<&ObjectMeta>, key: &str| {
        meta.and_then(|m| m.labels.as_ref())
            .and_then(|l| l.get(key))
            .cloned()
    };
    let managed = label(old, names::LABEL_MANAGED).as_deref() == Some("true")
        || (old.is_none() && managed_in_directory);
    if !managed || config.homestead_usernames.iter().any(|h| h == requester) {
        return Vec::new();
    }
    match operation {
        "DELETE" => vec![Denial::new(
            "managed_namespace",
            "metadata.name",
            format!("only homestead may delete a managed namespace; {requester} may not"),
        )],
        "UPDATE" => [names::LABEL_MANAGED, names::LABEL_USER, names::LABEL_SESSION]
            .into_iter()
            .filter(|key| label(old, key) != label(new, key))
            .map(|key| {
                Denial::new(
                    "managed_namespace",
                    format!("metadata.labels[\"{key}\"]"),
                    format!("only homestead may change this label of a managed namespace; {requester} may not"),
                )
            })
            .collect(),
        _ => Vec::new(),
    }
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

/// A `User` as written: positive ids, a username that maps to `metadata.name`.
pub fn validate_user(user: &User) -> Vec<Denial> {
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
    denials
}

/// A `Session` as written: a proposal code and namespace that make a name, an absolute
/// data directory, a positive gid, members that are usernames.
pub fn validate_session(config: &Config, session: &Session) -> Vec<Denial> {
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
    let dir = &spec.data_directory;
    if !dir.starts_with('/') || dir.split('/').any(|p| p == "..") {
        denials.push(Denial::new(
            "invalid_object",
            "spec.dataDirectory",
            format!("{dir:?} must be an absolute path without '..'"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
