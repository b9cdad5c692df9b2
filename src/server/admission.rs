//! The admission HTTP service: `POST /mutate` and `POST /validate` with an AdmissionReview
//! v1 JSON body, answered by the admission core.
//!
//! Requests are checked in this order, each refusal answered with a JSON body
//! `{"error": "..."}` and counted in `homestead_http_errors_total{status}`:
//! unknown path → 404; method other than POST → 405; content type other than
//! `application/json` (an optional `charset=utf-8` is fine) → 415; body larger than the
//! limit → 413; no free request slot or body not received within the request timeout → 503
//! or 408; body that is not an AdmissionReview → 400. Nothing a client sends stops the
//! server from answering the next request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tokio::sync::{Semaphore, TryAcquireError};

use crate::state::SharedState;
use homestead_core::review::{Admission, Reviewed, Verdict, Webhook, review};

use super::Limits;
use super::metrics::{DenialLabels, ServerMetrics, StatusLabels};

/// Answers admission requests from the shared state.
#[derive(Debug)]
pub struct AdmissionService {
    state: Arc<SharedState>,
    metrics: ServerMetrics,
    slots: Semaphore,
    request_timeout: Duration,
    max_body_bytes: usize,
}

/// A refused request: status and message.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// `{"error": message}` with `status`.
pub fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    json_response(status, Bytes::from(body))
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// True when the content type is `application/json`, optionally with `charset=utf-8`.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // What the API server sends: decided without splitting or UTF-8 checks.
    if value.as_bytes() == b"application/json" {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let mut parts = value.split(';');
    let media_type = parts.next().unwrap_or_default().trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|parameter| {
        let parameter = parameter.trim();
        if parameter.is_empty() {
            return true;
        }
        match parameter.split_once('=') {
            Some((name, value)) => {
                name.trim().eq_ignore_ascii_case("charset")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            }
            None => false,
        }
    })
}

/// Which webhook a path names.
pub fn route(path: &str) -> Option<Webhook> {
    match path {
        "/mutate" => Some(Webhook::Mutate),
        "/validate" => Some(Webhook::Validate),
        _ => None,
    }
}

struct InFlight<'a>(&'a ServerMetrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a ServerMetrics) -> Self {
        metrics.in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl AdmissionService {
    /// A service deciding from `state`, recording into `metrics`, within `limits`.
    pub fn new(state: Arc<SharedState>, metrics: ServerMetrics, limits: &Limits) -> Self {
        Self {
            state,
            metrics,
            slots: Semaphore::new(limits.max_concurrent_requests.max(1)),
            request_timeout: limits.request_timeout,
            max_body_bytes: limits.max_body_bytes,
        }
    }

    /// Answers one request; never fails (every problem is an HTTP error response).
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let _in_flight = InFlight::enter(&self.metrics);
        match self.answer(request, started).await {
            Ok(response) => response,
            Err(refusal) => {
                self.metrics
                    .http_errors
                    .get_or_create(&StatusLabels {
                        status: refusal.status.as_u16(),
                    })
                    .inc();
                tracing::debug!(status = refusal.status.as_u16(), error = %refusal.message, "request refused");
                let mut response = error_response(refusal.status, &refusal.message);
                if refusal.status == StatusCode::METHOD_NOT_ALLOWED {
                    response
                        .headers_mut()
                        .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
                }
                response
            }
        }
    }

