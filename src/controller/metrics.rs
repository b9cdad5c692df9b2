//! Controller metrics: reconciles by kind and result, reconcile duration, leadership and
//! the number of objects in the caches.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::hooks::HookMetrics;

/// Labels of the reconcile counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `User` or `Session`.
    pub kind: String,
    /// `ok` or `error`.
    pub result: String,
}

/// Labels naming a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `User`, `Session`, `Namespace`, `PersistentVolumeClaim`.
    pub kind: String,
}

/// Labels of the apply counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApplyLabels {
    /// The object's kind.
    pub kind: String,
    /// `unchanged` (it already was as planned: nothing sent), `applied` or `failed`.
    pub result: String,
}

/// Labels naming why something failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A short reason code.
    pub reason: String,
}

/// The controller's metrics; cheap to clone (every handle shares the same values).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Reconciles finished, by kind and result.
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Reconcile duration in seconds, by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// 1 while this replica holds the lease and reconciles.
    pub leader: Gauge,
    /// Objects in the caches, by kind (managed namespaces count as `Namespace`).
    pub managed: Family<KindLabels, Gauge>,
    /// Problems in the last directory build (objects admission ignores).
    pub directory_problems: Gauge,
    /// Planned objects by kind and what their reconcile did with them.
    pub applies: Family<ApplyLabels, Counter>,
    /// Failed lease rounds, by reason (`namespace_not_found`, `forbidden`, `error`).
    pub lease_errors: Family<ReasonLabels, Counter>,
    /// 1 while the last lease round failed (this replica cannot lead), else 0.
    pub lease_failing: Gauge,
    /// The site hooks' calls (registered as `homestead_hook_*`).
    pub hooks: HookMetrics,
    /// Reconciles running now (every kind).
    pub in_flight: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
            }),
            leader: Gauge::default(),
            managed: Family::default(),
            directory_problems: Gauge::default(),
            applies: Family::default(),
            lease_errors: Family::default(),
            lease_failing: Gauge::default(),
            hooks: HookMetrics::default(),
            in_flight: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under `homestead_controller_*`.
    pub fn register(&self, registry: &mut Registry) {
        self.hooks.register(registry);
        let sub = registry.sub_registry_with_prefix("homestead_controller");
        sub.register(
            "reconciles",
            "Reconciles finished, by kind and result",
            self.reconciles.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            self.reconcile_duration.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the lease and reconciles",
            self.leader.clone(),
        );
        sub.register(
            "managed_objects",
            "Objects in the caches, by kind",
            self.managed.clone(),
        );
        sub.register(
            "directory_problems",
            "Users, Sessions and dataset claims left out of the last directory build",
            self.directory_problems.clone(),
        );
        sub.register(
            "applies",
            "Planned objects by kind and result: unchanged (already as planned, nothing sent), applied or failed",
            self.applies.clone(),
        );
        sub.register(
            "lease_errors",
            "Failed leader-election rounds, by reason",
            self.lease_errors.clone(),
        );
        sub.register(
            "lease_failing",
            "1 while the last leader-election round failed (this replica cannot lead)",
            self.lease_failing.clone(),
        );
        sub.register(
            "reconciles_in_flight",
            "Reconciles running now, every kind",
            self.in_flight.clone(),
        );
    }

    /// Records what a reconcile did with one planned object.
    pub fn applied(&self, kind: &str, result: &str) {
        self.applies
            .get_or_create(&ApplyLabels {
                kind: kind.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }

    /// Records a failed lease round.
    pub fn lease_error(&self, reason: &str) {
        self.lease_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
        self.lease_failing.set(1);
    }

    /// Records one finished reconcile.
    pub fn reconciled(&self, kind: &str, ok: bool, seconds: f64) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                kind: kind.to_owned(),
                result: if ok { "ok" } else { "error" }.to_owned(),
            })
            .inc();
        self.reconcile_duration
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .observe(seconds);
    }

    /// Sets the number of cached objects of a kind.
    pub fn set_managed(&self, kind: &str, count: usize) {
        self.managed
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_are_exposed() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.reconciled("User", true, 0.02);
        metrics.reconciled("User", false, 0.2);
        metrics.leader.set(1);
        metrics.set_managed("User", 3);
        metrics.lease_error("namespace_not_found");
        metrics.applied("ConfigMap", "unchanged");
        metrics.in_flight.inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            r#"homestead_controller_reconciles_total{kind="User",result="ok"} 1"#,
            r#"homestead_controller_reconciles_total{kind="User",result="error"} 1"#,
            r#"homestead_controller_reconcile_duration_seconds_count{kind="User"} 2"#,
            "homestead_controller_leader 1",
            r#"homestead_controller_managed_objects{kind="User"} 3"#,
            r#"homestead_controller_lease_errors_total{reason="namespace_not_found"} 1"#,
            "homestead_controller_lease_failing 1",
            r#"homestead_controller_applies_total{kind="ConfigMap",result="unchanged"} 1"#,
            "homestead_controller_reconciles_in_flight 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
