//! AdmissionReview v1 in, AdmissionReview v1 out: the one entry point of the admission
//! core. [`review`] reads the request in one pass (borrowing from the body; a pod is parsed
//! in place, other objects are kept raw, see [`crate::envelope`]), decides, and
//! writes the response; it never does I/O.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::config::Config;
use crate::denial::Denial;
use crate::directory::Directory;
use crate::envelope::{self, Object, Request};
use crate::identity::{Attribution, Phase, Requester, Subject, resolve};
use crate::mutation;
use crate::patch::{Patch, PatchJson};
use crate::pod::Text;
use crate::resources::{self, Session, User};
use crate::validation;
use crate::workload::{PodKind, PodView};

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
    let body = std::str::from_utf8(body)
        .map_err(|e| ReviewError::NotJson(format!("the body is not UTF-8: {e}")))?;
    let envelope = envelope::parse(body).map_err(|e| ReviewError::NotJson(e.to_string()))?;
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

/// The start of every response, up to the value of `uid`.
const RESPONSE_HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

/// Writes the AdmissionReview response. It is written directly rather than through a
/// serialised struct so that the base64 patch (which never needs escaping) is copied
/// once instead of being scanned as a JSON string.
fn respond(request: Request<'_>, decision: Decision) -> Result<Reviewed, ReviewError> {
    let serialize = |e: &dyn fmt::Display| ReviewError::Serialize(e.to_string());
    // A denied request carries no patch, whatever was written before the denial.
    let patch = if decision.denials.is_empty() {
        decision.patch.finish().map_err(|e| serialize(&e))?
    } else {
        None
    };
    let mut body = Vec::with_capacity(
        RESPONSE_HEAD.len() + 64 + patch.as_ref().map_or(0, |p| p.json.len() / 3 * 4 + 40),
    );
    body.extend_from_slice(RESPONSE_HEAD);
    serde_json::to_writer(&mut body, request.uid.as_ref()).map_err(|e| serialize(&e))?;
    let verdict = if let Some(first) = decision.denials.first() {
        let message = decision
            .denials
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        body.extend_from_slice(br#","allowed":false,"status":"#);
        let status = StatusOut {
            code: 403,
            reason: "Forbidden",
            message: &message,
        };
        serde_json::to_writer(&mut body, &status).map_err(|e| serialize(&e))?;
        Verdict::Denied {
            reason: first.reason,
            message,
        }
    } else if let Some(PatchJson { json, operations }) = patch {
        body.extend_from_slice(br#","allowed":true,"patchType":"JSONPatch","patch":""#);
        let engine = &base64::engine::general_purpose::STANDARD;
        let start = body.len();
        body.resize(
            start + base64::encoded_len(json.len(), true).unwrap_or_default(),
            0,
        );
        let written = engine
            .encode_slice(&json, &mut body[start..])
            .map_err(|e| serialize(&e))?;
        body.truncate(start + written);
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
            uid: request.uid.into_owned(),
            kind: request.kind.kind.into_owned(),
            operation: request.operation.into_owned(),
            namespace: request.namespace.map(Text::into_owned),
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

fn no_object() -> Denial {
    Denial::new("invalid_object", "object", "the request carries no object")
}

/// The JSON text of an object of a kind other than a pod. Only pods are parsed in place,
/// so a parsed pod here would mean the envelope and the kind dispatch disagree: that is
/// refused, never taken for an absent object.
fn raw_text<'a>(object: &Object<'a>, what: &str) -> Result<&'a str, Denial> {
    object.raw().ok_or_else(|| {
        Denial::new(
            "invalid_object",
            what,
            "was read as a pod where another kind was expected",
        )
    })
}

/// Pods, the ephemeral-containers subresource and workload templates.
fn decide_pod(
    webhook: Webhook,
    request: &Request<'_>,
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
    let update = match request.operation.as_ref() {
        "CREATE" => false,
        "UPDATE" => true,
        _ => return Decision::default(),
    };
    let Some(object) = &request.object else {
        return denied(no_object());
    };
    let pod = match object.pod(pod_kind) {
        Ok(pod) => pod,
        Err(e) => return denied(unreadable("object", &e)),
    };
    let old = match (update, &request.old_object) {
        (true, Some(old)) => match old.pod(pod_kind) {
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
        old_run_as: old.as_deref().map(PodView::run_as),
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
            mutation::mutate(
                &mut decision.patch,
                config,
                &identity,
                directory.datasets(namespace),
                &pod,
            );
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
fn decide_namespace(
    webhook: Webhook,
    request: &Request<'_>,
    admission: &Admission<'_>,
) -> Decision {
    if webhook != Webhook::Validate || !matches!(request.operation.as_ref(), "UPDATE" | "DELETE") {
        return Decision::default();
    }
    let metadata =
        |object: &Option<Object<'_>>, what: &str| -> Result<Option<ObjectMeta>, Denial> {
            match object {
                None => Ok(None),
                Some(object) => serde_json::from_str::<MetadataOnly>(raw_text(object, what)?)
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
    let denials = if request.kind.kind == "User" {
        match serde_json::from_str::<User>(object) {
            Ok(user) => validation::validate_user(&user),
            Err(e) => vec![unreadable("object", &e)],
        }
    } else {
        match serde_json::from_str::<Session>(object) {
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
