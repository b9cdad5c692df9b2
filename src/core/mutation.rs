//! Mutation (DESIGN §4): the JSON Patch that makes a pod (or pod template) run as its
//! identity with its storage and environment. Operations are built by comparing the
//! typed object with what it should be, field by field — never by diffing clones — and
//! an object that already is what it should be gets no operations at all.

use json_patch::jsonptr::PointerBuf;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    SecurityContext, Volume, VolumeMount,
};
use serde_json::{Map, Value, json};

use crate::core::config::Config;
use crate::core::directory::Dataset;
use crate::core::identity::Identity;
use crate::core::names;
use crate::core::patch::{Ops, at};
use crate::core::workload::PodView;

/// `fsGroupChangePolicy` written on every pod: recursive chown of big volumes is an outage.
pub const FS_GROUP_CHANGE_POLICY: &str = "OnRootMismatch";

/// A volume homestead mounts, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Volume name.
    pub volume: String,
    /// The claim behind it.
    pub claim: String,
    /// Where containers see it.
    pub path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// Everything a pod of `identity` should have, computed once per pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Volumes and their mounts, in order.
    pub mounts: Vec<Mount>,
    /// Environment variables, in order.
    pub env: Vec<(&'static str, String)>,
}

impl Plan {
    /// The plan for `identity`, with `datasets` unless the pod opted out.
    pub fn new(config: &Config, identity: &Identity, datasets: &[Dataset]) -> Self {
        let mut mounts = Vec::with_capacity(3 + datasets.len());
        let mut env = Vec::with_capacity(7);
        env.push((names::ENV_USER, identity.username().to_owned()));
        env.push((names::ENV_UID, identity.uid().to_string()));
        env.push((names::ENV_GID, identity.gid.to_string()));
        env.push((names::ENV_NAMESPACE, identity.namespace.clone()));
        let storage = &config.storage;
        if storage.private.enabled
            && let Some(path) = &storage.private.mount_path
        {
            mounts.push(Mount {
                volume: names::VOLUME_PRIVATE.into(),
                claim: identity.private_claim.clone(),
                path: path.clone(),
                read_only: storage.private.read_only,
            });
            env.push((names::ENV_PRIVATE_DIR, path.clone()));
        }
        if storage.shared.enabled
            && let Some(path) = &storage.shared.mount_path
        {
            mounts.push(Mount {
                volume: names::VOLUME_SHARED.into(),
                claim: names::VOLUME_SHARED.into(),
                path: path.clone(),
                read_only: storage.shared.read_only,
            });
            env.push((names::ENV_SHARED_DIR, path.clone()));
        }
        if let Some(session) = &identity.session
            && storage.session.enabled
        {
            let path = storage
                .session
                .mount_path
                .clone()
                .unwrap_or_else(|| session.data_directory.clone());
            mounts.push(Mount {
                volume: names::VOLUME_DATA.into(),
                claim: names::VOLUME_DATA.into(),
                path: path.clone(),
                read_only: storage.session.read_only,
            });
            env.push((names::ENV_DATA_DIR, path));
        }
        let root = config.datasets.mount_root.trim_end_matches('/');
        for dataset in datasets {
            mounts.push(Mount {
                volume: names::dataset_volume(&dataset.name),
                claim: dataset.claim.clone(),
                path: format!("{root}/{}", dataset.name),
                read_only: config.datasets.read_only,
            });
        }
        Self { mounts, env }
    }
}

/// The operations that make `pod` run as `identity`. `datasets` are the namespace's
/// dataset claims (ignored when the pod carries `homestead.dev/no-datasets`).
pub fn mutate(
    config: &Config,
    identity: &Identity,
    datasets: &[Dataset],
    pod: &PodView,
) -> Vec<json_patch::PatchOperation> {
    let mut ops = Ops::default();
    if pod.missing_parent {
        return ops.into_inner();
    }
    run_as(&mut ops, identity, pod);
    let Some(spec) = &pod.spec else {
        return ops.into_inner();
    };
    let datasets = if pod.no_datasets() { &[][..] } else { datasets };
    let plan = Plan::new(config, identity, datasets);
    let spec_ptr = at(&pod.pointer, ["spec"]);
    pod_security(&mut ops, identity, &spec_ptr, spec);
    volumes(&mut ops, &plan, &spec_ptr, spec);
    for (list, containers) in [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ] {
        for (i, container) in containers.into_iter().flatten().enumerate() {
            let ptr = at(&spec_ptr, [list]);
            let ptr = at(&ptr, [i]);
            container_ops(&mut ops, identity, &plan, &ptr, container);
        }
    }
    ops.into_inner()
}

