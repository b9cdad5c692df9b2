//! The chart on a real cluster (`HOMESTEAD_TEST_KUBECONFIG`, cluster-admin): installed with
//! Helm's own library (helm-sdkpy) registering `webhook.url` for a `homestead serve` run
//! here, the leader repairs an edited webhook configuration, a User converges and a plain
//! Pod created as that user runs as them; uninstalling keeps the CRDs.
//!
//! The API server must reach this machine: `HOMESTEAD_TEST_WEBHOOK_HOST` (default
//! 127.0.0.1, right for kind/k3d with host networking).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};
use serde_json::json;

use homestead::core::resources::{Phase, User};

const NS: &str = "homestead-chart-e2e";
const USERNAME: &str = "chart-e2e-ada";
const UID: i64 = 41_001;

fn kubeconfig() -> PathBuf {
    PathBuf::from(
        std::env::var("HOMESTEAD_TEST_KUBECONFIG")
            .expect("set HOMESTEAD_TEST_KUBECONFIG to a kubeconfig with cluster-admin"),
    )
}

async fn client_as(user: Option<&str>) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = Kubeconfig::read_from(kubeconfig()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable");
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    }
    Client::try_from(config).expect("client")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn helm(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/helm_chart.py");
    let status = Command::new("python3")
        .arg(script)
        .args(args)
        .status()
        .expect("python3 with helm-sdkpy");
    assert!(status.success(), "helm {args:?}");
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn chart_installs_registers_the_url_repairs_and_admits() {
    let admin = client_as(None).await;
    let host = std::env::var("HOMESTEAD_TEST_WEBHOOK_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let status = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(["certs", "--out"])
        .arg(&certs)
        .args(["--ip", &host])
        .status()
        .expect("homestead certs");
    assert!(status.success());
    let ca = std::fs::read_to_string(certs.join("ca.crt")).expect("ca.crt");
    let (port, admin_port) = (free_port(), free_port());
    let url = format!("https://{host}:{port}");

    // Install: CRDs, RBAC, the webhook configurations pointing at `url`; no Deployment.
    let values = json!({
        "fullnameOverride": "homestead",
        "webhook": {"url": url, "inCluster": false},
        "certs": {"mode": "external", "external": {"caBundle": ca}},
    });
    let kubeconfig_path = kubeconfig().display().to_string();
    helm(&["install", &kubeconfig_path, NS, &values.to_string()]);
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    assert!(
        crds.get_opt("users.homestead.dev")
            .await
            .expect("get")
            .is_some()
    );

    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_homestead"))
            .arg("serve")
            .arg("--kubeconfig")
            .arg(kubeconfig())
            .arg("--certs-dir")
            .arg(&certs)
            .args(["--listen", &format!("0.0.0.0:{port}")])
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(["--lease-namespace", NS, "--identity", "chart-e2e"])
            .args([
                "--webhook-namespace",
                NS,
                "--webhook-configuration",
                "homestead",
            ])
            .args(["--webhook-url", &url, "--cert-mode", "external"])
            .arg(format!("--ca-bundle={ca}"))
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("homestead serve"),
    );

    // An edit that would open kube-system to the webhook is repaired by the leader.
    let mutating: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let edited = json!({"webhooks": [{"name": "mutate.homestead.dev", "timeoutSeconds": 29}]});
    mutating
        .patch(
            "homestead",
            &PatchParams::default(),
            &Patch::Strategic(&edited),
        )
        .await
        .expect("edit the configuration");
    let mutate_url = format!("{url}/mutate");
    eventually("configuration repaired", Duration::from_secs(90), || {
        let mutating = mutating.clone();
        let mutate_url = mutate_url.clone();
        async move {
            let m = mutating.get("homestead").await.ok()?;
            let w = &m.webhooks.as_ref()?[0];
            (w.timeout_seconds == Some(5)
                && w.client_config.url.as_deref() == Some(mutate_url.as_str()))
            .then_some(())
        }
    })
    .await;

    // A User converges; a plain Pod created as that user runs as them.
    let users: Api<User> = Api::all(admin.clone());
    let user: User = serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": USERNAME},
        "spec": {"username": USERNAME, "uid": UID, "gid": UID}
    }))
    .expect("user");
    users
        .patch(
            USERNAME,
            &PatchParams::apply("chart-e2e").force(),
            &Patch::Apply(&user),
        )
        .await
        .expect("create User");
    let ns = eventually("User deployed", Duration::from_secs(120), || {
        let users = users.clone();
        async move {
            let u = users.get(USERNAME).await.ok()?;
            let status = u.status?;
            (status.phase == Some(Phase::Deployed)).then_some(status.namespace?)
        }
    })
    .await;
    let member = client_as(Some(USERNAME)).await;
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "chart-e2e"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                 "restartPolicy": "Never"}
    }))
    .expect("pod");
    let created = Api::<Pod>::namespaced(member, &ns)
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod admitted");
    let sc = created
        .spec
        .and_then(|s| s.security_context)
        .expect("securityContext");
    assert_eq!(
        sc.run_as_user,
        Some(UID),
        "{}",
        created.metadata.name.unwrap_or_default()
    );

    // Uninstall keeps the CRDs (Helm never deletes a chart's crds/).
    users
        .delete(USERNAME, &DeleteParams::default())
        .await
        .expect("delete User");
    helm(&["uninstall", &kubeconfig_path, NS]);
    let crd = crds.get("users.homestead.dev").await.expect("CRD kept");
    assert_eq!(crd.name_any(), "users.homestead.dev");
}
