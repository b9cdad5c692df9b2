//! Site hooks, the pure half: which hooks hear of a change and whether they already did
//! (from `status.hooks`), the JSON they are sent, the idempotency key, what an answer
//! means for the object's status, the retry schedules, and the
//! `homestead.dev/skip-hooks` annotation. The shell (`src/hooks/`) makes the calls and
//! reads the clock.
//!
//! **CREATE or UPDATE.** A change is the object's `metadata.generation`. The first one the
//! controller applies is `CREATE` (nothing was made yet); any later generation is
//! `UPDATE`. An object deployed before hooks heard of its kind is not asked about until
//! its next generation. A reconcile that finds nothing new (same generation, already agreed and
//! told) calls no hook. What was asked is kept in `status.hooks` (only the controller
//! writes status): `agreed` once every blocking hook said yes — written before the change
//! is applied, so a failed apply retried does not ask again — and `notified` once the
//! change was applied and the notifying hooks were queued.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, HookConfig, HookEvent, HookKind};
use crate::desired::OwnerKind;
use crate::resources::{HookRecord, Phase, ResourceStatus};
use crate::status::CONDITION_NAMESPACE_OWNED;

/// Annotation an admin sets on a User, Session or Project being deleted to let the delete
/// through blocking hooks that are gone for good: `<hook name>[,<hook name>...]`.
pub const ANNOTATION_SKIP_HOOKS: &str = crate::names::ANNOTATION_SKIP_HOOKS;
/// The header carrying the idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// How much of a refusing hook's answer the status and events keep.
pub const ANSWER_LIMIT: usize = 1024;
/// Calls of one notifying hook about one change, first included.
pub const NOTIFY_ATTEMPTS: u32 = 5;

/// The hook kind of an owner kind.
pub fn hook_kind(kind: OwnerKind) -> HookKind {
    match kind {
        OwnerKind::User => HookKind::User,
        OwnerKind::Session => HookKind::Session,
        OwnerKind::Project => HookKind::Project,
    }
}

/// The hooks that hear of `event` on `kind`, blocking or notifying, in configuration order.
pub fn hooks_for(
    config: &Config,
    kind: OwnerKind,
    event: HookEvent,
    blocking: bool,
) -> impl Iterator<Item = &HookConfig> {
    let kind = hook_kind(kind);
    config.hooks.iter().filter(move |h| {
        h.blocking == blocking && h.kinds.contains(&kind) && h.events.contains(&event)
    })
}

/// What a reconcile must do with hooks for one change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeHooks {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub event: HookEvent,
    /// The generation the change is about.
    pub generation: i64,
    /// Blocking hooks still to ask, by name (empty: go ahead).
    pub blocking: Vec<String>,
    /// Blocking hooks the `homestead.dev/skip-hooks` annotation lets a delete through.
    pub skipped: Vec<String>,
    /// Notifying hooks to tell once the change is applied, by name.
    pub notifying: Vec<String>,
    /// The record before this change, kept while nothing new is known.
    previous: Option<HookRecord>,
}

impl ChangeHooks {
    /// `status.hooks` once every blocking hook agreed (before applying).
    pub fn agreed(&self) -> HookRecord {
        HookRecord {
            generation: self.generation,
            event: self.event,
            agreed: true,
            notified: self
                .previous
                .as_ref()
                .is_some_and(|r| self.same_change(r) && r.notified),
        }
    }

    /// `status.hooks` while a blocking hook refuses: the change is known, not agreed (so
    /// it is asked again, whatever else the status says).
    pub fn pending(&self) -> HookRecord {
        HookRecord {
            agreed: false,
            ..self.agreed()
        }
    }

    /// `status.hooks` once the change was applied and the notifying hooks were queued.
    pub fn notified(&self) -> HookRecord {
        HookRecord {
            notified: true,
            ..self.agreed()
        }
    }

    /// True when the agreement still has to be written (it is not in the status yet).
    pub fn agreement_unrecorded(&self) -> bool {
        self.previous
            .as_ref()
            .is_none_or(|r| !(self.same_change(r) && r.agreed))
    }

