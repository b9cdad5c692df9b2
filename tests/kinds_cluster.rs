//! Issue 12, items 2 and 3, against a real API server (`HOMESTEAD_TEST_KUBECONFIG`,
//! cluster-admin): a member's PyTorchJob (a configured workload kind) is stored stamped in
//! every replica's template, a stamp forged by anyone else is refused, and the pod the
//! training operator makes from it (impersonating its ServiceAccount; no operator runs
//! here) runs as the member; a trusted submitter (JupyterHub's hub, impersonated) makes a
//! pod for the member its label names, and no one else's label is believed.
//!
//! Kubeflow is not installed: the test applies a minimal `pytorchjobs.kubeflow.org` CRD of
//! its own (schema open) and leaves it installed, so a later run never races its deletion.
//!
//! `HOMESTEAD_TEST_KUBECONFIG=... cargo nextest run --run-ignored only -E 'binary(kinds_cluster)'`

mod support;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use support::cluster::{
    Cluster, ServeOptions, client_as, client_as_service_account, install_open_crd, wait_admitting,
};

const OPERATOR: &str = "system:serviceaccount:kubeflow:training-operator";
const HUB: &str = "system:serviceaccount:jhub:hub";
const HUB_LABEL: &str = "hub.jupyter.org/username";
const RUN_AS: &str = "homestead.dev/run-as";
const WORKER: &str = "/spec/pytorchReplicaSpecs/Worker/template";
const MASTER: &str = "/spec/pytorchReplicaSpecs/Master/template";

fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 403, got {other:?}"),
    }
}

/// A Role in `ns` with `rules`, bound to `subjects`.
async fn grant(cluster: &Cluster, ns: &str, rules: Value, subjects: Value) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "kinds-test", "namespace": ns},
        "rules": rules
    }))
    .expect("role");
    Api::<Role>::namespaced(cluster.admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "kinds-test", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kinds-test"},
        "subjects": subjects
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(cluster.admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");
}

fn user_subject(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

fn job(ns: &str, name: &str) -> DynamicObject {
    let container = json!({"name": "pytorch", "image": "busybox:1.36", "command": ["true"]});
    serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"pytorchReplicaSpecs": {
            "Master": {"replicas": 1, "template": {"spec": {"containers": [container]}}},
            "Worker": {"replicas": 2, "template": {"spec": {"containers": [container]}}}
        }}
    }))
    .expect("job")
}

/// The pod the training operator makes for a worker of `job`.
fn worker_pod(ns: &str, name: &str, job: &DynamicObject, run_as: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns,
            "annotations": {RUN_AS: run_as},
            "ownerReferences": [{
                "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                "name": job.metadata.name, "uid": job.metadata.uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {"restartPolicy": "Never", "containers": [{"name": "pytorch", "image": "busybox:1.36", "command": ["true"]}]}
    }))
    .expect("pod")
}

