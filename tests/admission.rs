//! The admission rules, one table row per escape (issue 2 item 7), through the public
//! `review` entry point exactly as the server and CLI call it.

mod support;

use homestead_core::config::{AfterGrace, Config, SessionLifecycleConfig, UnattributedPods};
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Allowed without a patch.
    Allowed,
    /// Allowed with a patch.
    Patched,
    /// Denied with this reason code, the message naming this field.
    Denied(&'static str, &'static str),
}

struct Row {
    name: &'static str,
    webhook: Webhook,
    request: Value,
    want: Want,
}

fn check(fx: &Fixture, rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in rows {
        let reviewed = fx.review(row.webhook, &row.request);
        let response = response(&reviewed);
        assert_eq!(
            response["uid"], row.request["request"]["uid"],
            "{}: uid must be echoed",
            row.name
        );
        let got = match &reviewed.summary.verdict {
            Verdict::Allowed => Want::Allowed,
            Verdict::Patched { .. } => Want::Patched,
            Verdict::Denied {
                reason, message, ..
            } => {
                assert_eq!(response["allowed"], false);
                assert_eq!(response["status"]["code"], 403);
                assert_eq!(response["status"]["reason"], "Forbidden");
                assert_eq!(response["status"]["message"], message.as_str());
                if let Want::Denied(want_reason, field) = row.want
                    && *reason == want_reason
                {
                    if !message.contains(field) {
                        failures.push(format!(
                            "{}: message {message:?} does not name {field:?}",
                            row.name
                        ));
                    }
                    row.want
                } else {
                    failures.push(format!(
                        "{}: denied {reason} ({message}), wanted {:?}",
                        row.name, row.want
                    ));
                    continue;
                }
            }
        };
        if got != row.want {
            failures.push(format!("{}: got {got:?}, wanted {:?}", row.name, row.want));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// ada's plain pod in `ns`, mutated, then changed by `escape`: the validating webhook's
/// view of an object that slipped something past (or around) mutation.
fn escaped(fx: &Fixture, ns: &str, escape: impl FnOnce(&mut Value)) -> Value {
    let mut pod = fx.mutated(&request("CREATE", ns, "ada", plain_pod()));
    escape(&mut pod);
    request("CREATE", ns, "ada", pod)
}

fn validate_row(name: &'static str, request: Value, want: Want) -> Row {
    Row {
        name,
        webhook: Webhook::Validate,
        request,
        want,
    }
}

#[test]
fn escapes_are_denied_naming_the_field() {
    let fx = Fixture::new();
    let ns = SESSION_NS;
    let c0 = "/spec/containers/0/securityContext";
    let set = |pointer: &'static str, value: Value| {
        move |pod: &mut Value| *pod.pointer_mut(pointer).unwrap() = value
    };
    let ephemeral = |sc: Value| {
        move |pod: &mut Value| {
            pod["spec"]["ephemeralContainers"] =
                json!([{"name": "debug", "image": "busybox", "securityContext": sc}]);
        }
    };
    let rows = vec![
        validate_row(
            "the mutated pod itself passes",
            escaped(&fx, ns, |_| {}),
            Want::Allowed,
        ),
        validate_row(
            "root at pod level",
            escaped(&fx, ns, set("/spec/securityContext/runAsUser", json!(0))),
            Want::Denied("run_as_root", "spec.securityContext.runAsUser"),
        ),
        validate_row(
            "root at container level",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["runAsUser"] = json!(0);
            }),
            Want::Denied(
                "run_as_root",
                "spec.containers[0].securityContext.runAsUser",
            ),
        ),
        validate_row(
            "root in an initContainer",
            escaped(&fx, ns, |pod| {
                pod["spec"]["initContainers"][0]["securityContext"]["runAsUser"] = json!(0);
            }),
            Want::Denied(
                "run_as_root",
                "spec.initContainers[0].securityContext.runAsUser",
            ),
        ),
        validate_row(
            "root in an ephemeral container",
            escaped(&fx, ns, ephemeral(json!({"runAsUser": 0}))),
            Want::Denied(
                "run_as_root",
                "spec.ephemeralContainers[0].securityContext.runAsUser",
            ),
        ),
        validate_row(
            "no runAsUser anywhere: the image may be root",
            escaped(&fx, ns, |pod| {
                pod["spec"]["securityContext"]
                    .as_object_mut()
                    .unwrap()
                    .remove("runAsUser");
            }),
            Want::Denied(
                "run_as_root",
                "spec.containers[0].securityContext.runAsUser",
            ),
        ),
        validate_row(
            "runAsNonRoot false on a container",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["runAsNonRoot"] = json!(false);
            }),
            Want::Denied(
                "run_as_root",
                "spec.containers[0].securityContext.runAsNonRoot",
            ),
        ),
        validate_row(
            "another member's uid",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["runAsUser"] = json!(1002);
            }),
            Want::Denied("wrong_uid", "spec.containers[0].securityContext.runAsUser"),
        ),
        validate_row(
            "a group that is not ada's",
            escaped(&fx, ns, set("/spec/securityContext/fsGroup", json!(0))),
            Want::Denied("groups", "spec.securityContext.fsGroup"),
        ),
        validate_row(
            "a supplemental group that is not ada's",
            escaped(&fx, ns, |pod| {
                pod["spec"]["securityContext"]["supplementalGroups"] = json!([1001, 4]);
            }),
            Want::Denied("groups", "spec.securityContext.supplementalGroups[1]"),
        ),
        validate_row(
            "privileged",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["privileged"] = json!(true);
            }),
            Want::Denied(
                "privileged",
                "spec.containers[0].securityContext.privileged",
            ),
        ),
        validate_row(
            "allowPrivilegeEscalation",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["allowPrivilegeEscalation"] = json!(true);
            }),
            Want::Denied(
                "privilege_escalation",
                "spec.containers[0].securityContext.allowPrivilegeEscalation",
            ),
        ),
        validate_row(
            "an added capability",
            escaped(&fx, ns, |pod| {
                pod.pointer_mut(c0).unwrap()["capabilities"] = json!({"add": ["SYS_ADMIN"]});
            }),
            Want::Denied(
                "capability",
                "spec.containers[0].securityContext.capabilities.add[0]",
            ),
        ),
        validate_row(
            "hostPath",
            escaped(&fx, ns, |pod| {
                pod["spec"]["volumes"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "etc", "hostPath": {"path": "/etc"}}));
            }),
            Want::Denied("host_path", "hostPath.path"),
        ),
        validate_row(
            "hostPID",
            escaped(&fx, ns, |pod| pod["spec"]["hostPID"] = json!(true)),
            Want::Denied("host_namespace", "spec.hostPID"),
        ),
        validate_row(
            "hostNetwork",
            escaped(&fx, ns, |pod| pod["spec"]["hostNetwork"] = json!(true)),
            Want::Denied("host_namespace", "spec.hostNetwork"),
        ),
        validate_row(
            "an inline nfs volume",
            escaped(&fx, ns, |pod| {
                pod["spec"]["volumes"].as_array_mut().unwrap().push(
                    json!({"name": "raw", "nfs": {"server": "filer", "path": "/export/home/bob"}}),
                );
            }),
            Want::Denied("volume_source", ".nfs"),
        ),
        validate_row(
            "another member's private claim",
            escaped(&fx, ns, |pod| {
                pod["spec"]["volumes"].as_array_mut().unwrap().push(
                    json!({"name": "theirs", "persistentVolumeClaim": {"claimName": "homestead-private-bob"}}),
                );
            }),
            Want::Denied("foreign_claim", "persistentVolumeClaim.claimName"),
        ),
        validate_row(
            "'..' in subPath",
            escaped(&fx, ns, |pod| {
                pod["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = json!("../bob");
            }),
            Want::Denied("sub_path", "spec.containers[0].volumeMounts[0].subPath"),
        ),
        validate_row(
            "'..' in subPathExpr",
            escaped(&fx, ns, |pod| {
                pod["spec"]["containers"][0]["volumeMounts"][0]["subPathExpr"] =
                    json!("$(X)/../bob");
            }),
            Want::Denied("sub_path", "spec.containers[0].volumeMounts[0].subPathExpr"),
        ),
    ];
    check(&fx, rows);
}

