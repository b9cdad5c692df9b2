//! Storage per backend: a static PersistentVolume pre-bound to its claim (nfs, hostPath,
//! csi) or a claim on a StorageClass.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, HostPathVolumeSource, NFSVolumeSource, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::core::ObjectMeta;

use serde_json::Value;

use super::intent::{contains, without_empty};
use super::{DesiredObjects, Kind, Object, ObjectKey, Owner};
use crate::config::{Backend, StorageConfig};

/// Name of the static PersistentVolume behind `claim` in `namespace`: deterministic, so
/// re-applying finds the same volume and a deleted claim's volume is found again.
pub fn pv_name(namespace: &str, claim: &str) -> String {
    format!("homestead-{namespace}-{claim}")
}

/// The claim (and, for static backends, its volume) of one kind of data.
///
/// `path` is the rendered backend path (unused by `storageClass`), `size` the capacity.
pub fn storage_objects(
    owner: &Owner,
    namespace: &str,
    claim: &str,
    slot: &StorageConfig,
    path: &str,
    size: &str,
) -> Vec<Object> {
    let mut claim_labels = owner.labels();
    claim_labels.insert(CLAIM_LABEL.to_owned(), claim.to_owned());
    let requests = BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))]);
    let static_volume = match slot.backend {
        Backend::StorageClass => None,
        Backend::Nfs => Some(PersistentVolumeSpec {
            nfs: Some(NFSVolumeSource {
                server: slot.server.clone().unwrap_or_default(),
                path: path.to_owned(),
                read_only: slot.read_only.then_some(true),
            }),
            ..Default::default()
        }),
        Backend::HostPath => Some(PersistentVolumeSpec {
            host_path: Some(HostPathVolumeSource {
                path: path.to_owned(),
                type_: None,
            }),
            ..Default::default()
        }),
        Backend::Csi => {
            let csi = slot.csi.clone().unwrap_or_default();
            Some(PersistentVolumeSpec {
                csi: Some(CSIPersistentVolumeSource {
                    driver: csi.driver,
                    volume_handle: path.to_owned(),
                    fs_type: csi.fs_type,
                    read_only: slot.read_only.then_some(true),
                    volume_attributes: (!csi.volume_attributes.is_empty())
                        .then_some(csi.volume_attributes),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
    };
    let mut objects = Vec::with_capacity(2);
    let volume_name = static_volume.map(|source| {
        let name = pv_name(namespace, claim);
        let mut labels = claim_labels.clone();
        labels.insert(CLAIM_NAMESPACE_LABEL.to_owned(), namespace.to_owned());
        objects.push(Object::PersistentVolume(PersistentVolume {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(labels),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                access_modes: Some(slot.access_modes.clone()),
                capacity: Some(requests.clone()),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    namespace: Some(namespace.to_owned()),
                    name: Some(claim.to_owned()),
                    ..Default::default()
                }),
                persistent_volume_reclaim_policy: Some("Retain".into()),
                storage_class_name: Some(String::new()),
                volume_mode: Some("Filesystem".into()),
                ..source
            }),
            status: None,
        }));
        name
    });
    let storage_class_name = match slot.backend {
        // A static volume is bound by name; the empty class keeps the default
        // StorageClass from provisioning a second volume.
        Backend::Nfs | Backend::HostPath | Backend::Csi => Some(String::new()),
        Backend::StorageClass => slot.storage_class_name.clone().filter(|s| !s.is_empty()),
    };
    objects.push(Object::PersistentVolumeClaim(PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(claim_labels),
            owner_references: Some(vec![owner.reference()]),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(slot.access_modes.clone()),
            resources: Some(VolumeResourceRequirements {
                requests: Some(requests),
                limits: None,
            }),
            storage_class_name,
            volume_name,
            volume_mode: Some("Filesystem".into()),
            ..Default::default()
        }),
        status: None,
    }));
    objects
}

