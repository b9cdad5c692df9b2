//! The two webhook configurations as homestead wants them — pure. The chart installs the
//! same webhooks (`tests/chart.rs` renders it and compares); the leader repairs the live
//! objects to this.
//!
//! Argo's Workflows, CronWorkflows and WorkflowTemplates are workloads here; its
//! ClusterWorkflowTemplates are validated wherever they are.
//!
//! Namespaced rules only select namespaces labelled `homestead.dev/managed=true` and
//! never `kube-system`, homestead's own namespace or any other excluded one; Users and
//! Sessions (cluster-scoped) have their own entry; Namespaces are matched by their own
//! `homestead.dev/managed` label (whatever its value), and any other object by
//! `app.kubernetes.io/managed-by=homestead`: only homestead writes those labels.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, RuleWithOperations, ServiceReference, ValidatingWebhook, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::argo;
use crate::config::Config;
use crate::desired::MANAGED_BY;
use crate::names::{LABEL_MANAGED, LABEL_MANAGED_BY};

/// Name of the mutating webhook (pods and pod templates).
pub const MUTATE: &str = "mutate.homestead.dev";
/// Name of the validating webhook for pods and pod templates.
pub const VALIDATE: &str = "validate.homestead.dev";
/// Name of the validating webhook for Users and Sessions.
pub const RESOURCES: &str = "resources.homestead.dev";
/// Name of the validating webhook for Namespaces carrying `homestead.dev/managed`.
pub const NAMESPACES: &str = "namespaces.homestead.dev";
/// Name of the validating webhook for objects labelled managed by homestead.
pub const OWNED: &str = "owned.homestead.dev";
/// Path of the mutating endpoint.
pub const MUTATE_PATH: &str = "/mutate";
/// Path of the validating endpoint.
pub const VALIDATE_PATH: &str = "/validate";
/// Namespaces no webhook ever selects, whatever the configuration says.
pub const ALWAYS_EXCLUDED: &[&str] = &["kube-system"];

/// Where the API server sends reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The in-cluster Service.
    Service {
        /// Service name.
        name: String,
        /// Its namespace.
        namespace: String,
        /// Its port.
        port: i32,
    },
    /// A URL (homestead running outside the cluster); paths are appended.
    Url(String),
}

/// Everything the webhooks are built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// Where reviews go.
    pub target: Target,
    /// homestead's own namespace (never selected).
    pub namespace: String,
    /// Further namespaces never selected.
    pub excluded_namespaces: Vec<String>,
    /// `Fail` or `Ignore`.
    pub failure_policy: String,
    /// Seconds the API server waits.
    pub timeout_seconds: i32,
    /// The configured workload kinds (`workloadKinds`), mutated and validated like the
    /// built-in ones.
    pub workload_kinds: Vec<KindRule>,
}

/// The rule of one configured workload kind: its API group, version and resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRule {
    /// API group, e.g. `kubeflow.org`.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Resource, e.g. `pytorchjobs`.
    pub resource: String,
}

impl KindRule {
    /// The rules of a configuration's `workloadKinds`, in order.
    pub fn from_config(config: &Config) -> Vec<KindRule> {
        config
            .workload_kinds
            .iter()
            .map(|k| KindRule {
                group: k.group.clone(),
                version: k.version.clone(),
                resource: k.resource(),
            })
            .collect()
    }
}

impl Registration {
    /// Every namespace the namespaced webhooks never select: `kube-system`, homestead's
    /// own, then the configured ones, without repeats, in that order.
    pub fn excluded(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for ns in ALWAYS_EXCLUDED
            .iter()
            .map(|s| (*s).to_owned())
            .chain(std::iter::once(self.namespace.clone()))
            .chain(self.excluded_namespaces.iter().cloned())
        {
            if !ns.is_empty() && !out.contains(&ns) {
                out.push(ns);
            }
        }
        out
    }

    fn client_config(&self, path: &str, ca_bundle: Option<&[u8]>) -> WebhookClientConfig {
        let ca_bundle = ca_bundle.map(|b| ByteString(b.to_vec()));
        match &self.target {
            Target::Service {
                name,
                namespace,
                port,
            } => WebhookClientConfig {
                ca_bundle,
                service: Some(ServiceReference {
                    name: name.clone(),
                    namespace: namespace.clone(),
                    path: Some(path.to_owned()),
                    port: Some(*port),
                }),
                url: None,
            },
            Target::Url(url) => WebhookClientConfig {
                ca_bundle,
                service: None,
                url: Some(format!("{}{path}", url.trim_end_matches('/'))),
            },
        }
    }