#[test]
fn ephemeral_containers_subresource_is_validated() {
    let fx = Fixture::new();
    let pod = fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    let with_debug = |sc: Value| {
        let mut new = pod.clone();
        new["spec"]["ephemeralContainers"] =
            json!([{"name": "debug", "image": "busybox", "securityContext": sc}]);
        new
    };
    let sub = |username: &str, new: Value| {
        let mut r = update(SESSION_NS, username, new, pod.clone());
        r["request"]["subResource"] = json!("ephemeralcontainers");
        r
    };
    let rows = vec![
        validate_row(
            "root debug container",
            sub("ada", with_debug(json!({"runAsUser": 0}))),
            Want::Denied(
                "run_as_root",
                "spec.ephemeralContainers[0].securityContext.runAsUser",
            ),
        ),
        validate_row(
            "privileged debug container",
            sub("ada", with_debug(json!({"privileged": true}))),
            Want::Denied(
                "privileged",
                "spec.ephemeralContainers[0].securityContext.privileged",
            ),
        ),
        validate_row(
            "a debug container as the pod's identity",
            sub(
                "ada",
                with_debug(json!({"allowPrivilegeEscalation": false})),
            ),
            Want::Allowed,
        ),
        validate_row(
            "a debug container in someone else's pod",
            sub(
                "bob",
                with_debug(json!({"allowPrivilegeEscalation": false})),
            ),
            Want::Denied("not_owner", "spec.ephemeralContainers"),
        ),
        Row {
            name: "a safe debug container needs no patch",
            webhook: Webhook::Mutate,
            request: sub(
                "ada",
                with_debug(json!({"allowPrivilegeEscalation": false})),
            ),
            want: Want::Allowed,
        },
    ];
    check(&fx, rows);
}

