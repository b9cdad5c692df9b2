//! Projects end to end on a real API server (issue 13): the real `homestead serve` runs
//! its controller and webhooks against the cluster in `HOMESTEAD_TEST_KUBECONFIG`. See
//! `tests/support/cluster.rs`.

mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use homestead_core::names::{ANNOTATION_RUN_AS, LABEL_MANAGED, LABEL_PROJECT};
use homestead_core::resources::{Phase, Project};
use support::cluster::{
    Cluster, ServeOptions, WAIT, client_as, eventually, install_open_crd, pod, wait_admitting,
    wait_phase,
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

    // Created with bob as an edit member and a child namespace: the namespaces, the
    // RoleBindings, bob's claim in both.
    let name = cluster.name("pe");
    let ns = format!("p-{name}");
    let ci = format!("{ns}-ci");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &ns);
    cluster.delete_on_drop::<Namespace>(None, &ci);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "childNamespaces": ["ci"],
               "members": [{"username": bob.username, "role": "edit"}]}),
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

    // bob's Deployment, and his claim in the child namespace.
    let bob_web: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "bob-web"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "bob-web"}},
                 "template": {"metadata": {"labels": {"app": "bob-web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(member.clone(), &ns)
        .create(&PostParams::default(), &bob_web)
        .await
        .expect("bob's Deployment");
    let bobs_claim = format!("homestead-private-{}", bob.username);
    let child_claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &ci);
    eventually("bob's claim in the child namespace", WAIT, || {
        let (claims, claim) = (child_claims.clone(), bobs_claim.clone());
        async move { claims.get_opt(&claim).await.ok()?.map(|_| ()) }
    })
    .await;
    let volumes_before = project_volumes(&admin, &name).await;

    // Unshared: bob's RoleBinding goes, his claims go from both namespaces (his volumes
    // stay), his Deployment is named in an Event and his next pod is refused.
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "childNamespaces": ["ci"]}),
    )
    .await;
    let events = Api::<Event>::namespaced(admin.clone(), &ns);
    eventually("an Event naming bob's Deployment", WAIT, || {
        let events = events.clone();
        async move {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("RunsAsFormerMember")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("bob-web")
                })
                .then_some(())
        }
    })
    .await;
    for namespace in [&ns, &ci] {
        let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), namespace);
        eventually(&format!("bob's claim gone from {namespace}"), WAIT, || {
            let (claims, claim) = (claims.clone(), bobs_claim.clone());
            async move {
                // Gone, or going (a pod of bob's still names it: the claim protection
                // finalizer holds it until the pod is gone).
                match claims.get_opt(&claim).await.ok()? {
                    None => Some(()),
                    Some(c) => c.metadata.deletion_timestamp.map(|_| ()),
                }
            }
        })
        .await;
    }
    assert_eq!(
        project_volumes(&admin, &name).await,
        volumes_before,
        "every volume kept"
    );
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
        json!({"owner": ada.username, "childNamespaces": ["ci"], "deletionPolicy": "Keep"}),
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

/// What admission says to a pod running as `run_as` in `ns` (a dry run as the cluster
/// admin, who may name anyone): `Ok(uid)` it would run as, or the refusal's message.
async fn admits(admin: &Client, ns: &str, run_as: &str) -> Result<i64, String> {
    let mut probe = pod(
        ns,
        "probe",
        json!({"containers": [{"name": "c", "image": "busybox"}]}),
    );
    probe.metadata.annotations = Some([(ANNOTATION_RUN_AS.to_owned(), run_as.to_owned())].into());
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    match Api::<Pod>::namespaced(admin.clone(), ns)
        .create(&dry, &probe)
        .await
    {
        Ok(pod) => Ok(pod
            .spec
            .and_then(|s| s.security_context)
            .and_then(|sc| sc.run_as_user)
            .unwrap_or_default()),
        Err(kube::Error::Api(e)) => Err(e.message),
        Err(e) => Err(e.to_string()),
    }
}

/// Waits until admission in `ns` says `want` of `run_as`: `Ok(uid)`, or a refusal whose
/// message contains the word.
async fn wait_admission(admin: &Client, ns: &str, run_as: &str, want: Result<i64, &str>) {
    let what = format!("a pod of {run_as} in {ns}: {want:?}");
    eventually(&what, WAIT, || async move {
        match (admits(admin, ns, run_as).await, want) {
            (Ok(uid), Ok(want)) if uid == want => Some(()),
            (Err(message), Err(word)) if message.contains(word) => Some(()),
            _ => None,
        }
    })
    .await;
}

