//! AdmissionReview v1 in, AdmissionReview v1 out: the one entry point of the admission
//! core. [`review`] parses the envelope (leaving `object`/`oldObject` raw until the kind is
//! known), decides, and serialises the response; it never does I/O.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::core::config::Config;
use crate::core::denial::Denial;
use crate::core::directory::Directory;
use crate::core::identity::{Attribution, Phase, Requester, Subject, resolve};
use crate::core::mutation;
use crate::core::resources::{self, Session, User};
use crate::core::validation;
use crate::core::workload::{self, PodKind, PodView};

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

/// What admission decides from: the configuration and the current directory.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// Users, sessions, managed namespaces and dataset claims.
    pub directory: &'a Directory,
}

/// A produced response and what it decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewed {
    /// The AdmissionReview v1 response, as JSON.
    pub body: Vec<u8>,
    /// What was decided, for logs and metrics.
    pub summary: Summary,
}

/// What a review decided, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// `request.uid`.
    pub uid: String,
    /// `request.kind.kind`, e.g. `Pod`.
    pub kind: String,
    /// `request.operation`, e.g. `CREATE`.
    pub operation: String,
    /// `request.namespace`, if any.
    pub namespace: Option<String>,
    /// The username the object was decided to run as, when one was decided.
    pub identity: Option<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// `request.dryRun`.
    pub dry_run: bool,
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

/// The request envelope; `object` and `oldObject` stay raw until the kind is known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewIn {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    request: Option<Request>,
}

/// `group` and `kind` of the object (the version does not matter to the rules).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
}

/// Who sent the request.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UserInfo {
    #[serde(default)]
    pub username: String,
}

/// `request` of an AdmissionReview.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub user_info: UserInfo,
    #[serde(default)]
    pub object: Option<Box<RawValue>>,
    #[serde(default)]
    pub old_object: Option<Box<RawValue>>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// What the core decided for one request, before it is serialised.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    /// The username decided, if any.
    pub identity: Option<String>,
    /// Patch operations (mutate only).
    pub patch: Vec<json_patch::PatchOperation>,
    /// Denials; empty means allowed.
    pub denials: Vec<Denial>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewOut<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
}

#[derive(Serialize)]
struct StatusOut<'a> {
    code: u16,
    reason: &'static str,
    message: &'a str,
}

/// Reviews one AdmissionReview v1 request body for `webhook` and returns the response.
pub fn review(
    webhook: Webhook,
    body: &[u8],
    admission: &Admission<'_>,
) -> Result<Reviewed, ReviewError> {
    let envelope: ReviewIn =
        serde_json::from_slice(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
    let api_version = envelope.api_version.unwrap_or_default();
    let kind = envelope.kind.unwrap_or_default();
    if api_version != API_VERSION || kind != KIND {
        return Err(ReviewError::NotAdmissionReview { api_version, kind });
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

fn respond(request: Request, decision: Decision) -> Result<Reviewed, ReviewError> {
    let (verdict, message, patch) = if let Some(first) = decision.denials.first() {
        let message = decision
            .denials
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        (
            Verdict::Denied {
                reason: first.reason,
                message: message.clone(),
            },
            Some(message),
            None,
        )
    } else if decision.patch.is_empty() {
        (Verdict::Allowed, None, None)
    } else {
        let json = serde_json::to_vec(&decision.patch)
            .map_err(|e| ReviewError::Serialize(e.to_string()))?;
        (
            Verdict::Patched {
                operations: decision.patch.len(),
            },
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(json)),
        )
    };
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: KIND,
        response: ResponseOut {
            uid: &request.uid,
            allowed: message.is_none(),
            status: message.as_deref().map(|message| StatusOut {
                code: 403,
                reason: "Forbidden",
                message,
            }),
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
        },
    };
    let body = serde_json::to_vec(&out).map_err(|e| ReviewError::Serialize(e.to_string()))?;
    Ok(Reviewed {
        body,
        summary: Summary {
            uid: request.uid,
            kind: request.kind.kind,
            operation: request.operation,
            namespace: request.namespace,
            identity: decision.identity,
            verdict,
            dry_run: request.dry_run.unwrap_or(false),
        },
    })
}

/// Decides one well-formed request.
fn decide(webhook: Webhook, request: &Request, admission: &Admission<'_>) -> Decision {
    let kind = &request.kind;
    match (kind.group.as_str(), kind.kind.as_str()) {
        (resources::GROUP, "User" | "Session") => decide_resource(webhook, request, admission),
        ("", "Namespace") => decide_namespace(webhook, request, admission),
        (group, name) => match PodKind::from_group_kind(group, name) {
            Some(pod_kind) => decide_pod(webhook, request, admission, pod_kind),
            None => Decision::default(),
        },
    }
}

fn denied(denial: Denial) -> Decision {
    Decision {
        denials: vec![denial],
        ..Decision::default()
    }
}

fn unreadable(what: &str, e: &serde_json::Error) -> Denial {
    Denial::new("invalid_object", what, format!("cannot be read: {e}"))
}

/// Pods, the ephemeral-containers subresource and workload templates.
fn decide_pod(
    webhook: Webhook,
    request: &Request,
    admission: &Admission<'_>,
    pod_kind: PodKind,
) -> Decision {
    let Admission { config, directory } = *admission;
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
    let update = match request.operation.as_str() {
        "CREATE" => false,
        "UPDATE" => true,
        _ => return Decision::default(),
    };
    let Some(object) = &request.object else {
        return denied(Denial::new(
            "invalid_object",
            "object",
            "the request carries no object",
        ));
    };
    let pod = match workload::parse(pod_kind, object.get()) {
        Ok(pod) => pod,
        Err(e) => return denied(unreadable("object", &e)),
    };
    let old = match (update, &request.old_object) {
        (true, Some(old)) => match workload::parse(pod_kind, old.get()) {
            Ok(old) => Some(old),
            Err(e) => return denied(unreadable("oldObject", &e)),
        },
        _ => None,
    };
    let phase = match webhook {
        Webhook::Mutate => Phase::Mutate,
        Webhook::Validate => Phase::Validate,
    };
    let attribution = Attribution {
        requester: Requester::classify(config, &request.user_info.username),
        subject,
        phase,
        run_as: pod.run_as(),
        old_run_as: old.as_ref().map(PodView::run_as),
    };
    let identity = match resolve(config, directory, namespace, owner, &attribution) {
        Ok(identity) => identity,
        Err(denial) => return denied(denial),
    };
    let mut decision = Decision {
        identity: Some(identity.username().to_owned()),
        ..Decision::default()
    };
    match webhook {
        // A pod's spec is fixed once created, and ephemeral containers are not mutated:
        // only pod creations and workload templates are patched.
        Webhook::Mutate if subject == Subject::Workload || (subject == Subject::Pod && !update) => {
            decision.patch =
                mutation::mutate(config, &identity, directory.datasets(namespace), &pod);
        }
        Webhook::Mutate => {}
        Webhook::Validate => decision.denials = validation::validate_pod(config, &identity, &pod),
    }
    decision
}

#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
}

