//! AdmissionReview v1 in, AdmissionReview v1 out: the one entry point of the admission
//! core. [`review`] reads the request in one pass (borrowing from the body; a pod is parsed
//! in place, other objects are kept raw, see [`crate::envelope`]), decides, and
//! writes the response; it never does I/O.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
#[cfg(test)]
use serde::Serialize;
use thiserror::Error;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::argo::{self, WorkflowKind, WorkflowView};
use crate::config::{Config, TrustedSubmitter, WorkloadKind};
use crate::custom;
use crate::denial::Denial;
use crate::directory::{Directory, NamespaceOwner};
use crate::envelope::{self, Object, Request};
use crate::identity::{self, Attribution, Requester, Subject, acts_for, resolve};
use crate::json::{self, Raw};
use crate::lifecycle;
use crate::mutation;
use crate::names;
use crate::patch::json::{WriteJson, write_object, write_str};
use crate::patch::{Patch, PatchJson};
use crate::pod::{self, Text};
use crate::pod_index::PodIndex;
use crate::resources::{self, Project, Session, User};
use crate::validation;
use crate::workload::{self, PodKind, PodView};

/// Which webhook a review is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Webhook {
    /// The mutating webhook: may patch.
    Mutate,
    /// The validating webhook: the backstop, never patches.
    Validate,
}

impl Webhook {
    /// `"mutate"` or `"validate"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Mutate => "mutate",
            Webhook::Validate => "validate",
        }
    }
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook name that is neither `mutate` nor `validate`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown webhook {0:?}; expected \"mutate\" or \"validate\"")]
pub struct UnknownWebhook(pub String);

impl FromStr for Webhook {
    type Err = UnknownWebhook;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mutate" => Ok(Webhook::Mutate),
            "validate" => Ok(Webhook::Validate),
            other => Err(UnknownWebhook(other.to_owned())),
        }
    }
}

/// What admission decides from: the configuration, the current directory and the index
/// of pods.
#[derive(Clone, Copy)]
pub struct Admission<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// Users, sessions, managed namespaces and dataset claims.
    pub directory: &'a Directory,
    /// The `User` each pod of the managed namespaces runs as.
    pub pods: &'a dyn PodIndex,
}

impl fmt::Debug for Admission<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admission")
            .field("config", self.config)
            .field("directory", self.directory)
            .finish_non_exhaustive()
    }
}

/// A produced response and what it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed<'a> {
    /// The AdmissionReview v1 response, as JSON.
    pub body: Vec<u8>,
    /// What was decided, for logs and metrics.
    pub summary: Summary<'a>,
}

impl Reviewed<'_> {
    /// The same, owning its summary's texts (to keep it longer than the request body).
    pub fn into_owned(self) -> Reviewed<'static> {
        Reviewed {
            body: self.body,
            summary: self.summary.into_owned(),
        }
    }
}

/// What a review decided, for logs and metrics. Its texts borrow from the request body
/// where the body holds them as they are (no allocation per review for them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary<'a> {
    /// `request.uid`.
    pub uid: Cow<'a, str>,
    /// `request.kind.kind`, e.g. `Pod`.
    pub kind: Cow<'a, str>,
    /// `request.operation`, e.g. `CREATE`.
    pub operation: Cow<'a, str>,
    /// `request.namespace`, if any.
    pub namespace: Option<Cow<'a, str>>,
    /// The username the object was decided to run as, when one was decided.
    pub identity: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// `request.dryRun`.
    pub dry_run: bool,
}

impl Summary<'_> {
    /// The same, owning its texts.
    pub fn into_owned(self) -> Summary<'static> {
        let own = |text: Cow<'_, str>| Cow::Owned(text.into_owned());
        Summary {
            uid: own(self.uid),
            kind: own(self.kind),
            operation: own(self.operation),
            namespace: self.namespace.map(own),
            identity: self.identity,
            verdict: self.verdict,
            dry_run: self.dry_run,
        }
    }
}

/// The outcome of a review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed, unchanged.
    Allowed,
    /// Allowed with a JSON Patch of this many operations.
    Patched {
        /// Number of patch operations.
        operations: usize,
    },
    /// Refused.
    Denied {
        /// Short stable snake_case code of the first reason, e.g. `privileged`.
        reason: &'static str,
        /// The message returned to the client (every reason, joined with `"; "`).
        message: String,
        /// Each reason on its own (`field: why`), in order.
        reasons: Vec<String>,
    },
}

impl Verdict {
    /// `allowed`, `patched` or `denied`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Patched { .. } => "patched",
            Verdict::Denied { .. } => "denied",
        }
    }
}

/// Why no response could be produced for a request body.
#[derive(Debug, Error)]
pub enum ReviewError {
    /// The body is not JSON of the AdmissionReview shape.
    #[error("request is not a JSON AdmissionReview: {0}")]
    NotJson(String),
    /// `apiVersion`/`kind` are not `admission.k8s.io/v1` `AdmissionReview`.
    #[error(
        "request is not an admission.k8s.io/v1 AdmissionReview (apiVersion {api_version:?}, kind {kind:?})"
    )]
    NotAdmissionReview {
        /// The `apiVersion` found (empty when missing).
        api_version: String,
        /// The `kind` found (empty when missing).
        kind: String,
    },
    /// The review has no `request`.
    #[error("AdmissionReview has no request")]
    NoRequest,
    /// A required request field is missing or empty.
    #[error("AdmissionReview request has no {0}")]
    MissingField(&'static str),
    /// The response could not be serialised (should not happen).
    #[error("could not serialise the response: {0}")]
    Serialize(String),
}

pub(crate) const API_VERSION: &str = "admission.k8s.io/v1";
pub(crate) const KIND: &str = "AdmissionReview";

/// What the core decided for one request, before it is serialised.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// The username decided, if any.
    pub identity: Option<String>,
    /// Patch operations (mutate only).
    pub patch: Patch,
    /// Denials; empty means allowed.
    pub denials: Vec<Denial>,
}

