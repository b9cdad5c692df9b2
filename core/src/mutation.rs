//! Mutation (docs/architecture.md, "Identity rules"): the JSON Patch that makes a pod (or
//! pod template) run as its identity with its storage and environment. Operations are built by comparing the
//! parsed pod with what it should be, field by field — never by diffing clones — and
//! written straight into the patch; an object that already is what it should be gets no
//! operations at all.
//!
//! Values are written without serde ([`WriteJson`]); the mounts and environment variables
//! every container gets are written once per pod ([`Rendered`]) and copied into each
//! operation, and each container's pointer is written once for all of its operations.

use std::borrow::Cow;

#[cfg(test)]
use serde::Serialize;

use crate::argo::{WorkflowKind, WorkflowView};
use crate::config::{AfterGrace, Config};
use crate::directory::Dataset;
use crate::identity::Identity;
use crate::names;
use crate::patch::json::{Member, RenderedList, WriteJson, write_object};
use crate::patch::{AddHead, Array, Patch, Pointer, PointerText};
use crate::pod::{Container, EnvVar, PodSecurityContext, PodSpec, SecurityContext, VolumeMount};
use crate::resources::Lifecycle;
use crate::workload::PodView;

/// `fsGroupChangePolicy` written on every pod: recursive chown of big volumes is an outage.
pub const FS_GROUP_CHANGE_POLICY: &str = "OnRootMismatch";
/// `supplementalGroupsPolicy` written on every pod: the groups are exactly the identity's,
/// never merged with what `/etc/group` in the image lists for the uid. API servers older
/// than 1.31 (or without the `SupplementalGroupsPolicy` feature) drop the field.
pub const SUPPLEMENTAL_GROUPS_POLICY: &str = "Strict";

/// A volume homestead mounts, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount<'a> {
    /// Volume name.
    pub volume: Cow<'a, str>,
    /// The claim behind it.
    pub claim: Cow<'a, str>,
    /// Where containers see it.
    pub path: Cow<'a, str>,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Everything a pod of `identity` should have, computed once per pod (borrowing from the
/// identity, the configuration and the datasets where it can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutationPlan<'a> {
    /// Volumes and their mounts, in order.
    pub mounts: Vec<Mount<'a>>,
    /// Environment variables, in order.
    pub env: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> MutationPlan<'a> {
    /// The plan for `identity`, with `datasets` unless the pod opted out.
    pub fn new(config: &'a Config, identity: &'a Identity, datasets: &'a [Dataset]) -> Self {
        let number = |n: i64| Cow::Owned(itoa::Buffer::new().format(n).to_owned());
        let mut mounts = Vec::with_capacity(4 + datasets.len());
        let mut env = Vec::with_capacity(8);
        env.push((names::ENV_USER, Cow::Borrowed(identity.username())));
        env.push((names::ENV_UID, number(identity.uid())));
        env.push((names::ENV_GID, number(identity.gid)));
        env.push((
            names::ENV_NAMESPACE,
            Cow::Borrowed(identity.namespace.as_str()),
        ));
        let storage = &config.storage;
        if storage.private.enabled
            && let Some(path) = &storage.private.mount_path
        {
            mounts.push(Mount {
                volume: Cow::Borrowed(names::VOLUME_PRIVATE),
                claim: Cow::Borrowed(identity.private_claim.as_str()),
                path: Cow::Borrowed(path.as_str()),
                read_only: storage.private.read_only,
            });
            env.push((names::ENV_PRIVATE_DIR, Cow::Borrowed(path.as_str())));
        }
        if storage.shared.enabled
            && let Some(path) = &storage.shared.mount_path
        {
            mounts.push(Mount {
                volume: Cow::Borrowed(names::VOLUME_SHARED),
                claim: Cow::Borrowed(names::VOLUME_SHARED),
                path: Cow::Borrowed(path.as_str()),
                read_only: storage.shared.read_only,
            });
            env.push((names::ENV_SHARED_DIR, Cow::Borrowed(path.as_str())));
        }
        if let Some(session) = &identity.session
            && storage.session.enabled
        {
            let path = Cow::Borrowed(
                storage
                    .session
                    .mount_path
                    .as_deref()
                    .unwrap_or(session.data_directory.as_str()),
            );
            // After the end, `afterGrace: readOnly` keeps the data readable, not writable.
            let ended_read_only = session.lifecycle == Lifecycle::Ended
                && config.sessions.after_grace == AfterGrace::ReadOnly;
            mounts.push(Mount {
                volume: Cow::Borrowed(names::VOLUME_DATA),
                claim: Cow::Borrowed(names::VOLUME_DATA),
                path: path.clone(),
                read_only: storage.session.read_only || ended_read_only,
            });
            env.push((names::ENV_DATA_DIR, path));
        }
        // The project volume is a claim of the project namespace, not of its children.
        if identity
            .project
            .as_ref()
            .is_some_and(|p| p.storage && p.namespaces.first() == Some(&identity.namespace))
            && storage.project.enabled
            && let Some(path) = &storage.project.mount_path
        {
            mounts.push(Mount {
                volume: Cow::Borrowed(names::VOLUME_PROJECT),
                claim: Cow::Borrowed(names::VOLUME_PROJECT),
                path: Cow::Borrowed(path.as_str()),
                read_only: storage.project.read_only,
            });
            env.push((names::ENV_PROJECT_DIR, Cow::Borrowed(path.as_str())));
        }
        let root = config.datasets.mount_root.trim_end_matches('/');
        for dataset in datasets {
            mounts.push(Mount {
                volume: Cow::Owned(names::dataset_volume(&dataset.name)),
                claim: Cow::Borrowed(dataset.claim.as_str()),
                path: Cow::Owned([root, "/", dataset.name.as_str()].concat()),
                read_only: config.datasets.read_only,
            });
        }
        Self { mounts, env }
    }
}

