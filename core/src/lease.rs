//! Leader election decisions, pure: who may hold a `coordination.k8s.io/v1` Lease, what
//! its spec becomes, and how long the holder may go on leading without a renewal. The
//! shell (`src/controller/lease.rs`) reads and writes the Lease and keeps the time; every
//! write there carries the `resourceVersion` it read, so two replicas can never both win.
//!
//! The holder must stop leading before another replica may take the lease: every round is
//! bounded in time, and a holder that has not renewed within the renew deadline — well
//! before the lease can expire — stops leading (client-go's `RenewDeadline`).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The Lease's name unless `--lease-name` says otherwise.
pub const DEFAULT_LEASE_NAME: &str = "homestead-controller";

/// Where the lease is and who we are.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Namespace of the Lease (homestead's own).
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a lease lasts without renewal.
    pub duration: Duration,
    /// How long after the start of its last successful renewal the holder stops leading
    /// if it could not renew again; shorter than `duration`, so that it has stopped before
    /// another replica can take the lease.
    pub renew_deadline: Duration,
    /// How often the holder renews (and followers look).
    pub renew_every: Duration,
    /// The longest one round (read and write) may take.
    pub round_timeout: Duration,
}

impl LeaseSettings {
    /// Defaults: 15 s leases renewed every 5 s, each round bounded to 5 s, leadership
    /// given up 10 s after the last renewal began.
    pub fn new(namespace: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: DEFAULT_LEASE_NAME.to_owned(),
            identity: identity.to_owned(),
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            renew_every: Duration::from_secs(5),
            round_timeout: Duration::from_secs(5),
        }
    }

    /// What is left of the renew deadline `since_renewed` after the start of the last
    /// successful renewal; `None` when not leading.
    fn deadline_left(&self, since_renewed: Option<Duration>) -> Option<Duration> {
        let since = since_renewed?;
        // Never trust a deadline at or beyond the lease itself.
        let deadline = self.renew_deadline.min(
            self.duration
                .saturating_sub(self.round_timeout.min(self.duration / 3)),
        );
        deadline.checked_sub(since).filter(|left| !left.is_zero())
    }
}

/// True when this replica leads, `since_renewed` after the start of its last successful
/// renewal (`None`: it holds nothing): only within the renew deadline.
pub fn leading(settings: &LeaseSettings, since_renewed: Option<Duration>) -> bool {
    settings.deadline_left(since_renewed).is_some()
}

/// How long the next round may take: the round timeout, and while leading no longer than
/// what is left of the renew deadline (a round that cannot finish in time is abandoned and
/// leadership is given up).
pub fn round_budget(settings: &LeaseSettings, since_renewed: Option<Duration>) -> Duration {
    match settings.deadline_left(since_renewed) {
        Some(left) => settings.round_timeout.min(left),
        None => settings.round_timeout,
    }
}

/// How long to wait before the next round after `failures` failed rounds in a row. While
/// leading: the renew period (half of it while failing, to retry within the deadline), and
/// never past the renew deadline, so leadership ends on time. Otherwise the renew period,
/// longer each time while rounds keep failing (up to six periods).
pub fn next_wait(
    settings: &LeaseSettings,
    since_renewed: Option<Duration>,
    failures: u32,
) -> Duration {
    match settings.deadline_left(since_renewed) {
        Some(left) => {
            let period = if failures > 0 {
                settings.renew_every / 2
            } else {
                settings.renew_every
            };
            period.min(left)
        }
        None => settings.renew_every * failures.clamp(1, 6),
    }
}

/// What to do with the lease as it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it or the holder let it expire: take it.
    Acquire,
    /// Someone else holds it and it is fresh: follow.
    Follow,
}

/// Decides from the lease's spec, our identity and the time.
pub fn decide(spec: Option<&LeaseSpec>, identity: &str, now: Timestamp) -> Decision {
    let Some(spec) = spec else {
        return Decision::Acquire;
    };
    match spec.holder_identity.as_deref() {
        None | Some("") => Decision::Acquire,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) => {
            let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(15));
            let renewed = spec
                .renew_time
                .as_ref()
                .or(spec.acquire_time.as_ref())
                .map(|t| t.0);
            match renewed {
                Some(at) if at + SignedDuration::from_secs(seconds) > now => Decision::Follow,
                _ => Decision::Acquire,
            }
        }
    }
}

