//! Hook metrics: calls by hook, event and result; call latency by hook; notifications
//! given up on or dropped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the call counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// The hook's name.
    pub hook: String,
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub event: String,
    /// `ok` (2xx), `refused` (any other status), `timeout` or `error` (no answer).
    pub result: String,
}

/// Labels naming a hook.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    /// The hook's name.
    pub hook: String,
}

/// The hook metrics; cheap to clone (every handle shares the same values).
#[derive(Clone, Debug)]
pub struct HookMetrics {
    /// Calls made, by hook, event and result (every attempt counts).
    pub calls: Family<CallLabels, Counter>,
    /// Time one call took, by hook.
    pub duration: Family<HookLabels, Histogram>,
    /// Notifications given up on after every attempt failed, by hook.
    pub notify_failed: Family<HookLabels, Counter>,
    /// Notifications dropped because the hook's queue was full, by hook.
    pub notify_dropped: Family<HookLabels, Counter>,
}

impl Default for HookMetrics {
    fn default() -> Self {
        Self {
            calls: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ])
            }),
            notify_failed: Family::default(),
            notify_dropped: Family::default(),
        }
    }
}

impl HookMetrics {
    /// Registers every metric under `homestead_hook_*`.
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("homestead_hook");
        sub.register(
            "calls",
            "Calls to site hooks, by hook, event and result (ok, refused, timeout, error)",
            self.calls.clone(),
        );
        sub.register(
            "call_duration_seconds",
            "Time one call to a site hook took, by hook",
            self.duration.clone(),
        );
        sub.register(
            "notifications_failed",
            "Notifications given up on after every attempt failed, by hook",
            self.notify_failed.clone(),
        );
        sub.register(
            "notifications_dropped",
            "Notifications dropped because the hook's queue was full, by hook",
            self.notify_dropped.clone(),
        );
    }

    /// Records one call.
    pub fn called(&self, hook: &str, event: &str, result: &str, seconds: f64) {
        self.calls
            .get_or_create(&CallLabels {
                hook: hook.to_owned(),
                event: event.to_owned(),
                result: result.to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&HookLabels {
                hook: hook.to_owned(),
            })
            .observe(seconds);
    }

    fn hook(family: &Family<HookLabels, Counter>, hook: &str) {
        family
            .get_or_create(&HookLabels {
                hook: hook.to_owned(),
            })
            .inc();
    }

    /// Records a notification given up on.
    pub fn gave_up(&self, hook: &str) {
        Self::hook(&self.notify_failed, hook);
    }

    /// Records a notification dropped (queue full).
    pub fn dropped(&self, hook: &str) {
        Self::hook(&self.notify_dropped, hook);
    }
}