/// The values of a plan that containers get, written once per pod and copied into every
/// container's operations.
struct Rendered {
    /// The plan's mounts as volume mounts (`MountOut`), in order.
    mounts: RenderedList,
    /// The plan's environment variables (`EnvOut`), in order.
    env: RenderedList,
}

impl Rendered {
    fn new(plan: &MutationPlan) -> Self {
        Rendered {
            mounts: RenderedList::new(plan.mounts.iter().map(MountOut::from)),
            env: RenderedList::new(plan.env.iter().map(EnvOut::from)),
        }
    }

    /// About how many bytes the operations of `containers` containers take at most (each
    /// gets every mount and variable, one operation each), so that the patch is reserved
    /// once.
    fn patch_size(&self, plan: &MutationPlan, containers: usize, pointer: usize) -> usize {
        // `{"op":"replace","path":"` … `","value":` … `},` around a pointer such as
        // `/spec/initContainers/12/volumeMounts/3`.
        let operation = 80 + pointer;
        let per_container = self.mounts.json_len()
            + self.env.json_len()
            + (plan.mounts.len() + plan.env.len() + 2) * operation;
        // The stamp, the pod's security context and its volumes.
        let pod = 512 + plan.mounts.len() * (operation + 64);
        pod + containers * per_container
    }
}

/// The heads of a container's appending operations (`add` at `…/volumeMounts/-` and at
/// `…/env/-`): each written once per container, when first used, into a buffer reused for
/// the next container.
#[derive(Default)]
struct Appends {
    mounts: AddHead,
    env: AddHead,
}

