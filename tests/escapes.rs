//! Every way out of the identity that issue 10 found, one table row per rule and variant,
//! through the public `review` entry point exactly as the server and the CLI call it. The
//! attackers are a session member with the default `edit` role (bob, or dave who is not a
//! member), the session's own `argo-workflow` ServiceAccount (any member can impersonate
//! it), and the built-in controllers; the victim is ada.

mod support;

use homestead_core::config::Config;
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Allowed without a patch.
    Allowed,
    /// Allowed with a patch.
    Patched,
    /// Denied with this reason code, the message naming this text (a field, a person).
    Denied(&'static str, &'static str),
}

struct Row {
    name: String,
    webhook: Webhook,
    request: Value,
    want: Want,
}

fn mutate(name: impl Into<String>, request: Value, want: Want) -> Row {
    Row {
        name: name.into(),
        webhook: Webhook::Mutate,
        request,
        want,
    }
}

fn validate(name: impl Into<String>, request: Value, want: Want) -> Row {
    Row {
        name: name.into(),
        webhook: Webhook::Validate,
        request,
        want,
    }
}

/// The same request to both webhooks.
fn both(name: &str, request: Value, want: Want) -> [Row; 2] {
    [
        mutate(format!("{name} (mutate)"), request.clone(), want),
        validate(format!("{name} (validate)"), request, want),
    ]
}

fn check(fx: &Fixture, rows: impl IntoIterator<Item = Row>) {
    let mut failures = Vec::new();
    let mut count = 0;
    for row in rows {
        count += 1;
        let reviewed = fx.review(row.webhook, &row.request);
        let got = match &reviewed.summary.verdict {
            Verdict::Allowed => Want::Allowed,
            Verdict::Patched { .. } => Want::Patched,
            Verdict::Denied {
                reason, message, ..
            } => match row.want {
                Want::Denied(want, text) if *reason == want && message.contains(text) => row.want,
                _ => {
                    failures.push(format!(
                        "{}: denied {reason}: {message}\n    wanted {:?}",
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
    assert!(
        failures.is_empty(),
        "{} of {count} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

const ARGO: &str = "system:serviceaccount:cm37235-2:argo-workflow";
const HOMESTEAD: &str = "system:serviceaccount:homestead:homestead";

/// `request` sent by a member of `system:masters`.
fn as_admin(mut request: Value) -> Value {
    request["request"]["userInfo"] =
        json!({"username": "root", "groups": ["system:masters", "system:authenticated"]});
    request
}

/// The pod (template) of an object, by pointer.
fn pod_pointer(object: &Value) -> &'static str {
    match object["kind"].as_str().unwrap_or_default() {
        "Pod" => "",
        "CronJob" => "/spec/jobTemplate/spec/template",
        "PodTemplate" => "/template",
        _ => "/spec/template",
    }
}

fn pod_of(object: &mut Value) -> &mut Value {
    let pointer = pod_pointer(object);
    object.pointer_mut(pointer).unwrap()
}

/// Every kind that carries a pod template, wrapping the plain pod.
fn workloads() -> Vec<Value> {
    let pod = plain_pod();
    let template = json!({"metadata": pod["metadata"], "spec": pod["spec"]});
    let selector = json!({"matchLabels": {"app": "analysis"}});
    let mut job_template = template.clone();
    job_template["spec"]["restartPolicy"] = json!("Never");
    vec![
        deployment(),
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
               "spec": {"serviceName": "db", "selector": selector, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
               "spec": {"selector": selector, "template": template}}),
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs"},
               "spec": {"selector": selector, "template": template}}),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
               "spec": {"template": job_template}}),
        cronjob(),
        json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
               "spec": {"replicas": 1, "selector": {"app": "analysis"}, "template": template}}),
        json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "tpl"}, "template": template}),
    ]
}

fn kind(object: &Value) -> String {
    object["kind"].as_str().unwrap_or_default().to_owned()
}

/// `object` with the image of its first container changed.
fn new_image(mut object: Value) -> Value {
    pod_of(&mut object)["spec"]["containers"][0]["image"] = json!("evil:latest");
    object
}

