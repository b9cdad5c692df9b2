//! Leader election with a `coordination.k8s.io/v1` Lease: one replica holds it and
//! reconciles; all replicas serve admission. Every write carries the `resourceVersion` it
//! read, so two replicas can never both win: the loser gets 409 and follows.
//!
//! The decisions (who may hold it, the next spec, how long the holder may lead without a
//! renewal) are pure and live in the core (`homestead_core::lease`); this module reads and
//! writes the Lease, keeps the time, and bounds every round (kube's client has no read
//! timeout, so a hung request would otherwise stall the loop).

use homestead_core::lease::{Decision, decide, leading, next_spec, next_wait, round_budget};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::metrics::Metrics;
use crate::telemetry::Repeated;

pub use homestead_core::lease::{DEFAULT_LEASE_NAME, LeaseSettings};

/// One round: read the lease, act on it. Returns true when we hold it afterwards.
pub async fn try_hold(api: &Api<Lease>, settings: &LeaseSettings) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let existing = api.get_opt(&settings.name).await?;
    let spec = existing.as_ref().and_then(|l| l.spec.as_ref());
    let decision = decide(spec, &settings.identity, now);
    if decision == Decision::Follow {
        return Ok(false);
    }
    let next = next_spec(spec, decision, &settings.identity, settings.duration, now);
    let result = match existing {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(settings.name.clone()),
                    namespace: Some(settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(next),
            };
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Some(mut lease) => {
            // replace carries metadata.resourceVersion: optimistic concurrency.
            lease.spec = Some(next);
            lease.metadata.managed_fields = None;
            api.replace(&settings.name, &PostParams::default(), &lease)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up (on shutdown) so another replica takes over at once.
pub async fn release(api: &Api<Lease>, settings: &LeaseSettings) -> Result<(), kube::Error> {
    let Some(mut lease) = api.get_opt(&settings.name).await? else {
        return Ok(());
    };
    let ours = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        == Some(settings.identity.as_str());
    if !ours {
        return Ok(());
    }
    if let Some(spec) = lease.spec.as_mut() {
        spec.holder_identity = None;
    }
    lease.metadata.managed_fields = None;
    api.replace(&settings.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
}

/// Why a lease round failed: a short reason (the metric label) and what to do about it.
pub fn explain(error: &kube::Error, settings: &LeaseSettings) -> (&'static str, String) {
    match error {
        kube::Error::Api(status)
            if status.code == 404
                && status
                    .details
                    .as_ref()
                    .is_some_and(|d| d.kind == "namespaces") =>
        {
            (
                "namespace_not_found",
                format!(
                    "the Lease namespace {:?} does not exist: create it, or pass --lease-namespace \
                     (HOMESTEAD_NAMESPACE); until then this replica serves admission but \
                     reconciles nothing",
                    settings.namespace
                ),
            )
        }
        kube::Error::Api(status) if status.code == 403 => (
            "forbidden",
            format!(
                "not allowed to use Lease {}/{}: {}; until then this replica serves admission \
                 but reconciles nothing",
                settings.namespace, settings.name, status.message
            ),
        ),
        other => (
            "error",
            format!(
                "Lease {}/{} could not be read or written: {other}",
                settings.namespace, settings.name
            ),
        ),
    }
}

/// Holds (or follows) the lease until `token` is cancelled, publishing leadership on
/// `leader`. Every round is bounded ([`round_budget`]); a holder that cannot renew within
/// the renew deadline stops leading ([`leading`], [`next_wait`]) before the lease can
/// expire. A round that fails is logged once as an error (then only as a reminder, see
/// [`Repeated`]), counted in `homestead_controller_lease_errors_total{reason}` and shown by
/// `homestead_controller_lease_failing`; rounds are spaced out while they keep failing.
pub async fn run(
    client: Client,
    settings: LeaseSettings,
    leader: watch::Sender<bool>,
    metrics: Metrics,
    token: CancellationToken,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    // When the last successful round began: the lease's renewTime is taken then.
    let mut last_held: Option<tokio::time::Instant> = None;
    let mut problem = Repeated::default();
    let mut failures: u32 = 0;
    let publish = |holding: bool| {
        leader.send_if_modified(|was| {
            let changed = *was != holding;
            if changed {
                tracing::info!(identity = %settings.identity, leader = holding, "leadership changed");
            }
            *was = holding;
            changed
        });
    };
    loop {
        let since = |held: Option<tokio::time::Instant>| held.map(|t| t.elapsed());
        // The deadline may have passed while waiting.
        publish(leading(&settings, since(last_held)));
        let started = tokio::time::Instant::now();
        let budget = round_budget(&settings, since(last_held));
        let round = tokio::select! {
            _ = token.cancelled() => break,
            round = tokio::time::timeout(budget, try_hold(&api, &settings)) => round,
        };
        let failed = match round {
            Ok(Ok(held)) => {
                last_held = held.then_some(started);
                None
            }
            Ok(Err(e)) => Some(explain(&e, &settings)),
            Err(_) => Some((
                "timeout",
                format!(
                    "Lease {}/{}: a round took longer than {budget:?} and was abandoned",
                    settings.namespace, settings.name
                ),
            )),
        };
        match failed {
            None => {
                failures = 0;
                metrics.lease_failing.set(0);
                if problem.clear() {
                    tracing::info!(lease = %settings.name, namespace = %settings.namespace, "the Lease can be used again");
                }
            }
            Some((reason, message)) => {
                failures = failures.saturating_add(1);
                metrics.lease_error(reason);
                if let Some(held_back) = problem.report(reason, std::time::Instant::now()) {
                    tracing::error!(lease = %settings.name, namespace = %settings.namespace, reason, repeats = held_back, "{message}");
                }
            }
        }
        publish(leading(&settings, since(last_held)));
        let wait = next_wait(&settings, since(last_held), failures);
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    leader.send_replace(false);
    if last_held.is_some() {
        match tokio::time::timeout(settings.round_timeout, release(&api, &settings)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not release the lease"),
            Err(_) => tracing::warn!("could not release the lease in time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_rounds_are_explained_by_what_to_do() {
        let settings = LeaseSettings::new("homestead", "me");
        let api_error = |body: serde_json::Value| {
            kube::Error::Api(Box::new(serde_json::from_value(body).unwrap()))
        };
        let table = [
            (
                api_error(serde_json::json!({"code": 404, "reason": "NotFound",
                    "message": "namespaces \"homestead\" not found",
                    "details": {"name": "homestead", "kind": "namespaces"}})),
                "namespace_not_found",
                "the Lease namespace \"homestead\" does not exist: create it, or pass --lease-namespace",
            ),
            (
                api_error(serde_json::json!({"code": 403, "reason": "Forbidden",
                    "message": "leases is forbidden"})),
                "forbidden",
                "not allowed to use Lease homestead/homestead-controller: leases is forbidden",
            ),
            (
                api_error(serde_json::json!({"code": 404, "reason": "NotFound",
                    "message": "the server could not find the requested resource",
                    "details": {"kind": "leases"}})),
                "error",
                "Lease homestead/homestead-controller could not be read or written",
            ),
        ];
        for (error, want_reason, want_message) in table {
            let (reason, message) = explain(&error, &settings);
            assert_eq!(reason, want_reason, "{error}");
            assert!(message.starts_with(want_message), "{message}");
        }
    }
}
