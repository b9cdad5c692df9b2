//! Whether an object as it exists already is what an apply would make it: the controller
//! skips an apply whose intent is met, so a reconcile that changes nothing sends nothing.
//!
//! The *intent* of a planned object is its apply body plus the annotation
//! [`ANNOTATION_APPLIED`], a fingerprint of that body. A live object meets the intent when
//! every field the intent sets has the same value in the live object (the live object may
//! carry more: server defaults, fields other managers own, a binder's completions) — and
//! because the fingerprint is one of those fields, a plan that *drops* a field (which
//! server-side apply would remove) no longer matches the fingerprint the live object
//! carries, so it is applied.
//!
//! Live objects are kept [`reduce`]d: only what an intent can set, and the phase of
//! volumes and claims.

use serde_json::{Map, Value};

use super::Object;

/// Annotation carrying the fingerprint of the intent an object was last applied with.
pub const ANNOTATION_APPLIED: &str = "homestead.dev/applied";

/// A stable 64-bit FNV-1a hash of `bytes`, as 16 hex digits (stable across builds and
/// runs, unlike the standard library's hasher).
fn fnv1a(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

impl Object {
    /// The apply body with its fingerprint annotation (see the module comment).
    pub fn intent(&self) -> Result<Value, serde_json::Error> {
        let mut value = self.to_value()?;
        let fingerprint = fnv1a(&serde_json::to_vec(&value)?);
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert(ANNOTATION_APPLIED.to_owned(), Value::String(fingerprint));
            }
        }
        Ok(value)
    }
}

/// True when `live` already has every field `intent` sets, with the same value. Maps may
/// hold more keys; lists must have the same length, element by element. A volume or
/// claim the cluster reports `Released` or `Lost` never meets an intent (its binding must
/// be applied again).
pub fn is_met(intent: &Value, live: &Value) -> bool {
    let phase = live.pointer("/status/phase").and_then(Value::as_str);
    if matches!(phase, Some("Released" | "Lost")) {
        return false;
    }
    contains(live, intent)
}

/// True when `live` has every field `wanted` sets, with the same value (maps may hold
/// more keys; lists compare element by element and must have the same length). An empty
/// string, list or map is met by an absent field: the API server leaves such values out
/// (Go's `omitempty`), e.g. a PersistentVolume's `storageClassName: ""`.
pub(super) fn contains(live: &Value, wanted: &Value) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => {
            wanted.iter().all(|(k, w)| match live.get(k) {
                Some(l) => contains(l, w),
                None => is_empty(w),
            })
        }
        (Value::Array(live), Value::Array(wanted)) => {
            live.len() == wanted.len() && live.iter().zip(wanted).all(|(l, w)| contains(l, w))
        }
        (live, wanted) => live == wanted,
    }
}

