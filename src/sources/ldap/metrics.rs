//! Prometheus metrics of the LDAP sync.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::apply::Summary;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// The sync's metrics; clones share the same series.
#[derive(Clone, Debug)]
pub struct LdapMetrics {
    duration: Histogram,
    runs: Family<ResultLabels, Counter>,
    users: Family<ActionLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    skipped_entries: Gauge,
}

impl Default for LdapMetrics {
    fn default() -> Self {
        Self {
            duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            runs: Family::default(),
            users: Family::default(),
            last_success: Gauge::default(),
            skipped_entries: Gauge::default(),
        }
    }
}

impl LdapMetrics {
    /// New metrics, registered in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "homestead_ldap_sync_duration_seconds",
            "Time one LDAP sync took (read, plan and apply)",
            metrics.duration.clone(),
        );
        registry.register(
            "homestead_ldap_syncs",
            "LDAP syncs by result",
            metrics.runs.clone(),
        );
        registry.register(
            "homestead_ldap_users",
            "Users handled by LDAP syncs, by action",
            metrics.users.clone(),
        );
        registry.register(
            "homestead_ldap_last_success_timestamp_seconds",
            "Unix time of the last successful LDAP sync",
            metrics.last_success.clone(),
        );
        registry.register(
            "homestead_ldap_skipped_entries",
            "Directory entries the last sync skipped because of bad data",
            metrics.skipped_entries.clone(),
        );
        metrics
    }

    /// Records one sync: how long it took and what it did (`None` when it failed before
    /// anything was written).
    pub fn observe(&self, elapsed: Duration, summary: Option<&Summary>) {
        self.duration.observe(elapsed.as_secs_f64());
        let ok = summary.is_some_and(|s| s.failed == 0);
        let result = if ok { "success" } else { "failure" };
        self.runs.get_or_create(&ResultLabels { result }).inc();
        if let Some(s) = summary {
            for (action, n) in [
                ("created", s.created),
                ("updated", s.updated),
                ("disabled", s.disabled),
                ("unchanged", s.unchanged),
                ("skipped", s.skipped),
                ("failed", s.failed),
            ] {
                self.users
                    .get_or_create(&ActionLabels { action })
                    .inc_by(n as u64);
            }
            self.skipped_entries.set(s.skipped_entries as i64);
        }
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            self.last_success.set(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn a_sync_shows_up_in_the_exposition() {
        let mut registry = Registry::default();
        let metrics = LdapMetrics::register(&mut registry);
        let summary = Summary {
            created: 3,
            disabled: 1,
            skipped: 2,
            skipped_entries: 2,
            ..Summary::default()
        };
        metrics.observe(Duration::from_millis(300), Some(&summary));
        metrics.observe(Duration::from_millis(10), None);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for want in [
            "homestead_ldap_sync_duration_seconds_count 2",
            "homestead_ldap_syncs_total{result=\"success\"} 1",
            "homestead_ldap_syncs_total{result=\"failure\"} 1",
            "homestead_ldap_users_total{action=\"created\"} 3",
            "homestead_ldap_users_total{action=\"disabled\"} 1",
            "homestead_ldap_skipped_entries 2",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("homestead_ldap_last_success_timestamp_seconds 0\n"));
    }
}
