//! Configured workload kinds (issue 12, item 3): custom resources with pod templates
//! (`workloadKinds`), stamped and validated as built-in workloads are — one table row per
//! rule, through the public `review` entry point.

mod support;

use homestead_core::config::Config;
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

const RUN_AS: &str = "homestead.dev/run-as";
const MASTER: &str = "/spec/pytorchReplicaSpecs/Master/template";
const WORKER: &str = "/spec/pytorchReplicaSpecs/Worker/template";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Allowed without deciding anyone (nothing of identity changed).
    Allowed,
    /// Allowed (patched or not), running as this user.
    RunsAs(&'static str),
    /// Denied with this reason, the message containing this text.
    Denied(&'static str, &'static str),
}

struct Row {
    name: &'static str,
    webhook: Webhook,
    request: Value,
    want: Want,
}

fn row(name: &'static str, webhook: Webhook, request: Value, want: Want) -> Row {
    Row {
        name,
        webhook,
        request,
        want,
    }
}

fn check(fx: &Fixture, rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in rows {
        let reviewed = fx.review(row.webhook, &row.request);
        let summary = &reviewed.summary;
        let ok = match (&summary.verdict, row.want) {
            (Verdict::Allowed, Want::Allowed) => summary.identity.is_none(),
            (Verdict::Denied { .. }, Want::RunsAs(_)) => false,
            (_, Want::RunsAs(user)) => summary.identity.as_deref() == Some(user),
            (
                Verdict::Denied {
                    reason, message, ..
                },
                Want::Denied(want, text),
            ) => *reason == want && message.contains(text),
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: got {:?} as {:?}, wanted {:?}",
                row.name, summary.verdict, summary.identity, row.want
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn at(mut object: Value, pointer: &str, key: &str, value: Value) -> Value {
    object.pointer_mut(pointer).unwrap()[key] = value;
    object
}

fn stamp(object: Value, template: &str, who: &str) -> Value {
    at(
        object,
        template,
        "metadata",
        json!({"annotations": {RUN_AS: who}}),
    )
}

fn by(username: &str, object: Value) -> Value {
    request("CREATE", SESSION_NS, username, object)
}

fn stamp_at<'v>(object: &'v Value, template: &str) -> Option<&'v str> {
    object
        .pointer(&format!("{template}/metadata/annotations"))
        .and_then(|a| a.get(RUN_AS))
        .and_then(Value::as_str)
}

#[test]
fn a_members_pytorch_job_runs_every_replica_as_them() {
    let fx = Fixture::with_config(pytorch_config());
    let mutated = fx.mutated(&by("ada", pytorch_job()));
    for template in [MASTER, WORKER] {
        assert_eq!(stamp_at(&mutated, template), Some("ada"), "{template}");
        let spec = mutated.pointer(&format!("{template}/spec")).unwrap();
        assert_eq!(spec["securityContext"]["runAsUser"], 1001, "{template}");
        assert_eq!(spec["securityContext"]["runAsGroup"], 159620, "{template}");
        assert!(
            spec["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "homestead-private"),
            "{template}"
        );
    }
    assert_eq!(
        mutated.pointer("/spec/pytorchReplicaSpecs/Worker/replicas"),
        Some(&json!(2)),
        "the rest of the job is as submitted"
    );
    let bobs = fx.mutated(&by("bob", stamp(pytorch_job(), WORKER, "ada")));
    assert_eq!(stamp_at(&bobs, MASTER), Some("bob"));
    assert_eq!(
        stamp_at(&bobs, WORKER),
        Some("bob"),
        "a forged stamp is overwritten"
    );
    let stray = at(
        pytorch_job(),
        "/spec/runPolicy",
        "annotations",
        json!({RUN_AS: "bob", "keep": "me"}),
    );
    let cleaned = fx.mutated(&by("ada", stray.clone()));
    assert_eq!(
        cleaned["spec"]["runPolicy"]["annotations"],
        json!({"keep": "me"})
    );
    let spark = fx.mutated(&by("ada", spark_application()));
    for template in ["/spec/driver/template", "/spec/executor/template"] {
        assert_eq!(stamp_at(&spark, template), Some("ada"), "{template}");
    }

    let mut privileged = mutated.clone();
    privileged["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["securityContext"]
        ["privileged"] = json!(true);
    let disagreeing = stamp(mutated.clone(), WORKER, "bob");
    let mut v2 = pytorch_job();
    v2["apiVersion"] = json!("kubeflow.org/v2");
    let mut tf_job = pytorch_job();
    tf_job["kind"] = json!("TFJob");
    let not_an_object = at(
        pytorch_job(),
        "/spec/pytorchReplicaSpecs/Worker",
        "template",
        json!("x"),
    );
    let owned_by = |kind: &str| {
        let mut pod = pytorch_pod("ada");
        pod["metadata"]["ownerReferences"][0]["kind"] = json!(kind);
        pod
    };

    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "ada's job is stamped",
            Mutate,
            by("ada", pytorch_job()),
            Want::RunsAs("ada"),
        ),
        row(
            "ada's stamped job passes",
            Validate,
            by("ada", mutated.clone()),
            Want::RunsAs("ada"),
        ),
        row(
            "bob may not submit a job stamped for ada",
            Validate,
            by("bob", mutated.clone()),
            Want::Denied(
                "forged_run_as",
                "names \"ada\" but the request comes from bob",
            ),
        ),
        row(
            "a ServiceAccount may not stamp a job",
            Mutate,
            by(
                "system:serviceaccount:cm37235-2:default",
                stamp(pytorch_job(), MASTER, "ada"),
            ),
            Want::Denied(
                "forged_run_as",
                "spec.pytorchReplicaSpecs.Master.template.metadata.annotations",
            ),
        ),
        row(
            "templates naming different people",
            Validate,
            by("ada", disagreeing),
            Want::Denied(
                "forged_run_as",
                "spec.pytorchReplicaSpecs.Worker.template.metadata.annotations",
            ),
        ),
        row(
            "a stamp where the operator might copy it from is refused",
            Validate,
            by(
                "ada",
                at(
                    mutated.clone(),
                    "/spec/runPolicy",
                    "annotations",
                    json!({RUN_AS: "ada"}),
                ),
            ),
            Want::Denied(
                "forged_run_as",
                "spec.runPolicy.annotations[\"homestead.dev/run-as\"]",
            ),
        ),
        row(
            "the pod spec of every template is validated",
            Validate,
            by("ada", privileged),
            Want::Denied(
                "privileged",
                "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].securityContext.privileged",
            ),
        ),
        row(
            "a non-member's job",
            Mutate,
            by("dave", pytorch_job()),
            Want::Denied("not_member", "\"dave\" is not a member"),
        ),
        row(
            "a template that is not an object",
            Mutate,
            by("ada", not_an_object),
            Want::Denied("invalid_object", "spec.pytorchReplicaSpecs.Worker.template"),
        ),
        row(
            "a version workloadKinds does not list is refused",
            Mutate,
            by("ada", v2),
            Want::Denied("unknown_kind", "kubeflow.org/v2 PyTorchJob"),
        ),
        row(
            "an unconfigured kind is not stamped",
            Mutate,
            by("ada", tf_job),
            Want::Allowed,
        ),
        row(
            "the training operator's pod of a stamped PyTorchJob",
            Mutate,
            by(TRAINING_OPERATOR, pytorch_pod("ada")),
            Want::RunsAs("ada"),
        ),
        row(
            "the same pod stamped for a non-member",
            Mutate,
            by(TRAINING_OPERATOR, pytorch_pod("dave")),
            Want::Denied("not_member", "dave"),
        ),
        row(
            "the operator's pod of an unconfigured kind is not believed (fail closed)",
            Mutate,
            by(TRAINING_OPERATOR, owned_by("TFJob")),
            Want::Denied("unstamped_controller", "a TFJob (kubeflow.org)"),
        ),
        row(
            "a person's pod owned by a PyTorchJob is still theirs only",
            Mutate,
            by("bob", pytorch_pod("ada")),
            Want::Denied("forged_run_as", "people can only run pods as themselves"),
        ),
        row(
            "outside managed namespaces nothing is decided",
            Mutate,
            request("CREATE", "default", "ada", pytorch_job()),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

#[test]
fn updates_keep_the_stamp_of_a_job() {
    let fx = Fixture::with_config(pytorch_config());
    let adas = fx.mutated(&by("ada", pytorch_job()));
    let mut scaled = adas.clone();
    scaled["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = json!(4);
    let mut new_image = adas.clone();
    new_image["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]["image"] =
        json!("python:3.13");
    let unstamped = {
        let mut job = new_image.clone();
        job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"]["annotations"] =
            json!({});
        job
    };
    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "scaling changes no template",
            Validate,
            update(SESSION_NS, "bob", scaled.clone(), adas.clone()),
            Want::Allowed,
        ),
        row(
            "bob may not change ada's template",
            Mutate,
            update(SESSION_NS, "bob", new_image.clone(), adas.clone()),
            Want::Denied("not_owner", "this workload runs as ada"),
        ),
        row(
            "ada may",
            Mutate,
            update(SESSION_NS, "ada", new_image.clone(), adas.clone()),
            Want::RunsAs("ada"),
        ),
        row(
            "ada's change is stamped again by mutation",
            Mutate,
            update(SESSION_NS, "ada", unstamped.clone(), adas.clone()),
            Want::RunsAs("ada"),
        ),
        row(
            "a ServiceAccount may not remove the stamp",
            Validate,
            update(
                SESSION_NS,
                "system:serviceaccount:cm37235-2:default",
                unstamped,
                adas.clone(),
            ),
            Want::Denied("not_owner", "this workload runs as ada"),
        ),
    ];
    check(&fx, rows);
}

#[test]
fn pointers_that_cannot_be_pod_templates_are_refused_by_the_configuration() {
    let problems = |kinds: &str| match Config::from_yaml(&format!("workloadKinds:\n{kinds}")) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    let kind = |pointers: &str| {
        format!(
            "  - {{group: kubeflow.org, version: v1, kind: PyTorchJob, podTemplates: {pointers}}}\n"
        )
    };
    assert_eq!(
        problems(&kind("[/spec/pytorchReplicaSpecs/*/template]")),
        ""
    );
    for (pointers, want) in [
        ("[]", "workloadKinds[0].podTemplates: is empty"),
        ("['']", "podTemplates[0]: \"\" is empty"),
        ("[spec/template]", "must start with '/'"),
        ("[/spec/replicaSpecs/*]", "ends in '*'"),
        ("[/metadata/labels]", "points into the object's metadata"),
        ("[/spec/template/spec]", "points at a template's pod spec"),
        (
            "[/spec/template/spec/containers/0]",
            "goes through \"containers\"",
        ),
        ("[/spec/a~9]", "'~' not followed by 0 or 1"),
        (
            "[/spec/driver, /spec/driver/template]",
            "podTemplates[1]: \"/spec/driver/template\" overlaps \"/spec/driver\"",
        ),
    ] {
        let got = problems(&kind(pointers));
        assert!(got.contains(want), "{pointers}: {want}\nnot in\n{got}");
        assert!(
            got.contains("cannot be a pod template") || !want.contains('\''),
            "{got}"
        );
    }
    let built_in = problems(
        "  - {group: apps, version: v1, kind: Deployment, podTemplates: [/spec/template]}\n",
    );
    assert!(
        built_in.contains("apps/Deployment is built in"),
        "{built_in}"
    );
    let argo = problems(
        "  - {group: argoproj.io, version: v1alpha1, kind: Workflow, podTemplates: [/spec/x]}\n",
    );
    assert!(argo.contains("argoproj.io/Workflow is built in"), "{argo}");
    let twice = problems(&(kind("[/spec/a/template]") + &kind("[/spec/b/template]")));
    assert!(
        twice.contains("workloadKinds[1]: kubeflow.org/v1 PyTorchJob is listed twice"),
        "{twice}"
    );
    let resource = problems(
        "  - {group: x.io, version: v1, kind: Thing, resource: Things, podTemplates: [/spec/template]}\n",
    );
    assert!(resource.contains("workloadKinds[0].resource"), "{resource}");
}

/// A SparkApplication of the Kubeflow Spark operator (≥ 2.1), whose driver and executor
/// take pod templates.
fn spark_application() -> Value {
    json!({
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": "pi"},
        "spec": {
            "type": "Scala", "mode": "cluster", "image": "spark:3.5.3",
            "mainClass": "org.apache.spark.examples.SparkPi",
            "driver": {"cores": 1, "template": {"spec": {"containers": [{"name": "spark-kubernetes-driver"}]}}},
            "executor": {"instances": 2, "template": {"metadata": {"labels": {"x": "y"}}}}
        }
    })
}