/// `value` without the empty strings, lists and maps in its maps, as the value a plan would
/// set when it sets what the API server holds (which fills in such defaults, e.g. a
/// `hostPath`'s `type: ""`).
pub(super) fn without_empty(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !is_empty(v))
                .map(|(k, v)| (k.clone(), without_empty(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.iter().map(without_empty).collect()),
        other => other.clone(),
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Keeps of a live object only what an intent compares and what a reconcile reads:
/// `apiVersion`, `kind`, the metadata homestead sets or reads (name, namespace, labels,
/// homestead's annotations, owner references, deletion timestamp), every field but
/// `status`, and `status.phase`.
pub fn reduce(value: &mut Value) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.retain(|k, _| {
            matches!(
                k.as_str(),
                "name"
                    | "namespace"
                    | "labels"
                    | "annotations"
                    | "ownerReferences"
                    | "deletionTimestamp"
            )
        });
        if let Some(Value::Object(annotations)) = meta.get_mut("annotations") {
            annotations.retain(|k, _| k.starts_with("homestead.dev/"));
        }
    }
    if let Some(status) = object.get_mut("status") {
        let phase = status.get("phase").cloned();
        *status = match phase {
            Some(phase) => Value::Object(Map::from_iter([("phase".to_owned(), phase)])),
            None => Value::Object(Map::new()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::core::ObjectMeta;
    use proptest::prelude::*;
    use serde_json::json;

    fn config_map(data: &[(&str, &str)]) -> Object {
        Object::ConfigMap(ConfigMap {
            metadata: ObjectMeta {
                name: Some("homestead".into()),
                namespace: Some("home-ada".into()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "homestead".to_owned(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..Default::default()
        })
    }

    /// The intent as the API server would store it: defaults and other managers' fields
    /// added, then reduced as the live cache keeps it.
    fn stored(intent: &Value) -> Value {
        let mut live = intent.clone();
        live["metadata"]["resourceVersion"] = json!("42");
        live["metadata"]["uid"] = json!("u-1");
        live["metadata"]["managedFields"] = json!([{"manager": "homestead"}]);
        live["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!("x");
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!("{}");
        live["data"]["added-by-someone"] = json!("x");
        reduce(&mut live);
        live
    }

    #[test]
    fn an_object_as_applied_meets_its_intent() {
        let intent = config_map(&[("uid", "1001")]).intent().unwrap();
        assert!(is_met(&intent, &stored(&intent)));
        let fingerprint = &intent["metadata"]["annotations"][ANNOTATION_APPLIED];
        assert_eq!(fingerprint.as_str().map(str::len), Some(16), "{intent}");
    }

    #[test]
    fn what_does_not_meet_an_intent() {
        let intent = config_map(&[("uid", "1001"), ("gid", "1001")])
            .intent()
            .unwrap();
        let live = stored(&intent);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = live.clone();
            f(&mut v);
            v
        };
        let table: [(&str, Value); 6] = [
            (
                "a value changed (drift)",
                with(&|v| v["data"]["uid"] = json!("0")),
            ),
            (
                "a key removed (drift)",
                with(&|v| {
                    v["data"].as_object_mut().unwrap().remove("gid");
                }),
            ),
            (
                "a label removed",
                with(&|v| {
                    v["metadata"]["labels"]
                        .as_object_mut()
                        .unwrap()
                        .remove("app.kubernetes.io/managed-by");
                }),
            ),
            (
                "applied with another intent",
                with(&|v| {
                    v["metadata"]["annotations"][ANNOTATION_APPLIED] = json!("0000000000000000")
                }),
            ),
            (
                "a volume released by its claim",
                with(&|v| v["status"] = json!({"phase": "Released"})),
            ),
            (
                "a claim that lost its volume",
                with(&|v| v["status"] = json!({"phase": "Lost"})),
            ),
        ];
        for (what, live) in table {
            assert!(!is_met(&intent, &live), "{what}");
        }
        // A plan that drops a key changes the fingerprint, so the old object (which still
        // has the key, and every key the new plan sets) does not meet it: applying removes it.
        let smaller = config_map(&[("uid", "1001")]).intent().unwrap();
        assert!(!is_met(&smaller, &live), "a dropped key is applied away");
    }

    #[test]
    fn empty_values_the_server_leaves_out_are_met_by_their_absence() {
        let intent = json!({"spec": {"storageClassName": "", "mountOptions": [], "x": {}}});
        assert!(is_met(&intent, &json!({"spec": {}})));
        assert!(!is_met(
            &intent,
            &json!({"spec": {"storageClassName": "fast"}})
        ));
        assert!(!is_met(
            &json!({"spec": {"storageClassName": "fast"}}),
            &json!({"spec": {}})
        ));
        assert!(
            !is_met(&json!({"spec": {"readOnly": false}}), &json!({"spec": {}})),
            "only empty values"
        );
    }

    #[test]
    fn lists_compare_element_by_element_and_by_length() {
        let intent = json!({"subjects": [{"kind": "User", "name": "ada"}]});
        let defaulted = json!({"subjects": [{"kind": "User", "name": "ada", "apiGroup": "rbac.authorization.k8s.io"}]});
        assert!(
            is_met(&intent, &defaulted),
            "server defaults inside an element"
        );
        let two =
            json!({"subjects": [{"kind": "User", "name": "ada"}, {"kind": "User", "name": "bob"}]});
        assert!(!is_met(&intent, &two), "another subject");
        assert!(!is_met(&two, &defaulted), "a missing subject");
    }

    #[test]
    fn reduce_keeps_what_intents_set_and_the_phase() {
        let mut v = json!({
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv", "resourceVersion": "9", "uid": "u", "creationTimestamp": "t",
                         "managedFields": [{}], "finalizers": ["kubernetes.io/pv-protection"],
                         "labels": {"a": "b"}, "ownerReferences": [{"uid": "o"}],
                         "annotations": {"pv.kubernetes.io/bound-by-controller": "yes", "homestead.dev/applied": "f"}},
            "spec": {"hostPath": {"path": "/p", "type": ""}},
            "status": {"phase": "Bound", "lastPhaseTransitionTime": "t"}
        });
        reduce(&mut v);
        assert_eq!(
            v,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": "pv", "labels": {"a": "b"}, "ownerReferences": [{"uid": "o"}],
                             "annotations": {"homestead.dev/applied": "f"}},
                "spec": {"hostPath": {"path": "/p", "type": ""}},
                "status": {"phase": "Bound"}
            })
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn every_value_meets_itself_and_nothing_it_lacks(v in json_value(), extra in json_value()) {
            prop_assert!(is_met(&v, &v));
            // More on the live side never breaks a match; a key the intent sets that the
            // live object lacks always does.
            let live = json!({"x": v.clone(), "more": extra});
            let same = json!({"x": v.clone()});
            let more = json!({"x": v, "missing": 1});
            prop_assert!(is_met(&same, &live));
            prop_assert!(!is_met(&more, &live));
        }
    }
}
