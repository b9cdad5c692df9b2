//! Projects in admission (issue 13): who a pod in a project namespace runs as, with which
//! groups and claims, and which Project objects are refused — table tests through the
//! public `review` entry point, as the server and the CLI call it.

mod support;

use homestead_core::config::Config;
use homestead_core::directory::{Directory, NamespaceOwner};
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Verdict, Webhook};
use serde_json::{Value, json};
use support::admission::*;

/// The admission fixture's people plus: Project `mx` owned by ada (gid 4000, shared with
/// bob as `edit`, carol (disabled) as `edit`, erin as `view`, with storage and a child
/// namespace `ci`), and Project `open` owned by bob, shared with every user as `edit`.
const PROJECTS: &str = r#"
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: erin}
spec: {username: erin, uid: 1005, gid: 1005}
---
apiVersion: homestead.dev/v1alpha1
kind: Project
metadata: {name: mx}
spec:
  owner: ada
  gid: 4000
  members:
    - {username: bob, role: edit}
    - {username: carol, role: edit}
    - {username: erin, role: view}
  childNamespaces: [ci]
  storage: {}
---
apiVersion: homestead.dev/v1alpha1
kind: Project
metadata: {name: open}
spec:
  owner: bob
  allUsers: {role: edit}
"#;

const MX: &str = "p-mx";
const MX_CI: &str = "p-mx-ci";
const OPEN: &str = "p-open";

fn fixture() -> Fixture {
    let config = Config::default();
    let text = format!("{DIRECTORY}{PROJECTS}");
    let (directory, problems) = Directory::from_yaml(&config, &text).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    Fixture {
        config,
        directory,
        pods: PodUsers::new([(MX, "bobs", "bob")]),
    }
}

/// homestead's own identity (the default `homesteadUsernames`).
const HOMESTEAD: &str = "system:serviceaccount:homestead:homestead";

/// The Deployment `web` as homestead stamps it for `run_as`.
fn stamped(run_as: &str) -> Value {
    let mut d = deployment();
    d["spec"]["template"]["metadata"]["annotations"] = json!({"homestead.dev/run-as": run_as});
    d
}

/// `workload` as a ReplicaSet its Deployment made.
fn made_by_deployment(mut workload: Value) -> Value {
    workload["kind"] = json!("ReplicaSet");
    workload["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true}]);
    workload
}

fn denied_reason(fx: &Fixture, webhook: Webhook, request: &Value) -> Result<(), String> {
    match fx.review(webhook, request).summary.verdict {
        Verdict::Denied { reason, .. } => Err(reason.to_owned()),
        _ => Ok(()),
    }
}

#[test]
fn the_directory_knows_project_namespaces() {
    let fx = fixture();
    for ns in [MX, MX_CI] {
        let Some(NamespaceOwner::Project(p)) = fx.directory.namespace(ns) else {
            panic!("{ns} is not a project namespace");
        };
        assert_eq!((p.name.as_str(), p.gid), ("mx", 4000));
        assert_eq!(
            p.role_of("ada"),
            Some("admin"),
            "the owner has the owner role"
        );
        assert_eq!(p.role_of("erin"), Some("view"));
        assert_eq!(p.role_of("dave"), None);
    }
    let Some(NamespaceOwner::Project(open)) = fx.directory.namespace(OPEN) else {
        panic!("p-open missing");
    };
    assert_eq!(open.gid, 1002, "no spec.gid: the owner's gid");
    assert_eq!(open.role_of("dave"), Some("edit"), "shared with all users");
    assert_eq!(fx.directory.namespace_holder(MX_CI), Some("Project/mx"));
}

#[test]
fn a_project_member_runs_as_themselves_with_the_project_gid() {
    let fx = fixture();
    for (who, ns, uid, groups) in [
        ("ada", MX, 1001, vec![1001, 2000, 2001, 4000]),
        ("bob", MX, 1002, vec![1002, 4000]),
        ("bob", MX_CI, 1002, vec![1002, 4000]),
        ("dave", OPEN, 1004, vec![1002, 1004]),
    ] {
        let pod = fx.mutated(&request("CREATE", ns, who, plain_pod()));
        let sc = &pod["spec"]["securityContext"];
        assert_eq!(sc["runAsUser"], uid, "{who} in {ns}: {sc}");
        let gid = if ns == OPEN { 1002 } else { 4000 };
        assert_eq!(sc["runAsGroup"], gid, "{who} in {ns}");
        assert_eq!(sc["fsGroup"], gid, "{who} in {ns}");
        assert_eq!(sc["supplementalGroups"], json!(groups), "{who} in {ns}");
        assert_eq!(
            pod["metadata"]["annotations"]["homestead.dev/run-as"], who,
            "{who} in {ns}"
        );
        let claims: Vec<(&str, &str)> = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| {
                Some((
                    v["name"].as_str()?,
                    v["persistentVolumeClaim"]["claimName"].as_str()?,
                ))
            })
            .collect();
        let private = format!("homestead-private-{who}");
        assert!(
            claims.contains(&("homestead-private", private.as_str())),
            "{who} in {ns}: {claims:?}"
        );
        assert_eq!(
            claims.contains(&("homestead-project", "homestead-project")),
            ns == MX,
            "the project volume only in the namespace of a project with storage: {claims:?}"
        );
        // And what mutation made passes validation.
        let validated = fx.review(Webhook::Validate, &request("CREATE", ns, who, pod));
        assert_eq!(validated.summary.verdict, Verdict::Allowed, "{who} in {ns}");
    }
}