/// The subjects of RoleBinding `name` in `ns` once they are `want` (`[]`: no RoleBinding).
async fn wait_bound(admin: &Client, ns: &str, name: &str, want: &[&str]) {
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), ns);
    let what = format!("RoleBinding {ns}/{name} binding {want:?}");
    eventually(&what, WAIT, || {
        let bindings = bindings.clone();
        async move {
            let got = match bindings.get_opt(name).await.ok()? {
                Some(binding) => subjects(&binding),
                None => Vec::new(),
            };
            (got == want).then_some(())
        }
    })
    .await;
}

/// The private claims (`homestead-private-*`) in `ns` once they are `want`, sorted.
async fn wait_claims(admin: &Client, ns: &str, want: &[String]) {
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns);
    let what = format!("private claims {want:?} in {ns}");
    eventually(&what, WAIT, || {
        let claims = claims.clone();
        async move {
            let mut got: Vec<String> = claims
                .list_metadata(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .map(ResourceExt::name_any)
                .filter(|n| n.starts_with("homestead-private-"))
                .collect();
            got.sort();
            (got == want).then_some(())
        }
    })
    .await;
}

/// Names of the PersistentVolumes homestead made for Project `name`.
async fn project_volumes(admin: &Client, name: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<PersistentVolume>::all(admin.clone())
        .list_metadata(&ListParams::default().labels(&format!("{LABEL_PROJECT}={name}")))
        .await
        .expect("list volumes")
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

/// Waits until the Project has settled its people for `owner` (`status.owner`) at its
/// latest generation.
async fn wait_settled(projects: &Api<Project>, name: &str, owner: &str) {
    eventually(
        &format!("{name} settled for {owner}"),
        WAIT,
        || async move {
            let p = projects.get(name).await.ok()?;
            let status = p.status?;
            (status.owner.as_deref() == Some(owner)
                && status.common.observed_generation == p.metadata.generation
                && status.common.phase == Some(Phase::Deployed))
            .then_some(())
        },
    )
    .await;
}

/// The "done when": an admin creates a Project, shares it with two people (one
/// `edit`, one `view`), hands it to a new owner (a Deployment of the old owner's is
/// re-stamped to the new owner), and deletes it with `Keep`. At every step RBAC, the
/// private claims and admission follow; no volume is ever deleted and the namespace, with
/// everything the people made in it, survives the delete.
#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_project_is_created_shared_handed_over_and_kept() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();
    let ada = cluster.user("pj-ada", &[]).await;
    let bob = cluster.user("pj-bob", &[]).await;
    let erin = cluster.user("pj-erin", &[]).await;
    let carl = cluster.user("pj-carl", &[]).await;
    let name = cluster.name("pj");
    let ns = format!("p-{name}");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &ns);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    let projects = Api::<Project>::all(admin.clone());
    let private = |people: &[&str]| -> Vec<String> {
        let mut claims: Vec<String> = people
            .iter()
            .map(|p| format!("homestead-private-{p}"))
            .collect();
        claims.sort();
        claims
    };

    // 1. Created: ada alone owns it; transferWorkloads defaults to true.
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "gid": ada.uid + 50_000}),
    )
    .await;
    wait_settled(&projects, &name, &ada.username).await;
    let created = projects.get(&name).await.expect("project");
    assert_eq!(
        created.spec.transfer_workloads,
        Some(true),
        "the CRD's default"
    );
    wait_bound(&admin, &ns, "homestead-project-admin", &[&ada.username]).await;
    wait_claims(&admin, &ns, &private(&[&ada.username])).await;
    wait_admission(&admin, &ns, &ada.username, Ok(ada.uid)).await;
    wait_admission(&admin, &ns, &bob.username, Err("not a member")).await;

    // 2. Shared with bob (edit) and erin (view): bob runs pods and has a claim; erin
    // reads, runs nothing, and has no claim.
    let gid = ada.uid + 50_000;
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "gid": gid, "members": [
            {"username": bob.username, "role": "edit"},
            {"username": erin.username, "role": "view"}]}),
    )
    .await;
    wait_settled(&projects, &name, &ada.username).await;
    wait_bound(&admin, &ns, "homestead-project-edit", &[&bob.username]).await;
    wait_bound(&admin, &ns, "homestead-project-view", &[&erin.username]).await;
    wait_claims(&admin, &ns, &private(&[&ada.username, &bob.username])).await;
    wait_admission(&admin, &ns, &bob.username, Ok(bob.uid)).await;
    wait_admission(&admin, &ns, &erin.username, Err("does not run pods")).await;

    // ada's Deployment, stamped with her name by mutation.
    let owner = client_as(&ada.username).await;
    wait_admitting(&owner, &ns, ada.uid).await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns);
    let web: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    }))
    .expect("deployment");
    let made = Api::<Deployment>::namespaced(owner.clone(), &ns)
        .create(&PostParams::default(), &web)
        .await
        .expect("ada's Deployment");
    let stamp = |d: &Deployment| -> (Option<String>, Option<i64>) {
        let template = d.spec.as_ref().map(|s| &s.template);
        (
            template
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref())
                .and_then(|a| a.get(ANNOTATION_RUN_AS).cloned()),
            template
                .and_then(|t| t.spec.as_ref())
                .and_then(|s| s.security_context.as_ref())
                .and_then(|sc| sc.run_as_user),
        )
    };
    assert_eq!(stamp(&made), (Some(ada.username.clone()), Some(ada.uid)));
    let volumes_before = project_volumes(&admin, &name).await;
    assert_eq!(
        volumes_before.len(),
        3,
        "shared, ada's and bob's: {volumes_before:?}"
    );

    // Handing it to carl without moving ada's workloads, and without keeping ada a
    // member who runs pods, is refused: her workloads would run as a stranger.
    let refused = Api::<Project>::all(admin.clone())
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(json!({
                "apiVersion": "homestead.dev/v1alpha1", "kind": "Project",
                "metadata": {"name": name},
                "spec": {"owner": carl.username, "gid": gid, "transferWorkloads": false, "members": [
                    {"username": bob.username, "role": "edit"},
                    {"username": erin.username, "role": "view"}]}
            })),
        )
        .await;
    match refused {
        Err(kube::Error::Api(e)) => assert!(
            e.message.contains("must stay a member") && e.message.contains("spec.owner"),
            "{}",
            e.message
        ),
        other => panic!("a hand-over dropping ada without transfer was accepted: {other:?}"),
    }

    // 3. Handed to carl; ada is not kept. Her Deployment now runs as carl (one Event
    // says so), carl has the owner role and a claim, ada has neither and her pods are
    // refused; her volume is kept.
    apply_project(
        &cluster,
        &name,
        json!({"owner": carl.username, "gid": gid, "members": [
            {"username": bob.username, "role": "edit"},
            {"username": erin.username, "role": "view"}]}),
    )
    .await;
    wait_settled(&projects, &name, &carl.username).await;
    let restamped = deployments.get("web").await.expect("web");
    assert_eq!(
        stamp(&restamped),
        (Some(carl.username.clone()), Some(carl.uid)),
        "re-stamped, and mutated for carl"
    );
    wait_bound(&admin, &ns, "homestead-project-admin", &[&carl.username]).await;
    wait_claims(&admin, &ns, &private(&[&bob.username, &carl.username])).await;
    wait_admission(&admin, &ns, &ada.username, Err("not a member")).await;
    wait_admission(&admin, &ns, &carl.username, Ok(carl.uid)).await;
    let events = Api::<Event>::namespaced(admin.clone(), &ns);
    let transferred = eventually("the Transferred Event", WAIT, || {
        let events = events.clone();
        async move {
            let found: Vec<Event> = events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("Transferred"))
                .collect();
            (!found.is_empty()).then_some(found)
        }
    })
    .await;
    assert_eq!(
        transferred.len(),
        1,
        "one Event per workload: {transferred:?}"
    );
    let regarding = transferred[0].regarding.as_ref().expect("regarding");
    assert_eq!(
        (regarding.kind.as_deref(), regarding.name.as_deref()),
        (Some("Deployment"), Some("web"))
    );
    // The Deployment's controller makes carl's ReplicaSet from the new template: the
    // re-stamp passed homestead's own admission and so do the workloads made from it.
    let replicasets = Api::<ReplicaSet>::namespaced(admin.clone(), &ns);
    eventually("a ReplicaSet of carl's", WAIT, || {
        let replicasets = replicasets.clone();
        let carl = carl.username.clone();
        async move {
            replicasets
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?
                .items
                .iter()
                .any(|rs| {
                    rs.spec
                        .as_ref()
                        .and_then(|s| s.template.as_ref())
                        .and_then(|t| t.metadata.as_ref())
                        .and_then(|m| m.annotations.as_ref())
                        .and_then(|a| a.get(ANNOTATION_RUN_AS))
                        == Some(&carl)
                })
                .then_some(())
        }
    })
    .await;
    // Idempotent: a further reconcile (any edit) re-stamps nothing and says nothing more.
    let generation = restamped.metadata.generation;
    apply_project(
        &cluster,
        &name,
        json!({"owner": carl.username, "gid": gid, "members": [
            {"username": bob.username, "role": "edit"},
            {"username": erin.username, "role": "view"}], "deletionPolicy": "Keep"}),
    )
    .await;
    wait_settled(&projects, &name, &carl.username).await;
    assert_eq!(
        deployments
            .get("web")
            .await
            .expect("web")
            .metadata
            .generation,
        generation,
        "its spec not touched again"
    );
    let volumes = project_volumes(&admin, &name).await;
    assert!(
        volumes_before.iter().all(|v| volumes.contains(v)),
        "no volume deleted: {volumes_before:?} then {volumes:?}"
    );

    // 4. Deleted with Keep: the namespace, the Deployment and the claims stay, no longer
    // homestead's; every volume is still there.
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
    assert!(!labels.contains_key(LABEL_PROJECT), "{labels:?}");
    assert!(deployments.get_opt("web").await.expect("read").is_some());
    wait_claims(&admin, &ns, &private(&[&bob.username, &carl.username])).await;
    wait_bound(&admin, &ns, "homestead-project-admin", &[]).await;
    let volumes_after = project_volumes(&admin, &name).await;
    assert!(
        volumes_before.iter().all(|v| volumes_after.contains(v)),
        "no volume deleted: {volumes_before:?} then {volumes_after:?}"
    );
    // Let go: no longer a project namespace, so admission leaves its pods alone.
    eventually("admission lets go of the namespace", WAIT, || async {
        admits(&admin, &ns, &ada.username).await.ok().map(|_| ())
    })
    .await;
}

