//! Accepting connections: one task per connection does the TLS handshake (bounded by the
//! handshake timeout), picks HTTP/1.1 or h2 by ALPN and serves requests until the client
//! leaves, the server drains (kept-alive connections are told to close once their
//! in-flight requests finish), or the grace period ends (connections are cut).

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures::task::AtomicWaker;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Limits;
use super::admission::AdmissionService;
use super::metrics::{ReloadLabels, ServerMetrics};
use super::tls::{Refresh, ReloadingCertificate};

/// The wake-ups of a connection's two shutdown signals (drain, force). They are futures
/// of tokens shared by every connection; polling them takes two locks each, so they are
/// polled with a waker of their own, and only again after it fired — not on each of the
/// connection's several wake-ups per request.
struct Signals {
    /// Set by the signals' waker: poll them.
    fired: AtomicBool,
    /// The connection task, woken with them.
    task: AtomicWaker,
}

impl Wake for Signals {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

struct Inner {
    acceptor: TlsAcceptor,
    certificate: Arc<ReloadingCertificate>,
    metrics: ServerMetrics,
    service: Arc<AdmissionService>,
    limits: Limits,
    /// For connections that negotiated `http/1.1`.
    http1: auto::Builder<TokioExecutor>,
    /// For connections that negotiated `h2`.
    http2: auto::Builder<TokioExecutor>,
    /// For clients that sent no ALPN: the protocol is recognised from the first bytes.
    either: auto::Builder<TokioExecutor>,
    tracker: TaskTracker,
    drain: CancellationToken,
    force: CancellationToken,
}

/// The admission listener's connections; cheap to clone.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("open", &self.inner.tracker.len())
            .finish_non_exhaustive()
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(u32::try_from(limits.max_concurrent_requests).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

impl Connections {
    /// Connections served with `tls` and `service`.
    pub fn new(
        tls: Arc<rustls::ServerConfig>,
        certificate: Arc<ReloadingCertificate>,
        metrics: ServerMetrics,
        service: Arc<AdmissionService>,
        limits: Limits,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                acceptor: TlsAcceptor::from(tls),
                certificate,
                metrics,
                service,
                http1: builder(&limits).http1_only(),
                http2: builder(&limits).http2_only(),
                either: builder(&limits),
                limits,
                tracker: TaskTracker::new(),
                drain: CancellationToken::new(),
                force: CancellationToken::new(),
            }),
        }
    }

    /// Accepts connections until `stop` is cancelled, then drops the listener (new
    /// connections are refused from then on).
    pub async fn accept_loop(self, listener: TcpListener, stop: CancellationToken) {
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let this = self.clone();
                        self.inner.tracker.spawn(this.serve(tcp, peer));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        tracing::info!("admission listener closed");
    }

    /// Checks the certificate files now and every `interval` until `stop` is cancelled.
    pub async fn watch_certificate(self, interval: Duration, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticker.tick() => self.refresh_certificate(),
            }
        }
    }

    /// Reloads the certificate if its files changed, logging and counting the outcome.
    pub fn refresh_certificate(&self) {
        match self.inner.certificate.refresh() {
            Refresh::Unchanged => {}
            Refresh::Reloaded(pair) => {
                self.inner.metrics.set_certificate_expiry(pair.not_after);
                self.inner
                    .metrics
                    .certificate_reloads
                    .get_or_create(&ReloadLabels { result: "reloaded" })
                    .inc();
                tracing::info!(
                    cert = %self.inner.certificate.files().cert.display(),
                    not_after = %humantime::format_rfc3339_seconds(pair.not_after),
                    "serving certificate reloaded"
                );
            }
            Refresh::Rejected(e) => {
                self.inner
                    .metrics
                    .certificate_reloads
                    .get_or_create(&ReloadLabels { result: "rejected" })
                    .inc();
                tracing::warn!(error = %e, "certificate files changed but do not hold a valid pair; serving the previous certificate");
            }
        }
    }

    async fn serve(self, tcp: TcpStream, peer: SocketAddr) {
        let inner = &self.inner;
        self.refresh_certificate();
        // Responses are small and latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        let handshake =
            tokio::time::timeout(inner.limits.handshake_timeout, inner.acceptor.accept(tcp));
        let tls = tokio::select! {
            biased;
            () = inner.force.cancelled() => return,
            result = handshake => match result {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
        };
        let builder = match tls.get_ref().1.alpn_protocol() {
            Some(b"h2") => &inner.http2,
            Some(_) => &inner.http1,
            None => &inner.either,
        };
        let service = inner.service.clone();
        let svc = service_fn(move |request: hyper::Request<Incoming>| {
            let service = service.clone();
            async move { Ok::<_, Infallible>(service.handle(request).await) }
        });
        let conn = builder.serve_connection(TokioIo::new(tls), svc);
        let mut conn = pin!(conn);
        let mut drain = pin!(inner.drain.cancelled());
        let mut force = pin!(inner.force.cancelled());
        let signals = Arc::new(Signals {
            fired: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let signals_waker = Waker::from(signals.clone());
        let mut draining = false;
        let ended = poll_fn(|cx| {
            loop {
                if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                    return Poll::Ready(Some(result));
                }
                // Registered before the flag is read: a signal after the read wakes the task.
                signals.task.register(cx.waker());
                if !signals.fired.swap(false, Ordering::AcqRel) {
                    return Poll::Pending;
                }
                let mut signals_cx = Context::from_waker(&signals_waker);
                if force.as_mut().poll(&mut signals_cx).is_ready() {
                    return Poll::Ready(None);
                }
                if draining || drain.as_mut().poll(&mut signals_cx).is_pending() {
                    return Poll::Pending;
                }
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        })
        .await;
        match ended {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
            None => tracing::debug!(%peer, "connection cut at the end of the grace period"),
        }
    }

    /// Tells every open connection to finish its in-flight requests and close.
    pub fn drain(&self) {
        self.inner.tracker.close();
        self.inner.drain.cancel();
    }

    /// Waits until every connection has closed.
    pub async fn closed(&self) {
        self.inner.tracker.wait().await;
    }

    /// Cuts every connection still open.
    pub fn force_close(&self) {
        self.inner.force.cancel();
    }

    /// Number of open connections.
    pub fn open(&self) -> usize {
        self.inner.tracker.len()
    }
}
