//! Issue 10's escapes against a real API server (`HOMESTEAD_TEST_KUBECONFIG`,
//! cluster-admin): the webhook configurations are exactly the ones the leader keeps
//! (`homestead_core::webhooks`, pointed at a `homestead serve` on loopback by URL),
//! and two members of one session attack each other as the API server lets them.
//!
//! `HOMESTEAD_TEST_KUBECONFIG=... cargo test --test escapes_cluster -- --ignored`

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use support::cluster::{Cluster, ServeOptions, client_as, client_with_groups, eventually};

/// The denial of a request that must be refused: status 403, and the message.
fn refused<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{what}: {status:?}");
            status.message
        }
        other => panic!("{what}: expected a 403, got {other:?}"),
    }
}

fn busybox() -> Value {
    json!({"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]})
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn members_cannot_act_as_each_other() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let ines_person = cluster.user("esc-ines", &[]).await;
    let tomas_person = cluster.user("esc-tomas", &[]).await;
    let visit = cluster.session(&[&ines_person, &tomas_person]).await;
    let (session, ines_name, tomas_name) = (
        visit.name.as_str(),
        ines_person.username.as_str(),
        tomas_person.username.as_str(),
    );
    let pod = |name: &str, spec: Value| -> Pod { support::cluster::pod(session, name, spec) };

    // Row 15: the namespace asks Pod Security Admission to enforce baseline.
    let ns = Api::<Namespace>::all(admin.clone())
        .get(session)
        .await
        .expect("namespace");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");

    let ines = client_as(ines_name).await;
    let tomas = client_as(tomas_name).await;
    let argo = client_with_groups(
        &format!("system:serviceaccount:{session}:argo-workflow"),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{session}"),
            "system:authenticated",
        ],
    )
    .await;
    // A cluster admin other than homestead: `root` in `system:masters`.
    let root = client_with_groups("root", &["system:masters", "system:authenticated"]).await;

    let deployments = |c: &Client| Api::<Deployment>::namespaced(c.clone(), session);
    let pods = |c: &Client| Api::<Pod>::namespaced(c.clone(), session);
    let claims = |c: &Client| Api::<PersistentVolumeClaim>::namespaced(c.clone(), session);

    // Row 1: tomas's Deployment; ines only labels it (stamp stays), then tries to change
    // its image, as does the argo-workflow ServiceAccount.
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "tomas-web", "namespace": session},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": busybox()}}
    }))
    .expect("deployment");
    // Both webhooks must know the session before the first workload: a request admitted
    // while the directory is being rebuilt may be mutated under the old directory and
    // validated under the new one (refused, fail closed; a retry passes).
    support::cluster::wait_admitting(&tomas, session, tomas_person.uid).await;
    deployments(&tomas)
        .create(&PostParams::default(), &deployment)
        .await
        .expect("tomas creates a Deployment");
    let stamp = |d: &Deployment| {
        d.spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get("homestead.dev/run-as").cloned())
    };
    let labelled = deployments(&ines)
        .patch(
            "tomas-web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"reviewed-by": "ines"}}})),
        )
        .await
        .expect("ines may label tomas's Deployment");
    assert_eq!(
        stamp(&labelled).as_deref(),
        Some(tomas_name),
        "labelling re-stamps nothing"
    );
    let image = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "evil:1"}]}}}});
    let message = refused(
        "ines sets the image of tomas's Deployment",
        deployments(&ines)
            .patch(
                "tomas-web",
                &PatchParams::default(),
                &Patch::Strategic(image.clone()),
            )
            .await,
    );
    assert!(
        message.contains(&format!("runs as {tomas_name}")),
        "{message}"
    );
    let message = refused(
        "argo-workflow sets the image of tomas's Deployment",
        deployments(&argo)
            .patch(
                "tomas-web",
                &PatchParams::default(),
                &Patch::Strategic(image.clone()),
            )
            .await,
    );
    assert!(
        message.contains(&format!("runs as {tomas_name}")),
        "{message}"
    );
    deployments(&tomas)
        .patch(
            "tomas-web",
            &PatchParams::default(),
            &Patch::Strategic(image),
        )
        .await
        .expect("tomas changes his own image");

    // Row 4: ines's pod; tomas swaps its image (refused) or labels it (allowed).
    pods(&ines)
        .create(&PostParams::default(), &pod("ines-pod", busybox()))
        .await
        .expect("ines creates a pod");
    let message = refused(
        "tomas swaps the image of ines's pod",
        pods(&tomas)
            .patch(
                "ines-pod",
                &PatchParams::default(),
                &Patch::Strategic(
                    json!({"spec": {"containers": [{"name": "main", "image": "evil:1"}]}}),
                ),
            )
            .await,
    );
    assert!(
        message.contains(&format!("runs as {ines_name}")),
        "{message}"
    );
    pods(&tomas)
        .patch(
            "ines-pod",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"seen": "yes"}}})),
        )
        .await
        .expect("tomas may label ines's pod");
    refused(
        "tomas relabels ines's pod as his",
        pods(&tomas)
            .patch(
                "ines-pod",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"homestead.dev/user": tomas_name}}})),
            )
            .await,
    );

    // Row 6: exec into ines's pod. Admission runs before the API server looks for a node,
    // so homestead's refusal is what tomas sees; ines gets past admission (and then fails
    // for want of a node or an upgrade, which is not a 403 from homestead).
    let exec = |client: Client| async move {
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{session}/pods/ines-pod/exec?command=id&stdout=true"
        ))
        .body(Vec::new())
        .expect("request");
        client.request_text(request).await
    };
    let message = eventually(
        "the pod index knows ines's pod",
        Duration::from_secs(30),
        || {
            let tomas = tomas.clone();
            async move {
                match exec(tomas).await {
                    Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("runs as") => {
                        Some(s.message)
                    }
                    _ => None,
                }
            }
        },
    )
    .await;
    assert!(message.contains(&format!("only {ines_name}")), "{message}");
    match exec(ines.clone()).await {
        Err(kube::Error::Api(s)) => assert!(
            !(s.code == 403 && s.message.contains("homestead")),
            "ines may exec into her pod: {s:?}"
        ),
        other => panic!("exec without an upgrade cannot succeed: {other:?}"),
    }

    // Row 8: tomas clones ines's private claim, makes a dataset, deletes her claim.
    let claim = |name: &str, spec: Value, labels: Value| -> PersistentVolumeClaim {
        let mut full = json!({"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}});
        for (k, v) in spec.as_object().expect("spec") {
            full[k] = v.clone();
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": session, "labels": labels}, "spec": full}))
        .expect("claim")
    };
    let private = format!("homestead-private-{ines_name}");
    refused(
        "tomas clones ines's private claim",
        claims(&tomas)
            .create(
                &PostParams::default(),
                &claim(
                    "copy",
                    json!({"dataSource": {"kind": "PersistentVolumeClaim", "name": private}}),
                    json!({}),
                ),
            )
            .await,
    );
    refused(
        "tomas makes a dataset",
        claims(&tomas)
            .create(
                &PostParams::default(),
                &claim("mine", json!({}), json!({"homestead.dev/dataset": "x"})),
            )
            .await,
    );
    refused(
        "tomas deletes ines's private claim",
        claims(&tomas)
            .delete(&private, &DeleteParams::default())
            .await,
    );
    claims(&admin)
        .get(&private)
        .await
        .expect("ines's claim is still there");

    // Row 11: nobody but homestead gives a namespace homestead's labels, admins included.
    let future: Namespace = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "home-esc-future", "labels": {"homestead.dev/managed": "true",
            "homestead.dev/user": "esc-future", "app.kubernetes.io/managed-by": "homestead"}}}))
    .expect("namespace");
    let message = refused(
        "a namespace created with homestead's labels",
        Api::<Namespace>::all(root.clone())
            .create(&PostParams::default(), &future)
            .await,
    );
    assert!(message.contains("homestead.dev/managed"), "{message}");

    // Row 15: Pod Security Admission refuses what homestead leaves to it.
    let mut spc = busybox();
    spc["securityContext"] = json!({"seLinuxOptions": {"type": "spc_t"}});
    let message = refused(
        "an spc_t pod",
        pods(&ines)
            .create(&PostParams::default(), &pod("spc", spc))
            .await,
    );
    assert!(
        message.contains("PodSecurity") && message.contains("baseline"),
        "{message}"
    );

    drop(serve);
}
