//! Projects end to end on a real API server (issue 13): the real `homestead serve` runs
//! its controller and webhooks against the cluster in `HOMESTEAD_TEST_KUBECONFIG`. See
//! `tests/support/cluster.rs`.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, Pod};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use homestead_core::names::{LABEL_MANAGED, LABEL_PROJECT};
use homestead_core::resources::{Phase, Project};
use support::cluster::{
    Cluster, ServeOptions, WAIT, client_as, eventually, pod, wait_admitting, wait_phase,
};

const MANAGER: &str = "projects-e2e";

async fn apply_project(cluster: &Cluster, name: &str, spec: serde_json::Value) {
    let project = json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "Project",
        "metadata": {"name": name}, "spec": spec
    });
    Api::<Project>::all(cluster.admin.clone())
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(project),
        )
        .await
        .expect("apply Project");
}

fn subjects(binding: &RoleBinding) -> Vec<String> {
    binding
        .subjects
        .iter()
        .flatten()
        .map(|s| s.name.clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_project_is_shared_and_unshared_and_kept_on_delete() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();
    let ada = cluster.user("pe-ada", &[]).await;
    let bob = cluster.user("pe-bob", &[]).await;

    // Created with bob as an edit member: the namespace, the RoleBindings.
    let name = cluster.name("pe");
    let ns = format!("p-{name}");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &ns);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "members": [{"username": bob.username, "role": "edit"}]}),
    )
    .await;
    let projects = Api::<Project>::all(admin.clone());
    let deployed = wait_phase(&projects, &name, Phase::Deployed).await;
    let status = deployed.status.expect("status");
    assert_eq!(status.common.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!((status.gid, status.members), (Some(ada.uid), Some(1)));
    let namespace = Api::<Namespace>::all(admin.clone())
        .get(&ns)
        .await
        .expect("namespace");
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get(LABEL_MANAGED).map(String::as_str), Some("true"));
    assert_eq!(labels.get(LABEL_PROJECT), Some(&name));
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns);
    let owner = bindings
        .get("homestead-project-admin")
        .await
        .expect("admin");
    assert_eq!(subjects(&owner), std::slice::from_ref(&ada.username));
    let edit = bindings.get("homestead-project-edit").await.expect("edit");
    assert_eq!(subjects(&edit), std::slice::from_ref(&bob.username));

    // bob's pod runs as bob, with the project gid (ada's, as spec.gid is unset).
    let member = client_as(&bob.username).await;
    wait_admitting(&member, &ns, bob.uid).await;
    let pods: Api<Pod> = Api::namespaced(member.clone(), &ns);
    let created = pods
        .create(
            &PostParams::default(),
            &pod(
                &ns,
                "work",
                json!({"containers": [{"name": "c", "image": "busybox"}]}),
            ),
        )
        .await
        .expect("bob's pod");
    let sc = created.spec.and_then(|s| s.security_context).expect("sc");
    assert_eq!(sc.run_as_user, Some(bob.uid));
    assert_eq!(sc.run_as_group, Some(ada.uid));
    assert_eq!(sc.fs_group, Some(ada.uid));
    let groups = sc.supplemental_groups.unwrap_or_default();
    assert!(
        groups.contains(&bob.uid) && groups.contains(&ada.uid),
        "{groups:?}"
    );

    // Unshared: bob's RoleBinding goes and his next pod is refused.
    apply_project(&cluster, &name, json!({"owner": ada.username})).await;
    eventually("bob's RoleBinding removed", WAIT, || {
        let bindings = bindings.clone();
        async move {
            matches!(bindings.get_opt("homestead-project-edit").await, Ok(None)).then_some(())
        }
    })
    .await;
    let admin_pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    eventually("bob's pods refused", WAIT, || {
        let mut probe = pod(
            &ns,
            "again",
            json!({"containers": [{"name": "c", "image": "busybox"}]}),
        );
        probe.metadata.annotations =
            Some([("homestead.dev/run-as".to_owned(), bob.username.clone())].into());
        let admin_pods = admin_pods.clone();
        async move {
            let dry = PostParams {
                dry_run: true,
                field_manager: None,
            };
            match admin_pods.create(&dry, &probe).await {
                Err(kube::Error::Api(e)) if e.message.contains("not a member") => Some(()),
                _ => None,
            }
        }
    })
    .await;

    // Deleted with Keep: the namespace, and what was in it, stay; homestead lets go.
    let configs: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "notes"}, "data": {"a": "b"}}))
                .expect("cm"),
        )
        .await
        .expect("a ConfigMap of the team's");
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "deletionPolicy": "Keep"}),
    )
    .await;
    eventually("Keep observed", WAIT, || {
        let projects = projects.clone();
        let name = name.clone();
        async move {
            let p = projects.get(&name).await.ok()?;
            let observed = p.status?.common.observed_generation;
            (observed == p.metadata.generation).then_some(())
        }
    })
    .await;
    projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete Project");
    eventually("Project gone", WAIT, || {
        let projects = projects.clone();
        let name = name.clone();
        async move { matches!(projects.get_opt(&name).await, Ok(None)).then_some(()) }
    })
    .await;
    let namespace = Api::<Namespace>::all(admin.clone())
        .get(&ns)
        .await
        .expect("the namespace is kept");
    assert!(namespace.metadata.deletion_timestamp.is_none());
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key(LABEL_MANAGED) && !labels.contains_key(LABEL_PROJECT),
        "{labels:?}"
    );
    assert!(configs.get_opt("notes").await.expect("read").is_some());
    assert!(
        bindings
            .get_opt("homestead-project-admin")
            .await
            .expect("read")
            .is_none()
    );
    let ours = configs.get("homestead-project").await.expect("kept");
    assert!(ours.metadata.owner_references.is_none(), "let go");
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_project_adopts_an_existing_namespace_and_keeps_it_on_delete() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();
    let ada = cluster.user("pa-ada", &[]).await;

    // A team's namespace with a ConfigMap in it, made before homestead knew of it.
    let ns = cluster.name("team");
    cluster.delete_on_drop::<Namespace>(None, &ns);
    Api::<Namespace>::all(admin.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns, "labels": {"team": "mx"}}}))
                .expect("namespace"),
        )
        .await
        .expect("create namespace");
    let configs: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
    configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "notes"}, "data": {"a": "b"}}))
                .expect("cm"),
        )
        .await
        .expect("a ConfigMap of the team's");

    // Without adopt, it is not taken.
    let name = cluster.name("pa");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    let projects = Api::<Project>::all(admin.clone());
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "namespace": ns, "deletionPolicy": "Keep"}),
    )
    .await;
    let failed = wait_phase(&projects, &name, Phase::Failed).await;
    let reason = failed
        .status
        .and_then(|s| s.common.reason)
        .unwrap_or_default();
    assert!(reason.contains("not created by homestead"), "{reason}");

    // With adopt, it is: labelled, bound, and the ConfigMap is as it was.
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "namespace": ns, "adopt": true, "deletionPolicy": "Keep"}),
    )
    .await;
    wait_phase(&projects, &name, Phase::Deployed).await;
    let labels = Api::<Namespace>::all(admin.clone())
        .get(&ns)
        .await
        .expect("namespace")
        .metadata
        .labels
        .unwrap_or_default();
    assert_eq!(labels.get(LABEL_PROJECT), Some(&name));
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("mx"),
        "its own labels stay"
    );
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns);
    assert!(
        bindings
            .get_opt("homestead-project-admin")
            .await
            .expect("read")
            .is_some()
    );
    let notes = configs.get("notes").await.expect("notes");
    assert!(notes.metadata.owner_references.is_none());
    assert_eq!(
        notes.data.unwrap_or_default().get("a").map(String::as_str),
        Some("b")
    );

    // Deleted with Keep: the namespace and the ConfigMap are there and no longer managed.
    projects
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete Project");
    eventually("Project gone", WAIT, || {
        let projects = projects.clone();
        let name = name.clone();
        async move { matches!(projects.get_opt(&name).await, Ok(None)).then_some(()) }
    })
    .await;
    let namespace = Api::<Namespace>::all(admin.clone())
        .get(&ns)
        .await
        .expect("the namespace is kept");
    assert!(namespace.metadata.deletion_timestamp.is_none());
    let labels = namespace.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key(LABEL_MANAGED) && !labels.contains_key(LABEL_PROJECT),
        "{labels:?}"
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("mx"));
    assert!(configs.get_opt("notes").await.expect("read").is_some());
    assert!(
        bindings
            .get_opt("homestead-project-admin")
            .await
            .expect("read")
            .is_none()
    );
}
