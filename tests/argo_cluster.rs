//! Issue 12 against a real API server (`HOMESTEAD_TEST_KUBECONFIG`, cluster-admin): a
//! member submits an Argo Workflow in their session namespace, and the pod Argo's workflow
//! controller would make from it (no Argo runs here: the test makes it, impersonating the
//! controller's ServiceAccount) is stored as that member with the session gid and mounts;
//! the same pod naming another member is refused.
//!
//! Argo is not installed: the test applies a minimal `workflows.argoproj.io` CRD of its own
//! (schema open, as Argo's own minimal CRDs are) and leaves it installed, so a later run
//! never races its deletion.
//!
//! `HOMESTEAD_TEST_KUBECONFIG=... cargo nextest run --run-ignored only -E 'binary(argo_cluster)'`

mod support;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

use support::cluster::{
    Cluster, ServeOptions, client_as, client_with_groups, install_open_crd, wait_admitting,
};

const CONTROLLER: &str = "system:serviceaccount:argo:argo-workflow-controller";
const RUN_AS: &str = "homestead.dev/run-as";

fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 403, got {other:?}"),
    }
}

/// The pod the workflow controller makes for a step of `workflow` (its `podMetadata`, the
/// Workflow as controller).
fn step_pod(namespace: &str, name: &str, workflow: &DynamicObject, run_as: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {"workflows.argoproj.io/workflow": workflow.metadata.name},
            "annotations": {RUN_AS: run_as},
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "name": workflow.metadata.name, "uid": workflow.metadata.uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]
        }
    }))
    .expect("pod")
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_members_workflow_pods_run_as_them() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    install_open_crd(&admin, "argoproj.io", "v1alpha1", "Workflow", "workflows").await;

    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let ada_person = cluster.user("argo-ada", &[]).await;
    let bob_person = cluster.user("argo-bob", &[]).await;
    let dave_person = cluster.user("argo-dave", &[]).await;
    let visit = cluster.session(&[&ada_person, &bob_person]).await;
    let (ns, ada_name, bob_name) = (
        visit.name.as_str(),
        ada_person.username.as_str(),
        bob_person.username.as_str(),
    );

    // Members may submit Workflows; the workflow controller may make pods (as Argo's own
    // RBAC grants them).
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "argo-test", "namespace": ns},
        "rules": [
            {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["create", "get", "update", "patch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}
        ]
    }))
    .expect("role");
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "argo-test", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "argo-test"},
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ada_name},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": bob_name},
            {"kind": "ServiceAccount", "namespace": "argo", "name": "argo-workflow-controller"}
        ]
    }))
    .expect("binding");
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding");

    let ada = client_as(ada_name).await;
    wait_admitting(&ada, ns, ada_person.uid).await;
    let controller = client_with_groups(
        CONTROLLER,
        &["system:serviceaccounts", "system:serviceaccounts:argo"],
    )
    .await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
        "workflows",
    );
    let workflows =
        |c: &kube::Client| Api::<DynamicObject>::namespaced_with(c.clone(), ns, &resource);

    // ada submits a workflow with a step template that claims to run as bob.
    let workflow: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "reduce", "namespace": ns},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "steps": [[{"name": "work", "template": "work"}]]},
                {"name": "work", "metadata": {"annotations": {RUN_AS: bob_name}},
                    "container": {"image": "busybox:1.36", "command": ["true"]}}
            ]
        }
    }))
    .expect("workflow");
    let stored = workflows(&ada)
        .create(&PostParams::default(), &workflow)
        .await
        .expect("ada submits a Workflow");
    let data: &Value = &stored.data;
    assert_eq!(
        data.pointer("/spec/podMetadata/annotations/homestead.dev~1run-as"),
        Some(&json!(ada_name)),
        "the stored Workflow is stamped with its submitter: {data}"
    );
    assert_eq!(
        data.pointer("/spec/templates/1/metadata/annotations"),
        Some(&json!({})),
        "the template's stamp is removed: {data}"
    );

    // bob may not change ada's workflow.
    let message = refused(
        "bob changes ada's workflow",
        workflows(&client_as(bob_name).await)
            .patch(
                "reduce",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"parallelism": 1}})),
            )
            .await,
    );
    assert!(message.contains(ada_name), "{message}");

    // The workflow controller's pod of it runs as ada with the session gid and volumes.
    let pods = Api::<Pod>::namespaced(controller.clone(), ns);
    let pod = pods
        .create(
            &PostParams::default(),
            &step_pod(ns, "reduce-work", &stored, ada_name),
        )
        .await
        .expect("the workflow controller makes ada's step pod");
    let spec = pod.spec.as_ref().expect("spec");
    let sc = spec.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.run_as_user, Some(ada_person.uid));
    assert_eq!(sc.run_as_group, Some(visit.gid));
    assert_eq!(sc.fs_group, Some(visit.gid));
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert!(volumes.contains(&"homestead-private"), "{volumes:?}");
    assert!(volumes.contains(&"homestead-data"), "{volumes:?}");
    assert_eq!(
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("homestead.dev/user"))
            .map(String::as_str),
        Some(ada_name)
    );

    // The same pod naming someone else is refused: without a Workflow as its controller
    // the controller is not believed; with one, the stamp must still name a member; and
    // no member can make a pod or a Workflow stamped for someone else.
    let message = refused(
        "the controller's pod of a Workflow naming a non-member",
        pods.create(
            &PostParams::default(),
            &step_pod(ns, "reduce-outsider", &stored, &dave_person.username),
        )
        .await,
    );
    assert!(message.contains("not a member"), "{message}");
    let mut unowned = step_pod(ns, "reduce-forged", &stored, bob_name);
    unowned.metadata.owner_references = None;
    let message = refused(
        "the controller's pod naming bob without a Workflow",
        pods.create(&PostParams::default(), &unowned).await,
    );
    assert!(message.contains("ownerReferences"), "{message}");
    let message = refused(
        "ada's own pod of her workflow naming bob",
        Api::<Pod>::namespaced(ada.clone(), ns)
            .create(
                &PostParams::default(),
                &step_pod(ns, "reduce-forged", &stored, bob_name),
            )
            .await,
    );
    assert!(message.contains(bob_name), "{message}");
    let forged: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "forged", "namespace": ns},
        "spec": {"entrypoint": "main", "podMetadata": {"annotations": {RUN_AS: bob_name}},
                 "templates": [{"name": "main", "container": {"image": "busybox:1.36"}}]}
    }))
    .expect("workflow");
    let stamped = workflows(&ada)
        .create(&PostParams::default(), &forged)
        .await
        .expect("ada's workflow naming bob is stamped as hers");
    assert_eq!(
        stamped
            .data
            .pointer("/spec/podMetadata/annotations/homestead.dev~1run-as"),
        Some(&json!(ada_name))
    );
    drop(serve);
}