/// Writes the operations that make `pod` run as `identity` into `patch`. `datasets` are
/// the namespace's dataset claims (ignored when the pod carries
/// `homestead.dev/no-datasets`).
pub fn mutate(
    patch: &mut Patch,
    config: &Config,
    identity: &Identity,
    datasets: &[Dataset],
    pod: &PodView<'_>,
) {
    if pod.missing_parent {
        return;
    }
    let root = Pointer::root(&pod.pointer);
    let Some(spec) = &pod.spec else {
        stamp(patch, identity, &root, pod);
        return;
    };
    let datasets = if pod.no_datasets() { &[][..] } else { datasets };
    let plan = MutationPlan::new(config, identity, datasets);
    let rendered = Rendered::new(&plan);
    let lists = [
        ("containers", spec.containers.as_deref().unwrap_or_default()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    let containers = lists.iter().map(|(_, list)| list.len()).sum();
    // Reserved before the first operation (the stamp), so that the patch is allocated
    // once rather than at its initial size and then grown.
    patch.reserve(rendered.patch_size(&plan, containers, pod.pointer.len()));
    stamp(patch, identity, &root, pod);
    let spec_ptr = root.keys(&["spec"]);
    pod_security(patch, identity, &spec_ptr, spec);
    volumes(patch, &plan, &spec_ptr, spec);
    let mut container_ptr = PointerText::default();
    let mut appends = Appends::default();
    for (list, containers) in lists {
        // `…/containers`, written once; each container's index is appended to it.
        container_ptr.set(&spec_ptr.keys(std::slice::from_ref(&list)));
        let list_len = container_ptr.len();
        for (i, container) in containers.iter().enumerate() {
            container_ptr.truncate(list_len);
            container_ptr.push_index(i);
            appends.mounts.clear();
            appends.env.clear();
            let ptr = container_ptr.pointer();
            container_ops(
                patch,
                identity,
                &plan,
                &rendered,
                &mut appends,
                &ptr,
                container,
            );
        }
    }
    ephemeral_ops(patch, identity, &spec_ptr, spec);
}

/// Writes the operations that make the ephemeral containers of `pod` run as `identity`
/// (the `pods/ephemeralcontainers` subresource, where nothing else of a pod may change):
/// each gets the security context of the other containers, never a privilege escalation.
pub fn mutate_ephemeral(patch: &mut Patch, identity: &Identity, pod: &PodView<'_>) {
    if let Some(spec) = &pod.spec {
        ephemeral_ops(
            patch,
            identity,
            &Pointer::root(&pod.pointer).keys(&["spec"]),
            spec,
        );
    }
}

fn ephemeral_ops(
    patch: &mut Patch,
    identity: &Identity,
    spec_ptr: &Pointer<'_>,
    spec: &PodSpec<'_>,
) {
    let list_ptr = spec_ptr.keys(&["ephemeralContainers"]);
    for (i, container) in spec.ephemeral_containers.iter().flatten().enumerate() {
        container_security(patch, identity, &list_ptr.index(i), container);
    }
}

/// Writes the stamp: the `homestead.dev/run-as` annotation (the username) and the
/// `homestead.dev/user` label (the `User` object name, which the pod index reads).
fn stamp(patch: &mut Patch, identity: &Identity, root: &Pointer<'_>, pod: &PodView<'_>) {
    let username = identity.username();
    let user = identity.user.name.as_str();
    let run_as = Member(names::ANNOTATION_RUN_AS, username);
    let user_label = Member(names::LABEL_USER, user);
    let Some(meta) = &pod.metadata else {
        patch.add_json(
            root.keys(&["metadata"]),
            &StampOut {
                annotations: run_as,
                labels: user_label,
            },
        );
        return;
    };
    match &meta.annotations {
        None => patch.add_json(root.keys(&["metadata", "annotations"]), &run_as),
        Some(annotations) if annotations.run_as.as_deref() != Some(username) => patch.add_json(
            root.keys(&["metadata", "annotations", names::ANNOTATION_RUN_AS]),
            username,
        ),
        Some(_) => {}
    }
    match &meta.labels {
        None => patch.add_json(root.keys(&["metadata", "labels"]), &user_label),
        Some(labels) if labels.user.as_deref() != Some(user) => {
            patch.add_json(root.keys(&["metadata", "labels", names::LABEL_USER]), user);
        }
        Some(_) => {}
    }
}

/// The metadata a pod without any gets: the stamp's annotation and label.
struct StampOut<'a> {
    annotations: Member<'a, &'a str>,
    labels: Member<'a, &'a str>,
}

impl WriteJson for StampOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object(out, |o| {
            o.member("annotations", &self.annotations);
            o.member("labels", &self.labels);
        });
    }
}

