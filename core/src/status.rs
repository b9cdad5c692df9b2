//! The status a reconcile leaves on a `User`, `Session` or `Project`, and whether it needs
//! writing: pure, decided from the outcome, the current status and a time given to it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::resources::{HookRecord, Lifecycle, Phase, ResourceStatus};

/// Condition saying every object exists and matches.
pub const CONDITION_READY: &str = "Ready";
/// Condition saying the namespace is homestead's to manage.
pub const CONDITION_NAMESPACE_OWNED: &str = "NamespaceOwned";
/// Condition listing what could not be planned (members without Users, missing sources).
pub const CONDITION_COMPLETE: &str = "Complete";
/// Condition saying whether existing volumes and claims are as the configuration plans
/// them (they are kept as they are when it changes; the message says how to migrate).
pub const CONDITION_STORAGE_CURRENT: &str = "StorageCurrent";
/// Condition saying whether every claim homestead made is `Bound` (a claim that is not
/// leaves the owner `Deployed`: pods using it wait until it binds).
pub const CONDITION_STORAGE_BOUND: &str = "StorageBound";
/// Condition saying whether a blocking site hook refused the change (`True`: which hook
/// and the first 1 KB of its answer; `False` once every blocking hook agreed).
pub const CONDITION_HOOK_REJECTED: &str = "HookRejected";

/// What a reconcile concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Objects are about to be applied.
    Deploying,
    /// Everything applied; `problems` lists what had to be left out, `storage` the
    /// existing storage kept although the configuration now plans it otherwise, `unbound`
    /// the claims not `Bound`.
    Deployed {
        /// What could not be planned.
        problems: Vec<String>,
        /// Storage kept as it is, and how to migrate it.
        storage: Vec<String>,
        /// Claims that are not `Bound` (yet), one sentence each.
        unbound: Vec<String>,
    },
    /// The namespace exists and homestead did not create it for this owner; says why.
    NamespaceNotOwned {
        /// Why it is not this owner's.
        why: String,
    },
    /// Something failed; `reason` is a short code, `message` the detail.
    Failed {
        /// CamelCase reason code.
        reason: &'static str,
        /// What went wrong.
        message: String,
    },
    /// The finalizer is cleaning up.
    Deleting,
    /// A blocking site hook did not agree to the change, which was not applied.
    HookRejected {
        /// CamelCase reason: `Refused` (a non-2xx answer), `TimedOut`, `Unreachable`.
        reason: &'static str,
        /// Which hook, and what it answered (see `homestead_core::hooks`).
        message: String,
    },
    /// A Session outside its open window, for which nothing was applied: `Scheduled`
    /// (nothing is created before it opens) or `Ended` with `afterGrace:
    /// deleteNamespace`. `message` says when and what was done.
    OutsideWindow {
        /// `Phase::Scheduled` or `Phase::Ended`.
        phase: Phase,
        /// When it opens, or what was done at its end.
        message: String,
    },
}

