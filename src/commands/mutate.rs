//! `homestead mutate`: a Pod, workload, Argo workflow (or ClusterWorkflowTemplate) or
//! configured workload kind's manifest in, the object as homestead would admit it
//! (or the patch) out. Builds the AdmissionReview the named person would send, runs the
//! mutating webhook, applies its patch, then runs the validating webhook on the result.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use homestead_core::config::Config;
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Reviewed, Verdict, Webhook, review};

/// Arguments of `homestead mutate`.
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// Namespace the object is created in (required for every kind but the cluster-scoped
    /// ClusterWorkflowTemplate).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Username of the person creating it, without the configured prefix.
    #[arg(long = "as", value_name = "USERNAME")]
    pub as_user: String,
    /// Where the configuration and the directory come from.
    #[command(flatten)]
    pub inputs: super::inputs::InputArgs,
    /// The manifest (YAML or JSON); standard input when unset or `-`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// What to print.
    #[arg(short = 'o', long, value_enum, default_value_t = MutateOutput::Yaml)]
    pub output: MutateOutput,
}

/// What `homestead mutate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MutateOutput {
    /// The mutated object as YAML.
    Yaml,
    /// The mutated object as JSON.
    Json,
    /// The JSON Patch the mutating webhook returned (`[]` when nothing changes).
    Patch,
}

/// The cluster-scoped kinds `mutate` accepts.
const CLUSTER_SCOPED: &[&str] = &["ClusterWorkflowTemplate"];

/// The built-in kinds `mutate` accepts (besides the configured `workloadKinds`): kind, API
/// version, resource.
const KINDS: &[(&str, &str, &str)] = &[
    ("Pod", "v1", "pods"),
    ("Deployment", "apps/v1", "deployments"),
    ("StatefulSet", "apps/v1", "statefulsets"),
    ("DaemonSet", "apps/v1", "daemonsets"),
    ("ReplicaSet", "apps/v1", "replicasets"),
    ("Job", "batch/v1", "jobs"),
    ("CronJob", "batch/v1", "cronjobs"),
    ("ReplicationController", "v1", "replicationcontrollers"),
    ("PodTemplate", "v1", "podtemplates"),
    ("Workflow", "argoproj.io/v1alpha1", "workflows"),
    ("CronWorkflow", "argoproj.io/v1alpha1", "cronworkflows"),
    (
        "WorkflowTemplate",
        "argoproj.io/v1alpha1",
        "workflowtemplates",
    ),
    (
        "ClusterWorkflowTemplate",
        "argoproj.io/v1alpha1",
        "clusterworkflowtemplates",
    ),
];

/// Parses one manifest, YAML or JSON.
pub fn parse_manifest(text: &str) -> anyhow::Result<Value> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| anyhow!("manifest is not YAML or JSON: {e}"))?;
    let mut documents = documents.into_iter().filter(|d| !d.is_null());
    let document = documents.next().context("manifest is empty")?;
    if documents.next().is_some() {
        bail!("manifest has more than one document; give one object at a time");
    }
    if !document.is_object() {
        bail!("manifest is not an object");
    }
    Ok(document)
}

