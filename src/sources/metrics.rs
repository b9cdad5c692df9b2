//! Prometheus metrics of a source's syncs: how long they take, how they end, what they did.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::report::SyncCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// A source's metrics; clones share the same series.
#[derive(Clone, Debug)]
pub struct SyncMetrics {
    duration: Histogram,
    runs: Family<ResultLabels, Counter>,
    objects: Family<ActionLabels, Counter>,
    last_success: Gauge<f64, AtomicU64>,
    skipped_records: Gauge,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        Self {
            duration: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            runs: Family::default(),
            objects: Family::default(),
            last_success: Gauge::default(),
            skipped_records: Gauge::default(),
        }
    }
}

/// How a source's metrics are named: `{prefix}_sync_duration_seconds`, `{prefix}_syncs`,
/// `{prefix}_{objects}`, `{prefix}_last_success_timestamp_seconds`, `{prefix}_{records}`.
#[derive(Debug, Clone, Copy)]
pub struct MetricNames {
    /// E.g. `homestead_ispyb`.
    pub prefix: &'static str,
    /// The source in help texts, e.g. `ISPyB`.
    pub source: &'static str,
    /// The objects it writes, e.g. `sessions`.
    pub objects: &'static str,
    /// Its records with bad data, e.g. `skipped_rows`.
    pub records: &'static str,
}

impl SyncMetrics {
    /// New metrics, registered in `registry` under `names`.
    pub fn register(registry: &mut Registry, names: MetricNames) -> Self {
        let metrics = Self::default();
        let MetricNames {
            prefix,
            source,
            objects,
            records,
        } = names;
        registry.register(
            format!("{prefix}_sync_duration_seconds"),
            format!("Time one {source} sync took (read, plan and apply)"),
            metrics.duration.clone(),
        );
        registry.register(
            format!("{prefix}_syncs"),
            format!("{source} syncs by result"),
            metrics.runs.clone(),
        );
        registry.register(
            format!("{prefix}_{objects}"),
            format!("Objects handled by {source} syncs, by action"),
            metrics.objects.clone(),
        );
        registry.register(
            format!("{prefix}_last_success_timestamp_seconds"),
            format!("Unix time of the last successful {source} sync"),
            metrics.last_success.clone(),
        );
        registry.register(
            format!("{prefix}_{records}"),
            format!("Records the last {source} sync skipped because of bad data"),
            metrics.skipped_records.clone(),
        );
        metrics
    }

    /// Records one sync: how long it took and what it did (`None` when it failed before
    /// anything was written).
    pub fn observe(&self, elapsed: Duration, counts: Option<&SyncCounts>) {
        self.duration.observe(elapsed.as_secs_f64());
        let ok = counts.is_some_and(|s| s.failed == 0);
        let result = if ok { "success" } else { "failure" };
        self.runs.get_or_create(&ResultLabels { result }).inc();
        if let Some(s) = counts {
            for (action, n) in [
                ("created", s.created),
                ("updated", s.updated),
                (s.retired_as, s.retired),
                ("unchanged", s.unchanged),
                ("skipped", s.skipped),
                ("failed", s.failed),
            ] {
                self.objects
                    .get_or_create(&ActionLabels { action })
                    .inc_by(n as u64);
            }
            self.skipped_records.set(s.skipped_records as i64);
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

    /// Each source's series, as operators' dashboards and alerts name them: these names
    /// must not change.
    #[test]
    fn a_sync_shows_up_in_the_exposition_under_each_sources_names() {
        for (names, retired_as, want) in [
            (
                crate::sources::ldap::METRICS,
                "disabled",
                [
                    "homestead_ldap_sync_duration_seconds_count 2",
                    "homestead_ldap_syncs_total{result=\"success\"} 1",
                    "homestead_ldap_syncs_total{result=\"failure\"} 1",
                    "homestead_ldap_users_total{action=\"created\"} 3",
                    "homestead_ldap_users_total{action=\"disabled\"} 1",
                    "homestead_ldap_skipped_entries 2",
                    "homestead_ldap_last_success_timestamp_seconds ",
                ],
            ),
            (
                crate::sources::ispyb::METRICS,
                "ended",
                [
                    "homestead_ispyb_sync_duration_seconds_count 2",
                    "homestead_ispyb_syncs_total{result=\"success\"} 1",
                    "homestead_ispyb_syncs_total{result=\"failure\"} 1",
                    "homestead_ispyb_sessions_total{action=\"created\"} 3",
                    "homestead_ispyb_sessions_total{action=\"ended\"} 1",
                    "homestead_ispyb_skipped_rows 2",
                    "homestead_ispyb_last_success_timestamp_seconds ",
                ],
            ),
        ] {
            let mut registry = Registry::default();
            let metrics = SyncMetrics::register(&mut registry, names);
            let counts = SyncCounts {
                created: 3,
                retired: 1,
                skipped: 2,
                skipped_records: 2,
                retired_as,
                ..SyncCounts::default()
            };
            metrics.observe(Duration::from_millis(300), Some(&counts));
            metrics.observe(Duration::from_millis(10), None);
            let mut text = String::new();
            encode(&mut text, &registry).unwrap();
            for want in want {
                assert!(text.contains(want), "missing {want:?} in\n{text}");
            }
            let zero = format!("{}_last_success_timestamp_seconds 0.0\n", names.prefix);
            assert!(!text.contains(&zero), "{text}");
        }
    }
}
