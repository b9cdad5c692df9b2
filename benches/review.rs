//! The whole admission review — parse, identity, patch, serialise — for Pod reviews of
//! about 3, 8 and 19 KB, as the mutating and the validating webhook see them.
//!
//! `cargo bench --bench review`
//!
//! Two clocks: `review` is criterion's wall clock; `review-cpu` is the benchmark
//! thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), which is what "one core" means on a
//! machine whose other cores (and share of this one) are busy with something else.

#[path = "../tests/support/admission.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use homestead_core::review::{Verdict, Webhook, review};
use serde_json::{Value, json};

/// A realistic pod: `containers` containers with `env` variables each, a sidecar-ish mix
/// of probes, ports, resources and config volumes, and `labels` labels.
fn pod(containers: usize, env: usize, labels: usize) -> Value {
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

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `iters` times and returns the CPU time it took.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        f();
    }
    thread_cpu() - start
}

fn review_body(object: Value) -> Vec<u8> {
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

fn bench(c: &mut Criterion) {
    // The admission tests' directory: ada and bob in session cm37235-2, which has a
    // dataset claim.
    let fixture = common::Fixture::new();
    let admission = fixture.admission();
    // (label, containers, env vars per container, labels)
    let sizes = [("3KB", 1, 12, 6), ("8KB", 3, 19, 14), ("19KB", 6, 28, 30)];
    let mut bodies = Vec::new();
    let mut group = c.benchmark_group("review");
    for (label, containers, env, labels) in sizes {
        let plain = review_body(pod(containers, env, labels));
        // The validating webhook sees the mutated pod.
        let reviewed = review(Webhook::Mutate, &plain, &admission).expect("review");
        assert!(
            matches!(reviewed.summary.verdict, Verdict::Patched { .. }),
            "{label}: {:?}",
            reviewed.summary.verdict
        );
        let mut mutated = pod(containers, env, labels);
        let response: Value = serde_json::from_slice(&reviewed.body).expect("json");
        let patch = response["response"]["patch"].as_str().expect("patch");
        let patch: json_patch::Patch = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, patch)
                .expect("base64"),
        )
        .expect("patch json");
        json_patch::patch(&mut mutated, &patch).expect("patch applies");
        let mutated = review_body(mutated);
        eprintln!(
            "review/{label}: plain review {} bytes, mutated review {} bytes, {} patch ops",
            plain.len(),
            mutated.len(),
            patch.0.len()
        );
        group.throughput(Throughput::Bytes(plain.len() as u64));
        group.bench_with_input(BenchmarkId::new("mutate", label), &plain, |b, body| {
            b.iter(|| review(Webhook::Mutate, black_box(body), &admission).expect("review"))
        });
        group.bench_with_input(
            BenchmarkId::new("mutate-again", label),
            &mutated,
            |b, body| {
                b.iter(|| review(Webhook::Mutate, black_box(body), &admission).expect("review"))
            },
        );
        group.bench_with_input(BenchmarkId::new("validate", label), &mutated, |b, body| {
            b.iter(|| review(Webhook::Validate, black_box(body), &admission).expect("review"))
        });
        bodies.push((label, plain, mutated));
    }
    group.finish();

    let mut group = c.benchmark_group("review-cpu");
    for (label, plain, mutated) in &bodies {
        group.throughput(Throughput::Bytes(plain.len() as u64));
        group.bench_with_input(BenchmarkId::new("mutate", label), plain, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(
                        review(Webhook::Mutate, black_box(body), &admission).expect("review"),
                    );
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("validate", label), mutated, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(
                        review(Webhook::Validate, black_box(body), &admission).expect("review"),
                    );
                })
            })
        });
        // The floor: parsing the same bytes into an untyped serde_json::Value.
        group.bench_with_input(BenchmarkId::new("parse-only", label), plain, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(serde_json::from_slice::<Value>(black_box(body)).expect("json"));
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
