//! Whether homestead's claims are bound, and which of its volumes must be freed so a claim
//! homestead makes again binds to them.
//!
//! A static volume is `Retain`: when its claim is deleted (a member deleting
//! `homestead-private-ines`, or `homestead-data`), the volume turns `Released` and keeps
//! the deleted claim's uid in `spec.claimRef`. The claim homestead creates again is
//! pre-bound to the volume (`volumeName`), but the binder never binds a volume whose
//! `claimRef` holds another uid: the new claim would stay `Pending` for ever. A server-side
//! apply cannot clear the uid (the binder owns it), so the controller patches it away —
//! only for a `Released` volume homestead made, whose `claimRef` names the very claim
//! homestead plans — and the volume binds to the new claim with its data untouched.

use serde_json::{Value, json};

use super::{DesiredObjects, Kind, Object, ObjectKey};
use crate::names::LABEL_MANAGED_BY;

/// A volume to free: its key and the JSON Patch (RFC 6902) that clears the stale claim uid
/// (and resourceVersion), guarded by a `test` of the uid it clears.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeHeal {
    /// The PersistentVolume.
    pub volume: ObjectKey,
    /// `namespace/name` of the claim it binds to again.
    pub claim: String,
    /// The JSON Patch to send.
    pub patch: Value,
}

/// The volumes of `plan` that are `Released` although their claim is planned again: each
/// one homestead made (its managed-by label), whose live `claimRef` names the namespace and
/// name the plan gives it and still holds a uid. `live` gives an object as it exists.
pub fn volumes_to_heal(
    plan: &DesiredObjects,
    live: impl Fn(&ObjectKey) -> Option<Value>,
) -> Vec<VolumeHeal> {
    let mut heals = Vec::new();
    for object in &plan.objects {
        let Object::PersistentVolume(planned) = object else {
            continue;
        };
        let Some(wanted) = planned.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
            continue;
        };
        let key = object.key();
        let Some(existing) = live(&key) else {
            continue;
        };
        let ours = existing
            .pointer("/metadata/labels")
            .and_then(|l| l.get(LABEL_MANAGED_BY))
            .and_then(Value::as_str)
            == Some(super::MANAGED_BY);
        let released =
            existing.pointer("/status/phase").and_then(Value::as_str) == Some("Released");
        let Some(current) = existing.pointer("/spec/claimRef") else {
            continue;
        };
        let text = |field: &str| current.get(field).and_then(Value::as_str);
        let names_the_claim = text("namespace") == wanted.namespace.as_deref()
            && text("name") == wanted.name.as_deref();
        let Some(uid) = text("uid").filter(|u| !u.is_empty()) else {
            continue;
        };
        if !(ours && released && names_the_claim) {
            continue;
        }
        let mut patch = vec![
            json!({"op": "test", "path": "/spec/claimRef/uid", "value": uid}),
            json!({"op": "remove", "path": "/spec/claimRef/uid"}),
        ];
        if current.get("resourceVersion").is_some() {
            patch.push(json!({"op": "remove", "path": "/spec/claimRef/resourceVersion"}));
        }
        heals.push(VolumeHeal {
            volume: key,
            claim: format!(
                "{}/{}",
                wanted.namespace.as_deref().unwrap_or_default(),
                wanted.name.as_deref().unwrap_or_default()
            ),
            patch: Value::Array(patch),
        });
    }
    heals
}