/// The status of a denied request.
#[cfg_attr(test, derive(Serialize))]
struct StatusOut<'a> {
    code: u16,
    reason: &'a str,
    message: &'a str,
}

impl WriteJson for StatusOut<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object(out, |o| {
            o.member("code", &self.code);
            o.member("reason", self.reason);
            o.member("message", self.message);
        });
    }
}

/// Reviews one AdmissionReview v1 request body for `webhook` and returns the response.
pub fn review<'a>(
    webhook: Webhook,
    body: &'a [u8],
    admission: &Admission<'_>,
) -> Result<Reviewed<'a>, ReviewError> {
    let body = utf8(body)?;
    let mut envelope = envelope::parse(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
    // A trusted submitter's pod is read again as text, for its identity label: only its
    // requests pay for that, and only when there are trusted submitters at all.
    let submitted = |request: &Request<'_>| {
        !admission.config.trusted_submitters.is_empty()
            && request.has_in_place()
            && admission
                .config
                .trusted_submitter(&request.user_info.username)
                .is_some()
    };
    if envelope.request.as_ref().is_some_and(submitted) {
        envelope = envelope::parse_raw(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
    }
    let api_version = envelope.api_version.unwrap_or_default();
    let kind = envelope.kind.unwrap_or_default();
    if api_version != API_VERSION || kind != KIND {
        return Err(ReviewError::NotAdmissionReview {
            api_version: api_version.into_owned(),
            kind: kind.into_owned(),
        });
    }
    let request = envelope.request.ok_or(ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::MissingField("uid"));
    }
    if request.operation.is_empty() {
        return Err(ReviewError::MissingField("operation"));
    }
    let decision = decide(webhook, &request, admission);
    respond(request, decision)
}

/// The body as text. The check is `simdutf8`'s (SIMD, the same verdict as the standard
/// library's); a body that fails it is checked again by the standard library, whose
/// error says where.
fn utf8(body: &[u8]) -> Result<&str, ReviewError> {
    simdutf8::basic::from_utf8(body).map_err(|_| {
        let why = std::str::from_utf8(body).map_or_else(|e| e.to_string(), |_| String::new());
        ReviewError::NotJson(format!("the body is not UTF-8: {why}"))
    })
}

/// The start of every response, up to the value of `uid`.
const RESPONSE_HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// Writes the AdmissionReview response. It is written directly rather than through a
/// serialised struct so that the base64 patch (which never needs escaping) is copied
/// once instead of being scanned as a JSON string.
fn respond(request: Request<'_>, decision: Decision) -> Result<Reviewed<'_>, ReviewError> {
    let serialize = |e: &dyn fmt::Display| ReviewError::Serialize(e.to_string());
    // A denied request carries no patch, whatever was written before the denial.
    let patch = if decision.denials.is_empty() {
        decision.patch.finish().map_err(|e| serialize(&e))?
    } else {
        None
    };
    let mut body = Vec::with_capacity(
        RESPONSE_HEAD.len()
            + 64
            + patch
                .as_ref()
                .map_or(0, |p| crate::b64::encoded_len(p.json.len()) + 40),
    );
    body.extend_from_slice(RESPONSE_HEAD);
    write_str(&mut body, request.uid.as_ref());
    let verdict = if let Some(first) = decision.denials.first() {
        let reasons: Vec<String> = decision.denials.iter().map(ToString::to_string).collect();
        let message = reasons.join("; ");
        body.extend_from_slice(br#","allowed":false,"status":"#);
        StatusOut {
            code: 403,
            reason: "Forbidden",
            message: &message,
        }
        .write_json(&mut body);
        Verdict::Denied {
            reason: first.reason,
            message,
            reasons,
        }
    } else if let Some(PatchJson { json, operations }) = patch {
        body.extend_from_slice(br#","allowed":true,"patchType":"JSONPatch","patch":""#);
        crate::b64::encode_into(&mut body, &json);
        body.push(b'"');
        Verdict::Patched { operations }
    } else {
        body.extend_from_slice(br#","allowed":true"#);
        Verdict::Allowed
    };
    body.extend_from_slice(b"}}");
    Ok(Reviewed {
        body,
        summary: Summary {
            uid: request.uid.0,
            kind: request.kind.kind.0,
            operation: request.operation.0,
            namespace: request.namespace.map(|namespace| namespace.0),
            identity: decision.identity,
            verdict,
            dry_run: request.dry_run.unwrap_or(false),
        },
    })
}

/// Decides one well-formed request.
fn decide(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    let kind = &request.kind;
    match (kind.group.as_ref(), kind.kind.as_ref()) {
        (resources::GROUP, "User" | "Session" | "Project") => {
            decide_resource(webhook, request, admission)
        }
        ("", "Namespace") => decide_namespace(webhook, request, admission),
        ("", "PersistentVolumeClaim") => decide_claim(webhook, request, admission),
        (SNAPSHOT_GROUP, "VolumeSnapshot") => decide_snapshot(webhook, request, admission),
        (
            "",
            "PodExecOptions" | "PodAttachOptions" | "PodPortForwardOptions" | "PodProxyOptions",
        ) => decide_connect(webhook, request, admission),
        (group, name) => match PodKind::from_group_kind(group, name) {
            Some(pod_kind) => decide_pod(webhook, request, admission, pod_kind),
            None => match WorkflowKind::from_group_kind(group, name) {
                Some(workflow_kind) => decide_workflow(webhook, request, admission, workflow_kind),
                None => match admission.config.workload_kind(group, &kind.version, name) {
                    Some(custom) => decide_custom(webhook, request, admission, custom),
                    None if admission
                        .config
                        .workload_kinds
                        .iter()
                        .any(|k| k.group == group && k.kind == name) =>
                    {
                        decide_other_version(webhook, request, admission)
                    }
                    None => decide_labels(webhook, request, admission),
                },
            },
        },
    }
}

/// API group of VolumeSnapshots.
const SNAPSHOT_GROUP: &str = "snapshot.storage.k8s.io";

fn denied(denial: Denial) -> Decision {
    Decision {
        denials: vec![denial],
        ..Decision::default()
    }
}

fn unreadable(what: &str, e: &json::Error) -> Denial {
    Denial::new("invalid_object", what, format!("cannot be read: {e}"))
}

fn no_object() -> Denial {
    Denial::new("invalid_object", "object", "the request carries no object")
}

/// The JSON text of an object that was not parsed in place (anything but a pod or
/// template being created). A parsed pod where text is needed would mean the envelope
/// and the dispatch disagree: that is refused, never taken for an absent object.
fn raw_text<'a>(object: &Object<'a>, what: &str) -> Result<&'a str, Denial> {
    object.raw().ok_or_else(|| {
        Denial::new(
            "invalid_object",
            what,
            "was read as a pod where its text was expected",
        )
    })
}

fn requester<'a>(config: &Config, request: &'a Request<'_>) -> Requester<'a> {
    Requester::classify(
        config,
        &request.user_info.username,
        request.user_info.groups(),
    )
}

/// A request from a trusted submitter (`trustedSubmitters`): the submitter, and the person
/// its identity label on the object names (`None` when the object has no such label).
struct OnBehalf<'c, 'a> {
    submitter: &'c TrustedSubmitter,
    person: Option<Text<'a>>,
}

impl OnBehalf<'_, '_> {
    /// Says, after a denial about who the object runs as, whose word it was.
    fn explain(&self, mut denial: Denial) -> Denial {
        let TrustedSubmitter {
            username,
            identity_label,
        } = self.submitter;
        let why = match &self.person {
            Some(person) => format!(
                " ({username} submitted this for {:?}, named by its {identity_label} label)",
                person.as_ref()
            ),
            None => format!(
                " ({username} is a trusted submitter, but the object has no {identity_label} label naming the person it submits for)"
            ),
        };
        denial.message.push_str(&why);
        denial
    }
}

/// For a trusted submitter's request, the identity label of the object being admitted (its
/// own `metadata.labels`); `None` for anyone else's request, whose objects' labels are
/// never read.
fn on_behalf<'c, 'a>(
    config: &'c Config,
    request: &Request<'a>,
) -> Result<Option<OnBehalf<'c, 'a>>, Denial> {
    let Some(submitter) = config.trusted_submitter(&request.user_info.username) else {
        return Ok(None);
    };
    let Some(object) = &request.object else {
        return Ok(None);
    };
    let text = raw_text(object, "object")?;
    let person = pod::object_label(text, &submitter.identity_label)
        .map_err(|e| unreadable("object", &e))?
        .filter(|p| !p.is_empty());
    Ok(Some(OnBehalf { submitter, person }))
}

/// Who a request is attributed to: the person a trusted submitter's label names, or the
/// requester as classified.
fn attributed<'a>(
    config: &Config,
    request: &'a Request<'_>,
    behalf: &'a Option<OnBehalf<'_, '_>>,
) -> Requester<'a> {
    match behalf {
        Some(OnBehalf {
            person: Some(person),
            ..
        }) => Requester::Person(person),
        _ => requester(config, request),
    }
}

