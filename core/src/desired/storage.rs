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

use super::{Object, Owner};
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

/// The `claimRef` to apply to a static volume, given the volume as it exists.
///
/// `claimRef` is an atomic field that the PersistentVolume controller completes (uid,
/// resourceVersion) when it binds. While the existing reference names our claim and the
/// volume is not `Released`, it is re-applied exactly as it stands, so a re-apply is a
/// no-op and the binding is left alone. A `Released` volume (its claim was deleted, e.g.
/// with the namespace) gets the fresh reference without a uid, so it binds to the claim
/// created again — the data comes back, it was never deleted.
pub fn claim_ref_for(
    existing: Option<&PersistentVolume>,
    desired: &PersistentVolume,
) -> Option<ObjectReference> {
    let wanted = desired.spec.as_ref()?.claim_ref.clone()?;
    let Some(existing) = existing else {
        return Some(wanted);
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
        _ => Some(wanted),
    }
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
        let fresh = desired.spec.as_ref().unwrap().claim_ref.clone();
        assert_eq!(claim_ref_for(None, &desired), fresh, "new volume");
        let mut bound = desired.clone();
        let spec = bound.spec.as_mut().unwrap();
        let claim_ref = spec.claim_ref.as_mut().unwrap();
        claim_ref.uid = Some("claim-uid".into());
        claim_ref.resource_version = Some("12".into());
        bound.status = Some(k8s_openapi::api::core::v1::PersistentVolumeStatus {
            phase: Some("Bound".into()),
            ..Default::default()
        });
        let kept = claim_ref_for(Some(&bound), &desired).unwrap();
        assert_eq!(kept.uid.as_deref(), Some("claim-uid"), "bound: unchanged");
        let mut released = bound.clone();
        released.status.as_mut().unwrap().phase = Some("Released".into());
        assert_eq!(
            claim_ref_for(Some(&released), &desired),
            fresh,
            "released: rebind"
        );
        let mut elsewhere = bound.clone();
        elsewhere
            .spec
            .as_mut()
            .unwrap()
            .claim_ref
            .as_mut()
            .unwrap()
            .name = Some("other".into());
        assert_eq!(
            claim_ref_for(Some(&elsewhere), &desired),
            fresh,
            "taken back"
        );
        let mut unbound = bound;
        unbound.spec.as_mut().unwrap().claim_ref = None;
        assert_eq!(claim_ref_for(Some(&unbound), &desired), fresh);
    }

    #[test]
    fn default_storage_class_is_left_unset() {
        let mut s = slot(Backend::StorageClass);
        s.storage_class_name = None;
        let (_, pvc) = split(storage_objects(&owner(), "ns", "c", &s, "", "1Gi"));
        assert_eq!(pvc.spec.unwrap().storage_class_name, None);
    }
}
