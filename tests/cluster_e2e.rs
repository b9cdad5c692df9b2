//! Admission end to end on a real API server: the real `homestead serve` runs on loopback
//! against the cluster in `HOMESTEAD_TEST_KUBECONFIG`, its webhooks registered by URL with
//! the chart's rules, and Users and Sessions are created, used, attacked and deleted
//! through the API server and its real controllers. See `tests/support/cluster.rs`.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use homestead_core::names::ANNOTATION_RUN_AS;
use homestead_core::resources::{Session, User};
use support::cluster::{
    Cluster, Person, Serve, ServeOptions, WAIT, client_as, client_with_groups, eventually,
    labels_of, pod, status_code, wait_admitting,
};

async fn check_user_objects(client: &Client, ada: &Person) {
    let ns = &ada.namespace;
    let namespace = Api::<Namespace>::all(client.clone())
        .get(ns)
        .await
        .expect("user namespace");
    let l = labels_of(&namespace);
    assert_eq!(l["homestead.dev/managed"], "true");
    assert_eq!(l["homestead.dev/user"], ada.username);
    assert_eq!(l["app.kubernetes.io/managed-by"], "homestead");
    let rb = Api::<RoleBinding>::namespaced(client.clone(), ns)
        .get("homestead-owner")
        .await
        .expect("RoleBinding homestead-owner");
    assert_eq!(rb.role_ref.name, "edit");
    assert_eq!(rb.subjects.expect("subjects")[0].name, ada.username);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get("homestead")
        .await
        .expect("ConfigMap homestead");
    assert_eq!(cm.data.expect("data")["uid"], ada.uid.to_string());
    for claim in ["homestead-private", "homestead-shared"] {
        let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .get(claim)
            .await
            .expect("claim");
        let volume = pvc
            .spec
            .expect("spec")
            .volume_name
            .expect("pre-bound claim");
        let pv = Api::<PersistentVolume>::all(client.clone())
            .get(&volume)
            .await
            .expect("volume");
        assert_eq!(
            pv.spec
                .expect("spec")
                .persistent_volume_reclaim_policy
                .as_deref(),
            Some("Retain")
        );
    }
}

async fn check_session_objects(client: &Client, session: &str, gid: i64, members: &[&Person]) {
    let namespace = Api::<Namespace>::all(client.clone())
        .get(session)
        .await
        .expect("session namespace");
    assert_eq!(labels_of(&namespace)["homestead.dev/session"], session);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), session)
        .get("sessionspaces")
        .await
        .expect("ConfigMap sessionspaces");
    let data = cm.data.expect("data");
    assert_eq!(data.len(), 9, "{data:?}");
    assert_eq!(data["gid"], gid.to_string());
    let names: Vec<&str> = members.iter().map(|m| m.username.as_str()).collect();
    assert_eq!(
        data["members"],
        serde_json::to_string(&names).expect("json")
    );
    Api::<ServiceAccount>::namespaced(client.clone(), session)
        .get("argo-workflow")
        .await
        .expect("ServiceAccount argo-workflow");
    let rb = Api::<RoleBinding>::namespaced(client.clone(), session)
        .get("visit-member")
        .await
        .expect("RoleBinding visit-member");
    let subjects: Vec<String> = rb
        .subjects
        .expect("subjects")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(subjects, names);
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), session);
    let mut wanted = vec!["homestead-data".to_owned(), "homestead-shared".to_owned()];
    wanted.extend(
        members
            .iter()
            .map(|m| format!("homestead-private-{}", m.username)),
    );
    for claim in wanted {
        claims
            .get(&claim)
            .await
            .unwrap_or_else(|e| panic!("session claim {claim}: {e}"));
    }
}

/// What admission did to a stored pod: (runAsUser, runAsGroup, run-as annotation).
fn identity_of(pod: &Pod) -> (Option<i64>, Option<i64>, Option<String>) {
    let sc = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default();
    let run_as = pod.annotations().get(ANNOTATION_RUN_AS).cloned();
    (sc.run_as_user, sc.run_as_group, run_as)
}

