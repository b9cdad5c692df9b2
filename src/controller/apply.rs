//! Writing a plan to the API server: server-side apply with the one field manager,
//! deletes that tolerate absence, and which of a session's member claims are stale.

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::Value;

use super::Error;
use super::live::Live;
use homestead_core::desired::{FIELD_MANAGER, Kind, ObjectKey, OwnerKind, claim_ref_for};
use homestead_core::names::VOLUME_PRIVATE;

fn dynamic_api(client: &Client, key: &ObjectKey) -> Api<DynamicObject> {
    let resource = key.kind.api_resource();
    match &key.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Server-side applies the object `key` with body `intent`, forcing ownership of the
/// fields homestead sets (drift made by others is overwritten). Returns the uid of the
/// object as the API server answered.
///
/// A PersistentVolume's `claimRef` is completed by the volume controller on binding; it is
/// applied as it stands in `existing` (see [`claim_ref_for`]), so the binding is kept. A
/// volume made anew is bound to its claim by `claim_uid`, the uid the claim's apply just
/// returned, when there is one.
pub async fn apply_object(
    client: &Client,
    key: &ObjectKey,
    mut intent: Value,
    existing: Option<&Value>,
    claim_uid: Option<&str>,
) -> Result<Option<String>, Error> {
    if key.kind == Kind::PersistentVolume {
        let typed = |v: &Value| serde_json::from_value::<PersistentVolume>(v.clone());
        let desired = typed(&intent).map_err(|e| Error::Serialize(key.to_string(), e))?;
        let existing = existing.map(typed).transpose().ok().flatten();
        let claim_ref = claim_ref_for(existing.as_ref(), &desired, claim_uid);
        if let Some(spec) = intent.get_mut("spec").and_then(Value::as_object_mut) {
            match claim_ref.map(serde_json::to_value).transpose() {
                Ok(Some(r)) => spec.insert("claimRef".to_owned(), r),
                Ok(None) => spec.remove("claimRef"),
                Err(e) => return Err(Error::Serialize(key.to_string(), e)),
            };
        }
    }
    let applied = dynamic_api(client, key)
        .patch(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(intent),
        )
        .await?;
    Ok(applied.metadata.uid)
}

/// Deletes one object; an object already gone is fine. Returns true when it was deleted.
pub async fn delete_object(client: &Client, key: &ObjectKey) -> Result<bool, Error> {
    match dynamic_api(client, key)
        .delete(&key.name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The member claims of session (or project) `owner`'s namespace that it no longer wants. Only claims
/// homestead made for it (in its live copies: its labels) with the member-claim name
/// prefix are candidates; their PersistentVolumes are never touched (Retain).
pub fn stale_member_claims(
    live: &Live,
    namespace: &str,
    owner: &str,
    wanted: &[String],
) -> Vec<ObjectKey> {
    let prefix = format!("{VOLUME_PRIVATE}-");
    live.keys(Kind::PersistentVolumeClaim, namespace)
        .into_iter()
        .filter(|key| key.name.starts_with(&prefix) && !wanted.contains(&key.name))
        .filter(|key| {
            live.get(key).is_some_and(|claim| {
                let labels = claim.pointer("/metadata/labels");
                [OwnerKind::Session, OwnerKind::Project].iter().any(|kind| {
                    labels.and_then(|l| l.get(kind.label()))
                        == Some(&Value::String(owner.to_owned()))
                })
            })
        })
        .collect()
}