/// The status after `outcome`. Conditions whose status did not change keep their
/// `lastTransitionTime`, so an unchanged outcome gives an equal status (and no write).
pub fn next_status(
    current: Option<&ResourceStatus>,
    generation: Option<i64>,
    namespace: Option<&str>,
    outcome: &Outcome,
    now: &Time,
) -> ResourceStatus {
    let previous = current.map(|s| s.conditions.as_slice()).unwrap_or_default();
    // Once the hooks agree, a standing rejection is turned off.
    let agreed = || {
        previous
            .iter()
            .any(|c| c.type_ == CONDITION_HOOK_REJECTED)
            .then(|| cond("False", "Agreed", "every blocking hook agreed"))
    };
    let mut hook = None;
    let (phase, reason, ready, owned, complete, storage, bound) = match outcome {
        Outcome::Deploying => (
            Phase::Deploying,
            None,
            cond("False", "Deploying", "objects are being applied"),
            Some(cond("True", "Created", "homestead created the namespace")),
            None,
            None,
            None,
        ),
        Outcome::Deployed {
            problems,
            storage,
            unbound,
        } => (
            Phase::Deployed,
            None,
            cond("True", "Deployed", "every object exists and matches"),
            Some(cond("True", "Created", "homestead created the namespace")),
            Some(if problems.is_empty() {
                cond("True", "Complete", "nothing was left out")
            } else {
                cond("False", "Incomplete", &problems.join("; "))
            }),
            Some(if storage.is_empty() {
                cond(
                    "True",
                    "Current",
                    "every volume and claim is as the configuration plans it",
                )
            } else {
                cond("False", "DiffersFromConfiguration", &storage.join("; "))
            }),
            Some(if unbound.is_empty() {
                cond("True", "Bound", "every claim is Bound")
            } else {
                cond("False", "NotBound", &unbound.join("; "))
            }),
        ),
        Outcome::NamespaceNotOwned { why } => {
            let message = format!(
                "namespace {:?} already exists and was not created by homestead: {why}; it is never adopted and nothing in it is touched",
                namespace.unwrap_or_default()
            );
            (
                Phase::Failed,
                Some(message.clone()),
                cond("False", "NamespaceNotOwned", &message),
                Some(cond("False", "NamespaceNotOwned", &message)),
                None,
                None,
                None,
            )
        }
        Outcome::Failed { reason, message } => (
            Phase::Failed,
            Some(message.clone()),
            cond("False", reason, message),
            None,
            None,
            None,
            None,
        ),
        Outcome::HookRejected { reason, message } => {
            hook = Some(cond("True", reason, message));
            (
                Phase::Failed,
                Some(message.clone()),
                cond("False", "HookRejected", message),
                None,
                None,
                None,
                None,
            )
        }
        Outcome::Deleting => (
            Phase::Deleting,
            None,
            cond("False", "Deleting", "the resource is being deleted"),
            None,
            None,
            None,
            None,
        ),
        Outcome::OutsideWindow { phase, message } => (
            *phase,
            None,
            cond("False", phase.as_str(), message),
            None,
            None,
            None,
            None,
        ),
    };
    if matches!(
        outcome,
        Outcome::Deploying | Outcome::Deployed { .. } | Outcome::Deleting
    ) {
        hook = agreed();
    }
    let mut conditions = Vec::new();
    for (kind, c) in [
        (CONDITION_READY, Some(ready)),
        (CONDITION_NAMESPACE_OWNED, owned),
        (CONDITION_COMPLETE, complete),
        (CONDITION_STORAGE_CURRENT, storage),
        (CONDITION_STORAGE_BOUND, bound),
        (CONDITION_HOOK_REJECTED, hook),
    ] {
        // A condition this outcome says nothing about keeps its last value.
        let Some((status, reason, message)) = c else {
            if let Some(old) = previous.iter().find(|p| p.type_ == kind) {
                conditions.push(old.clone());
            }
            continue;
        };
        let old = previous.iter().find(|p| p.type_ == kind);
        let last_transition_time = match old {
            Some(old) if old.status == status => old.last_transition_time.clone(),
            _ => now.clone(),
        };
        conditions.push(Condition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.clone(),
            observed_generation: generation,
            last_transition_time,
        });
    }
    ResourceStatus {
        phase: Some(phase),
        namespace: namespace
            .map(str::to_owned)
            .or_else(|| current.and_then(|s| s.namespace.clone())),
        reason,
        conditions,
        observed_generation: generation,
        lifecycle: current.and_then(|s| s.lifecycle),
        hooks: current.and_then(|s| s.hooks.clone()),
    }
}

/// `status` with what the site's hooks were asked or told recorded (`None` keeps it).
pub fn with_hooks(mut status: ResourceStatus, hooks: Option<HookRecord>) -> ResourceStatus {
    if hooks.is_some() {
        status.hooks = hooks;
    }
    status
}

/// `status` with a Session's `lifecycle` recorded; a Session that deployed everything
/// while `Ended` (`afterGrace: refusePods` or `readOnly`) shows the phase `Ended`.
pub fn with_lifecycle(mut status: ResourceStatus, lifecycle: Lifecycle) -> ResourceStatus {
    status.lifecycle = Some(lifecycle);
    if status.phase == Some(Phase::Deployed) && lifecycle == Lifecycle::Ended {
        status.phase = Some(Phase::Ended);
    }
    status
}

fn cond<'a>(status: &'a str, reason: &'a str, message: &str) -> (&'a str, &'a str, String) {
    // Condition messages are limited to 32768 bytes; keep well below.
    let mut message = message.to_owned();
    if message.len() > 4096 {
        let mut cut = 4096;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    (status, reason, message)
}