fn check_member_pod(pod: &Pod, member: &Person) {
    let spec = pod.spec.as_ref().expect("pod spec");
    let sc = spec.security_context.as_ref().expect("pod securityContext");
    assert_eq!(sc.run_as_user, Some(member.uid), "{}", pod.name_any());
    assert_eq!(sc.run_as_non_root, Some(true));
    let volumes: Vec<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    assert!(volumes.contains(&"homestead-private"), "{volumes:?}");
    let container = &spec.containers[0];
    let mounts: Vec<&str> = container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.as_str())
        .collect();
    assert!(mounts.contains(&"/private"), "{mounts:?}");
    let env: BTreeMap<String, String> = container
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(env["HOMESTEAD_USER"], member.username);
    assert_eq!(env["HOMESTEAD_UID"], member.uid.to_string());
}

fn template(labels: serde_json::Value) -> serde_json::Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
            "restartPolicy": "Always"
        }
    })
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": template(json!({"app": name}))
        }
    }))
    .expect("deployment")
}

/// The first pod labelled `app=<app>`, once a controller has made it.
async fn pod_of(admin: &Client, ns: &str, app: &str) -> Pod {
    let pods = Api::<Pod>::namespaced(admin.clone(), ns);
    eventually(
        &format!("a pod of {app} in {ns}"),
        Duration::from_secs(90),
        || {
            let pods = pods.clone();
            async move {
                pods.list(&ListParams::default().labels(&format!("app={app}")))
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .next()
            }
        },
    )
    .await
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn users_and_sessions_converge_admit_refuse_and_go_away_keeping_volumes() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();

    let ada = cluster.user("e2e-ada", &[]).await;
    let bob = cluster.user("e2e-bob", &[]).await;
    let visit = cluster.session(&[&ada, &bob]).await;
    assert_eq!(ada.namespace, format!("home-{}", ada.username));
    check_user_objects(&admin, &ada).await;
    check_session_objects(&admin, &visit.name, visit.gid, &[&ada, &bob]).await;

    // Drift: the owner's RoleBinding is deleted; the controller puts it back.
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ada.namespace);
    bindings
        .delete("homestead-owner", &DeleteParams::default())
        .await
        .expect("delete RoleBinding");
    eventually("RoleBinding repaired", WAIT, || {
        let bindings = bindings.clone();
        async move { bindings.get_opt("homestead-owner").await.ok().flatten() }
    })
    .await;

    // The owner's own pod, from her own Deployment through the real ReplicaSet controller.
    let member = client_as(&ada.username).await;
    wait_admitting(&member, &ada.namespace, ada.uid).await;
    Api::<Deployment>::namespaced(member.clone(), &ada.namespace)
        .create(&PostParams::default(), &deployment("analysis"))
        .await
        .expect("the owner may create a Deployment");
    let made = pod_of(&admin, &ada.namespace, "analysis").await;
    check_member_pod(&made, &ada);
    assert_eq!(identity_of(&made).2.as_deref(), Some(ada.username.as_str()));

    // A container asking for another uid is overwritten to the owner's, not refused.
    let pods = Api::<Pod>::namespaced(member.clone(), &ada.namespace);
    let contradicting = pod(
        &ada.namespace,
        "asks-for-root",
        json!({"securityContext": {"runAsUser": 0},
               "containers": [{"name": "c", "image": "busybox", "securityContext": {"runAsUser": 0, "runAsGroup": 0}}]}),
    );
    let stored = pods
        .create(&PostParams::default(), &contradicting)
        .await
        .expect("a contradicting uid is overwritten");
    assert_eq!(identity_of(&stored).0, Some(ada.uid));
    let container_sc = stored.spec.as_ref().expect("spec").containers[0]
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(
        (container_sc.run_as_user, container_sc.run_as_group),
        (Some(ada.uid), Some(ada.uid))
    );
    assert_eq!(container_sc.allow_privilege_escalation, Some(false));

    // What no mutation can make safe is refused, naming the field.
    let escapes = [
        (
            "privileged",
            json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}),
            "privileged",
        ),
        (
            "hostpath",
            json!({"containers": [{"name": "c", "image": "busybox"}], "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}),
            "hostPath",
        ),
        (
            "hostnetwork",
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]}),
            "hostNetwork",
        ),
        (
            "nfs",
            json!({"containers": [{"name": "c", "image": "busybox"}], "volumes": [{"name": "n", "nfs": {"server": "nfs.example.org", "path": "/"}}]}),
            "nfs",
        ),
        (
            "capability",
            json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}),
            "capabilities",
        ),
        (
            "escalation",
            json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"allowPrivilegeEscalation": true}}]}),
            "allowPrivilegeEscalation",
        ),
    ];
    for (name, spec, field) in escapes {
        let result = pods
            .create(
                &PostParams::default(),
                &pod(&ada.namespace, &format!("escape-{name}"), spec),
            )
            .await;
        let (code, message) = status_code(result, name);
        assert_eq!(code, 403, "{name}: {message}");
        assert!(
            message.contains(field),
            "{name}: the denial names {field}: {message}"
        );
    }

    // In the session namespace: a member is admitted as herself with the session gid; a
    // person who is not a member is refused by homestead even with RBAC allowing it.
    let session_pods = Api::<Pod>::namespaced(member.clone(), &visit.name);
    wait_admitting(&member, &visit.name, ada.uid).await;
    let stored = session_pods
        .create(
            &PostParams::default(),
            &pod(
                &visit.name,
                "ada-work",
                json!({"containers": [{"name": "c", "image": "busybox"}]}),
            ),
        )
        .await
        .expect("a member's pod");
    assert_eq!(
        identity_of(&stored),
        (Some(ada.uid), Some(visit.gid), Some(ada.username.clone()))
    );
    let outsider = client_with_groups(&cluster.name("mallory"), &["system:masters"]).await;
    let result = Api::<Pod>::namespaced(outsider, &visit.name)
        .create(
            &PostParams::default(),
            &pod(
                &visit.name,
                "mallory",
                json!({"containers": [{"name": "c", "image": "busybox"}]}),
            ),
        )
        .await;
    let (code, message) = status_code(result, "a non-member's pod");
    assert_eq!(code, 403, "{message}");
    assert!(
        message.contains("homestead"),
        "refused by the webhook: {message}"
    );

    // Ephemeral containers go through pods/ephemeralcontainers (which `edit` does not
    // grant; here ada has RBAC for it), and are validated too.
    let debug = json!({"spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox",
        "securityContext": {"privileged": true}}]}});
    let ada_with_rbac = client_with_groups(&ada.username, &["system:masters"]).await;
    let result = Api::<Pod>::namespaced(ada_with_rbac, &visit.name)
        .patch_subresource(
            "ephemeralcontainers",
            "ada-work",
            &PatchParams::default(),
            &Patch::Strategic(&debug),
        )
        .await;
    let (code, message) = status_code(result, "a privileged ephemeral container");
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("privileged"), "{message}");

    let volumes: Vec<String> = Api::<PersistentVolume>::all(admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=homestead"))
        .await
        .expect("list volumes")
        .items
        .into_iter()
        .map(|pv| pv.name_any())
        .filter(|n| n.contains(&ada.namespace) || n.contains(&visit.name))
        .collect();
    assert_eq!(
        volumes.len(),
        6,
        "2 of ada's, 4 of the session's: {volumes:?}"
    );

    // Deleting the User and the Session deletes their namespaces and keeps every volume.
    Api::<User>::all(admin.clone())
        .delete(&ada.username, &DeleteParams::default())
        .await
        .expect("delete User");
    Api::<Session>::all(admin.clone())
        .delete(&visit.name, &DeleteParams::default())
        .await
        .expect("delete Session");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in [ada.namespace.clone(), visit.name.clone()] {
        eventually(
            &format!("namespace {name} gone"),
            Duration::from_secs(120),
            || {
                let namespaces = namespaces.clone();
                let name = name.clone();
                async move {
                    namespaces
                        .get_opt(&name)
                        .await
                        .ok()?
                        .is_none()
                        .then_some(())
                }
            },
        )
        .await;
    }
    let pvs: Api<PersistentVolume> = Api::all(admin.clone());
    for volume in &volumes {
        let pv = pvs.get(volume).await.expect("volumes stay after delete");
        assert!(pv.metadata.deletion_timestamp.is_none(), "{volume}");
    }
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn every_workload_kind_is_admitted_through_its_real_controller() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let admin = cluster.admin.clone();
    let ada = cluster.user("wl-ada", &[]).await;
    let bob = cluster.user("wl-bob", &[]).await;
    let visit = cluster.session(&[&ada, &bob]).await;
    let ns = visit.name.as_str();
    let as_ada = client_as(&ada.username).await;
    wait_admitting(&as_ada, ns, ada.uid).await;

    // The CronJob first: its controller makes a Job at the next full minute.
    let cronjob: CronJob = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"app": "nightly"}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], "restartPolicy": "Never"}}}}}
    }))
    .expect("cronjob");
    let stored = Api::<CronJob>::namespaced(as_ada.clone(), ns)
        .create(&PostParams::default(), &cronjob)
        .await
        .expect("CronJob");
    let stamp = stored
        .spec
        .and_then(|s| s.job_template.spec)
        .and_then(|s| s.template.metadata)
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(ANNOTATION_RUN_AS).cloned());
    assert_eq!(
        stamp.as_deref(),
        Some(ada.username.as_str()),
        "the CronJob's template is stamped"
    );

    Api::<Deployment>::namespaced(as_ada.clone(), ns)
        .create(&PostParams::default(), &deployment("web"))
        .await
        .expect("Deployment");
    let job: Job = serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "once"},
        "spec": {"template": {"metadata": {"labels": {"app": "once"}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], "restartPolicy": "Never"}}}
    }))
    .expect("job");
    Api::<Job>::namespaced(as_ada.clone(), ns)
        .create(&PostParams::default(), &job)
        .await
        .expect("Job");
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": template(json!({"app": "db"}))}
    }))
    .expect("statefulset");
    Api::<StatefulSet>::namespaced(as_ada.clone(), ns)
        .create(&PostParams::default(), &statefulset)
        .await
        .expect("StatefulSet");
    // bob's Deployment in the same namespace runs as bob.
    let as_bob = client_as(&bob.username).await;
    Api::<Deployment>::namespaced(as_bob, ns)
        .create(&PostParams::default(), &deployment("bobs"))
        .await
        .expect("bob's Deployment");

    // Pods made by the ReplicaSet, Job and StatefulSet controllers (trusted controllers,
    // attributed by the stamp) run as the person who made the workload.
    for (app, person) in [("web", &ada), ("once", &ada), ("db", &ada), ("bobs", &bob)] {
        let made = pod_of(&admin, ns, app).await;
        assert_eq!(
            identity_of(&made),
            (
                Some(person.uid),
                Some(visit.gid),
                Some(person.username.clone())
            ),
            "{app}"
        );
        check_member_pod(&made, person);
    }
    let made = pod_of(&admin, ns, "nightly").await;
    assert_eq!(
        identity_of(&made),
        (Some(ada.uid), Some(visit.gid), Some(ada.username.clone())),
        "CronJob -> Job -> Pod"
    );
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn only_homestead_deletes_or_unlabels_a_managed_namespace() {
    let cluster = Cluster::exclusive().await;
    let serve = cluster.serve(ServeOptions::default()).await;
    serve.register_webhooks(&cluster).await;
    let ada = cluster.user("ns-ada", &[]).await;
    // Another cluster admin: RBAC allows everything, homestead's guard does not.
    let other_admin = client_with_groups(&cluster.name("ops"), &["system:masters"]).await;
    let namespaces: Api<Namespace> = Api::all(other_admin.clone());

    let result = namespaces
        .delete(&ada.namespace, &DeleteParams::default())
        .await;
    let (code, message) = status_code(result, "deleting a managed namespace");
    assert_eq!(code, 403, "{message}");
    assert!(message.contains("only homestead may delete"), "{message}");
    for (label, value) in [
        ("homestead.dev/managed", serde_json::Value::Null),
        ("homestead.dev/managed", json!("false")),
        ("homestead.dev/user", json!("someone-else")),
    ] {
        let patch = json!({"metadata": {"labels": {label: value}}});
        let result = namespaces
            .patch(
                &ada.namespace,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await;
        let (code, message) = status_code(result, &format!("changing {label}"));
        assert_eq!(code, 403, "{label}={value}: {message}");
    }
    // Labels that are not homestead's stay the namespace owner's business.
    let patch = json!({"metadata": {"labels": {"team": "optics"}}});
    namespaces
        .patch(
            &ada.namespace,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("another label may change");

    // Deleting the User: homestead deletes the namespace itself.
    Api::<User>::all(cluster.admin.clone())
        .delete(&ada.username, &DeleteParams::default())
        .await
        .expect("delete User");
    let admin_namespaces: Api<Namespace> = Api::all(cluster.admin.clone());
    eventually("the namespace deleted by homestead", WAIT, || {
        let namespaces = admin_namespaces.clone();
        let name = ada.namespace.clone();
        async move {
            let ns = namespaces.get_opt(&name).await.ok()?;
            ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())
                .then_some(())
        }
    })
    .await;
}

/// Copies the serving pair of Secret `name` into `dir` as the kubelet updates a Secret
/// volume: the files are links into `..data`, a link swapped atomically to a new
/// directory, so a reader never sees one file new and the other old.
async fn sync_secret_volume(secrets: Api<Secret>, name: String, dir: PathBuf) {
    let mut last: Option<Vec<u8>> = None;
    let mut generation = 0u32;
    loop {
        if let Ok(Some(secret)) = secrets.get_opt(&name).await {
            let data = secret.data.unwrap_or_default();
            if let (Some(cert), Some(key)) = (data.get("tls.crt"), data.get("tls.key"))
                && last.as_deref() != Some(cert.0.as_slice())
            {
                generation += 1;
                let version = dir.join(format!("..{generation}"));
                std::fs::create_dir_all(&version).expect("mkdir");
                std::fs::write(version.join("tls.crt"), &cert.0).expect("write");
                std::fs::write(version.join("tls.key"), &key.0).expect("write");
                let tmp = dir.join("..data_tmp");
                let _ = std::fs::remove_file(&tmp);
                std::os::unix::fs::symlink(format!("..{generation}"), &tmp).expect("link");
                std::fs::rename(&tmp, dir.join("..data")).expect("swap");
                for file in ["tls.crt", "tls.key"] {
                    let link = dir.join(file);
                    if !link.is_symlink() {
                        let _ = std::fs::remove_file(&link);
                        std::os::unix::fs::symlink(format!("..data/{file}"), &link).expect("link");
                    }
                }
                last = Some(cert.0.clone());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn self_mode_rotates_the_ca_and_serving_certificates_without_a_failed_request() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    // homestead's own namespace: the certificate Secret is kept there.
    let home = cluster.name("rotation");
    cluster.delete_on_drop::<Namespace>(None, &home);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": home}})).expect("ns");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");

    // Lifetimes short enough to see a whole CA rotation within a minute: the CA is
    // replaced two thirds into its 60 s (a new CA trusted first, the signer switched after
    // the 5 s overlap, the old CA dropped after another), serving certificates renewed
    // two thirds into their 30 s.
    let mut serve = Serve::prepare();
    let configuration = cluster.name("homestead");
    let args = [
        "--cert-mode",
        "self",
        "--webhook-configuration",
        &configuration,
        "--webhook-url",
        &serve.url(),
        "--webhook-namespace",
        &home,
        "--ca-validity",
        "60s",
        "--cert-validity",
        "30s",
        "--cert-overlap",
        "5s",
        "--cert-check-interval",
        "1s",
    ];
    serve
        .launch(&cluster, ServeOptions::default().args(&args))
        .await;
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &home);
    let kubelet = tokio::spawn(sync_secret_volume(
        secrets.clone(),
        "homestead-webhook-tls".into(),
        serve.certs(),
    ));
    let _kubelet = AbortOnDrop(kubelet);
    // Registered as the chart does (with the starting CA); homestead then keeps their
    // bundles equal to its Secret's. Waits until homestead itself answers through them.
    assert_eq!(serve.register_webhooks(&cluster).await, configuration);

    // Settled: every webhook of both configurations carries the Secret's CA bundle.
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let validating: Api<ValidatingWebhookConfiguration> = Api::all(admin.clone());
    let published = || async {
        let secret = secrets.get_opt("homestead-webhook-tls").await.ok()??;
        let bundle = secret.data?.get("ca.crt")?.0.clone();
        let m = mutating.get(&configuration).await.ok()?;
        let v = validating.get(&configuration).await.ok()?;
        let mut bundles = m
            .webhooks
            .iter()
            .flatten()
            .map(|w| w.client_config.ca_bundle.clone());
        let all_m = bundles.all(|b| b.map(|b| b.0) == Some(bundle.clone()));
        let mut bundles = v
            .webhooks
            .iter()
            .flatten()
            .map(|w| w.client_config.ca_bundle.clone());
        let all_v = bundles.all(|b| b.map(|b| b.0) == Some(bundle.clone()));
        (all_m && all_v).then_some(())
    };
    eventually("the Secret's CA published", WAIT, published).await;
    let ada = cluster.user("rot-ada", &[]).await;
    let member = client_as(&ada.username).await;
    wait_admitting(&member, &ada.namespace, ada.uid).await;
    let flow_started = serve.log().len();

    // Requests flow through the API server for 70 s while the certificates rotate: two
    // callers, each a dry-run pod create the webhooks mutate and validate.
    let deadline = Instant::now() + Duration::from_secs(70);
    let caller = |name: &'static str| {
        let pods: Api<Pod> = Api::namespaced(member.clone(), &ada.namespace);
        let probe = pod(
            &ada.namespace,
            name,
            json!({"containers": [{"name": "c", "image": "busybox"}]}),
        );
        async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while Instant::now() < deadline {
                let params = PostParams {
                    dry_run: true,
                    field_manager: None,
                };
                match pods.create(&params, &probe).await {
                    Ok(_) => ok += 1,
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (ok, failed)
        }
    };
    let ((ok_a, failed_a), (ok_b, failed_b)) = tokio::join!(caller("flow-a"), caller("flow-b"));
    let failed: Vec<String> = failed_a.into_iter().chain(failed_b).collect();
    assert!(
        failed.is_empty(),
        "{} requests failed: {failed:#?}",
        failed.len()
    );
    assert!(ok_a + ok_b > 100, "requests flowed: {}", ok_a + ok_b);

    // ...and they did rotate, every step of a CA rotation and serving renewals.
    let log = serve.log();
    let during = &log[flow_started..];
    for step in ["AddCa", "SwitchSigner", "DropRetiredCas", "RenewServing"] {
        assert!(
            during
                .lines()
                .any(|l| l.contains("rotating webhook certificates") && l.contains(step)),
            "no {step} while requests flowed:\n{during}"
        );
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