/// A denial about who the object runs as, with a trusted submitter's part in it.
fn explained(denial: Denial, behalf: &Option<OnBehalf<'_, '_>>) -> Denial {
    match behalf {
        Some(behalf) => behalf.explain(denial),
        None => denial,
    }
}

/// Refuses a pod (or template) with more containers or volumes than configured, before
/// anything else is done with it.
fn too_large(config: &Config, pod: &PodView<'_>) -> Option<Denial> {
    let limits = &config.security;
    let containers = pod.containers().count();
    if containers > limits.max_containers {
        return Some(Denial::new(
            "too_large",
            format!("{}spec.containers", pod.field),
            format!(
                "{containers} containers (containers, initContainers and ephemeralContainers together) exceed the limit of {} (security.maxContainers)",
                limits.max_containers
            ),
        ));
    }
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .map_or(0, Vec::len);
    (volumes > limits.max_volumes).then(|| {
        Denial::new(
            "too_large",
            format!("{}spec.volumes", pod.field),
            format!(
                "{volumes} volumes exceed the limit of {} (security.maxVolumes)",
                limits.max_volumes
            ),
        )
    })
}

/// True when an UPDATE leaves the guarded part (a Pod's spec, a workload's template) as
/// it was.
fn unchanged<'a>(kind: PodKind, new: &Object<'a>, old: &Object<'a>) -> Result<bool, Denial> {
    fn read<'a>(kind: PodKind, object: &Object<'a>, what: &str) -> Result<Option<Raw<'a>>, Denial> {
        let text = raw_text(object, what)?;
        workload::guarded_text(kind, text).map_err(|e| unreadable(what, &e))
    }
    let (new, old) = (read(kind, new, "object")?, read(kind, old, "oldObject")?);
    workload::same_json(new, old).map_err(|e| unreadable("object", &e))
}

/// On a Pod UPDATE: homestead's stamp and label stay as they were, unless homestead or a
/// cluster admin changes them.
fn stamp_kept(requester: Requester<'_>, new: &PodView<'_>, old: &PodView<'_>) -> Vec<Denial> {
    if requester.is_privileged() {
        return Vec::new();
    }
    let mut denials = Vec::new();
    if new.run_as() != old.run_as() {
        denials.push(Denial::new(
            "forged_run_as",
            "metadata.annotations[\"homestead.dev/run-as\"]",
            format!(
                "was {:?}; only homestead may change the identity of a pod, {} may not",
                old.run_as().unwrap_or_default(),
                requester.name()
            ),
        ));
    }
    if new.user_label() != old.user_label() {
        denials.push(Denial::new(
            "forged_run_as",
            format!("metadata.labels[\"{}\"]", names::LABEL_USER),
            format!(
                "was {:?}; only homestead may change whose pod this is, {} may not",
                old.user_label().unwrap_or_default(),
                requester.name()
            ),
        ));
    }
    denials
}