/// `object` as `kubectl rollout restart` leaves it.
fn restarted(mut object: Value) -> Value {
    pod_of(&mut object)["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] =
        json!("2024-03-15T09:00:00Z");
    object
}

/// `object` with a label on the workload itself (not its template) and other replicas.
fn relabelled(mut object: Value) -> Value {
    object["metadata"]["labels"] = json!({"team": "crystallography"});
    if object["spec"].get("replicas").is_some() {
        object["spec"]["replicas"] = json!(5);
    }
    object
}

fn stamped(object: &Value) -> Option<String> {
    let mut object = object.clone();
    pod_of(&mut object)["metadata"]["annotations"]["homestead.dev/run-as"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn row_1_only_the_workloads_person_changes_its_template() {
    let fx = Fixture::new();
    let ns = SESSION_NS;
    let rs_controller = "system:serviceaccount:kube-system:replicaset-controller";
    let mut rows = Vec::new();
    for workload in workloads() {
        let k = kind(&workload);
        let adas = fx.mutated(&request("CREATE", ns, "ada", workload.clone()));
        assert_eq!(stamped(&adas).as_deref(), Some("ada"), "{k}");
        let change = |who: &str, new: Value| update(ns, who, new, adas.clone());
        rows.extend(both(
            &format!("{k}: argo-workflow sets the image of ada's"),
            change(ARGO, new_image(adas.clone())),
            Want::Denied("not_owner", "runs as ada"),
        ));
        rows.extend(both(
            &format!("{k}: bob sets the image of ada's"),
            change("bob", new_image(adas.clone())),
            Want::Denied("not_owner", "bob may not"),
        ));
        rows.extend(both(
            &format!("{k}: bob rollout-restarts ada's"),
            change("bob", restarted(adas.clone())),
            Want::Denied("not_owner", "template"),
        ));
        rows.extend(both(
            &format!("{k}: a non-member changes ada's"),
            change("dave", new_image(adas.clone())),
            Want::Denied("not_owner", "dave may not"),
        ));
        rows.extend(both(
            &format!("{k}: a trusted controller changes ada's template"),
            change(rs_controller, new_image(adas.clone())),
            Want::Denied("not_owner", "runs as ada"),
        ));
        rows.extend(both(
            &format!("{k}: bob only labels ada's (or scales it): untouched"),
            change("bob", relabelled(adas.clone())),
            Want::Allowed,
        ));
        rows.extend(both(
            &format!("{k}: argo-workflow only labels ada's: untouched"),
            change(ARGO, relabelled(adas.clone())),
            Want::Allowed,
        ));
        rows.extend(both(
            &format!("{k}: ada changes her own image"),
            change("ada", new_image(adas.clone())),
            Want::Allowed,
        ));
        rows.extend(both(
            &format!("{k}: a cluster admin changes ada's"),
            as_admin(change("root", new_image(adas.clone()))),
            Want::Allowed,
        ));
        rows.extend(both(
            &format!("{k}: homestead changes ada's"),
            change(HOMESTEAD, new_image(adas.clone())),
            Want::Allowed,
        ));
        rows.push(mutate(
            format!("{k}: ada hands her template to bob: stamped back to ada"),
            change("ada", with_stamp(new_image(adas.clone()), "bob")),
            Want::Patched,
        ));
        rows.push(validate(
            format!("{k}: a template whose stamp was changed"),
            change("ada", with_stamp(new_image(adas.clone()), "bob")),
            Want::Denied("forged_run_as", "may not be changed"),
        ));
        // A template from before homestead stamped templates: the person who changes it
        // gets it, unless someone else's stamp is in it.
        let unstamped = workload.clone();
        rows.push(mutate(
            format!("{k}: bob changes an unstamped one: stamped to bob"),
            update(ns, "bob", new_image(unstamped.clone()), unstamped.clone()),
            Want::Patched,
        ));
        rows.push(mutate(
            format!("{k}: argo-workflow changes an unstamped one"),
            update(ns, ARGO, new_image(unstamped.clone()), unstamped.clone()),
            Want::Denied("unattributed", "argo-workflow"),
        ));
        // Home namespaces: one identity, people only run pods as themselves.
        let home = fx.mutated(&request("CREATE", ADA_NS, "ada", workload.clone()));
        rows.extend(both(
            &format!("{k}: bob (granted edit) changes one in home-ada"),
            update(ADA_NS, "bob", new_image(home.clone()), home.clone()),
            Want::Denied("not_owner", "belongs to ada"),
        ));
        rows.extend(both(
            &format!("{k}: bob creates one in home-ada"),
            request("CREATE", ADA_NS, "bob", workload.clone()),
            Want::Denied("not_owner", "belongs to ada"),
        ));
        rows.extend(both(
            &format!("{k}: a ServiceAccount of home-ada changes one (acts for ada)"),
            update(
                ADA_NS,
                "system:serviceaccount:home-ada:default",
                new_image(home.clone()),
                home.clone(),
            ),
            Want::Allowed,
        ));
    }
    check(&fx, rows);
}

fn with_stamp(mut object: Value, run_as: &str) -> Value {
    pod_of(&mut object)["metadata"]["annotations"]["homestead.dev/run-as"] = json!(run_as);
    object
}

#[test]
fn row_1_the_stamp_names_whoever_last_changed_the_template() {
    let fx = Fixture::new();
    // bob's Deployment; ada merely labels it: still bob's.
    let bobs = fx.mutated(&request("CREATE", SESSION_NS, "bob", deployment()));
    let labelled = update(SESSION_NS, "ada", relabelled(bobs.clone()), bobs.clone());
    let reviewed = fx.review(Webhook::Mutate, &labelled);
    assert_eq!(
        reviewed.summary.verdict,
        Verdict::Allowed,
        "no patch at all"
    );
    assert_eq!(reviewed.summary.identity, None, "no identity is decided");
    // bob's own change keeps bob's stamp and re-mutates as bob.
    let mut changed = new_image(bobs.clone());
    changed["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = json!(1001);
    let mutated = fx.mutated(&update(SESSION_NS, "bob", changed, bobs));
    assert_eq!(stamped(&mutated).as_deref(), Some("bob"));
    assert_eq!(
        mutated["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        1002
    );
    // An unstamped template changed by a person is theirs.
    let unstamped = deployment();
    let mutated = fx.mutated(&update(
        SESSION_NS,
        "bob",
        new_image(unstamped.clone()),
        unstamped,
    ));
    assert_eq!(stamped(&mutated).as_deref(), Some("bob"));
}

#[test]
fn row_2_and_3_ephemeral_containers() {
    let fx = Fixture::new();
    let pod = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    let with_debug = |container: Value| {
        let mut new = pod.clone();
        new["spec"]["ephemeralContainers"] = json!([container]);
        new
    };
    let sub = |username: &str, new: Value| {
        let mut r = update(SESSION_NS, username, new, pod.clone());
        r["request"]["subResource"] = json!("ephemeralcontainers");
        r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
        r
    };
    let bare = json!({"name": "debug", "image": "busybox"});
    let safe = json!({"name": "debug", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": false}});
    let mut rows = Vec::new();
    rows.extend(both(
        "row 2: argo-workflow adds a debug container to ada's pod",
        sub(ARGO, with_debug(safe.clone())),
        Want::Denied("not_owner", "spec.ephemeralContainers"),
    ));
    rows.extend(both(
        "row 2: bob adds a debug container to ada's pod",
        sub("bob", with_debug(safe.clone())),
        Want::Denied("not_owner", "only ada"),
    ));
    rows.extend(both(
        "row 2: a trusted controller adds one",
        sub(
            "system:serviceaccount:kube-system:job-controller",
            with_debug(safe.clone()),
        ),
        Want::Denied("not_owner", "only ada"),
    ));
    rows.push(validate(
        "row 2: ada adds a safe one",
        sub("ada", with_debug(safe.clone())),
        Want::Allowed,
    ));
    rows.push(validate(
        "row 2: a cluster admin adds one",
        as_admin(sub("root", with_debug(safe.clone()))),
        Want::Allowed,
    ));
    rows.push(mutate(
        "row 3: ada's debug container without a securityContext is mutated",
        sub("ada", with_debug(bare.clone())),
        Want::Patched,
    ));
    rows.push(mutate(
        "row 3: one that contradicts the identity is mutated",
        sub(
            "ada",
            with_debug(
                json!({"name": "debug", "image": "busybox", "securityContext": {"runAsUser": 0}}),
            ),
        ),
        Want::Patched,
    ));
    rows.push(mutate(
        "row 3: a safe one needs nothing",
        sub("ada", with_debug(safe.clone())),
        Want::Allowed,
    ));
    rows.push(validate(
        "row 3: one without a securityContext (not mutated) may escalate",
        sub("ada", with_debug(bare.clone())),
        Want::Denied(
            "privilege_escalation",
            "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
        ),
    ));
    rows.push(validate(
        "row 3: one with a securityContext but no allowPrivilegeEscalation",
        sub(
            "ada",
            with_debug(json!({"name": "debug", "image": "busybox", "securityContext": {"runAsNonRoot": true}})),
        ),
        Want::Denied(
            "privilege_escalation",
            "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
        ),
    ));
    for (list, field) in [
        (
            "containers",
            "spec.containers[0].securityContext.allowPrivilegeEscalation",
        ),
        (
            "initContainers",
            "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
        ),
    ] {
        let mut escaped = pod.clone();
        escaped["spec"][list][0]["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("allowPrivilegeEscalation");
        rows.push(validate(
            format!("row 3: {list} without allowPrivilegeEscalation"),
            request("CREATE", SESSION_NS, "ada", escaped),
            Want::Denied("privilege_escalation", field),
        ));
    }
    check(&fx, rows);

    // Mutated, the debug container passes validation.
    let r = sub("ada", with_debug(bare));
    let mutated = fx.mutated(&r);
    assert_eq!(
        mutated["spec"]["ephemeralContainers"][0]["securityContext"],
        json!({"allowPrivilegeEscalation": false})
    );
    assert_eq!(
        mutated["spec"]["containers"], pod["spec"]["containers"],
        "nothing but the ephemeral containers is patched"
    );
    let validated = fx.review(Webhook::Validate, &sub("ada", mutated));
    assert_eq!(validated.summary.verdict, Verdict::Allowed);
}

#[test]
fn row_4_only_the_pods_person_changes_its_spec() {
    let fx = Fixture::new();
    let adas = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    let change = |ns: &str, who: &str, old: &Value, edit: &dyn Fn(&mut Value)| {
        let mut new = old.clone();
        edit(&mut new);
        update(ns, who, new, old.clone())
    };
    let image = |pod: &mut Value| pod["spec"]["containers"][0]["image"] = json!("evil:latest");
    let label = |pod: &mut Value| pod["metadata"]["labels"]["debug"] = json!("true");
    let run_as =
        |pod: &mut Value| pod["metadata"]["annotations"]["homestead.dev/run-as"] = json!("bob");
    let user = |pod: &mut Value| pod["metadata"]["labels"]["homestead.dev/user"] = json!("bob");
    let mut rows = vec![
        validate(
            "bob swaps the image of ada's running pod",
            change(SESSION_NS, "bob", &adas, &image),
            Want::Denied("not_owner", "this pod runs as ada"),
        ),
        validate(
            "argo-workflow swaps the image",
            change(SESSION_NS, ARGO, &adas, &image),
            Want::Denied("not_owner", "runs as ada"),
        ),
        validate(
            "a non-member swaps the image",
            change(SESSION_NS, "dave", &adas, &image),
            Want::Denied("not_owner", "dave may not"),
        ),
        validate(
            "ada swaps her own image",
            change(SESSION_NS, "ada", &adas, &image),
            Want::Allowed,
        ),
        validate(
            "a cluster admin swaps it",
            as_admin(change(SESSION_NS, "root", &adas, &image)),
            Want::Allowed,
        ),
        validate(
            "bob labels ada's pod",
            change(SESSION_NS, "bob", &adas, &label),
            Want::Allowed,
        ),
        validate(
            "argo-workflow labels ada's pod",
            change(SESSION_NS, ARGO, &adas, &label),
            Want::Allowed,
        ),
        validate(
            "bob re-stamps ada's pod",
            change(SESSION_NS, "bob", &adas, &run_as),
            Want::Denied("forged_run_as", "homestead.dev/run-as"),
        ),
        validate(
            "bob relabels ada's pod as his (to exec into it)",
            change(SESSION_NS, "bob", &adas, &user),
            Want::Denied("forged_run_as", "homestead.dev/user"),
        ),
        validate(
            "ada relabels her own pod as bob's",
            change(SESSION_NS, "ada", &adas, &user),
            Want::Denied("forged_run_as", "homestead.dev/user"),
        ),
        validate(
            "ada changes her image and her pod's user label",
            change(SESSION_NS, "ada", &adas, &|p: &mut Value| {
                image(p);
                user(p);
            }),
            Want::Denied("forged_run_as", "homestead.dev/user"),
        ),
        mutate(
            "a pod update is never patched",
            change(SESSION_NS, "ada", &adas, &image),
            Want::Allowed,
        ),
    ];
    let mut status = change(SESSION_NS, "system:node:n1", &adas, &image);
    status["request"]["subResource"] = json!("status");
    rows.push(validate("the status subresource", status, Want::Allowed));
    let home = fx.mutated(&request("CREATE", ADA_NS, "ada", plain_pod()));
    rows.push(validate(
        "bob (granted edit in home-ada) swaps the image",
        change(ADA_NS, "bob", &home, &image),
        Want::Denied("not_owner", "belongs to ada"),
    ));
    rows.push(validate(
        "a ServiceAccount of home-ada swaps the image",
        change(
            ADA_NS,
            "system:serviceaccount:home-ada:default",
            &home,
            &image,
        ),
        Want::Allowed,
    ));
    check(&fx, rows);
}

/// A pod the named controller made, stamped `run_as`, controlled by `owner` (apiVersion,
/// kind), or by nothing.
fn controller_pod(run_as: &str, owner: Option<(&str, &str)>) -> Value {
    let mut pod = with_stamp(plain_pod(), run_as);
    if let Some((api_version, kind)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": api_version, "kind": kind, "name": "x", "uid": "1",
            "controller": true, "blockOwnerDeletion": true
        }]);
    }
    pod
}

#[test]
fn row_5_every_pod_making_kind_is_stamped_and_controllers_are_believed_only_for_them() {
    let fx = Fixture::new();
    let ns = SESSION_NS;
    let kcm = "system:kube-controller-manager";
    let rc = "system:serviceaccount:kube-system:replication-controller";
    let mut rows = Vec::new();
    for workload in workloads() {
        let k = kind(&workload);
        rows.push(mutate(
            format!("{k} by ada forging bob: stamped ada"),
            request("CREATE", ns, "ada", with_stamp(workload.clone(), "bob")),
            Want::Patched,
        ));
        rows.extend(both(
            &format!("{k} by argo-workflow forging ada"),
            request("CREATE", ns, ARGO, with_stamp(workload.clone(), "ada")),
            Want::Denied("forged_run_as", "argo-workflow may not"),
        ));
        rows.push(validate(
            format!("{k} unmutated (no stamp) reaches validation"),
            request("CREATE", ns, ARGO, workload.clone()),
            Want::Denied("unattributed", "argo-workflow"),
        ));
    }
    for (owner, who, want) in [
        (Some(("apps/v1", "ReplicaSet")), kcm, Want::Patched),
        (Some(("apps/v1", "StatefulSet")), kcm, Want::Patched),
        (Some(("apps/v1", "DaemonSet")), kcm, Want::Patched),
        (Some(("batch/v1", "Job")), kcm, Want::Patched),
        (Some(("v1", "ReplicationController")), rc, Want::Patched),
        (
            Some(("example.org/v1", "Frobnicator")),
            kcm,
            Want::Denied("unstamped_controller", "Frobnicator"),
        ),
        (
            Some(("v1", "PodTemplate")),
            kcm,
            Want::Denied("unstamped_controller", "PodTemplate"),
        ),
        (
            Some(("apps/v1", "ControllerRevision")),
            kcm,
            Want::Denied("unstamped_controller", "ControllerRevision"),
        ),
        (
            None,
            kcm,
            Want::Denied("unstamped_controller", "no controller"),
        ),
        (
            None,
            rc,
            Want::Denied("unstamped_controller", "no controller"),
        ),
    ] {
        rows.push(mutate(
            format!("a pod of {owner:?} made by {who}, stamped ada"),
            request("CREATE", ns, who, controller_pod("ada", owner)),
            want,
        ));
    }
    // What the deployment and cronjob controllers copy from a stamped parent is left alone
    // (its controller compares it with the parent's) and passes validation.
    let adas = fx.mutated(&request("CREATE", ns, "ada", deployment()));
    let mut replica_set = adas.clone();
    replica_set["kind"] = json!("ReplicaSet");
    replica_set["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true}]);
    rows.extend(both(
        "a ReplicaSet the deployment controller copies from ada's Deployment",
        request(
            "CREATE",
            ns,
            "system:serviceaccount:kube-system:deployment-controller",
            replica_set.clone(),
        ),
        Want::Allowed,
    ));
    let mut orphan = replica_set;
    orphan["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    rows.push(mutate(
        "a stamped ReplicaSet a controller makes from nothing",
        request(
            "CREATE",
            ns,
            "system:serviceaccount:kube-system:deployment-controller",
            orphan,
        ),
        Want::Denied("unstamped_controller", "no controller"),
    ));
    check(&fx, rows);
}

fn connect(ns: &str, username: &str, subresource: &str, pod: &str) -> Value {
    let kind = match subresource {
        "exec" => "PodExecOptions",
        "attach" => "PodAttachOptions",
        "proxy" => "PodProxyOptions",
        _ => "PodPortForwardOptions",
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "c0ffee",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "subResource": subresource,
            "name": pod,
            "namespace": ns,
            "operation": "CONNECT",
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": {"apiVersion": "v1", "kind": kind, "command": ["sh"], "container": "main", "stdin": true, "tty": true},
            "oldObject": null,
            "dryRun": false
        }
    })
}

#[test]
fn row_6_exec_attach_and_port_forward_only_by_the_pods_person() {
    let fx = Fixture::new();
    let mut rows = Vec::new();
    for sub in ["exec", "attach", "portforward", "proxy"] {
        rows.push(validate(
            format!("bob {sub} into ada's pod"),
            connect(SESSION_NS, "bob", sub, "analysis"),
            Want::Denied("not_owner", "runs as ada"),
        ));
        rows.push(validate(
            format!("argo-workflow {sub} into ada's pod"),
            connect(SESSION_NS, ARGO, sub, "analysis"),
            Want::Denied("not_owner", "runs as ada"),
        ));
        rows.push(validate(
            format!("ada {sub} into her pod"),
            connect(SESSION_NS, "ada", sub, "analysis"),
            Want::Allowed,
        ));
    }
    rows.extend([
        validate(
            "bob exec into his own pod",
            connect(SESSION_NS, "bob", "exec", "bobs"),
            Want::Allowed,
        ),
        validate(
            "a cluster admin exec into ada's pod",
            as_admin(connect(SESSION_NS, "root", "exec", "analysis")),
            Want::Allowed,
        ),
        validate(
            "exec into a pod homestead does not know (fail closed)",
            connect(SESSION_NS, "ada", "exec", "unknown"),
            Want::Denied("unknown_pod", "\"unknown\""),
        ),
        validate(
            "bob (granted edit in home-ada) exec into ada's notebook",
            connect(ADA_NS, "bob", "exec", "notebook"),
            Want::Denied("not_owner", "runs as ada"),
        ),
        validate(
            "a ServiceAccount of home-ada exec into ada's notebook",
            connect(
                ADA_NS,
                "system:serviceaccount:home-ada:default",
                "exec",
                "notebook",
            ),
            Want::Allowed,
        ),
        validate(
            "an unmanaged namespace is not looked at",
            connect("default", "bob", "exec", "anything"),
            Want::Allowed,
        ),
        mutate(
            "the mutating webhook does not look at CONNECT",
            connect(SESSION_NS, "bob", "exec", "analysis"),
            Want::Allowed,
        ),
    ]);
    // The label the pod index reads is homestead's: written by mutation, checked by
    // validation on pods (on templates only when present).
    let mutated = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    assert_eq!(mutated["metadata"]["labels"]["homestead.dev/user"], "ada");
    let mut forged = plain_pod();
    forged["metadata"]["labels"]["homestead.dev/user"] = json!("bob");
    let overwritten = fx.mutated(&request("CREATE", SESSION_NS, "ada", forged));
    assert_eq!(
        overwritten["metadata"]["labels"]["homestead.dev/user"],
        "ada"
    );
    let mut escaped = mutated.clone();
    escaped["metadata"]["labels"]["homestead.dev/user"] = json!("bob");
    rows.push(validate(
        "a pod labelled as someone else's",
        request("CREATE", SESSION_NS, "ada", escaped),
        Want::Denied("forged_run_as", "metadata.labels[\"homestead.dev/user\"]"),
    ));
    let mut unlabelled = mutated;
    unlabelled["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("homestead.dev/user");
    rows.push(validate(
        "a pod without the label",
        request("CREATE", SESSION_NS, "ada", unlabelled.clone()),
        Want::Denied("forged_run_as", "homestead.dev/user"),
    ));
    let mut old_template = fx.mutated(&request("CREATE", SESSION_NS, "ada", deployment()));
    old_template["spec"]["template"]["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("homestead.dev/user");
    rows.push(validate(
        "a template stamped before the label existed",
        request("CREATE", SESSION_NS, "ada", old_template),
        Want::Allowed,
    ));
    check(&fx, rows);
}

/// ada's mutated pod in `ns` with `volume` added.
fn with_volume(fx: &Fixture, ns: &str, volume: Value) -> Value {
    let mut pod = fx.mutated(&request("CREATE", ns, "ada", plain_pod()));
    pod["spec"]["volumes"].as_array_mut().unwrap().push(volume);
    request("CREATE", ns, "ada", pod)
}

#[test]
fn row_7_volume_sources_are_an_allow_list() {
    let fx = Fixture::with_config(
        Config::from_yaml("security: {allowedCsiDrivers: [secrets-store.csi.k8s.io]}").unwrap(),
    );
    let ns = SESSION_NS;
    let claim_template = |spec: Value| json!({"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": spec}}});
    let base =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    let with = |extra: Value| {
        let mut spec = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        claim_template(spec)
    };
    let mut rows = Vec::new();
    for (name, volume, want) in [
        (
            "inline nfs.csi.k8s.io onto bob's home",
            json!({"name": "home", "csi": {"driver": "nfs.csi.k8s.io", "volumeAttributes": {"server": "filer", "share": "/export/home/bob"}}}),
            Want::Denied("volume_source", "spec.volumes[4].csi.driver"),
        ),
        (
            "an allowed inline CSI driver",
            json!({"name": "secrets", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true}}),
            Want::Allowed,
        ),
        (
            "an ephemeral claim naming a volume",
            with(json!({"volumeName": "pv-homestead-private-bob"})),
            Want::Denied(
                "ephemeral_claim",
                "ephemeral.volumeClaimTemplate.spec.volumeName",
            ),
        ),
        (
            "an ephemeral claim cloning bob's claim",
            with(
                json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": "homestead-private-bob"}}),
            ),
            Want::Denied(
                "ephemeral_claim",
                "ephemeral.volumeClaimTemplate.spec.dataSource",
            ),
        ),
        (
            "an ephemeral claim cloning through dataSourceRef",
            with(
                json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "homestead-private-bob"}}),
            ),
            Want::Denied(
                "ephemeral_claim",
                "ephemeral.volumeClaimTemplate.spec.dataSourceRef",
            ),
        ),
        ("a new ephemeral claim", with(json!({})), Want::Allowed),
        (
            "an image volume",
            json!({"name": "img", "image": {"reference": "registry.example.org/data:1"}}),
            Want::Denied("volume_source", "spec.volumes[4].image"),
        ),
        (
            "gitRepo",
            json!({"name": "g", "gitRepo": {"repository": "https://x"}}),
            Want::Denied("volume_source", ".gitRepo"),
        ),
        (
            "inline nfs",
            json!({"name": "n", "nfs": {"server": "filer", "path": "/export/home/bob"}}),
            Want::Denied("volume_source", ".nfs"),
        ),
        (
            "a source this model does not know",
            json!({"name": "f", "futureVolume": {"path": "/"}}),
            Want::Denied("volume_source", ".futureVolume"),
        ),
        (
            "configMap",
            json!({"name": "c", "configMap": {"name": "cfg"}}),
            Want::Allowed,
        ),
        (
            "secret",
            json!({"name": "s", "secret": {"secretName": "s"}}),
            Want::Allowed,
        ),
        (
            "downwardAPI",
            json!({"name": "d", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}}),
            Want::Allowed,
        ),
        (
            "projected",
            json!({"name": "p", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}),
            Want::Allowed,
        ),
        (
            "emptyDir",
            json!({"name": "e", "emptyDir": {}}),
            Want::Allowed,
        ),
    ] {
        rows.push(validate(name, with_volume(&fx, ns, volume.clone()), want));
        // The same in a Deployment's template, in ada's own namespace.
        let mut d = fx.mutated(&request("CREATE", ADA_NS, "ada", deployment()));
        d["spec"]["template"]["spec"]["volumes"]
            .as_array_mut()
            .unwrap()
            .push(volume);
        rows.push(validate(
            format!("{name} (Deployment template)"),
            request("CREATE", ADA_NS, "ada", d),
            match want {
                Want::Denied(reason, _) => Want::Denied(reason, "spec.template.spec.volumes["),
                other => other,
            },
        ));
    }
    check(&fx, rows);
}

