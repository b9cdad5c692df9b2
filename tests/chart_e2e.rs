//! The Helm chart on a real API server (`HOMESTEAD_TEST_KUBECONFIG`; see
//! `tests/support/cluster.rs`), installed with Helm's own library (helm-sdkpy, through
//! `tests/chart/helm_chart.py`):
//!
//! - with `webhook.url`, homestead runs here as the chart's own ServiceAccount with the
//!   chart's configuration, so the chart's RBAC is what it gets; the webhooks the chart
//!   registered are exercised by requests (selectors, exclusions, `failurePolicy: Fail`);
//! - in-cluster, the chart's Deployment makes restricted pods behind its Service;
//! - the README's "Running outside the cluster" commands run as written.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use homestead_core::resources::User;
use support::cluster::{
    Cluster, Serve, ServeOptions, WAIT, admin_get, client_as, client_with_groups, eventually,
    free_port, kubeconfig_path, kubeconfig_with_token, pod, service_account_token, status_code,
    wait_admitting, wait_phase, wait_validating,
};

const CHART_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/chart/helm_chart.py");

fn helm(args: &[&str]) {
    let status = Command::new("python3")
        .arg(CHART_SCRIPT)
        .args(args)
        .status()
        .expect("python3 with helm-sdkpy");
    assert!(status.success(), "helm_chart.py {args:?}");
}

/// Deletes, when the test ends, the cluster-scoped objects a release named `fullname`
/// makes and its namespace (so a failed test leaves no webhook behind).
fn remove_release_on_drop(cluster: &Cluster, namespace: &str, fullname: &str) {
    cluster.delete_on_drop::<MutatingWebhookConfiguration>(None, fullname);
    cluster.delete_on_drop::<ValidatingWebhookConfiguration>(None, fullname);
    cluster.delete_on_drop::<ClusterRole>(None, fullname);
    cluster.delete_on_drop::<ClusterRoleBinding>(None, fullname);
    cluster.delete_on_drop::<Namespace>(None, namespace);
}

fn user(username: &str, uid: i64) -> User {
    serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": username},
        "spec": {"username": username, "uid": uid, "gid": uid}
    }))
    .expect("user")
}

fn root_pod(namespace: &str, name: &str) -> Pod {
    pod(
        namespace,
        name,
        json!({"securityContext": {"runAsUser": 0},
               "containers": [{"name": "c", "image": "busybox"}]}),
    )
}

fn run_as_user(pod: &Pod) -> Option<i64> {
    pod.spec.as_ref()?.security_context.as_ref()?.run_as_user
}

/// Creates an unmanaged namespace that goes when the test ends.
async fn plain_namespace(cluster: &Cluster, base: &str) -> String {
    let name = cluster.name(base);
    cluster.delete_on_drop::<Namespace>(None, &name);
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).expect("ns");
    Api::<Namespace>::all(cluster.admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create namespace");
    name
}