/// Builds the AdmissionReview (CREATE) that `username` would send for `object` in
/// `namespace`. The object gets `metadata.namespace` as the API server would set it.
pub fn build_review(
    config: &Config,
    object: &mut Value,
    namespace: &str,
    username: &str,
    uid: &str,
) -> anyhow::Result<Value> {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .context("manifest has no kind")?
        .to_owned();
    let given = object.get("apiVersion").and_then(Value::as_str);
    let (api_version, resource) = match KINDS.iter().find(|(k, _, _)| *k == kind) {
        Some(&(_, api_version, resource)) => (api_version.to_owned(), resource.to_owned()),
        None => {
            // A configured kind: in the version given, or its only configured version.
            let configured: Vec<_> = config
                .workload_kinds
                .iter()
                .filter(|k| k.kind == kind)
                .collect();
            let version_of =
                |k: &homestead_core::config::WorkloadKind| format!("{}/{}", k.group, k.version);
            let found = match given {
                Some(v) => configured.iter().find(|k| version_of(k) == v),
                None if configured.len() == 1 => configured.first(),
                None => None,
            };
            match (found, configured.is_empty()) {
                (Some(k), _) => (version_of(k), k.resource()),
                (None, true) => bail!(
                    "kind {kind} is not one of {} nor a configured workloadKinds kind",
                    KINDS.iter().map(|k| k.0).collect::<Vec<_>>().join(", ")
                ),
                (None, false) => bail!(
                    "{kind} apiVersion {} is not one workloadKinds configures ({})",
                    given.unwrap_or("(none)"),
                    configured
                        .iter()
                        .map(|k| version_of(k))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    match given {
        None => object["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => bail!("{kind} apiVersion {v:?} is not {api_version:?}"),
    }
    let cluster_scoped = CLUSTER_SCOPED.contains(&kind.as_str());
    match (cluster_scoped, namespace.is_empty()) {
        (true, false) => bail!("{kind} is cluster-scoped; give no --namespace"),
        (false, true) => bail!("a {kind} is namespaced; give its --namespace"),
        _ => {}
    }
    let metadata = object
        .as_object_mut()
        .context("manifest is not an object")?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    let metadata = metadata
        .as_object_mut()
        .context("manifest metadata is not an object")?;
    match metadata.get("namespace").and_then(Value::as_str) {
        Some(ns) if cluster_scoped => {
            bail!("a {kind} has no namespace, but the manifest names {ns:?}")
        }
        Some(ns) if ns != namespace => {
            bail!("manifest is for namespace {ns:?}, not --namespace {namespace:?}")
        }
        _ if cluster_scoped => {}
        _ => {
            metadata.insert("namespace".into(), json!(namespace));
        }
    }
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (group, version) = api_version
        .split_once('/')
        .unwrap_or(("", api_version.as_str()));
    let namespace = (!cluster_scoped).then_some(namespace);
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    Ok(json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": name,
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {
                "username": format!("{}{username}", config.username_prefix),
                "groups": ["system:authenticated"],
            },
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        }
    }))
}

/// The JSON Patch in an AdmissionReview response body; empty when there is none.
pub fn response_patch(body: &[u8]) -> anyhow::Result<json_patch::Patch> {
    let response: Value = serde_json::from_slice(body).context("webhook response is not JSON")?;
    let Some(patch) = response["response"]["patch"].as_str() else {
        return Ok(json_patch::Patch(Vec::new()));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .context("response.patch is not base64")?;
    serde_json::from_slice(&bytes).context("response.patch is not a JSON Patch")
}

fn run_webhook(
    webhook: Webhook,
    review_json: &Value,
    admission: &Admission<'_>,
) -> anyhow::Result<Reviewed<'static>> {
    let body = serde_json::to_vec(review_json).context("cannot serialise the review")?;
    review(webhook, &body, admission)
        .map(Reviewed::into_owned)
        .with_context(|| format!("the {webhook} webhook failed"))
}

fn refused(webhook: Webhook, reviewed: &Reviewed) -> Option<ExitCode> {
    let Verdict::Denied {
        reason, reasons, ..
    } = &reviewed.summary.verdict
    else {
        return None;
    };
    eprintln!("homestead: the {webhook} webhook refused the object ({reason}):");
    for line in reasons {
        eprintln!("  {line}");
    }
    Some(ExitCode::FAILURE)
}

/// Runs `homestead mutate`: exit 1 when either webhook refuses the object.
pub fn run(args: MutateArgs) -> anyhow::Result<ExitCode> {
    let (config, directory) = args.inputs.load()?;
    let input = super::inputs::read_input(args.file.as_deref())?;
    let text = String::from_utf8(input).context("manifest is not UTF-8 text")?;
    let mut object = parse_manifest(&text)?;
    let pods = PodUsers::default();
    let admission = Admission {
        config: &config,
        directory: &directory,
        pods: &pods,
    };

    let request = build_review(
        &config,
        &mut object,
        args.namespace.as_deref().unwrap_or_default(),
        &args.as_user,
        "homestead-mutate",
    )?;
    let mutated = run_webhook(Webhook::Mutate, &request, &admission)?;
    if let Some(code) = refused(Webhook::Mutate, &mutated) {
        return Ok(code);
    }
    let patch = response_patch(&mutated.body)?;
    json_patch::patch(&mut object, &patch)
        .context("the mutating webhook's patch does not apply")?;

    let request = build_review(
        &config,
        &mut object,
        args.namespace.as_deref().unwrap_or_default(),
        &args.as_user,
        "homestead-validate",
    )?;
    let validated = run_webhook(Webhook::Validate, &request, &admission)?;
    if let Some(code) = refused(Webhook::Validate, &validated) {
        return Ok(code);
    }

    let text = match args.output {
        MutateOutput::Yaml => serde_saphyr::to_string(&object).context("cannot write YAML")?,
        MutateOutput::Json => serde_json::to_string_pretty(&object)? + "\n",
        MutateOutput::Patch => serde_json::to_string_pretty(&patch)? + "\n",
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_carry_the_kind_resource_and_person() {
        let config = Config::from_yaml("usernamePrefix: 'oidc:'").unwrap();
        let mut object = parse_manifest(
            "kind: CronJob\nmetadata: {name: nightly}\nspec: {schedule: '@daily'}\n",
        )
        .unwrap();
        let review = build_review(&config, &mut object, "home-ada", "ada", "u1").unwrap();
        let request = &review["request"];
        assert_eq!(
            request["kind"],
            json!({"group": "batch", "version": "v1", "kind": "CronJob"})
        );
        assert_eq!(request["resource"]["resource"], "cronjobs");
        assert_eq!(request["userInfo"]["username"], "oidc:ada");
        assert_eq!(request["name"], "nightly");
        assert_eq!(request["object"]["apiVersion"], "batch/v1");
        assert_eq!(request["object"]["metadata"]["namespace"], "home-ada");

        let mut pod = parse_manifest(r#"{"apiVersion": "v1", "kind": "Pod"}"#).unwrap();
        let review = build_review(&Config::default(), &mut pod, "ns", "bob", "u2").unwrap();
        assert_eq!(
            review["request"]["kind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(review["request"]["userInfo"]["username"], "bob");
    }

    #[test]
    fn unusable_manifests_are_named() {
        let config = Config::default();
        let err = |text: &str| {
            parse_manifest(text)
                .and_then(|mut o| build_review(&config, &mut o, "home-ada", "ada", "u"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("kind: Service\n").contains("kind Service is not one of"));
        assert!(err("apiVersion: extensions/v1beta1\nkind: Deployment\n").contains("apps/v1"));
        assert!(err("kind: Pod\nmetadata: {namespace: other}\n").contains("\"other\""));
        assert!(err("kind: Pod\n---\nkind: Pod\n").contains("more than one document"));
        assert!(err("").contains("empty"));
        assert!(err("[1, 2]").contains("not an object"));
        assert!(err("spec: {}\n").contains("no kind"));
    }

    #[test]
    fn patches_come_from_the_response() {
        let patch = r#"[{"op":"add","path":"/a","value":1}]"#;
        let body = json!({"response": {
            "patch": base64::engine::general_purpose::STANDARD.encode(patch),
            "patchType": "JSONPatch"
        }});
        let parsed = response_patch(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.0.len(), 1);
        assert!(
            response_patch(br#"{"response": {"allowed": true}}"#)
                .unwrap()
                .0
                .is_empty()
        );
        assert!(response_patch(br#"{"response": {"patch": "!!"}}"#).is_err());
    }
}
