//! The pod reviews of the admission benchmarks (`benches/review.rs`) and of the
//! instruction-count driver (`core/examples/review_profile.rs`): realistic pods of about 3, 8
//! and 19 KB, created by `ada` in session namespace `cm37235-2`.

#![allow(dead_code)]

use base64::Engine as _;
use homestead_core::review::{Admission, Verdict, Webhook, review};
use serde_json::{Value, json};

/// (label, containers, env vars per container, labels) of each benchmark size.
pub const SIZES: [(&str, usize, usize, usize); 3] =
    [("3KB", 1, 12, 6), ("8KB", 3, 19, 14), ("19KB", 6, 28, 30)];

/// A realistic pod: `containers` containers with `env` variables each, a sidecar-ish mix
/// of probes, ports, resources and config volumes, and `labels` labels.
pub fn pod(containers: usize, env: usize, labels: usize) -> Value {
    let label_map: serde_json::Map<String, Value> = (0..labels)
        .map(|i| {
            (
                format!("example.org/label-{i}"),
                Value::from(format!("value-{i}")),
            )
        })
        .collect();
    let containers: Vec<Value> = (0..containers)
        .map(|c| {
            let env: Vec<Value> = (0..env)
                .map(|i| json!({"name": format!("SETTING_{c}_{i}"), "value": format!("https://service-{i}.example.org:8443/path")}))
                .collect();
            json!({
                "name": format!("worker-{c}"),
                "image": format!("registry.example.org/science/worker-{c}:2024.03.1"),
                "command": ["/usr/bin/python3", "-m", "worker"],
                "args": ["--config", "/etc/worker/config.yaml", "--verbose"],
                "env": env,
                "ports": [{"name": "http", "containerPort": 8080 + c, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080 + c}, "periodSeconds": 10},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080 + c}, "initialDelaySeconds": 30},
                "volumeMounts": [
                    {"name": "config", "mountPath": "/etc/worker"},
                    {"name": "scratch", "mountPath": "/scratch"}
                ],
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            })
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "analysis-",
            "namespace": "cm37235-2",
            "labels": label_map,
            "annotations": {"example.org/owner-team": "structural-biology"}
        },
        "spec": {
            "containers": containers,
            "volumes": [
                {"name": "config", "configMap": {"name": "worker-config"}},
                {"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}},
                {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}
            ],
            "restartPolicy": "Never",
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ]
        }
    })
}

pub fn review_body(object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "cm37235-2",
            "operation": "CREATE",
            "userInfo": {"username": "ada", "uid": "a1", "groups": ["system:authenticated", "oidc:science"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    }))
    .expect("serialisable")
}

/// The review of the pod as the mutating webhook patched it (what the validating webhook
/// sees), and the number of patch operations.
pub fn mutated_review(
    admission: &Admission<'_>,
    containers: usize,
    env: usize,
    labels: usize,
) -> (Vec<u8>, usize) {
    let plain = review_body(pod(containers, env, labels));
    let reviewed = review(Webhook::Mutate, &plain, admission).expect("review");
    assert!(
        matches!(reviewed.summary.verdict, Verdict::Patched { .. }),
        "{:?}",
        reviewed.summary.verdict
    );
    let mut mutated = pod(containers, env, labels);
    let response: Value = serde_json::from_slice(&reviewed.body).expect("json");
    let patch = response["response"]["patch"].as_str().expect("patch");
    let patch: json_patch::Patch = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("base64"),
    )
    .expect("patch json");
    json_patch::patch(&mut mutated, &patch).expect("patch applies");
    (review_body(mutated), patch.0.len())
}
