//! Stopping in order. When the stop token is cancelled (SIGTERM/SIGINT via
//! [`cancel_on_signal`], or [`super::Running::shutdown`]):
//!
//! 1. readiness fails (`/readyz` answers 503) while the listener keeps accepting for the
//!    drain delay, so the endpoints stop sending traffic here first;
//! 2. the admission listener closes — new connections are refused;
//! 3. open connections are told to close: in-flight requests finish, kept-alive HTTP/1.1
//!    connections close after their current response (`Connection: close`), h2 connections
//!    get GOAWAY;
//! 4. after the grace period whatever is still open is cut;
//! 5. the admin listener and the certificate watcher stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::connection::Connections;
use super::{Health, ShutdownTiming};

/// What the supervisor stops.
pub(crate) struct Parts {
    pub stop: CancellationToken,
    pub health: Arc<Health>,
    pub timing: ShutdownTiming,
    pub connections: Connections,
    pub accept_stop: CancellationToken,
    pub accept_task: JoinHandle<()>,
    pub admin_stop: CancellationToken,
    pub admin_task: JoinHandle<()>,
    pub reload_task: JoinHandle<()>,
}

/// Waits for the stop token, then shuts down in order.
pub(crate) async fn supervise(parts: Parts) {
    let Parts {
        stop,
        health,
        timing,
        connections,
        accept_stop,
        accept_task,
        admin_stop,
        admin_task,
        reload_task,
    } = parts;
    stop.cancelled().await;
    health.shutting_down.store(true, Ordering::Release);
    tracing::info!(
        drain_delay = %humantime::format_duration(timing.drain_delay),
        grace_period = %humantime::format_duration(timing.grace_period),
        "shutting down: readiness now fails"
    );
    tokio::time::sleep(timing.drain_delay).await;

    accept_stop.cancel();
    let _ = accept_task.await;
    connections.drain();
    let open = connections.open();
    if tokio::time::timeout(timing.grace_period, connections.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.open(),
            "grace period over; closing the remaining connections"
        );
        connections.force_close();
        connections.closed().await;
    } else {
        tracing::info!(drained = open, "all connections finished");
    }

    admin_stop.cancel();
    let _ = admin_task.await;
    let _ = reload_task.await;
    tracing::info!("admission server stopped");
}

/// Cancels `stop` on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn cancel_on_signal(stop: CancellationToken) {
    let signal = wait_for_signal().await;
    tracing::info!(signal, "received signal");
    stop.cancel();
}

/// Waits for SIGTERM or SIGINT and says which.
pub async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
