//! Properties of mutation over generated pods and workloads: the patch applies, admitting
//! the result again yields no patch, the result passes validation, every container runs
//! as the identity's uid, and labels/annotations (keys with `/` and `~`) survive.

mod support;

use homestead_core::review::{Verdict, Webhook, review};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use support::admission::*;

/// Keys that need JSON Pointer escaping, mixed with ordinary ones.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("app".to_owned()),
        Just("example.org/team".to_owned()),
        Just("a~b".to_owned()),
        Just("x/~0y~1".to_owned()),
        Just("homestead.dev/no-datasets".to_owned()),
        "[a-z~/.]{1,12}",
    ]
}

fn string_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), "[a-z0-9~/ ]{0,8}", 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![Just(None), s.prop_map(Some)].boxed()
}

fn uid() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0i64), Just(1001), Just(1002), 1i64..70000]
}

fn container_security() -> impl Strategy<Value = Value> {
    (
        maybe(uid()),
        maybe(uid()),
        maybe(any::<bool>()),
        maybe(Just(false)),
        maybe(Just(true)),
    )
        .prop_map(|(user, group, non_root, ape, ro)| {
            let mut sc = Map::new();
            if let Some(u) = user {
                sc.insert("runAsUser".into(), json!(u));
            }
            if let Some(g) = group {
                sc.insert("runAsGroup".into(), json!(g));
            }
            if let Some(n) = non_root {
                sc.insert("runAsNonRoot".into(), json!(n));
            }
            if let Some(a) = ape {
                sc.insert("allowPrivilegeEscalation".into(), json!(a));
            }
            if let Some(r) = ro {
                sc.insert("readOnlyRootFilesystem".into(), json!(r));
            }
            Value::Object(sc)
        })
}

fn env() -> impl Strategy<Value = Vec<Value>> {
    let name = prop_oneof![
        Just("HOMESTEAD_UID"),
        Just("HOMESTEAD_USER"),
        Just("HOMESTEAD_DATA_DIR"),
        Just("PATH"),
        Just("OTHER"),
    ];
    prop::collection::vec(
        (name, maybe("[a-z0-9/]{0,6}")).prop_map(|(n, v)| match v {
            Some(v) => json!({"name": n, "value": v}),
            None => json!({"name": n, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
        }),
        0..4,
    )
}

fn mounts() -> impl Strategy<Value = Vec<Value>> {
    let volume = prop_oneof![
        Just("work"),
        Just("homestead-shared"),
        Just("homestead-private")
    ];
    let path = prop_oneof![
        Just("/private"),
        Just("/shared"),
        Just("/work"),
        Just("/mnt/datasets/imagenet")
    ];
    prop::collection::btree_map(path, (volume, maybe(any::<bool>())), 0..3).prop_map(|m| {
        m.into_iter()
            .map(|(path, (name, ro))| {
                let mut mount = json!({"name": name, "mountPath": path});
                if let Some(ro) = ro {
                    mount["readOnly"] = json!(ro);
                }
                mount
            })
            .collect()
    })
}

fn container(name: String) -> impl Strategy<Value = Value> {
    (maybe(container_security()), maybe(env()), maybe(mounts())).prop_map(
        move |(sc, env, mounts)| {
            let mut c = json!({"name": name, "image": "busybox"});
            if let Some(sc) = sc {
                c["securityContext"] = sc;
            }
            if let Some(env) = env {
                c["env"] = json!(env);
            }
            if let Some(m) = mounts {
                c["volumeMounts"] = json!(m);
            }
            c
        },
    )
}

fn containers(
    prefix: &'static str,
    range: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Value>> {
    range.prop_flat_map(move |n| {
        (0..n)
            .map(|i| container(format!("{prefix}{i}")))
            .collect::<Vec<_>>()
    })
}

fn pod_security() -> impl Strategy<Value = Value> {
    (
        maybe(uid()),
        maybe(uid()),
        maybe(uid()),
        maybe(prop::collection::vec(uid(), 0..3)),
        maybe(any::<bool>()),
    )
        .prop_map(|(user, group, fs, supp, non_root)| {
            let mut sc = Map::new();
            for (k, v) in [("runAsUser", user), ("runAsGroup", group), ("fsGroup", fs)] {
                if let Some(v) = v {
                    sc.insert(k.into(), json!(v));
                }
            }
            if let Some(s) = supp {
                sc.insert("supplementalGroups".into(), json!(s));
            }
            if let Some(n) = non_root {
                sc.insert("runAsNonRoot".into(), json!(n));
            }
            Value::Object(sc)
        })
}

fn volumes() -> impl Strategy<Value = Vec<Value>> {
    let name = prop_oneof![
        Just("work"),
        Just("homestead-shared"),
        Just("homestead-private"),
        Just("dataset-imagenet"),
        Just("config")
    ];
    prop::collection::btree_set(name, 0..4).prop_map(|names| {
        names
            .into_iter()
            .map(|n| match n {
                "config" => json!({"name": n, "configMap": {"name": "cfg"}}),
                "homestead-shared" => {
                    json!({"name": n, "persistentVolumeClaim": {"claimName": "homestead-shared"}})
                }
                _ => json!({"name": n, "emptyDir": {}}),
            })
            .collect()
    })
}

/// A pod: metadata with awkward keys, spec with containers that contradict the identity
/// in every way mutation repairs (but nothing only validation can refuse).
fn pod() -> impl Strategy<Value = Value> {
    (
        maybe(string_map()),
        maybe(string_map()),
        maybe(pod_security()),
        maybe(volumes()),
        containers("c", 1..4),
        maybe(containers("init", 0..3)),
    )
        .prop_map(|(labels, annotations, sc, volumes, containers, init)| {
            let mut meta = json!({"name": "generated"});
            if let Some(l) = labels {
                meta["labels"] = Value::Object(l);
            }
            if let Some(a) = annotations {
                meta["annotations"] = Value::Object(a);
            }
            let mut spec = json!({ "containers": containers });
            if let Some(sc) = sc {
                spec["securityContext"] = sc;
            }
            if let Some(v) = volumes {
                spec["volumes"] = json!(v);
            }
            if let Some(i) = init {
                spec["initContainers"] = json!(i);
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
        })
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Pod,
    Deployment,
    CronJob,
}

fn wrap(shape: Shape, pod: &Value) -> Value {
    let template = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
    match shape {
        Shape::Pod => pod.clone(),
        Shape::Deployment => json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": template}
        }),
        Shape::CronJob => json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template}}}
        }),
    }
}