fn claim(name: &str, spec: Value, labels: Value) -> Value {
    let mut full =
        json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}});
    for (k, v) in spec.as_object().unwrap() {
        full[k] = v.clone();
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": name, "labels": labels}, "spec": full})
}

fn delete(ns: &str, username: &str, old: Value) -> Value {
    let mut r = request("DELETE", ns, username, Value::Null);
    r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": old["kind"]});
    r["request"]["name"] = old["metadata"]["name"].clone();
    r["request"]["oldObject"] = old;
    r
}

fn snapshot(claim: &str) -> Value {
    json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
           "metadata": {"name": "snap"},
           "spec": {"volumeSnapshotClassName": "csi", "source": {"persistentVolumeClaimName": claim}}})
}

#[test]
fn row_8_claims_cannot_reach_storage_homestead_made_for_someone_else() {
    let fx = Fixture::new();
    let ns = SESSION_NS;
    let clone = |field: &str, name: &str| {
        claim(
            "copy",
            json!({field: {"apiGroup": null, "kind": "PersistentVolumeClaim", "name": name}}),
            json!({}),
        )
    };
    let private_ada = claim(
        "homestead-private-ada",
        json!({"volumeName": "homestead-cm37235-2-private-ada"}),
        json!({"app.kubernetes.io/managed-by": "homestead", "homestead.dev/session": "cm37235-2"}),
    );
    let mut bound = claim("scratch", json!({}), json!({}));
    let pending = bound.clone();
    bound["spec"]["volumeName"] = json!("pvc-1234");
    let dataset = |name: &str| {
        claim(
            name,
            json!({}),
            json!({"homestead.dev/dataset": "imagenet"}),
        )
    };
    let rows = vec![
        validate(
            "bob clones ada's private claim",
            request(
                "CREATE",
                ns,
                "bob",
                clone("dataSource", "homestead-private-ada"),
            ),
            Want::Denied("foreign_claim", "spec.dataSource.name"),
        ),
        validate(
            "bob clones it through dataSourceRef",
            request(
                "CREATE",
                ns,
                "bob",
                clone("dataSourceRef", "homestead-private-ada"),
            ),
            Want::Denied("foreign_claim", "spec.dataSourceRef.name"),
        ),
        validate(
            "argo-workflow clones ada's private claim",
            request(
                "CREATE",
                ns,
                ARGO,
                clone("dataSource", "homestead-private-ada"),
            ),
            Want::Denied("foreign_claim", "homestead-private-ada"),
        ),
        validate(
            "ada clones her own",
            request(
                "CREATE",
                ns,
                "ada",
                clone("dataSource", "homestead-private-ada"),
            ),
            Want::Allowed,
        ),
        validate(
            "bob clones the session's shared data",
            request("CREATE", ns, "bob", clone("dataSource", "homestead-data")),
            Want::Allowed,
        ),
        validate(
            "a claim copying from another namespace",
            request(
                "CREATE",
                ns,
                "bob",
                claim(
                    "copy",
                    json!({"dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "homestead-private", "namespace": "home-ada"}}),
                    json!({}),
                ),
            ),
            Want::Denied("foreign_claim", "spec.dataSourceRef.namespace"),
        ),
        validate(
            "bob binds a claim to ada's volume",
            request(
                "CREATE",
                ns,
                "bob",
                claim(
                    "mine",
                    json!({"volumeName": "homestead-cm37235-2-private-ada"}),
                    json!({}),
                ),
            ),
            Want::Denied("claim_volume", "spec.volumeName"),
        ),
        validate(
            "bob sets volumeName on his pending claim",
            update(ns, "bob", bound.clone(), pending.clone()),
            Want::Denied("claim_volume", "spec.volumeName"),
        ),
        validate(
            "the volume binder binds a pending claim",
            update(
                ns,
                "system:serviceaccount:kube-system:persistent-volume-binder",
                bound.clone(),
                pending.clone(),
            ),
            Want::Allowed,
        ),
        validate(
            "bob resizes a bound claim (volumeName unchanged)",
            update(ns, "bob", bound.clone(), bound.clone()),
            Want::Allowed,
        ),
        validate(
            "bob makes a dataset (mounted into ada's next pod)",
            request("CREATE", ns, "bob", dataset("mine")),
            Want::Denied("dataset_label", "homestead.dev/dataset"),
        ),
        validate(
            "bob labels his claim a dataset",
            update(ns, "bob", dataset("scratch"), pending.clone()),
            Want::Denied("dataset_label", "only homestead or a cluster admin"),
        ),
        validate(
            "bob labels his own private claim a dataset (locks everyone out)",
            update(
                ns,
                "bob",
                claim(
                    "homestead-private-bob",
                    json!({}),
                    json!({"homestead.dev/dataset": "x"}),
                ),
                claim("homestead-private-bob", json!({}), json!({})),
            ),
            Want::Denied("dataset_label", "homestead.dev/dataset"),
        ),
        validate(
            "a cluster admin makes a dataset",
            as_admin(request("CREATE", ns, "root", dataset("imagenet-2"))),
            Want::Allowed,
        ),
        validate(
            "a cluster admin labels homestead's claim a dataset",
            as_admin(update(
                ns,
                "root",
                claim(
                    "homestead-data",
                    json!({}),
                    json!({"homestead.dev/dataset": "x"}),
                ),
                claim("homestead-data", json!({}), json!({})),
            )),
            Want::Denied("dataset_label", "never a dataset"),
        ),
        validate(
            "bob takes ada's private claim name first",
            request(
                "CREATE",
                ns,
                "bob",
                claim("homestead-private-ada", json!({}), json!({})),
            ),
            Want::Denied("managed_claim", "metadata.name"),
        ),
        validate(
            "homestead makes ada's private claim",
            request("CREATE", ns, HOMESTEAD, private_ada.clone()),
            Want::Allowed,
        ),
        validate(
            "bob deletes ada's private claim",
            delete(ns, "bob", private_ada.clone()),
            Want::Denied("managed_claim", "only homestead deletes it"),
        ),
        validate(
            "ada deletes her own private claim",
            delete(ns, "ada", private_ada.clone()),
            Want::Denied("managed_claim", "only homestead deletes it"),
        ),
        validate(
            "homestead deletes it",
            delete(ns, HOMESTEAD, private_ada.clone()),
            Want::Allowed,
        ),
        validate(
            "Kubernetes deletes it with its namespace",
            delete(
                ns,
                "system:serviceaccount:kube-system:namespace-controller",
                private_ada.clone(),
            ),
            Want::Allowed,
        ),
        validate(
            "bob deletes his own claim",
            delete(ns, "bob", pending.clone()),
            Want::Allowed,
        ),
        validate(
            "bob snapshots ada's private claim",
            request("CREATE", ns, "bob", snapshot("homestead-private-ada")),
            Want::Denied("foreign_claim", "spec.source.persistentVolumeClaimName"),
        ),
        validate(
            "ada snapshots her private claim where every member could restore it",
            request("CREATE", ns, "ada", snapshot("homestead-private-ada")),
            Want::Denied("foreign_claim", "every member could restore"),
        ),
        validate(
            "a cluster admin snapshots it",
            as_admin(request(
                "CREATE",
                ns,
                "root",
                snapshot("homestead-private-ada"),
            )),
            Want::Allowed,
        ),
        validate(
            "ada snapshots her private claim in her own namespace",
            request("CREATE", ADA_NS, "ada", snapshot("homestead-private")),
            Want::Allowed,
        ),
        validate(
            "bob snapshots the shared data",
            request("CREATE", ns, "bob", snapshot("homestead-data")),
            Want::Allowed,
        ),
        validate(
            "claims outside managed namespaces are not looked at",
            request(
                "CREATE",
                "default",
                "bob",
                clone("dataSource", "homestead-private-ada"),
            ),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

#[test]
fn row_10_groups_are_exactly_the_identitys() {
    let fx = Fixture::new();
    for ns in [SESSION_NS, ADA_NS] {
        let mutated = fx.mutated(&request("CREATE", ns, "ada", plain_pod()));
        assert_eq!(
            mutated["spec"]["securityContext"]["supplementalGroupsPolicy"],
            "Strict"
        );
        // Not required by validation: API servers without the feature drop the field.
        let mut dropped = mutated;
        dropped["spec"]["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("supplementalGroupsPolicy");
        let reviewed = fx.review(Webhook::Validate, &request("CREATE", ns, "ada", dropped));
        assert_eq!(reviewed.summary.verdict, Verdict::Allowed);
    }
    let mut merge = plain_pod();
    merge["spec"]["securityContext"] = json!({"supplementalGroupsPolicy": "Merge"});
    let mutated = fx.mutated(&request("CREATE", SESSION_NS, "ada", merge));
    assert_eq!(
        mutated["spec"]["securityContext"]["supplementalGroupsPolicy"],
        "Strict"
    );
}

fn namespace_object(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn cluster_request(op: &str, username: &str, object: Value) -> Value {
    let mut r = request(op, "", username, object.clone());
    r["request"]["name"] = object["metadata"]["name"].clone();
    r["request"].as_object_mut().unwrap().remove("namespace");
    r
}

#[test]
fn row_11_only_homestead_writes_its_labels() {
    let fx = Fixture::new();
    let managed = json!({"homestead.dev/managed": "true", "homestead.dev/user": "eve",
                         "app.kubernetes.io/managed-by": "homestead"});
    let future = namespace_object("home-eve", managed.clone());
    let plain = namespace_object("home-eve", json!({"team": "x"}));
    let rolebinding = |labels: Value| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "backdoor", "labels": labels},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
               "subjects": [{"kind": "User", "name": "mallory"}]})
    };
    let ours =
        json!({"app.kubernetes.io/managed-by": "homestead", "homestead.dev/session": "cm37235-2"});
    let rows = vec![
        validate(
            "a namespace created with homestead's labels",
            cluster_request("CREATE", "mallory", future.clone()),
            Want::Denied(
                "homestead_label",
                "metadata.labels[\"homestead.dev/managed\"]",
            ),
        ),
        validate(
            "a namespace created managed-by homestead only",
            cluster_request(
                "CREATE",
                "mallory",
                namespace_object(
                    "home-eve",
                    json!({"app.kubernetes.io/managed-by": "homestead", "homestead.dev/user": "eve"}),
                ),
            ),
            Want::Denied("homestead_label", "homestead.dev/user"),
        ),
        validate(
            "an existing namespace labelled managed",
            {
                let mut r = cluster_request("UPDATE", "mallory", future.clone());
                r["request"]["oldObject"] = plain.clone();
                r
            },
            Want::Denied("homestead_label", "mallory may not"),
        ),
        validate(
            "a cluster admin labels a namespace managed",
            as_admin(cluster_request("CREATE", "root", future.clone())),
            Want::Denied("homestead_label", "homestead.dev/managed"),
        ),
        validate(
            "homestead creates its namespace",
            cluster_request("CREATE", HOMESTEAD, future.clone()),
            Want::Allowed,
        ),
        validate(
            "a namespace with other labels",
            cluster_request("CREATE", "mallory", plain.clone()),
            Want::Allowed,
        ),
        validate(
            "a RoleBinding in a managed namespace labelled homestead's",
            request("CREATE", SESSION_NS, "bob", rolebinding(ours.clone())),
            Want::Denied("homestead_label", "app.kubernetes.io/managed-by"),
        ),
        validate(
            "homestead's own RoleBinding",
            request("CREATE", SESSION_NS, HOMESTEAD, rolebinding(ours.clone())),
            Want::Allowed,
        ),
        validate(
            "bob strips homestead's labels from its ConfigMap",
            update(
                SESSION_NS,
                "bob",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sessionspaces", "labels": {}}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sessionspaces", "labels": ours}}),
            ),
            Want::Denied("homestead_label", "homestead.dev/session"),
        ),
        validate(
            "a RoleBinding without homestead's labels",
            request(
                "CREATE",
                SESSION_NS,
                "bob",
                rolebinding(json!({"app": "x"})),
            ),
            Want::Allowed,
        ),
        validate(
            "something managed by another tool",
            request(
                "CREATE",
                SESSION_NS,
                "bob",
                rolebinding(json!({"app.kubernetes.io/managed-by": "Helm"})),
            ),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

#[test]
fn row_12_users_and_sessions_cannot_break_others() {
    let fx =
        Fixture::with_config(Config::from_yaml("security: {sessionDataRoots: [/dls]}").unwrap());
    let admin = "admin";
    let user = |name: &str, spec: Value| json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "User", "metadata": {"name": name}, "spec": spec});
    let session = |name: &str, spec: Value| {
        let mut full = json!({
            "proposalCode": "cm", "proposalNumber": 40000, "visit": 1, "instrument": "i03",
            "dataDirectory": "/dls/i03/data/2024/cm40000-1", "gid": 160000, "members": ["ada"]
        });
        for (k, v) in spec.as_object().unwrap() {
            full[k] = v.clone();
        }
        json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "Session", "metadata": {"name": name}, "spec": full})
    };
    let create = |object: Value| cluster_request("CREATE", admin, object);
    let mut rows = vec![
        validate(
            "a second User with ada's uid",
            create(user(
                "eve",
                json!({"username": "eve", "uid": 1001, "gid": 1001}),
            )),
            Want::Denied("uid_taken", "spec.uid"),
        ),
        validate(
            "ada's own User keeps her uid",
            cluster_request(
                "UPDATE",
                admin,
                user("ada", json!({"username": "ada", "uid": 1001, "gid": 1001})),
            ),
            Want::Allowed,
        ),
        validate(
            "a new User",
            create(user(
                "eve",
                json!({"username": "eve", "uid": 1005, "gid": 1005}),
            )),
            Want::Allowed,
        ),
        validate(
            "a User whose namespace is another's session namespace",
            create(user(
                "eve",
                json!({"username": "eve", "uid": 1005, "gid": 1005, "namespace": SESSION_NS}),
            )),
            Want::Denied("namespace_taken", "spec.namespace"),
        ),
        validate(
            "a User whose namespace is bob's",
            create(user(
                "eve",
                json!({"username": "eve", "uid": 1005, "gid": 1005, "namespace": "home-bob"}),
            )),
            Want::Denied("namespace_taken", "User/bob"),
        ),
        validate(
            "two Sessions rendering one namespace",
            create(session(
                "cm37235-2-again",
                json!({"proposalNumber": 37235, "visit": 2}),
            )),
            Want::Denied("namespace_taken", "Session/cm37235-2"),
        ),
        validate(
            "the Session itself is not a clash",
            cluster_request(
                "UPDATE",
                admin,
                session("cm37235-2", json!({"proposalNumber": 37235, "visit": 2})),
            ),
            Want::Allowed,
        ),
        validate(
            "a Session whose data directory is /",
            create(session("s1", json!({"dataDirectory": "/"}))),
            Want::Denied("data_directory", "spec.dataDirectory"),
        ),
        validate(
            "a Session whose data directory is outside the data roots",
            create(session("s1", json!({"dataDirectory": "/home/bob"}))),
            Want::Denied("data_directory", "security.sessionDataRoots"),
        ),
        validate(
            "a Session under a data root",
            create(session("s1", json!({}))),
            Want::Allowed,
        ),
    ];
    for ns in ["kube-system", "default", "homestead", "kube-public"] {
        rows.push(validate(
            format!("a User whose namespace is {ns}"),
            create(user(
                "eve",
                json!({"username": "eve", "uid": 1005, "gid": 1005, "namespace": ns}),
            )),
            Want::Denied("namespace_taken", "system namespace"),
        ));
    }
    check(&fx, rows);
}