/// A pod security context as homestead writes it.
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
struct PodSecurityOut<'a> {
    run_as_user: i64,
    run_as_group: i64,
    run_as_non_root: bool,
    fs_group: i64,
    fs_group_change_policy: &'a str,
    supplemental_groups: &'a [i64],
    supplemental_groups_policy: &'a str,
}

impl WriteJson for PodSecurityOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"runAsUser":"#);
        self.run_as_user.write_json(out);
        out.extend_from_slice(br#","runAsGroup":"#);
        self.run_as_group.write_json(out);
        out.extend_from_slice(br#","runAsNonRoot":"#);
        self.run_as_non_root.write_json(out);
        out.extend_from_slice(br#","fsGroup":"#);
        self.fs_group.write_json(out);
        out.extend_from_slice(br#","fsGroupChangePolicy":"#);
        self.fs_group_change_policy.write_json(out);
        out.extend_from_slice(br#","supplementalGroups":"#);
        self.supplemental_groups.write_json(out);
        out.extend_from_slice(br#","supplementalGroupsPolicy":"#);
        self.supplemental_groups_policy.write_json(out);
        out.push(b'}');
    }
}

fn pod_security(
    patch: &mut Patch,
    identity: &Identity,
    spec_ptr: &Pointer<'_>,
    spec: &PodSpec<'_>,
) {
    let Some(sc) = &spec.security_context else {
        patch.add_json(
            spec_ptr.keys(&["securityContext"]),
            &PodSecurityOut {
                run_as_user: identity.uid(),
                run_as_group: identity.gid,
                run_as_non_root: true,
                fs_group: identity.gid,
                fs_group_change_policy: FS_GROUP_CHANGE_POLICY,
                supplemental_groups: &identity.supplemental_groups,
                supplemental_groups_policy: SUPPLEMENTAL_GROUPS_POLICY,
            },
        );
        return;
    };
    let PodSecurityContext {
        run_as_user,
        run_as_group,
        run_as_non_root,
        fs_group,
        fs_group_change_policy,
        supplemental_groups,
        supplemental_groups_policy,
        ..
    } = sc;
    let sc_ptr = spec_ptr.keys(&["securityContext"]);
    if *run_as_user != Some(identity.uid()) {
        patch.add_json(sc_ptr.keys(&["runAsUser"]), &identity.uid());
    }
    if *run_as_group != Some(identity.gid) {
        patch.add_json(sc_ptr.keys(&["runAsGroup"]), &identity.gid);
    }
    if *run_as_non_root != Some(true) {
        patch.add_json(sc_ptr.keys(&["runAsNonRoot"]), &true);
    }
    if *fs_group != Some(identity.gid) {
        patch.add_json(sc_ptr.keys(&["fsGroup"]), &identity.gid);
    }
    if fs_group_change_policy.as_deref() != Some(FS_GROUP_CHANGE_POLICY) {
        patch.add_json(
            sc_ptr.keys(&["fsGroupChangePolicy"]),
            FS_GROUP_CHANGE_POLICY,
        );
    }
    if supplemental_groups.as_deref() != Some(identity.supplemental_groups.as_slice()) {
        patch.add_json(
            sc_ptr.keys(&["supplementalGroups"]),
            identity.supplemental_groups.as_slice(),
        );
    }
    if supplemental_groups_policy.as_deref() != Some(SUPPLEMENTAL_GROUPS_POLICY) {
        patch.add_json(
            sc_ptr.keys(&["supplementalGroupsPolicy"]),
            SUPPLEMENTAL_GROUPS_POLICY,
        );
    }
}

/// A volume as homestead writes it: a claim and nothing else.
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
struct VolumeOut<'a> {
    name: &'a str,
    persistent_volume_claim: ClaimOut<'a>,
}

#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
struct ClaimOut<'a> {
    claim_name: &'a str,
}

impl WriteJson for VolumeOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"name":"#);
        self.name.write_json(out);
        out.extend_from_slice(br#","persistentVolumeClaim":{"claimName":"#);
        self.persistent_volume_claim.claim_name.write_json(out);
        out.extend_from_slice(b"}}");
    }
}

impl<'a> From<&'a Mount<'_>> for VolumeOut<'a> {
    fn from(mount: &'a Mount<'_>) -> Self {
        VolumeOut {
            name: &mount.volume,
            persistent_volume_claim: ClaimOut {
                claim_name: &mount.claim,
            },
        }
    }
}

fn volumes(patch: &mut Patch, plan: &MutationPlan, spec_ptr: &Pointer<'_>, spec: &PodSpec<'_>) {
    if plan.mounts.is_empty() {
        return;
    }
    let volumes_ptr = spec_ptr.keys(&["volumes"]);
    let Some(existing) = &spec.volumes else {
        patch.add_json(volumes_ptr, &Array(plan.mounts.iter().map(VolumeOut::from)));
        return;
    };
    for mount in &plan.mounts {
        match existing.iter().position(|v| v.name == *mount.volume) {
            // A volume under a homestead name that points elsewhere is replaced.
            Some(i) if !existing[i].is_only_claim(&mount.claim) => {
                patch.replace_json(volumes_ptr.index(i), &VolumeOut::from(mount));
            }
            Some(_) => {}
            None => patch.add_json(volumes_ptr.end(), &VolumeOut::from(mount)),
        }
    }
}

/// A volume mount as homestead writes it.
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(rename_all = "camelCase"))]
struct MountOut<'a> {
    name: &'a str,
    mount_path: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "std::ops::Not::not"))]
    read_only: bool,
}

