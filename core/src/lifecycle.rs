//! Session lifecycle: where a Session is in its life at an instant, and when that changes.
//!
//! A session *opens* at `startDate - sessions.opensBefore` and *ends* at
//! `endDate + sessions.gracePeriod`:
//!
//! | at `now`                          | lifecycle   | next boundary |
//! |-----------------------------------|-------------|---------------|
//! | `now < opens`                     | `Scheduled` | `opens`       |
//! | `opens <= now < ends`             | `Active`    | `ends`        |
//! | `ends <= now`, or `spec.ended`    | `Ended`     | none          |
//!
//! An empty `startDate` opens at once; an empty `endDate` never ends by date. `spec.ended`
//! (set by the session source when the visit left its sync window or the database) ends a
//! session at once, whatever its dates say: the source's window already gave the visit its
//! time after `endDate` (`sessionSource.ispyb.window.after`), and a visit that vanished
//! was cancelled. Clearing `spec.ended` lets the dates decide again.
//!
//! Dates are read as the facility writes them (`2024-03-15 9:00:00.0`, also with a `T`
//! and without the fraction) in `sessions.timeZone`; a date in RFC 3339
//! (`2024-03-15T09:00:00Z`, `...+01:00`) carries its own offset. A wall-clock time that a
//! daylight-saving change skips or repeats is taken as the clocks would read it
//! (`compatible`: the later instant in a gap, the earlier in a fold).
//!
//! Nothing here reads a clock: `now` is an argument. The controller plans with the real
//! time, writes `status.lifecycle` and wakes up at the next boundary; admission reads the
//! status from its cache.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use thiserror::Error;

use crate::config::{AfterGrace, SessionLifecycleConfig};
use crate::denial::Denial;
use crate::directory::SessionEntry;
use crate::resources::{Lifecycle, SessionSpec};

/// Why a Session's dates cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LifecycleError {
    /// `sessions.timeZone` is not a known zone (the configuration check prevents this).
    #[error("sessions.timeZone: {0}")]
    TimeZone(String),
    /// A date is not written in a form homestead reads.
    #[error(
        "spec.{field} {value:?} is not a date (write `2024-03-15 9:00:00.0` in sessions.timeZone, or RFC 3339 such as `2024-03-15T09:00:00Z`)"
    )]
    Date {
        /// `startDate` or `endDate`.
        field: &'static str,
        /// The text as written.
        value: String,
    },
    /// A date is so far away that adding the configured durations leaves the calendar.
    #[error("spec.{field} {value:?} is out of range")]
    OutOfRange {
        /// `startDate` or `endDate`.
        field: &'static str,
        /// The text as written.
        value: String,
    },
}

/// A Session's lifecycle at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LifecyclePlan {
    /// Where the session is.
    pub lifecycle: Lifecycle,
    /// When it opens (`startDate - opensBefore`); `None` without a start date.
    pub opens: Option<Timestamp>,
    /// When it ends by date (`endDate + gracePeriod`); `None` without an end date.
    pub ends: Option<Timestamp>,
    /// The next instant at which `lifecycle` changes by itself; `None` when it never will
    /// (ended, or open without an end date).
    pub next: Option<Timestamp>,
}

impl LifecyclePlan {
    /// How long after `now` the next boundary has passed — one second after it, so the
    /// reconcile that then wakes up finds the new lifecycle; `None` when there is none.
    pub fn wake_after(&self, now: Timestamp) -> Option<std::time::Duration> {
        let wait = now.duration_until(self.next?);
        Some(std::time::Duration::try_from(wait).unwrap_or_default() + WAKE_MARGIN)
    }
}

/// How long after a boundary the controller wakes up.
pub const WAKE_MARGIN: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads a Session date: RFC 3339 with an offset, else a civil date-time in `zone`
/// (`2024-03-15 9:00:00.0`, `2024-03-15 09:00:00`, `2024-03-15T09:00`, `2024-03-15`).
pub fn parse_date(text: &str, zone: &TimeZone) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Some(instant);
    }
    let civil = text.parse::<DateTime>().ok().or_else(|| {
        // ISPyB (MySQL through JDBC) writes a one-digit hour and a tenth of a second.
        ["%Y-%m-%d %k:%M:%S%.f", "%Y-%m-%d %k:%M"]
            .iter()
            .find_map(|format| DateTime::strptime(format, text).ok())
    })?;
    zone.to_ambiguous_zoned(civil)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

