//! One HTTP call to a site hook: a fresh connection (TCP, TLS for `https`), HTTP/1.1
//! `POST` of the JSON payload, and the status plus the first bytes of the answer, all
//! within the hook's timeout. No pool: hooks are called once per change, and a fresh
//! connection cannot be left half-used by a timed-out call.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::rt::{Read, Write};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use homestead_core::config::{HookConfig, HookUrl};
use homestead_core::hooks::{ANSWER_LIMIT, HookAnswer, IDEMPOTENCY_HEADER};

/// Why a hook could not be set up (at start-up).
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// The URL did not parse (the configuration check catches this first).
    #[error("hook {hook}: {message}")]
    Url {
        /// The hook.
        hook: String,
        /// What is wrong.
        message: String,
    },
    /// `caFile` could not be read.
    #[error("hook {hook}: reading caFile {path}: {source}")]
    CaFile {
        /// The hook.
        hook: String,
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The CA certificates did not parse, or none was found.
    #[error("hook {hook}: {message}")]
    Ca {
        /// The hook.
        hook: String,
        /// What is wrong.
        message: String,
    },
}

/// Where one hook is and how to reach it: its URL taken apart and, for `https`, the TLS
/// client configuration trusting its `caBundle`, `caFile` or the system's roots.
pub struct Endpoint {
    /// The hook's configuration.
    pub config: HookConfig,
    url: HookUrl,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.config.name)
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Sets up `config` (reads `caFile`). Uses the process's rustls crypto provider.
    pub fn new(config: &HookConfig) -> Result<Self, EndpointError> {
        let hook = config.name.clone();
        let url = HookUrl::parse(&config.url).map_err(|message| EndpointError::Url {
            hook: hook.clone(),
            message,
        })?;
        let tls = if url.tls {
            let pem = match (&config.ca_bundle, &config.ca_file) {
                (Some(bundle), _) => Some(bundle.as_bytes().to_vec()),
                (None, Some(path)) => {
                    Some(std::fs::read(path).map_err(|source| EndpointError::CaFile {
                        hook: hook.clone(),
                        path: path.clone(),
                        source,
                    })?)
                }
                (None, None) => None,
            };
            let mut roots = RootCertStore::empty();
            match pem {
                Some(pem) => {
                    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                        .collect::<Result<_, _>>()
                        .map_err(|e| EndpointError::Ca {
                            hook: hook.clone(),
                            message: format!("CA certificates: {e}"),
                        })?;
                    let (added, _) = roots.add_parsable_certificates(certs);
                    if added == 0 {
                        return Err(EndpointError::Ca {
                            hook,
                            message: "no usable CA certificate in caBundle/caFile".into(),
                        });
                    }
                }
                None => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                    if roots.is_empty() {
                        return Err(EndpointError::Ca {
                            hook,
                            message: "no caBundle or caFile, and no system CA certificates found"
                                .into(),
                        });
                    }
                }
            }
            let mut tls = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(TlsConnector::from(Arc::new(tls)))
        } else {
            None
        };
        Ok(Self {
            config: config.clone(),
            url,
            tls,
        })
    }

    /// The hook's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// POSTs `body` with idempotency key `key` (and `authorization`, when the hook has
    /// credentials), within the hook's timeout.
    pub async fn call(&self, body: Bytes, key: &str, authorization: Option<&str>) -> HookAnswer {
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, self.send(body, key, authorization)).await {
            Err(_) => HookAnswer::TimedOut(timeout),
            Ok(Err(why)) => HookAnswer::Unreachable(why),
            Ok(Ok((status, body))) => HookAnswer::Answered { status, body },
        }
    }

    async fn send(
        &self,
        body: Bytes,
        key: &str,
        authorization: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        let url = &self.url;
        let host_header = match (url.host.contains(':'), url.tls, url.port) {
            (true, _, port) => format!("[{}]:{port}", url.host),
            (false, true, 443) | (false, false, 80) => url.host.clone(),
            (false, _, port) => format!("{}:{port}", url.host),
        };
        let mut request = Request::post(url.path.as_str())
            .header(http::header::HOST, host_header)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, "homestead")
            .header(IDEMPOTENCY_HEADER, key);
        if let Some(value) = authorization {
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("building the request: {e}"))?;
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", url.host, url.port))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => exchange(TokioIo::new(tcp), request).await,
            Some(connector) => {
                let name = ServerName::try_from(url.host.clone())
                    .map_err(|e| format!("{:?} is not a server name: {e}", url.host))?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {}: {e}", url.host))?;
                exchange(TokioIo::new(stream), request).await
            }
        }
    }
}

/// Aborts the connection task when the call ends (or is dropped by the timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Result<(u16, Vec<u8>), String>
where
    I: Read + Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        let _ = connection.await;
    }));
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let status = response.status().as_u16();
    // Only the start of the answer is kept (and read).
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while kept.len() < ANSWER_LIMIT {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    kept.extend_from_slice(data);
                }
            }
            Some(Err(e)) => return Err(format!("reading the answer: {e}")),
        }
    }
    kept.truncate(ANSWER_LIMIT);
    Ok((status, kept))
}