/// Pods, the ephemeral-containers subresource and workload templates.
fn decide_pod(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
    pod_kind: PodKind,
) -> Decision {
    let Admission {
        config, directory, ..
    } = *admission;
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    let subject = match (
        pod_kind,
        request.sub_resource.as_deref().unwrap_or_default(),
    ) {
        (PodKind::Pod, "") => Subject::Pod,
        (PodKind::Pod, "ephemeralcontainers") => Subject::EphemeralContainers,
        (_, "") => Subject::Workload,
        // status, scale, binding, eviction, ...: nothing of the pod's identity changes.
        _ => return Decision::default(),
    };
    let update = match request.operation.as_ref() {
        "CREATE" => false,
        "UPDATE" => true,
        _ => return Decision::default(),
    };
    // A session outside its open window takes no new pods; those running stay.
    if subject == Subject::Pod
        && !update
        && let NamespaceOwner::Session(session) = owner
        && let Err(denial) = lifecycle::check_new_pod(&config.sessions, session)
    {
        return denied(denial);
    }
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let pod = match object.pod(pod_kind) {
        Ok(pod) => pod,
        Err(e) => return denied(unreadable("object", &e)),
    };
    if let Some(denial) = too_large(config, &pod) {
        return denied(denial);
    }
    let old = match (update, &request.old_object) {
        (false, _) => None,
        (true, None) => {
            return denied(Denial::new(
                "invalid_object",
                "oldObject",
                "an update carries no old object",
            ));
        }
        (true, Some(old)) => match old.pod(pod_kind) {
            Ok(pod) => Some((old, pod)),
            Err(e) => return denied(unreadable("oldObject", &e)),
        },
    };
    let behalf = match on_behalf(config, request) {
        Ok(behalf) => behalf,
        Err(denial) => return denied(denial),
    };
    let requester = attributed(config, request, &behalf);
    // An update that leaves the pod's spec (a workload's template) as it was changes
    // nobody's identity, whoever sends it: labels, replicas, status, autoscalers.
    if let Some((old_object, old_pod)) = &old
        && subject != Subject::EphemeralContainers
    {
        match unchanged(pod_kind, object, old_object) {
            Ok(true) if subject == Subject::Pod => {
                return Decision {
                    denials: stamp_kept(requester, &pod, old_pod),
                    ..Decision::default()
                };
            }
            Ok(true) => return Decision::default(),
            Ok(false) => {}
            Err(denial) => return denied(denial),
        }
    }
    let attribution = Attribution {
        requester,
        subject,
        webhook,
        run_as: pod.run_as(),
        old_run_as: old.as_ref().map(|(_, old)| old.run_as()),
        controller: pod
            .controller
            .as_ref()
            .map(|c| (c.group(), c.kind.as_ref())),
    };
    let identity = match resolve(config, directory, namespace, owner, &attribution) {
        Ok(identity) => identity,
        Err(denial) => return denied(explained(denial, &behalf)),
    };
    let mut decision = Decision {
        identity: Some(identity.username().to_owned()),
        ..Decision::default()
    };
    match (webhook, subject) {
        // A template a trusted controller copies from a workload homestead stamped (a
        // Deployment's ReplicaSet, a CronJob's Job) is left as it is: its controller
        // compares it with its own, and its pods are mutated when they are created.
        (Webhook::Mutate, Subject::Workload)
            if !update && matches!(requester, Requester::TrustedController(_)) => {}
        (Webhook::Mutate, Subject::Workload) => mutation::mutate(
            &mut decision.patch,
            config,
            &identity,
            directory.datasets(namespace),
            &pod,
        ),
        // A pod's spec is fixed once created: only creations are patched.
        (Webhook::Mutate, Subject::Pod) if !update => mutation::mutate(
            &mut decision.patch,
            config,
            &identity,
            directory.datasets(namespace),
            &pod,
        ),
        // Pods never change once created; workflows are decided by `decide_workflow`.
        (Webhook::Mutate, Subject::Pod | Subject::Workflow) => {}
        (Webhook::Mutate, Subject::EphemeralContainers) => {
            mutation::mutate_ephemeral(&mut decision.patch, &identity, &pod);
        }
        (Webhook::Validate, _) => {
            decision.denials = validation::validate_pod(config, &identity, &pod);
            if let (Subject::Pod, Some((_, old))) = (subject, &old) {
                decision.denials.extend(stamp_kept(requester, &pod, old));
            }
        }
    }
    decision
}

/// An Argo object (raw in the request, read here).
fn read_workflow(
    kind: WorkflowKind,
    object: &Object<'_>,
    what: &str,
) -> Result<(serde_json::Value, WorkflowView), Denial> {
    let text = raw_text(object, what)?;
    let value: serde_json::Value = json::from_str(text).map_err(|e| unreadable(what, &e))?;
    let view = WorkflowView::read(kind, &value);
    Ok((value, view))
}