#[test]
fn project_identity_rules() {
    let fx = fixture();
    let rs = "system:serviceaccount:kube-system:replicaset-controller";
    let argo = "system:serviceaccount:argo:argo-server";
    let owned = |mut pod: Value, run_as: &str| {
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "1", "controller": true}]);
        pod["metadata"]["annotations"] = json!({"homestead.dev/run-as": run_as});
        pod
    };
    let mut forged = plain_pod();
    forged["metadata"]["annotations"] = json!({"homestead.dev/run-as": "bob"});
    let mut bobs_template = deployment();
    bobs_template["spec"]["template"]["metadata"]["annotations"] =
        json!({"homestead.dev/run-as": "bob"});
    let table: Vec<(&str, Value, Result<(), &str>)> = vec![
        (
            "the owner",
            request("CREATE", MX, "ada", plain_pod()),
            Ok(()),
        ),
        (
            "an edit member",
            request("CREATE", MX, "bob", plain_pod()),
            Ok(()),
        ),
        (
            "in a child namespace",
            request("CREATE", MX_CI, "bob", plain_pod()),
            Ok(()),
        ),
        (
            "a view member may not run pods",
            request("CREATE", MX, "erin", plain_pod()),
            Err("role_runs_no_pods"),
        ),
        (
            "a disabled member",
            request("CREATE", MX, "carol", plain_pod()),
            Err("disabled_user"),
        ),
        (
            "a person who is no member",
            request("CREATE", MX, "dave", plain_pod()),
            Err("not_member"),
        ),
        (
            "everyone is a member of an all-users project",
            request("CREATE", OPEN, "dave", plain_pod()),
            Ok(()),
        ),
        (
            "a person forging run-as",
            request("CREATE", MX, "ada", forged.clone()),
            Err("forged_run_as"),
        ),
        (
            "a trusted controller with a member's stamp",
            request("CREATE", MX, rs, owned(plain_pod(), "bob")),
            Ok(()),
        ),
        (
            "a trusted controller with a view member's stamp",
            request("CREATE", MX, rs, owned(plain_pod(), "erin")),
            Err("role_runs_no_pods"),
        ),
        (
            "a trusted controller with a non-member's stamp",
            request("CREATE", MX, rs, owned(plain_pod(), "dave")),
            Err("not_member"),
        ),
        (
            "a trusted controller without a stamp: no default member in a project",
            request("CREATE", MX, rs, plain_pod()),
            Err("unattributed"),
        ),
        (
            "an untrusted service account",
            request("CREATE", MX, argo, plain_pod()),
            Err("unattributed"),
        ),
        (
            "a person's workload is stamped with their name",
            request("CREATE", MX, "bob", deployment()),
            Ok(()),
        ),
        (
            "another member may not change bob's workload",
            update(MX, "ada", deployment(), bobs_template.clone()),
            Err("not_owner"),
        ),
        // A hand-over: homestead re-stamps the old owner's workload, to a member only.
        (
            "homestead re-stamps ada's workload to bob, a member",
            update(MX, HOMESTEAD, stamped("bob"), stamped("ada")),
            Ok(()),
        ),
        (
            "homestead re-stamps ada's workload in a child namespace",
            update(MX_CI, HOMESTEAD, stamped("bob"), stamped("ada")),
            Ok(()),
        ),
        (
            "homestead may not re-stamp to a view member",
            update(MX, HOMESTEAD, stamped("erin"), stamped("ada")),
            Err("role_runs_no_pods"),
        ),
        (
            "homestead may not re-stamp to someone who is no member",
            update(MX, HOMESTEAD, stamped("dave"), stamped("ada")),
            Err("not_member"),
        ),
        (
            "the new owner may not re-stamp ada's workload himself",
            update(MX, "bob", stamped("bob"), stamped("ada")),
            Err("not_owner"),
        ),
        (
            "a trusted controller may not re-stamp it",
            update(MX, rs, stamped("bob"), stamped("ada")),
            Err("not_owner"),
        ),
        (
            "a service account may not re-stamp it",
            update(MX, argo, stamped("bob"), stamped("ada")),
            Err("not_owner"),
        ),
        // An unshare: a former member's workload makes no more pods.
        (
            "a former member's Deployment makes a ReplicaSet: refused",
            request(
                "CREATE",
                MX,
                "system:serviceaccount:kube-system:deployment-controller",
                made_by_deployment(stamped("dave")),
            ),
            Err("not_member"),
        ),
        (
            "a former member's ReplicaSet makes a pod: refused",
            request("CREATE", MX, rs, owned(plain_pod(), "dave")),
            Err("not_member"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, request, want) in table {
        let got = denied_reason(&fx, Webhook::Mutate, &request);
        if got.as_ref().map(|_| ()).map_err(String::as_str) != want {
            failures.push(format!("{name}: got {got:?}, wanted {want:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn private_claims_stay_private_in_a_project() {
    let fx = fixture();
    let claim = |name: &str, source: &str| {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": name},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                        "dataSource": {"kind": "PersistentVolumeClaim", "name": source}}})
    };
    let mut mounts_bobs = fx.mutated(&request("CREATE", MX, "ada", plain_pod()));
    mounts_bobs["spec"]["volumes"].as_array_mut().unwrap().push(
        json!({"name": "x", "persistentVolumeClaim": {"claimName": "homestead-private-bob"}}),
    );
    let table: Vec<(&str, Webhook, Value, Result<(), &str>)> = vec![
        (
            "cloning one's own private claim",
            Webhook::Validate,
            request("CREATE", MX, "bob", claim("copy", "homestead-private-bob")),
            Ok(()),
        ),
        (
            "cloning another member's private claim",
            Webhook::Validate,
            request("CREATE", MX, "ada", claim("copy", "homestead-private-bob")),
            Err("foreign_claim"),
        ),
        (
            "mounting another member's private claim",
            Webhook::Validate,
            request("CREATE", MX, "ada", mounts_bobs),
            Err("foreign_claim"),
        ),
    ];
    for (name, webhook, request, want) in table {
        let got = denied_reason(&fx, webhook, &request);
        assert_eq!(
            got.as_ref().map(|_| ()).map_err(String::as_str),
            want,
            "{name}"
        );
    }
}

fn project(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "Project", "metadata": {"name": name}, "spec": spec})
}

#[test]
fn projects_are_checked() {
    let fx = fixture();
    let create = |object| request("CREATE", "", "admin", object);
    // Ok, or the denial's reason code and a word its message names.
    type Want = Result<(), (&'static str, &'static str)>;
    let table: Vec<(&str, Value, Want)> = vec![
        (
            "a good project",
            project(
                "ml",
                json!({"owner": "ada", "members": [{"username": "bob", "role": "view"}]}),
            ),
            Ok(()),
        ),
        (
            "the project itself again (an update)",
            project(
                "mx",
                json!({"owner": "ada", "gid": 4000, "childNamespaces": ["ci"]}),
            ),
            Ok(()),
        ),
        (
            "an owner who is no User",
            project("ml", json!({"owner": "zoe"})),
            Err(("unknown_user", "spec.owner")),
        ),
        (
            "a disabled owner",
            project("ml", json!({"owner": "carol"})),
            Err(("disabled_user", "spec.owner")),
        ),
        (
            "a member who is no User",
            project(
                "ml",
                json!({"owner": "ada", "members": [{"username": "zoe", "role": "edit"}]}),
            ),
            Err(("unknown_user", "spec.members[0].username")),
        ),
        (
            "a role that is not configured",
            project(
                "ml",
                json!({"owner": "ada", "members": [{"username": "bob", "role": "god"}]}),
            ),
            Err(("invalid_object", "spec.members[0].role")),
        ),
        (
            "an all-users role that is not configured",
            project("ml", json!({"owner": "ada", "allUsers": {"role": "god"}})),
            Err(("invalid_object", "spec.allUsers.role")),
        ),
        (
            "a member listed twice",
            project(
                "ml",
                json!({"owner": "ada", "members": [{"username": "bob", "role": "edit"}, {"username": "bob", "role": "view"}]}),
            ),
            Err(("invalid_object", "spec.members[1].username")),
        ),
        (
            "gid 0",
            project("ml", json!({"owner": "ada", "gid": 0})),
            Err(("invalid_object", "spec.gid")),
        ),
        (
            "another user's primary group",
            project("ml", json!({"owner": "ada", "gid": 1002})),
            Err(("gid_taken", "spec.gid")),
        ),
        (
            "the owner's own primary group",
            project("ml", json!({"owner": "ada", "gid": 1001})),
            Ok(()),
        ),
        (
            "a namespace that is a user's",
            project("ml", json!({"owner": "ada", "namespace": "home-bob"})),
            Err(("namespace_taken", "User/bob")),
        ),
        (
            "a namespace that is a session's",
            project("ml", json!({"owner": "ada", "namespace": SESSION_NS})),
            Err(("namespace_taken", "Session/cm37235-2")),
        ),
        (
            "a namespace that is another project's",
            project("ml", json!({"owner": "ada", "namespace": MX_CI})),
            Err(("namespace_taken", "Project/mx")),
        ),
        (
            "a child namespace that is another project's",
            project(
                "p",
                json!({"owner": "ada", "namespace": "p", "childNamespaces": ["open"]}),
            ),
            Err(("namespace_taken", "Project/open")),
        ),
        (
            "adopting a system namespace",
            project(
                "ml",
                json!({"owner": "ada", "namespace": "kube-system", "adopt": true}),
            ),
            Err(("namespace_taken", "system namespace")),
        ),
        (
            "adopting homestead's own namespace",
            project(
                "ml",
                json!({"owner": "ada", "namespace": "homestead", "adopt": true}),
            ),
            Err(("namespace_taken", "system namespace")),
        ),
        (
            "a namespace that is no name",
            project("ml", json!({"owner": "ada", "namespace": "Not_A_Name"})),
            Err(("invalid_object", "spec.namespace")),
        ),
        (
            "a child that makes no name",
            project("ml", json!({"owner": "ada", "childNamespaces": ["x_y"]})),
            Err(("invalid_object", "spec.childNamespaces[0]")),
        ),
        (
            "storage of no size",
            project("ml", json!({"owner": "ada", "storage": {"size": "lots"}})),
            Err(("invalid_object", "spec.storage.size")),
        ),
        (
            "an unknown deletion policy",
            project("ml", json!({"owner": "ada", "deletionPolicy": "Shred"})),
            Err(("invalid_object", "object")),
        ),
    ];
    let mut failures = Vec::new();
    for (name, object, want) in table {
        let reviewed = fx.review(Webhook::Validate, &create(object));
        let got = match &reviewed.summary.verdict {
            Verdict::Denied {
                reason, message, ..
            } => match want {
                Err((want_reason, field)) if *reason == want_reason && message.contains(field) => {
                    continue;
                }
                _ => format!("denied {reason}: {message}"),
            },
            _ if want.is_ok() => continue,
            other => format!("{other:?}"),
        };
        failures.push(format!("{name}: got {got}, wanted {want:?}"));
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A hand-over's re-stamp as admission sees it: homestead changes the stamp of ada's
/// Deployment to bob, and mutation rewrites the rest of the template for bob (his uid,
/// his private claim; the project gid stays), which validation then accepts.
#[test]
fn a_restamped_workload_runs_as_the_new_owner() {
    let fx = fixture();
    let adas = fx.mutated(&request("CREATE", MX, "ada", deployment()));
    let template = &adas["spec"]["template"];
    assert_eq!(template["spec"]["securityContext"]["runAsUser"], 1001);
    // The controller's patch: only the stamp.
    let mut restamped = adas.clone();
    restamped["spec"]["template"]["metadata"]["annotations"]["homestead.dev/run-as"] = json!("bob");
    let bobs = fx.mutated(&update(MX, HOMESTEAD, restamped, adas.clone()));
    let template = &bobs["spec"]["template"];
    let sc = &template["spec"]["securityContext"];
    assert_eq!(
        (&sc["runAsUser"], &sc["runAsGroup"], &sc["fsGroup"]),
        (&json!(1002), &json!(4000), &json!(4000)),
        "{sc}"
    );
    assert_eq!(template["metadata"]["labels"]["homestead.dev/user"], "bob");
    let claims: Vec<&str> = template["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .collect();
    assert!(claims.contains(&"homestead-private-bob"), "{claims:?}");
    assert!(!claims.contains(&"homestead-private-ada"), "{claims:?}");
    let env: Vec<(&str, &str)> = template["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| Some((e["name"].as_str()?, e["value"].as_str()?)))
        .collect();
    assert!(env.contains(&("HOMESTEAD_USER", "bob")), "{env:?}");
    let validated = fx.review(Webhook::Validate, &update(MX, HOMESTEAD, bobs, adas));
    assert_eq!(validated.summary.verdict, Verdict::Allowed);
}

#[test]
fn an_owner_change_without_transfer_keeps_the_old_owner_a_member() {
    let fx = fixture();
    let mx = |spec: Value| project("mx", spec);
    let old = mx(json!({"owner": "ada", "gid": 4000, "childNamespaces": ["ci"]}));
    type Want = Result<(), &'static str>;
    let table: Vec<(&str, Value, Want)> = vec![
        (
            "handed to bob, workloads transferred (the default)",
            mx(json!({"owner": "bob", "gid": 4000, "childNamespaces": ["ci"]})),
            Ok(()),
        ),
        (
            "handed to bob without transfer, ada stays as edit",
            mx(
                json!({"owner": "bob", "gid": 4000, "childNamespaces": ["ci"], "transferWorkloads": false,
                       "members": [{"username": "ada", "role": "edit"}]}),
            ),
            Ok(()),
        ),
        (
            "handed to bob without transfer, ada dropped",
            mx(
                json!({"owner": "bob", "gid": 4000, "childNamespaces": ["ci"], "transferWorkloads": false}),
            ),
            Err("ada must stay a member"),
        ),
        (
            "handed to bob without transfer, ada kept as a viewer",
            mx(
                json!({"owner": "bob", "gid": 4000, "childNamespaces": ["ci"], "transferWorkloads": false,
                       "members": [{"username": "ada", "role": "view"}]}),
            ),
            Err("runs none"),
        ),
    ];
    for (name, object, want) in table {
        let reviewed = fx.review(Webhook::Validate, &update("", "admin", object, old.clone()));
        match (&reviewed.summary.verdict, want) {
            (Verdict::Allowed, Ok(())) => {}
            (
                Verdict::Denied {
                    reason, message, ..
                },
                Err(word),
            ) if *reason == "old_owner_dropped"
                && message.contains("spec.owner")
                && message.contains(word) => {}
            (got, _) => panic!("{name}: got {got:?}, wanted {want:?}"),
        }
    }
}
