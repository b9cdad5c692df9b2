//! The controller: caches that feed admission (every replica), and — only on the replica
//! holding the Lease — the `User`, `Session` and `Project` reconcilers plus any other leader-only
//! background tasks (LDAP sync, webhook certificates).
//!
//! - [`caches`]: reflectors → the directory admission reads.
//! - [`pods`]: the pod index admission reads for `exec`, `attach`, `port-forward`.
//! - [`reconcile`]: the shared reconcile loop; [`user`], [`session`] and [`project`] plug
//!   into it.
//! - [`live`]: what exists of the objects homestead made, fed by the reconcilers' watches.
//! - [`apply`]: server-side apply, deletes, stale member claims.
//! - [`status`]: the status a reconcile leaves.
//! - [`lease`]: leader election.
//! - [`metrics`]: controller metrics.

pub mod apply;
pub mod caches;
pub mod lease;
pub mod live;
pub mod metrics;
pub mod pods;
pub mod project;
pub mod reconcile;
#[cfg(test)]
mod scenarios;
pub mod session;
/// The status planner lives in the core.
pub use homestead_core::status;
pub mod user;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use caches::Caches;
pub use lease::{DEFAULT_LEASE_NAME, LeaseSettings};
pub use metrics::Metrics;
pub use reconcile::Context;

use crate::state::SharedState;

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or could not be reached.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An object could not be turned into JSON.
    #[error("serializing {0}: {1}")]
    Serialize(String, #[source] serde_json::Error),
    /// Adding or removing the finalizer, or the work inside it, failed.
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// A blocking site hook did not agree to the change.
    #[error("{message}")]
    HookRejected {
        /// The hook.
        hook: String,
        /// Its name and the first 1 KB of its answer.
        message: String,
    },
}

impl Error {
    /// True when a blocking hook did not agree (directly or inside the finalizer).
    pub fn is_hook_rejection(&self) -> bool {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::HookRejected { .. } => true,
            Error::Finalizer(inner) => match &**inner {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.is_hook_rejection(),
                _ => false,
            },
            _ => false,
        }
    }

    /// The HTTP status the API server answered with, if that is what failed.
    pub fn status_code(&self) -> Option<u16> {
        use kube::runtime::finalizer::Error as F;
        match self {
            Error::Kube(kube::Error::Api(status)) => Some(status.code),
            Error::Kube(_) | Error::Serialize(..) | Error::HookRejected { .. } => None,
            Error::Finalizer(inner) => match &**inner {
                F::ApplyFailed(e) | F::CleanupFailed(e) => e.status_code(),
                F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s)) => {
                    Some(s.code)
                }
                _ => None,
            },
        }
    }
}

/// A background task that runs only while this replica leads: called each time leadership
/// is won, with a token cancelled when it is lost (or at shutdown).
pub type LeaderTask = Box<dyn Fn(CancellationToken) -> LeaderFuture + Send + Sync>;

/// The future a [`LeaderTask`] returns.
pub type LeaderFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerSettings {
    /// Reconcile at all (`false`: caches only, for an admission-only replica).
    pub reconcile: bool,
    /// Leader election.
    pub lease: LeaseSettings,
    /// Name this controller reports events as.
    pub reporter: String,
}

impl ControllerSettings {
    /// Settings for a replica named `identity` whose Lease lives in `namespace`.
    pub fn new(namespace: &str, identity: &str) -> Self {
        Self {
            reconcile: true,
            lease: LeaseSettings::new(namespace, identity),
            reporter: "homestead".to_owned(),
        }
    }
}

/// Runs the caches (always) and, while this replica holds the Lease, the reconcilers and
/// `leader_tasks`, until `shutdown` completes. Losing the lease stops reconciling and
/// nothing else; admission keeps being fed from the caches.
pub async fn run(
    client: Client,
    state: Arc<SharedState>,
    settings: ControllerSettings,
    metrics: Metrics,
    leader_tasks: Vec<LeaderTask>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    let (caches, caches_task) = caches::start(
        client.clone(),
        state.clone(),
        metrics.clone(),
        token.child_token(),
    );
    let pods_task = {
        let (client, state, token) = (client.clone(), state.clone(), token.child_token());
        tokio::spawn(async move { pods::run(client, &state.pods, token).await })
    };
    if !settings.reconcile {
        tracing::info!("controller disabled: caches only");
        caches_task.await?;
        pods_task.await?;
        return Ok(());
    }
    let (leader_tx, mut leader_rx) = watch::channel(false);
    let lease_task = tokio::spawn(lease::run(
        client.clone(),
        settings.lease.clone(),
        leader_tx,
        metrics.clone(),
        token.child_token(),
    ));
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: settings.reporter.clone(),
            instance: Some(settings.lease.identity.clone()),
        },
    );
    let hooks = crate::hooks::Hooks::start(
        &state.config,
        Some(client.clone()),
        Some(recorder.clone()),
        metrics.hooks.clone(),
        token.child_token(),
    )?;
    let ctx = Arc::new(
        Context::new(
            client,
            state.config.clone(),
            caches.users.clone(),
            recorder,
            metrics.clone(),
        )
        .with_hooks(hooks),
    );
    let leader_tasks = Arc::new(leader_tasks);
    loop {
        // Follow until we lead (or shut down).
        tokio::select! {
            _ = token.cancelled() => break,
            changed = leader_rx.wait_for(|leading| *leading) => {
                if changed.is_err() { break; }
            }
        }
        metrics.leader.set(1);
        // Reconcilers plan from the caches (a Session's members are looked up among the
        // cached Users): planning from a cache still filling would see members without
        // Users. The caches task marks the directory synced once every cache has had its
        // first full sync.
        let synced = tokio::select! {
            _ = token.cancelled() => false,
            _ = leader_rx.wait_for(|leading| !*leading) => false,
            _ = state.directory.wait_synced() => true,
        };
        if !synced {
            metrics.leader.set(0);
            if token.is_cancelled() {
                break;
            }
            continue;
        }
        let term = token.child_token();
        let mut tasks = JoinSet::new();
        tasks.spawn(user::run(ctx.clone(), term.clone()));
        tasks.spawn(session::run(ctx.clone(), term.clone()));
        tasks.spawn(project::run(ctx.clone(), term.clone()));
        for task in leader_tasks.iter() {
            let run = task(term.clone());
            tasks.spawn(async move {
                if let Err(e) = run.await {
                    tracing::error!(error = %e, "leader task failed");
                }
            });
        }
        tokio::select! {
            _ = token.cancelled() => {}
            _ = leader_rx.wait_for(|leading| !*leading) => {
                tracing::warn!("lost the lease: reconciling stops, admission continues");
            }
        }
        term.cancel();
        while tasks.join_next().await.is_some() {}
        metrics.leader.set(0);
        if token.is_cancelled() {
            break;
        }
    }
    let _ = lease_task.await;
    let _ = caches_task.await;
    let _ = pods_task.await;
    Ok(())
}