/// `allUsers`: a User created after the Project is shared with it too (its RoleBinding,
/// its claim, its pods admitted).
#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_project_shared_with_all_users_includes_users_created_later() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();
    let ada = cluster.user("pu-ada", &[]).await;
    let name = cluster.name("pu");
    let ns = format!("p-{name}");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &ns);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "allUsers": {"role": "edit"}}),
    )
    .await;
    let projects = Api::<Project>::all(admin.clone());
    wait_phase(&projects, &name, Phase::Deployed).await;

    // A new User, after the project: they get the all-users role, a claim, and their pods.
    let newcomer = cluster.user("pu-new", &[]).await;
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns);
    eventually("the newcomer bound as edit", WAIT, || {
        let bindings = bindings.clone();
        let who = newcomer.username.clone();
        async move {
            let binding = bindings.get_opt("homestead-project-edit").await.ok()??;
            subjects(&binding).contains(&who).then_some(())
        }
    })
    .await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &ns);
    let claim = format!("homestead-private-{}", newcomer.username);
    eventually("the newcomer's claim", WAIT, || {
        let (claims, claim) = (claims.clone(), claim.clone());
        async move { claims.get_opt(&claim).await.ok()?.map(|_| ()) }
    })
    .await;
    let member = client_as(&newcomer.username).await;
    wait_admitting(&member, &ns, newcomer.uid).await;
    // The owner keeps the owner role, not the all-users one.
    let owner = bindings
        .get("homestead-project-admin")
        .await
        .expect("admin");
    assert_eq!(subjects(&owner), std::slice::from_ref(&ada.username));
}