    fn same_change(&self, r: &HookRecord) -> bool {
        r.generation == self.generation && r.event == self.event
    }
}

/// True when homestead has made something for this object before: `status.hooks` says a
/// change was applied, or (objects older than hooks) the namespace was created.
fn made_before(status: Option<&ResourceStatus>) -> bool {
    let Some(status) = status else {
        return false;
    };
    match &status.hooks {
        Some(record) => record.event != HookEvent::Create || record.notified,
        None => status
            .conditions
            .iter()
            .any(|c| c.type_ == CONDITION_NAMESPACE_OWNED && c.status == "True"),
    }
}

/// The hooks to ask and tell before and after applying generation `generation` of an
/// object of `kind` whose status is `status`; `None` when no hook hears of it or every
/// hook already did.
pub fn plan_change(
    config: &Config,
    kind: OwnerKind,
    status: Option<&ResourceStatus>,
    generation: Option<i64>,
) -> Option<ChangeHooks> {
    let generation = generation.unwrap_or_default();
    let previous = status.and_then(|s| s.hooks.clone());
    // An object homestead deployed before hooks heard of its kind: its current generation
    // was applied without them, so nothing changes now; its next generation is an UPDATE.
    if previous.is_none()
        && status.is_some_and(|s| s.observed_generation == Some(generation))
        && made_before(status)
    {
        return None;
    }
    let current = previous
        .as_ref()
        .filter(|r| r.generation == generation && r.event != HookEvent::Delete);
    let event = match current {
        Some(r) => r.event,
        None if made_before(status) => HookEvent::Update,
        None => HookEvent::Create,
    };
    let names = |blocking: bool| -> Vec<String> {
        hooks_for(config, kind, event, blocking)
            .map(|h| h.name.clone())
            .collect()
    };
    let blocking = if current.is_some_and(|r| r.agreed) {
        Vec::new()
    } else {
        names(true)
    };
    let notifying = if current.is_some_and(|r| r.notified) {
        Vec::new()
    } else {
        names(false)
    };
    // Nothing to ask or tell: done, unless an agreed change still has to be marked applied.
    if blocking.is_empty() && notifying.is_empty() && current.is_none_or(|r| r.notified) {
        return None;
    }
    Some(ChangeHooks {
        event,
        generation,
        blocking,
        skipped: Vec::new(),
        notifying,
        previous,
    })
}

/// The hooks to ask before cleaning up a deleted object, and to tell after;
/// `skip_annotation` is the value of `homestead.dev/skip-hooks`. `None` when no hook hears
/// of it. Blocking hooks that already agreed (`status.hooks`) are not asked again.
pub fn plan_delete(
    config: &Config,
    kind: OwnerKind,
    status: Option<&ResourceStatus>,
    generation: Option<i64>,
    skip_annotation: Option<&str>,
) -> Option<ChangeHooks> {
    let generation = generation.unwrap_or_default();
    let previous = status.and_then(|s| s.hooks.clone());
    let agreed = previous
        .as_ref()
        .is_some_and(|r| r.event == HookEvent::Delete && r.generation == generation && r.agreed);
    let skip = skip_annotation.map(skip_list).unwrap_or_default();
    let (mut blocking, mut skipped) = (Vec::new(), Vec::new());
    if !agreed {
        for hook in hooks_for(config, kind, HookEvent::Delete, true) {
            if skip.contains(&hook.name.as_str()) {
                skipped.push(hook.name.clone());
            } else {
                blocking.push(hook.name.clone());
            }
        }
    }
    let notifying: Vec<String> = hooks_for(config, kind, HookEvent::Delete, false)
        .map(|h| h.name.clone())
        .collect();
    if blocking.is_empty() && skipped.is_empty() && notifying.is_empty() {
        return None;
    }
    Some(ChangeHooks {
        event: HookEvent::Delete,
        generation,
        blocking,
        skipped,
        notifying,
        previous,
    })
}