/// The lifecycle of `spec` at `now`.
pub fn plan(
    config: &SessionLifecycleConfig,
    spec: &SessionSpec,
    now: Timestamp,
) -> Result<LifecyclePlan, LifecycleError> {
    let zone = config.zone().map_err(LifecycleError::TimeZone)?;
    let boundary = |field: &'static str,
                    value: &str,
                    shift: SignedDuration|
     -> Result<Option<Timestamp>, LifecycleError> {
        if value.trim().is_empty() {
            return Ok(None);
        }
        let at = parse_date(value, &zone).ok_or_else(|| LifecycleError::Date {
            field,
            value: value.to_owned(),
        })?;
        at.checked_add(shift)
            .map(Some)
            .map_err(|_| LifecycleError::OutOfRange {
                field,
                value: value.to_owned(),
            })
    };
    let before = signed(config.opens_before);
    let grace = signed(config.grace_period);
    let opens = boundary("startDate", &spec.start_date, -before)?;
    let ends = boundary("endDate", &spec.end_date, grace)?;
    let (lifecycle, next) = if spec.ended || ends.is_some_and(|e| now >= e) {
        (Lifecycle::Ended, None)
    } else if let Some(o) = opens.filter(|o| now < *o) {
        (Lifecycle::Scheduled, Some(o))
    } else {
        (Lifecycle::Active, ends)
    };
    Ok(LifecyclePlan {
        lifecycle,
        opens,
        ends,
        next,
    })
}

/// Whether a new pod may be created in `session`'s namespace: refused while the session is
/// `Scheduled` (its namespace exists only when its dates moved later) and once it has
/// `Ended`, unless `afterGrace: readOnly` (the pod then gets the data volume read-only,
/// see `mutation`). Existing pods are never affected: only creations ask.
pub fn check_new_pod(
    config: &SessionLifecycleConfig,
    session: &SessionEntry,
) -> Result<(), Denial> {
    match session.lifecycle {
        Lifecycle::Active => Ok(()),
        Lifecycle::Ended if config.after_grace == AfterGrace::ReadOnly => Ok(()),
        Lifecycle::Ended => {
            let why = if session.ended_by_source {
                let end = if session.end_date.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (end date {})", session.end_date)
                };
                format!("{end} was ended by its source (spec.ended)")
            } else {
                format!(
                    " has ended: its end date {} plus the grace period of {} has passed",
                    session.end_date,
                    humantime::format_duration(config.grace_period)
                )
            };
            Err(Denial::new(
                "session_ended",
                "",
                format!(
                    "session {}{why}; no new pods in namespace {} (pods already running are left alone)",
                    session.name, session.namespace
                ),
            ))
        }
        Lifecycle::Scheduled => Err(Denial::new(
            "session_scheduled",
            "",
            format!(
                "session {} has not opened yet (it opens {} before its start date); no new pods in namespace {}",
                session.name,
                humantime::format_duration(config.opens_before),
                session.namespace
            ),
        )),
    }
}