/// A hand-over moves every kind of workload homestead stamps, where each keeps its stamp:
/// a CronJob's job template (mutated for the new owner), an Argo Workflow's
/// `spec.podMetadata` together with the copy the workflow controller keeps in its status,
/// and a configured kind's templates (a PyTorchJob's master and workers).
#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_hand_over_moves_cronjobs_and_argo_workflows_too() {
    use k8s_openapi::api::batch::v1::CronJob;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    install_open_crd(&admin, "argoproj.io", "v1alpha1", "Workflow", "workflows").await;
    install_open_crd(&admin, "kubeflow.org", "v1", "PyTorchJob", "pytorchjobs").await;
    let config = format!(
        "{}workloadKinds:\n  - {{group: kubeflow.org, version: v1, kind: PyTorchJob, podTemplates: [/spec/pytorchReplicaSpecs/*/template]}}\n",
        cluster.default_config()
    );
    let serve = cluster.serve(ServeOptions::config(config)).await;
    serve.register_webhooks(&cluster).await;
    let ada = cluster.user("pw-ada", &[]).await;
    let bob = cluster.user("pw-bob", &[]).await;
    let name = cluster.name("pw");
    let ns = format!("p-{name}");
    cluster.delete_on_drop::<Project>(None, &name);
    cluster.delete_on_drop::<Namespace>(None, &ns);
    cluster.delete_labelled_on_drop::<PersistentVolume>(&format!("{LABEL_PROJECT}={name}"));
    let gid = ada.uid + 50_000;
    apply_project(
        &cluster,
        &name,
        json!({"owner": ada.username, "gid": gid,
               "members": [{"username": bob.username, "role": "edit"}]}),
    )
    .await;
    let projects = Api::<Project>::all(admin.clone());
    wait_settled(&projects, &name, &ada.username).await;
    let owner = client_as(&ada.username).await;
    wait_admitting(&owner, &ns, ada.uid).await;

    // ada's CronJob, and a Workflow run as ada with the controller's copy of its spec.
    let cron: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "suspend": true, "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}
    }))
    .expect("cronjob");
    Api::<CronJob>::namespaced(owner.clone(), &ns)
        .create(&PostParams::default(), &cron)
        .await
        .expect("ada's CronJob");
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow"),
        "workflows",
    );
    let workflows = Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &resource);
    let workflow: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"name": "reduce", "namespace": ns},
        "spec": {"entrypoint": "main",
                 "podMetadata": {"annotations": {ANNOTATION_RUN_AS: ada.username}},
                 "templates": [{"name": "main", "container": {"image": "busybox", "command": ["true"]}}]}
    }))
    .expect("workflow");
    workflows
        .create(&PostParams::default(), &workflow)
        .await
        .expect("a Workflow of ada's");
    workflows
        .patch(
            "reduce",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"storedWorkflowTemplateSpec": {
                "podMetadata": {"annotations": {ANNOTATION_RUN_AS: ada.username}}}}})),
        )
        .await
        .expect("the workflow controller's copy");
    // A PyTorchJob run as ada (as admission stamps hers, in both templates).
    let pytorch = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kubeflow.org", "v1", "PyTorchJob"),
        "pytorchjobs",
    );
    let replica = json!({"replicas": 1, "template": {
        "metadata": {"annotations": {ANNOTATION_RUN_AS: ada.username}},
        "spec": {"containers": [{"name": "pytorch", "image": "pytorch/pytorch:2.4.0"}]}}});
    let job: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
        "metadata": {"name": "train", "namespace": ns},
        "spec": {"pytorchReplicaSpecs": {"Master": replica, "Worker": replica}}
    }))
    .expect("pytorchjob");
    let jobs = Api::<DynamicObject>::namespaced_with(admin.clone(), &ns, &pytorch);
    jobs.create(&PostParams::default(), &job)
        .await
        .expect("ada's PyTorchJob");
    let templates = [
        "/spec/pytorchReplicaSpecs/Master/template",
        "/spec/pytorchReplicaSpecs/Worker/template",
    ];
    let stamp = |template: &str| format!("{template}/metadata/annotations/homestead.dev~1run-as");
    let stored = jobs.get("train").await.expect("train");
    for template in templates {
        assert_eq!(
            stored.data.pointer(&stamp(template)),
            Some(&json!(ada.username)),
            "{template} run as ada"
        );
    }

    // Handed to bob.
    apply_project(
        &cluster,
        &name,
        json!({"owner": bob.username, "gid": gid,
               "members": [{"username": ada.username, "role": "edit"}]}),
    )
    .await;
    wait_settled(&projects, &name, &bob.username).await;
    let cron = Api::<CronJob>::namespaced(admin.clone(), &ns)
        .get("nightly")
        .await
        .expect("nightly");
    let template = cron
        .spec
        .and_then(|s| s.job_template.spec)
        .map(|s| s.template)
        .expect("job template");
    assert_eq!(
        template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|a| a.get(ANNOTATION_RUN_AS).cloned()),
        Some(bob.username.clone())
    );
    assert_eq!(
        template
            .spec
            .and_then(|s| s.security_context)
            .and_then(|sc| sc.run_as_user),
        Some(bob.uid),
        "mutated for bob"
    );
    let reduce = workflows.get("reduce").await.expect("reduce");
    for pointer in [
        "/spec/podMetadata/annotations/homestead.dev~1run-as",
        "/status/storedWorkflowTemplateSpec/podMetadata/annotations/homestead.dev~1run-as",
    ] {
        assert_eq!(
            reduce.data.pointer(pointer),
            Some(&json!(bob.username)),
            "{pointer}"
        );
    }
    let train = jobs.get("train").await.expect("train");
    for template in templates {
        assert_eq!(
            train.data.pointer(&stamp(template)),
            Some(&json!(bob.username)),
            "{template} re-stamped"
        );
        assert_eq!(
            train
                .data
                .pointer(&format!("{template}/spec/securityContext/runAsUser")),
            Some(&json!(bob.uid)),
            "{template} mutated for bob"
        );
    }
}
