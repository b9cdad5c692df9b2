//! The admin listener (plain HTTP/1.1): `GET /livez`, `GET /readyz`, `GET /metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Health;

/// Content type of the OpenMetrics text exposition written by prometheus-client.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Health and metrics endpoints.
#[derive(Debug, Clone)]
pub struct AdminServer {
    health: Arc<Health>,
    registry: Arc<Registry>,
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl AdminServer {
    /// Serves `health` and `registry`.
    pub fn new(health: Arc<Health>, registry: Arc<Registry>) -> Self {
        Self { health, registry }
    }

    /// Answers one admin request.
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        match request.uri().path() {
            "/livez" | "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.health.not_ready_reason() {
                None => text(StatusCode::OK, "ok\n"),
                Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
            },
            "/metrics" => {
                let mut response = Response::new(Full::new(Bytes::from(super::metrics::encode(
                    &self.registry,
                ))));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(METRICS_CONTENT_TYPE),
                );
                response
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: try /livez, /readyz or /metrics\n",
            ),
        }
    }

    /// Serves until `stop` is cancelled.
    pub async fn serve(self, listener: TcpListener, stop: CancellationToken) {
        let this = Arc::new(self);
        loop {
            let (tcp, peer) = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an admin connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let this = this.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |request: Request<Incoming>| {
                    let response = this.respond(&request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10));
                let conn = builder.serve_connection(TokioIo::new(tcp), svc);
                tokio::select! {
                    result = conn => if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                    },
                    () = stop.cancelled() => {}
                }
            });
        }
    }
}