    fn managed_namespaces(&self) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(
                LABEL_MANAGED.to_owned(),
                "true".to_owned(),
            )])),
            match_expressions: Some(vec![self.not_excluded()]),
        }
    }

    fn not_excluded(&self) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "NotIn".into(),
            values: Some(self.excluded()),
        }
    }
}

fn rule(
    group: &str,
    version: &str,
    ops: &[&str],
    resources: &[&str],
    scope: &str,
) -> RuleWithOperations {
    let strings = |s: &[&str]| Some(s.iter().map(|x| (*x).to_owned()).collect());
    RuleWithOperations {
        api_groups: strings(&[group]),
        api_versions: strings(&[version]),
        operations: strings(ops),
        resources: strings(resources),
        scope: Some(scope.to_owned()),
    }
}

/// Every kind that carries a pod template, CREATE and UPDATE: the built-in ones, Argo's,
/// then the configured ones.
fn workload_rules(reg: &Registration) -> Vec<RuleWithOperations> {
    let mut rules = vec![
        rule(
            "apps",
            "v1",
            &["CREATE", "UPDATE"],
            &["deployments", "statefulsets", "daemonsets", "replicasets"],
            "Namespaced",
        ),
        rule(
            "batch",
            "v1",
            &["CREATE", "UPDATE"],
            &["jobs", "cronjobs"],
            "Namespaced",
        ),
        rule(
            "",
            "v1",
            &["CREATE", "UPDATE"],
            &["replicationcontrollers", "podtemplates"],
            "Namespaced",
        ),
        rule(
            argo::GROUP,
            "v1alpha1",
            &["CREATE", "UPDATE"],
            &["workflows", "cronworkflows", "workflowtemplates"],
            "Namespaced",
        ),
    ];
    rules.extend(reg.workload_kinds.iter().map(|k| {
        rule(
            &k.group,
            &k.version,
            &["CREATE", "UPDATE"],
            &[k.resource.as_str()],
            "Namespaced",
        )
    }));
    rules
}

/// ClusterWorkflowTemplates (cluster-scoped, so no namespace selector skips them):
/// validated only, nobody but an admin may name a person in one.
fn cluster_workflow_templates() -> RuleWithOperations {
    rule(
        argo::GROUP,
        "v1alpha1",
        &["CREATE", "UPDATE"],
        &["clusterworkflowtemplates"],
        "Cluster",
    )
}

fn ephemeral_containers() -> RuleWithOperations {
    rule(
        "",
        "v1",
        &["UPDATE"],
        &["pods/ephemeralcontainers"],
        "Namespaced",
    )
}

/// The webhooks of the MutatingWebhookConfiguration.
pub fn mutating(reg: &Registration, ca_bundle: Option<&[u8]>) -> Vec<MutatingWebhook> {
    let mut rules = vec![
        rule("", "v1", &["CREATE"], &["pods"], "Namespaced"),
        ephemeral_containers(),
    ];
    rules.extend(workload_rules(reg));
    vec![MutatingWebhook {
        name: MUTATE.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: reg.client_config(MUTATE_PATH, ca_bundle),
        rules: Some(rules),
        namespace_selector: Some(reg.managed_namespaces()),
        object_selector: Some(LabelSelector::default()),
        match_policy: Some("Equivalent".into()),
        failure_policy: Some(reg.failure_policy.clone()),
        side_effects: "None".into(),
        timeout_seconds: Some(reg.timeout_seconds),
        reinvocation_policy: Some("IfNeeded".into()),
        match_conditions: None,
    }]
}