/// The newer of the record `stored` in the status a reconcile reads and the one the
/// controller last `written` for the object: the cache a reconcile reads may not have
/// caught up with the controller's own last write yet, and a stale record would ask or
/// tell the hooks about a change again. A later generation (or a DELETE) wins; for the
/// same change, what either says was agreed or told was.
pub fn latest(stored: Option<&HookRecord>, written: Option<&HookRecord>) -> Option<HookRecord> {
    let (stored, written) = match (stored, written) {
        (None, None) => return None,
        (Some(r), None) | (None, Some(r)) => return Some(r.clone()),
        (Some(s), Some(w)) => (s, w),
    };
    let rank = |r: &HookRecord| (r.generation, r.event == HookEvent::Delete);
    if rank(stored) != rank(written) {
        let newer = if rank(written) > rank(stored) {
            written
        } else {
            stored
        };
        return Some(newer.clone());
    }
    if stored.event != written.event {
        return Some(written.clone());
    }
    Some(HookRecord {
        agreed: stored.agreed || written.agreed,
        notified: stored.notified || written.notified,
        ..stored.clone()
    })
}

/// The hook names of a `homestead.dev/skip-hooks` value: comma-separated, spaces
/// around names ignored, empty entries dropped.
pub fn skip_list(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

/// The `homestead.dev/skip-hooks` value of an object's annotations.
pub fn skip_annotation(
    annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> Option<&str> {
    annotations
        .and_then(|a| a.get(ANNOTATION_SKIP_HOOKS))
        .map(String::as_str)
}

/// The JSON a hook is sent (schema: `manifests/hooks/payload.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a> {
    /// `CREATE`, `UPDATE` or `DELETE`.
    pub event_type: HookEvent,
    /// `User`, `Session` or `Project`.
    pub kind: &'static str,
    /// The object's name.
    pub name: &'a str,
    /// The object's spec, as stored.
    pub spec: &'a serde_json::Value,
    /// Where the object is.
    pub status: PayloadStatus,
    /// The namespace it manages, when one can be named.
    pub namespace: Option<&'a str>,
}

/// The status part of a [`Payload`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PayloadStatus {
    /// The object's phase: before the change for a blocking hook (`New` for one never
    /// reconciled), `Deployed` (or `Ended`) after it, `Deleting` on delete.
    pub phase: Phase,
}

impl Payload<'_> {
    /// The JSON body.
    pub fn to_vec(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

/// The idempotency key of one call: the object's uid, the generation, the event and the
/// hook. A retry of the same change to the same hook carries the same key; any other call
/// another one. Plain text (a uid is a UUID, a hook name a DNS label), so a site can read
/// it.
pub fn idempotency_key(uid: &str, generation: i64, event: HookEvent, hook: &str) -> String {
    format!("{uid}/{generation}/{}/{hook}", event.as_str())
}

/// The `Authorization` header value for a hook's credentials Secret, whose data `key`
/// gives: key `token` → `Bearer <token>`; keys `username` and `password` → `Basic
/// base64(username:password)`. A trailing newline (as `echo` writes it) is dropped.
pub fn authorization(key: impl Fn(&str) -> Option<Vec<u8>>) -> Result<String, String> {
    let text = |name: &str| -> Result<Option<String>, String> {
        key(name)
            .map(|bytes| {
                String::from_utf8(bytes)
                    .map(|t| t.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|_| format!("key {name} is not UTF-8"))
            })
            .transpose()
    };
    if let Some(token) = text("token")? {
        if token.is_empty() || token.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err("key token is empty or has spaces or control characters".into());
        }
        return Ok(format!("Bearer {token}"));
    }
    match (text("username")?, text("password")?) {
        (Some(username), Some(password)) => {
            if username.contains(':') {
                return Err("key username must not contain ':'".into());
            }
            use base64::Engine;
            let pair =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Ok(format!("Basic {pair}"))
        }
        _ => Err("has neither key token nor keys username and password".into()),
    }
}

