//! Mutation (docs/architecture.md, "Identity rules"): the JSON Patch that makes a pod (or
//! pod template) run as its identity with its storage and environment. Operations are built by comparing the
//! parsed pod with what it should be, field by field — never by diffing clones — and
//! written straight into the patch; an object that already is what it should be gets no
//! operations at all.
//!
//! Values are written without serde ([`WriteJson`]) straight into the patch. Pointers are the pod's pointer, written once, and text fixed at compile time
//! ([`literal!`]). A container's operations are decided first ([`ContainerOp`]); a
//! container that needs what the one written before it needed gets a copy of that one's
//! operations with its own index ([`Patch::repeat_item`]).

use std::borrow::Cow;

#[cfg(test)]
use serde::Serialize;

use crate::argo::{WorkflowKind, WorkflowView};
use crate::config::{AfterGrace, Config};
use crate::directory::Dataset;
use crate::identity::Identity;
use crate::literal;
use crate::names;
use crate::patch::json::{Member, Plain, WriteJson, write_object};
use crate::patch::{Array, Item, Literal, Op, Patch, Pointer, PointerText, Rest};
use crate::plain;
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
    pub env: Vec<(Plain, EnvValue<'a>)>,
}

/// The value of an environment variable of a plan: text it borrows, or a number (the
/// uid, the gid) written when needed rather than kept as an allocated string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvValue<'a> {
    /// Text.
    Text(&'a str),
    /// A number, as its decimal text.
    Number(i64),
}

impl EnvValue<'_> {
    /// True when the value's text is `text`.
    pub fn is(&self, text: &str) -> bool {
        match *self {
            EnvValue::Text(own) => own == text,
            EnvValue::Number(n) => itoa::Buffer::new().format(n) == text,
        }
    }

    /// How long the value's text is.
    fn len(&self) -> usize {
        match *self {
            EnvValue::Text(text) => text.len(),
            EnvValue::Number(n) => itoa::Buffer::new().format(n).len(),
        }
    }
}

impl WriteJson for EnvValue<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match *self {
            EnvValue::Text(text) => text.write_json(out),
            // Digits and a sign need no escape.
            EnvValue::Number(n) => {
                out.push(b'"');
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.push(b'"');
            }
        }
    }
}

#[cfg(test)]
impl Serialize for EnvValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match *self {
            EnvValue::Text(text) => serializer.serialize_str(text),
            EnvValue::Number(n) => serializer.serialize_str(itoa::Buffer::new().format(n)),
        }
    }
}

