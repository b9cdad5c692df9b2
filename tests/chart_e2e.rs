//! The chart on a real cluster (`HOMESTEAD_TEST_KUBECONFIG`, cluster-admin): installed with
//! Helm's own library (helm-sdkpy) registering `webhook.url` for a `homestead serve` run
//! here, the leader repairs an edited webhook configuration, a User converges and a plain
//! Pod created as that user runs as them; uninstalling keeps the CRDs.
//!
//! The API server must reach this machine: `HOMESTEAD_TEST_WEBHOOK_HOST` (default
//! 127.0.0.1, right for kind/k3d with host networking). `HOMESTEAD_TEST_USERNAME` is the
//! kubeconfig's user, which homestead acts as (default `admin`).

#[path = "support/cluster.rs"]
mod cluster;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use cluster::{Serve, client_as, eventually, free_port, kubeconfig_path};
use homestead_core::resources::{Phase, User};

const NS: &str = "homestead-chart-e2e";
const USERNAME: &str = "chart-e2e-ada";
const UID: i64 = 41_001;

fn helm(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/chart/helm_chart.py");
    let status = Command::new("python3")
        .arg(script)
        .args(args)
        .status()
        .expect("python3 with helm-sdkpy");
    assert!(status.success(), "helm {args:?}");
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
    let kubeconfig = kubeconfig_path().display().to_string();
    helm(&["install", &kubeconfig, NS, &values.to_string()]);
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    assert!(
        crds.get_opt("users.homestead.dev")
            .await
            .expect("get")
            .is_some()
    );

    // Out of the cluster homestead acts as the kubeconfig's user, and only homestead may
    // give namespaces homestead's labels.
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "homesteadUsernames: [{}]\n",
            std::env::var("HOMESTEAD_TEST_USERNAME").unwrap_or_else(|_| "admin".into())
        ),
    )
    .expect("config");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_homestead"))
            .arg("serve")
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .arg("--config")
            .arg(&config)
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
    helm(&["uninstall", &kubeconfig, NS]);
    let crd = crds.get("users.homestead.dev").await.expect("CRD kept");
    assert_eq!(crd.name_any(), "users.homestead.dev");
}
