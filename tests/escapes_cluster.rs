//! Issue 10's escapes against a real API server (`HOMESTEAD_TEST_KUBECONFIG`,
//! cluster-admin): the webhook configurations are exactly the ones the leader keeps
//! (`homestead_core::webhooks`, pointed at a `homestead serve` on loopback by URL),
//! and two members of one session attack each other as the API server lets them.
//!
//! `HOMESTEAD_TEST_KUBECONFIG=... cargo test --test escapes_cluster -- --ignored`
//! (`HOMESTEAD_TEST_USERNAME`: the kubeconfig's user, which homestead acts as; default
//! `admin`, the control plane's).

#[path = "support/cluster.rs"]
mod cluster;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};

use cluster::{Serve, client_as, eventually, free_port, kubeconfig_path};
use homestead_core::webhooks::{self as desired, Registration, Target};
use homestead_core::resources::{Phase, Session, User};

const MANAGER: &str = "homestead-escapes";
const CONFIGURATION: &str = "homestead-escapes";
const SESSION: &str = "ee90077-1";
const INES: &str = "esc-ines";
const TOMAS: &str = "esc-tomas";

async fn apply<K>(api: &Api<K>, name: &str, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).expect("object");
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("apply {name}: {e}"));
}

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
            let (api, name) = (api.clone(), name.clone());
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

fn start_serve(dir: &Path, port: u16, admin: u16) -> Serve {
    let certs = dir.join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["--ip", "127.0.0.1", "--dns", "localhost"])
        .status()
        .expect("homestead certs");
    assert!(status.success());
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        // Out of the cluster homestead acts as the kubeconfig's user.
        format!(
            "homesteadUsernames: [{}]\nstorage:\n  private: {{pathTemplate: '/tmp/homestead-escapes/home/{{username}}'}}\n  shared: {{pathTemplate: '/tmp/homestead-escapes/shared'}}\n",
            std::env::var("HOMESTEAD_TEST_USERNAME").unwrap_or_else(|_| "admin".into())
        ),
    )
    .expect("config");
    Serve(
        Command::new(env!("CARGO_BIN_EXE_homestead"))
            .arg("serve")
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .arg("--certs-dir")
            .arg(&certs)
            .arg("--config")
            .arg(&config)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .args(["--lease-namespace", "default", "--lease-name", MANAGER])
            .args(["--identity", "escapes"])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("homestead serve"),
    )
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

/// Registers the webhooks exactly as the leader keeps them, pointed at `port`.
async fn register(client: &Client, dir: &Path, port: u16) {
    let host = std::env::var("HOMESTEAD_TEST_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let ca = std::fs::read(dir.join("certs").join("ca.crt")).expect("ca.crt");
    let registration = Registration {
        target: Target::Url(format!("https://{host}:{port}")),
        namespace: "homestead".into(),
        excluded_namespaces: vec![],
        failure_policy: "Fail".into(),
        timeout_seconds: 10,
    };
    let mutating = MutatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(desired::mutating(&registration, Some(&ca))),
    };
    let validating = ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(desired::validating(&registration, Some(&ca))),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(
            CONFIGURATION,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&mutating),
        )
        .await
        .expect("register the mutating webhook");
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(
            CONFIGURATION,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&validating),
        )
        .await
        .expect("register the validating webhooks");
}

/// A client of a cluster admin other than homestead: `root` in `system:masters`.
async fn cluster_admin() -> Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .expect("kubeconfig usable");
    config.auth_info.impersonate = Some("root".into());
    config.auth_info.impersonate_groups =
        Some(vec!["system:masters".into(), "system:authenticated".into()]);
    Client::try_from(config).expect("client")
}

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

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": SESSION}, "spec": spec})
}

