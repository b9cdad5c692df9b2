//! The leader's task for a source: sync now and every interval, retrying a failing source
//! with backoff, recording every run in the source's metrics.

use std::future::Future;
use std::time::{Duration, Instant};

use homestead_core::sources::retry_delay;

use super::metrics::SyncMetrics;
use super::report::SyncReport;
use crate::controller::LeaderTask;

/// Runs `sync` now and then every `interval` until `shutdown` completes (leadership is lost
/// or the process stops). A sync that fails (the source unreachable, a query or search
/// error, or objects that could not be written) is retried after 5 s, 10 s, 20 s, ... up to
/// `interval`; a source that cannot be read changes nothing. `source` names it in logs.
pub async fn run_periodic<F, Fut, D>(
    source: &'static str,
    interval: Duration,
    metrics: SyncMetrics,
    shutdown: impl Future<Output = ()>,
    mut sync: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<SyncReport<D>>>,
{
    tokio::pin!(shutdown);
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            () = &mut shutdown => return,
            result = sync() => result,
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(report) => {
                let counts = &report.counts;
                metrics.observe(elapsed, Some(counts));
                if counts.failed == 0 {
                    failures = 0;
                    tracing::info!(
                        source,
                        summary = %counts,
                        seconds = elapsed.as_secs_f64(),
                        "{source} sync done"
                    );
                } else {
                    failures = failures.saturating_add(1);
                    tracing::warn!(
                        source,
                        summary = %counts,
                        "{source} sync could not write everything"
                    );
                }
            }
            Err(e) => {
                metrics.observe(elapsed, None);
                failures = failures.saturating_add(1);
                tracing::warn!(
                    source,
                    error = %format!("{e:#}"),
                    failures,
                    "{source} sync failed; nothing was changed"
                );
            }
        }
        let delay = retry_delay(failures, interval);
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// [`run_periodic`] as a controller leader task: started each time this replica wins the
/// Lease, stopped when it loses it.
pub fn leader_task<F, Fut, D>(
    source: &'static str,
    interval: Duration,
    metrics: SyncMetrics,
    sync: F,
) -> LeaderTask
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<SyncReport<D>>> + Send + 'static,
    D: Send + 'static,
{
    Box::new(move |lost: tokio_util::sync::CancellationToken| {
        let (metrics, sync) = (metrics.clone(), sync.clone());
        Box::pin(async move {
            run_periodic(source, interval, metrics, lost.cancelled_owned(), sync).await;
            Ok(())
        })
    })
}
