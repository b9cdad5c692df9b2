//! Trusted submitters (issue 12, item 2): a service that creates objects on behalf of a
//! person and names them in a label of the object (JupyterHub's KubeSpawner, the Argo
//! server in SSO mode). One table row per rule, through the public `review` entry point.

mod support;

use homestead_core::config::Config;
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

const HUB: &str = "system:serviceaccount:jhub:hub";
const HUB_LABEL: &str = "hub.jupyter.org/username";
const ARGO_SERVER: &str = "system:serviceaccount:argo:argo-server";
const SSO_LABEL: &str = "workflows.argoproj.io/creator-preferred-username";
const RUN_AS: &str = "homestead.dev/run-as";

fn config() -> Config {
    Config::from_yaml(&format!(
        "trustedSubmitters:\n  - {{username: {HUB}, identityLabel: {HUB_LABEL}}}\n  - {{username: {ARGO_SERVER}, identityLabel: {SSO_LABEL}}}\n"
    ))
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
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

/// `object` with the label `key` = `value` on its own metadata.
fn labelled(mut object: Value, key: &str, value: &str) -> Value {
    object["metadata"]["labels"][key] = json!(value);
    object
}

fn stamped(mut object: Value, run_as: &str) -> Value {
    object["metadata"]["annotations"] = json!({RUN_AS: run_as});
    object
}

/// A notebook pod as KubeSpawner makes it for `user`.
fn notebook(user: &str) -> Value {
    labelled(plain_pod(), HUB_LABEL, user)
}

fn create(username: &str, object: Value) -> Value {
    request("CREATE", SESSION_NS, username, object)
}

#[test]
fn a_trusted_submitters_object_runs_as_the_member_its_label_names() {
    let fx = Fixture::with_config(config());
    let mutated = fx.mutated(&create(HUB, notebook("ada")));
    assert_eq!(mutated["metadata"]["annotations"][RUN_AS], "ada");
    assert_eq!(mutated["metadata"]["labels"]["homestead.dev/user"], "ada");
    assert_eq!(mutated["spec"]["securityContext"]["runAsUser"], 1001);
    assert_eq!(mutated["spec"]["securityContext"]["runAsGroup"], 159620);
    let submitted = fx.mutated(&create(ARGO_SERVER, labelled(workflow(), SSO_LABEL, "bob")));
    assert_eq!(
        submitted["spec"]["podMetadata"]["annotations"][RUN_AS],
        "bob"
    );
    let workload = fx.mutated(&create(HUB, labelled(deployment(), HUB_LABEL, "ada")));
    assert_eq!(
        workload["spec"]["template"]["metadata"]["annotations"][RUN_AS],
        "ada"
    );

    use Webhook::{Mutate, Validate};
    let template_only = {
        let mut d = deployment_with_template_label();
        d["metadata"]["labels"] = json!({"app": "x"});
        d
    };
    let rows = vec![
        row(
            "the hub's pod for ada",
            Mutate,
            create(HUB, notebook("ada")),
            Want::RunsAs("ada"),
        ),
        row(
            "the hub's mutated pod passes",
            Validate,
            create(HUB, mutated.clone()),
            Want::RunsAs("ada"),
        ),
        row(
            "the hub's pod without the label is unattributed, saying which label is missing",
            Mutate,
            create(HUB, plain_pod()),
            Want::Denied("unattributed", "has no hub.jupyter.org/username label"),
        ),
        row(
            "an empty label is no label",
            Mutate,
            create(HUB, notebook("")),
            Want::Denied("unattributed", "has no hub.jupyter.org/username label"),
        ),
        row(
            "the label names a person who is not a member",
            Mutate,
            create(HUB, notebook("dave")),
            Want::Denied(
                "not_member",
                "submitted this for \"dave\", named by its hub.jupyter.org/username label",
            ),
        ),
        row(
            "the label names nobody in the directory",
            Mutate,
            create(HUB, notebook("mallory")),
            Want::Denied("unknown_user", "\"mallory\" is not in the directory"),
        ),
        row(
            "the label names a disabled member",
            Mutate,
            create(HUB, notebook("carol")),
            Want::Denied("disabled_user", "hub.jupyter.org/username"),
        ),
        row(
            "a person's label is not believed: bob's pod runs as bob",
            Mutate,
            create("bob", notebook("ada")),
            Want::RunsAs("bob"),
        ),
        row(
            "another ServiceAccount's label is not believed",
            Mutate,
            create("system:serviceaccount:cm37235-2:default", notebook("ada")),
            Want::Denied("unattributed", "neither a member nor a trusted controller"),
        ),
        row(
            "a trusted controller's label is not believed either",
            Mutate,
            create(
                "system:serviceaccount:kube-system:replicaset-controller",
                notebook("ada"),
            ),
            Want::Denied(
                "unattributed",
                "without the homestead.dev/run-as annotation",
            ),
        ),
        row(
            "the hub's label is not believed when another submitter sends it",
            Mutate,
            create(ARGO_SERVER, notebook("ada")),
            Want::Denied(
                "unattributed",
                "has no workflows.argoproj.io/creator-preferred-username label",
            ),
        ),
        row(
            "the submitter's own stamp agreeing with the label",
            Mutate,
            create(HUB, stamped(notebook("ada"), "ada")),
            Want::RunsAs("ada"),
        ),
        row(
            "a stamp forged next to the label is refused",
            Mutate,
            create(HUB, stamped(notebook("ada"), "bob")),
            Want::Denied("forged_run_as", "people can only run pods as themselves"),
        ),
        row(
            "a stamp forged next to the label, validated",
            Validate,
            create(HUB, stamped(notebook("ada"), "bob")),
            Want::Denied(
                "forged_run_as",
                "named by its hub.jupyter.org/username label",
            ),
        ),
        row(
            "a workload is attributed by its own label, not its template's",
            Mutate,
            create(HUB, template_only),
            Want::Denied("unattributed", "has no hub.jupyter.org/username label"),
        ),
        row(
            "a workload's own label",
            Mutate,
            create(HUB, labelled(deployment(), HUB_LABEL, "bob")),
            Want::RunsAs("bob"),
        ),
        row(
            "the Argo server in SSO mode submits bob's workflow",
            Mutate,
            create(ARGO_SERVER, labelled(workflow(), SSO_LABEL, "bob")),
            Want::RunsAs("bob"),
        ),
        row(
            "the Argo server's workflow stamped for someone else is refused",
            Validate,
            create(
                ARGO_SERVER,
                labelled(with_stamp(workflow(), "ada"), SSO_LABEL, "bob"),
            ),
            Want::Denied("forged_run_as", "spec.podMetadata.annotations"),
        ),
        row(
            "the Argo server's workflow for a non-member",
            Mutate,
            create(ARGO_SERVER, labelled(workflow(), SSO_LABEL, "dave")),
            Want::Denied("not_member", "argo-server submitted this for \"dave\""),
        ),
        row(
            "in a user namespace the label may only name its owner",
            Mutate,
            request("CREATE", ADA_NS, HUB, notebook("bob")),
            Want::Denied("not_owner", "bob may not run or change pods in it"),
        ),
        row(
            "in a user namespace, for its owner",
            Mutate,
            request("CREATE", ADA_NS, HUB, notebook("ada")),
            Want::RunsAs("ada"),
        ),
    ];
    check(&fx, rows);
}

#[test]
fn a_submitters_update_is_the_labelled_persons() {
    let fx = Fixture::with_config(config());
    let adas = fx.mutated(&create(HUB, notebook("ada")));
    let mut relabelled = adas.clone();
    relabelled["metadata"]["labels"][HUB_LABEL] = json!("bob");
    let mut changed = relabelled.clone();
    changed["spec"]["containers"][0]["image"] = json!("python:3.13");
    let rows = vec![row(
        "bob may not change ada's pod through the hub",
        Webhook::Validate,
        update(SESSION_NS, HUB, changed, adas.clone()),
        Want::Denied("not_owner", "this pod runs as ada"),
    )];
    check(&fx, rows);
    // Relabelling leaves the spec, and so the identity, as it was: allowed, deciding none.
    let reviewed = fx.review(
        Webhook::Validate,
        &update(SESSION_NS, HUB, relabelled, adas),
    );
    assert_eq!(reviewed.summary.verdict, Verdict::Allowed);
}

fn with_stamp(mut workflow: Value, run_as: &str) -> Value {
    workflow["spec"]["podMetadata"]["annotations"] = json!({RUN_AS: run_as});
    workflow
}

/// A Deployment whose pod template (not the Deployment) carries the hub's label.
fn deployment_with_template_label() -> Value {
    let mut d = deployment();
    d["spec"]["template"]["metadata"]["labels"][HUB_LABEL] = json!("ada");
    d
}

#[test]
fn submitters_are_checked_in_the_configuration() {
    let problems = |yaml: &str| match Config::from_yaml(yaml) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        problems(&format!(
            "trustedSubmitters: [{{username: {HUB}, identityLabel: {HUB_LABEL}}}]"
        )),
        ""
    );
    let bad = problems(
        "trustedSubmitters:\n  - {username: '', identityLabel: 'not a label'}\n  - {username: x, identityLabel: homestead.dev/user}\n  - {username: x, identityLabel: a/b}\n  - {username: system:serviceaccount:argo:argo-workflow-controller, identityLabel: a}\n",
    );
    for want in [
        "trustedSubmitters[0].username: is empty",
        "trustedSubmitters[0].identityLabel: \"not a label\" is not a label key",
        "trustedSubmitters[1].identityLabel: \"homestead.dev/user\" is one of homestead's own labels",
        "trustedSubmitters[2].username: \"x\" is listed twice",
        "trustedSubmitters[3].username: \"system:serviceaccount:argo:argo-workflow-controller\" is also in workflowControllers",
    ] {
        assert!(bad.contains(want), "{want}\nnot in\n{bad}");
    }
    assert!(problems("trustedSubmitters: [{username: x}]").contains("identityLabel"));
}