impl WriteJson for MountOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"name":"#);
        self.name.write_json(out);
        out.extend_from_slice(br#","mountPath":"#);
        self.mount_path.write_json(out);
        if self.read_only {
            out.extend_from_slice(br#","readOnly":true"#);
        }
        out.push(b'}');
    }
}

impl<'a> From<&'a Mount<'_>> for MountOut<'a> {
    fn from(mount: &'a Mount<'_>) -> Self {
        MountOut {
            name: &mount.volume,
            mount_path: &mount.path,
            read_only: mount.read_only,
        }
    }
}

/// An environment variable as homestead writes it.
#[cfg_attr(test, derive(Serialize))]
struct EnvOut<'a> {
    name: &'a str,
    value: &'a str,
}

impl WriteJson for EnvOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"name":"#);
        self.name.write_json(out);
        out.extend_from_slice(br#","value":"#);
        self.value.write_json(out);
        out.push(b'}');
    }
}

impl<'a> From<&'a (&'static str, Cow<'_, str>)> for EnvOut<'a> {
    fn from((name, value): &'a (&'static str, Cow<'_, str>)) -> Self {
        EnvOut { name, value }
    }
}

fn mount_is_right(existing: &VolumeMount<'_>, mount: &Mount<'_>) -> bool {
    existing.name == *mount.volume
        && existing.sub_path.as_deref().is_none_or(str::is_empty)
        && existing.sub_path_expr.as_deref().is_none_or(str::is_empty)
        && (!mount.read_only || existing.read_only == Some(true))
}

