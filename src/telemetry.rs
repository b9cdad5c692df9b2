//! Logging: a `tracing` subscriber writing text or JSON lines to stderr, filtered by
//! `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Installs the global subscriber. `RUST_LOG` (env-filter syntax) overrides `default_filter`.
/// Calling it twice keeps the first subscriber.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    // Already installed (tests, or a second call): keep the first one.
    drop(result);
}

/// Keeps a recurring problem from flooding the log: [`Repeated::report`] says to log the
/// first occurrence of a problem at once and the same problem again only after quiet
/// periods that double from [`Repeated::FIRST_REMINDER`] up to [`Repeated::MAX_REMINDER`],
/// counting the occurrences it held back. A different problem (another key) is logged at
/// once; [`Repeated::clear`] ends the problem (and says whether there was one, so the
/// recovery can be logged once too).
#[derive(Debug, Clone, Default)]
pub struct Repeated {
    current: Option<Problem>,
}

#[derive(Debug, Clone)]
struct Problem {
    key: String,
    next: std::time::Instant,
    gap: std::time::Duration,
    held_back: u64,
}

impl Repeated {
    /// The first reminder of a problem that persists.
    pub const FIRST_REMINDER: std::time::Duration = std::time::Duration::from_secs(5 * 60);
    /// The longest quiet period between reminders.
    pub const MAX_REMINDER: std::time::Duration = std::time::Duration::from_secs(60 * 60);

    /// An occurrence of problem `key` at `now`: `Some(held_back)` when it should be logged
    /// (with the number of occurrences not logged since the last time), `None` when not.
    pub fn report(&mut self, key: &str, now: std::time::Instant) -> Option<u64> {
        match &mut self.current {
            Some(p) if p.key == key => {
                if now < p.next {
                    p.held_back += 1;
                    return None;
                }
                let held_back = std::mem::take(&mut p.held_back);
                p.next = now + p.gap;
                p.gap = (p.gap * 2).min(Self::MAX_REMINDER);
                Some(held_back)
            }
            _ => {
                self.current = Some(Problem {
                    key: key.to_owned(),
                    next: now + Self::FIRST_REMINDER,
                    gap: (Self::FIRST_REMINDER * 2).min(Self::MAX_REMINDER),
                    held_back: 0,
                });
                Some(0)
            }
        }
    }

    /// The problem went away; true when there was one.
    pub fn clear(&mut self) -> bool {
        self.current.take().is_some()
    }

    /// True while a problem is current.
    pub fn is_current(&self) -> bool {
        self.current.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::Repeated;
    use std::time::{Duration, Instant};

    #[test]
    fn a_repeated_problem_is_logged_once_then_at_doubling_intervals() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut r = Repeated::default();
        assert_eq!(r.report("a", at(0)), Some(0), "first occurrence");
        // Every 5 s for the first reminder period: held back.
        for s in (5..300).step_by(5) {
            assert_eq!(r.report("a", at(s)), None, "at {s}s");
        }
        assert_eq!(r.report("a", at(300)), Some(59), "reminder after 5 min");
        assert_eq!(r.report("a", at(600)), None, "next gap is 10 min");
        assert_eq!(r.report("a", at(900)), Some(1));
        assert_eq!(r.report("b", at(901)), Some(0), "another problem: at once");
        assert!(r.clear(), "there was a problem");
        assert!(!r.clear(), "only once");
        assert_eq!(r.report("b", at(902)), Some(0), "it came back: at once");
    }

    #[test]
    fn reminders_never_get_further_apart_than_an_hour() {
        let start = Instant::now();
        let mut r = Repeated::default();
        let mut logged = Vec::new();
        for m in 0..(6 * 60) {
            if r.report("a", start + Duration::from_secs(m * 60)).is_some() {
                logged.push(m);
            }
        }
        assert_eq!(logged, [0, 5, 15, 35, 75, 135, 195, 255, 315]);
    }
}