/// Argo Workflows, CronWorkflows and WorkflowTemplates in managed namespaces (and
/// ClusterWorkflowTemplates anywhere): the workflow spec's `podMetadata` carries the stamp
/// of who its pods run as, decided as for a workload; no other `homestead.dev/run-as` may
/// say anything else (see [`crate::argo`]).
fn decide_workflow(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
    kind: WorkflowKind,
) -> Decision {
    let Admission {
        config, directory, ..
    } = *admission;
    if !request
        .sub_resource
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Decision::default();
    }
    let update = match request.operation.as_ref() {
        "CREATE" => false,
        "UPDATE" => true,
        _ => return Decision::default(),
    };
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let (value, new) = match read_workflow(kind, object, "object") {
        Ok(read) => read,
        Err(denial) => return denied(denial),
    };
    let behalf = match on_behalf(config, request) {
        Ok(behalf) => behalf,
        Err(denial) => return denied(denial),
    };
    let requester = attributed(config, request, &behalf);
    if kind == WorkflowKind::ClusterWorkflowTemplate {
        // Every namespace's members run it: only a cluster admin may name anyone in it.
        if webhook == Webhook::Mutate || requester.is_privileged() || !new.has_any() {
            return Decision::default();
        }
        let mut fields: Vec<String> = new.others.iter().map(argo::Found::field).collect();
        if new.stamp.is_some() || new.stamp_invalid {
            fields.insert(0, kind.stamp_field().to_owned());
        }
        return Decision {
            denials: fields
                .into_iter()
                .map(|field| {
                    Denial::new(
                        "forged_run_as",
                        field,
                        format!(
                            "a ClusterWorkflowTemplate is run by the members of every namespace; only a cluster admin may name who its pods run as, {} may not",
                            requester.name()
                        ),
                    )
                })
                .collect(),
            ..Decision::default()
        };
    }
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    let old = match (update, &request.old_object) {
        (false, _) => None,
        (true, None) => {
            return denied(Denial::new(
                "invalid_object",
                "oldObject",
                "an update carries no old object",
            ));
        }
        (true, Some(old)) => match read_workflow(kind, old, "oldObject") {
            Ok(read) => Some(read),
            Err(denial) => return denied(denial),
        },
    };
    // An update that leaves the spec as it was (status, labels: the workflow controller's
    // own updates) changes nobody's identity; its copies of the spec must still say what
    // the stamp says.
    if let Some((old_value, _)) = &old
        && value.get("spec") == old_value.get("spec")
    {
        if webhook == Webhook::Mutate || requester.is_privileged() {
            return Decision::default();
        }
        return Decision {
            denials: workflow_copies(&new, new.stamp.as_deref()),
            ..Decision::default()
        };
    }
    let attribution = Attribution {
        requester,
        subject: Subject::Workflow,
        webhook,
        run_as: new.stamp.as_deref(),
        old_run_as: old.as_ref().map(|(_, old)| old.stamp.as_deref()),
        controller: new
            .controller
            .as_ref()
            .map(|(group, kind)| (group.as_str(), kind.as_str())),
    };
    let identity = match resolve(config, directory, namespace, owner, &attribution) {
        Ok(identity) => identity,
        Err(mut denial) => {
            // The stamp is not in the object's metadata but in its workflow spec.
            if denial.field == identity::RUN_AS_FIELD {
                kind.stamp_field().clone_into(&mut denial.field);
            }
            return denied(explained(denial, &behalf));
        }
    };
    let username = identity.username();
    let mut decision = Decision {
        identity: Some(username.to_owned()),
        ..Decision::default()
    };
    match webhook {
        Webhook::Mutate => {
            mutation::stamp_workflow(&mut decision.patch, kind, &value, &new, username);
            // A person's stray stamps are removed; anyone else's are refused by validation.
            if matches!(requester, Requester::Person(_)) {
                mutation::unstamp_workflow(&mut decision.patch, &new, username);
            }
        }
        Webhook::Validate => {
            if new.stamp.as_deref() != Some(username) {
                decision.denials.push(Denial::new(
                    "forged_run_as",
                    kind.stamp_field(),
                    format!(
                        "is {:?}; this workflow's pods run as {username}",
                        new.stamp.as_deref().unwrap_or_default()
                    ),
                ));
            }
            if !requester.is_privileged() {
                decision
                    .denials
                    .extend(workflow_copies(&new, Some(username)));
            }
        }
    }
    decision
}

/// Every `homestead.dev/run-as` of a workflow besides its stamp that could decide who a
/// pod runs as other than `runs_as`: any in a template's metadata, and a copy of the pod
/// metadata that names someone else.
fn workflow_copies(view: &WorkflowView, runs_as: Option<&str>) -> Vec<Denial> {
    view.others
        .iter()
        .filter(|found| !found.pod_metadata || found.value.as_deref() != runs_as)
        .map(|found| {
            let why = if found.pod_metadata {
                format!(
                    "is {:?}; this workflow's pods run as {}",
                    found.value.as_deref().unwrap_or_default(),
                    runs_as.unwrap_or("nobody homestead stamped")
                )
            } else {
                "a template may not name who its pods run as: it is merged over the stamp of whoever runs it (homestead stamps spec.podMetadata)".to_owned()
            };
            Denial::new("forged_run_as", found.field(), why)
        })
        .collect()
}

/// A configured kind's object (raw in the request, read here) and its pod templates.
struct CustomRead {
    value: serde_json::Value,
}

impl CustomRead {
    fn read(object: &Object<'_>, what: &str) -> Result<Self, Denial> {
        let text = raw_text(object, what)?;
        let value = json::from_str(text).map_err(|e| unreadable(what, &e))?;
        Ok(CustomRead { value })
    }

    /// The pod templates `pointers` name, each read as a pod.
    fn pods(
        &self,
        pointers: &[Vec<custom::Token>],
        what: &str,
    ) -> Result<Vec<PodView<'_>>, Denial> {
        custom::find(&self.value, pointers)
            .into_iter()
            .map(|found| {
                let at = found.field.trim_end_matches('.').to_owned();
                if !found.value.is_object() {
                    return Err(Denial::new(
                        "invalid_object",
                        at,
                        "is not an object; workloadKinds names it as a pod template",
                    ));
                }
                workload::from_value(found.value, found.pointer, found.field).map_err(|e| {
                    Denial::new(
                        "invalid_object",
                        at,
                        format!("{what}: cannot be read as a pod template: {e}"),
                    )
                })
            })
            .collect()
    }

    /// The object's controller (`metadata.ownerReferences`), as `(group, kind)`.
    fn controller(&self) -> Option<(String, String)> {
        argo::controller(&self.value)
    }
}

