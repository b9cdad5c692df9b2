//! Arbitrary bytes as a Pod, created by a member in a session namespace (or by its owner
//! in a user namespace). Oracle:
//! - a patch always applies to the object it was made for;
//! - admitting the patched object again yields no patch;
//! - whatever validation allows runs every container (of every kind) as the identity's
//!   uid, never root, never privileged, never able to escalate, with only the identity's
//!   groups, and mounts only sources on the allow-list (issue 10).

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Verdict, Webhook, review};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

static STATE: LazyLock<(Config, Directory)> = LazyLock::new(|| {
    let config = Config::default();
    let (directory, _) = Directory::from_yaml(&config, include_str!("directory.yaml"))
        .expect("fuzz directory");
    (config, directory)
});

const ADA_UID: i64 = 1001;

fn body(namespace: &str, object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "ada"},
            "object": object
        }
    }))
    .expect("serialisable")
}

fn patch_of(body: &[u8]) -> Option<json_patch::Patch> {
    let out: Value = serde_json::from_slice(body).expect("responses are JSON");
    let encoded = out["response"]["patch"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("patch is base64");
    Some(serde_json::from_slice(&bytes).expect("patch is a JSON Patch"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(object) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !object.is_object() {
        return;
    }
    let (config, directory) = &*STATE;
    let pods = PodUsers::default();
    let admission = Admission {
        config,
        directory,
        pods: &pods,
    };
    let namespace = if data.len() % 2 == 0 { "cm37235-2" } else { "home-ada" };

    let request = body(namespace, &object);
    let mutated = review(Webhook::Mutate, &request, &admission)
        .expect("a well-formed review gets a response");
    let mut object = object;
    if let Some(patch) = patch_of(&mutated.body) {
        json_patch::patch(&mut object, &patch).expect("a patch applies to its object");
        let request = body(namespace, &object);
        let again = review(Webhook::Mutate, &request, &admission)
            .expect("a well-formed review gets a response");
        assert_eq!(again.summary.verdict, Verdict::Allowed, "re-admission patched again");
    }

    let request = body(namespace, &object);
    let validated = review(Webhook::Validate, &request, &admission)
        .expect("a well-formed review gets a response");
    if validated.summary.verdict != Verdict::Allowed {
        return;
    }
    // The object was accepted: check it really runs as ada. (An object that does not
    // parse as a Pod was refused above, so the fields read here are well-typed.)
    let spec = &object["spec"];
    let pod_sc = &spec["securityContext"];
    let pod_uid = pod_sc["runAsUser"].as_i64();
    let groups: &[i64] = if namespace == "cm37235-2" {
        &[1001, 2000, 159620]
    } else {
        &[1001, 2000]
    };
    let in_groups = |g: &Value| g.as_i64().is_some_and(|g| groups.contains(&g));
    for field in ["runAsGroup", "fsGroup"] {
        let g = &pod_sc[field];
        assert!(g.is_null() || in_groups(g), "accepted pod {field} {g}");
    }
    for g in pod_sc["supplementalGroups"].as_array().into_iter().flatten() {
        assert!(in_groups(g), "accepted supplemental group {g}");
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let sc = &c["securityContext"];
            let uid = sc["runAsUser"].as_i64().or(pod_uid);
            assert_eq!(uid, Some(ADA_UID), "accepted container runs as {uid:?}: {c}");
            assert_ne!(sc["privileged"], json!(true), "accepted privileged container");
            assert_ne!(sc["runAsNonRoot"], json!(false));
            assert_eq!(sc["allowPrivilegeEscalation"], json!(false), "may escalate: {c}");
            let g = &sc["runAsGroup"];
            assert!(g.is_null() || in_groups(g), "accepted container group {g}");
        }
    }
    // The default configuration allows no hostPath and no inline CSI driver.
    const ALLOWED: [&str; 7] = [
        "configMap",
        "secret",
        "downwardAPI",
        "projected",
        "emptyDir",
        "persistentVolumeClaim",
        "ephemeral",
    ];
    for v in spec["volumes"].as_array().into_iter().flatten() {
        for (key, value) in v.as_object().into_iter().flatten() {
            if key == "name" || value.is_null() {
                continue;
            }
            assert!(ALLOWED.contains(&key.as_str()), "accepted a {key} volume: {v}");
            if key == "persistentVolumeClaim" {
                assert_ne!(value["claimName"], json!("homestead-private-bob"), "{v}");
            }
            if key == "ephemeral" {
                let claim = &value["volumeClaimTemplate"]["spec"];
                for field in ["volumeName", "dataSource", "dataSourceRef"] {
                    let set = &claim[field];
                    assert!(set.is_null() || set == "", "accepted an ephemeral {field}: {v}");
                }
            }
        }
    }
    assert_ne!(spec["hostPID"], json!(true));
    assert_ne!(spec["hostNetwork"], json!(true));
});
