//! Golden patches: the exact JSON Patch the mutating webhook answers for a set of objects,
//! checked in under `tests/golden/`. A drift fails with a line diff; after an intended
//! change, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

mod support;

use std::path::PathBuf;

use homestead_core::review::Webhook;
use serde_json::{Value, json};
use support::admission::*;

fn golden(name: &str, request: &Value) {
    golden_with(&Fixture::new(), name, request);
}

fn golden_with(fx: &Fixture, name: &str, request: &Value) {
    let reviewed = fx.review(Webhook::Mutate, request);
    let patch = patch_of(&reviewed).map(|p| serde_json::to_value(p).unwrap());
    let got = serde_json::to_string_pretty(&patch.unwrap_or(Value::Null)).unwrap() + "\n";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    if want != got {
        panic!(
            "patch for {name} drifted from {}:\n{}",
            path.display(),
            line_diff(&want, &got)
        );
    }
}

/// A readable diff: the lines only in `want` (`-`) and only in `got` (`+`), with context.
fn line_diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    // Longest common subsequence, small inputs.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

#[test]
fn plain_pod_in_a_session_namespace() {
    golden(
        "pod-session",
        &request("CREATE", SESSION_NS, "ada", plain_pod()),
    );
}

#[test]
fn plain_pod_in_a_user_namespace() {
    golden("pod-user", &request("CREATE", ADA_NS, "ada", plain_pod()));
}

#[test]
fn pod_that_contradicts_its_identity() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "odd",
            "labels": {"homestead.dev/no-datasets": "", "a~b/c": "1"},
            "annotations": {"homestead.dev/run-as": "ada", "x/y~z": "keep"}
        },
        "spec": {
            "securityContext": {"runAsUser": 0, "fsGroup": 7, "supplementalGroups": [9], "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [
                {"name": "homestead-shared", "emptyDir": {}},
                {"name": "work", "emptyDir": {}}
            ],
            "containers": [{
                "name": "main",
                "image": "python:3.12",
                "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false},
                "env": [
                    {"name": "HOMESTEAD_UID", "value": "0"},
                    {"name": "KEEP", "value": "me"},
                    {"name": "HOMESTEAD_USER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "volumeMounts": [
                    {"name": "work", "mountPath": "/private"},
                    {"name": "homestead-shared", "mountPath": "/shared"}
                ]
            }]
        }
    });
    golden(
        "pod-contradicting",
        &request("CREATE", SESSION_NS, "ada", pod),
    );
}

#[test]
fn deployment_by_a_person() {
    let mut d = deployment();
    d["spec"]["template"]["metadata"]["annotations"] = json!({"homestead.dev/run-as": "bob"});
    golden(
        "deployment-session",
        &request("CREATE", SESSION_NS, "ada", d),
    );
}

#[test]
fn cronjob_in_a_user_namespace() {
    golden("cronjob-user", &request("CREATE", ADA_NS, "ada", cronjob()));
}

#[test]
fn an_already_mutated_pod_has_no_patch() {
    let fx = Fixture::new();
    let mutated = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    golden(
        "pod-session-again",
        &request("CREATE", SESSION_NS, "ada", mutated),
    );
}

#[test]
fn workflow_with_steps_and_dag_and_forged_stamps() {
    let mut wf = workflow();
    wf["spec"]["podMetadata"]["annotations"] = json!({"homestead.dev/run-as": "bob"});
    wf["spec"]["templates"][1]["metadata"] =
        json!({"annotations": {"homestead.dev/run-as": "bob"}});
    wf["spec"]["templates"][2]["metadata"]["annotations"] =
        json!({"homestead.dev/run-as": "bob", "keep": "me"});
    golden(
        "workflow-session",
        &request("CREATE", SESSION_NS, "ada", wf),
    );
}

#[test]
fn workflow_without_pod_metadata() {
    golden(
        "workflow-from-template",
        &request("CREATE", SESSION_NS, "bob", workflow_from_template()),
    );
}

#[test]
fn cron_workflow_by_a_person() {
    golden(
        "cronworkflow-session",
        &request("CREATE", SESSION_NS, "ada", cron_workflow()),
    );
}

#[test]
fn pytorch_job_by_a_member() {
    let mut job = pytorch_job();
    // A stamp forged in one template, and one where the operator might copy it from.
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"]["annotations"] =
        json!({"homestead.dev/run-as": "bob"});
    job["spec"]["runPolicy"]["annotations"] = json!({"homestead.dev/run-as": "bob"});
    golden_with(
        &Fixture::with_config(pytorch_config()),
        "pytorchjob-session",
        &request("CREATE", SESSION_NS, "ada", job),
    );
}