fn unwrap_pod(shape: Shape, object: &Value) -> Value {
    match shape {
        Shape::Pod => object.clone(),
        Shape::Deployment => object["spec"]["template"].clone(),
        Shape::CronJob => object["spec"]["jobTemplate"]["spec"]["template"].clone(),
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Pod),
        Just(Shape::Deployment),
        Just(Shape::CronJob)
    ]
}

/// `request` serialised with its `object` first, before the `kind` that says what it is.
fn object_first(request: &Value) -> Vec<u8> {
    let mut inner = request["request"].as_object().cloned().unwrap_or_default();
    let object = inner.remove("object").unwrap_or(Value::Null);
    let rest = serde_json::to_string(&inner).unwrap();
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"object":{object},{}}}"#,
        &rest[1..]
    )
    .into_bytes()
}

fn namespace() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just(SESSION_NS), Just(ADA_NS)]
}

const ADA_UID: i64 = 1001;

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn mutation_is_idempotent_valid_and_keeps_metadata(
        pod in pod(), shape in shape(), ns in namespace()
    ) {
        let fx = Fixture::new();
        // A person does not forge: drop any run-as the generator put on the pod itself.
        let mut pod = pod;
        if let Some(a) = pod["metadata"]["annotations"].as_object_mut() {
            a.remove("homestead.dev/run-as");
        }
        let object = wrap(shape, &pod);
        let first = request("CREATE", ns, "ada", object.clone());
        let reviewed = fx.review(Webhook::Mutate, &first);
        prop_assert!(
            matches!(reviewed.summary.verdict, Verdict::Patched { .. }),
            "a generated object always needs something: {:?}", reviewed.summary.verdict
        );
        // The pod is read in place when the request's kind comes before its object (as the
        // API server writes it) and read again afterwards when it does not: same answer.
        let reordered_body = object_first(&first);
        let reordered = review(Webhook::Mutate, &reordered_body, &fx.admission()).unwrap();
        prop_assert_eq!(&reordered, &reviewed);
        let mut mutated = object.clone();
        let patch = patch_of(&reviewed).unwrap();
        json_patch::patch(&mut mutated, &patch).map_err(|e| TestCaseError::fail(format!("{e}: {patch:?}")))?;

        // Re-admission: no patch.
        let again = fx.review(Webhook::Mutate, &request("CREATE", ns, "ada", mutated.clone()));
        prop_assert_eq!(
            &again.summary.verdict, &Verdict::Allowed,
            "second patch: {:?}", patch_of(&again)
        );

        // Validation passes.
        let validated = fx.review(Webhook::Validate, &request("CREATE", ns, "ada", mutated.clone()));
        prop_assert_eq!(&validated.summary.verdict, &Verdict::Allowed);
        prop_assert_eq!(validated.summary.identity.as_deref(), Some("ada"));

        // Every container's effective uid is ada's.
        let out = unwrap_pod(shape, &mutated);
        let pod_uid = out["spec"]["securityContext"]["runAsUser"].as_i64();
        prop_assert_eq!(pod_uid, Some(ADA_UID));
        for list in ["containers", "initContainers"] {
            for c in out["spec"][list].as_array().into_iter().flatten() {
                let uid = c["securityContext"]["runAsUser"].as_i64().or(pod_uid);
                prop_assert_eq!(uid, Some(ADA_UID), "{}", c);
                prop_assert_ne!(&c["securityContext"]["runAsNonRoot"], &json!(false));
            }
        }

        // Labels and annotations survive, whatever their keys; homestead adds its stamp.
        let before = unwrap_pod(shape, &object);
        let mut labels = before["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        labels.insert("homestead.dev/user".into(), json!("ada"));
        prop_assert_eq!(&out["metadata"]["labels"], &Value::Object(labels));
        let mut annotations = before["metadata"]["annotations"].as_object().cloned().unwrap_or_default();
        annotations.insert("homestead.dev/run-as".into(), json!("ada"));
        prop_assert_eq!(&out["metadata"]["annotations"], &Value::Object(annotations));
    }
}

