//! A site hook for the tests: a real HTTP/1.1 server (plain, or TLS with a given
//! certificate) on 127.0.0.1 and a free port, which records every request and answers as
//! the test scripts it: queued replies first, then a standing one.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How the hook answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// This status and body.
    Status(u16, String),
    /// Never: the request hangs until the caller gives up.
    Hang,
}

impl Reply {
    /// `200 OK`.
    pub fn ok() -> Self {
        Reply::Status(200, "ok".into())
    }
}

/// One request the hook received.
#[derive(Clone, Debug)]
pub struct Seen {
    /// Request path (and query).
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body, parsed as JSON (`Null` if it was not JSON).
    pub body: serde_json::Value,
}

impl Seen {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The payload's `eventType`.
    pub fn event(&self) -> &str {
        self.body["eventType"].as_str().unwrap_or_default()
    }

    /// The payload's `name`.
    pub fn name(&self) -> &str {
        self.body["name"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct Script {
    queued: VecDeque<Reply>,
    standing: Option<Reply>,
    seen: Vec<Seen>,
}

/// The running hook; stops when dropped.
pub struct HookServer {
    /// Where it listens.
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HookServer {
    /// A plain-HTTP hook answering `200 ok` until told otherwise.
    pub async fn start() -> Self {
        Self::serve(None).await
    }

    /// A TLS hook with this certificate (chain) and key, in PEM.
    pub async fn start_tls(cert_pem: &str, key_pem: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key PEM");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server TLS config");
        Self::serve(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn serve(tls: Option<TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let script = Arc::new(Mutex::new(Script {
            standing: Some(Reply::ok()),
            ..Script::default()
        }));
        let shared = script.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (script, tls) = (shared.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(script.clone(), request));
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, script, task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answers every later request (after the queued ones) with `reply`.
    pub fn answer(&self, reply: Reply) {
        self.lock().standing = Some(reply);
    }

    /// Answers the next requests with `replies`, in order, before the standing reply.
    pub fn then(&self, replies: &[Reply]) {
        self.lock().queued.extend(replies.iter().cloned());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// The requests so far about object `name`.
    pub fn seen_for(&self, name: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.name() == name)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn answer(
    script: Arc<Mutex<Script>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = request.headers().clone();
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let reply = {
        let mut script = script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        script.seen.push(Seen {
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or_default(),
        });
        script
            .queued
            .pop_front()
            .or_else(|| script.standing.clone())
            .unwrap_or_else(Reply::ok)
    };
    match reply {
        Reply::Status(code, text) => Ok(Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .body(Full::new(Bytes::from(text)))
            .unwrap_or_default()),
        Reply::Hang => {
            std::future::pending::<()>().await;
            Ok(Response::default())
        }
    }
}

/// A minimal JSON Schema check for the payload schema: the keywords it uses (`type`,
/// `required`, `properties`, `additionalProperties: false`, `enum`, `minLength`, and the
/// annotations `$schema`, `$id`, `title`, `description`). Any other keyword is an error,
/// so the schema cannot grow a rule this check silently ignores. Returns every violation
/// with its path.
pub fn schema_violations(schema: &serde_json::Value, value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "$", &mut out);
    out
}

fn check(schema: &serde_json::Value, value: &serde_json::Value, at: &str, out: &mut Vec<String>) {
    use serde_json::Value;
    let Some(rules) = schema.as_object() else {
        out.push(format!("{at}: schema is not an object"));
        return;
    };
    for key in rules.keys() {
        if !matches!(
            key.as_str(),
            "$schema"
                | "$id"
                | "title"
                | "description"
                | "type"
                | "required"
                | "properties"
                | "additionalProperties"
                | "enum"
                | "minLength"
        ) {
            out.push(format!(
                "{at}: schema keyword {key} is not understood by this check"
            ));
        }
    }
    if let Some(types) = rules.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |t: &str| match t {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "null" => value.is_null(),
            "array" => value.is_array(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            out.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = rules.get("enum")
        && !allowed.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(min), Some(text)) = (
        rules.get("minLength").and_then(Value::as_u64),
        value.as_str(),
    ) && (text.chars().count() as u64) < min
    {
        out.push(format!("{at}: {text:?} is shorter than {min}"));
    }
    let Some(object) = value.as_object() else {
        return;
    };
    if let Some(Value::Array(required)) = rules.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                out.push(format!("{at}: {name} is required"));
            }
        }
    }
    let properties = rules.get("properties").and_then(Value::as_object);
    for (name, field) in object {
        match properties.and_then(|p| p.get(name)) {
            Some(sub) => check(sub, field, &format!("{at}.{name}"), out),
            None if rules.get("additionalProperties") == Some(&Value::Bool(false)) => {
                out.push(format!("{at}: {name} is not allowed"));
            }
            None => {}
        }
    }
}