/// One sentence for each claim of `plan` that is not `Bound` as `live` holds it: a claim
/// just created (not seen yet) or `Pending` is "not Bound yet" (a pre-bound claim is
/// `Pending` for a moment, a claim on a `WaitForFirstConsumer` class until a pod uses it);
/// a `Lost` claim has lost its volume. `heals` (from [`volumes_to_heal`]) says which
/// claims are waiting for a volume being freed.
pub fn unbound_claims(
    plan: &DesiredObjects,
    live: impl Fn(&ObjectKey) -> Option<Value>,
    heals: &[VolumeHeal],
) -> Vec<String> {
    let mut said = Vec::new();
    for object in &plan.objects {
        if object.kind() != Kind::PersistentVolumeClaim {
            continue;
        }
        let key = object.key();
        let claim = format!(
            "{}/{}",
            key.namespace.as_deref().unwrap_or_default(),
            key.name
        );
        let phase = live(&key).and_then(|v| {
            v.pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let healing = heals.iter().find(|h| h.claim == claim);
        let sentence = match (phase.as_deref(), healing) {
            (Some("Bound"), _) => continue,
            (_, Some(heal)) => format!(
                "claim {claim} is not Bound yet: its volume {} was Released by a deleted claim \
                 and is being bound to it again (the data is kept)",
                heal.volume.name
            ),
            (None, None) => format!("claim {claim} is not Bound yet (just created)"),
            (Some("Lost"), None) => format!(
                "claim {claim} is Lost: the volume it was bound to is gone; pods using it \
                 will not start"
            ),
            (Some(phase), None) => format!("claim {claim} is not Bound yet ({phase})"),
        };
        said.push(sentence);
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::desired::testing::user;
    use crate::desired::{SecretSources, user_objects};

    const VOLUME: &str = "homestead-home-ada-homestead-private";
    const CLAIM: &str = "homestead-private";

    fn plan() -> DesiredObjects {
        user_objects(
            &Config::default(),
            &user("ada", 1001),
            &SecretSources::new(),
        )
        .unwrap()
    }

    fn volume_key() -> ObjectKey {
        ObjectKey {
            kind: Kind::PersistentVolume,
            namespace: None,
            name: VOLUME.into(),
        }
    }

    fn claim_key() -> ObjectKey {
        ObjectKey {
            kind: Kind::PersistentVolumeClaim,
            namespace: Some("home-ada".into()),
            name: CLAIM.into(),
        }
    }

    /// The volume as the API server holds it: bound (then released) to `claim` in
    /// `namespace` with `uid`, in `phase`, labelled by `managed_by`.
    fn volume(
        phase: &str,
        namespace: &str,
        claim: &str,
        uid: Option<&str>,
        managed_by: &str,
    ) -> Value {
        let mut claim_ref = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "namespace": namespace, "name": claim, "resourceVersion": "41"});
        if let Some(uid) = uid {
            claim_ref["uid"] = json!(uid);
        }
        json!({
            "metadata": {"name": VOLUME, "labels": {LABEL_MANAGED_BY: managed_by}},
            "spec": {"claimRef": claim_ref, "hostPath": {"path": "/export/home/ada"}},
            "status": {"phase": phase},
        })
    }

    #[test]
    fn only_a_released_volume_of_ours_naming_the_planned_claim_is_freed() {
        // (what lives, freed?)
        let table = [
            (
                volume("Released", "home-ada", CLAIM, Some("old"), "homestead"),
                true,
            ),
            (
                volume("Bound", "home-ada", CLAIM, Some("old"), "homestead"),
                false,
            ),
            (
                volume("Available", "home-ada", CLAIM, None, "homestead"),
                false,
            ),
            (
                volume("Released", "home-ada", CLAIM, None, "homestead"),
                false,
            ),
            (
                volume("Released", "home-ada", CLAIM, Some(""), "homestead"),
                false,
            ),
            (
                volume("Released", "home-bob", CLAIM, Some("old"), "homestead"),
                false,
            ),
            (
                volume("Released", "home-ada", "stolen", Some("old"), "homestead"),
                false,
            ),
            (
                volume("Released", "home-ada", CLAIM, Some("old"), "someone"),
                false,
            ),
        ];
        for (live, freed) in table {
            let heals = volumes_to_heal(&plan(), |k| (*k == volume_key()).then(|| live.clone()));
            assert_eq!(heals.len(), usize::from(freed), "{live}");
            if let Some(heal) = heals.first() {
                assert_eq!(heal.volume, volume_key());
                assert_eq!(heal.claim, "home-ada/homestead-private");
                assert_eq!(
                    heal.patch,
                    json!([
                        {"op": "test", "path": "/spec/claimRef/uid", "value": "old"},
                        {"op": "remove", "path": "/spec/claimRef/uid"},
                        {"op": "remove", "path": "/spec/claimRef/resourceVersion"},
                    ]),
                    "the uid it clears is tested, nothing else (the source) is touched"
                );
            }
        }
        assert!(
            volumes_to_heal(&plan(), |_| None).is_empty(),
            "nothing exists yet"
        );
    }

    #[test]
    fn a_claim_ref_without_resource_version_is_patched_without_removing_it() {
        let mut live = volume("Released", "home-ada", CLAIM, Some("old"), "homestead");
        live["spec"]["claimRef"]
            .as_object_mut()
            .unwrap()
            .remove("resourceVersion");
        let heals = volumes_to_heal(&plan(), |k| (*k == volume_key()).then(|| live.clone()));
        assert_eq!(heals[0].patch.as_array().unwrap().len(), 2);
    }

    #[test]
    fn claims_not_bound_are_named() {
        let released = volume("Released", "home-ada", CLAIM, Some("old"), "homestead");
        let claim = |phase: Option<&str>| {
            phase.map(|p| json!({"metadata": {"name": CLAIM}, "status": {"phase": p}}))
        };
        // (claim phase, volume lives released, words said; none = nothing said)
        let table: [(Option<&str>, bool, Option<&str>); 6] = [
            (Some("Bound"), false, None),
            (Some("Bound"), true, None),
            (
                None,
                false,
                Some("home-ada/homestead-private is not Bound yet (just created)"),
            ),
            (Some("Pending"), false, Some("is not Bound yet (Pending)")),
            (
                Some("Pending"),
                true,
                Some("was Released by a deleted claim and is being bound"),
            ),
            (Some("Lost"), false, Some("is Lost")),
        ];
        for (phase, healing, want) in table {
            let live = |k: &ObjectKey| {
                if *k == claim_key() {
                    claim(phase)
                } else if *k == volume_key() && healing {
                    Some(released.clone())
                } else if k.kind == Kind::PersistentVolumeClaim {
                    claim(Some("Bound"))
                } else {
                    None
                }
            };
            let heals = volumes_to_heal(&plan(), live);
            let said = unbound_claims(&plan(), live, &heals);
            match want {
                None => assert!(said.is_empty(), "{phase:?}: {said:?}"),
                Some(words) => {
                    assert_eq!(said.len(), 1, "{phase:?}: {said:?}");
                    assert!(said[0].contains(words), "{phase:?}: {said:?}");
                }
            }
        }
    }
}