/// `pod` as the ReplicaSet controller makes it: controlled by a ReplicaSet.
fn owned_by_replica_set(mut pod: Value) -> Value {
    pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "1", "controller": true}]);
    pod
}

fn with_run_as(mut object: Value, run_as: &str) -> Value {
    let meta = if object["kind"] == "Pod" {
        &mut object["metadata"]
    } else {
        &mut object["spec"]["template"]["metadata"]
    };
    meta["annotations"] = json!({"homestead.dev/run-as": run_as});
    object
}

#[test]
fn identity_rules() {
    let fx = Fixture::new();
    let ns = SESSION_NS;
    let argo = "system:serviceaccount:argo:argo-server";
    let rs = "system:serviceaccount:kube-system:replicaset-controller";
    let mutate = |name, request, want| Row {
        name,
        webhook: Webhook::Mutate,
        request,
        want,
    };
    let mut privileged = plain_pod();
    privileged["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let rows = vec![
        mutate(
            "a member's plain pod is patched",
            request("CREATE", ns, "ada", plain_pod()),
            Want::Patched,
        ),
        mutate(
            "a person forging run-as",
            request("CREATE", ns, "ada", with_run_as(plain_pod(), "bob")),
            Want::Denied("forged_run_as", "homestead.dev/run-as"),
        ),
        validate_row(
            "a person forging run-as (validation)",
            request("CREATE", ns, "ada", with_run_as(plain_pod(), "bob")),
            Want::Denied("forged_run_as", "homestead.dev/run-as"),
        ),
        mutate(
            "an untrusted service account with a run-as",
            request("CREATE", ns, argo, with_run_as(plain_pod(), "ada")),
            Want::Denied("forged_run_as", "homestead.dev/run-as"),
        ),
        mutate(
            "an untrusted service account without a run-as",
            request("CREATE", ns, argo, plain_pod()),
            Want::Denied("unattributed", "homestead.dev/run-as"),
        ),
        mutate(
            "a trusted controller with a run-as",
            request(
                "CREATE",
                ns,
                rs,
                owned_by_replica_set(with_run_as(plain_pod(), "bob")),
            ),
            Want::Patched,
        ),
        mutate(
            "a trusted controller without a run-as",
            request("CREATE", ns, rs, plain_pod()),
            Want::Denied("unattributed", "homestead.dev/run-as"),
        ),
        mutate(
            "a trusted controller naming a non-member",
            request(
                "CREATE",
                ns,
                rs,
                owned_by_replica_set(with_run_as(plain_pod(), "dave")),
            ),
            Want::Denied("not_member", "dave"),
        ),
        mutate(
            "a non-member",
            request("CREATE", ns, "dave", plain_pod()),
            Want::Denied("not_member", "dave"),
        ),
        mutate(
            "a disabled user",
            request("CREATE", ns, "carol", plain_pod()),
            Want::Denied("disabled_user", "carol"),
        ),
        mutate(
            "an unknown user",
            request("CREATE", ns, "zed", plain_pod()),
            Want::Denied("unknown_user", "zed"),
        ),
        mutate(
            "an unknown namespace is untouched",
            request("CREATE", "default", "zed", privileged.clone()),
            Want::Allowed,
        ),
        validate_row(
            "an unknown namespace is not validated",
            request("CREATE", "default", "zed", privileged),
            Want::Allowed,
        ),
        mutate(
            "anyone's pod in a user namespace runs as its owner",
            request("CREATE", "home-bob", argo, plain_pod()),
            Want::Patched,
        ),
        mutate(
            "a disabled owner's namespace",
            request("CREATE", "home-carol", "carol", plain_pod()),
            Want::Denied("disabled_user", "carol"),
        ),
        mutate(
            "a person's Deployment with someone else's run-as is taken over",
            request("CREATE", ns, "ada", with_run_as(deployment(), "bob")),
            Want::Patched,
        ),
        mutate(
            "an untrusted service account creating a Deployment with a run-as",
            request("CREATE", ns, argo, with_run_as(deployment(), "ada")),
            Want::Denied("forged_run_as", "homestead.dev/run-as"),
        ),
        mutate(
            "an untrusted service account changing a Deployment's run-as",
            update(
                ns,
                argo,
                with_run_as(deployment(), "bob"),
                with_run_as(deployment(), "ada"),
            ),
            Want::Denied("not_owner", "runs as ada"),
        ),
        mutate(
            "an untrusted service account leaving a Deployment's template as it was",
            update(
                ns,
                argo,
                with_run_as(deployment(), "ada"),
                with_run_as(deployment(), "ada"),
            ),
            Want::Allowed,
        ),
        mutate(
            "status updates are not looked at",
            {
                let mut r = update(ns, "zed", plain_pod(), plain_pod());
                r["request"]["subResource"] = json!("status");
                r
            },
            Want::Allowed,
        ),
        mutate(
            "deletes are not looked at",
            request("DELETE", ns, "zed", plain_pod()),
            Want::Allowed,
        ),
        mutate(
            "unknown kinds are untouched",
            request(
                "CREATE",
                ns,
                "zed",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            ),
            Want::Allowed,
        ),
        mutate(
            "an unreadable pod is refused, naming the problem",
            request(
                "CREATE",
                ns,
                "ada",
                json!({"kind": "Pod", "spec": {"containers": "nope"}}),
            ),
            Want::Denied("invalid_object", "object"),
        ),
    ];
    check(&fx, rows);
}