/// The webhooks of the ValidatingWebhookConfiguration.
pub fn validating(reg: &Registration, ca_bundle: Option<&[u8]>) -> Vec<ValidatingWebhook> {
    let base = |name: &str, rules: Vec<RuleWithOperations>| ValidatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: reg.client_config(VALIDATE_PATH, ca_bundle),
        rules: Some(rules),
        namespace_selector: Some(LabelSelector::default()),
        object_selector: Some(LabelSelector::default()),
        match_policy: Some("Equivalent".into()),
        failure_policy: Some(reg.failure_policy.clone()),
        side_effects: "None".into(),
        timeout_seconds: Some(reg.timeout_seconds),
        match_conditions: None,
    };
    let mut pod_rules = vec![
        rule("", "v1", &["CREATE", "UPDATE"], &["pods"], "Namespaced"),
        ephemeral_containers(),
        rule(
            "",
            "v1",
            &["CONNECT"],
            &["pods/exec", "pods/attach", "pods/portforward", "pods/proxy"],
            "Namespaced",
        ),
    ];
    pod_rules.extend(workload_rules(reg));
    pod_rules.extend([
        cluster_workflow_templates(),
        rule(
            "",
            "v1",
            &["CREATE", "UPDATE", "DELETE"],
            &["persistentvolumeclaims"],
            "Namespaced",
        ),
        rule(
            "snapshot.storage.k8s.io",
            "v1",
            &["CREATE", "UPDATE"],
            &["volumesnapshots"],
            "Namespaced",
        ),
    ]);
    let pods = ValidatingWebhook {
        namespace_selector: Some(reg.managed_namespaces()),
        ..base(VALIDATE, pod_rules)
    };
    let resources = base(
        RESOURCES,
        vec![rule(
            "homestead.dev",
            "v1alpha1",
            &["CREATE", "UPDATE"],
            &["users", "sessions", "projects"],
            "Cluster",
        )],
    );
    let namespaces = ValidatingWebhook {
        namespace_selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![reg.not_excluded()]),
        }),
        object_selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: LABEL_MANAGED.to_owned(),
                operator: "Exists".into(),
                values: None,
            }]),
        }),
        ..base(
            NAMESPACES,
            vec![rule(
                "",
                "v1",
                &["CREATE", "UPDATE", "DELETE"],
                &["namespaces"],
                "Cluster",
            )],
        )
    };
    let owned = ValidatingWebhook {
        namespace_selector: Some(LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![reg.not_excluded()]),
        }),
        object_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                LABEL_MANAGED_BY.to_owned(),
                MANAGED_BY.to_owned(),
            )])),
            match_expressions: None,
        }),
        ..base(
            OWNED,
            vec![rule("*", "*", &["CREATE", "UPDATE"], &["*"], "*")],
        )
    };
    vec![pods, resources, namespaces, owned]
}

fn normalize_selector(s: &mut Option<LabelSelector>) {
    let selector = s.get_or_insert_with(LabelSelector::default);
    if selector
        .match_labels
        .as_ref()
        .is_some_and(BTreeMap::is_empty)
    {
        selector.match_labels = None;
    }
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(Vec::is_empty)
    {
        selector.match_expressions = None;
    }
}

fn normalize_rules(rules: &mut Option<Vec<RuleWithOperations>>) {
    for r in rules.iter_mut().flatten() {
        r.scope.get_or_insert_with(|| "*".into());
    }
}

fn normalize_client(c: &mut WebhookClientConfig) {
    if let Some(s) = c.service.as_mut() {
        s.port.get_or_insert(443);
    }
    if c.ca_bundle.as_ref().is_some_and(|b| b.0.is_empty()) {
        c.ca_bundle = None;
    }
}

/// Fills in what the API server defaults, so live and desired webhooks compare equal when
/// they mean the same.
pub fn normalize_mutating(w: &mut MutatingWebhook) {
    normalize_client(&mut w.client_config);
    normalize_rules(&mut w.rules);
    normalize_selector(&mut w.namespace_selector);
    normalize_selector(&mut w.object_selector);
    w.match_policy.get_or_insert_with(|| "Equivalent".into());
    w.failure_policy.get_or_insert_with(|| "Fail".into());
    w.timeout_seconds.get_or_insert(10);
    w.reinvocation_policy.get_or_insert_with(|| "Never".into());
    if w.match_conditions.as_ref().is_some_and(Vec::is_empty) {
        w.match_conditions = None;
    }
}