fn signed(d: std::time::Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AfterGrace;
    use std::time::Duration;

    fn config(zone: &str) -> SessionLifecycleConfig {
        SessionLifecycleConfig {
            opens_before: Duration::from_secs(24 * 3600),
            grace_period: Duration::from_secs(7 * 86_400),
            after_grace: AfterGrace::RefusePods,
            time_zone: zone.into(),
        }
    }

    fn spec(start: &str, end: &str, ended: bool) -> SessionSpec {
        SessionSpec {
            start_date: start.into(),
            end_date: end.into(),
            ended,
            ..SessionSpec::default()
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn dates_are_read_as_the_facility_writes_them() {
        let london = jiff::tz::TimeZoneDatabase::bundled()
            .get("Europe/London")
            .unwrap();
        for (text, want) in [
            // Winter: London is UTC.
            ("2024-03-15 9:00:00.0", "2024-03-15T09:00:00Z"),
            ("2024-03-15 09:00:00", "2024-03-15T09:00:00Z"),
            ("2024-03-15T09:00", "2024-03-15T09:00:00Z"),
            ("2024-03-15", "2024-03-15T00:00:00Z"),
            // Summer: BST is UTC+1.
            ("2024-05-24 9:00:00.0", "2024-05-24T08:00:00Z"),
            ("2024-05-24 17:30:00.0", "2024-05-24T16:30:00Z"),
            // RFC 3339 carries its own offset.
            ("2024-05-24T09:00:00Z", "2024-05-24T09:00:00Z"),
            ("2024-05-24T09:00:00+02:00", "2024-05-24T07:00:00Z"),
            // 01:30 on 2024-03-31 does not exist in London: the clocks read 02:30 BST.
            ("2024-03-31 1:30:00.0", "2024-03-31T01:30:00Z"),
            // 01:30 on 2024-10-27 happens twice: the first (BST) is taken.
            ("2024-10-27 1:30:00.0", "2024-10-27T00:30:00Z"),
        ] {
            assert_eq!(parse_date(text, &london), Some(at(want)), "{text}");
        }
        for bad in ["", "yesterday", "2024-13-01 9:00:00.0", "15/03/2024"] {
            assert_eq!(parse_date(bad, &london), None, "{bad:?}");
        }
    }

    #[test]
    fn every_boundary_of_a_session() {
        // Opens 2024-03-14 09:00Z (a day before the start), ends 2024-05-31 08:00Z (a week
        // after the end, 09:00 BST).
        let c = config("Europe/London");
        let s = spec("2024-03-15 9:00:00.0", "2024-05-24 9:00:00.0", false);
        let opens = at("2024-03-14T09:00:00Z");
        let ends = at("2024-05-31T08:00:00Z");
        let second = SignedDuration::from_secs(1);
        for (now, lifecycle, next) in [
            (
                at("2020-01-01T00:00:00Z"),
                Lifecycle::Scheduled,
                Some(opens),
            ),
            (opens - second, Lifecycle::Scheduled, Some(opens)),
            (opens, Lifecycle::Active, Some(ends)),
            (at("2024-03-15T09:00:00Z"), Lifecycle::Active, Some(ends)),
            (at("2024-05-24T08:00:00Z"), Lifecycle::Active, Some(ends)),
            (ends - second, Lifecycle::Active, Some(ends)),
            (ends, Lifecycle::Ended, None),
            (ends + second, Lifecycle::Ended, None),
            (at("2034-01-01T00:00:00Z"), Lifecycle::Ended, None),
        ] {
            let p = plan(&c, &s, now).unwrap();
            assert_eq!((p.lifecycle, p.next), (lifecycle, next), "at {now}");
            assert_eq!((p.opens, p.ends), (Some(opens), Some(ends)));
        }
    }

    #[test]
    fn wakes_up_just_after_the_next_boundary() {
        let c = config("UTC");
        let s = spec("2024-03-15 9:00:00.0", "2024-03-16 9:00:00.0", false);
        let now = at("2024-03-14T08:00:00Z");
        let p = plan(&c, &s, now).unwrap();
        assert_eq!(p.wake_after(now), Some(Duration::from_secs(3601)));
        // A boundary already passed (the plan is stale) wakes at once.
        assert_eq!(
            p.wake_after(at("2024-03-14T10:00:00Z")),
            Some(Duration::from_secs(1))
        );
        let ended = plan(&c, &s, at("2025-01-01T00:00:00Z")).unwrap();
        assert_eq!(ended.wake_after(now), None);
    }

    #[test]
    fn ended_by_the_source_and_missing_dates() {
        let c = config("UTC");
        let now = at("2024-04-01T00:00:00Z");
        for (s, lifecycle, next) in [
            // The source ended it: ended at once, whatever the dates say.
            (
                spec("2024-03-15 9:00:00.0", "2024-05-24 9:00:00.0", true),
                Lifecycle::Ended,
                None,
            ),
            (
                spec("2030-01-01 9:00:00.0", "2030-01-02 9:00:00.0", true),
                Lifecycle::Ended,
                None,
            ),
            (spec("", "", true), Lifecycle::Ended, None),
            // No dates: open for ever.
            (spec("", "", false), Lifecycle::Active, None),
            // No start: open until the end.
            (
                spec("", "2024-04-02 0:00:00.0", false),
                Lifecycle::Active,
                Some(at("2024-04-09T00:00:00Z")),
            ),
            // No end: never ends by date.
            (
                spec("2024-04-03 0:00:00.0", "", false),
                Lifecycle::Scheduled,
                Some(at("2024-04-02T00:00:00Z")),
            ),
            (
                spec("2024-03-03 0:00:00.0", "", false),
                Lifecycle::Active,
                None,
            ),
            // An end before the start: the end wins.
            (
                spec("2024-05-01 0:00:00.0", "2024-03-01 0:00:00.0", false),
                Lifecycle::Ended,
                None,
            ),
        ] {
            let p = plan(&c, &s, now).unwrap();
            assert_eq!((p.lifecycle, p.next), (lifecycle, next), "{s:?}");
        }
    }

    #[test]
    fn zero_durations_make_the_dates_the_boundaries() {
        let c = SessionLifecycleConfig {
            opens_before: Duration::ZERO,
            grace_period: Duration::ZERO,
            ..config("UTC")
        };
        let s = spec("2024-03-15 9:00:00.0", "2024-03-16 9:00:00.0", false);
        let start = at("2024-03-15T09:00:00Z");
        let end = at("2024-03-16T09:00:00Z");
        let second = SignedDuration::from_secs(1);
        for (now, lifecycle) in [
            (start - second, Lifecycle::Scheduled),
            (start, Lifecycle::Active),
            (end - second, Lifecycle::Active),
            (end, Lifecycle::Ended),
        ] {
            assert_eq!(plan(&c, &s, now).unwrap().lifecycle, lifecycle, "at {now}");
        }
    }

    fn entry(lifecycle: Lifecycle, ended_by_source: bool) -> SessionEntry {
        SessionEntry {
            name: "cm37235-2".into(),
            namespace: "cm37235-2".into(),
            gid: 5000,
            data_directory: "/dls/i03/data/2024/cm37235-2".into(),
            members: vec!["ada".into()],
            default_member: None,
            lifecycle,
            ended_by_source,
            end_date: "2024-05-24 9:00:00.0".into(),
        }
    }

    #[test]
    fn new_pods_by_lifecycle_and_after_grace() {
        for (lifecycle, by_source, after, refused) in [
            (Lifecycle::Active, false, AfterGrace::RefusePods, None),
            (Lifecycle::Active, false, AfterGrace::ReadOnly, None),
            (
                Lifecycle::Scheduled,
                false,
                AfterGrace::RefusePods,
                Some("session_scheduled"),
            ),
            (
                Lifecycle::Scheduled,
                false,
                AfterGrace::ReadOnly,
                Some("session_scheduled"),
            ),
            (
                Lifecycle::Ended,
                false,
                AfterGrace::RefusePods,
                Some("session_ended"),
            ),
            (
                Lifecycle::Ended,
                true,
                AfterGrace::RefusePods,
                Some("session_ended"),
            ),
            (
                Lifecycle::Ended,
                false,
                AfterGrace::DeleteNamespace,
                Some("session_ended"),
            ),
            (Lifecycle::Ended, false, AfterGrace::ReadOnly, None),
        ] {
            let c = SessionLifecycleConfig {
                after_grace: after,
                ..config("UTC")
            };
            let got = check_new_pod(&c, &entry(lifecycle, by_source)).err();
            assert_eq!(
                got.as_ref().map(|d| d.reason),
                refused,
                "{lifecycle:?} {after:?}"
            );
            if let Some(d) = got {
                assert!(d.message.contains("session cm37235-2"), "{}", d.message);
            }
        }
        let d = check_new_pod(&config("UTC"), &entry(Lifecycle::Ended, false)).unwrap_err();
        assert_eq!(
            d.message,
            "session cm37235-2 has ended: its end date 2024-05-24 9:00:00.0 plus the grace period of 7days has passed; no new pods in namespace cm37235-2 (pods already running are left alone)"
        );
        let d = check_new_pod(&config("UTC"), &entry(Lifecycle::Ended, true)).unwrap_err();
        assert!(
            d.message.starts_with(
                "session cm37235-2 (end date 2024-05-24 9:00:00.0) was ended by its source"
            ),
            "{}",
            d.message
        );
    }

    #[test]
    fn bad_dates_name_the_field() {
        let c = config("UTC");
        let now = at("2024-04-01T00:00:00Z");
        let err = plan(&c, &spec("soon", "", false), now).unwrap_err();
        assert_eq!(
            err,
            LifecycleError::Date {
                field: "startDate",
                value: "soon".into()
            }
        );
        let err = plan(&c, &spec("", "2024-02-30 9:00:00.0", false), now).unwrap_err();
        assert!(
            err.to_string().starts_with("spec.endDate \"2024-02-30"),
            "{err}"
        );
        let err = plan(&config("Mars/Olympus"), &spec("", "", false), now).unwrap_err();
        assert!(matches!(err, LifecycleError::TimeZone(_)), "{err}");
    }
}
