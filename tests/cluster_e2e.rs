//! End to end against a real cluster: the real `homestead serve` binary runs on loopback
//! against the cluster in `HOMESTEAD_TEST_KUBECONFIG`, both webhook configurations point at
//! it by URL, and a User and a Session are created, used, attacked and deleted.
//!
//! The API server must be able to reach the webhook at `HOMESTEAD_TEST_WEBHOOK_HOST`
//! (default 127.0.0.1 — a single-node cluster on this machine, e.g. k3s). The kubeconfig's
//! user needs cluster-admin (it installs CRDs and impersonates the test users).
//!
//! `HOMESTEAD_TEST_KUBECONFIG=~/.kube/config cargo test --test cluster_e2e -- --ignored`

#[path = "support/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::json;

use cluster::{Serve, client_as, eventually, free_port, kubeconfig_path};
use homestead_core::resources::{Phase, Session, User};

const MANAGER: &str = "homestead-e2e";
const USERNAME: &str = "e2e-ada";
const UID: i64 = 40_001;
const SESSION: &str = "ee90001-1";
const SESSION_GID: i64 = 290_001;

async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [User::crd(), Session::crd()] {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply CRD");
        eventually("CRD established", Duration::from_secs(60), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let crd = api.get(&name).await.ok()?;
                crd.status?
                    .conditions?
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "storage:\n  private: {{pathTemplate: '{root}/home/{{username}}'}}\n  shared: {{pathTemplate: '{root}/shared'}}\n",
            root = "/tmp/homestead-e2e"
        ),
    )
    .expect("config");
    path
}

fn start_serve(dir: &Path, port: u16, admin: u16) -> Serve {
    let certs = dir.join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["--ip", "127.0.0.1", "--dns", "localhost"])
        .status()
        .expect("homestead certs");
    assert!(status.success());
    let child = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .arg("serve")
        .arg("--kubeconfig")
        .arg(kubeconfig_path())
        .arg("--certs-dir")
        .arg(&certs)
        .arg("--config")
        .arg(write_config(dir))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
        .args(["--lease-namespace", "default", "--identity", "e2e"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("homestead serve");
    Serve(child)
}

async fn wait_ready(admin: u16) {
    eventually("serve ready", Duration::from_secs(60), || async move {
        let out = Command::new("curl")
            .args(["-sf", &format!("http://127.0.0.1:{admin}/readyz")])
            .output()
            .ok()?;
        out.status.success().then_some(())
    })
    .await;
}

async fn register_webhooks(client: &Client, dir: &Path, port: u16) {
    let host = std::env::var("HOMESTEAD_TEST_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    use base64::Engine as _;
    let ca = std::fs::read(dir.join("certs").join("ca.crt")).expect("ca.crt");
    let ca = base64::engine::general_purpose::STANDARD.encode(ca);
    let selector = json!({"matchLabels": {"homestead.dev/managed": "true"}});
    let rules = json!([
        {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["pods", "pods/ephemeralcontainers"]},
        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
        {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
         "resources": ["jobs", "cronjobs"]}
    ]);
    let hook = |kind: &str, path: &str| {
        json!({
            "name": format!("{kind}.homestead.dev"),
            "clientConfig": {"url": format!("https://{host}:{port}/{path}"), "caBundle": ca},
            "rules": rules,
            "namespaceSelector": selector,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "failurePolicy": "Fail",
            "timeoutSeconds": 10
        })
    };
    let mut mutate = hook("mutate", "mutate");
    mutate["reinvocationPolicy"] = json!("IfNeeded");
    let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "homestead-e2e"},
        "webhooks": [mutate]
    }))
    .expect("mutating webhook configuration");
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(
            "homestead-e2e",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&mutating),
        )
        .await
        .expect("register the mutating webhook");
    let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "homestead-e2e"},
        "webhooks": [hook("validate", "validate")]
    }))
    .expect("validating webhook configuration");
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            "homestead-e2e",
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&validating),
        )
        .await
        .expect("register the validating webhook");
}

async fn wait_deployed<K>(api: &Api<K>, name: &str) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + HasPhase,
{
    eventually(
        &format!("{name} Deployed"),
        Duration::from_secs(120),
        || {
            let api = api.clone();
            let name = name.to_owned();
            async move {
                let obj = api.get(&name).await.ok()?;
                (obj.phase() == Some(Phase::Deployed)).then_some(obj)
            }
        },
    )
    .await
}