fn run_as(ops: &mut Ops, identity: &Identity, pod: &PodView) {
    let username = identity.username();
    match &pod.metadata {
        None => ops.add(
            at(&pod.pointer, ["metadata"]),
            json!({ "annotations": { names::ANNOTATION_RUN_AS: username } }),
        ),
        Some(meta) => match &meta.annotations {
            None => ops.add(
                at(&pod.pointer, ["metadata", "annotations"]),
                json!({ names::ANNOTATION_RUN_AS: username }),
            ),
            Some(annotations) => {
                if annotations
                    .get(names::ANNOTATION_RUN_AS)
                    .map(String::as_str)
                    != Some(username)
                {
                    ops.add(
                        at(
                            &pod.pointer,
                            ["metadata", "annotations", names::ANNOTATION_RUN_AS],
                        ),
                        Value::from(username),
                    );
                }
            }
        },
    }
}

fn pod_security(ops: &mut Ops, identity: &Identity, spec_ptr: &PointerBuf, spec: &PodSpec) {
    let Some(sc) = &spec.security_context else {
        ops.add(
            at(spec_ptr, ["securityContext"]),
            json!({
                "runAsUser": identity.uid(),
                "runAsGroup": identity.gid,
                "runAsNonRoot": true,
                "fsGroup": identity.gid,
                "fsGroupChangePolicy": FS_GROUP_CHANGE_POLICY,
                "supplementalGroups": identity.supplemental_groups,
            }),
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
        ..
    } = sc;
    let field = |name: &str| at(spec_ptr, ["securityContext", name]);
    if *run_as_user != Some(identity.uid()) {
        ops.add(field("runAsUser"), Value::from(identity.uid()));
    }
    if *run_as_group != Some(identity.gid) {
        ops.add(field("runAsGroup"), Value::from(identity.gid));
    }
    if *run_as_non_root != Some(true) {
        ops.add(field("runAsNonRoot"), Value::Bool(true));
    }
    if *fs_group != Some(identity.gid) {
        ops.add(field("fsGroup"), Value::from(identity.gid));
    }
    if fs_group_change_policy.as_deref() != Some(FS_GROUP_CHANGE_POLICY) {
        ops.add(
            field("fsGroupChangePolicy"),
            Value::from(FS_GROUP_CHANGE_POLICY),
        );
    }
    if supplemental_groups.as_deref() != Some(identity.supplemental_groups.as_slice()) {
        ops.add(
            field("supplementalGroups"),
            json!(identity.supplemental_groups),
        );
    }
}

fn desired_volume(mount: &Mount) -> Volume {
    Volume {
        name: mount.volume.clone(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: mount.claim.clone(),
            read_only: None,
        }),
        ..Volume::default()
    }
}

fn volume_json(mount: &Mount) -> Value {
    json!({ "name": mount.volume, "persistentVolumeClaim": { "claimName": mount.claim } })
}

fn volumes(ops: &mut Ops, plan: &Plan, spec_ptr: &PointerBuf, spec: &PodSpec) {
    if plan.mounts.is_empty() {
        return;
    }
    let Some(existing) = &spec.volumes else {
        ops.add(
            at(spec_ptr, ["volumes"]),
            Value::Array(plan.mounts.iter().map(volume_json).collect()),
        );
        return;
    };
    for mount in &plan.mounts {
        match existing.iter().position(|v| v.name == mount.volume) {
            // A volume under a homestead name that points elsewhere is replaced.
            Some(i) if existing[i] != desired_volume(mount) => {
                ops.replace(at(spec_ptr, ["volumes"]).with_index(i), volume_json(mount));
            }
            Some(_) => {}
            None => ops.add(at(spec_ptr, ["volumes", "-"]), volume_json(mount)),
        }
    }
}

trait WithIndex {
    fn with_index(self, i: usize) -> PointerBuf;
}

impl WithIndex for PointerBuf {
    fn with_index(mut self, i: usize) -> PointerBuf {
        self.push_back(i);
        self
    }
}

fn mount_json(mount: &Mount) -> Value {
    let mut map = Map::with_capacity(3);
    map.insert("name".into(), Value::from(mount.volume.as_str()));
    map.insert("mountPath".into(), Value::from(mount.path.as_str()));
    if mount.read_only {
        map.insert("readOnly".into(), Value::Bool(true));
    }
    Value::Object(map)
}