fn stamp<'v>(data: &'v Value, template: &str) -> Option<&'v Value> {
    data.pointer(&format!(
        "{template}/metadata/annotations/homestead.dev~1run-as"
    ))
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_members_pytorch_job_is_stored_stamped_and_its_pods_run_as_them() {
    let cluster = Cluster::exclusive().await;
    install_open_crd(
        &cluster.admin,
        "kubeflow.org",
        "v1",
        "PyTorchJob",
        "pytorchjobs",
    )
    .await;
    let mut trusted: Vec<String> = homestead_core::config::Config::default().trusted_controllers;
    trusted.push(OPERATOR.into());
    let config = format!(
        "{}trustedControllers: {trusted:?}\nworkloadKinds:\n  - {{group: kubeflow.org, version: v1, kind: PyTorchJob, podTemplates: [/spec/pytorchReplicaSpecs/*/template]}}\n",
        cluster.default_config()
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    serve.register_webhooks(&cluster).await;
    let ada_person = cluster.user("kinds-ada", &[]).await;
    let bob_person = cluster.user("kinds-bob", &[]).await;
    let dave_person = cluster.user("kinds-dave", &[]).await;
    let visit = cluster.session(&[&ada_person, &bob_person]).await;
    let (ns, ada_name, bob_name) = (
        visit.name.as_str(),
        ada_person.username.as_str(),
        bob_person.username.as_str(),
    );
    grant(
        &cluster,
        ns,
        json!([
            {"apiGroups": ["kubeflow.org"], "resources": ["pytorchjobs"], "verbs": ["create", "get", "update", "patch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}
        ]),
        json!([
            user_subject(ada_name),
            user_subject(bob_name),
            {"kind": "ServiceAccount", "namespace": "kubeflow", "name": "training-operator"},
            {"kind": "ServiceAccount", "namespace": ns, "name": "default"}
        ]),
    )
    .await;
    let ada = client_as(ada_name).await;
    wait_admitting(&ada, ns, ada_person.uid).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"),
        "pytorchjobs",
    );
    let jobs = |c: &kube::Client| Api::<DynamicObject>::namespaced_with(c.clone(), ns, &resource);

    // ada's job, one template claiming bob, is stored stamped with ada in every template.
    let mut forged = job(ns, "mnist");
    forged.data["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"] =
        json!({"annotations": {RUN_AS: bob_name}});
    let stored = jobs(&ada)
        .create(&PostParams::default(), &forged)
        .await
        .expect("ada submits a PyTorchJob");
    for template in [MASTER, WORKER] {
        assert_eq!(
            stamp(&stored.data, template),
            Some(&json!(ada_name)),
            "{template}: {}",
            stored.data
        );
        assert_eq!(
            stored
                .data
                .pointer(&format!("{template}/spec/securityContext/runAsGroup")),
            Some(&json!(visit.gid)),
            "{template}"
        );
    }

    // Nobody else may stamp a job or change ada's.
    let sa = client_as_service_account(ns, "default").await;
    let mut stamped = job(ns, "by-sa");
    stamped.data["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"] =
        json!({"annotations": {RUN_AS: ada_name}});
    let message = refused(
        "a ServiceAccount's job stamped for ada",
        jobs(&sa).create(&PostParams::default(), &stamped).await,
    );
    assert!(message.contains("homestead.dev/run-as"), "{message}");
    let message = refused(
        "bob changes ada's worker template",
        jobs(&client_as(bob_name).await)
            .patch(
                "mnist",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"pytorchReplicaSpecs": {"Worker": {"template": {"spec": {"containers": [{"name": "pytorch", "image": "busybox:1.37"}]}}}}}})),
            )
            .await,
    );
    assert!(message.contains(ada_name), "{message}");

    // The operator's pod of ada's job runs as ada; one naming a non-member is refused.
    let operator = client_as_service_account("kubeflow", "training-operator").await;
    let pods = Api::<Pod>::namespaced(operator, ns);
    let pod = pods
        .create(
            &PostParams::default(),
            &worker_pod(ns, "mnist-worker-0", &stored, ada_name),
        )
        .await
        .expect("the operator makes ada's worker pod");
    let sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .expect("securityContext");
    assert_eq!(sc.run_as_user, Some(ada_person.uid));
    assert_eq!(sc.run_as_group, Some(visit.gid));
    let message = refused(
        "the operator's pod naming a non-member",
        pods.create(
            &PostParams::default(),
            &worker_pod(ns, "mnist-worker-1", &stored, &dave_person.username),
        )
        .await,
    );
    assert!(message.contains("not a member"), "{message}");
    drop(serve);
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_trusted_submitters_pod_runs_as_the_member_its_label_names() {
    let cluster = Cluster::exclusive().await;
    let config = format!(
        "{}trustedSubmitters: [{{username: {HUB:?}, identityLabel: {HUB_LABEL}}}]\n",
        cluster.default_config()
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    serve.register_webhooks(&cluster).await;
    let ada_person = cluster.user("hub-ada", &[]).await;
    let dave_person = cluster.user("hub-dave", &[]).await;
    let visit = cluster.session(&[&ada_person]).await;
    let ns = visit.name.as_str();
    grant(
        &cluster,
        ns,
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}]),
        json!([
            {"kind": "ServiceAccount", "namespace": "jhub", "name": "hub"},
            {"kind": "ServiceAccount", "namespace": "jhub", "name": "other"}
        ]),
    )
    .await;
    wait_admitting(&client_as(&ada_person.username).await, ns, ada_person.uid).await;
    let notebook = |name: &str, user: Option<&str>| -> Pod {
        let labels = user.map_or_else(|| json!({}), |u| json!({HUB_LABEL: u}));
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "notebook", "image": "busybox:1.36", "command": ["true"]}]}
        }))
        .expect("pod")
    };
    let hub = Api::<Pod>::namespaced(client_as_service_account("jhub", "hub").await, ns);
    let pod = hub
        .create(
            &PostParams::default(),
            &notebook("jupyter-ada", Some(&ada_person.username)),
        )
        .await
        .expect("the hub makes ada's notebook");
    let sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .expect("securityContext");
    assert_eq!(sc.run_as_user, Some(ada_person.uid));
    assert_eq!(sc.run_as_group, Some(visit.gid));
    assert_eq!(
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RUN_AS))
            .map(String::as_str),
        Some(ada_person.username.as_str())
    );
    let message = refused(
        "the hub's pod for a non-member",
        hub.create(
            &PostParams::default(),
            &notebook("jupyter-dave", Some(&dave_person.username)),
        )
        .await,
    );
    assert!(
        message.contains("not a member") && message.contains(HUB_LABEL),
        "{message}"
    );
    let message = refused(
        "the hub's pod without the label",
        hub.create(&PostParams::default(), &notebook("jupyter-x", None))
            .await,
    );
    assert!(message.contains(HUB_LABEL), "{message}");
    let other = Api::<Pod>::namespaced(client_as_service_account("jhub", "other").await, ns);
    let message = refused(
        "another ServiceAccount's pod with the label",
        other
            .create(
                &PostParams::default(),
                &notebook("jupyter-ada-2", Some(&ada_person.username)),
            )
            .await,
    );
    assert!(message.contains("neither a member"), "{message}");
    drop(serve);
}