fn busybox() -> Value {
    json!({"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]})
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn members_cannot_act_as_each_other() {
    let admin = client_as(None).await;
    install_crds(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, admin_port) = (free_port(), free_port());
    let serve = start_serve(dir.path(), port, admin_port);
    wait_ready(admin_port).await;
    register(&admin, dir.path(), port).await;

    let users: Api<User> = Api::all(admin.clone());
    for (name, uid) in [(INES, 42_001), (TOMAS, 42_002)] {
        apply(
            &users,
            name,
            json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "User", "metadata": {"name": name},
                   "spec": {"username": name, "uid": uid, "gid": uid}}),
        )
        .await;
    }
    let sessions: Api<Session> = Api::all(admin.clone());
    apply(
        &sessions,
        SESSION,
        json!({"apiVersion": "homestead.dev/v1alpha1", "kind": "Session", "metadata": {"name": SESSION},
               "spec": {"proposalCode": "ee", "proposalNumber": 90077, "visit": 1, "instrument": "i03",
                        "startDate": "2024-03-15 9:00:00.0", "endDate": "2024-05-24 9:00:00.0",
                        "dataDirectory": "/tmp/homestead-escapes/data/", "gid": 292_001,
                        "members": [INES, TOMAS]}}),
    )
    .await;
    eventually("the session deployed", Duration::from_secs(120), || {
        let sessions = sessions.clone();
        async move {
            let s = sessions.get(SESSION).await.ok()?;
            (s.status?.phase? == Phase::Deployed).then_some(())
        }
    })
    .await;
    // Row 15: the namespace asks Pod Security Admission to enforce baseline.
    let ns = Api::<Namespace>::all(admin.clone())
        .get(SESSION)
        .await
        .expect("namespace");
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");

    let ines = client_as(Some(INES)).await;
    let tomas = client_as(Some(TOMAS)).await;
    let argo = client_as(Some(&format!(
        "system:serviceaccount:{SESSION}:argo-workflow"
    )))
    .await;
    let deployments = |c: &Client| Api::<Deployment>::namespaced(c.clone(), SESSION);
    let pods = |c: &Client| Api::<Pod>::namespaced(c.clone(), SESSION);
    let claims = |c: &Client| Api::<PersistentVolumeClaim>::namespaced(c.clone(), SESSION);

    // Row 1: tomas's Deployment; ines only labels it (stamp stays), then tries to change
    // its image, as does the argo-workflow ServiceAccount.
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "tomas-web", "namespace": SESSION},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": busybox()}}
    }))
    .expect("deployment");
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
        Some(TOMAS),
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
    assert!(message.contains(&format!("runs as {TOMAS}")), "{message}");
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
    assert!(message.contains(&format!("runs as {TOMAS}")), "{message}");
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
        .create(
            &PostParams::default(),
            &serde_json::from_value(pod("ines-pod", busybox())).expect("pod"),
        )
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
    assert!(message.contains(&format!("runs as {INES}")), "{message}");
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
                &Patch::Merge(json!({"metadata": {"labels": {"homestead.dev/user": TOMAS}}})),
            )
            .await,
    );

    // Row 6: exec into ines's pod. Admission runs before the API server looks for a node,
    // so homestead's refusal is what tomas sees; ines gets past admission (and then fails
    // for want of a node or an upgrade, which is not a 403 from homestead).
    let exec = |client: Client| async move {
        let request = http::Request::post(format!(
            "/api/v1/namespaces/{SESSION}/pods/ines-pod/exec?command=id&stdout=true"
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
    assert!(message.contains(&format!("only {INES}")), "{message}");
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
            "metadata": {"name": name, "namespace": SESSION, "labels": labels}, "spec": full}))
        .expect("claim")
    };
    let private = format!("homestead-private-{INES}");
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
        Api::<Namespace>::all(cluster_admin().await)
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
            .create(
                &PostParams::default(),
                &serde_json::from_value(pod("spc", spc)).expect("pod"),
            )
            .await,
    );
    assert!(
        message.contains("PodSecurity") && message.contains("baseline"),
        "{message}"
    );

    // Leave the cluster as found (volumes are Retain and stay; the test's own go).
    let _ = sessions.delete(SESSION, &DeleteParams::default()).await;
    for name in [INES, TOMAS] {
        let _ = users.delete(name, &DeleteParams::default()).await;
    }
    let _ = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .delete(CONFIGURATION, &DeleteParams::default())
        .await;
    let _ = Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .delete(CONFIGURATION, &DeleteParams::default())
        .await;
    drop(serve);
}