#[test]
fn person_workloads_are_attributed_to_the_person() {
    let fx = Fixture::new();
    let r = request(
        "CREATE",
        SESSION_NS,
        "ada",
        with_run_as(deployment(), "bob"),
    );
    let mutated = fx.mutated(&r);
    assert_eq!(
        mutated["spec"]["template"]["metadata"]["annotations"]["homestead.dev/run-as"],
        "ada"
    );
    assert_eq!(
        mutated["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        1001
    );
    let reviewed = fx.review(
        Webhook::Validate,
        &request("CREATE", SESSION_NS, "ada", mutated.clone()),
    );
    assert_eq!(reviewed.summary.verdict, Verdict::Allowed);
    // The deployment controller then creates a ReplicaSet from it, and the ReplicaSet
    // controller a pod from that: both attributed by the template's run-as.
    let mut rs = mutated.clone();
    rs["kind"] = json!("ReplicaSet");
    rs["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true}]);
    let reviewed = fx.review(
        Webhook::Mutate,
        &request(
            "CREATE",
            SESSION_NS,
            "system:serviceaccount:kube-system:deployment-controller",
            rs,
        ),
    );
    assert_eq!(reviewed.summary.identity.as_deref(), Some("ada"));
    assert_eq!(
        reviewed.summary.verdict,
        Verdict::Allowed,
        "already mutated"
    );
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
    pod["metadata"] = mutated["spec"]["template"]["metadata"].clone();
    pod["spec"] = mutated["spec"]["template"]["spec"].clone();
    let pod = owned_by_replica_set(pod);
    let r = request(
        "CREATE",
        SESSION_NS,
        "system:serviceaccount:kube-system:replicaset-controller",
        pod,
    );
    let reviewed = fx.review(Webhook::Mutate, &r);
    assert_eq!(
        reviewed.summary.verdict,
        Verdict::Allowed,
        "a pod from a mutated template needs no patch"
    );
    assert_eq!(
        fx.review(Webhook::Validate, &r).summary.verdict,
        Verdict::Allowed
    );
}

#[test]
fn unattributed_pods_can_run_as_the_default_member() {
    let config = Config {
        unattributed_pods: UnattributedPods::DefaultMember,
        ..Config::default()
    };
    let fx = Fixture::with_config(config);
    let argo = "system:serviceaccount:argo:argo-server";
    let r = request("CREATE", SESSION_NS, argo, plain_pod());
    let reviewed = fx.review(Webhook::Mutate, &r);
    assert_eq!(reviewed.summary.identity.as_deref(), Some("ada"));
    let mutated = fx.mutated(&r);
    // The annotation homestead wrote is not a forgery on reinvocation or validation.
    let again = request("CREATE", SESSION_NS, argo, mutated);
    assert_eq!(
        fx.review(Webhook::Mutate, &again).summary.verdict,
        Verdict::Allowed
    );
    assert_eq!(
        fx.review(Webhook::Validate, &again).summary.verdict,
        Verdict::Allowed
    );
    // But naming anyone else still is.
    let forged = request("CREATE", SESSION_NS, argo, with_run_as(plain_pod(), "bob"));
    assert!(matches!(
        fx.review(Webhook::Mutate, &forged).summary.verdict,
        Verdict::Denied {
            reason: "forged_run_as",
            ..
        }
    ));
}

/// The fixture's directory with the session's `spec` extended by `spec` (YAML flow
/// fields) and its status set to `status`.
fn session_directory(spec: &str, status: &str) -> String {
    DIRECTORY.replace(
        "  members: [ada, bob, carol]\n",
        &format!("  members: [ada, bob, carol]\n  {spec}\nstatus: {status}\n"),
    )
}

#[test]
fn sessions_outside_their_window_refuse_new_pods_only() {
    let after = |after_grace| Config {
        sessions: SessionLifecycleConfig {
            after_grace,
            ..SessionLifecycleConfig::default()
        },
        ..Config::default()
    };
    let existing = |fx: &Fixture| fx.mutated(&request("CREATE", SESSION_NS, "ada", plain_pod()));
    let ended = session_directory("endDate: \"2024-05-24 9:00:00.0\"", "{lifecycle: Ended}");
    let by_source = session_directory("ended: true", "{}");
    let scheduled = session_directory(
        "startDate: \"2034-05-24 9:00:00.0\"",
        "{lifecycle: Scheduled}",
    );
    let active = session_directory("endDate: \"2034-05-24 9:00:00.0\"", "{lifecycle: Active}");
    let open = Fixture::new();
    let running = existing(&open);
    let mut relabelled = running.clone();
    relabelled["metadata"]["labels"]["tier"] = json!("gpu");
    for (name, config, directory, want) in [
        (
            "ended, refusePods",
            after(AfterGrace::RefusePods),
            &ended,
            Some("session_ended"),
        ),
        (
            "ended, deleteNamespace",
            after(AfterGrace::DeleteNamespace),
            &ended,
            Some("session_ended"),
        ),
        (
            "ended by its source",
            after(AfterGrace::RefusePods),
            &by_source,
            Some("session_ended"),
        ),
        ("ended, readOnly", after(AfterGrace::ReadOnly), &ended, None),
        (
            "scheduled",
            after(AfterGrace::ReadOnly),
            &scheduled,
            Some("session_scheduled"),
        ),
        ("active", after(AfterGrace::RefusePods), &active, None),
    ] {
        let fx = Fixture::with_directory(config, directory);
        let create = request("CREATE", SESSION_NS, "bob", plain_pod());
        // Validation sees what mutation made of an allowed pod.
        let validated = match want {
            None => request("CREATE", SESSION_NS, "bob", fx.mutated(&create)),
            Some(_) => create.clone(),
        };
        for (webhook, create) in [(Webhook::Mutate, &create), (Webhook::Validate, &validated)] {
            match (&fx.review(webhook, create).summary.verdict, want) {
                (
                    Verdict::Denied {
                        reason, message, ..
                    },
                    Some(want),
                ) => {
                    assert_eq!(*reason, want, "{name}");
                    assert!(message.contains("session cm37235-2"), "{name}: {message}");
                    assert!(
                        message.contains("no new pods in namespace cm37235-2"),
                        "{name}: {message}"
                    );
                }
                (Verdict::Denied { message, .. }, None) => panic!("{name}: refused: {message}"),
                (_, Some(_)) => panic!("{name}: {webhook:?} allowed a new pod"),
                (_, None) => {}
            }
        }
        // Pods that exist are left alone: a change of their labels passes.
        let change = update(SESSION_NS, "ada", relabelled.clone(), running.clone());
        for webhook in [Webhook::Mutate, Webhook::Validate] {
            assert_eq!(
                fx.review(webhook, &change).summary.verdict,
                Verdict::Allowed,
                "{name}"
            );
        }
    }
    // The end date is named.
    let fx = Fixture::with_directory(after(AfterGrace::RefusePods), &ended);
    let reviewed = fx.review(
        Webhook::Validate,
        &request("CREATE", SESSION_NS, "bob", plain_pod()),
    );
    let Verdict::Denied { message, .. } = &reviewed.summary.verdict else {
        panic!("allowed");
    };
    assert!(message.contains("2024-05-24 9:00:00.0"), "{message}");
}

#[test]
fn ended_sessions_in_read_only_mode_mount_the_data_read_only() {
    let data_mount = |pod: &Value| -> Value {
        pod["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "homestead-data")
            .cloned()
            .unwrap()
    };
    let read_only = Config {
        sessions: SessionLifecycleConfig {
            after_grace: AfterGrace::ReadOnly,
            ..SessionLifecycleConfig::default()
        },
        ..Config::default()
    };
    let create = request("CREATE", SESSION_NS, "bob", plain_pod());
    // Open: writable.
    let open = Fixture::with_config(read_only.clone()).mutated(&create);
    assert_eq!(data_mount(&open).get("readOnly"), None);
    // Ended: the same pod gets the data read-only, and validation agrees.
    let ended = session_directory("endDate: \"2024-05-24 9:00:00.0\"", "{lifecycle: Ended}");
    let fx = Fixture::with_directory(read_only, &ended);
    let pod = fx.mutated(&create);
    assert_eq!(data_mount(&pod)["readOnly"], true);
    let again = request("CREATE", SESSION_NS, "bob", pod);
    assert_eq!(
        fx.review(Webhook::Validate, &again).summary.verdict,
        Verdict::Allowed
    );
    assert_eq!(
        fx.review(Webhook::Mutate, &again).summary.verdict,
        Verdict::Allowed,
        "idempotent"
    );
}

#[test]
fn host_paths_and_capabilities_follow_the_allow_lists() {
    let mut config = Config::default();
    config.security.allowed_host_paths = vec!["/scratch".into()];
    config.security.allowed_capabilities = vec!["NET_BIND_SERVICE".into()];
    let fx = Fixture::with_config(config);
    let with = |volume: Value, caps: Value| {
        escaped(&fx, ADA_NS, move |pod| {
            pod["spec"]["volumes"].as_array_mut().unwrap().push(volume);
            pod["spec"]["containers"][0]["securityContext"]["capabilities"] = caps;
        })
    };
    let rows = vec![
        validate_row(
            "an allowed prefix and capability",
            with(
                json!({"name": "s", "hostPath": {"path": "/scratch/ada"}}),
                json!({"add": ["NET_BIND_SERVICE", "CAP_NET_BIND_SERVICE"]}),
            ),
            Want::Allowed,
        ),
        validate_row(
            "a string prefix that is not a path prefix",
            with(
                json!({"name": "s", "hostPath": {"path": "/scratchy"}}),
                json!({}),
            ),
            Want::Denied("host_path", "\"/scratchy\""),
        ),
        validate_row(
            "climbing out of an allowed prefix",
            with(
                json!({"name": "s", "hostPath": {"path": "/scratch/../etc"}}),
                json!({}),
            ),
            Want::Denied("host_path", "hostPath.path"),
        ),
        validate_row(
            "a capability not on the list",
            with(
                json!({"name": "e", "emptyDir": {}}),
                json!({"add": ["NET_ADMIN"]}),
            ),
            Want::Denied("capability", "capabilities.add[0]"),
        ),
    ];
    check(&fx, rows);
}

fn namespace(labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "home-ada", "labels": labels}})
}