// ---------------------------------------------------------------------------------------
// The oracle of issue 10: whatever a member sends, what homestead admits runs as them.

fn any_volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"configMap": {"name": "cfg"}})),
        Just(json!({"secret": {"secretName": "s"}})),
        Just(json!({"emptyDir": {}})),
        Just(json!({"projected": {"sources": []}})),
        Just(json!({"downwardAPI": {"items": []}})),
        Just(json!({"persistentVolumeClaim": {"claimName": "homestead-private-bob"}})),
        Just(json!({"persistentVolumeClaim": {"claimName": "homestead-shared"}})),
        Just(json!({"persistentVolumeClaim": {"claimName": "scratch"}})),
        Just(json!({"hostPath": {"path": "/etc"}})),
        Just(json!({"hostPath": {"path": "/scratch/ada"}})),
        Just(json!({"nfs": {"server": "filer", "path": "/export/home/bob"}})),
        Just(json!({"csi": {"driver": "nfs.csi.k8s.io"}})),
        Just(json!({"csi": {"driver": "secrets-store.csi.k8s.io"}})),
        Just(json!({"image": {"reference": "data:1"}})),
        Just(json!({"futureVolume": {}})),
        Just(json!({"ephemeral": {"volumeClaimTemplate": {"spec": {}}}})),
        Just(json!({"ephemeral": {"volumeClaimTemplate": {"spec": {"volumeName": "pv-bob"}}}})),
        Just(
            json!({"ephemeral": {"volumeClaimTemplate": {"spec": {"dataSource": {"kind": "PersistentVolumeClaim", "name": "homestead-private-bob"}}}}})
        ),
    ]
}

fn any_id() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(1001),
        Just(1002),
        Just(2000),
        Just(159620),
        1i64..200_000
    ]
}

fn any_container_security() -> impl Strategy<Value = Value> {
    (
        maybe(any_id()),
        maybe(any_id()),
        maybe(any::<bool>()),
        maybe(any::<bool>()),
        maybe(any::<bool>()),
    )
        .prop_map(|(user, group, non_root, escalate, privileged)| {
            let mut sc = Map::new();
            for (k, v) in [("runAsUser", user), ("runAsGroup", group)] {
                if let Some(v) = v {
                    sc.insert(k.into(), json!(v));
                }
            }
            for (k, v) in [
                ("runAsNonRoot", non_root),
                ("allowPrivilegeEscalation", escalate),
                ("privileged", privileged),
            ] {
                if let Some(v) = v {
                    sc.insert(k.into(), json!(v));
                }
            }
            Value::Object(sc)
        })
}

fn any_containers(
    prefix: &'static str,
    range: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(maybe(any_container_security()), range).prop_map(move |scs| {
        scs.into_iter()
            .enumerate()
            .map(|(i, sc)| {
                let mut c = json!({"name": format!("{prefix}{i}"), "image": "busybox"});
                if let Some(sc) = sc {
                    c["securityContext"] = sc;
                }
                c
            })
            .collect()
    })
}

