//! Session lifecycle on a real API server (`HOMESTEAD_TEST_KUBECONFIG`; see
//! `tests/support/cluster.rs`): a Session whose end date plus grace passes ends by itself
//! (the controller wakes up at the boundary, nothing else touches the Session), and its
//! namespace then refuses new pods while the pods already there stay.

mod support;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use homestead_core::resources::{Lifecycle, Phase, Session};
use support::cluster::{
    Cluster, ServeOptions, WAIT, client_as, eventually, pod, wait_admitting, wait_phase,
};

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_session_past_its_end_and_grace_refuses_new_pods_and_keeps_old_ones() {
    let cluster = Cluster::exclusive().await;
    let config = format!(
        "{}sessions: {{gracePeriod: 2s, timeZone: Europe/London}}\n",
        cluster.default_config()
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    serve.register_webhooks(&cluster).await;
    let ada = cluster.user("ending-ada", &[]).await;
    let visit = cluster.session(&[&ada]).await;
    let sessions: Api<Session> = Api::all(cluster.admin.clone());
    let open = sessions.get(&visit.name).await.expect("session");
    assert_eq!(
        open.status.and_then(|s| s.lifecycle),
        Some(Lifecycle::Active)
    );

    // A pod created while the session is open.
    let as_ada = client_as(&ada.username).await;
    wait_admitting(&as_ada, &visit.name, ada.uid).await;
    let pods: Api<Pod> = Api::namespaced(as_ada.clone(), &visit.name);
    let spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    pods.create(
        &PostParams::default(),
        &pod(&visit.name, "before-the-end", spec.clone()),
    )
    .await
    .expect("a pod in an open session");

    // The visit now ends a few seconds from now (RFC 3339); with 2 s of grace the session
    // ends just after that, and only the controller's own wake-up can notice.
    let end = (Timestamp::now() + SignedDuration::from_secs(5)).to_string();
    sessions
        .patch(
            &visit.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"endDate": end}})),
        )
        .await
        .expect("move the end date");
    let ended = wait_phase(&sessions, &visit.name, Phase::Ended).await;
    assert_eq!(
        ended.status.and_then(|s| s.lifecycle),
        Some(Lifecycle::Ended)
    );

    // Admission learns it from its cache: a new pod is refused, naming the session and
    // its end date.
    let message = eventually("a new pod refused in the ended session", WAIT, || {
        let (pods, spec, namespace) = (pods.clone(), spec.clone(), visit.name.clone());
        async move {
            let probe = pod(&namespace, "after-the-end", spec);
            match pods
                .create(
                    &PostParams {
                        dry_run: true,
                        field_manager: None,
                    },
                    &probe,
                )
                .await
            {
                Err(kube::Error::Api(status)) if status.code == 403 => Some(status.message),
                _ => None,
            }
        }
    })
    .await;
    assert!(message.contains(&visit.name), "{message}");
    assert!(message.contains(&end), "{message}");
    assert!(message.contains("has ended"), "{message}");

    // The pod that was there stays.
    let kept = pods.get("before-the-end").await.expect("the old pod");
    assert!(kept.metadata.deletion_timestamp.is_none());
}