    async fn answer<B>(
        &self,
        request: Request<B>,
        started: Instant,
    ) -> Result<Response<Full<Bytes>>, Refusal>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = request.uri().path();
        let Some(webhook) = route(path) else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no webhook at {path:?}; use /mutate or /validate"),
            ));
        };
        if request.method() != Method::POST {
            return Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {} not allowed; use POST", request.method()),
            ));
        }
        if !is_json_content_type(request.headers()) {
            let found = request
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(Refusal::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                match found {
                    Some(found) => {
                        format!("content type {found:?} not supported; use application/json")
                    }
                    None => "no content type; use application/json".to_owned(),
                },
            ));
        }
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let deadline = tokio::time::Instant::from_std(started) + self.request_timeout;
        if declared.is_some_and(|n| n > self.max_body_bytes as u64) {
            // Read what is sent (and drop it) so the client sees the 413.
            if declared.is_some_and(|n| n <= 2 * self.max_body_bytes as u64) {
                let _ = self.read_body(request.into_body(), deadline).await;
            }
            return Err(self.too_large());
        }

        let _permit = match self.slots.try_acquire() {
            // A free slot (the usual case): no timer.
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(Self::shutting_down()),
            Err(TryAcquireError::NoPermits) => {
                let Ok(permit) = tokio::time::timeout_at(deadline, self.slots.acquire()).await
                else {
                    return Err(Refusal::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "server busy: no request slot free within {}",
                            humantime::format_duration(self.request_timeout)
                        ),
                    ));
                };
                permit.map_err(|_| Self::shutting_down())?
            }
        };
        let body = self.read_body(request.into_body(), deadline).await?;

        let directory = self.state.directory.load();
        let admission = Admission {
            config: &self.state.config,
            directory: &directory,
            pods: &self.state.pods,
        };
        let reviewed = review(webhook, &body, &admission)
            .map_err(|e| Refusal::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        self.record(webhook, &reviewed, started);
        Ok(json_response(StatusCode::OK, Bytes::from(reviewed.body)))
    }

    /// Reads the body within the limit. A body over the limit is read on and dropped, up
    /// to as much again, before the 413 is sent: an HTTP/2 client still sending when its
    /// response ends gets its stream reset, and never sees the answer.
    async fn read_body<B>(&self, body: B, deadline: tokio::time::Instant) -> Result<Bytes, Refusal>
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let mut body = std::pin::pin!(body);
        // A body that arrives in one frame (the usual case) is kept as it came, uncopied.
        let mut first: Option<Bytes> = None;
        let mut buffer = bytes::BytesMut::new();
        let mut received = 0usize;
        loop {
            let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
                Err(_) if received > self.max_body_bytes => return Err(self.too_large()),
                Err(_) => {
                    return Err(Refusal::new(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "request body not received within {}",
                            humantime::format_duration(self.request_timeout)
                        ),
                    ));
                }
                Ok(None) => break,
                Ok(Some(Err(_))) if received > self.max_body_bytes => {
                    return Err(self.too_large());
                }
                Ok(Some(Err(e))) => {
                    return Err(Refusal::new(
                        StatusCode::BAD_REQUEST,
                        format!("reading the request body: {e}"),
                    ));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received = received.saturating_add(data.len());
            if received > 2 * self.max_body_bytes {
                return Err(self.too_large());
            }
            if received > self.max_body_bytes {
                first = None;
                buffer = bytes::BytesMut::new();
            } else if first.is_none() && buffer.is_empty() {
                first = Some(data);
            } else {
                if let Some(first) = first.take() {
                    buffer.reserve(received);
                    buffer.extend_from_slice(&first);
                }
                buffer.extend_from_slice(&data);
            }
        }
        if received > self.max_body_bytes {
            return Err(self.too_large());
        }
        Ok(first.unwrap_or_else(|| buffer.freeze()))
    }

    fn shutting_down() -> Refusal {
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
    }

    fn too_large(&self) -> Refusal {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {} bytes", self.max_body_bytes),
        )
    }

    fn record(&self, webhook: Webhook, reviewed: &Reviewed, started: Instant) {
        let summary = &reviewed.summary;
        let webhook_name = webhook.as_str();
        self.metrics.count_request(
            webhook_name,
            &summary.kind,
            &summary.operation,
            summary.verdict.as_str(),
        );
        self.metrics
            .observe_latency(webhook_name, started.elapsed().as_secs_f64());
        match &summary.verdict {
            Verdict::Denied {
                reason, message, ..
            } => {
                self.metrics
                    .denials
                    .get_or_create(&DenialLabels {
                        webhook: webhook_name,
                        reason,
                    })
                    .inc();
                tracing::info!(
                    webhook = webhook_name,
                    uid = %summary.uid,
                    namespace = summary.namespace.as_deref().unwrap_or(""),
                    kind = %summary.kind,
                    operation = %summary.operation,
                    identity = summary.identity.as_deref().unwrap_or(""),
                    reason,
                    dry_run = summary.dry_run,
                    message = %message,
                    "denied"
                );
            }
            verdict => {
                tracing::debug!(
                    webhook = webhook_name,
                    uid = %summary.uid,
                    namespace = summary.namespace.as_deref().unwrap_or(""),
                    kind = %summary.kind,
                    operation = %summary.operation,
                    identity = summary.identity.as_deref().unwrap_or(""),
                    result = verdict.as_str(),
                    patch_operations = match verdict {
                        Verdict::Patched { operations } => *operations,
                        _ => 0,
                    },
                    dry_run = summary.dry_run,
                    micros = started.elapsed().as_micros() as u64,
                    "reviewed"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        headers
    }

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(is_json_content_type(&headers(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
            "application/json; boundary",
            "application/x-www-form-urlencoded",
        ] {
            assert!(!is_json_content_type(&headers(bad)), "{bad}");
        }
        assert!(!is_json_content_type(&HeaderMap::new()));
    }

    #[test]
    fn routes() {
        assert_eq!(route("/mutate"), Some(Webhook::Mutate));
        assert_eq!(route("/validate"), Some(Webhook::Validate));
        assert_eq!(route("/mutate/"), None);
        assert_eq!(route("/"), None);
    }
}
