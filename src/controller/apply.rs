//! Writing a plan to the API server: server-side apply with the one field manager,
//! deletes that tolerate absence, and pruning of a session's stale member claims.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use super::Error;
use homestead_core::desired::{
    FIELD_MANAGER, MANAGED_BY, Object, ObjectKey, OwnerKind, claim_ref_for,
};
use homestead_core::names::{LABEL_MANAGED_BY, VOLUME_PRIVATE};

fn dynamic_api(client: &Client, key: &ObjectKey) -> Api<DynamicObject> {
    let resource = key.kind.api_resource();
    match &key.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// Server-side applies one object, forcing ownership of the fields homestead sets (drift
/// made by others is overwritten). Identical content is a no-op on the server: no new
/// `resourceVersion`.
///
/// A PersistentVolume is read first: its `claimRef` is completed by the volume controller
/// on binding and is kept as it stands (see [`claim_ref_for`]).
pub async fn apply_object(client: &Client, object: &Object) -> Result<(), Error> {
    let key = object.key();
    let body = match object {
        Object::PersistentVolume(desired) => {
            let api: Api<PersistentVolume> = Api::all(client.clone());
            let existing = api.get_opt(&key.name).await?;
            let mut volume = desired.clone();
            if let Some(spec) = volume.spec.as_mut() {
                spec.claim_ref = claim_ref_for(existing.as_ref(), desired);
            }
            serde_json::to_value(&volume)
        }
        other => other.to_value(),
    }
    .map_err(|e| Error::Serialize(key.to_string(), e))?;
    dynamic_api(client, &key)
        .patch(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        )
        .await?;
    Ok(())
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

/// Deletes the member claims of a session namespace that the session no longer wants.
/// Only claims homestead made (its label, the session's label, the member-claim name
/// prefix) are candidates; their PersistentVolumes are never touched (Retain).
pub async fn prune_member_claims(
    client: &Client,
    namespace: &str,
    owner: &str,
    wanted: &[String],
) -> Result<Vec<String>, Error> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let selector = format!(
        "{LABEL_MANAGED_BY}={MANAGED_BY},{}={owner}",
        OwnerKind::Session.label()
    );
    let claims = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await?;
    let prefix = format!("{VOLUME_PRIVATE}-");
    let mut deleted = Vec::new();
    for claim in claims.items {
        let name = claim.name_any();
        if !name.starts_with(&prefix) || wanted.contains(&name) {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}