/// The spec after `decision` is carried out by `identity` at `now`.
pub fn next_spec(
    current: Option<&LeaseSpec>,
    decision: Decision,
    identity: &str,
    duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let mut spec = current.cloned().unwrap_or_default();
    if decision == Decision::Acquire {
        spec.holder_identity = Some(identity.to_owned());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(
            current
                .and_then(|s| s.lease_transitions)
                .map_or(0, |t| t.saturating_add(1)),
        );
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn held_by(who: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(who.into()),
            renew_time: Some(MicroTime(at(renewed))),
            lease_duration_seconds: Some(15),
            ..Default::default()
        }
    }

    #[test]
    fn decisions() {
        let table = [
            (None, 100, Decision::Acquire),
            (Some(LeaseSpec::default()), 100, Decision::Acquire),
            (Some(held_by("me", 0)), 100, Decision::Renew),
            (Some(held_by("other", 90)), 100, Decision::Follow),
            (Some(held_by("other", 80)), 100, Decision::Acquire),
            (Some(held_by("other", 85)), 100, Decision::Acquire),
            (Some(held_by("other", 86)), 100, Decision::Follow),
        ];
        for (spec, now, want) in table {
            assert_eq!(
                decide(spec.as_ref(), "me", at(now)),
                want,
                "{spec:?} at {now}"
            );
        }
    }

    #[test]
    fn the_holder_stops_leading_before_the_lease_can_expire() {
        let settings = LeaseSettings::new("homestead", "me");
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        // (since the last renewal began, failures, leading, round budget, wait after)
        let table = [
            (None, 0, false, s(5), s(5)),
            (None, 3, false, s(5), s(15)),
            (None, 9, false, s(5), s(30)),
            (Some(s(0)), 0, true, s(5), s(5)),
            (Some(s(5)), 0, true, s(5), s(5)),
            // A renewal that failed: retry sooner, within the deadline.
            (Some(s(5)), 1, true, s(5), ms(2500)),
            // Late: the round may only use what is left, the wait ends at the deadline.
            (Some(s(8)), 1, true, s(2), s(2)),
            (Some(ms(9999)), 1, true, ms(1), ms(1)),
            // Past the deadline (a hung round was cut off): not leading, well before the
            // 15 s lease has passed.
            (Some(s(10)), 1, false, s(5), s(5)),
            (Some(s(14)), 2, false, s(5), s(10)),
        ];
        for (since, failures, lead, budget, wait) in table {
            assert_eq!(leading(&settings, since), lead, "{since:?}");
            assert_eq!(round_budget(&settings, since), budget, "{since:?}");
            assert_eq!(
                next_wait(&settings, since, failures),
                wait,
                "{since:?} {failures}"
            );
        }
        // A deadline configured at or past the lease is never trusted.
        let careless = LeaseSettings {
            renew_deadline: s(20),
            ..settings
        };
        assert!(leading(&careless, Some(s(9))));
        assert!(!leading(&careless, Some(s(10))), "{careless:?}");
    }

    #[test]
    fn acquiring_counts_transitions_and_renewing_does_not() {
        let taken = next_spec(
            Some(&held_by("other", 0)),
            Decision::Acquire,
            "me",
            Duration::from_secs(15),
            at(50),
        );
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_transitions, Some(0));
        assert_eq!(taken.acquire_time, Some(MicroTime(at(50))));
        let again = next_spec(
            Some(&taken),
            Decision::Acquire,
            "other",
            Duration::from_secs(15),
            at(90),
        );
        assert_eq!(again.lease_transitions, Some(1));
        let renewed = next_spec(
            Some(&taken),
            Decision::Renew,
            "me",
            Duration::from_secs(20),
            at(60),
        );
        assert_eq!(renewed.acquire_time, Some(MicroTime(at(50))));
        assert_eq!(renewed.renew_time, Some(MicroTime(at(60))));
        assert_eq!(renewed.lease_duration_seconds, Some(20));
        assert_eq!(renewed.lease_transitions, Some(0));
    }
}