#[test]
fn managed_namespaces_keep_their_labels() {
    let fx = Fixture::new();
    let managed = json!({"homestead.dev/managed": "true", "homestead.dev/user": "ada"});
    let homestead = "system:serviceaccount:homestead:homestead";
    let delete = |username: &str, old: Value| {
        let mut r = request("DELETE", "", username, Value::Null);
        r["request"]["name"] = json!("home-ada");
        r["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Namespace"});
        r["request"]["oldObject"] = old;
        r
    };
    let rows = vec![
        validate_row(
            "dropping the managed label",
            update(
                "",
                "ada",
                namespace(json!({"homestead.dev/user": "ada"})),
                namespace(managed.clone()),
            ),
            Want::Denied(
                "homestead_label",
                "metadata.labels[\"homestead.dev/managed\"]",
            ),
        ),
        validate_row(
            "changing the user label",
            update(
                "",
                "system:serviceaccount:argo:argo",
                namespace(json!({"homestead.dev/managed": "true", "homestead.dev/user": "bob"})),
                namespace(managed.clone()),
            ),
            Want::Denied("homestead_label", "metadata.labels[\"homestead.dev/user\"]"),
        ),
        validate_row(
            "adding another label is fine",
            update(
                "",
                "ada",
                namespace(
                    json!({"homestead.dev/managed": "true", "homestead.dev/user": "ada", "team": "x"}),
                ),
                namespace(managed.clone()),
            ),
            Want::Allowed,
        ),
        validate_row(
            "homestead itself may",
            update(
                "",
                homestead,
                namespace(json!({})),
                namespace(managed.clone()),
            ),
            Want::Allowed,
        ),
        validate_row(
            "deleting a managed namespace",
            delete("ada", namespace(managed.clone())),
            Want::Denied("managed_namespace", "metadata.name"),
        ),
        validate_row(
            "deleting an unmanaged namespace",
            delete("ada", namespace(json!({"team": "x"}))),
            Want::Allowed,
        ),
        validate_row(
            "homestead deleting a managed namespace",
            delete(homestead, namespace(managed)),
            Want::Allowed,
        ),
    ];
    check(&fx, rows);
}

