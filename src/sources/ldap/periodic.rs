//! The leader's task: sync every `interval`, retrying a failing directory with backoff.

use std::future::Future;
use std::time::Instant;

use kube::Client;

use super::apply::sync_once;
use super::metrics::LdapMetrics;
use homestead_core::config::LdapConfig;
use homestead_core::sources::retry_delay;

/// The sync as a controller leader task: started each time this replica wins the Lease,
/// stopped when it loses it.
pub fn leader_task(
    client: Client,
    config: LdapConfig,
    metrics: LdapMetrics,
) -> crate::controller::LeaderTask {
    Box::new(move |lost: tokio_util::sync::CancellationToken| {
        let (client, config, metrics) = (client.clone(), config.clone(), metrics.clone());
        Box::pin(async move {
            run_periodic(client, config, metrics, lost.cancelled_owned()).await;
            Ok(())
        })
    })
}

/// Syncs now and then every `config.interval` until `shutdown` completes (e.g. leadership is
/// lost or the process stops). A sync that fails (directory unreachable, bind refused, a
/// search error, or Users that could not be written) is retried after 5 s, 10 s, 20 s, ...
/// up to `interval`; a directory that cannot be read changes nothing.
pub async fn run_periodic(
    client: Client,
    config: LdapConfig,
    metrics: LdapMetrics,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        let result = tokio::select! {
            biased;
            () = &mut shutdown => return,
            result = sync_once(client.clone(), &config) => result,
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(outcome) => {
                metrics.observe(elapsed, Some(&outcome.summary));
                if outcome.summary.failed == 0 {
                    failures = 0;
                    tracing::info!(
                        summary = %outcome.summary,
                        seconds = elapsed.as_secs_f64(),
                        "LDAP sync done"
                    );
                } else {
                    failures = failures.saturating_add(1);
                    tracing::warn!(summary = %outcome.summary, "LDAP sync could not write every User");
                }
            }
            Err(e) => {
                metrics.observe(elapsed, None);
                failures = failures.saturating_add(1);
                tracing::warn!(error = %format!("{e:#}"), failures, "LDAP sync failed; nothing was changed");
            }
        }
        let delay = retry_delay(failures, config.interval);
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            () = tokio::time::sleep(delay) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leader spawns the task on the runtime: it must be `Send + 'static`. This is
    /// checked when the tests compile.
    #[allow(dead_code)]
    fn spawnable(client: Client, config: LdapConfig, metrics: LdapMetrics) {
        fn send_static<T: Send + 'static>(_: T) {}
        let shutdown = tokio_util::sync::CancellationToken::new().cancelled_owned();
        send_static(run_periodic(client, config, metrics, shutdown));
    }
}