impl<'a> MutationPlan<'a> {
    /// The plan for `identity`, with `datasets` unless the pod opted out.
    pub fn new(config: &'a Config, identity: &'a Identity, datasets: &'a [Dataset]) -> Self {
        let mut mounts = Vec::with_capacity(4 + datasets.len());
        let mut env = Vec::with_capacity(8);
        env.push((plain!(names::ENV_USER), EnvValue::Text(identity.username())));
        env.push((plain!(names::ENV_UID), EnvValue::Number(identity.uid())));
        env.push((plain!(names::ENV_GID), EnvValue::Number(identity.gid)));
        env.push((
            plain!(names::ENV_NAMESPACE),
            EnvValue::Text(identity.namespace.as_str()),
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
            env.push((
                plain!(names::ENV_PRIVATE_DIR),
                EnvValue::Text(path.as_str()),
            ));
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
            env.push((plain!(names::ENV_SHARED_DIR), EnvValue::Text(path.as_str())));
        }
        if let Some(session) = &identity.session
            && storage.session.enabled
        {
            let path = storage
                .session
                .mount_path
                .as_deref()
                .unwrap_or(session.data_directory.as_str());
            // After the end, `afterGrace: readOnly` keeps the data readable, not writable.
            let ended_read_only = session.lifecycle == Lifecycle::Ended
                && config.sessions.after_grace == AfterGrace::ReadOnly;
            mounts.push(Mount {
                volume: Cow::Borrowed(names::VOLUME_DATA),
                claim: Cow::Borrowed(names::VOLUME_DATA),
                path: Cow::Borrowed(path),
                read_only: storage.session.read_only || ended_read_only,
            });
            env.push((plain!(names::ENV_DATA_DIR), EnvValue::Text(path)));
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
            env.push((
                plain!(names::ENV_PROJECT_DIR),
                EnvValue::Text(path.as_str()),
            ));
        }
        let root = config.datasets.mount_root.trim_end_matches('/');
        for dataset in datasets {
            mounts.push(Mount {
                // `names::dataset_volume`, without formatting machinery.
                volume: Cow::Owned([names::VOLUME_DATASET_PREFIX, dataset.name.as_str()].concat()),
                claim: Cow::Borrowed(dataset.claim.as_str()),
                path: Cow::Owned([root, "/", dataset.name.as_str()].concat()),
                read_only: config.datasets.read_only,
            });
        }
        Self { mounts, env }
    }
}

impl MutationPlan<'_> {
    /// About how many bytes the operations of `containers` containers take at most (each
    /// gets every mount and variable, one operation each), so that the patch is reserved
    /// once.
    fn patch_size(&self, containers: usize, pointer: usize) -> usize {
        // `{"op":"replace","path":"` … `","value":` … `},` around a pointer such as
        // `/spec/initContainers/12/volumeMounts/3`.
        let operation = 80 + pointer;
        // `{"name":…,"mountPath":…,"readOnly":true}` and `{"name":…,"value":…}`.
        let values: usize = self
            .mounts
            .iter()
            .map(|m| m.volume.len() + m.path.len() + 48)
            .chain(
                self.env
                    .iter()
                    .map(|(name, value)| name.as_str().len() + value.len() + 24),
            )
            .sum();
        let per_container = values + (self.mounts.len() + self.env.len() + 2) * operation;
        // The stamp, the pod's security context and its volumes.
        let pod = 512 + self.mounts.len() * (operation + 64);
        pod + containers * per_container
    }
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
    // One pointer buffer for the whole pod: the pod's pointer, then `…/spec`, then each
    // list of containers, cut back and extended as it goes.
    let mut ptr = PointerText::default();
    ptr.set(&Pointer::root(&pod.pointer));
    let Some(spec) = &pod.spec else {
        stamp(patch, identity, &ptr, pod);
        return;
    };
    let datasets = if pod.no_datasets() { &[][..] } else { datasets };
    let plan = MutationPlan::new(config, identity, datasets);
    let lists = [
        (
            literal!("/containers"),
            spec.containers.as_deref().unwrap_or_default(),
        ),
        (
            literal!("/initContainers"),
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    let containers = lists.iter().map(|(_, list)| list.len()).sum();
    // Reserved before the first operation (the stamp), so that the patch is allocated
    // once rather than at its initial size and then grown.
    patch.reserve(plan.patch_size(containers, ptr.len()));
    stamp(patch, identity, &ptr, pod);
    ptr.push_literal(literal!("/spec"));
    pod_security(patch, identity, &ptr, spec);
    volumes(patch, &plan, &mut ptr, spec);
    let spec_len = ptr.len();
    let mut ops = Vec::with_capacity(plan.mounts.len() + plan.env.len() + 2);
    let mut written = Vec::with_capacity(ops.capacity());
    let mut item = Item::default();
    for (list, containers) in lists {
        ptr.truncate(spec_len);
        ptr.push_literal(list);
        item.clear();
        for (i, container) in containers.iter().enumerate() {
            ops.clear();
            container_ops(&mut ops, identity, &plan, container);
            // A container that needs what the one written last needed gets a copy of its
            // operations (only the index differs).
            if ops == written && patch.repeat_item(&item, i) {
                continue;
            }
            write_ops(patch, &mut item, &ptr, i, &ops, identity, &plan);
            std::mem::swap(&mut ops, &mut written);
        }
    }
    ptr.truncate(spec_len);
    ephemeral_ops(patch, identity, &mut ptr, spec);
}

/// Writes the operations that make the ephemeral containers of `pod` run as `identity`
/// (the `pods/ephemeralcontainers` subresource, where nothing else of a pod may change):
/// each gets the security context of the other containers, never a privilege escalation.
pub fn mutate_ephemeral(patch: &mut Patch, identity: &Identity, pod: &PodView<'_>) {
    if let Some(spec) = &pod.spec {
        let mut ptr = PointerText::default();
        ptr.set(&Pointer::root(&pod.pointer));
        ptr.push_literal(literal!("/spec"));
        ephemeral_ops(patch, identity, &mut ptr, spec);
    }
}

/// `spec_ptr` is the spec's pointer; it is extended by the list's.
fn ephemeral_ops(
    patch: &mut Patch,
    identity: &Identity,
    spec_ptr: &mut PointerText,
    spec: &PodSpec<'_>,
) {
    let Some(containers) = &spec.ephemeral_containers else {
        return;
    };
    spec_ptr.push_literal(literal!("/ephemeralContainers"));
    // Security operations only: no mounts, no variables.
    let plan = MutationPlan {
        mounts: Vec::new(),
        env: Vec::new(),
    };
    let mut item = Item::default();
    let (mut ops, mut written) = (Vec::new(), Vec::new());
    for (i, container) in containers.iter().enumerate() {
        ops.clear();
        container_security(&mut ops, identity, container);
        if ops == written && patch.repeat_item(&item, i) {
            continue;
        }
        write_ops(patch, &mut item, spec_ptr, i, &ops, identity, &plan);
        std::mem::swap(&mut ops, &mut written);
    }
}

/// Writes the stamp: the `homestead.dev/run-as` annotation (the username) and the
/// `homestead.dev/user` label (the `User` object name, which the pod index reads).
/// `root` is the pod's pointer.
fn stamp(patch: &mut Patch, identity: &Identity, root: &PointerText, pod: &PodView<'_>) {
    let username = identity.username();
    let user = identity.user.name.as_str();
    let run_as = Member(names::ANNOTATION_RUN_AS, username);
    let user_label = Member(names::LABEL_USER, user);
    let at = |literal| Rest::literal(literal);
    let Some(meta) = &pod.metadata else {
        patch.op_at(
            Op::Add,
            root,
            at(literal!("/metadata")),
            &StampOut {
                annotations: run_as,
                labels: user_label,
            },
        );
        return;
    };
    match &meta.annotations {
        None => patch.op_at(
            Op::Add,
            root,
            at(literal!("/metadata/annotations")),
            &run_as,
        ),
        Some(annotations) if annotations.run_as.as_deref() != Some(username) => {
            patch.op_at(Op::Add, root, at(RUN_AS_POINTER), username);
        }
        Some(_) => {}
    }
    match &meta.labels {
        None => patch.op_at(Op::Add, root, at(literal!("/metadata/labels")), &user_label),
        Some(labels) if labels.user.as_deref() != Some(user) => {
            patch.op_at(Op::Add, root, at(USER_POINTER), user);
        }
        Some(_) => {}
    }
}

/// `/metadata/annotations/` and `homestead.dev/run-as`, escaped.
const RUN_AS_POINTER: Literal = literal!("/metadata/annotations/homestead.dev~1run-as");
/// `/metadata/labels/` and `homestead.dev/user`, escaped.
const USER_POINTER: Literal = literal!("/metadata/labels/homestead.dev~1user");

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

/// `spec` is the pod spec's pointer.
fn pod_security(patch: &mut Patch, identity: &Identity, spec: &PointerText, pod: &PodSpec<'_>) {
    let at = |literal| Rest::literal(literal);
    let Some(sc) = &pod.security_context else {
        patch.op_at(
            Op::Add,
            spec,
            at(literal!("/securityContext")),
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
    if *run_as_user != Some(identity.uid()) {
        let rest = at(literal!("/securityContext/runAsUser"));
        patch.op_at(Op::Add, spec, rest, &identity.uid());
    }
    if *run_as_group != Some(identity.gid) {
        let rest = at(literal!("/securityContext/runAsGroup"));
        patch.op_at(Op::Add, spec, rest, &identity.gid);
    }
    if *run_as_non_root != Some(true) {
        let rest = at(literal!("/securityContext/runAsNonRoot"));
        patch.op_at(Op::Add, spec, rest, &true);
    }
    if *fs_group != Some(identity.gid) {
        let rest = at(literal!("/securityContext/fsGroup"));
        patch.op_at(Op::Add, spec, rest, &identity.gid);
    }
    if fs_group_change_policy.as_deref() != Some(FS_GROUP_CHANGE_POLICY) {
        let rest = at(literal!("/securityContext/fsGroupChangePolicy"));
        patch.op_at(Op::Add, spec, rest, FS_GROUP_CHANGE_POLICY);
    }
    if supplemental_groups.as_deref() != Some(identity.supplemental_groups.as_slice()) {
        let rest = at(literal!("/securityContext/supplementalGroups"));
        patch.op_at(Op::Add, spec, rest, identity.supplemental_groups.as_slice());
    }
    if supplemental_groups_policy.as_deref() != Some(SUPPLEMENTAL_GROUPS_POLICY) {
        let rest = at(literal!("/securityContext/supplementalGroupsPolicy"));
        patch.op_at(Op::Add, spec, rest, SUPPLEMENTAL_GROUPS_POLICY);
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

/// `spec` is the pod spec's pointer (left as it was).
fn volumes(patch: &mut Patch, plan: &MutationPlan, spec: &mut PointerText, pod: &PodSpec<'_>) {
    if plan.mounts.is_empty() {
        return;
    }
    let Some(existing) = &pod.volumes else {
        patch.op_at(
            Op::Add,
            spec,
            Rest::literal(literal!("/volumes")),
            &Array(plan.mounts.iter().map(VolumeOut::from)),
        );
        return;
    };
    for mount in &plan.mounts {
        match existing.iter().position(|v| v.name == *mount.volume) {
            // A volume under a homestead name that points elsewhere is replaced.
            Some(i) if !existing[i].is_only_claim(&mount.claim) => {
                let rest = Rest::indexed(literal!("/volumes"), i, Literal::EMPTY);
                patch.op_at(Op::Replace, spec, rest, &VolumeOut::from(mount));
            }
            Some(_) => {}
            None => patch.op_at(
                Op::Add,
                spec,
                Rest::literal(literal!("/volumes/-")),
                &VolumeOut::from(mount),
            ),
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
    name: Plain,
    value: EnvValue<'a>,
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

impl<'a> From<&(Plain, EnvValue<'a>)> for EnvOut<'a> {
    fn from((name, value): &(Plain, EnvValue<'a>)) -> Self {
        EnvOut {
            name: *name,
            value: *value,
        }
    }
}

fn mount_is_right(existing: &VolumeMount<'_>, mount: &Mount<'_>) -> bool {
    existing.name == *mount.volume
        && existing.sub_path.as_deref().is_none_or(str::is_empty)
        && existing.sub_path_expr.as_deref().is_none_or(str::is_empty)
        && (!mount.read_only || existing.read_only == Some(true))
}

/// One operation on a container, decided before any is written (so that a container
/// that needs what the one before needed gets a copy of its operations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerOp {
    /// `add` every mount, the container having none.
    AllMounts,
    /// `replace` existing mount `at` by the plan's mount `mount`.
    ReplaceMount { at: usize, mount: usize },
    /// `add` the plan's mount `mount` at the end.
    AddMount(usize),
    /// `add` `readOnly: true` to existing mount `at`.
    MountReadOnly(usize),
    /// `add` a security context that only forbids privilege escalation.
    NoEscalationContext,
    /// `add` the identity's uid as `runAsUser`.
    RunAsUser,
    /// `add` the identity's gid as `runAsGroup`.
    RunAsGroup,
    /// `add` `runAsNonRoot: true`.
    RunAsNonRoot,
    /// `add` `allowPrivilegeEscalation: false`.
    NoEscalation,
    /// `add` every environment variable, the container having none.
    AllEnv,
    /// `replace` existing variable `at` by the plan's variable `var`.
    ReplaceEnv { at: usize, var: usize },
    /// `add` the plan's variable `var` at the end.
    AddEnv(usize),
}

/// Decides the operations of one container, in the order they are written.
fn container_ops(
    ops: &mut Vec<ContainerOp>,
    identity: &Identity,
    plan: &MutationPlan,
    container: &Container<'_>,
) {
    // Mounts.
    if !plan.mounts.is_empty() {
        match &container.volume_mounts {
            None => ops.push(ContainerOp::AllMounts),
            Some(existing) => {
                for (k, mount) in plan.mounts.iter().enumerate() {
                    match existing.iter().position(|m| m.mount_path == *mount.path) {
                        Some(j) if !mount_is_right(&existing[j], mount) => {
                            ops.push(ContainerOp::ReplaceMount { at: j, mount: k });
                        }
                        Some(_) => {}
                        None => ops.push(ContainerOp::AddMount(k)),
                    }
                }
                // Other mounts of a read-only homestead volume are made read-only too.
                for (j, m) in existing.iter().enumerate() {
                    let read_only_volume = plan
                        .mounts
                        .iter()
                        .any(|p| p.read_only && m.name == *p.volume && m.mount_path != *p.path);
                    if read_only_volume && m.read_only != Some(true) {
                        ops.push(ContainerOp::MountReadOnly(j));
                    }
                }
            }
        }
    }

    container_security(ops, identity, container);

    // Environment.
    match &container.env {
        None => ops.push(ContainerOp::AllEnv),
        Some(existing) => {
            for (k, (name, value)) in plan.env.iter().enumerate() {
                let mut found = false;
                for (j, var) in existing
                    .homestead
                    .iter()
                    .filter(|(_, var)| var.name == name.as_str())
                {
                    found = true;
                    if !env_is(var, value) {
                        ops.push(ContainerOp::ReplaceEnv { at: *j, var: k });
                    }
                }
                if !found {
                    ops.push(ContainerOp::AddEnv(k));
                }
            }
        }
    }
}

/// The security context of one container: what contradicts the identity is overwritten
/// and privilege escalation is switched off where it is unset.
fn container_security(ops: &mut Vec<ContainerOp>, identity: &Identity, container: &Container<'_>) {
    let Some(sc) = &container.security_context else {
        ops.push(ContainerOp::NoEscalationContext);
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
        ops.push(ContainerOp::RunAsUser);
    }
    if run_as_group.is_some_and(|g| !identity.has_group(g)) {
        ops.push(ContainerOp::RunAsGroup);
    }
    if *run_as_non_root == Some(false) {
        ops.push(ContainerOp::RunAsNonRoot);
    }
    // The API server refuses allowPrivilegeEscalation=false next to privileged or
    // CAP_SYS_ADMIN; validation refuses those anyway.
    let contradicts =
        sc.privileged == Some(true) || sc.added_capabilities().iter().any(|c| is_sys_admin(c));
    if allow_privilege_escalation.is_none() && !contradicts {
        ops.push(ContainerOp::NoEscalation);
    }
}

/// Writes the operations `ops` of container `index` of the list at `list` (kept in
/// `item`, to be repeated for the next containers that need the same).
fn write_ops(
    patch: &mut Patch,
    item: &mut Item,
    list: &PointerText,
    index: usize,
    ops: &[ContainerOp],
    identity: &Identity,
    plan: &MutationPlan,
) {
    use ContainerOp as C;
    let at = |literal| Rest::literal(literal);
    let mounts = literal!("/volumeMounts");
    let env = literal!("/env");
    patch.begin_item(item, index);
    for op in ops {
        match *op {
            C::AllMounts => {
                let all = Array(plan.mounts.iter().map(MountOut::from));
                patch.item_op(item, Op::Add, list, at(mounts), &all);
            }
            C::ReplaceMount { at: j, mount } => {
                if let Some(mount) = plan.mounts.get(mount) {
                    let rest = Rest::indexed(mounts, j, Literal::EMPTY);
                    patch.item_op(item, Op::Replace, list, rest, &MountOut::from(mount));
                }
            }
            C::AddMount(mount) => {
                if let Some(mount) = plan.mounts.get(mount) {
                    let rest = at(literal!("/volumeMounts/-"));
                    patch.item_op(item, Op::Add, list, rest, &MountOut::from(mount));
                }
            }
            C::MountReadOnly(j) => {
                let rest = Rest::indexed(mounts, j, literal!("/readOnly"));
                patch.item_op(item, Op::Add, list, rest, &true);
            }
            C::NoEscalationContext => patch.item_op(
                item,
                Op::Add,
                list,
                at(literal!("/securityContext")),
                &Member("allowPrivilegeEscalation", false),
            ),
            C::RunAsUser => {
                let rest = at(literal!("/securityContext/runAsUser"));
                patch.item_op(item, Op::Add, list, rest, &identity.uid());
            }
            C::RunAsGroup => {
                let rest = at(literal!("/securityContext/runAsGroup"));
                patch.item_op(item, Op::Add, list, rest, &identity.gid);
            }
            C::RunAsNonRoot => {
                let rest = at(literal!("/securityContext/runAsNonRoot"));
                patch.item_op(item, Op::Add, list, rest, &true);
            }
            C::NoEscalation => {
                let rest = at(literal!("/securityContext/allowPrivilegeEscalation"));
                patch.item_op(item, Op::Add, list, rest, &false);
            }
            C::AllEnv => {
                let all = Array(plan.env.iter().map(EnvOut::from));
                patch.item_op(item, Op::Add, list, at(env), &all);
            }
            C::ReplaceEnv { at: j, var } => {
                if let Some(var) = plan.env.get(var) {
                    let rest = Rest::indexed(env, j, Literal::EMPTY);
                    patch.item_op(item, Op::Replace, list, rest, &EnvOut::from(var));
                }
            }
            C::AddEnv(var) => {
                if let Some(var) = plan.env.get(var) {
                    let rest = at(literal!("/env/-"));
                    patch.item_op(item, Op::Add, list, rest, &EnvOut::from(var));
                }
            }
        }
    }
    patch.end_item(item);
}

fn env_is(var: &EnvVar<'_>, value: &EnvValue<'_>) -> bool {
    var.value.as_deref().is_some_and(|v| value.is(v)) && var.value_from.is_none()
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
            let env = EnvOut { name: plain!(names::ENV_DATA_DIR), value: EnvValue::Text(&b) };
            prop_assert_eq!(written(&env), serde(&env));
            let number = EnvOut { name: plain!(names::ENV_UID), value: EnvValue::Number(ids.0) };
            prop_assert_eq!(written(&number), serde(&number));
            prop_assert!(number.value.is(&ids.0.to_string()));
            prop_assert_eq!(number.value.len(), ids.0.to_string().len());
            prop_assert!(!number.value.is(&b) || b == ids.0.to_string());
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
            // The list of every mount, as containers without any get it.
            let list = Array(mounts.iter());
            prop_assert_eq!(written(&list), serde(&mounts));
        }
    }

    #[test]
    fn dataset_mounts_are_named_as_the_names_module_names_them() {
        let config = Config::default();
        let identity = crate::identity::Identity {
            user: std::sync::Arc::new(crate::directory::UserEntry {
                name: "ada".into(),
                username: "ada".into(),
                uid: 1001,
                gid: 1001,
                supplemental_groups: vec![],
                disabled: false,
                namespace: "ada".into(),
            }),
            session: None,
            project: None,
            namespace: "ada".into(),
            gid: 1001,
            supplemental_groups: vec![],
            private_claim: names::VOLUME_PRIVATE.into(),
        };
        let datasets: Vec<Dataset> = ["imagenet", "a.b-c"]
            .iter()
            .map(|name| Dataset {
                name: (*name).into(),
                claim: format!("{name}-claim"),
            })
            .collect();
        let plan = MutationPlan::new(&config, &identity, &datasets);
        let volumes: Vec<&str> = plan.mounts.iter().map(|m| m.volume.as_ref()).collect();
        let expected: Vec<String> = datasets
            .iter()
            .map(|d| names::dataset_volume(&d.name))
            .collect();
        assert_eq!(&volumes[volumes.len() - 2..], expected);
    }

    #[test]
    fn the_stamp_pointers_are_the_escaped_names() {
        for (literal, keys) in [
            (
                RUN_AS_POINTER,
                ["metadata", "annotations", names::ANNOTATION_RUN_AS],
            ),
            (USER_POINTER, ["metadata", "labels", names::LABEL_USER]),
        ] {
            assert_eq!(literal.as_str(), crate::patch::pointer(&keys));
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