trait HasPhase {
    fn phase(&self) -> Option<Phase>;
}
impl HasPhase for User {
    fn phase(&self) -> Option<Phase> {
        self.status.as_ref().and_then(|s| s.phase)
    }
}
impl HasPhase for Session {
    fn phase(&self) -> Option<Phase> {
        self.status.as_ref().and_then(|s| s.phase)
    }
}

fn labels(ns: &Namespace) -> BTreeMap<String, String> {
    ns.metadata.labels.clone().unwrap_or_default()
}

async fn check_user_objects(client: &Client, ns: &str) {
    let namespace = Api::<Namespace>::all(client.clone())
        .get(ns)
        .await
        .expect("user namespace");
    let l = labels(&namespace);
    assert_eq!(l["homestead.dev/managed"], "true");
    assert_eq!(l["homestead.dev/user"], USERNAME);
    assert_eq!(l["app.kubernetes.io/managed-by"], "homestead");
    let rb = Api::<RoleBinding>::namespaced(client.clone(), ns)
        .get("homestead-owner")
        .await
        .expect("RoleBinding homestead-owner");
    assert_eq!(rb.role_ref.name, "edit");
    assert_eq!(rb.subjects.unwrap()[0].name, USERNAME);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get("homestead")
        .await
        .expect("ConfigMap homestead");
    assert_eq!(cm.data.unwrap()["uid"], UID.to_string());
    for claim in ["homestead-private", "homestead-shared"] {
        let pvc = Api::<PersistentVolumeClaim>::namespaced(client.clone(), ns)
            .get(claim)
            .await
            .expect("claim");
        let volume = pvc.spec.unwrap().volume_name.expect("pre-bound claim");
        let pv = Api::<PersistentVolume>::all(client.clone())
            .get(&volume)
            .await
            .expect("volume");
        assert_eq!(
            pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
    }
}

async fn check_session_objects(client: &Client) {
    let namespace = Api::<Namespace>::all(client.clone())
        .get(SESSION)
        .await
        .expect("session namespace");
    assert_eq!(labels(&namespace)["homestead.dev/session"], SESSION);
    let cm = Api::<ConfigMap>::namespaced(client.clone(), SESSION)
        .get("sessionspaces")
        .await
        .expect("ConfigMap sessionspaces");
    let data = cm.data.unwrap();
    assert_eq!(data.len(), 9, "{data:?}");
    assert_eq!(data["gid"], SESSION_GID.to_string());
    assert_eq!(data["members"], format!("[\"{USERNAME}\"]"));
    Api::<ServiceAccount>::namespaced(client.clone(), SESSION)
        .get("argo-workflow")
        .await
        .expect("ServiceAccount argo-workflow");
    let rb = Api::<RoleBinding>::namespaced(client.clone(), SESSION)
        .get("visit-member")
        .await
        .expect("RoleBinding visit-member");
    assert_eq!(rb.subjects.unwrap()[0].name, USERNAME);
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), SESSION);
    for claim in [
        "homestead-data",
        "homestead-shared",
        "homestead-private-e2e-ada",
    ] {
        claims.get(claim).await.expect("session claim");
    }
}

fn deployment(ns: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "analysis", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "analysis"}},
            "template": {
                "metadata": {"labels": {"app": "analysis"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}
            }
        }
    }))
    .expect("deployment")
}

fn pod(ns: &str, name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec
    }))
    .expect("pod")
}

async fn check_member_pod(admin: &Client, member: &Client, ns: &str) {
    Api::<Deployment>::namespaced(member.clone(), ns)
        .create(&PostParams::default(), &deployment(ns))
        .await
        .expect("a member may create a Deployment");
    let pods = Api::<Pod>::namespaced(admin.clone(), ns);
    let pod = eventually("the ReplicaSet's pod", Duration::from_secs(120), || {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels("app=analysis"))
                .await
                .ok()?
                .items
                .into_iter()
                .next()
        }
    })
    .await;
    let spec = pod.spec.expect("pod spec");
    let sc = spec.security_context.expect("pod securityContext");
    assert_eq!(sc.run_as_user, Some(UID));
    assert_eq!(sc.run_as_non_root, Some(true));
    let volumes: Vec<String> = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(
        volumes.contains(&"homestead-private".to_owned()),
        "{volumes:?}"
    );
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
    assert_eq!(env["HOMESTEAD_USER"], USERNAME);
    assert_eq!(env["HOMESTEAD_UID"], UID.to_string());
    let annotations = pod.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("homestead.dev/run-as").map(String::as_str),
        Some(USERNAME)
    );
}