fn mount_is_right(existing: &VolumeMount, mount: &Mount) -> bool {
    existing.name == mount.volume
        && existing.sub_path.as_deref().is_none_or(str::is_empty)
        && existing.sub_path_expr.as_deref().is_none_or(str::is_empty)
        && (!mount.read_only || existing.read_only == Some(true))
}

fn container_ops(
    ops: &mut Ops,
    identity: &Identity,
    plan: &Plan,
    ptr: &PointerBuf,
    container: &Container,
) {
    // Mounts.
    if !plan.mounts.is_empty() {
        match &container.volume_mounts {
            None => ops.add(
                at(ptr, ["volumeMounts"]),
                Value::Array(plan.mounts.iter().map(mount_json).collect()),
            ),
            Some(existing) => {
                for mount in &plan.mounts {
                    match existing.iter().position(|m| m.mount_path == mount.path) {
                        Some(j) if !mount_is_right(&existing[j], mount) => {
                            ops.replace(at(ptr, ["volumeMounts"]).with_index(j), mount_json(mount))
                        }
                        Some(_) => {}
                        None => ops.add(at(ptr, ["volumeMounts", "-"]), mount_json(mount)),
                    }
                }
                // Other mounts of a read-only homestead volume are made read-only too.
                for (j, m) in existing.iter().enumerate() {
                    let read_only_volume = plan
                        .mounts
                        .iter()
                        .any(|p| p.read_only && p.volume == m.name && p.path != m.mount_path);
                    if read_only_volume && m.read_only != Some(true) {
                        ops.add(
                            at(&at(ptr, ["volumeMounts"]).with_index(j), ["readOnly"]),
                            Value::Bool(true),
                        );
                    }
                }
            }
        }
    }

    // Security context: overwrite what contradicts the identity.
    match &container.security_context {
        None => ops.add(
            at(ptr, ["securityContext"]),
            json!({ "allowPrivilegeEscalation": false }),
        ),
        Some(sc) => {
            let SecurityContext {
                run_as_user,
                run_as_group,
                run_as_non_root,
                allow_privilege_escalation,
                ..
            } = sc;
            let field = |name: &str| at(ptr, ["securityContext", name]);
            if run_as_user.is_some_and(|u| u != identity.uid()) {
                ops.add(field("runAsUser"), Value::from(identity.uid()));
            }
            if run_as_group.is_some_and(|g| !identity.has_group(g)) {
                ops.add(field("runAsGroup"), Value::from(identity.gid));
            }
            if *run_as_non_root == Some(false) {
                ops.add(field("runAsNonRoot"), Value::Bool(true));
            }
            // The API server refuses allowPrivilegeEscalation=false next to privileged
            // or CAP_SYS_ADMIN; validation refuses those anyway.
            let contradicts = sc.privileged == Some(true)
                || sc
                    .capabilities
                    .as_ref()
                    .and_then(|c| c.add.as_ref())
                    .is_some_and(|add| add.iter().any(|c| is_sys_admin(c)));
            if allow_privilege_escalation.is_none() && !contradicts {
                ops.add(field("allowPrivilegeEscalation"), Value::Bool(false));
            }
        }
    }

    // Environment.
    match &container.env {
        None => ops.add(
            at(ptr, ["env"]),
            Value::Array(
                plan.env
                    .iter()
                    .map(|(name, value)| json!({ "name": name, "value": value }))
                    .collect(),
            ),
        ),
        Some(existing) => {
            for (name, value) in &plan.env {
                let mut found = false;
                for (j, var) in existing.iter().enumerate() {
                    if var.name != *name {
                        continue;
                    }
                    found = true;
                    if !env_is(var, value) {
                        ops.replace(
                            at(ptr, ["env"]).with_index(j),
                            json!({ "name": name, "value": value }),
                        );
                    }
                }
                if !found {
                    ops.add(
                        at(ptr, ["env", "-"]),
                        json!({ "name": name, "value": value }),
                    );
                }
            }
        }
    }
}

fn env_is(var: &EnvVar, value: &str) -> bool {
    var.value.as_deref() == Some(value) && var.value_from.is_none()
}

fn is_sys_admin(capability: &str) -> bool {
    let c = capability.strip_prefix("CAP_").unwrap_or(capability);
    c.eq_ignore_ascii_case("SYS_ADMIN")
}