fn container_ops(
    patch: &mut Patch,
    identity: &Identity,
    plan: &MutationPlan,
    rendered: &Rendered,
    appends: &mut Appends,
    ptr: &Pointer<'_>,
    container: &Container<'_>,
) {
    // Mounts.
    if !plan.mounts.is_empty() {
        let mounts_ptr = ptr.keys(&["volumeMounts"]);
        match &container.volume_mounts {
            None => patch.add_json(mounts_ptr, &rendered.mounts.all()),
            Some(existing) => {
                for (k, mount) in plan.mounts.iter().enumerate() {
                    match existing.iter().position(|m| m.mount_path == *mount.path) {
                        Some(j) if !mount_is_right(&existing[j], mount) => {
                            patch.replace_json(mounts_ptr.index(j), &rendered.mounts.item(k))
                        }
                        Some(_) => {}
                        None => patch.add_with_head(
                            appends.mounts.get_or_set(&mounts_ptr.end()),
                            &rendered.mounts.item(k),
                        ),
                    }
                }
                // Other mounts of a read-only homestead volume are made read-only too.
                for (j, m) in existing.iter().enumerate() {
                    let read_only_volume = plan
                        .mounts
                        .iter()
                        .any(|p| p.read_only && m.name == *p.volume && m.mount_path != *p.path);
                    if read_only_volume && m.read_only != Some(true) {
                        patch.add_json(mounts_ptr.index(j).keys(&["readOnly"]), &true);
                    }
                }
            }
        }
    }

    container_security(patch, identity, ptr, container);

    // Environment.
    let env_ptr = ptr.keys(&["env"]);
    match &container.env {
        None => patch.add_json(env_ptr, &rendered.env.all()),
        Some(existing) => {
            for (k, (name, value)) in plan.env.iter().enumerate() {
                let mut found = false;
                for (j, var) in existing
                    .homestead
                    .iter()
                    .filter(|(_, var)| var.name == *name)
                {
                    found = true;
                    if !env_is(var, value) {
                        patch.replace_json(env_ptr.index(*j), &rendered.env.item(k));
                    }
                }
                if !found {
                    patch.add_with_head(
                        appends.env.get_or_set(&env_ptr.end()),
                        &rendered.env.item(k),
                    );
                }
            }
        }
    }
}

/// The security context of one container: what contradicts the identity is overwritten
/// and privilege escalation is switched off where it is unset.
fn container_security(
    patch: &mut Patch,
    identity: &Identity,
    ptr: &Pointer<'_>,
    container: &Container<'_>,
) {
    let sc_ptr = ptr.keys(&["securityContext"]);
    let Some(sc) = &container.security_context else {
        patch.add_json(sc_ptr, &Member("allowPrivilegeEscalation", false));
        return;
    };
    let SecurityContext {
        run_as_user,
        run_as_group,
        run_as_non_root,
        allow_privilege_escalation,
        ..
    } = sc;
    if run_as_user.is_some_and(|u| u != identity.uid()) {
        patch.add_json(sc_ptr.keys(&["runAsUser"]), &identity.uid());
    }
    if run_as_group.is_some_and(|g| !identity.has_group(g)) {
        patch.add_json(sc_ptr.keys(&["runAsGroup"]), &identity.gid);
    }
    if *run_as_non_root == Some(false) {
        patch.add_json(sc_ptr.keys(&["runAsNonRoot"]), &true);
    }
    // The API server refuses allowPrivilegeEscalation=false next to privileged or
    // CAP_SYS_ADMIN; validation refuses those anyway.
    let contradicts =
        sc.privileged == Some(true) || sc.added_capabilities().iter().any(|c| is_sys_admin(c));
    if allow_privilege_escalation.is_none() && !contradicts {
        patch.add_json(sc_ptr.keys(&["allowPrivilegeEscalation"]), &false);
    }
}

fn env_is(var: &EnvVar<'_>, value: &str) -> bool {
    var.value.as_deref() == Some(value) && var.value_from.is_none()
}

fn is_sys_admin(capability: &str) -> bool {
    let c = capability.strip_prefix("CAP_").unwrap_or(capability);
    c.eq_ignore_ascii_case("SYS_ADMIN")
}

/// Writes the stamp of an Argo object: `homestead.dev/run-as` = `username` in the
/// workflow spec's `podMetadata.annotations` (where Argo takes every pod's metadata
/// from), creating only the objects Argo's schema has on the way.
pub fn stamp_workflow(
    patch: &mut Patch,
    kind: WorkflowKind,
    object: &serde_json::Value,
    view: &WorkflowView,
    username: &str,
) {
    if view.stamp.as_deref() == Some(username) {
        return;
    }
    let run_as = Member(names::ANNOTATION_RUN_AS, username);
    let root = Pointer::root("");
    let spec = root.keys(kind.spec_keys());
    match view.depth {
        3 => patch.add_json(
            spec.keys(&["podMetadata", "annotations", names::ANNOTATION_RUN_AS]),
            username,
        ),
        2 => patch.add_json(spec.keys(&["podMetadata", "annotations"]), &run_as),
        1 => patch.add_json(spec.keys(&["podMetadata"]), &Member("annotations", run_as)),
        // No workflow spec (a CronWorkflow may have a spec without its workflowSpec).
        _ => {
            let pod_metadata = Member("podMetadata", Member("annotations", run_as));
            match kind {
                WorkflowKind::CronWorkflow if object.get("spec").is_some_and(|s| s.is_object()) => {
                    patch.add_json(root.keys(&["spec", "workflowSpec"]), &pod_metadata);
                }
                WorkflowKind::CronWorkflow => {
                    patch.add_json(root.keys(&["spec"]), &Member("workflowSpec", pod_metadata))
                }
                _ => patch.add_json(root.keys(&["spec"]), &pod_metadata),
            }
        }
    }
}

