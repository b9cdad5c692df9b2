//! Argo Workflows (issue 12): who a Workflow, CronWorkflow or WorkflowTemplate runs as, the
//! forged stamps that are refused or removed, and the pods the workflow controller makes
//! from them — one table row per rule, through the public `review` entry point.

mod support;

use homestead_core::config::Config;
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

const SA: &str = "system:serviceaccount:cm37235-2:argo-workflow";
const RUN_AS: &str = "homestead.dev/run-as";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allowed,
    Patched,
    /// Denied with this reason, the message naming this field.
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
        let got = match &reviewed.summary.verdict {
            Verdict::Allowed => Want::Allowed,
            Verdict::Patched { .. } => Want::Patched,
            Verdict::Denied {
                reason, message, ..
            } => match row.want {
                Want::Denied(want, field) if *reason == want && message.contains(field) => row.want,
                _ => {
                    failures.push(format!(
                        "{}: denied {reason} ({message}), wanted {:?}",
                        row.name, row.want
                    ));
                    continue;
                }
            },
        };
        if got != row.want {
            failures.push(format!("{}: got {got:?}, wanted {:?}", row.name, row.want));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn with(mut object: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let mut at = &mut object;
    for token in parent.split('/').skip(1) {
        at = match at {
            Value::Array(items) => &mut items[token.parse::<usize>().unwrap()],
            other => other
                .as_object_mut()
                .unwrap()
                .entry(token.replace("~1", "/"))
                .or_insert_with(|| json!({})),
        };
    }
    at[key.replace("~1", "/")] = value;
    object
}

fn by(username: &str, object: Value) -> Value {
    request("CREATE", SESSION_NS, username, object)
}

/// The object as `username`'s request leaves the mutating webhook.
fn mutated(fx: &Fixture, username: &str, object: Value) -> Value {
    fx.mutated(&by(username, object))
}

fn stamp_of(object: &Value) -> Option<&str> {
    object
        .pointer("/spec/podMetadata/annotations")
        .or_else(|| object.pointer("/spec/workflowSpec/podMetadata/annotations"))
        .and_then(|a| a.get(RUN_AS))
        .and_then(Value::as_str)
}

fn owned_by(mut object: Value, kind: &str) -> Value {
    object["metadata"]["ownerReferences"] = json!([{
        "apiVersion": if kind.contains('/') { kind.rsplit_once('/').unwrap().0.to_owned() } else { "argoproj.io/v1alpha1".to_owned() },
        "kind": kind.rsplit('/').next().unwrap(),
        "name": "owner", "uid": "0f4c3a1e-2222-4c1e-9a57-1d6f1f0d2b3c", "controller": true
    }]);
    object
}

fn forged(pointer: &str, who: &str) -> Value {
    with(workflow(), pointer, json!({RUN_AS: who}))
}

#[test]
fn a_members_workflow_runs_as_them_and_nothing_in_it_says_otherwise() {
    let fx = Fixture::new();
    let stamped = mutated(&fx, "ada", workflow());
    assert_eq!(stamp_of(&stamped), Some("ada"));
    // Only the stamp is added, where Argo's schema has it; the rest is as submitted.
    let mut unstamped = stamped.clone();
    unstamped["spec"]["podMetadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert_eq!(unstamped, workflow());

    let forged_everywhere = with(
        with(
            forged("/spec/podMetadata/annotations", "bob"),
            "/spec/templates/2/metadata/annotations",
            json!({RUN_AS: "bob", "keep": "me"}),
        ),
        "/spec/templateDefaults/metadata/annotations",
        json!({RUN_AS: "ada"}),
    );
    let cleaned = mutated(&fx, "ada", forged_everywhere.clone());
    assert_eq!(stamp_of(&cleaned), Some("ada"));
    assert_eq!(
        cleaned["spec"]["templates"][2]["metadata"]["annotations"],
        json!({"keep": "me"})
    );
    assert_eq!(
        cleaned["spec"]["templateDefaults"]["metadata"]["annotations"],
        json!({})
    );
    let from_template = mutated(&fx, "bob", workflow_from_template());
    assert_eq!(
        stamp_of(&from_template),
        Some("bob"),
        "a Workflow run from a template runs as its submitter"
    );

    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "ada's workflow is stamped",
            Mutate,
            by("ada", workflow()),
            Want::Patched,
        ),
        row(
            "the stamped workflow passes",
            Validate,
            by("ada", stamped.clone()),
            Want::Allowed,
        ),
        row(
            "bob may not submit a workflow stamped for ada",
            Validate,
            by("bob", stamped.clone()),
            Want::Denied("forged_run_as", "spec.podMetadata.annotations"),
        ),
        row(
            "a stamp forged in podMetadata is overwritten",
            Mutate,
            by("bob", forged("/spec/podMetadata/annotations", "ada")),
            Want::Patched,
        ),
        row(
            "a stamp forged in a template is refused after mutation",
            Validate,
            by(
                "ada",
                with(
                    stamped.clone(),
                    "/spec/templates/3/metadata",
                    json!({"annotations": {RUN_AS: "bob"}}),
                ),
            ),
            Want::Denied("forged_run_as", "spec.templates[3].metadata.annotations"),
        ),
        row(
            "even a template naming its own author is refused: someone else may run it",
            Validate,
            by(
                "ada",
                with(
                    stamped.clone(),
                    "/spec/templates/3/metadata",
                    json!({"annotations": {RUN_AS: "ada"}}),
                ),
            ),
            Want::Denied("forged_run_as", "spec.templates[3].metadata.annotations"),
        ),
        row(
            "a stamp forged in templateDefaults is refused",
            Validate,
            by(
                "ada",
                with(
                    stamped.clone(),
                    "/spec/templateDefaults",
                    json!({"metadata": {"annotations": {RUN_AS: "bob"}}}),
                ),
            ),
            Want::Denied(
                "forged_run_as",
                "spec.templateDefaults.metadata.annotations",
            ),
        ),
        row(
            "everything a person forged is removed by mutation, then passes",
            Validate,
            by("ada", cleaned),
            Want::Allowed,
        ),
        row(
            "an unstamped workflow does not pass validation",
            Validate,
            by("ada", workflow()),
            Want::Denied("forged_run_as", "spec.podMetadata.annotations"),
        ),
        row(
            "bob's run of a template passes as bob",
            Validate,
            by("bob", from_template),
            Want::Allowed,
        ),
        row(
            "a ServiceAccount's workflow is unattributed",
            Mutate,
            by(SA, workflow()),
            Want::Denied("unattributed", "homestead.dev/run-as"),
        ),
        row(
            "a ServiceAccount may not stamp a workflow",
            Mutate,
            by(SA, forged("/spec/podMetadata/annotations", "ada")),
            Want::Denied("forged_run_as", "may not set or change it"),
        ),
        row(
            "a ServiceAccount's forged template is refused, not cleaned",
            Mutate,
            by(
                SA,
                with(
                    stamped.clone(),
                    "/spec/templates/3/metadata",
                    json!({"annotations": {RUN_AS: "ada"}}),
                ),
            ),
            Want::Denied("forged_run_as", "may not set or change it"),
        ),
        row(
            "a non-member's workflow is refused",
            Mutate,
            by("dave", workflow()),
            Want::Denied("not_member", "dave"),
        ),
        row(
            "a disabled member's workflow is refused",
            Mutate,
            by("carol", workflow()),
            Want::Denied("disabled_user", "carol"),
        ),
        row(
            "bob may not submit a workflow in ada's namespace",
            Mutate,
            request("CREATE", ADA_NS, "bob", workflow()),
            Want::Denied("not_owner", "home-ada"),
        ),
        row(
            "in ada's own namespace her workflow runs as her",
            Mutate,
            request("CREATE", ADA_NS, "ada", workflow()),
            Want::Patched,
        ),
        row(
            "outside managed namespaces nothing happens",
            Mutate,
            request(
                "CREATE",
                "default",
                "ada",
                forged("/spec/templates/0/metadata/annotations", "bob"),
            ),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

#[test]
fn templates_and_cron_workflows_are_stamped_where_argo_reads_them() {
    let fx = Fixture::new();
    let cron = mutated(&fx, "ada", cron_workflow());
    assert_eq!(
        cron.pointer("/spec/workflowSpec/podMetadata/annotations/homestead.dev~1run-as"),
        Some(&json!("ada"))
    );
    assert!(cron.pointer("/spec/podMetadata").is_none());
    let template = mutated(
        &fx,
        "ada",
        with(
            workflow_template(),
            "/spec/templates/3/metadata",
            json!({"annotations": {RUN_AS: "ada"}}),
        ),
    );
    assert_eq!(stamp_of(&template), Some("ada"));
    assert_eq!(
        template["spec"]["templates"][3]["metadata"]["annotations"],
        json!({})
    );
    let cluster = |object: Value, username: &str, groups: Value| {
        let mut object = object;
        object["kind"] = json!("ClusterWorkflowTemplate");
        let mut r = request("CREATE", "", username, object);
        r["request"].as_object_mut().unwrap().remove("namespace");
        r["request"]["userInfo"]["groups"] = groups;
        r
    };
    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "the stamped CronWorkflow passes",
            Validate,
            by("ada", cron.clone()),
            Want::Allowed,
        ),
        row(
            "a CronWorkflow stamped for someone else is refused",
            Validate,
            by("bob", cron.clone()),
            Want::Denied("forged_run_as", "spec.workflowSpec.podMetadata.annotations"),
        ),
        row(
            "the cleaned WorkflowTemplate passes",
            Validate,
            by("ada", template),
            Want::Allowed,
        ),
        row(
            "a WorkflowTemplate with a forged template is refused",
            Validate,
            by(
                "bob",
                with(
                    mutated(&fx, "bob", workflow_template()),
                    "/spec/templates/2/metadata/annotations/homestead.dev~1run-as",
                    json!("ada"),
                ),
            ),
            Want::Denied("forged_run_as", "spec.templates[2].metadata.annotations"),
        ),
        row(
            "a ClusterWorkflowTemplate naming nobody passes",
            Validate,
            cluster(workflow_template(), "ada", json!(["system:authenticated"])),
            Want::Allowed,
        ),
        row(
            "a ClusterWorkflowTemplate is never mutated",
            Mutate,
            cluster(
                forged("/spec/templates/0/metadata/annotations", "ada"),
                "ada",
                json!(["system:authenticated"]),
            ),
            Want::Allowed,
        ),
        row(
            "a ClusterWorkflowTemplate with a stamp in a template is refused",
            Validate,
            cluster(
                forged("/spec/templates/0/metadata/annotations", "ada"),
                "ada",
                json!(["system:authenticated"]),
            ),
            Want::Denied("forged_run_as", "spec.templates[0].metadata.annotations"),
        ),
        row(
            "a ClusterWorkflowTemplate with a podMetadata stamp is refused",
            Validate,
            cluster(
                forged("/spec/podMetadata/annotations", "ada"),
                SA,
                json!([]),
            ),
            Want::Denied("forged_run_as", "spec.podMetadata.annotations"),
        ),
        row(
            "a cluster admin may write one",
            Validate,
            cluster(
                forged("/spec/podMetadata/annotations", "ada"),
                "root",
                json!(["system:masters"]),
            ),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

#[test]
fn the_workflow_controller_is_believed_only_for_what_homestead_stamped() {
    let fx = Fixture::new();
    let stamped_cron = mutated(&fx, "ada", cron_workflow());
    let from_cron = owned_by(
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
            "metadata": {"name": "nightly-1733022000"},
            "spec": stamped_cron["spec"]["workflowSpec"],
        }),
        "CronWorkflow",
    );
    let pod = mutated(&fx, WORKFLOW_CONTROLLER, workflow_pod("ada"));
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 1001);
    assert_eq!(pod["spec"]["securityContext"]["runAsGroup"], 159620);
    assert_eq!(pod["metadata"]["labels"]["homestead.dev/user"], "ada");
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(volumes.contains(&"homestead-data"), "{volumes:?}");
    assert!(volumes.contains(&"homestead-private"), "{volumes:?}");
    let reviewed = fx.review(Webhook::Validate, &by(WORKFLOW_CONTROLLER, pod.clone()));
    assert_eq!(reviewed.summary.identity.as_deref(), Some("ada"));

    let unowned = {
        let mut p = workflow_pod("ada");
        p["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        p
    };
    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "its pod of a Workflow is mutated as the stamp says",
            Mutate,
            by(WORKFLOW_CONTROLLER, workflow_pod("ada")),
            Want::Patched,
        ),
        row(
            "and passes",
            Validate,
            by(WORKFLOW_CONTROLLER, pod),
            Want::Allowed,
        ),
        row(
            "its pod naming a non-member is refused",
            Mutate,
            by(WORKFLOW_CONTROLLER, workflow_pod("dave")),
            Want::Denied("not_member", "dave"),
        ),
        row(
            "its pod without an owner is not believed",
            Mutate,
            by(WORKFLOW_CONTROLLER, unowned),
            Want::Denied("unstamped_controller", "no controller"),
        ),
        row(
            "its pod of a ReplicaSet is not believed",
            Mutate,
            by(
                WORKFLOW_CONTROLLER,
                owned_by(workflow_pod("ada"), "apps/ReplicaSet"),
            ),
            Want::Denied("unstamped_controller", "ReplicaSet"),
        ),
        row(
            "its pod of a WorkflowTemplate is not believed",
            Mutate,
            by(
                WORKFLOW_CONTROLLER,
                owned_by(workflow_pod("ada"), "WorkflowTemplate"),
            ),
            Want::Denied("unstamped_controller", "WorkflowTemplate"),
        ),
        row(
            "its Deployment owned by a CronWorkflow is not believed",
            Mutate,
            by(
                WORKFLOW_CONTROLLER,
                owned_by(
                    with(
                        deployment(),
                        "/spec/template/metadata/annotations",
                        json!({RUN_AS: "ada"}),
                    ),
                    "CronWorkflow",
                ),
            ),
            Want::Denied("unstamped_controller", "CronWorkflow"),
        ),
        row(
            "its pod without a stamp is unattributed",
            Mutate,
            by(WORKFLOW_CONTROLLER, {
                let mut p = workflow_pod("ada");
                p["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove(RUN_AS);
                p
            }),
            Want::Denied("unattributed", "homestead.dev/run-as"),
        ),
        row(
            "a built-in controller's pod of a Workflow is not believed",
            Mutate,
            by(
                "system:serviceaccount:kube-system:job-controller",
                workflow_pod("ada"),
            ),
            Want::Denied("unstamped_controller", "Workflow"),
        ),
        row(
            "a member's ServiceAccount's pod of a Workflow is not believed",
            Mutate,
            by(SA, workflow_pod("ada")),
            Want::Denied("forged_run_as", "may not set or change it"),
        ),
        row(
            "bob's own pod owned by a Workflow of ada's is refused",
            Mutate,
            by("bob", workflow_pod("ada")),
            Want::Denied("forged_run_as", "bob"),
        ),
        row(
            "its Workflow of a CronWorkflow keeps the CronWorkflow's stamp",
            Mutate,
            by(WORKFLOW_CONTROLLER, from_cron.clone()),
            Want::Allowed,
        ),
        row(
            "and passes",
            Validate,
            by(WORKFLOW_CONTROLLER, from_cron.clone()),
            Want::Allowed,
        ),
        row(
            "its Workflow without a CronWorkflow is not believed",
            Mutate,
            by(WORKFLOW_CONTROLLER, {
                let mut orphan = from_cron.clone();
                orphan["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .remove("ownerReferences");
                orphan
            }),
            Want::Denied("unstamped_controller", "no controller"),
        ),
    ];
    check(&fx, rows);

    // Listed as a built-in trusted controller instead (the old advice), it is believed for
    // nothing of Argo's.
    let mut config = Config::default();
    config.workflow_controllers.clear();
    config.trusted_controllers.push(WORKFLOW_CONTROLLER.into());
    let old_advice = Fixture::with_config(config);
    check(
        &old_advice,
        vec![row(
            "a trustedControllers entry does not make Workflow stamps believed",
            Mutate,
            by(WORKFLOW_CONTROLLER, workflow_pod("ada")),
            Want::Denied("unstamped_controller", "Workflow"),
        )],
    );
}

#[test]
fn updates_keep_the_stamp_and_the_controllers_copies_honest() {
    let fx = Fixture::new();
    let stamped = mutated(&fx, "ada", workflow());
    let with_status = |who: &str| {
        with(
            stamped.clone(),
            "/status/storedWorkflowTemplateSpec/podMetadata/annotations",
            json!({RUN_AS: who}),
        )
    };
    let respec = with(stamped.clone(), "/spec/parallelism", json!(2));
    use Webhook::{Mutate, Validate};
    let rows = vec![
        row(
            "the controller's status update is allowed",
            Validate,
            update(
                SESSION_NS,
                WORKFLOW_CONTROLLER,
                with_status("ada"),
                stamped.clone(),
            ),
            Want::Allowed,
        ),
        row(
            "a status copy naming someone else is refused",
            Validate,
            update(SESSION_NS, SA, with_status("bob"), stamped.clone()),
            Want::Denied(
                "forged_run_as",
                "status.storedWorkflowTemplateSpec.podMetadata.annotations",
            ),
        ),
        row(
            "a stored template with a stamp is refused",
            Validate,
            update(
                SESSION_NS,
                WORKFLOW_CONTROLLER,
                with(
                    stamped.clone(),
                    "/status/storedTemplates",
                    json!({"x/work": {"metadata": {"annotations": {RUN_AS: "ada"}}}}),
                ),
                stamped.clone(),
            ),
            Want::Denied("forged_run_as", "status.storedTemplates"),
        ),
        row(
            "ada changes her workflow",
            Mutate,
            update(SESSION_NS, "ada", respec.clone(), stamped.clone()),
            Want::Allowed,
        ),
        row(
            "and it passes",
            Validate,
            update(SESSION_NS, "ada", respec.clone(), stamped.clone()),
            Want::Allowed,
        ),
        row(
            "bob may not change ada's workflow",
            Mutate,
            update(SESSION_NS, "bob", respec.clone(), stamped.clone()),
            Want::Denied("not_owner", "spec"),
        ),
        row(
            "nor may a ServiceAccount",
            Mutate,
            update(SESSION_NS, SA, respec.clone(), stamped.clone()),
            Want::Denied("not_owner", "spec"),
        ),
        row(
            "ada may not hand her workflow to bob",
            Validate,
            update(
                SESSION_NS,
                "ada",
                with(
                    respec.clone(),
                    "/spec/podMetadata/annotations/homestead.dev~1run-as",
                    json!("bob"),
                ),
                stamped.clone(),
            ),
            Want::Denied("forged_run_as", "may not be changed"),
        ),
        row(
            "a template stamp added by an update is removed for ada",
            Mutate,
            update(
                SESSION_NS,
                "ada",
                with(
                    stamped.clone(),
                    "/spec/templates/3/metadata",
                    json!({"annotations": {RUN_AS: "bob"}}),
                ),
                stamped.clone(),
            ),
            Want::Patched,
        ),
    ];
    check(&fx, rows);
}
