//! The `sessions` section: when a session's namespace opens and closes around its dates.

use std::time::Duration;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use serde::{Deserialize, Serialize};

use super::ldap::human_duration;
use super::{Problem, problem};

/// The longest `opensBefore` or `gracePeriod` accepted (ten years): far beyond any visit,
/// and small enough that date arithmetic never overflows.
pub const MAX_LIFECYCLE_DURATION: Duration = Duration::from_secs(10 * 366 * 86_400);

/// When sessions open and close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SessionLifecycleConfig {
    /// A session opens (its namespace is created) this long before `startDate`.
    #[serde(with = "human_duration")]
    pub opens_before: Duration,
    /// A session ends this long after `endDate`.
    #[serde(with = "human_duration")]
    pub grace_period: Duration,
    /// What an ended session's namespace becomes.
    pub after_grace: AfterGrace,
    /// The IANA time zone of dates written without an offset (as ISPyB writes them,
    /// `2024-03-15 9:00:00.0`), e.g. `Europe/London`. Dates in RFC 3339 carry their own.
    pub time_zone: String,
}

impl Default for SessionLifecycleConfig {
    fn default() -> Self {
        Self {
            opens_before: Duration::from_secs(24 * 3600),
            grace_period: Duration::from_secs(7 * 86_400),
            after_grace: AfterGrace::default(),
            time_zone: "UTC".into(),
        }
    }
}

/// What happens to an ended session's namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AfterGrace {
    /// The namespace and everything in it stay; new pods are refused.
    #[default]
    RefusePods,
    /// New pods run, with the session's data volume mounted read-only.
    ReadOnly,
    /// The namespace is deleted; persistent volumes stay (`Retain`).
    DeleteNamespace,
}

impl AfterGrace {
    /// The value as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            AfterGrace::RefusePods => "refusePods",
            AfterGrace::ReadOnly => "readOnly",
            AfterGrace::DeleteNamespace => "deleteNamespace",
        }
    }
}

impl SessionLifecycleConfig {
    /// The configured time zone, from the tz database bundled into the binary (the same in
    /// every image, and nothing is read from disk).
    pub fn zone(&self) -> Result<TimeZone, String> {
        TimeZoneDatabase::bundled()
            .get(&self.time_zone)
            .map_err(|e| format!("{:?} is not a known IANA time zone: {e}", self.time_zone))
    }

    pub(super) fn check(&self, path: &str, problems: &mut Vec<Problem>) {
        if let Err(message) = self.zone() {
            problems.push(problem(&format!("{path}.timeZone"), message));
        }
        for (field, value) in [
            ("opensBefore", self.opens_before),
            ("gracePeriod", self.grace_period),
        ] {
            if value > MAX_LIFECYCLE_DURATION {
                problems.push(problem(
                    &format!("{path}.{field}"),
                    format!(
                        "{} is longer than ten years",
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    #[test]
    fn sessions_section_parses_with_defaults() {
        let config = Config::default();
        assert_eq!(config.sessions, SessionLifecycleConfig::default());
        assert_eq!(config.sessions.after_grace, AfterGrace::RefusePods);
        let yaml = "sessions: {opensBefore: 2h, gracePeriod: 3d, afterGrace: readOnly, timeZone: Europe/London}";
        let sessions = Config::from_yaml(yaml).unwrap().sessions;
        assert_eq!(sessions.opens_before, Duration::from_secs(7200));
        assert_eq!(sessions.grace_period, Duration::from_secs(3 * 86_400));
        assert_eq!(sessions.after_grace, AfterGrace::ReadOnly);
        assert!(sessions.zone().is_ok());
        let deleting = Config::from_yaml("sessions: {afterGrace: deleteNamespace}").unwrap();
        assert_eq!(deleting.sessions.after_grace, AfterGrace::DeleteNamespace);
    }

    #[test]
    fn bad_zone_and_durations_are_problems() {
        let yaml = "sessions: {timeZone: Europe/Atlantis, gracePeriod: 20years}";
        let Err(ConfigError::Invalid(problems)) = Config::from_yaml(yaml) else {
            panic!("expected problems");
        };
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["sessions.timeZone", "sessions.gracePeriod"]);
        assert!(
            Config::from_yaml("sessions: {afterGrace: delete}").is_err(),
            "unknown afterGrace"
        );
    }
}
