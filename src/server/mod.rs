//! The admission server: a TLS listener for the webhooks and a plain-HTTP admin listener
//! for health and metrics, started in-process by [`start`] and stopped by
//! [`Running::shutdown`] (or a signal, see [`shutdown`]).
//!
//! - [`tls`] — rustls configuration, certificate reload from files;
//! - [`connection`] — the accept loop and one task per connection (handshake, HTTP/1.1 or
//!   h2 by ALPN, drain on shutdown);
//! - [`admission`] — the HTTP service: routes, input checks, the admission core, metrics;
//! - [`admin`] — `/livez`, `/readyz`, `/metrics`;
//! - [`metrics`] — the Prometheus metrics;
//! - [`shutdown`] — signals and the ordered shutdown;
//! - [`dev`] — `serve --dev` preparation (certificates, the curl line).

pub mod admin;
pub mod admission;
pub mod connection;
pub mod dev;
pub mod metrics;
pub mod shutdown;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::certs::CertificateFiles;
use crate::state::SharedState;

/// Limits that keep one client from hurting the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// An HTTP/1.1 client must send complete request headers within this (also the idle
    /// time allowed between requests on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A request (waiting for a slot, reading the body, reviewing) must finish within this.
    pub request_timeout: Duration,
    /// At most this many requests are handled at once; more wait (up to the request timeout).
    pub max_concurrent_requests: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_concurrent_requests: 256,
            max_body_bytes: 3 * 1024 * 1024,
        }
    }
}

/// How the server stops.
#[derive(Debug, Clone)]
pub struct ShutdownTiming {
    /// After readiness starts failing, keep accepting for this long so load balancers and
    /// the API server's endpoints notice first.
    pub drain_delay: Duration,
    /// In-flight requests get this long to finish after the listener closes; then the
    /// remaining connections are cut.
    pub grace_period: Duration,
}

impl Default for ShutdownTiming {
    fn default() -> Self {
        Self {
            drain_delay: Duration::from_secs(2),
            grace_period: Duration::from_secs(20),
        }
    }
}

/// Everything [`start`] needs besides the shared state and the metrics registry.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Address of the TLS admission listener (port 0: any free port).
    pub listen: SocketAddr,
    /// Address of the plain-HTTP admin listener (port 0: any free port).
    pub admin_listen: SocketAddr,
    /// Serving certificate and key files.
    pub certificate: CertificateFiles,
    /// The certificate files are also checked for changes this often (they are always
    /// checked before a TLS handshake).
    pub certificate_check_interval: Duration,
    /// Request limits.
    pub limits: Limits,
    /// Shutdown timing.
    pub shutdown: ShutdownTiming,
}

impl ServerSettings {
    /// Settings with default limits and timings.
    pub fn new(
        listen: SocketAddr,
        admin_listen: SocketAddr,
        certificate: CertificateFiles,
    ) -> Self {
        Self {
            listen,
            admin_listen,
            certificate,
            certificate_check_interval: Duration::from_secs(5),
            limits: Limits::default(),
            shutdown: ShutdownTiming::default(),
        }
    }
}

/// What readiness is made of.
#[derive(Debug)]
pub struct Health {
    state: Arc<SharedState>,
    listening: AtomicBool,
    shutting_down: AtomicBool,
}

impl Health {
    fn new(state: Arc<SharedState>) -> Self {
        Self {
            state,
            listening: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// Ready to admit: the TLS listener is up, the directory is synced and the server is
    /// not shutting down.
    pub fn is_ready(&self) -> bool {
        self.listening.load(Ordering::Acquire)
            && self.state.directory.is_synced()
            && !self.shutting_down.load(Ordering::Acquire)
    }

    /// Why the server is not ready, or `None` when it is.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if self.shutting_down.load(Ordering::Acquire) {
            Some("shutting down")
        } else if !self.listening.load(Ordering::Acquire) {
            Some("admission listener not up")
        } else if !self.state.directory.is_synced() {
            Some("directory not synced")
        } else {
            None
        }
    }

    /// True once shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    /// Bound address of the TLS admission listener.
    pub addr: SocketAddr,
    /// Bound address of the admin listener.
    pub admin_addr: SocketAddr,
    health: Arc<Health>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// Readiness and its parts.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// A token that starts the shutdown when cancelled (for signal handlers, controllers).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts the shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits until the server has stopped (after [`Running::begin_shutdown`], a cancelled
    /// [`Running::stop_token`], or a signal handler that cancels it).
    pub async fn wait(self) {
        // A panicked supervisor has nothing left to wait for.
        let _ = self.task.await;
    }

    /// Shuts down in order (see [`shutdown`]) and waits until done.
    pub async fn shutdown(self) {
        self.begin_shutdown();
        self.wait().await;
    }
}

/// Binds both listeners and starts serving. Admission decides from `state`; the server's
/// metrics are registered into `registry`, which others may already have registered into,
/// and which `/metrics` then exposes.
pub async fn start(
    settings: ServerSettings,
    state: Arc<SharedState>,
    mut registry: Registry,
) -> anyhow::Result<Running> {
    let metrics = metrics::ServerMetrics::register(&mut registry);
    let certificate = Arc::new(
        tls::ReloadingCertificate::load(settings.certificate.clone())
            .context("loading the serving certificate")?,
    );
    metrics.set_certificate_expiry(certificate.current().not_after);
    let tls_config = Arc::new(tls::server_config(certificate.clone())?);

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding the admission listener on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let admin_listener = TcpListener::bind(settings.admin_listen)
        .await
        .with_context(|| format!("binding the admin listener on {}", settings.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;

    let health = Arc::new(Health::new(state.clone()));
    let registry = Arc::new(registry);
    let stop = CancellationToken::new();

    let service = Arc::new(admission::AdmissionService::new(
        state,
        metrics.clone(),
        &settings.limits,
    ));
    let connections = connection::Connections::new(
        tls_config,
        certificate,
        metrics,
        service,
        settings.limits.clone(),
    );
    let admin = admin::AdminServer::new(health.clone(), registry);

    let accept_stop = CancellationToken::new();
    let accept_task = tokio::spawn(
        connections
            .clone()
            .accept_loop(listener, accept_stop.clone()),
    );
    let admin_stop = CancellationToken::new();
    let admin_task = tokio::spawn(admin.serve(admin_listener, admin_stop.clone()));
    let reload_task = tokio::spawn(
        connections
            .clone()
            .watch_certificate(settings.certificate_check_interval, admin_stop.clone()),
    );
    health.listening.store(true, Ordering::Release);
    tracing::info!(%addr, %admin_addr, "admission server listening");

    let task = tokio::spawn(shutdown::supervise(shutdown::Parts {
        stop: stop.clone(),
        health: health.clone(),
        timing: settings.shutdown.clone(),
        connections,
        accept_stop,
        accept_task,
        admin_stop,
        admin_task,
        reload_task,
    }));

    Ok(Running {
        addr,
        admin_addr,
        health,
        stop,
        task,
    })
}