async fn wait_service_account(admin: &Client, namespace: &str, name: &str) {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    eventually(&format!("ServiceAccount {namespace}/{name}"), WAIT, || {
        let accounts = accounts.clone();
        async move { accounts.get_opt(name).await.ok().flatten() }
    })
    .await;
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn the_chart_installs_what_homestead_needs_and_its_webhooks_admit() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    let ns = cluster.name("chart");
    let fullname = cluster.name("hs");
    remove_release_on_drop(&cluster, &ns, &fullname);
    let mut serve = Serve::prepare();
    let ca = String::from_utf8(serve.ca()).expect("PEM");

    // Install: CRDs, RBAC, configuration and both webhook configurations calling
    // `serve`'s URL; no Deployment.
    let values = json!({
        "fullnameOverride": fullname,
        "webhook": {"url": serve.url(), "inCluster": false},
        "certs": {"mode": "external", "external": {"caBundle": ca}},
    });
    let kubeconfig = kubeconfig_path().display().to_string();
    helm(&["install", &kubeconfig, &ns, &values.to_string()]);

    // What it made.
    let role = Api::<ClusterRole>::all(admin.clone())
        .get(&fullname)
        .await
        .expect("ClusterRole");
    for rule in role.rules.iter().flatten() {
        let words = rule.verbs.iter().chain(rule.resources.iter().flatten());
        assert!(words.clone().all(|w| w != "*"), "no wildcards: {rule:?}");
        assert!(
            !(rule
                .resources
                .iter()
                .flatten()
                .any(|r| r == "persistentvolumes")
                && rule.verbs.iter().any(|v| v == "delete")),
            "homestead may never delete a PersistentVolume: {rule:?}"
        );
    }
    Api::<ClusterRoleBinding>::all(admin.clone())
        .get(&fullname)
        .await
        .expect("ClusterRoleBinding");
    Api::<Role>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("Role");
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("RoleBinding");
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("ServiceAccount");
    let deployments = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("list");
    assert!(
        deployments.items.is_empty(),
        "webhook.inCluster=false: no Deployment"
    );
    let config = Api::<ConfigMap>::namespaced(admin.clone(), &ns)
        .get(&format!("{fullname}-config"))
        .await
        .expect("ConfigMap");
    let config = config.data.expect("data")["config.yaml"].clone();
    assert!(
        config.contains(&format!("system:serviceaccount:{ns}:{fullname}")),
        "homestead's own identity is the release's ServiceAccount: {config}"
    );
    let mutating = Api::<MutatingWebhookConfiguration>::all(admin.clone())
        .get(&fullname)
        .await
        .expect("MutatingWebhookConfiguration");
    let hook = &mutating.webhooks.as_ref().expect("webhooks")[0];
    assert_eq!(
        hook.client_config.url.as_deref(),
        Some(format!("{}/mutate", serve.url()).as_str())
    );
    assert_eq!(
        hook.client_config
            .ca_bundle
            .as_ref()
            .map(|b| b.0.as_slice()),
        Some(ca.as_bytes())
    );
    assert_eq!(hook.failure_policy.as_deref(), Some("Fail"));

    // homestead runs here exactly as a replica would: the release's ServiceAccount (a
    // token; its kubeconfig context is the release namespace, so the Lease goes there),
    // the release's configuration, Lease name and webhook settings.
    wait_service_account(&admin, &ns, &fullname).await;
    let token = service_account_token(&admin, &ns, &fullname).await;
    let as_release = kubeconfig_with_token(serve.dir.path(), &token, Some(&ns));
    let args = [
        "--lease-name",
        &format!("{fullname}-controller"),
        "--identity",
        "chart-e2e",
        "--webhook-namespace",
        &ns,
        "--webhook-configuration",
        &fullname,
        "--webhook-url",
        &serve.url(),
        "--cert-mode",
        "external",
        "--ca-bundle",
        &ca,
    ];
    let options = ServeOptions {
        kubeconfig: Some(as_release),
        ..ServeOptions::config(config)
    }
    .args(&args);
    serve.launch(&cluster, options).await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), &ns);
    let lease_name = format!("{fullname}-controller");
    eventually("the leader's Lease in the release namespace", WAIT, || {
        let (leases, lease_name) = (leases.clone(), lease_name.clone());
        async move {
            let lease = leases.get_opt(&lease_name).await.ok()??;
            (lease.spec?.holder_identity.as_deref() == Some("chart-e2e")).then_some(())
        }
    })
    .await;

    // An edit of a configuration is repaired by the leader (the chart's RBAC lets it).
    let configurations: Api<MutatingWebhookConfiguration> = Api::all(admin.clone());
    let edited = json!({"webhooks": [{"name": "mutate.homestead.dev", "timeoutSeconds": 29}]});
    configurations
        .patch(
            &fullname,
            &PatchParams::default(),
            &Patch::Strategic(&edited),
        )
        .await
        .expect("edit the configuration");
    eventually("configuration repaired", WAIT, || {
        let (configurations, fullname) = (configurations.clone(), fullname.clone());
        async move {
            let m = configurations.get(&fullname).await.ok()?;
            (m.webhooks?[0].timeout_seconds == Some(5)).then_some(())
        }
    })
    .await;
    wait_validating(&admin).await;

    // A User converges with what the chart's ClusterRole allows (namespaces, bind on
    // `edit`, volumes, claims, events), and the owner's plain pod runs as the owner.
    let username = cluster.name("chart-ada");
    let uid = cluster.uid();
    cluster.apply_user(&user(&username, uid)).await;
    let deployed = wait_phase(
        &Api::<User>::all(admin.clone()),
        &username,
        homestead_core::resources::Phase::Deployed,
    )
    .await;
    let home = deployed
        .status
        .and_then(|s| s.namespace)
        .expect("namespace");
    let owner = client_as(&username).await;
    wait_admitting(&owner, &home, uid).await;
    let stored = Api::<Pod>::namespaced(owner.clone(), &home)
        .create(&PostParams::default(), &root_pod(&home, "mine"))
        .await
        .expect("the owner's pod");
    assert_eq!(run_as_user(&stored), Some(uid), "mutated to the owner");

    // Outside managed namespaces the webhooks patch nothing: an unmanaged namespace, and
    // the release namespace even when labelled managed (always excluded).
    let plain = plain_namespace(&cluster, "plain").await;
    let label = json!({"metadata": {"labels": {"homestead.dev/managed": "true"}}});
    Api::<Namespace>::all(admin.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("label the release namespace");
    for namespace in [plain.as_str(), ns.as_str()] {
        wait_service_account(&admin, namespace, "default").await;
        let stored = Api::<Pod>::namespaced(admin.clone(), namespace)
            .create(&PostParams::default(), &root_pod(namespace, "untouched"))
            .await
            .expect("a pod outside managed namespaces");
        assert_eq!(run_as_user(&stored), Some(0), "{namespace}: not patched");
    }

    // The namespace guard the chart registered: another admin may not delete it.
    let other_admin = client_with_groups(&cluster.name("ops"), &["system:masters"]).await;
    let result = Api::<Namespace>::all(other_admin)
        .delete(&home, &DeleteParams::default())
        .await;
    assert_eq!(status_code(result, "delete a managed namespace").0, 403);

    // failurePolicy Fail: with homestead down, pods in managed namespaces are refused;
    // elsewhere nothing changes.
    serve.stop();
    let result = Api::<Pod>::namespaced(owner.clone(), &home)
        .create(&PostParams::default(), &root_pod(&home, "while-down"))
        .await;
    let (code, message) = status_code(result, "a pod while homestead is down");
    assert_eq!(code, 500, "{message}");
    assert!(message.contains("failed calling webhook"), "{message}");
    Api::<Pod>::namespaced(admin.clone(), &plain)
        .create(&PostParams::default(), &root_pod(&plain, "while-down"))
        .await
        .expect("unmanaged namespaces are not affected");

    // Back up: deleting the User deletes its namespace as homestead's own identity.
    serve.start();
    serve.wait_ready().await;
    Api::<User>::all(admin.clone())
        .delete(&username, &DeleteParams::default())
        .await
        .expect("delete User");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    eventually(
        "the user namespace deleted by homestead",
        Duration::from_secs(120),
        || {
            let (namespaces, home) = (namespaces.clone(), home.clone());
            async move {
                let ns = namespaces.get_opt(&home).await.ok()?;
                ns.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())
                    .then_some(())
            }
        },
    )
    .await;

    // Uninstalling keeps the CRDs (Helm never deletes a chart's crds/).
    helm(&["uninstall", &kubeconfig, &ns]);
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.get("users.homestead.dev").await.expect("CRD kept");
    assert!(
        Api::<MutatingWebhookConfiguration>::all(admin.clone())
            .get_opt(&fullname)
            .await
            .expect("get")
            .is_none(),
        "the uninstall removed the webhooks"
    );
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn in_cluster_the_chart_runs_two_restricted_replicas_behind_its_service() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    let ns = cluster.name("chart-in");
    let fullname = cluster.name("hsi");
    remove_release_on_drop(&cluster, &ns, &fullname);
    // The namespace enforces the restricted Pod Security Standard: the chart's pods must
    // pass it to be created at all.
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns,
        "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}))
    .expect("namespace");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    let kubeconfig = kubeconfig_path().display().to_string();
    let values = json!({"fullnameOverride": fullname});
    // No kubelet runs pods here, so nothing would turn ready: do not wait.
    helm(&[
        "install",
        &kubeconfig,
        &ns,
        &values.to_string(),
        "--no-wait",
    ]);

    let deployment = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("Deployment");
    assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let service = Api::<Service>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("Service");
    let port = service.spec.and_then(|s| s.ports).expect("ports")[0].port;
    Api::<PodDisruptionBudget>::namespaced(admin.clone(), &ns)
        .get(&fullname)
        .await
        .expect("PodDisruptionBudget");
    let validating = Api::<ValidatingWebhookConfiguration>::all(admin.clone())
        .get(&fullname)
        .await
        .expect("ValidatingWebhookConfiguration");
    for hook in validating.webhooks.iter().flatten() {
        let service = hook
            .client_config
            .service
            .as_ref()
            .expect("clientConfig.service");
        assert_eq!(
            (
                service.name.as_str(),
                service.namespace.as_str(),
                service.port
            ),
            (fullname.as_str(), ns.as_str(), Some(port))
        );
    }
    // The ReplicaSet controller makes both pods: PodSecurity (restricted) admitted them.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let made = eventually("the chart's two pods", Duration::from_secs(90), || {
        let pods = pods.clone();
        async move {
            let list = pods.list(&ListParams::default()).await.ok()?;
            (list.items.len() == 2).then_some(list.items)
        }
    })
    .await;
    for pod in made {
        let spec = pod.spec.expect("spec");
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some(fullname.as_str())
        );
        let sc = spec.security_context.expect("pod securityContext");
        assert_eq!(sc.run_as_non_root, Some(true));
    }
    // Remove the webhooks at once: no server answers them here.
    helm(&["uninstall", &kubeconfig, &ns]);
}