/// Namespace UPDATE/DELETE (validate only).
fn decide_namespace(webhook: Webhook, request: &Request, admission: &Admission<'_>) -> Decision {
    if webhook != Webhook::Validate || !matches!(request.operation.as_str(), "UPDATE" | "DELETE") {
        return Decision::default();
    }
    let metadata =
        |raw: &Option<Box<RawValue>>, what: &str| -> Result<Option<ObjectMeta>, Denial> {
            match raw {
                None => Ok(None),
                Some(raw) => serde_json::from_str::<MetadataOnly>(raw.get())
                    .map(|doc| doc.metadata)
                    .map_err(|e| unreadable(what, &e)),
            }
        };
    let (old, new) = match (
        metadata(&request.old_object, "oldObject"),
        metadata(&request.object, "object"),
    ) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(denial), _) | (_, Err(denial)) => return denied(denial),
    };
    let name = request
        .name
        .as_deref()
        .or_else(|| old.as_ref().and_then(|m| m.name.as_deref()))
        .unwrap_or_default();
    let managed_in_directory = admission.directory.namespace(name).is_some();
    Decision {
        denials: validation::validate_namespace(
            admission.config,
            &request.user_info.username,
            &request.operation,
            managed_in_directory,
            old.as_ref(),
            new.as_ref(),
        ),
        ..Decision::default()
    }
}

/// User and Session CREATE/UPDATE (validate only; cluster-scoped, so not namespace-gated).
fn decide_resource(webhook: Webhook, request: &Request, admission: &Admission<'_>) -> Decision {
    if webhook != Webhook::Validate || !matches!(request.operation.as_str(), "CREATE" | "UPDATE") {
        return Decision::default();
    }
    let Some(object) = &request.object else {
        return denied(Denial::new(
            "invalid_object",
            "object",
            "the request carries no object",
        ));
    };
    let denials = if request.kind.kind == "User" {
        match serde_json::from_str::<User>(object.get()) {
            Ok(user) => validation::validate_user(&user),
            Err(e) => vec![unreadable("object", &e)],
        }
    } else {
        match serde_json::from_str::<Session>(object.get()) {
            Ok(session) => validation::validate_session(admission.config, &session),
            Err(e) => vec![unreadable("object", &e)],
        }
    };
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

    #[test]
    fn envelope_errors_name_the_problem() {
        let (config, directory) = admission_parts();
        let admission = Admission {
            config: &config,
            directory: &directory,
        };
        let err = review(Webhook::Mutate, b"not json", &admission).unwrap_err();
        assert!(matches!(err, ReviewError::NotJson(_)), "{err}");
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