/// A configured workload kind (`workloadKinds`) in a managed namespace: each pod template
/// its pointers name is stamped and validated as a Deployment's template is, with one
/// identity for all of them; no other `homestead.dev/run-as` may be anywhere in it but the
/// object's own metadata (its controller might copy it into a pod).
fn decide_custom(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
    kind: &WorkloadKind,
) -> Decision {
    let Admission {
        config, directory, ..
    } = *admission;
    if !request
        .sub_resource
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return Decision::default();
    }
    let update = match request.operation.as_ref() {
        "CREATE" => false,
        "UPDATE" => true,
        _ => return Decision::default(),
    };
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let pointers = kind.pointers();
    let new = match CustomRead::read(object, "object") {
        Ok(read) => read,
        Err(denial) => return denied(denial),
    };
    let pods = match new.pods(&pointers, "object") {
        Ok(pods) => pods,
        Err(denial) => return denied(denial),
    };
    if let Some(denial) = pods.iter().find_map(|pod| too_large(config, pod)) {
        return denied(denial);
    }
    let old = match (update, &request.old_object) {
        (false, _) => None,
        (true, None) => {
            return denied(Denial::new(
                "invalid_object",
                "oldObject",
                "an update carries no old object",
            ));
        }
        (true, Some(old)) => match CustomRead::read(old, "oldObject") {
            Ok(read) => Some(read),
            Err(denial) => return denied(denial),
        },
    };
    let old_pods = match &old {
        None => None,
        Some(old) => match old.pods(&pointers, "oldObject") {
            Ok(pods) => Some(pods),
            Err(denial) => return denied(denial),
        },
    };
    let behalf = match on_behalf(config, request) {
        Ok(behalf) => behalf,
        Err(denial) => return denied(denial),
    };
    let requester = attributed(config, request, &behalf);
    let templates = custom::find(&new.value, &pointers);
    let strays = custom::strays(&new.value, &templates);
    let stray_denials = |requester: Requester<'_>| -> Vec<Denial> {
        if requester.is_privileged() {
            return Vec::new();
        }
        strays
            .iter()
            .map(|stray| {
                Denial::new(
                    "forged_run_as",
                    stray.field.clone(),
                    format!(
                        "only the pod templates of a {} may name who its pods run as (homestead stamps them); its controller could copy this one into a pod",
                        kind.kind
                    ),
                )
            })
            .collect()
    };
    // An update that leaves every pod template as it was changes nobody's identity.
    if let (Some(old), Some(_)) = (&old, &old_pods) {
        let old_templates = custom::find(&old.value, &pointers);
        let same = old_templates.len() == templates.len()
            && old_templates
                .iter()
                .zip(&templates)
                .all(|(a, b)| a.pointer == b.pointer && a.value == b.value);
        if same {
            return Decision {
                denials: match webhook {
                    Webhook::Mutate => Vec::new(),
                    Webhook::Validate => stray_denials(requester),
                },
                ..Decision::default()
            };
        }
    }
    // One identity for every template: the first stamp decides (a person's templates are
    // all stamped with them by mutation), and validation refuses any that says otherwise.
    let stamped = pods.iter().find(|pod| pod.run_as().is_some());
    let run_as = stamped.and_then(PodView::run_as);
    let old_run_as = old_pods
        .as_ref()
        .map(|pods| pods.iter().find_map(PodView::run_as));
    let controller = new.controller();
    let attribution = Attribution {
        requester,
        subject: Subject::Workload,
        webhook,
        run_as,
        old_run_as,
        controller: controller
            .as_ref()
            .map(|(group, kind)| (group.as_str(), kind.as_str())),
    };
    let identity = match resolve(config, directory, namespace, owner, &attribution) {
        Ok(identity) => identity,
        Err(mut denial) => {
            if denial.field == identity::RUN_AS_FIELD
                && let Some(pod) = stamped.or(pods.first())
            {
                denial.field = format!("{}{}", pod.field, identity::RUN_AS_FIELD);
            }
            return denied(explained(denial, &behalf));
        }
    };
    let username = identity.username();
    let mut decision = Decision {
        identity: Some(username.to_owned()),
        ..Decision::default()
    };
    match webhook {
        // As for built-in workloads, a trusted controller's new object (made from one
        // homestead stamped) is left as it is; its pods are mutated when created.
        Webhook::Mutate if !update && matches!(requester, Requester::TrustedController(_)) => {}
        Webhook::Mutate => {
            for pod in &pods {
                mutation::mutate(
                    &mut decision.patch,
                    config,
                    &identity,
                    directory.datasets(namespace),
                    pod,
                );
            }
            // A person's stray stamps are removed; anyone else's are refused by validation.
            if matches!(requester, Requester::Person(_)) {
                for stray in &strays {
                    decision
                        .patch
                        .remove(crate::patch::Pointer::root(&stray.pointer));
                }
            }
        }
        Webhook::Validate => {
            for pod in &pods {
                if pod.run_as() != Some(username) {
                    decision.denials.push(Denial::new(
                        "forged_run_as",
                        format!("{}{}", pod.field, identity::RUN_AS_FIELD),
                        format!(
                            "is {:?}; this {}'s pods run as {username}",
                            pod.run_as().unwrap_or_default(),
                            kind.kind
                        ),
                    ));
                }
                decision
                    .denials
                    .extend(validation::validate_pod(config, &identity, pod));
            }
            decision.denials.extend(stray_denials(requester));
        }
    }
    decision
}

/// A configured kind in a version `workloadKinds` does not list: its templates may be
/// elsewhere, so it is refused in managed namespaces rather than let through unstamped.
fn decide_other_version(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
) -> Decision {
    let managed = request
        .namespace
        .as_deref()
        .is_some_and(|ns| admission.directory.namespace(ns).is_some());
    let plain = request
        .sub_resource
        .as_deref()
        .unwrap_or_default()
        .is_empty();
    if !managed || !plain || !matches!(request.operation.as_ref(), "CREATE" | "UPDATE") {
        return decide_labels(webhook, request, admission);
    }
    let kind = &request.kind;
    let versions: Vec<&str> = admission
        .config
        .workload_kinds
        .iter()
        .filter(|k| k.group == kind.group.as_ref() && k.kind == kind.kind.as_ref())
        .map(|k| k.version.as_str())
        .collect();
    denied(Denial::new(
        "unknown_kind",
        "apiVersion",
        format!(
            "{}/{} {}: workloadKinds lists its pod templates for {} only, so homestead cannot tell where this version keeps them",
            kind.group,
            kind.version,
            kind.kind,
            versions.join(", ")
        ),
    ))
}