/// Whatever a member could send: any ids and groups, escalation, privilege, any volume.
fn any_pod() -> impl Strategy<Value = Value> {
    (
        (
            maybe(any_id()),
            maybe(any_id()),
            maybe(any_id()),
            maybe(prop::collection::vec(any_id(), 0..4)),
        ),
        prop::collection::vec(any_volume(), 0..4),
        any_containers("c", 1..3),
        any_containers("i", 0..2),
        any_containers("e", 0..2),
    )
        .prop_map(|((user, group, fs, supplemental), volumes, containers, init, ephemeral)| {
            let mut sc = Map::new();
            for (k, v) in [("runAsUser", user), ("runAsGroup", group), ("fsGroup", fs)] {
                if let Some(v) = v {
                    sc.insert(k.into(), json!(v));
                }
            }
            if let Some(s) = supplemental {
                sc.insert("supplementalGroups".into(), json!(s));
            }
            let volumes: Vec<Value> = volumes
                .into_iter()
                .enumerate()
                .map(|(i, mut v)| {
                    v["name"] = json!(format!("v{i}"));
                    v
                })
                .collect();
            let mut spec = json!({"securityContext": sc, "containers": containers, "volumes": volumes});
            if !init.is_empty() {
                spec["initContainers"] = json!(init);
            }
            if !ephemeral.is_empty() {
                spec["ephemeralContainers"] = json!(ephemeral);
            }
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "any"}, "spec": spec})
        })
}

/// True when `volume` is a source a pod of ada may mount under the test configuration.
fn allowed_source(volume: &Value) -> bool {
    let source = volume
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| *k != "name")
        .map(|(k, v)| (k.as_str(), v))
        .collect::<Vec<_>>();
    let [(key, value)] = source[..] else {
        return false;
    };
    match key {
        "configMap" | "secret" | "emptyDir" | "projected" | "downwardAPI" => true,
        "persistentVolumeClaim" => value["claimName"] != "homestead-private-bob",
        "hostPath" => value["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/scratch/")),
        "csi" => value["driver"] == "secrets-store.csi.k8s.io",
        "ephemeral" => {
            let spec = &value["volumeClaimTemplate"]["spec"];
            spec.get("volumeName").is_none() && spec.get("dataSource").is_none()
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_admitted_pod_leaves_the_identity(pod in any_pod(), ns in namespace()) {
        let config = homestead_core::config::Config::from_yaml(
            "security: {allowedHostPaths: [/scratch], allowedCsiDrivers: [secrets-store.csi.k8s.io]}",
        ).unwrap();
        let fx = Fixture::with_config(config);
        let r = request("CREATE", ns, "ada", pod.clone());
        let reviewed = fx.review(Webhook::Mutate, &r);
        let mut object = pod;
        if let Some(patch) = patch_of(&reviewed) {
            json_patch::patch(&mut object, &patch).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        let validated = fx.review(Webhook::Validate, &request("CREATE", ns, "ada", object.clone()));
        if validated.summary.verdict != Verdict::Allowed {
            return Ok(());
        }
        // ada in her namespace, or in the session (whose gid joins her groups).
        let mut groups = vec![1001i64, 2000, 2001];
        if ns == SESSION_NS {
            groups.push(159620);
        }
        let spec = &object["spec"];
        let pod_sc = &spec["securityContext"];
        for field in ["runAsGroup", "fsGroup"] {
            if let Some(g) = pod_sc[field].as_i64() {
                prop_assert!(groups.contains(&g), "pod {field} {g}");
            }
        }
        for g in pod_sc["supplementalGroups"].as_array().into_iter().flatten() {
            prop_assert!(groups.contains(&g.as_i64().unwrap()), "supplemental group {g}");
        }
        for list in ["containers", "initContainers", "ephemeralContainers"] {
            for c in spec[list].as_array().into_iter().flatten() {
                let sc = &c["securityContext"];
                let uid = sc["runAsUser"].as_i64().or(pod_sc["runAsUser"].as_i64());
                prop_assert_eq!(uid, Some(ADA_UID), "{}", c);
                if let Some(g) = sc["runAsGroup"].as_i64() {
                    prop_assert!(groups.contains(&g), "container group {g}");
                }
                prop_assert_eq!(&sc["allowPrivilegeEscalation"], &json!(false), "{}", c);
                prop_assert_ne!(&sc["privileged"], &json!(true));
                prop_assert_ne!(&sc["runAsNonRoot"], &json!(false));
            }
        }
        for v in spec["volumes"].as_array().into_iter().flatten() {
            prop_assert!(allowed_source(v), "admitted volume {}", v);
        }
    }
}
