//! Rows as the database returned them: every value kept as read (NULL, a number, text, a
//! date), so that the mapping decides what is bad and says why.

use std::fmt;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// Text (VARCHAR, CHAR, TEXT, ENUM; numbers a driver returns as text).
    Text(String),
    /// A DATETIME or DATE.
    DateTime(DateTime),
    /// Anything else, described (`float 3.5`, `time 10:00:00`, `bytes that are not UTF-8`).
    Other(String),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Int(n) => write!(f, "{n}"),
            Cell::UInt(n) => write!(f, "{n}"),
            Cell::Text(t) => write!(f, "{t:?}"),
            Cell::DateTime(d) => write!(f, "{d}"),
            Cell::Other(what) => f.write_str(what),
        }
    }
}

/// A date and time as the database stores it: no time zone (ISPyB's dates are the
/// facility's local time, and the sync window is computed by the same database).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// Year.
    pub year: u16,
    /// Month, 1–12 (0 in MySQL's zero date).
    pub month: u8,
    /// Day of the month, 1–31 (0 in MySQL's zero date).
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
}

impl DateTime {
    /// Parses `YYYY-MM-DD HH:MM:SS` (a `T` may separate date and time; a fraction of a
    /// second is ignored) or `YYYY-MM-DD` (midnight).
    pub fn parse(text: &str) -> Option<DateTime> {
        let text = text.trim();
        let (date, time) = match text.split_once([' ', 'T']) {
            Some((date, time)) => (date, Some(time)),
            None => (text, None),
        };
        let mut date = date.splitn(3, '-');
        let year = date.next()?.parse().ok()?;
        let month = date.next()?.parse().ok()?;
        let day = date.next()?.parse().ok()?;
        let (hour, minute, second) = match time {
            None => (0, 0, 0),
            Some(time) => {
                let time = time.split('.').next()?;
                let mut parts = time.splitn(3, ':');
                (
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                )
            }
        };
        let parsed = DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        };
        parsed.is_valid().then_some(parsed)
    }

    /// False for MySQL's zero date (`0000-00-00`) and anything out of range.
    pub fn is_valid(&self) -> bool {
        (1..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// The sync window: visits whose dates overlap `[start, end]` are synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// `now - after`.
    pub start: DateTime,
    /// `now + before`.
    pub end: DateTime,
}

impl Window {
    /// True when a visit from `start` to `end` overlaps the window.
    pub fn overlaps(&self, start: DateTime, end: DateTime) -> bool {
        start <= self.end && end >= self.start
    }
}

/// One row of the sessions query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitRow {
    /// `sessionId`.
    pub session_id: Cell,
    /// `proposalCode`.
    pub proposal_code: Cell,
    /// `proposalNumber`.
    pub proposal_number: Cell,
    /// `visit`.
    pub visit: Cell,
    /// `instrument`.
    pub instrument: Cell,
    /// `startDate`.
    pub start_date: Cell,
    /// `endDate`.
    pub end_date: Cell,
    /// `gid` (read only with `gidFrom: column`).
    pub gid: Cell,
}

/// One row of the members query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// `sessionId`.
    pub session_id: Cell,
    /// `login`.
    pub login: Cell,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: u16, mo: u8, d: u8, h: u8) -> DateTime {
        DateTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: 0,
            second: 0,
        }
    }

    #[test]
    fn dates_parse_as_mysql_and_people_write_them() {
        let cases = [
            ("2024-03-15 09:00:00", Some(at(2024, 3, 15, 9))),
            ("2024-03-15 9:00:00.0", Some(at(2024, 3, 15, 9))),
            ("2024-03-15T09:00:00", Some(at(2024, 3, 15, 9))),
            ("2024-03-15", Some(at(2024, 3, 15, 0))),
            ("0000-00-00 00:00:00", None),
            ("2024-13-01 00:00:00", None),
            ("2024-03-15 24:00:00", None),
            ("15/03/2024", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(DateTime::parse(text), want, "{text:?}");
        }
        assert_eq!(at(2024, 3, 15, 9).to_string(), "2024-03-15 09:00:00");
    }

    #[test]
    fn the_window_includes_visits_touching_either_edge() {
        let window = Window {
            start: at(2024, 3, 1, 0),
            end: at(2024, 3, 31, 0),
        };
        let cases = [
            (at(2024, 2, 1, 0), at(2024, 2, 28, 0), false), // ended before
            (at(2024, 2, 1, 0), at(2024, 3, 1, 0), true),   // ends on the start
            (at(2024, 3, 10, 0), at(2024, 3, 12, 0), true), // inside
            (at(2024, 2, 1, 0), at(2024, 5, 1, 0), true),   // spans the window
            (at(2024, 3, 31, 0), at(2024, 4, 2, 0), true),  // starts on the end
            (at(2024, 4, 1, 0), at(2024, 4, 2, 0), false),  // starts after
        ];
        for (start, end, want) in cases {
            assert_eq!(window.overlaps(start, end), want, "{start} – {end}");
        }
    }
}