fn user(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "User", "metadata": {"name": name}, "spec": spec})
}

fn session(spec: Value) -> Value {
    let mut full = json!({
        "proposalCode": "cm", "proposalNumber": 37235, "visit": 2, "instrument": "i03",
        "dataDirectory": "/dls/i03/data/2024/cm37235-2", "gid": 159620, "members": ["ada", "bob"]
    });
    for (k, v) in spec.as_object().unwrap() {
        full[k] = v.clone();
    }
    json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "Session", "metadata": {"name": "cm37235-2"}, "spec": full})
}

#[test]
fn users_and_sessions_are_checked() {
    let fx = Fixture::new();
    let admin = "admin";
    let create = |object| request("CREATE", "", admin, object);
    let rows = vec![
        validate_row(
            "a good user",
            create(user(
                "ada-l",
                json!({"username": "Ada.L", "uid": 5000, "gid": 5000}),
            )),
            Want::Allowed,
        ),
        validate_row(
            "uid 0",
            create(user(
                "root",
                json!({"username": "root", "uid": 0, "gid": 5000}),
            )),
            Want::Denied("invalid_object", "spec.uid"),
        ),
        validate_row(
            "a negative supplemental group",
            create(user(
                "ada",
                json!({"username": "ada", "uid": 5, "gid": 5, "supplementalGroups": [7, -1]}),
            )),
            Want::Denied("invalid_object", "spec.supplementalGroups[1]"),
        ),
        validate_row(
            "a name that is not the username's",
            create(user(
                "someone",
                json!({"username": "ada", "uid": 5, "gid": 5}),
            )),
            Want::Denied("invalid_object", "metadata.name"),
        ),
        validate_row(
            "a username with no name",
            create(user(
                "ada",
                json!({"username": "ada@site", "uid": 5, "gid": 5}),
            )),
            Want::Denied("invalid_object", "spec.username"),
        ),
        validate_row("a good session", create(session(json!({}))), Want::Allowed),
        validate_row(
            "an upper-case proposal code",
            create(session(json!({"proposalCode": "CM"}))),
            Want::Denied("invalid_object", "spec.proposalCode"),
        ),
        validate_row(
            "a relative data directory",
            create(session(json!({"dataDirectory": "dls/i03"}))),
            Want::Denied("invalid_object", "spec.dataDirectory"),
        ),
        validate_row(
            "'..' in the data directory",
            create(session(json!({"dataDirectory": "/dls/../etc"}))),
            Want::Denied("invalid_object", "spec.dataDirectory"),
        ),
        validate_row(
            "gid 0",
            create(session(json!({"gid": 0}))),
            Want::Denied("invalid_object", "spec.gid"),
        ),
        validate_row(
            "a default member who is not a member",
            create(session(json!({"defaultMember": "dave"}))),
            Want::Denied("invalid_object", "spec.defaultMember"),
        ),
        validate_row(
            "a member that is not a username",
            create(session(json!({"members": ["ada", "b@d"]}))),
            Want::Denied("invalid_object", "spec.members[1]"),
        ),
        validate_row(
            "an unreadable session",
            create(session(json!({"gid": "many"}))),
            Want::Denied("invalid_object", "object"),
        ),
    ];
    check(&fx, rows);
}