/// `exec`, `attach`, `port-forward` and `proxy` into a pod of a managed namespace: only by
/// whoever may act for the user the pod runs as (validate only). The review carries only
/// the options, so the pod's user comes from the pod index; an unknown pod is refused.
fn decide_connect(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    let Admission {
        config,
        directory,
        pods,
    } = *admission;
    if webhook != Webhook::Validate || request.operation != "CONNECT" {
        return Decision::default();
    }
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    let pod = request.name.as_deref().unwrap_or_default();
    let what = request.sub_resource.as_deref().unwrap_or("connect");
    let requester = requester(config, request);
    let Some(label) = pods.user_of(namespace, pod) else {
        if requester.is_privileged() {
            return Decision::default();
        }
        return denied(Denial::new(
            "unknown_pod",
            "name",
            format!(
                "homestead does not know which user pod {pod:?} runs as (it has no homestead.dev/user label, or is not in homestead's cache yet), so {what} into it is refused"
            ),
        ));
    };
    let Some(user) = directory.user_by_name(&label) else {
        return denied(Denial::new(
            "unknown_user",
            "name",
            format!("pod {pod:?} runs as User {label:?}, which is not in the directory"),
        ));
    };
    if acts_for(config, owner, requester, &user.username) {
        return Decision {
            identity: Some(user.username.clone()),
            ..Decision::default()
        };
    }
    denied(Denial::new(
        "not_owner",
        "name",
        format!(
            "pod {pod:?} runs as {}; only {} (or a cluster admin) may {what} into it, {} may not",
            user.username,
            user.username,
            requester.name()
        ),
    ))
}

#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
}

/// The metadata of a raw object (`None` when there is no object).
fn metadata(object: Option<&Object<'_>>, what: &str) -> Result<Option<ObjectMeta>, Denial> {
    match object {
        None => Ok(None),
        Some(object) => json::from_str::<MetadataOnly>(raw_text(object, what)?)
            .map(|doc| doc.metadata)
            .map_err(|e| unreadable(what, &e)),
    }
}

/// The metadata of `oldObject` and `object`.
fn both_metadata(
    request: &Request<'_>,
) -> Result<(Option<ObjectMeta>, Option<ObjectMeta>), Denial> {
    Ok((
        metadata(request.old_object.as_ref(), "oldObject")?,
        metadata(request.object.as_ref(), "object")?,
    ))
}

/// Namespace CREATE/UPDATE/DELETE (validate only).
fn decide_namespace(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
) -> Decision {
    if webhook != Webhook::Validate
        || !matches!(request.operation.as_ref(), "CREATE" | "UPDATE" | "DELETE")
    {
        return Decision::default();
    }
    let (old, new) = match both_metadata(request) {
        Ok(both) => both,
        Err(denial) => return denied(denial),
    };
    let name = request
        .name
        .as_deref()
        .or_else(|| old.as_ref().and_then(|m| m.name.as_deref()))
        .unwrap_or_default();
    let managed_in_directory = admission.directory.namespace(name).is_some();
    Decision {
        denials: validation::validate_namespace(
            requester(admission.config, request),
            &request.operation,
            managed_in_directory,
            old.as_ref(),
            new.as_ref(),
        ),
        ..Decision::default()
    }
}

/// Any other object carrying homestead's labels (validate only): only homestead adds,
/// changes or removes them.
fn decide_labels(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    if webhook != Webhook::Validate || !matches!(request.operation.as_ref(), "CREATE" | "UPDATE") {
        return Decision::default();
    }
    let requester = requester(admission.config, request);
    if matches!(requester, Requester::Homestead(_)) {
        return Decision::default();
    }
    match both_metadata(request) {
        Ok((old, new)) => Decision {
            denials: validation::homestead_labels_changed(old.as_ref(), new.as_ref())
                .into_iter()
                .map(|key| validation::label_denial(key, requester.name()))
                .collect(),
            ..Decision::default()
        },
        Err(denial) => denied(denial),
    }
}

/// PersistentVolumeClaim CREATE/UPDATE/DELETE in managed namespaces (validate only).
fn decide_claim(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    let Admission {
        config, directory, ..
    } = *admission;
    if webhook != Webhook::Validate {
        return Decision::default();
    }
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    let read = |object: Option<&Object<'_>>,
                what: &str|
     -> Result<Option<PersistentVolumeClaim>, Denial> {
        match object {
            None => Ok(None),
            Some(object) => json::from_str(raw_text(object, what)?)
                .map(Some)
                .map_err(|e| unreadable(what, &e)),
        }
    };
    let (old, new) = match (
        read(request.old_object.as_ref(), "oldObject"),
        read(request.object.as_ref(), "object"),
    ) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(denial), _) | (_, Err(denial)) => return denied(denial),
    };
    let name = request
        .name
        .as_deref()
        .or_else(|| new.as_ref().and_then(|c| c.metadata.name.as_deref()))
        .or_else(|| old.as_ref().and_then(|c| c.metadata.name.as_deref()))
        .unwrap_or_default();
    Decision {
        denials: validation::validate_claim(
            owner,
            requester(config, request),
            &request.operation,
            name,
            old.as_ref(),
            new.as_ref(),
        ),
        ..Decision::default()
    }
}

/// VolumeSnapshot CREATE/UPDATE in managed namespaces (validate only).
fn decide_snapshot(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    let Admission {
        config, directory, ..
    } = *admission;
    if webhook != Webhook::Validate || !matches!(request.operation.as_ref(), "CREATE" | "UPDATE") {
        return Decision::default();
    }
    let Some(namespace) = request.namespace.as_deref() else {
        return Decision::default();
    };
    let Some(owner) = directory.namespace(namespace) else {
        return Decision::default();
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Source {
        #[serde(default)]
        persistent_volume_claim_name: Option<String>,
    }
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        source: Option<Source>,
    }
    #[derive(Deserialize)]
    struct Snapshot {
        #[serde(default)]
        spec: Option<Spec>,
    }
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let snapshot = match raw_text(object, "object")
        .and_then(|text| json::from_str::<Snapshot>(text).map_err(|e| unreadable("object", &e)))
    {
        Ok(snapshot) => snapshot,
        Err(denial) => return denied(denial),
    };
    let claim = snapshot
        .spec
        .and_then(|s| s.source)
        .and_then(|s| s.persistent_volume_claim_name);
    Decision {
        denials: validation::validate_snapshot(owner, requester(config, request), claim.as_deref()),
        ..Decision::default()
    }
}