/// The fenced block that follows `heading` in the README, as commands (continuation
/// lines joined).
fn readme_commands(heading: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let after = &readme[readme.find(heading).expect("the README section")..];
    let block = after
        .split("```sh\n")
        .nth(1)
        .expect("a sh block")
        .split("```")
        .next()
        .expect("block");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        current.push_str(line.trim_end_matches('\\').trim());
        if line.ends_with('\\') {
            current.push(' ');
        } else {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

#[tokio::test]
#[ignore = "needs a cluster"]
async fn the_readme_recipe_for_running_outside_the_cluster_works_as_written() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    remove_release_on_drop(&cluster, "homestead", "homestead");
    cluster.delete_on_drop::<Lease>(Some("default"), "homestead-controller");
    let commands = readme_commands("**Running outside the cluster**");
    assert_eq!(commands.len(), 3, "{commands:#?}");

    // Run them in a scratch directory holding the repository's manifests, with
    // `homestead` and `helm` on PATH (helm: the same library, through helm_chart.py) and
    // a HOME whose ~/.kube/config is the test cluster's. The only changes to the text:
    // the example address 192.0.2.10 becomes 127.0.0.1 and port 8443 a free port, which
    // serve is told through HOMESTEAD_LISTEN (its admin port through HOMESTEAD_ADMIN_LISTEN).
    let scratch = tempfile::tempdir().expect("temp dir");
    let work = scratch.path().join("work");
    let bin = scratch.path().join("bin");
    let home = scratch.path().join("home");
    for dir in [&work, &bin, &home.join(".kube")] {
        std::fs::create_dir_all(dir).expect("mkdir");
    }
    std::os::unix::fs::symlink(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests"),
        work.join("manifests"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_homestead"), bin.join("homestead"))
        .expect("symlink");
    std::fs::write(
        bin.join("helm"),
        format!("#!/bin/sh\nexec python3 {CHART_SCRIPT} helm \"$@\"\n"),
    )
    .expect("helm");
    std::fs::set_permissions(
        bin.join("helm"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    std::fs::copy(kubeconfig_path(), home.join(".kube/config")).expect("kubeconfig");
    let (port, admin_port) = (free_port(), free_port());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let shell = |command: &str| {
        let text = command
            .replace("192.0.2.10", "127.0.0.1")
            .replace(":8443", &format!(":{port}"));
        let mut sh = Command::new("bash");
        sh.arg("-c")
            .arg(format!("exec {text}"))
            .current_dir(&work)
            .env("PATH", &path)
            .env("HOME", &home)
            .env_remove("KUBECONFIG")
            .env("HOMESTEAD_LISTEN", format!("0.0.0.0:{port}"))
            .env("HOMESTEAD_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .env("NO_COLOR", "1");
        sh
    };
    for command in &commands[..2] {
        let status = shell(command).status().expect("bash");
        assert!(status.success(), "{command}");
    }
    let log = scratch.path().join("serve.log");
    let log_file = std::fs::File::create(&log).expect("log");
    let child = shell(&commands[2])
        .stdout(Stdio::from(log_file.try_clone().expect("log")))
        .stderr(Stdio::from(log_file))
        .spawn()
        .expect("homestead serve as documented");
    let serve = Running(child, log.clone());
    eventually("the documented serve to turn ready", WAIT, || async {
        matches!(admin_get(admin_port, "/readyz").await, Some((200, _))).then_some(())
    })
    .await;

    // It works: the webhook configurations the chart made answer, the leader (Lease in
    // the kubeconfig context's namespace, `default`) reconciles a User, and the owner's
    // pod runs as the owner.
    wait_validating(&admin).await;
    let username = cluster.name("readme-ada");
    let uid = cluster.uid();
    cluster.apply_user(&user(&username, uid)).await;
    let deployed = wait_phase(
        &Api::<User>::all(admin.clone()),
        &username,
        homestead_core::resources::Phase::Deployed,
    )
    .await;
    let home_ns = deployed
        .status
        .and_then(|s| s.namespace)
        .expect("namespace");
    let owner = client_as(&username).await;
    wait_admitting(&owner, &home_ns, uid).await;
    let lease = Api::<Lease>::namespaced(admin.clone(), "default")
        .get("homestead-controller")
        .await
        .expect("the Lease in the context's namespace");
    assert!(lease.spec.and_then(|s| s.holder_identity).is_some());
    let text = std::fs::read_to_string(&serve.1).expect("log");
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        warnings.is_empty(),
        "the documented run warns: {warnings:#?}"
    );

    // What the README's uninstall removes.
    let status = shell("helm uninstall homestead -n homestead")
        .status()
        .expect("bash");
    assert!(status.success());
    drop(serve);
}

/// A child process killed on drop; prints its log if the test is failing.
struct Running(std::process::Child, PathBuf);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            eprintln!("{}", std::fs::read_to_string(&self.1).unwrap_or_default());
        }
    }
}