#[test]
fn several_denials_are_joined() {
    let fx = Fixture::new();
    let r = escaped(&fx, SESSION_NS, |pod| {
        pod["spec"]["hostPID"] = json!(true);
        pod["spec"]["containers"][0]["securityContext"]["privileged"] = json!(true);
    });
    let reviewed = fx.review(Webhook::Validate, &r);
    let Verdict::Denied {
        reason, message, ..
    } = &reviewed.summary.verdict
    else {
        panic!("not denied");
    };
    assert_eq!(*reason, "host_namespace");
    assert!(
        message.contains("spec.hostPID: ")
            && message.contains("; spec.containers[0].securityContext.privileged: privileged containers are not allowed"),
        "{message}"
    );
}

#[test]
fn summary_carries_what_was_decided() {
    let fx = Fixture::new();
    let mut r = request("CREATE", SESSION_NS, "ada", plain_pod());
    r["request"]["dryRun"] = json!(true);
    let reviewed = fx.review(Webhook::Mutate, &r);
    let s = &reviewed.summary;
    assert_eq!(s.kind, "Pod");
    assert_eq!(s.operation, "CREATE");
    assert_eq!(s.namespace.as_deref(), Some(SESSION_NS));
    assert_eq!(s.identity.as_deref(), Some("ada"));
    assert!(s.dry_run);
    assert!(matches!(s.verdict, Verdict::Patched { operations } if operations > 3));
}