/// User, Session and Project CREATE/UPDATE (validate only; cluster-scoped, so not
/// namespace-gated).
fn decide_resource(webhook: Webhook, request: &Request<'_>, admission: &Admission<'_>) -> Decision {
    if webhook != Webhook::Validate || !matches!(request.operation.as_ref(), "CREATE" | "UPDATE") {
        return Decision::default();
    }
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let object = match raw_text(object, "object") {
        Ok(text) => text,
        Err(denial) => return denied(denial),
    };
    let Admission {
        config, directory, ..
    } = *admission;
    // Only a cluster admin lets a delete through the site's blocking hooks.
    let skip = match both_metadata(request) {
        Ok((old, new)) => {
            validation::skip_hooks_denial(requester(config, request), old.as_ref(), new.as_ref())
        }
        Err(denial) => Some(denial),
    };
    let mut denials = if request.kind.kind == "User" {
        match json::from_str::<User>(object) {
            Ok(user) => validation::validate_user(config, directory, &user),
            Err(e) => vec![unreadable("object", &e)],
        }
    } else if request.kind.kind == "Project" {
        let old = match request
            .old_object
            .as_ref()
            .map(|o| raw_text(o, "oldObject"))
        {
            None => Ok(None),
            Some(Ok(text)) => json::from_str::<Project>(text)
                .map(Some)
                .map_err(|e| unreadable("oldObject", &e)),
            Some(Err(denial)) => Err(denial),
        };
        match (json::from_str::<Project>(object), old) {
            (Ok(project), Ok(old)) => {
                validation::validate_project(config, directory, &project, old.as_ref())
            }
            (Err(e), _) => vec![unreadable("object", &e)],
            (_, Err(denial)) => vec![denial],
        }
    } else {
        match json::from_str::<Session>(object) {
            Ok(session) => validation::validate_session(config, directory, &session),
            Err(e) => vec![unreadable("object", &e)],
        }
    };
    denials.extend(skip);
    Decision {
        denials,
        ..Decision::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission_parts() -> (Config, Directory) {
        (Config::default(), Directory::default())
    }

    proptest::proptest! {
        #[test]
        fn the_status_is_written_as_serde_json_writes_it(
            message in crate::patch::json::tricky(),
            reason in crate::patch::json::tricky(),
            code in proptest::prelude::any::<u16>(),
        ) {
            let status = StatusOut { code, reason: &reason, message: &message };
            let mut out = Vec::new();
            status.write_json(&mut out);
            proptest::prop_assert_eq!(out, serde_json::to_vec(&status).unwrap());
        }

        #[test]
        fn the_utf8_check_agrees_with_the_standard_library(
            // Valid text with bytes changed, cut anywhere: long enough for the SIMD
            // blocks, with sequences cut short, overlong, surrogates and stray bytes.
            text in proptest::prelude::any::<String>(),
            changes in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..3),
            repeat in 1usize..40,
            cut in proptest::prelude::any::<usize>(),
        ) {
            let mut bytes = text.repeat(repeat).into_bytes();
            for (at, byte) in changes {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
            }
            bytes.truncate(cut % (bytes.len() + 1));
            match (utf8(&bytes), std::str::from_utf8(&bytes)) {
                (Ok(ours), Ok(std)) => proptest::prop_assert_eq!(ours, std),
                (Err(ours), Err(std)) => proptest::prop_assert_eq!(
                    ours.to_string(),
                    format!("request is not a JSON AdmissionReview: the body is not UTF-8: {std}")
                ),
                (ours, std) => proptest::prop_assert!(false, "{:?} vs {:?}", ours.map(str::len), std.map(str::len)),
            }
        }
    }

    #[test]
    fn envelope_errors_name_the_problem() {
        let (config, directory) = admission_parts();
        let admission = Admission {
            config: &config,
            directory: &directory,
            pods: &crate::pod_index::PodUsers::default(),
        };
        let err = review(Webhook::Mutate, b"not json", &admission).unwrap_err();
        assert!(matches!(err, ReviewError::NotJson(_)), "{err}");
        let err = review(Webhook::Mutate, b"{\"kind\":\"\xff\"}", &admission).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        let err = review(
            Webhook::Mutate,
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{}}"#,
            &admission,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("admission.k8s.io/v1beta1"),
            "{err}"
        );
        let err = review(
            Webhook::Mutate,
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            &admission,
        )
        .unwrap_err();
        assert!(matches!(err, ReviewError::NoRequest), "{err}");
    }

    #[test]
    fn uid_is_echoed() {
        let (config, directory) = admission_parts();
        let admission = Admission {
            config: &config,
            directory: &directory,
            pods: &crate::pod_index::PodUsers::default(),
        };
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"abc-123","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","namespace":"default","userInfo":{"username":"ada"},"object":{"metadata":{"name":"p"}}}}"#;
        let reviewed = review(Webhook::Validate, body, &admission).unwrap();
        let out: serde_json::Value = serde_json::from_slice(&reviewed.body).unwrap();
        assert_eq!(out["apiVersion"], API_VERSION);
        assert_eq!(out["response"]["uid"], "abc-123");
        assert_eq!(out["response"]["allowed"], true);
        assert!(out["response"].get("patch").is_none());
        assert_eq!(reviewed.summary.verdict, Verdict::Allowed);
        assert_eq!("validate".parse::<Webhook>().unwrap(), Webhook::Validate);
        assert!("mutating".parse::<Webhook>().is_err());
    }
}
