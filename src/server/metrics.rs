//! Admission metrics (Prometheus, via prometheus-client).
//!
//! - `homestead_admission_requests_total{webhook,kind,operation,result}` — reviews answered;
//!   `result` is `allowed`, `patched` or `denied`;
//! - `homestead_admission_denials_total{webhook,reason}` — denials by stable reason code;
//! - `homestead_admission_duration_seconds{webhook}` — time to answer, sub-millisecond buckets;
//! - `homestead_admission_in_flight_requests` — requests being handled now;
//! - `homestead_http_errors_total{status}` — requests refused before review (404, 405, 413,
//!   415, 400, 503);
//! - `homestead_tls_certificate_expiry_timestamp_seconds` — `notAfter` of the serving
//!   certificate in use;
//! - `homestead_tls_certificate_reloads_total{result}` — certificate reload attempts.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Latency buckets in seconds: 50 µs to 1 s, dense below a millisecond.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 1.0,
];

/// Labels of a reviewed request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// `mutate` or `validate`.
    pub webhook: &'static str,
    /// The object kind (`Pod`, `Deployment`, ...).
    pub kind: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// `allowed`, `patched` or `denied`.
    pub result: &'static str,
}

/// Labels of a denial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DenialLabels {
    /// `mutate` or `validate`.
    pub webhook: &'static str,
    /// Stable reason code, e.g. `run_as_root`.
    pub reason: &'static str,
}

/// Labels of a latency observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `mutate` or `validate`.
    pub webhook: &'static str,
}

/// Labels of a request refused before review.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StatusLabels {
    /// HTTP status code.
    pub status: u16,
}

/// Labels of a certificate reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `reloaded` or `rejected`.
    pub result: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// Metric handles already looked up in a family, by label values: a lock-free load and
/// a scan of a few entries instead of building a label set (cloning its strings),
/// hashing it and read-locking the family on every request. A handle shares its value
/// with the family's, so the exposition shows every update.
#[derive(Debug)]
struct Handles<K, M> {
    entries: ArcSwap<Vec<(K, M)>>,
}

impl<K, M> Default for Handles<K, M> {
    fn default() -> Self {
        Self {
            entries: ArcSwap::from_pointee(Vec::new()),
        }
    }
}

impl<K: Clone, M: Clone> Handles<K, M> {
    /// At most this many handles are kept (label values come from requests); the rest are
    /// looked up in their family each time.
    const LIMIT: usize = 64;

    /// Calls `update` with the handle whose key `matches`, made by `create` (and kept) the
    /// first time.
    fn with(
        &self,
        matches: impl Fn(&K) -> bool,
        create: impl FnOnce() -> (K, M),
        update: impl FnOnce(&M),
    ) {
        if let Some((_, metric)) = self.entries.load().iter().find(|(key, _)| matches(key)) {
            update(metric);
            return;
        }
        let (key, metric) = create();
        update(&metric);
        self.entries.rcu(|entries| {
            let mut entries = Vec::clone(entries);
            if entries.len() < Self::LIMIT && !entries.iter().any(|(key, _)| matches(key)) {
                entries.push((key.clone(), metric.clone()));
            }
            entries
        });
    }
}

/// The admission server's metrics; cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct ServerMetrics {
    /// Reviews answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Denials by reason.
    pub denials: Family<DenialLabels, Counter>,
    /// Time to answer a review.
    pub latency: Family<WebhookLabels, Histogram, fn() -> Histogram>,
    /// Requests being handled.
    pub in_flight: Gauge,
    /// Requests refused before review.
    pub http_errors: Family<StatusLabels, Counter>,
    /// Serving certificate `notAfter`, Unix seconds.
    pub certificate_expiry: Gauge,
    /// Certificate reload attempts.
    pub certificate_reloads: Family<ReloadLabels, Counter>,
    handles: Arc<CachedHandles>,
}

/// Handles of `requests`, by webhook, result, kind and operation, and of `latency`, by
/// webhook.
#[derive(Debug, Default)]
struct CachedHandles {
    requests: Handles<(&'static str, &'static str, String, String), Counter>,
    latency: Handles<&'static str, Histogram>,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            denials: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            in_flight: Gauge::default(),
            http_errors: Family::default(),
            certificate_expiry: Gauge::default(),
            certificate_reloads: Family::default(),
            handles: Arc::default(),
        }
    }
}