/// The `claimRef` to apply to a static volume, given the volume as it exists and the uid
/// of its claim when the claim was just written (the API server's answer to its apply).
///
/// `claimRef` is an atomic field that the PersistentVolume controller completes (uid,
/// resourceVersion) when it binds. While the existing reference names our claim and the
/// volume is not `Released`, it is re-applied exactly as it stands, so a re-apply is a
/// no-op and the binding is left alone. A `Released` volume (its claim was deleted, e.g.
/// with the namespace) gets the fresh reference without a uid, so it binds to the claim
/// created again — the data comes back, it was never deleted.
///
/// A volume made anew (or one nobody claims) for a claim whose uid is known is bound to
/// it as the binder itself would (`claimRef.uid` is the claim's): the binder then finds
/// the pair bound and only records it (the volume's and the claim's phase, the claim's
/// `bind-completed` annotation) instead of first marking the volume `Available`, then
/// rewriting its `claimRef` — half its writes per pair, and the binder is rate-limited.
/// The uid must come from the API server just now: the binder releases a volume whose
/// `claimRef.uid` names no existing claim.
pub fn claim_ref_for(
    existing: Option<&PersistentVolume>,
    desired: &PersistentVolume,
    claim_uid: Option<&str>,
) -> Option<ObjectReference> {
    let wanted = desired.spec.as_ref()?.claim_ref.clone()?;
    let bound_to_claim = || ObjectReference {
        uid: claim_uid.map(str::to_owned),
        ..wanted.clone()
    };
    let Some(existing) = existing else {
        return Some(bound_to_claim());
    };
    let released = existing.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    match existing.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
        Some(current)
            if !released
                && current.namespace == wanted.namespace
                && current.name == wanted.name =>
        {
            Some(current.clone())
        }
        None if !released => Some(bound_to_claim()),
        _ => Some(wanted),
    }
}

/// `objects` in the order a reconcile applies them: as planned, but every
/// PersistentVolume after everything else, so a volume made anew can be bound to the uid
/// of its claim, applied just before it (see [`claim_ref_for`]).
pub fn apply_order(objects: &[Object]) -> Vec<&Object> {
    let (volumes, rest): (Vec<&Object>, Vec<&Object>) = objects
        .iter()
        .partition(|o| o.kind() == Kind::PersistentVolume);
    rest.into_iter().chain(volumes).collect()
}

/// Fields of a PersistentVolume spec that are not its source.
const NOT_SOURCE: &[&str] = &[
    "accessModes",
    "capacity",
    "claimRef",
    "mountOptions",
    "nodeAffinity",
    "persistentVolumeReclaimPolicy",
    "storageClassName",
    "volumeAttributesClassName",
    "volumeMode",
];

/// What to do when the storage a configuration plans differs from what exists.
const MIGRATE: &str = "to move the data to the configured location, copy it there, then \
    delete the claim and its volume (volumes are Retain: deleting them deletes no data); \
    homestead then makes both from the configuration";

/// Keeps storage that exists as it is. A static volume's source is where the person's data
/// already is, and a claim's spec cannot change once it is bound: when the configuration
/// (a new `pathTemplate`, backend, size or class) plans them otherwise, the plan takes the
/// existing values instead, and a static volume planned for a claim that is bound to
/// another volume is left out. New owners get the configuration as it is. Returns one
/// sentence per difference, saying what is kept and how to migrate. `live` gives an object
/// as it exists.
pub fn keep_existing_storage(
    plan: &mut DesiredObjects,
    live: impl Fn(&ObjectKey) -> Option<Value>,
) -> Vec<String> {
    let mut differences = Vec::new();
    let mut left_out = Vec::new();
    for object in &mut plan.objects {
        let key = object.key();
        let Some(existing) = live(&key) else {
            continue;
        };
        let kept = match object {
            Object::PersistentVolume(volume) => keep_source(volume, &existing),
            Object::PersistentVolumeClaim(claim) => {
                let planned = pv_name(key.namespace.as_deref().unwrap_or_default(), &key.name);
                let kept = keep_claim_spec(claim, &existing, &planned);
                let bound_to = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
                if bound_to.is_some_and(|v| v != planned) && live(&volume_key(&planned)).is_none() {
                    left_out.push(planned);
                }
                kept
            }
            _ => None,
        };
        if let Some((have, want)) = kept {
            differences.push(format!(
                "{key} keeps {have} (the configuration now gives {want}); {MIGRATE}"
            ));
        }
    }
    plan.objects
        .retain(|o| !(o.kind() == Kind::PersistentVolume && left_out.contains(&o.key().name)));
    differences
}

fn volume_key(name: &str) -> ObjectKey {
    ObjectKey {
        kind: Kind::PersistentVolume,
        namespace: None,
        name: name.to_owned(),
    }
}