/// True when the status should move to `Deploying` before applying: the spec changed
/// since the last status, or nothing was ever written. A `Failed` status for the current
/// generation stays until the next success, so retries do not flap between phases.
pub fn should_mark_deploying(current: Option<&ResourceStatus>, generation: Option<i64>) -> bool {
    match current {
        None => true,
        Some(s) => {
            s.observed_generation != generation || matches!(s.phase, None | Some(Phase::New))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn unchanged_outcome_gives_an_equal_status() {
        let deployed = Outcome::Deployed {
            problems: vec![],
            storage: vec![],
            unbound: vec![],
        };
        let first = next_status(None, Some(1), Some("home-ada"), &deployed, &at(10));
        let again = next_status(Some(&first), Some(1), Some("home-ada"), &deployed, &at(99));
        assert_eq!(first, again, "no write on a no-op reconcile");
        assert_eq!(first.phase, Some(Phase::Deployed));
        assert_eq!(first.observed_generation, Some(1));
        assert_eq!(first.conditions.len(), 5);
    }

    #[test]
    fn transitions_stamp_only_changed_conditions() {
        let deploying = next_status(None, Some(2), Some("ns"), &Outcome::Deploying, &at(10));
        assert_eq!(deploying.phase, Some(Phase::Deploying));
        let deployed = next_status(
            Some(&deploying),
            Some(2),
            Some("ns"),
            &Outcome::Deployed {
                problems: vec!["member \"x\" has no User".into()],
                storage: vec!["PersistentVolume x keeps the source {}".into()],
                unbound: vec![],
            },
            &at(20),
        );
        let ready = deployed
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("True", at(20))
        );
        let owned = deployed
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_NAMESPACE_OWNED)
            .unwrap();
        assert_eq!(
            owned.last_transition_time,
            at(10),
            "unchanged condition keeps its time"
        );
        let complete = deployed
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_COMPLETE)
            .unwrap();
        assert_eq!(complete.status, "False");
        assert!(complete.message.contains("no User"));
        let storage = deployed
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_STORAGE_CURRENT)
            .unwrap();
        assert_eq!(
            (storage.status.as_str(), storage.reason.as_str()),
            ("False", "DiffersFromConfiguration")
        );
        assert!(storage.message.contains("keeps the source"));
    }

    #[test]
    fn foreign_namespace_fails_with_reason() {
        let s = next_status(
            None,
            Some(1),
            Some("home-ada"),
            &Outcome::NamespaceNotOwned {
                why: "no ownerReference names this User".into(),
            },
            &at(1),
        );
        assert_eq!(s.phase, Some(Phase::Failed));
        let reason = s.reason.as_deref().unwrap();
        for words in [
            "\"home-ada\"",
            "no ownerReference names this User",
            "never adopted",
        ] {
            assert!(reason.contains(words), "{words} in {reason}");
        }
        let owned = s
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_NAMESPACE_OWNED)
            .unwrap();
        assert_eq!(
            (owned.status.as_str(), owned.reason.as_str()),
            ("False", "NamespaceNotOwned")
        );
    }

    #[test]
    fn deploying_is_marked_once_per_generation() {
        assert!(should_mark_deploying(None, Some(1)));
        let deployed = next_status(
            None,
            Some(1),
            None,
            &Outcome::Deployed {
                problems: vec![],
                storage: vec![],
                unbound: vec![],
            },
            &at(1),
        );
        assert!(!should_mark_deploying(Some(&deployed), Some(1)));
        assert!(should_mark_deploying(Some(&deployed), Some(2)));
        let failed = next_status(
            Some(&deployed),
            Some(2),
            None,
            &Outcome::Failed {
                reason: "ApplyFailed",
                message: "boom".into(),
            },
            &at(2),
        );
        assert!(
            !should_mark_deploying(Some(&failed), Some(2)),
            "retries do not flap"
        );
        assert_eq!(failed.namespace, None);
    }

    #[test]
    fn a_claim_not_bound_is_said_without_failing_the_owner() {
        let deployed = |unbound: Vec<String>| Outcome::Deployed {
            problems: vec![],
            storage: vec![],
            unbound,
        };
        let bound = next_status(None, Some(1), Some("ns"), &deployed(vec![]), &at(1));
        let pending = next_status(
            Some(&bound),
            Some(1),
            Some("ns"),
            &deployed(vec![
                "claim ns/homestead-data is not Bound yet (Pending)".into(),
            ]),
            &at(2),
        );
        assert_eq!(pending.phase, Some(Phase::Deployed), "not Failed");
        let condition = |s: &ResourceStatus| {
            let c = s
                .conditions
                .iter()
                .find(|c| c.type_ == CONDITION_STORAGE_BOUND)
                .unwrap();
            (c.status.clone(), c.reason.clone(), c.message.clone())
        };
        assert_eq!(
            condition(&bound),
            ("True".into(), "Bound".into(), "every claim is Bound".into())
        );
        assert_eq!(
            condition(&pending),
            (
                "False".into(),
                "NotBound".into(),
                "claim ns/homestead-data is not Bound yet (Pending)".into()
            )
        );
    }

    #[test]
    fn lifecycle_is_kept_and_shown() {
        let deployed = Outcome::Deployed {
            problems: vec![],
            storage: vec![],
            unbound: vec![],
        };
        let active = with_lifecycle(
            next_status(None, Some(1), Some("ns"), &deployed, &at(1)),
            Lifecycle::Active,
        );
        assert_eq!(active.phase, Some(Phase::Deployed));
        let ended = with_lifecycle(
            next_status(Some(&active), Some(1), Some("ns"), &deployed, &at(2)),
            Lifecycle::Ended,
        );
        assert_eq!(
            (ended.phase, ended.lifecycle),
            (Some(Phase::Ended), Some(Lifecycle::Ended))
        );
        // A failure keeps what admission reads.
        let failed = next_status(
            Some(&ended),
            Some(1),
            Some("ns"),
            &Outcome::Failed {
                reason: "ApplyFailed",
                message: "boom".into(),
            },
            &at(3),
        );
        assert_eq!(
            (failed.phase, failed.lifecycle),
            (Some(Phase::Failed), Some(Lifecycle::Ended))
        );
        let scheduled = with_lifecycle(
            next_status(
                None,
                Some(1),
                Some("ns"),
                &Outcome::OutsideWindow {
                    phase: Phase::Scheduled,
                    message: "opens at 2030-01-01T00:00:00Z".into(),
                },
                &at(1),
            ),
            Lifecycle::Scheduled,
        );
        assert_eq!(scheduled.phase, Some(Phase::Scheduled));
        assert_eq!(scheduled.conditions[0].reason, "Scheduled");
        assert_eq!(scheduled.conditions[0].status, "False");
    }

    #[test]
    fn a_hook_refusal_fails_the_owner_until_the_hooks_agree() {
        let rejected = Outcome::HookRejected {
            reason: "Refused",
            message: "hook quota answered HTTP 403: over quota".into(),
        };
        let first = next_status(None, Some(2), None, &rejected, &at(10));
        assert_eq!(first.phase, Some(Phase::Failed));
        let hook = |s: &ResourceStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == CONDITION_HOOK_REJECTED)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        };
        assert_eq!(
            hook(&first),
            Some((
                "True".into(),
                "Refused".into(),
                "hook quota answered HTTP 403: over quota".into()
            ))
        );
        let ready = first
            .conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "HookRejected")
        );
        // Asked again, same answer: the same status (no write).
        assert_eq!(
            next_status(Some(&first), Some(2), None, &rejected, &at(20)),
            first
        );
        // Agreed: the condition turns False and stays there.
        let deployed = Outcome::Deployed {
            problems: vec![],
            storage: vec![],
            unbound: vec![],
        };
        let agreed = next_status(Some(&first), Some(2), Some("home-ada"), &deployed, &at(30));
        assert_eq!(agreed.phase, Some(Phase::Deployed));
        assert_eq!(
            hook(&agreed).map(|h| (h.0, h.1)),
            Some(("False".into(), "Agreed".into()))
        );
        // Never refused: no such condition at all.
        let plain = next_status(None, Some(1), Some("home-ada"), &deployed, &at(30));
        assert_eq!(hook(&plain), None);
    }

    #[test]
    fn the_hook_record_is_kept_and_replaced() {
        let record = HookRecord {
            generation: 3,
            event: crate::config::HookEvent::Update,
            agreed: true,
            notified: false,
        };
        let with = with_hooks(ResourceStatus::default(), Some(record.clone()));
        assert_eq!(with.hooks.as_ref(), Some(&record));
        let kept = next_status(Some(&with), Some(3), None, &Outcome::Deploying, &at(1));
        assert_eq!(kept.hooks.as_ref(), Some(&record));
        assert_eq!(with_hooks(kept, None).hooks, Some(record));
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(5000);
        let s = next_status(
            None,
            None,
            None,
            &Outcome::Failed {
                reason: "X",
                message: long,
            },
            &at(1),
        );
        assert!(s.conditions[0].message.len() <= 4096);
    }
}