impl ServerMetrics {
    /// New metrics, registered into `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "homestead_admission_requests",
            "Admission reviews answered, by webhook, kind, operation and result",
            metrics.requests.clone(),
        );
        registry.register(
            "homestead_admission_denials",
            "Admission reviews denied, by webhook and reason",
            metrics.denials.clone(),
        );
        registry.register(
            "homestead_admission_duration_seconds",
            "Time from receiving an admission request to answering it",
            metrics.latency.clone(),
        );
        registry.register(
            "homestead_admission_in_flight_requests",
            "Admission requests being handled",
            metrics.in_flight.clone(),
        );
        registry.register(
            "homestead_http_errors",
            "Requests refused before review, by HTTP status",
            metrics.http_errors.clone(),
        );
        registry.register(
            "homestead_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the serving certificate in use, as Unix time",
            metrics.certificate_expiry.clone(),
        );
        registry.register(
            "homestead_tls_certificate_reloads",
            "Serving certificate reload attempts, by result",
            metrics.certificate_reloads.clone(),
        );
        metrics
    }

    /// Counts a review in `requests`: the same as `requests.get_or_create(labels).inc()`,
    /// without building the labels once the combination has been seen.
    pub fn count_request(
        &self,
        webhook: &'static str,
        kind: &str,
        operation: &str,
        result: &'static str,
    ) {
        self.handles.requests.with(
            |(w, r, k, o)| *w == webhook && *r == result && k == kind && o == operation,
            || {
                let labels = RequestLabels {
                    webhook,
                    kind: kind.to_owned(),
                    operation: operation.to_owned(),
                    result,
                };
                let counter = self.requests.get_or_create(&labels).clone();
                ((webhook, result, labels.kind, labels.operation), counter)
            },
            |counter| {
                counter.inc();
            },
        );
    }

    /// Records the time to answer a review of `webhook` in `latency`.
    pub fn observe_latency(&self, webhook: &'static str, seconds: f64) {
        self.handles.latency.with(
            |w| *w == webhook,
            || {
                let histogram = self
                    .latency
                    .get_or_create(&WebhookLabels { webhook })
                    .clone();
                (webhook, histogram)
            },
            |histogram| histogram.observe(seconds),
        );
    }

    /// Records the expiry of the certificate now in use.
    pub fn set_certificate_expiry(&self, not_after: SystemTime) {
        let seconds = not_after
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.certificate_expiry.set(seconds);
    }
}

/// The registry as Prometheus text exposition.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_beyond_the_limit_still_count() {
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry);
        let kinds: Vec<String> = (0..100).map(|i| format!("Kind{i}")).collect();
        for _ in 0..3 {
            for kind in &kinds {
                metrics.count_request("validate", kind, "CREATE", "allowed");
            }
        }
        assert_eq!(metrics.handles.requests.entries.load().len(), 64);
        let text = encode(&registry);
        for kind in &kinds {
            let line = format!(
                r#"homestead_admission_requests_total{{webhook="validate",kind="{kind}",operation="CREATE",result="allowed"}} 3"#
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
    }

    #[test]
    fn counters_show_up_in_the_exposition() {
        let mut registry = Registry::default();
        let metrics = ServerMetrics::register(&mut registry);
        metrics
            .requests
            .get_or_create(&RequestLabels {
                webhook: "mutate",
                kind: "Pod".into(),
                operation: "CREATE".into(),
                result: "patched",
            })
            .inc();
        metrics
            .latency
            .get_or_create(&WebhookLabels { webhook: "mutate" })
            .observe(0.0003);
        metrics.set_certificate_expiry(UNIX_EPOCH + std::time::Duration::from_secs(1_900_000_000));
        // The same series through the cached handles, and another one.
        for _ in 0..2 {
            metrics.count_request("mutate", "Pod", "CREATE", "patched");
        }
        metrics.count_request("mutate", "Pod", "UPDATE", "patched");
        metrics.observe_latency("mutate", 0.0002);
        metrics.observe_latency("mutate", 0.02);
        let text = encode(&registry);
        assert!(text.contains(
            r#"homestead_admission_requests_total{webhook="mutate",kind="Pod",operation="CREATE",result="patched"} 3"#
        ), "{text}");
        assert!(text.contains(
            r#"homestead_admission_requests_total{webhook="mutate",kind="Pod",operation="UPDATE",result="patched"} 1"#
        ), "{text}");
        assert!(
            text.contains(
                r#"homestead_admission_duration_seconds_bucket{le="0.0005",webhook="mutate"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"homestead_admission_duration_seconds_count{webhook="mutate"} 3"#),
            "{text}"
        );
        assert!(
            text.contains("homestead_tls_certificate_expiry_timestamp_seconds 1900000000"),
            "{text}"
        );
    }
}