/// Gives `volume` the source `existing` has when they differ: (existing, planned) as JSON.
fn keep_source(volume: &mut PersistentVolume, existing: &Value) -> Option<(String, String)> {
    let source = |spec: &Value| -> serde_json::Map<String, Value> {
        spec.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !NOT_SOURCE.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let have = source(&without_empty(existing.get("spec")?));
    let mut spec = serde_json::to_value(volume.spec.as_ref()?).ok()?;
    let want = source(&spec);
    if have.is_empty() || contains(&Value::Object(have.clone()), &Value::Object(want.clone())) {
        return None;
    }
    let map = spec.as_object_mut()?;
    map.retain(|k, _| NOT_SOURCE.contains(&k.as_str()));
    map.extend(have.clone());
    volume.spec = Some(serde_json::from_value(spec).ok()?);
    Some((
        format!("the source {}", Value::Object(have)),
        Value::Object(want).to_string(),
    ))
}

/// The fields of a claim's spec homestead may set (and so may have set before).
const CLAIM_FIELDS: &[&str] = &[
    "accessModes",
    "resources",
    "storageClassName",
    "volumeName",
    "volumeMode",
];

/// Gives `claim` the spec `existing` has (every field homestead may set) when the plan
/// differs from it — sets another value, or leaves out the binding to the static volume
/// `static_volume` homestead made — since a claim's spec is fixed once bound: (existing,
/// planned) as JSON.
fn keep_claim_spec(
    claim: &mut PersistentVolumeClaim,
    existing: &Value,
    static_volume: &str,
) -> Option<(String, String)> {
    let have = existing.get("spec")?;
    let want = serde_json::to_value(claim.spec.as_ref()?).ok()?;
    let bound_to_ours = have.get("volumeName").and_then(Value::as_str) == Some(static_volume);
    let drops_binding = bound_to_ours && want.get("volumeName").is_none();
    if contains(have, &want) && !drops_binding {
        return None;
    }
    let mut kept = serde_json::Map::new();
    for field in CLAIM_FIELDS {
        let Some(value) = have.get(*field) else {
            continue;
        };
        let value = match *field {
            // Only the requests are homestead's; limits are not set on claims.
            "resources" => serde_json::json!({"requests": value.get("requests")}),
            _ => value.clone(),
        };
        kept.insert((*field).to_owned(), value);
    }
    let kept = Value::Object(kept);
    claim.spec = Some(serde_json::from_value(kept.clone()).ok()?);
    Some((format!("the spec {kept}"), want.to_string()))
}

/// Label on homestead's claims and volumes naming the claim.
pub const CLAIM_LABEL: &str = "homestead.dev/claim";
/// Label on homestead's volumes naming the claim's namespace.
pub const CLAIM_NAMESPACE_LABEL: &str = "homestead.dev/claim-namespace";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CsiSource, StorageConfig};
    use crate::desired::OwnerKind;

    fn owner() -> Owner {
        Owner {
            kind: OwnerKind::User,
            name: "ada".into(),
            uid: "u-ada".into(),
        }
    }

    fn slot(backend: Backend) -> StorageConfig {
        let mut slot = StorageConfig::private_default();
        slot.backend = backend;
        slot.server = Some("nfs.example.org".into());
        slot.csi = Some(CsiSource {
            driver: "nfs.csi.k8s.io".into(),
            fs_type: Some("nfs".into()),
            volume_attributes: BTreeMap::from([("server".into(), "nfs.example.org".into())]),
        });
        slot.storage_class_name = Some("fast".into());
        slot
    }

    fn split(objects: Vec<Object>) -> (Option<PersistentVolume>, PersistentVolumeClaim) {
        let mut pv = None;
        let mut pvc = None;
        for o in objects {
            match o {
                Object::PersistentVolume(v) => pv = Some(v),
                Object::PersistentVolumeClaim(c) => pvc = Some(c),
                other => panic!("unexpected {other:?}"),
            }
        }
        (pv, pvc.unwrap())
    }

    #[test]
    fn every_backend() {
        // (backend, has static volume, source field in the PV, claim storageClassName)
        let table = [
            (Backend::Nfs, true, "nfs", Some("")),
            (Backend::HostPath, true, "hostPath", Some("")),
            (Backend::Csi, true, "csi", Some("")),
            (Backend::StorageClass, false, "", Some("fast")),
        ];
        for (backend, static_pv, source, class) in table {
            let objects = storage_objects(
                &owner(),
                "home-ada",
                "homestead-private",
                &slot(backend),
                "/export/home/ada",
                "10Gi",
            );
            let (pv, pvc) = split(objects);
            let spec = pvc.spec.as_ref().unwrap();
            assert_eq!(spec.storage_class_name.as_deref(), class, "{backend:?}");
            assert_eq!(
                spec.resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
                "10Gi"
            );
            assert_eq!(pvc.metadata.namespace.as_deref(), Some("home-ada"));
            assert_eq!(
                pvc.metadata.owner_references.as_ref().unwrap()[0].uid,
                "u-ada"
            );
            assert_eq!(pv.is_some(), static_pv, "{backend:?}");
            let Some(pv) = pv else {
                assert_eq!(spec.volume_name, None);
                continue;
            };
            let name = "homestead-home-ada-homestead-private";
            assert_eq!(pv.metadata.name.as_deref(), Some(name));
            assert_eq!(
                spec.volume_name.as_deref(),
                Some(name),
                "claim names its volume"
            );
            assert!(
                pv.metadata.owner_references.is_none(),
                "volumes are never garbage-collected"
            );
            let pv_spec = pv.spec.as_ref().unwrap();
            assert_eq!(
                pv_spec.persistent_volume_reclaim_policy.as_deref(),
                Some("Retain")
            );
            let claim_ref = pv_spec.claim_ref.as_ref().unwrap();
            assert_eq!(
                (claim_ref.namespace.as_deref(), claim_ref.name.as_deref()),
                (Some("home-ada"), Some("homestead-private"))
            );
            assert_eq!(pv_spec.storage_class_name.as_deref(), Some(""));
            let value = serde_json::to_value(pv_spec).unwrap();
            assert!(value.get(source).is_some(), "{backend:?}: {value}");
            let path = match backend {
                Backend::Nfs => &value["nfs"]["path"],
                Backend::HostPath => &value["hostPath"]["path"],
                Backend::Csi => &value["csi"]["volumeHandle"],
                Backend::StorageClass => unreachable!(),
            };
            assert_eq!(path, "/export/home/ada", "{backend:?}");
        }
    }

    #[test]
    fn nfs_and_csi_details() {
        let mut s = slot(Backend::Nfs);
        s.read_only = true;
        let (pv, _) = split(storage_objects(&owner(), "ns", "c", &s, "/p", "1Gi"));
        let nfs = pv.unwrap().spec.unwrap().nfs.unwrap();
        assert_eq!(
            (nfs.server.as_str(), nfs.read_only),
            ("nfs.example.org", Some(true))
        );
        let (pv, _) = split(storage_objects(
            &owner(),
            "ns",
            "c",
            &slot(Backend::Csi),
            "/p",
            "1Gi",
        ));
        let csi = pv.unwrap().spec.unwrap().csi.unwrap();
        assert_eq!(csi.driver, "nfs.csi.k8s.io");
        assert_eq!(csi.fs_type.as_deref(), Some("nfs"));
        assert_eq!(csi.volume_attributes.unwrap()["server"], "nfs.example.org");
    }

    #[test]
    fn claim_refs_keep_the_binding_and_rebind_released_volumes() {
        let objects = storage_objects(
            &owner(),
            "home-ada",
            "homestead-private",
            &slot(Backend::Nfs),
            "/p",
            "1Gi",
        );
        let (Some(desired), _) = split(objects) else {
            panic!()
        };
        let fresh = desired.spec.as_ref().unwrap().claim_ref.clone().unwrap();
        assert_eq!(fresh.uid, None, "the plan names the claim, nothing more");
        let with_uid = |uid: &str| ObjectReference {
            uid: Some(uid.into()),
            ..fresh.clone()
        };
        let volume = |phase: Option<&str>, claim_ref: Option<ObjectReference>| {
            let mut v = desired.clone();
            v.spec.as_mut().unwrap().claim_ref = claim_ref;
            v.status = phase.map(|p| k8s_openapi::api::core::v1::PersistentVolumeStatus {
                phase: Some(p.into()),
                ..Default::default()
            });
            v
        };
        let bound = ObjectReference {
            resource_version: Some("12".into()),
            ..with_uid("claim-uid")
        };
        let elsewhere = ObjectReference {
            name: Some("other".into()),
            ..bound.clone()
        };
        // (what exists, the claim's uid from its apply just now, the claimRef to apply, why)
        let table = [
            (
                None,
                None,
                fresh.clone(),
                "new volume, claim not written now",
            ),
            (
                None,
                Some("new"),
                with_uid("new"),
                "new volume: bound as the binder would",
            ),
            (
                Some(volume(Some("Bound"), Some(bound.clone()))),
                None,
                bound.clone(),
                "bound: re-applied as it stands",
            ),
            (
                Some(volume(Some("Bound"), Some(bound.clone()))),
                Some("new"),
                bound.clone(),
                "bound: kept even when the claim was written",
            ),
            (
                Some(volume(Some("Available"), Some(fresh.clone()))),
                Some("new"),
                fresh.clone(),
                "pre-bound by name: the binder completes it",
            ),
            (
                Some(volume(Some("Released"), Some(bound.clone()))),
                None,
                fresh.clone(),
                "released: rebind by name",
            ),
            (
                Some(volume(Some("Released"), Some(bound.clone()))),
                Some("new"),
                fresh.clone(),
                "released: freed by the heal, not by a uid here",
            ),
            (
                Some(volume(Some("Bound"), Some(elsewhere.clone()))),
                Some("new"),
                fresh.clone(),
                "taken back by name",
            ),
            (
                Some(volume(Some("Available"), None)),
                None,
                fresh.clone(),
                "unclaimed",
            ),
            (
                Some(volume(Some("Available"), None)),
                Some("new"),
                with_uid("new"),
                "unclaimed, claim written now",
            ),
        ];
        for (existing, uid, want, why) in table {
            assert_eq!(
                claim_ref_for(existing.as_ref(), &desired, uid),
                Some(want),
                "{why}"
            );
        }
    }

    #[test]
    fn volumes_are_applied_after_their_claims() {
        let objects = storage_objects(
            &owner(),
            "home-ada",
            "homestead-private",
            &slot(Backend::Nfs),
            "/p",
            "1Gi",
        );
        assert_eq!(objects[0].kind(), Kind::PersistentVolume, "planned first");
        let kinds: Vec<Kind> = apply_order(&objects).iter().map(|o| o.kind()).collect();
        assert_eq!(
            kinds,
            [Kind::PersistentVolumeClaim, Kind::PersistentVolume],
            "applied last"
        );
    }

    /// A plan of one user's private storage on `backend` at `path` with `size`.
    fn planned(backend: Backend, path: &str, size: &str) -> DesiredObjects {
        let mut s = slot(backend);
        s.storage_class_name = Some("fast".into());
        DesiredObjects {
            namespace: "home-ada".into(),
            objects: storage_objects(&owner(), "home-ada", "homestead-private", &s, path, size),
            absent: Vec::new(),
            member_claims: None,
            problems: Vec::new(),
        }
    }

    /// The objects of `plan` as the API server keeps them once bound (defaults filled in).
    fn as_stored(plan: &DesiredObjects) -> std::collections::HashMap<ObjectKey, Value> {
        plan.objects
            .iter()
            .map(|o| {
                let mut v = o.to_value().unwrap();
                if let Some(host) = v.pointer_mut("/spec/hostPath") {
                    host["type"] = Value::String(String::new());
                }
                if o.kind() == Kind::PersistentVolumeClaim && v["spec"].get("volumeName").is_none()
                {
                    v["spec"]["volumeName"] = "pvc-0f3a".into();
                }
                v["status"] = serde_json::json!({"phase": "Bound"});
                (o.key(), v)
            })
            .collect()
    }

    fn volume_source(plan: &DesiredObjects) -> Option<Value> {
        plan.objects.iter().find_map(|o| match o {
            Object::PersistentVolume(v) => {
                let spec = serde_json::to_value(v.spec.as_ref()?).ok()?;
                Some(spec.get("hostPath").or(spec.get("nfs"))?.clone())
            }
            _ => None,
        })
    }

    fn claim_spec(plan: &DesiredObjects) -> Value {
        plan.objects
            .iter()
            .find_map(|o| match o {
                Object::PersistentVolumeClaim(c) => serde_json::to_value(c.spec.as_ref()?).ok(),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn existing_storage_is_kept_when_the_configuration_changes() {
        let old = planned(Backend::HostPath, "/export/home/ada", "10Gi");
        let existing = as_stored(&old);
        let live = |key: &ObjectKey| existing.get(key).cloned();

        // Unchanged configuration: nothing to keep, nothing said.
        let mut same = old.clone();
        assert!(keep_existing_storage(&mut same, live).is_empty());
        assert_eq!(same, old, "the server's defaults are no difference");

        // (configuration now, the volume source kept, what the claim keeps, words said)
        let table = [
            (
                planned(Backend::HostPath, "/srv/home/ada", "10Gi"),
                Some(r#"{"path":"/export/home/ada"}"#),
                None,
                vec!["/srv/home/ada"],
            ),
            (
                planned(Backend::Nfs, "/export/home/ada", "10Gi"),
                Some(r#"{"path":"/export/home/ada"}"#),
                None,
                vec!["nfs.example.org"],
            ),
            (
                planned(Backend::HostPath, "/export/home/ada", "50Gi"),
                None,
                Some(("resources", r#"{"requests":{"storage":"10Gi"}}"#)),
                vec!["50Gi"],
            ),
            (
                planned(Backend::StorageClass, "", "10Gi"),
                None,
                Some(("storageClassName", r#""""#)),
                vec!["fast"],
            ),
        ];
        for (mut now, source, claim, words) in table {
            let said = keep_existing_storage(&mut now, live);
            assert_eq!(said.len(), 1, "{said:?}");
            for word in words {
                assert!(said[0].contains(word), "{word} in {said:?}");
            }
            assert!(
                said[0].contains("deleting them deletes no data"),
                "{said:?}"
            );
            if let Some(source) = source {
                assert_eq!(volume_source(&now).unwrap().to_string(), source);
                // Kept, the volume is planned exactly as it was first planned: its intent
                // (and fingerprint) is unchanged, so nothing is applied.
                let volume = |p: &DesiredObjects| {
                    p.objects
                        .iter()
                        .find(|o| o.kind() == Kind::PersistentVolume)
                        .unwrap()
                        .intent()
                        .unwrap()
                };
                assert_eq!(volume(&now), volume(&old));
            }
            if let Some((field, value)) = claim {
                assert_eq!(claim_spec(&now)[field].to_string(), value);
            }
        }
    }

    #[test]
    fn a_volume_planned_for_a_claim_bound_elsewhere_is_left_out() {
        // The claim was made on a StorageClass; now the configuration says static volumes.
        let old = planned(Backend::StorageClass, "", "10Gi");
        let existing = as_stored(&old);
        let mut now = planned(Backend::HostPath, "/export/home/ada", "10Gi");
        let said = keep_existing_storage(&mut now, |key| existing.get(key).cloned());
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            now.objects
                .iter()
                .all(|o| o.kind() != Kind::PersistentVolume),
            "no volume that could never bind"
        );
        assert_eq!(claim_spec(&now)["storageClassName"], "fast");
        assert_eq!(
            claim_spec(&now)["volumeName"],
            "pvc-0f3a",
            "still bound where it is"
        );
    }

    #[test]
    fn a_claim_keeps_its_binding_when_the_plan_leaves_it_out() {
        // Static volumes before; now the cluster's default StorageClass (nothing set).
        let old = planned(Backend::HostPath, "/export/home/ada", "10Gi");
        let existing = as_stored(&old);
        let mut s = slot(Backend::StorageClass);
        s.storage_class_name = None;
        let mut now = DesiredObjects {
            objects: storage_objects(&owner(), "home-ada", "homestead-private", &s, "", "10Gi"),
            ..old.clone()
        };
        let said = keep_existing_storage(&mut now, |key| existing.get(key).cloned());
        assert_eq!(said.len(), 1, "{said:?}");
        let spec = claim_spec(&now);
        assert_eq!(spec["volumeName"], "homestead-home-ada-homestead-private");
        assert_eq!(
            spec["storageClassName"], "",
            "an applied claim would otherwise lose them"
        );
    }

    #[test]
    fn new_owners_get_the_configuration_as_it_is() {
        let mut now = planned(Backend::Nfs, "/srv/home/ada", "50Gi");
        let before = now.clone();
        assert!(keep_existing_storage(&mut now, |_| None).is_empty());
        assert_eq!(now, before);
    }

    #[test]
    fn default_storage_class_is_left_unset() {
        let mut s = slot(Backend::StorageClass);
        s.storage_class_name = None;
        let (_, pvc) = split(storage_objects(&owner(), "ns", "c", &s, "", "1Gi"));
        assert_eq!(pvc.spec.unwrap().storage_class_name, None);
    }
}