/// Removes every `homestead.dev/run-as` of an Argo object besides its stamp that could
/// make a pod run as anyone but `username`: any in a template's metadata, and copies of
/// the pod metadata that name someone else.
pub fn unstamp_workflow(patch: &mut Patch, view: &WorkflowView, username: &str) {
    for found in &view.others {
        if found.pod_metadata && found.value.as_deref() == Some(username) {
            continue;
        }
        let keys: Vec<&str> = found
            .path
            .iter()
            .map(String::as_str)
            .chain(["annotations", names::ANNOTATION_RUN_AS])
            .collect();
        patch.remove(Pointer::root("").keys(&keys));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::json::tricky;
    use proptest::prelude::*;
    use serde_json::json;

    fn written(value: &impl WriteJson) -> String {
        let mut out = Vec::new();
        value.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn serde(value: &impl Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    proptest! {
        #[test]
        fn values_are_written_as_serde_json_writes_them(
            a in tricky(),
            b in tricky(),
            c in tricky(),
            ids in any::<(i64, i64, i64)>(),
            groups in prop::collection::vec(any::<i64>(), 0..4),
            flags in any::<(bool, bool)>(),
        ) {
            let mounts = [
                MountOut { name: &a, mount_path: &b, read_only: flags.0 },
                MountOut { name: &c, mount_path: &a, read_only: flags.1 },
            ];
            for mount in &mounts {
                prop_assert_eq!(written(mount), serde(mount));
            }
            let env = EnvOut { name: &a, value: &b };
            prop_assert_eq!(written(&env), serde(&env));
            let volume = VolumeOut { name: &b, persistent_volume_claim: ClaimOut { claim_name: &c } };
            prop_assert_eq!(written(&volume), serde(&volume));
            let security = PodSecurityOut {
                run_as_user: ids.0,
                run_as_group: ids.1,
                run_as_non_root: flags.0,
                fs_group: ids.2,
                fs_group_change_policy: &a,
                supplemental_groups: &groups,
                supplemental_groups_policy: &b,
            };
            prop_assert_eq!(written(&security), serde(&security));
            let stamp = StampOut {
                annotations: Member(names::ANNOTATION_RUN_AS, &a),
                labels: Member(names::LABEL_USER, &b),
            };
            prop_assert_eq!(
                written(&stamp),
                serde(&json!({
                    "annotations": { names::ANNOTATION_RUN_AS: a },
                    "labels": { names::LABEL_USER: b },
                }))
            );
            // A list written once copies as the array and as each item.
            let list = RenderedList::new(mounts.iter());
            prop_assert_eq!(written(&list.all()), serde(&mounts));
            prop_assert_eq!(written(&list.item(1)), serde(&mounts[1]));
        }
    }

    #[test]
    fn the_stamps_of_workflows_are_the_objects_argo_reads() {
        let run_as = Member(names::ANNOTATION_RUN_AS, "a\"da");
        assert_eq!(
            written(&Member(
                "workflowSpec",
                Member("podMetadata", Member("annotations", run_as))
            )),
            serde(
                &json!({"workflowSpec": {"podMetadata": {"annotations": {"homestead.dev/run-as": "a\"da"}}}})
            )
        );
        assert_eq!(
            written(&Member("allowPrivilegeEscalation", false)),
            r#"{"allowPrivilegeEscalation":false}"#
        );
    }
}