/// As [`normalize_mutating`], for validating webhooks.
pub fn normalize_validating(w: &mut ValidatingWebhook) {
    normalize_client(&mut w.client_config);
    normalize_rules(&mut w.rules);
    normalize_selector(&mut w.namespace_selector);
    normalize_selector(&mut w.object_selector);
    w.match_policy.get_or_insert_with(|| "Equivalent".into());
    w.failure_policy.get_or_insert_with(|| "Fail".into());
    w.timeout_seconds.get_or_insert(10);
    if w.match_conditions.as_ref().is_some_and(Vec::is_empty) {
        w.match_conditions = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(target: Target) -> Registration {
        Registration {
            target,
            namespace: "homestead".into(),
            excluded_namespaces: vec!["kube-system".into(), "monitoring".into()],
            failure_policy: "Fail".into(),
            timeout_seconds: 5,
            workload_kinds: Vec::new(),
        }
    }

    fn service() -> Target {
        Target::Service {
            name: "homestead".into(),
            namespace: "homestead".into(),
            port: 443,
        }
    }

    #[test]
    fn configured_kinds_have_rules_in_both_webhooks() {
        let config = Config::from_yaml(
            "workloadKinds: [{group: kubeflow.org, version: v1, kind: PyTorchJob, podTemplates: [/spec/pytorchReplicaSpecs/*/template]}]",
        )
        .unwrap();
        let reg = Registration {
            workload_kinds: KindRule::from_config(&config),
            ..registration(service())
        };
        let has = |rules: &Option<Vec<RuleWithOperations>>| {
            rules.iter().flatten().any(|r| {
                r.api_groups.as_deref() == Some(&["kubeflow.org".to_owned()][..])
                    && r.api_versions.as_deref() == Some(&["v1".to_owned()][..])
                    && r.resources.as_deref() == Some(&["pytorchjobs".to_owned()][..])
                    && r.operations.as_deref()
                        == Some(&["CREATE".to_owned(), "UPDATE".to_owned()][..])
            })
        };
        assert!(has(&mutating(&reg, None)[0].rules));
        assert!(has(&validating(&reg, None)[0].rules));
        assert!(!has(&mutating(&registration(service()), None)[0].rules));
    }

    #[test]
    fn excluded_always_has_kube_system_and_own_namespace_once() {
        let reg = registration(service());
        assert_eq!(reg.excluded(), ["kube-system", "homestead", "monitoring"]);
        let empty = Registration {
            namespace: String::new(),
            excluded_namespaces: vec![],
            ..reg
        };
        assert_eq!(empty.excluded(), ["kube-system"]);
    }

    #[test]
    fn namespaced_webhooks_select_only_managed_and_never_excluded() {
        let reg = registration(service());
        let m = mutating(&reg, None);
        let v = validating(&reg, None);
        let selectors = m
            .iter()
            .map(|w| (&w.name, &w.namespace_selector, &w.rules))
            .chain(v.iter().map(|w| (&w.name, &w.namespace_selector, &w.rules)));
        for (name, selector, rules) in selectors {
            let namespaced = rules
                .iter()
                .flatten()
                .any(|r| r.scope.as_deref() == Some("Namespaced"));
            let selector = selector.as_ref().expect("selector");
            let exprs = selector.match_expressions.clone().unwrap_or_default();
            if namespaced {
                assert_eq!(
                    selector
                        .match_labels
                        .as_ref()
                        .and_then(|l| l.get(LABEL_MANAGED)),
                    Some(&"true".to_owned()),
                    "{name}"
                );
            }
            if name != RESOURCES {
                let not_in = exprs
                    .iter()
                    .find(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
                    .unwrap_or_else(|| panic!("{name} has no NotIn"));
                let values = not_in.values.clone().unwrap_or_default();
                assert!(values.contains(&"kube-system".to_owned()), "{name}");
                assert!(values.contains(&"homestead".to_owned()), "{name}");
            }
        }
    }

    #[test]
    fn url_target_appends_paths_and_service_target_names_service() {
        let url = registration(Target::Url("https://10.0.0.1:8443/".into()));
        assert_eq!(
            mutating(&url, None)[0].client_config.url.as_deref(),
            Some("https://10.0.0.1:8443/mutate")
        );
        assert!(validating(&url, None).iter().all(|w| {
            w.client_config.url.as_deref() == Some("https://10.0.0.1:8443/validate")
                && w.client_config.service.is_none()
        }));
        let svc = registration(service());
        let m = mutating(&svc, Some(b"PEM"));
        let s = m[0].client_config.service.as_ref().expect("service");
        assert_eq!(
            (s.name.as_str(), s.path.as_deref()),
            ("homestead", Some("/mutate"))
        );
        assert_eq!(
            m[0].client_config
                .ca_bundle
                .as_ref()
                .map(|b| b.0.as_slice()),
            Some(&b"PEM"[..])
        );
    }

    #[test]
    fn normalizing_api_defaults_makes_sparse_equal_to_explicit() {
        let reg = registration(service());
        let mut desired = validating(&reg, None);
        // What a client might have written, leaving the API server's defaults out.
        let mut sparse = desired.clone();
        for w in &mut sparse {
            w.match_policy = None;
            if w.name == RESOURCES {
                w.namespace_selector = None;
            }
            w.object_selector = w
                .object_selector
                .take()
                .filter(|s| s.match_labels.is_some() || s.match_expressions.is_some());
            for r in w.rules.iter_mut().flatten() {
                if r.scope.as_deref() == Some("*") {
                    r.scope = None;
                }
            }
        }
        desired.iter_mut().for_each(normalize_validating);
        sparse.iter_mut().for_each(normalize_validating);
        assert_eq!(desired, sparse);
        // An edit does not normalize away.
        let mut edited = sparse.clone();
        edited[0].failure_policy = Some("Ignore".into());
        assert_ne!(desired, edited);
    }
}