/// What one call to a hook came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// The hook answered with this HTTP status and body (the body possibly cut short).
    Answered {
        /// HTTP status code.
        status: u16,
        /// The start of the body.
        body: Vec<u8>,
    },
    /// No whole answer within the hook's timeout.
    TimedOut(Duration),
    /// No answer at all: the connection, TLS or credentials failed.
    Unreachable(String),
}

/// What an answer means for the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer: go ahead.
    Agreed,
    /// Anything else: the change waits.
    Refused {
        /// CamelCase reason: `Refused`, `TimedOut` or `Unreachable`.
        reason: &'static str,
        /// The hook's name and what it said (the first [`ANSWER_LIMIT`] bytes).
        message: String,
    },
}

impl HookAnswer {
    /// The result label of the metrics: `ok`, `refused`, `timeout` or `error`.
    pub fn result(&self) -> &'static str {
        match self {
            HookAnswer::Answered { status, .. } if (200..300).contains(status) => "ok",
            HookAnswer::Answered { .. } => "refused",
            HookAnswer::TimedOut(_) => "timeout",
            HookAnswer::Unreachable(_) => "error",
        }
    }

    /// What the answer of hook `hook` means.
    pub fn verdict(&self, hook: &str) -> Verdict {
        match self {
            HookAnswer::Answered { status, .. } if (200..300).contains(status) => Verdict::Agreed,
            HookAnswer::Answered { status, body } => {
                let said = first_bytes(body, ANSWER_LIMIT);
                let message = if said.trim().is_empty() {
                    format!("hook {hook} answered HTTP {status}")
                } else {
                    format!("hook {hook} answered HTTP {status}: {said}")
                };
                Verdict::Refused {
                    reason: "Refused",
                    message,
                }
            }
            HookAnswer::TimedOut(after) => Verdict::Refused {
                reason: "TimedOut",
                message: format!(
                    "hook {hook} did not answer within {}",
                    humantime::format_duration(*after)
                ),
            },
            HookAnswer::Unreachable(why) => Verdict::Refused {
                reason: "Unreachable",
                message: format!(
                    "hook {hook} could not be called: {}",
                    first_bytes(why.as_bytes(), ANSWER_LIMIT)
                ),
            },
        }
    }
}

/// The first `limit` bytes of `body` as text (invalid UTF-8 replaced, never split inside
/// a character).
pub fn first_bytes(body: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(limit)]).into_owned();
    if body.len() <= limit {
        return text;
    }
    // The cut may have split a character into a replacement character at the end.
    let text = text.trim_end_matches('\u{FFFD}').to_owned();
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// How long to wait before asking again after `failures` refusals in a row of a blocking
/// hook: 2 s doubling, at most five minutes.
pub fn retry_after(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(8);
    (Duration::from_secs(2) * factor).min(Duration::from_secs(300))
}