/// A pod with `n` tiny containers and `v` volumes.
fn wide_pod(n: usize, v: usize) -> Value {
    let containers: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("c{i}"), "image": "busybox"}))
        .collect();
    let volumes: Vec<Value> = (0..v)
        .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide"},
           "spec": {"containers": containers, "volumes": volumes}})
}

#[test]
fn row_13_work_per_request_is_bounded() {
    let fx = Fixture::new();
    let mut rows = Vec::new();
    rows.extend(both(
        "65 containers",
        request("CREATE", SESSION_NS, "ada", wide_pod(65, 0)),
        Want::Denied("too_large", "security.maxContainers"),
    ));
    rows.extend(both(
        "129 volumes",
        request("CREATE", SESSION_NS, "ada", wide_pod(1, 129)),
        Want::Denied("too_large", "spec.volumes"),
    ));
    rows.push(mutate(
        "64 containers and 128 volumes",
        request("CREATE", SESSION_NS, "ada", wide_pod(64, 128)),
        Want::Patched,
    ));
    let mut d = deployment();
    d["spec"]["template"]["spec"] = wide_pod(65, 0)["spec"].clone();
    rows.extend(both(
        "a Deployment of 65 containers",
        request("CREATE", SESSION_NS, "ada", d),
        Want::Denied("too_large", "spec.template.spec.containers"),
    ));
    let mut mixed = wide_pod(40, 0);
    mixed["spec"]["initContainers"] = wide_pod(25, 0)["spec"]["containers"].clone();
    rows.push(mutate(
        "containers and initContainers count together",
        request("CREATE", SESSION_NS, "ada", mixed),
        Want::Denied("too_large", "65 containers"),
    ));
    check(&fx, rows);

    let small = Fixture::with_config(
        Config::from_yaml("security: {maxContainers: 2, maxVolumes: 1}").unwrap(),
    );
    check(
        &small,
        [
            mutate(
                "a configured maximum",
                request("CREATE", SESSION_NS, "ada", wide_pod(3, 0)),
                Want::Denied("too_large", "limit of 2"),
            ),
            mutate(
                "1000 containers: refused by the configured limit",
                request("CREATE", SESSION_NS, "ada", wide_pod(1000, 0)),
                Want::Denied("too_large", "1000 containers"),
            ),
            mutate(
                "the API server's 3 MB of tiny containers: refused unread",
                request("CREATE", SESSION_NS, "ada", wide_pod(40_000, 0)),
                Want::Denied("invalid_object", "more than 1000 entries"),
            ),
        ],
    );
}

#[test]
fn row_16_smaller_things() {
    let fx = Fixture::new();
    let mut mounted = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    mounted["spec"]["containers"][0]["volumeMounts"][0]["subPathExpr"] = json!("runs/v1..v2");
    let mut null_template = deployment();
    null_template["spec"]["template"] = Value::Null;
    let rows = vec![
        validate(
            "'..' inside a subPathExpr element is not a parent directory",
            request("CREATE", SESSION_NS, "ada", mounted),
            Want::Allowed,
        ),
        mutate(
            "a Deployment with a null template gets no patch that cannot apply",
            request("CREATE", SESSION_NS, "ada", null_template),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
    // A denial whose message has "; " in it stays one reason.
    let forged = request("CREATE", SESSION_NS, "ada", with_stamp(plain_pod(), "bob"));
    let reviewed = fx.review(Webhook::Validate, &forged);
    let Verdict::Denied {
        reasons, message, ..
    } = &reviewed.summary.verdict
    else {
        panic!("not denied");
    };
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(&reasons.join("; "), message);
}