async fn check_escapes_refused(member: &Client, ns: &str) {
    let pods = Api::<Pod>::namespaced(member.clone(), ns);
    let escapes = [
        (
            "root",
            json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"runAsUser": 0}}]}),
        ),
        (
            "privileged",
            json!({"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": true}}]}),
        ),
        (
            "hostpath",
            json!({"containers": [{"name": "c", "image": "busybox"}],
                   "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}),
        ),
        (
            "hostnetwork",
            json!({"hostNetwork": true, "containers": [{"name": "c", "image": "busybox"}]}),
        ),
        (
            "nfs",
            json!({"containers": [{"name": "c", "image": "busybox"}],
                   "volumes": [{"name": "n", "nfs": {"server": "nfs.example.org", "path": "/"}}]}),
        ),
    ];
    for (name, spec) in escapes {
        let err = pods
            .create(
                &PostParams::default(),
                &pod(ns, &format!("escape-{name}"), spec),
            )
            .await
            .expect_err(name);
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 403, "{name}: {status:?}");
                assert!(!status.message.is_empty(), "{name}: the denial says why");
            }
            other => panic!("{name}: unexpected {other}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn users_and_sessions_converge_admit_refuse_and_go_away_keeping_volumes() {
    let admin = client_as(None).await;
    install_crds(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, admin_port) = (free_port(), free_port());
    let serve = start_serve(dir.path(), port, admin_port);
    wait_ready(admin_port).await;
    register_webhooks(&admin, dir.path(), port).await;

    let users: Api<User> = Api::all(admin.clone());
    let sessions: Api<Session> = Api::all(admin.clone());
    let user: User = serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": USERNAME},
        "spec": {"username": USERNAME, "uid": UID, "gid": UID, "supplementalGroups": [SESSION_GID]}
    }))
    .expect("user");
    users
        .patch(
            USERNAME,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&user),
        )
        .await
        .expect("create User");
    let session: Session = serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "Session",
        "metadata": {"name": SESSION},
        "spec": {
            "proposalCode": "ee", "proposalNumber": 90001, "visit": 1, "instrument": "i03",
            "startDate": "2024-03-15 9:00:00.0", "endDate": "2024-05-24 9:00:00.0",
            "dataDirectory": "/tmp/homestead-e2e/data/ee90001-1/", "gid": SESSION_GID,
            "members": [USERNAME]
        }
    }))
    .expect("session");
    sessions
        .patch(
            SESSION,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&session),
        )
        .await
        .expect("create Session");

    let deployed = wait_deployed(&users, USERNAME).await;
    let ns = deployed
        .status
        .and_then(|s| s.namespace)
        .expect("status.namespace");
    assert_eq!(ns, format!("home-{USERNAME}"));
    wait_deployed(&sessions, SESSION).await;
    check_user_objects(&admin, &ns).await;
    check_session_objects(&admin).await;

    // Drift: delete the owner's RoleBinding; the controller puts it back.
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &ns);
    bindings
        .delete("homestead-owner", &DeleteParams::default())
        .await
        .expect("delete RoleBinding");
    eventually("RoleBinding repaired", Duration::from_secs(60), || {
        let bindings = bindings.clone();
        async move { bindings.get_opt("homestead-owner").await.ok().flatten() }
    })
    .await;

    let member = client_as(Some(USERNAME)).await;
    check_member_pod(&admin, &member, &ns).await;
    check_escapes_refused(&member, &ns).await;

    let volumes: Vec<String> = Api::<PersistentVolume>::all(admin.clone())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=homestead"))
        .await
        .expect("list volumes")
        .items
        .into_iter()
        .map(|pv| pv.name_any())
        .filter(|n| n.contains(&ns) || n.contains(SESSION))
        .collect();
    assert!(volumes.len() >= 5, "{volumes:?}");

    users
        .delete(USERNAME, &DeleteParams::default())
        .await
        .expect("delete User");
    sessions
        .delete(SESSION, &DeleteParams::default())
        .await
        .expect("delete Session");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in [ns.clone(), SESSION.to_owned()] {
        eventually(
            &format!("namespace {name} gone"),
            Duration::from_secs(180),
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

    // Clean up what the test made outside the product's own lifecycle.
    for volume in &volumes {
        let _ = pvs.delete(volume, &DeleteParams::default()).await;
    }
    let _ = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .delete("homestead-e2e", &DeleteParams::default())
        .await;
    let _ = Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .delete("homestead-e2e", &DeleteParams::default())
        .await;
    drop(serve);
}