/// How long to wait before calling a notifying hook again after its `attempt`-th failed
/// call (1-based): 1 s doubling; `None` once [`NOTIFY_ATTEMPTS`] calls failed.
pub fn notify_retry_after(attempt: u32) -> Option<Duration> {
    (1..NOTIFY_ATTEMPTS)
        .contains(&attempt)
        .then(|| Duration::from_secs(1) * (1u32 << (attempt - 1).min(8)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HookConfig;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

    fn hook(name: &str, blocking: bool, kinds: &[HookKind], events: &[HookEvent]) -> HookConfig {
        HookConfig {
            name: name.into(),
            url: format!("http://{name}.example.org/"),
            ca_bundle: None,
            ca_file: None,
            kinds: kinds.to_vec(),
            events: events.to_vec(),
            blocking,
            timeout: Duration::from_secs(1),
            credentials_secret: None,
        }
    }

    fn config() -> Config {
        use HookEvent::*;
        use HookKind::*;
        Config {
            hooks: vec![
                hook(
                    "quota",
                    true,
                    &[User, Session, Project],
                    &[Create, Update, Delete],
                ),
                hook("storage", true, &[User], &[Create, Delete]),
                hook(
                    "tickets",
                    false,
                    &[User, Project],
                    &[Create, Update, Delete],
                ),
                hook("audit", false, &[Session], &[Update]),
            ],
            ..Config::default()
        }
    }

    fn status(record: Option<HookRecord>, namespace_made: bool) -> ResourceStatus {
        ResourceStatus {
            hooks: record,
            conditions: if namespace_made {
                vec![Condition {
                    type_: CONDITION_NAMESPACE_OWNED.into(),
                    status: "True".into(),
                    reason: "Created".into(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                }]
            } else {
                Vec::new()
            },
            ..ResourceStatus::default()
        }
    }

    fn record(generation: i64, event: HookEvent, agreed: bool, notified: bool) -> HookRecord {
        HookRecord {
            generation,
            event,
            agreed,
            notified,
        }
    }

    type Want = Option<(HookEvent, &'static [&'static str], &'static [&'static str])>;

    #[test]
    fn which_hooks_a_change_asks_and_tells() {
        use HookEvent::*;
        use OwnerKind::{Project, Session, User};
        let config = config();
        let cases: Vec<(&str, OwnerKind, Option<ResourceStatus>, i64, Want)> = vec![
            (
                "a new User: CREATE, both blocking hooks, tickets after",
                User,
                None,
                1,
                Some((Create, &["quota", "storage"], &["tickets"])),
            ),
            (
                "a new Session: only quota; audit hears only of updates",
                Session,
                None,
                1,
                Some((Create, &["quota"], &[])),
            ),
            (
                "a new Project",
                Project,
                Some(status(None, false)),
                1,
                Some((Create, &["quota"], &["tickets"])),
            ),
            (
                "CREATE agreed, apply failed: not asked again, still told",
                User,
                Some(status(Some(record(1, Create, true, false)), true)),
                1,
                Some((Create, &[], &["tickets"])),
            ),
            (
                "steady state: nothing",
                User,
                Some(status(Some(record(3, Update, true, true)), true)),
                3,
                None,
            ),
            (
                "a new generation after the first deploy: UPDATE",
                User,
                Some(status(Some(record(1, Create, true, true)), true)),
                2,
                Some((Update, &["quota"], &["tickets"])),
            ),
            (
                "a new generation before CREATE was ever applied: still CREATE",
                User,
                Some(status(Some(record(1, Create, true, false)), true)),
                2,
                Some((Create, &["quota", "storage"], &["tickets"])),
            ),
            (
                "an object made before hooks existed: UPDATE on its next change",
                User,
                Some(status(None, true)),
                7,
                Some((Update, &["quota"], &["tickets"])),
            ),
            (
                "a refused CREATE (nothing recorded, nothing made) asks again",
                User,
                Some(status(None, false)),
                1,
                Some((Create, &["quota", "storage"], &["tickets"])),
            ),
            (
                "an object made before hooks existed, unchanged since: nothing",
                User,
                Some(ResourceStatus {
                    observed_generation: Some(7),
                    ..status(None, true)
                }),
                7,
                None,
            ),
            (
                "a refused CREATE records its generation as observed; still asked again",
                User,
                Some(ResourceStatus {
                    observed_generation: Some(1),
                    ..status(None, false)
                }),
                1,
                Some((Create, &["quota", "storage"], &["tickets"])),
            ),
            (
                "a refused CREATE (recorded pending) is asked again",
                User,
                Some(ResourceStatus {
                    observed_generation: Some(1),
                    ..status(Some(record(1, Create, false, false)), false)
                }),
                1,
                Some((Create, &["quota", "storage"], &["tickets"])),
            ),
            (
                "a refused UPDATE of an object older than hooks is asked again",
                User,
                Some(ResourceStatus {
                    observed_generation: Some(2),
                    ..status(Some(record(2, Update, false, false)), true)
                }),
                2,
                Some((Update, &["quota"], &["tickets"])),
            ),
            (
                "an agreed Session CREATE whose apply failed: nobody to call, still to mark",
                Session,
                Some(status(Some(record(1, Create, true, false)), true)),
                1,
                Some((Create, &[], &[])),
            ),
            (
                "a Session update: quota asked, audit told",
                Session,
                Some(status(Some(record(1, Create, true, true)), true)),
                2,
                Some((Update, &["quota"], &["audit"])),
            ),
        ];
        for (what, kind, status, generation, want) in cases {
            let got = plan_change(&config, kind, status.as_ref(), Some(generation));
            let got = got.as_ref().map(|c| {
                (
                    c.event,
                    c.blocking.iter().map(String::as_str).collect::<Vec<_>>(),
                    c.notifying.iter().map(String::as_str).collect::<Vec<_>>(),
                )
            });
            let want = want.map(|(e, b, n)| (e, b.to_vec(), n.to_vec()));
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(
            plan_change(&Config::default(), User, None, Some(1)),
            None,
            "no hooks configured: nothing, and no status written"
        );
    }

    #[test]
    fn the_records_a_change_leaves() {
        let config = config();
        let change = plan_change(&config, OwnerKind::User, None, Some(4)).unwrap();
        assert!(change.agreement_unrecorded());
        assert_eq!(change.pending(), record(4, HookEvent::Create, false, false));
        assert_eq!(change.agreed(), record(4, HookEvent::Create, true, false));
        assert_eq!(change.notified(), record(4, HookEvent::Create, true, true));
        // Once the agreement is in the status it is not written again.
        let agreed = status(Some(change.agreed()), true);
        let again = plan_change(&config, OwnerKind::User, Some(&agreed), Some(4)).unwrap();
        assert!(!again.agreement_unrecorded());
        assert_eq!(again.notified(), record(4, HookEvent::Create, true, true));
        let done = status(Some(again.notified()), true);
        assert_eq!(
            plan_change(&config, OwnerKind::User, Some(&done), Some(4)),
            None
        );
    }

    #[test]
    fn deletes_ask_blocking_hooks_unless_skipped_or_agreed() {
        use HookEvent::*;
        let config = config();
        for (what, kind, record, skip, want) in [
            (
                "a User: both blocking hooks, tickets after",
                OwnerKind::User,
                None,
                None,
                Some((vec!["quota", "storage"], vec![], vec!["tickets"])),
            ),
            (
                "an admin skips storage",
                OwnerKind::User,
                None,
                Some("storage"),
                Some((vec!["quota"], vec!["storage"], vec!["tickets"])),
            ),
            (
                "both skipped, spaces and unknown names ignored",
                OwnerKind::User,
                None,
                Some(" storage , gone,quota,"),
                Some((vec![], vec!["quota", "storage"], vec!["tickets"])),
            ),
            (
                "agreed before: not asked again",
                OwnerKind::User,
                Some(record(5, Delete, true, false)),
                None,
                Some((vec![], vec![], vec!["tickets"])),
            ),
            (
                "an UPDATE agreement is not a DELETE one",
                OwnerKind::User,
                Some(record(5, Update, true, true)),
                None,
                Some((vec!["quota", "storage"], vec![], vec!["tickets"])),
            ),
            (
                "a Session: quota only; audit does not hear of deletes",
                OwnerKind::Session,
                None,
                None,
                Some((vec!["quota"], vec![], vec![])),
            ),
        ] {
            let status = status(record, true);
            let got = plan_delete(&config, kind, Some(&status), Some(5), skip).map(|c| {
                assert_eq!(c.event, Delete);
                (c.blocking, c.skipped, c.notifying)
            });
            let want = want.map(|(b, s, n)| {
                let own = |v: Vec<&str>| v.into_iter().map(String::from).collect::<Vec<_>>();
                (own(b), own(s), own(n))
            });
            assert_eq!(got, want, "{what}");
        }
        assert_eq!(
            plan_delete(&Config::default(), OwnerKind::User, None, None, None),
            None
        );
    }

    #[test]
    fn payloads_carry_the_documented_fields() {
        let spec = serde_json::json!({"username": "ada", "uid": 1001});
        let payload = Payload {
            event_type: HookEvent::Update,
            kind: "User",
            name: "ada",
            spec: &spec,
            status: PayloadStatus {
                phase: Phase::Deployed,
            },
            namespace: Some("home-ada"),
        };
        let json: serde_json::Value = serde_json::from_slice(&payload.to_vec().unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "eventType": "UPDATE", "kind": "User", "name": "ada",
                "spec": {"username": "ada", "uid": 1001},
                "status": {"phase": "Deployed"}, "namespace": "home-ada"
            })
        );
    }

    #[test]
    fn idempotency_keys_are_stable_per_change_and_hook() {
        let key = |uid, generation, event, hook| idempotency_key(uid, generation, event, hook);
        let a = key(
            "6f1c2b1e-0000-4000-8000-000000000001",
            3,
            HookEvent::Update,
            "quota",
        );
        assert_eq!(a, "6f1c2b1e-0000-4000-8000-000000000001/3/UPDATE/quota");
        assert_eq!(
            a,
            key(
                "6f1c2b1e-0000-4000-8000-000000000001",
                3,
                HookEvent::Update,
                "quota"
            )
        );
        for other in [
            key(
                "6f1c2b1e-0000-4000-8000-000000000002",
                3,
                HookEvent::Update,
                "quota",
            ),
            key(
                "6f1c2b1e-0000-4000-8000-000000000001",
                4,
                HookEvent::Update,
                "quota",
            ),
            key(
                "6f1c2b1e-0000-4000-8000-000000000001",
                3,
                HookEvent::Delete,
                "quota",
            ),
            key(
                "6f1c2b1e-0000-4000-8000-000000000001",
                3,
                HookEvent::Update,
                "tickets",
            ),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn answers_map_to_verdicts_and_results() {
        let long = "é".repeat(600); // 1200 bytes
        for (answer, result, want) in [
            (
                HookAnswer::Answered {
                    status: 200,
                    body: b"ok".to_vec(),
                },
                "ok",
                None,
            ),
            (
                HookAnswer::Answered {
                    status: 204,
                    body: vec![],
                },
                "ok",
                None,
            ),
            (
                HookAnswer::Answered {
                    status: 403,
                    body: b"over quota".to_vec(),
                },
                "refused",
                Some((
                    "Refused",
                    "hook quota answered HTTP 403: over quota".to_owned(),
                )),
            ),
            (
                HookAnswer::Answered {
                    status: 500,
                    body: vec![],
                },
                "refused",
                Some(("Refused", "hook quota answered HTTP 500".to_owned())),
            ),
            (
                HookAnswer::Answered {
                    status: 302,
                    body: b"moved".to_vec(),
                },
                "refused",
                Some(("Refused", "hook quota answered HTTP 302: moved".to_owned())),
            ),
            (
                HookAnswer::Answered {
                    status: 422,
                    body: long.clone().into_bytes(),
                },
                "refused",
                Some((
                    "Refused",
                    format!("hook quota answered HTTP 422: {}", "é".repeat(512)),
                )),
            ),
            (
                HookAnswer::TimedOut(Duration::from_millis(1500)),
                "timeout",
                Some((
                    "TimedOut",
                    "hook quota did not answer within 1s 500ms".to_owned(),
                )),
            ),
            (
                HookAnswer::Unreachable("connection refused".into()),
                "error",
                Some((
                    "Unreachable",
                    "hook quota could not be called: connection refused".to_owned(),
                )),
            ),
        ] {
            assert_eq!(answer.result(), result, "{answer:?}");
            let want = match want {
                None => Verdict::Agreed,
                Some((reason, message)) => Verdict::Refused { reason, message },
            };
            assert_eq!(answer.verdict("quota"), want);
        }
    }

    #[test]
    fn first_bytes_never_splits_a_character() {
        assert_eq!(first_bytes(b"abc", 2), "ab");
        assert_eq!(first_bytes("aé".as_bytes(), 2), "a");
        assert_eq!(first_bytes("aé".as_bytes(), 3), "aé");
        assert_eq!(first_bytes(&[0xff, b'a'], 10), "\u{FFFD}a");
        assert!(first_bytes("€".repeat(400).as_bytes(), ANSWER_LIMIT).len() <= ANSWER_LIMIT);
    }

    #[test]
    fn retry_schedules_grow_and_are_bounded() {
        let blocking: Vec<u64> = (1..=10).map(|n| retry_after(n).as_secs()).collect();
        assert_eq!(blocking, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        let notify: Vec<Option<u64>> = (1..=6)
            .map(|n| notify_retry_after(n).map(|d| d.as_secs()))
            .collect();
        assert_eq!(notify, [Some(1), Some(2), Some(4), Some(8), None, None]);
        assert_eq!(notify_retry_after(0), None);
    }

    #[test]
    fn credentials_become_an_authorization_header() {
        let secret = |pairs: &[(&str, &str)]| {
            let map: std::collections::BTreeMap<String, Vec<u8>> = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect();
            authorization(move |k| map.get(k).cloned())
        };
        assert_eq!(secret(&[("token", "s3cret\n")]), Ok("Bearer s3cret".into()));
        assert_eq!(
            secret(&[("token", "t"), ("username", "u"), ("password", "p")]),
            Ok("Bearer t".into()),
            "a token wins"
        );
        // base64("ada:open sesame")
        assert_eq!(
            secret(&[("username", "ada"), ("password", "open sesame")]),
            Ok("Basic YWRhOm9wZW4gc2VzYW1l".into())
        );
        for (pairs, why) in [
            (&[("username", "ada")][..], "neither"),
            (&[][..], "neither"),
            (&[("token", "")][..], "empty"),
            (&[("token", "a b")][..], "spaces"),
            (&[("username", "a:b"), ("password", "p")][..], "':'"),
        ] {
            let err = secret(pairs).unwrap_err();
            assert!(err.contains(why), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn the_latest_record_wins_over_a_stale_cache() {
        use HookEvent::*;
        let r = record;
        for (what, stored, written, want) in [
            ("nothing either way", None, None, None),
            (
                "only the status",
                Some(r(1, Create, true, true)),
                None,
                Some(r(1, Create, true, true)),
            ),
            (
                "only written (the cache is behind)",
                None,
                Some(r(1, Create, true, false)),
                Some(r(1, Create, true, false)),
            ),
            (
                "the cache has not seen the notified write",
                Some(r(2, Update, true, false)),
                Some(r(2, Update, true, true)),
                Some(r(2, Update, true, true)),
            ),
            (
                "the cache has not seen the agreement",
                Some(r(2, Update, false, false)),
                Some(r(2, Update, true, false)),
                Some(r(2, Update, true, false)),
            ),
            (
                "another replica got further with the same change",
                Some(r(2, Update, true, true)),
                Some(r(2, Update, true, false)),
                Some(r(2, Update, true, true)),
            ),
            (
                "a newer generation in the status",
                Some(r(3, Update, false, false)),
                Some(r(2, Update, true, true)),
                Some(r(3, Update, false, false)),
            ),
            (
                "a newer generation written",
                Some(r(2, Update, true, true)),
                Some(r(3, Update, true, false)),
                Some(r(3, Update, true, false)),
            ),
            (
                "a DELETE of the same generation wins",
                Some(r(3, Update, true, true)),
                Some(r(3, Delete, true, false)),
                Some(r(3, Delete, true, false)),
            ),
            (
                "same generation, CREATE written after an UPDATE guess",
                Some(r(1, Update, false, false)),
                Some(r(1, Create, true, false)),
                Some(r(1, Create, true, false)),
            ),
        ] {
            assert_eq!(latest(stored.as_ref(), written.as_ref()), want, "{what}");
        }
    }

    #[test]
    fn skip_lists_are_comma_separated_names() {
        assert_eq!(skip_list("quota"), ["quota"]);
        assert_eq!(skip_list(" quota, storage ,,"), ["quota", "storage"]);
        assert!(skip_list("").is_empty());
    }
}
