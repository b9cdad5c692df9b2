//! The leader's task for a source: sync now and every interval, retrying a failing source
//! with backoff, recording every run in the source's metrics.

use std::future::Future;
use std::time::{Duration, Instant};

use homestead_core::sources::retry_delay;

use super::apply::Summary;
use super::metrics::SyncMetrics;

/// Runs `sync` now and then every `interval` until `shutdown` completes (leadership is lost
/// or the process stops). A sync that fails (the source unreachable, a query or search
/// error, or objects that could not be written) is retried after 5 s, 10 s, 20 s, ... up to
/// `interval`; a source that cannot be read changes nothing. `source` names it in logs.
pub async fn run_periodic<F, Fut>(
    source: &'static str,
    interval: Duration,
    metrics: SyncMetrics,
    shutdown: impl Future<Output = ()>,
    mut sync: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Summary>>,
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
            Ok(summary) => {
                metrics.observe(elapsed, Some(summary));
                if summary.failed == 0 {
                    failures = 0;
                    tracing::info!(
                        source,
                        summary = %summary,
                        seconds = elapsed.as_secs_f64(),
                        "sync done"
                    );
                } else {
                    failures = failures.saturating_add(1);
                    tracing::warn!(source, summary = %summary, "sync could not write everything");
                }
            }
            Err(e) => {
                metrics.observe(elapsed, None);
                failures = failures.saturating_add(1);
                tracing::warn!(
                    source,
                    error = %format!("{e:#}"),
                    failures,
                    "sync failed; nothing was changed"
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
