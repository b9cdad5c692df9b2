//! The Helm chart, rendered by Helm's own engine (helm-sdkpy, see
//! tests/chart/helm_chart.py): CRDs equal to the code, RBAC without wildcards, webhooks
//! that never select kube-system or homestead's namespace and that equal what the leader
//! keeps, and a Deployment fit to run.
//!
//! Needs `python3` with `helm-sdkpy` (`pip install --ignore-requires-python helm-sdkpy`,
//! done by tests/run.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, FromArgMatches, Parser};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use homestead::webhooks::{WebhookArgs, WebhookSettings};
use homestead_core::config::Config;
use homestead_core::resources::{Project, Session, User};
use homestead_core::webhooks::{self, KindRule, normalize_mutating, normalize_validating};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("manifests/chart/homestead")
}

/// Renders the chart with `values` merged over its defaults.
fn render(values: &Value) -> Vec<Value> {
    let script = root().join("tests/chart/helm_chart.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg("render")
        .arg(values.to_string())
        .output()
        .expect("python3 runs (the chart is rendered with helm-sdkpy)");
    assert!(
        out.status.success(),
        "rendering the chart with {values} failed (is helm-sdkpy installed? \
         pip install --ignore-requires-python helm-sdkpy):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("rendered YAML parses");
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn base(namespace: &str) -> Value {
    json!({"namespaceOverride": namespace, "fullnameOverride": "homestead"})
}

fn merge(mut a: Value, b: Value) -> Value {
    match (&mut a, b) {
        (Value::Object(a_map), Value::Object(b_map)) => {
            for (k, v) in b_map {
                let merged = merge(a_map.remove(&k).unwrap_or(Value::Null), v);
                a_map.insert(k, merged);
            }
            a
        }
        (_, b) => b,
    }
}

fn test_ca_pem() -> String {
    homestead::certs::CertificateAuthority::generate(
        "test CA",
        std::time::Duration::from_secs(86400),
    )
    .expect("ca")
    .cert_pem()
    .to_owned()
}

/// (name, release namespace, values) of every shape of install.
fn scenarios() -> Vec<(&'static str, &'static str, Value)> {
    let ca = test_ca_pem();
    vec![
        ("defaults", "homestead", json!({})),
        (
            "other namespace",
            "tenant-ops",
            json!({"webhook": {"excludedNamespaces": ["monitoring"]}}),
        ),
        (
            "certManager",
            "homestead",
            json!({"certs": {"mode": "certManager"}}),
        ),
        (
            "external",
            "homestead",
            json!({"certs": {"mode": "external", "secretName": "site-tls", "external": {"caBundle": ca}}}),
        ),
        (
            "url",
            "homestead",
            json!({"webhook": {"url": "https://192.0.2.10:8443"}}),
        ),
        (
            "url only",
            "homestead",
            json!({"webhook": {"url": "https://192.0.2.10:8443", "inCluster": false}, "certs": {"mode": "external", "external": {"caBundle": ca}}}),
        ),
        (
            "workload kinds",
            "homestead",
            json!({"config": {"workloadKinds": [
                {"group": "kubeflow.org", "version": "v1", "kind": "PyTorchJob", "podTemplates": ["/spec/pytorchReplicaSpecs/*/template"]},
                {"group": "sparkoperator.k8s.io", "version": "v1beta2", "kind": "SparkApplication", "resource": "sparkapplications", "podTemplates": ["/spec/driver/template", "/spec/executor/template"]},
                {"group": "example.org", "version": "v1", "kind": "Policy", "podTemplates": ["/spec/template"]}
            ]}}),
        ),
        (
            "custom roles",
            "homestead",
            json!({"config": {"controller": {"rbac": {"userClusterRole": "homestead-user", "workflowClusterRole": "argo-workflow"}}}, "rbac": {"extraBindableClusterRoles": ["view"]}}),
        ),
    ]
}

type Rendered = (&'static str, &'static str, Value, Vec<Value>);

/// Every scenario rendered once for all tests of this binary.
fn rendered() -> Vec<Rendered> {
    static RENDERED: std::sync::OnceLock<Vec<Rendered>> = std::sync::OnceLock::new();
    RENDERED
        .get_or_init(|| {
            scenarios()
                .into_iter()
                .map(|(name, ns, values)| {
                    let docs = render(&merge(base(ns), values.clone()));
                    (name, ns, values, docs)
                })
                .collect()
        })
        .clone()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn one<T: serde::de::DeserializeOwned>(docs: &[Value], kind: &str) -> T {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "one {kind}");
    serde_json::from_value(found[0].clone()).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

// ---------------------------------------------------------------------------------------
// CRDs

fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn crds_in(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    entries.sort();
    for path in entries {
        for doc in yaml_docs(&path) {
            let name = doc["metadata"]["name"]
                .as_str()
                .expect("CRD name")
                .to_owned();
            assert!(
                out.insert(name.clone(), doc).is_none(),
                "{name} is defined twice in {}",
                dir.display()
            );
        }
    }
    out
}

fn code_crds() -> BTreeMap<String, Value> {
    [User::crd(), Session::crd(), Project::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().expect("name");
            (name, serde_json::to_value(crd).expect("json"))
        })
        .collect()
}

#[test]
fn chart_crds_are_the_crds_of_the_code() {
    let chart = crds_in(&chart().join("crds"));
    let code = code_crds();
    assert_eq!(
        chart.keys().collect::<Vec<_>>(),
        code.keys().collect::<Vec<_>>(),
        "CRDs in the chart"
    );
    for (name, crd) in &code {
        assert!(
            chart[name] == *crd,
            "manifests/chart/homestead/crds has drifted from the code for {name}: regenerate with `homestead crds`"
        );
    }
}

#[test]
fn chart_crd_files_are_the_text_of_homestead_crds() {
    use homestead::commands::crds::{crd_file_name, crd_yaml, crds};
    let mut stale = Vec::new();
    let mut expected = BTreeSet::new();
    for crd in crds() {
        let file = crd_file_name(&crd);
        let want = crd_yaml(&crd).expect("CRD serializes");
        match std::fs::read_to_string(chart().join("crds").join(&file)) {
            Ok(have) if have == want => {}
            Ok(_) => stale.push(format!("crds/{file} differs from the code")),
            Err(e) => stale.push(format!("crds/{file} cannot be read: {e}")),
        }
        expected.insert(file);
    }
    let present: BTreeSet<String> = std::fs::read_dir(chart().join("crds"))
        .expect("crds")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(present, expected, "files in the chart's crds/");
    assert!(
        stale.is_empty(),
        "{}\nregenerate with: cargo run -- crds --out manifests/chart/homestead/crds",
        stale.join("\n")
    );
}

#[test]
fn manifests_crds_and_chart_crds_are_the_same_resources() {
    let manifests = crds_in(&root().join("manifests/crds"));
    let chart = crds_in(&chart().join("crds"));
    let code = code_crds();
    assert_eq!(manifests, code, "manifests/crds differs from the code");
    assert_eq!(
        chart, manifests,
        "the chart's crds/ differs from manifests/crds"
    );
}

// ---------------------------------------------------------------------------------------
// RBAC

const ALLOWED_VERBS: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete", "bind",
];

#[test]
fn rbac_grants_no_wildcard_and_only_what_homestead_uses() {
    for (scenario, ns, _values, docs) in rendered() {
        let roles: Vec<&Value> = of_kind(&docs, "ClusterRole")
            .into_iter()
            .chain(of_kind(&docs, "Role"))
            .collect();
        assert_eq!(roles.len(), 2, "{scenario}: one ClusterRole and one Role");
        for role in roles {
            let rules: Vec<PolicyRule> =
                serde_json::from_value(role["rules"].clone()).expect("rules");
            for rule in &rules {
                let all = rule
                    .api_groups
                    .iter()
                    .flatten()
                    .chain(rule.resources.iter().flatten())
                    .chain(rule.verbs.iter())
                    .chain(rule.resource_names.iter().flatten())
                    .chain(rule.non_resource_urls.iter().flatten());
                for item in all {
                    assert!(!item.contains('*'), "{scenario}: wildcard in {rule:?}");
                }
                assert!(rule.non_resource_urls.is_none(), "{scenario}: {rule:?}");
                for verb in &rule.verbs {
                    assert!(
                        ALLOWED_VERBS.contains(&verb.as_str()),
                        "{scenario}: verb {verb} in {rule:?}"
                    );
                }
                let resources: Vec<&str> = rule
                    .resources
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                // bind only on named ClusterRoles.
                if rule.verbs.iter().any(|v| v == "bind") {
                    assert_eq!(rule.verbs, ["bind"], "{scenario}");
                    assert_eq!(resources, ["clusterroles"], "{scenario}");
                    let names: BTreeSet<&str> = rule
                        .resource_names
                        .iter()
                        .flatten()
                        .map(String::as_str)
                        .collect();
                    // The project roles' ClusterRoles (admin, edit, view by default) too.
                    let mut want: BTreeSet<&str> = BTreeSet::from(["admin", "edit", "view"]);
                    if scenario == "custom roles" {
                        want = BTreeSet::from([
                            "admin",
                            "argo-workflow",
                            "edit",
                            "homestead-user",
                            "view",
                        ]);
                    }
                    assert_eq!(names, want, "{scenario}: bind resourceNames");
                }
                // Webhook configurations only by name.
                if resources
                    .iter()
                    .any(|r| r.ends_with("webhookconfigurations"))
                {
                    assert_eq!(
                        rule.resource_names.as_deref(),
                        Some(&["homestead".to_owned()][..]),
                        "{scenario}"
                    );
                    assert!(!rule.verbs.iter().any(|v| v == "create" || v == "delete"));
                }
                // User data is never deleted: no delete on PersistentVolumes.
                if resources.contains(&"persistentvolumes") {
                    assert!(!rule.verbs.iter().any(|v| v == "delete"), "{scenario}");
                }
                // Nothing that hands out more than homestead has.
                for r in &resources {
                    assert!(
                        !["clusterroles", "roles"].contains(r) || rule.verbs == ["bind"],
                        "{scenario}: {rule:?}"
                    );
                    assert!(
                        !["clusterrolebindings", "nodes", "pods/exec"].contains(r),
                        "{scenario}: {rule:?}"
                    );
                    // Pods only read (the pod index), never changed.
                    if *r == "pods" {
                        assert_eq!(rule.verbs, ["list", "watch"], "{scenario}: {rule:?}");
                    }
                    // Workloads only listed and re-stamped on a hand-over: never made or
                    // deleted (a Job's template cannot change: only listed).
                    if [
                        "deployments",
                        "statefulsets",
                        "daemonsets",
                        "replicasets",
                        "cronjobs",
                        "workflows",
                        "cronworkflows",
                        "workflowtemplates",
                    ]
                    .contains(r)
                    {
                        assert_eq!(rule.verbs, ["list", "patch"], "{scenario}: {rule:?}");
                    }
                    if *r == "jobs" {
                        assert_eq!(rule.verbs, ["list"], "{scenario}: {rule:?}");
                    }
                }
            }
            if role["kind"] == "Role" {
                assert_eq!(role["metadata"]["namespace"], ns, "{scenario}");
                // Secrets and Leases in the Role: everything but create is by name.
                for rule in &rules {
                    if rule.verbs != ["create"] {
                        assert!(rule.resource_names.is_some(), "{scenario}: {rule:?}");
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Webhooks

fn selector_excludes(selector: &Value, namespaces: &[&str]) -> bool {
    selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| {
            e["key"] == "kubernetes.io/metadata.name"
                && e["operator"] == "NotIn"
                && namespaces.iter().all(|ns| {
                    e["values"]
                        .as_array()
                        .is_some_and(|v| v.iter().any(|x| x == ns))
                })
        })
}

#[test]
fn webhooks_never_select_kube_system_or_the_release_namespace() {
    for (scenario, ns, values, docs) in rendered() {
        let configs: Vec<&Value> = of_kind(&docs, "MutatingWebhookConfiguration")
            .into_iter()
            .chain(of_kind(&docs, "ValidatingWebhookConfiguration"))
            .collect();
        assert_eq!(configs.len(), 2, "{scenario}");
        let mut names = Vec::new();
        for config in configs {
            let mutating = config["kind"] == "MutatingWebhookConfiguration";
            for w in config["webhooks"].as_array().expect("webhooks") {
                let name = w["name"].as_str().expect("name");
                names.push(name.to_owned());
                let rules = w["rules"].as_array().expect("rules");
                let namespaced = rules.iter().any(|r| r["scope"] == "Namespaced");
                let on_namespaces = rules.iter().any(|r| {
                    r["resources"]
                        .as_array()
                        .is_some_and(|rs| rs.iter().any(|x| x == "namespaces"))
                });
                if namespaced || on_namespaces {
                    assert!(
                        selector_excludes(&w["namespaceSelector"], &["kube-system", ns]),
                        "{scenario}: {name} may select kube-system or {ns}"
                    );
                }
                if namespaced {
                    assert_eq!(
                        w["namespaceSelector"]["matchLabels"]["homestead.dev/managed"], "true",
                        "{scenario}: {name} must select only managed namespaces"
                    );
                }
                if on_namespaces {
                    assert_eq!(
                        w["objectSelector"]["matchExpressions"],
                        json!([{"key": "homestead.dev/managed", "operator": "Exists"}]),
                        "{scenario}: {name}"
                    );
                }
                if name == webhooks::OWNED {
                    assert!(
                        selector_excludes(&w["namespaceSelector"], &["kube-system", ns]),
                        "{scenario}: {name} may select kube-system or {ns}"
                    );
                    assert_eq!(
                        w["objectSelector"]["matchLabels"],
                        json!({"app.kubernetes.io/managed-by": "homestead"}),
                        "{scenario}: {name} must select only objects labelled homestead's"
                    );
                }
                if scenario == "other namespace" && (namespaced || on_namespaces) {
                    assert!(selector_excludes(&w["namespaceSelector"], &["monitoring"]));
                }
                assert_eq!(w["failurePolicy"], "Fail", "{scenario}: {name}");
                assert_eq!(w["sideEffects"], "None", "{scenario}: {name}");
                assert_eq!(w["timeoutSeconds"], 5, "{scenario}: {name}");
                assert_eq!(w["admissionReviewVersions"], json!(["v1"]));
                if mutating {
                    assert_eq!(w["reinvocationPolicy"], "IfNeeded", "{scenario}: {name}");
                }
                let client = &w["clientConfig"];
                if values["webhook"]["url"].is_string() {
                    assert!(client["service"].is_null(), "{scenario}");
                    assert!(
                        client["url"]
                            .as_str()
                            .is_some_and(|u| u.starts_with("https://192.0.2.10:8443/"))
                    );
                } else {
                    assert_eq!(client["service"]["namespace"], ns, "{scenario}");
                    assert!(client["url"].is_null(), "{scenario}");
                }
            }
        }
        names.sort();
        assert_eq!(
            names,
            [
                webhooks::MUTATE,
                webhooks::NAMESPACES,
                webhooks::OWNED,
                webhooks::RESOURCES,
                webhooks::VALIDATE
            ],
            "{scenario}"
        );
    }
}

/// Turns the rendered Deployment's `HOMESTEAD_*`/`POD_NAMESPACE` environment into the
/// flags `serve` would see, through clap's own view of which env feeds which flag.
fn settings_from_deployment(deployment: &Deployment, namespace: &str) -> WebhookSettings {
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        webhooks: WebhookArgs,
    }
    let command = Cli::command();
    let container = &deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
        .containers[0];
    let mut argv = vec!["homestead".to_owned()];
    for env in container.env.iter().flatten() {
        let value = match (&env.value, env.name.as_str()) {
            (Some(v), _) => v.clone(),
            (None, "POD_NAMESPACE" | "HOMESTEAD_NAMESPACE") => namespace.to_owned(),
            _ => continue,
        };
        let arg = command
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == env.name.as_str()));
        if let Some(arg) = arg {
            argv.push(format!("--{}={value}", arg.get_long().expect("long flag")));
        }
    }
    let matches = command.try_get_matches_from(&argv).expect("flags parse");
    let args = WebhookArgs::from_arg_matches(&matches).expect("args");
    WebhookSettings::from_args(&args).expect("settings")
}

/// The controller may list and patch every kind a hand-over re-stamps (the built-in ones
/// and the configured `workloadKinds`), and only list Jobs.
#[test]
fn rbac_lets_a_hand_over_reach_every_stamped_kind() {
    use homestead_core::handover::StampedKind;
    for (scenario, _ns, _values, docs) in rendered() {
        let Some(role) = of_kind(&docs, "ClusterRole").into_iter().next() else {
            continue;
        };
        let rules: Vec<PolicyRule> = serde_json::from_value(role["rules"].clone()).expect("rules");
        let config_map = of_kind(&docs, "ConfigMap");
        let config = Config::from_yaml(
            config_map[0]["data"]["config.yaml"]
                .as_str()
                .expect("config.yaml"),
        )
        .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        for kind in StampedKind::listed(&config) {
            let resource = kind.api_resource();
            let verbs: BTreeSet<&str> = rules
                .iter()
                .filter(|r| r.api_groups.iter().flatten().any(|g| *g == resource.group))
                .filter(|r| r.resources.iter().flatten().any(|x| *x == resource.plural))
                .flat_map(|r| r.verbs.iter().map(String::as_str))
                .collect();
            let want: BTreeSet<&str> = if kind == StampedKind::Job {
                BTreeSet::from(["list"])
            } else {
                BTreeSet::from(["list", "patch"])
            };
            assert_eq!(verbs, want, "{scenario}: {}", kind.as_str());
        }
    }
}

#[test]
fn chart_webhooks_are_what_the_leader_keeps() {
    for (scenario, ns, _values, docs) in rendered() {
        let deployments = of_kind(&docs, "Deployment");
        if deployments.is_empty() {
            continue; // url only: no in-cluster leader
        }
        let deployment: Deployment = one(&docs, "Deployment");
        let mut settings = settings_from_deployment(&deployment, ns);
        // The leader adds the configured kinds' rules from the configuration it reads.
        let config_map = of_kind(&docs, "ConfigMap");
        let config = Config::from_yaml(
            config_map[0]["data"]["config.yaml"]
                .as_str()
                .expect("config.yaml"),
        )
        .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        settings.registration.workload_kinds = KindRule::from_config(&config);
        let mutating: MutatingWebhookConfiguration = one(&docs, "MutatingWebhookConfiguration");
        let validating: ValidatingWebhookConfiguration =
            one(&docs, "ValidatingWebhookConfiguration");
        assert_eq!(
            mutating.metadata.name, settings.configuration,
            "{scenario}: the leader manages the configurations the chart installs"
        );
        assert_eq!(validating.metadata.name, settings.configuration);
        let bundle = settings.ca_bundle.as_deref();
        let mut want_m = webhooks::mutating(&settings.registration, bundle);
        let mut want_v = webhooks::validating(&settings.registration, bundle);
        want_m.iter_mut().for_each(normalize_mutating);
        want_v.iter_mut().for_each(normalize_validating);
        let mut have_m = mutating.webhooks.unwrap_or_default();
        let mut have_v = validating.webhooks.unwrap_or_default();
        have_m.iter_mut().for_each(normalize_mutating);
        have_v.iter_mut().for_each(normalize_validating);
        assert_eq!(
            have_m, want_m,
            "{scenario}: mutating webhooks differ from the code"
        );
        assert_eq!(
            have_v, want_v,
            "{scenario}: validating webhooks differ from the code"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Certificates by mode

#[test]
fn each_cert_mode_wires_secret_and_ca_bundle() {
    for (scenario, ns, values, docs) in rendered() {
        let mode = values["certs"]["mode"].as_str().unwrap_or("self");
        let configs: Vec<&Value> = of_kind(&docs, "MutatingWebhookConfiguration")
            .into_iter()
            .chain(of_kind(&docs, "ValidatingWebhookConfiguration"))
            .collect();
        let bundles: Vec<&Value> = configs
            .iter()
            .flat_map(|c| c["webhooks"].as_array().into_iter().flatten())
            .map(|w| &w["clientConfig"]["caBundle"])
            .collect();
        let certificates = of_kind(&docs, "Certificate");
        let deployment = of_kind(&docs, "Deployment").first().copied();
        let tls_volume = deployment.map(|d| {
            d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .expect("volumes")
                .iter()
                .find(|v| v["name"] == "tls")
                .expect("tls volume")
                .clone()
        });
        match mode {
            "self" => {
                assert!(
                    bundles.iter().all(|b| b.is_null()),
                    "{scenario}: the leader writes caBundle"
                );
                assert!(certificates.is_empty());
                let v = tls_volume.expect("deployment");
                assert_eq!(
                    v["secret"]["optional"], true,
                    "{scenario}: pods start before the leader made the Secret"
                );
                assert_eq!(v["secret"]["secretName"], "homestead-webhook-tls");
            }
            "certManager" => {
                assert!(
                    bundles.iter().all(|b| b.is_null()),
                    "{scenario}: cainjector writes caBundle"
                );
                let serving = certificates
                    .iter()
                    .find(|c| c["spec"]["isCA"] != true)
                    .expect("serving Certificate");
                let v = tls_volume.expect("deployment");
                assert_eq!(v["secret"]["secretName"], serving["spec"]["secretName"]);
                assert!(v["secret"]["optional"].is_null(), "{scenario}");
                let dns: Vec<&str> = serving["spec"]["dnsNames"]
                    .as_array()
                    .expect("dnsNames")
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    dns.contains(&format!("homestead.{ns}.svc").as_str()),
                    "{dns:?}"
                );
                let inject = format!(
                    "{ns}/{}",
                    serving["metadata"]["name"].as_str().expect("name")
                );
                for c in &configs {
                    assert_eq!(
                        c["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
                        inject.as_str()
                    );
                }
            }
            "external" => {
                let given = values["certs"]["external"]["caBundle"]
                    .as_str()
                    .expect("ca");
                let b64 = base64_encode(given.as_bytes());
                assert!(bundles.iter().all(|b| *b == b64.as_str()), "{scenario}");
                assert!(certificates.is_empty());
                if let Some(v) = tls_volume {
                    assert_eq!(v["secret"]["secretName"], "site-tls");
                }
            }
            other => panic!("unknown mode {other}"),
        }
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---------------------------------------------------------------------------------------
// Deployment and configuration

#[test]
fn deployment_is_highly_available_and_restricted() {
    let docs = render(&base("homestead"));
    let d: Deployment = one(&docs, "Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.expect("pod");
    let anti = pod
        .affinity
        .and_then(|a| a.pod_anti_affinity)
        .expect("pod anti-affinity");
    let term = &anti
        .preferred_during_scheduling_ignored_during_execution
        .expect("preferred")[0];
    assert_eq!(
        term.pod_affinity_term.topology_key,
        "kubernetes.io/hostname"
    );
    let psc = pod.security_context.expect("pod security context");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.map(|s| s.type_).as_deref(),
        Some("RuntimeDefault")
    );
    let c = &pod.containers[0];
    let sc = c
        .security_context
        .clone()
        .expect("container security context");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_owned()])
    );
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .map(|h| (h.path.clone().unwrap_or_default(), h.port.clone()))
    };
    let admin = k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("admin".into());
    assert_eq!(
        probe_path(&c.liveness_probe),
        Some(("/livez".into(), admin.clone()))
    );
    assert_eq!(
        probe_path(&c.readiness_probe),
        Some(("/readyz".into(), admin))
    );
    let resources = c.resources.clone().expect("resources");
    assert!(
        resources
            .requests
            .is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory"))
    );
    assert!(resources.limits.is_some_and(|r| r.contains_key("memory")));
    let env: BTreeMap<String, Value> = c
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), serde_json::to_value(e).expect("env")))
        .collect();
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(env["HOMESTEAD_CERT_MODE"]["value"], "self");
    let ports: BTreeMap<String, i32> = c
        .ports
        .iter()
        .flatten()
        .map(|p| (p.name.clone().unwrap_or_default(), p.container_port))
        .collect();
    assert_eq!(ports.get("admin"), Some(&8080));
    assert_eq!(ports.get("webhook"), Some(&8443));
    // The PDB keeps one replica through voluntary disruptions.
    let pdb = of_kind(&docs, "PodDisruptionBudget");
    assert_eq!(pdb.len(), 1);
    assert_eq!(pdb[0]["spec"]["minAvailable"], 1);
    // The Service targets the webhook port by name.
    let svc = of_kind(&docs, "Service");
    assert_eq!(svc[0]["spec"]["ports"][0]["targetPort"], "webhook");
}

#[test]
fn config_values_become_the_config_file_homestead_reads() {
    let config = json!({
        "usernamePrefix": "oidc:",
        "namespaces": {"user": "home-{username}"},
        "controller": {"rbac": {"userClusterRole": "homestead-user"}, "deleteNamespaces": false},
    });
    let docs = render(&merge(base("homestead"), json!({"config": config})));
    let cm = of_kind(&docs, "ConfigMap");
    assert_eq!(cm.len(), 1);
    let text = cm[0]["data"]["config.yaml"].as_str().expect("config.yaml");
    let parsed = Config::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(parsed.username_prefix, "oidc:");
    assert_eq!(parsed.controller.rbac.user_cluster_role, "homestead-user");
    assert!(!parsed.controller.delete_namespaces);
    // Defaults render a file homestead reads as the default configuration.
    let docs = render(&base("homestead"));
    let text = of_kind(&docs, "ConfigMap")[0]["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml")
        .to_owned();
    assert_eq!(
        Config::from_yaml(&text).expect("defaults"),
        Config::default()
    );
}

/// The command line each container of the rendered Deployment would run, with its
/// environment turned into flags through clap's own view of which env feeds which flag,
/// parsed by the real `homestead` CLI.
#[test]
fn every_container_command_line_parses_with_the_real_cli() {
    for (scenario, ns, _values, docs) in rendered() {
        let Some(deployment) = of_kind(&docs, "Deployment").first().copied() else {
            continue;
        };
        let deployment: Deployment =
            serde_json::from_value(deployment.clone()).expect("deployment");
        let pod = deployment
            .spec
            .and_then(|s| s.template.spec)
            .expect("pod spec");
        let containers = pod
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .chain(pod.containers);
        for container in containers {
            let args = container.args.clone().unwrap_or_default();
            let sub = args.first().cloned().expect("a subcommand");
            let root = homestead::commands::Cli::command();
            let command = root
                .find_subcommand(&sub)
                .unwrap_or_else(|| panic!("{scenario}: no subcommand {sub}"))
                .clone();
            let mut argv = vec!["homestead".to_owned()];
            argv.extend(args.iter().cloned());
            let mut unused = Vec::new();
            for env in container.env.iter().flatten() {
                let value = match (&env.value, env.name.as_str()) {
                    (Some(v), _) => v.clone(),
                    (None, "POD_NAMESPACE" | "HOMESTEAD_NAMESPACE") => ns.to_owned(),
                    _ => continue,
                };
                match command
                    .get_arguments()
                    .find(|a| a.get_env().is_some_and(|e| e == env.name.as_str()))
                {
                    Some(arg) => {
                        let long = arg.get_long().expect("long flag");
                        if arg.get_action().takes_values() {
                            argv.push(format!("--{long}={value}"));
                        } else if !["false", "0", "no", "off", ""].contains(&value.as_str()) {
                            // A switch: clap reads "false" from the environment as unset.
                            argv.push(format!("--{long}"));
                        }
                    }
                    None => unused.push(env.name.clone()),
                }
            }
            if let Err(e) = homestead::commands::Cli::try_parse_from(&argv) {
                panic!(
                    "{scenario}: container {} does not parse: {e}\n{argv:?}",
                    container.name
                );
            }
            if !unused.is_empty() {
                eprintln!(
                    "{scenario}: container {} sets variables `{sub}` does not read: {unused:?}",
                    container.name
                );
            }
        }
    }
}

/// The Lease the serve container is told to use (`HOMESTEAD_LEASE_NAME`), and the names
/// the Role lets it touch Leases by.
fn lease_wiring(docs: &[Value]) -> (String, Vec<String>) {
    let deployment: Deployment = one(docs, "Deployment");
    let serve = deployment
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.args.as_deref() == Some(&["serve".to_owned()][..]))
        .expect("a serve container");
    let lease = serve
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "HOMESTEAD_LEASE_NAME")
        .and_then(|e| e.value.clone())
        .expect("HOMESTEAD_LEASE_NAME");
    let named: Vec<String> = of_kind(docs, "Role")
        .into_iter()
        .flat_map(|role| role["rules"].as_array().cloned().unwrap_or_default())
        .filter(|rule| rule["resources"] == json!(["leases"]))
        .flat_map(|rule| {
            rule["resourceNames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    (lease, named)
}

#[test]
fn each_release_has_its_own_lease_and_may_touch_only_it() {
    for (scenario, _ns, _values, docs) in rendered() {
        if of_kind(&docs, "Deployment").is_empty() {
            continue; // webhook.url only: nothing runs in the cluster
        }
        let (lease, named) = lease_wiring(&docs);
        assert_eq!(lease, "homestead-controller", "{scenario}");
        assert_eq!(named, [lease], "{scenario}");
    }
    // A second installation in the same namespace does not share the first one's Lease.
    let docs = render(&json!({"namespaceOverride": "homestead", "fullnameOverride": "site-b"}));
    let (lease, named) = lease_wiring(&docs);
    assert_eq!(lease, "site-b-controller");
    assert_eq!(named, [lease]);
}
