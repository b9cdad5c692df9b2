//! Pure: visit rows, their people and the directory's groups → the `Session`s the
//! scheduling database implies.
//!
//! Rules (each one is tested below):
//! - a visit row needs a numeric `sessionId`, a proposal code of lower-case letters and
//!   digits (as admission requires of a Session), a
//!   positive proposal number and visit number, an instrument (letters, digits, `-`, `_`,
//!   `.`), and a start and an end date, the end not before the start;
//! - visits on other instruments than `instruments` (when set) and visits whose dates do
//!   not overlap the window are out of scope: not reported, and ended if they were synced;
//! - the Session's name is `{proposalCode}{proposalNumber}-{visit}` (a DNS-1123 label);
//!   two rows with the same name are both skipped, naming each other;
//! - the gid is the `gidNumber` of the posixGroup whose name is the Session's name
//!   (compared as LDAP does, ignoring case), or the row's `gid` column with
//!   `gidFrom: column`; a visit without one is skipped;
//! - the namespace the Session would get must be a valid namespace name;
//! - members are the logins of the visit's people and the members of the instrument's staff
//!   groups, sorted and without duplicates. A person row without a login, and a login or
//!   staff member that maps to no User, is left out with a warning; the visit still syncs;
//! - a visit skipped for bad data is *held*: a Session synced from it earlier is left as it
//!   is rather than ended, because the visit has not gone, only its row is wrong.
//!
//! Every skipped row names its `sessionId` (and its Session name when known) and the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

use super::rows::{Cell, DateTime, PersonRow, VisitRow, Window};
use super::{ANNOTATION_SESSION_ID, SOURCE_ISPYB};
use crate::config::{Config, GidFrom, SessionSourceConfig};
use crate::directory::session_namespace;
use crate::names::{self, LABEL_SOURCE, is_dns1123_label};
use crate::resources::{Session, SessionSpec};
use crate::sources::PosixGroup;
use crate::template::Value;

/// Largest uid/gid a Unix system gives out (`(uid_t)-1` is reserved).
const MAX_ID: i64 = 4_294_967_294;

/// Everything one sync read.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The window the database computed.
    pub window: Window,
    /// Rows of the sessions query.
    pub visits: &'a [VisitRow],
    /// Rows of the members query.
    pub people: &'a [PersonRow],
    /// The directory's posixGroups (visit gids, instrument staff); empty when not needed.
    pub groups: &'a [PosixGroup],
    /// Usernames that have a User; `None` when they are not known (nothing is checked).
    pub users: Option<&'a HashSet<String>>,
}

/// Why a visit row was skipped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkipReason {
    /// A required column is NULL (or empty text).
    #[error("{column} is {}", if *.empty { "empty" } else { "NULL" })]
    Missing {
        /// The column.
        column: &'static str,
        /// Empty text rather than NULL.
        empty: bool,
    },
    /// A column does not hold what it should.
    #[error("{column} {value} is not {expected}")]
    Malformed {
        /// The column.
        column: &'static str,
        /// The value as read.
        value: String,
        /// What it should be (`a number`, `a date`, ...).
        expected: &'static str,
    },
    /// A number outside its range (a visit number 0, a gid 0).
    #[error("{column} {value} is out of range ({range})")]
    OutOfRange {
        /// The column.
        column: &'static str,
        /// The value.
        value: String,
        /// The allowed range in words.
        range: &'static str,
    },
    /// The visit ends before it starts.
    #[error("endDate {end} is before startDate {start}")]
    EndsBeforeStart {
        /// Start.
        start: DateTime,
        /// End.
        end: DateTime,
    },
    /// The name or namespace is not a valid object name.
    #[error("{what} {name:?} is not a valid name (lower-case letters, digits and '-', at most 63)")]
    BadName {
        /// `Session name` or `namespace`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// Several rows have the same Session name.
    #[error("visit {name} is also returned as sessionId {others}; all of them are skipped")]
    Duplicate {
        /// The name.
        name: String,
        /// The other rows' session ids.
        others: String,
    },
    /// `gidFrom: ldap` and no posixGroup has the visit's name.
    #[error("no posixGroup named {name:?} gives the visit its gid")]
    NoGroup {
        /// The group name looked for.
        name: String,
    },
    /// Several posixGroups of the visit's name have different gids.
    #[error("posixGroups named {name:?} have different gids ({gids})")]
    AmbiguousGroup {
        /// The group name.
        name: String,
        /// The gids, comma-separated.
        gids: String,
    },
    /// The rendered data directory is not an absolute path without `..`.
    #[error("data directory {0:?} is not an absolute path without '..'")]
    BadDirectory(String),
}

/// A visit row left out, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("skipped visit sessionId={session_id}{}: {reason}", .name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
pub struct SkippedRow {
    /// The row's `sessionId` as read.
    pub session_id: String,
    /// The Session name, when the row got that far.
    pub name: Option<String>,
    /// Why.
    pub reason: SkipReason,
}

/// Where a left-out member came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemberOf {
    /// A person row of a visit (its Session name, else its `sessionId`).
    Visit(String),
    /// A staff group of an instrument.
    Staff {
        /// The instrument.
        instrument: String,
        /// The group.
        group: String,
    },
}

impl fmt::Display for MemberOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberOf::Visit(visit) => write!(f, "visit {visit}"),
            MemberOf::Staff { instrument, group } => {
                write!(f, "staff group {group} (every {instrument} visit)")
            }
        }
    }
}

/// A member left out of a Session, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("skipped member {login} of {of}: {reason}")]
pub struct SkippedMember {
    /// Where the member came from.
    pub of: MemberOf,
    /// The login as read.
    pub login: String,
    /// Why, in words.
    pub reason: String,
}

/// The result of mapping what one sync read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// Desired Sessions, sorted by name.
    pub sessions: Vec<Session>,
    /// Visit rows left out because of bad data, in `sessionId` order.
    pub skipped: Vec<SkippedRow>,
    /// Members left out (person rows, staff), each once.
    pub skipped_members: Vec<SkippedMember>,
    /// Staff groups the directory does not have.
    pub unknown_staff_groups: Vec<String>,
    /// In-scope rows dropped because their dates do not overlap the window.
    pub out_of_window: usize,
    /// Rows dropped because of the instrument filter.
    pub other_instruments: usize,
    /// Visit rows read, whatever became of them.
    pub rows_read: usize,
    /// Session names of skipped visits: their Sessions are left as they are.
    pub held_names: BTreeSet<String>,
    /// `sessionId`s of skipped visits: Sessions annotated with them are left as they are.
    pub held_ids: BTreeSet<String>,
}

/// A visit row once its columns are read.
#[derive(Debug)]
struct Visit<'a> {
    session_id: String,
    code: &'a str,
    number: u64,
    visit: u64,
    instrument: &'a str,
    start: DateTime,
    end: DateTime,
    row: &'a VisitRow,
    name: String,
}

/// Maps what one sync read to the Sessions it implies.
pub fn map_visits(config: &Config, source: &SessionSourceConfig, input: Input<'_>) -> Mapped {
    let mut mapped = Mapped {
        rows_read: input.visits.len(),
        ..Mapped::default()
    };
    let skip = |mapped: &mut Mapped, session_id: &str, name: Option<&str>, reason| {
        if session_id.bytes().all(|b| b.is_ascii_digit()) {
            mapped.held_ids.insert(session_id.to_owned());
        }
        if let Some(name) = name {
            mapped.held_names.insert(name.to_owned());
        }
        mapped.skipped.push(SkippedRow {
            session_id: session_id.to_owned(),
            name: name.map(str::to_owned),
            reason,
        });
    };

    // Each row on its own, then the filters.
    let instruments = &source.ispyb.instruments;
    let mut visits = Vec::with_capacity(input.visits.len());
    for row in input.visits {
        let visit = match read_visit(row) {
            Ok(visit) => visit,
            Err((session_id, name, reason)) => {
                skip(&mut mapped, &session_id, name.as_deref(), reason);
                continue;
            }
        };
        if !instruments.is_empty() && !instruments.iter().any(|i| i == visit.instrument) {
            mapped.other_instruments += 1;
        } else if !input.window.overlaps(visit.start, visit.end) {
            mapped.out_of_window += 1;
        } else {
            visits.push(visit);
        }
    }

    // Names taken by several rows.
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for visit in &visits {
        by_name
            .entry(visit.name.as_str())
            .or_default()
            .push(visit.session_id.as_str());
    }
    let duplicates: HashMap<String, String> = by_name
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .flat_map(|(name, ids)| {
            ids.iter().map(move |id| {
                let others: Vec<&str> = ids.iter().copied().filter(|o| o != id).collect();
                (format!("{id}/{name}"), others.join(", "))
            })
        })
        .collect();

    let groups = GroupIndex::new(input.groups);
    let people = people_by_visit(input.people, &mut mapped);
    let mut staff = StaffCache::default();
    for visit in visits {
        let name = visit.name.clone();
        if let Some(others) = duplicates.get(&format!("{}/{name}", visit.session_id)) {
            let reason = SkipReason::Duplicate {
                name: name.clone(),
                others: others.clone(),
            };
            skip(&mut mapped, &visit.session_id, Some(&name), reason);
            continue;
        }
        let gid = match source.gid_from {
            GidFrom::Ldap => groups.gid(&name),
            GidFrom::Column => id(&visit.row.gid, "gid"),
        };
        let gid = match gid {
            Ok(gid) => gid,
            Err(reason) => {
                skip(&mut mapped, &visit.session_id, Some(&name), reason);
                continue;
            }
        };
        let mut members = BTreeSet::new();
        for person in people.get(visit.session_id.as_str()).into_iter().flatten() {
            match login(&person.login) {
                Ok(login) => match not_a_member(input.users, login) {
                    None => {
                        members.insert(login.to_owned());
                    }
                    Some(reason) => mapped.skipped_members.push(SkippedMember {
                        of: MemberOf::Visit(name.clone()),
                        login: login.to_owned(),
                        reason,
                    }),
                },
                Err(reason) => mapped.skipped_members.push(SkippedMember {
                    of: MemberOf::Visit(name.clone()),
                    login: person.login.to_string(),
                    reason,
                }),
            }
        }
        members.extend(
            staff
                .members(source, &groups, input.users, visit.instrument, &mut mapped)
                .iter()
                .cloned(),
        );
        let session = match desired_session(config, source, &visit, gid, members) {
            Ok(session) => session,
            Err(reason) => {
                skip(&mut mapped, &visit.session_id, Some(&name), reason);
                continue;
            }
        };
        mapped.sessions.push(session);
    }
    mapped
        .sessions
        .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    mapped.skipped.sort_by(|a, b| {
        (a.session_id.len(), &a.session_id).cmp(&(b.session_id.len(), &b.session_id))
    });
    mapped
        .skipped_members
        .sort_by(|a, b| (&a.of, &a.login).cmp(&(&b.of, &b.login)));
    mapped
}

/// The Session of one visit.
fn desired_session(
    config: &Config,
    source: &SessionSourceConfig,
    visit: &Visit<'_>,
    gid: i64,
    members: BTreeSet<String>,
) -> Result<Session, SkipReason> {
    let number = |n: u64| Value::Number(i64::try_from(n).unwrap_or(i64::MAX));
    let data_directory = source.ispyb.data_directory.render(|key| match key {
        "instrument" => Some(Value::Text(visit.instrument)),
        "year" => Some(Value::Number(i64::from(visit.start.year))),
        "proposalCode" => Some(Value::Text(visit.code)),
        "proposalNumber" => Some(number(visit.number)),
        "visit" => Some(number(visit.visit)),
        other => config.variable(other),
    });
    if !data_directory.starts_with('/') || data_directory.split('/').any(|p| p == "..") {
        return Err(SkipReason::BadDirectory(data_directory));
    }
    let spec = SessionSpec {
        proposal_code: visit.code.to_owned(),
        proposal_number: visit.number,
        visit: visit.visit,
        instrument: visit.instrument.to_owned(),
        start_date: visit.start.to_string(),
        end_date: visit.end.to_string(),
        data_directory,
        gid,
        members: members.into_iter().collect(),
        default_member: None,
        ended: false,
    };
    let namespace = session_namespace(config, &spec);
    if !is_dns1123_label(&namespace) {
        return Err(SkipReason::BadName {
            what: "namespace",
            name: namespace,
        });
    }
    Ok(Session {
        metadata: ObjectMeta {
            name: Some(visit.name.clone()),
            labels: Some(BTreeMap::from([(
                LABEL_SOURCE.to_owned(),
                SOURCE_ISPYB.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                ANNOTATION_SESSION_ID.to_owned(),
                visit.session_id.clone(),
            )])),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    })
}

type RowError = (String, Option<String>, SkipReason);

/// Reads one visit row's columns, or says which is bad.
fn read_visit(row: &VisitRow) -> Result<Visit<'_>, RowError> {
    let session_id = match number(&row.session_id, "sessionId") {
        Ok(id) => id.to_string(),
        Err(reason) => return Err((row.session_id.to_string(), None, reason)),
    };
    let fail = |reason| (session_id.clone(), None, reason);
    let code = text(&row.proposal_code, "proposalCode").map_err(fail)?;
    // As admission requires of a Session (the namespace and the name are made of it).
    if !code
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(fail(SkipReason::Malformed {
            column: "proposalCode",
            value: format!("{code:?}"),
            expected: "lower-case letters and digits",
        }));
    }
    let number = positive(&row.proposal_number, "proposalNumber").map_err(fail)?;
    let visit = positive(&row.visit, "visit").map_err(fail)?;
    let name = format!("{code}{number}-{visit}");
    let fail = |reason| (session_id.clone(), Some(name.clone()), reason);
    let instrument = text(&row.instrument, "instrument").map_err(fail)?;
    let instrument_ok = instrument
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'-' | b'_' | b'.')));
    if !instrument_ok {
        return Err(fail(SkipReason::Malformed {
            column: "instrument",
            value: format!("{instrument:?}"),
            expected: "letters, digits, '-', '_' and '.'",
        }));
    }
    let start = date(&row.start_date, "startDate").map_err(fail)?;
    let end = date(&row.end_date, "endDate").map_err(fail)?;
    if end < start {
        return Err(fail(SkipReason::EndsBeforeStart { start, end }));
    }
    if !is_dns1123_label(&name) {
        return Err(fail(SkipReason::BadName {
            what: "Session name",
            name: name.clone(),
        }));
    }
    Ok(Visit {
        session_id,
        code,
        number,
        visit,
        instrument,
        start,
        end,
        row,
        name,
    })
}

fn missing(column: &'static str, empty: bool) -> SkipReason {
    SkipReason::Missing { column, empty }
}

fn malformed(column: &'static str, cell: &Cell, expected: &'static str) -> SkipReason {
    SkipReason::Malformed {
        column,
        value: cell.to_string(),
        expected,
    }
}

/// A non-negative whole number (an id, a proposal or visit number).
fn number(cell: &Cell, column: &'static str) -> Result<u64, SkipReason> {
    match cell {
        Cell::Null => Err(missing(column, false)),
        Cell::UInt(n) => Ok(*n),
        Cell::Int(n) => u64::try_from(*n).map_err(|_| malformed(column, cell, "a number")),
        Cell::Text(t) if t.trim().is_empty() => Err(missing(column, true)),
        Cell::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| malformed(column, cell, "a number")),
        _ => Err(malformed(column, cell, "a number")),
    }
}

/// A number of at least 1 (proposal and visit numbers).
fn positive(cell: &Cell, column: &'static str) -> Result<u64, SkipReason> {
    match number(cell, column)? {
        0 => Err(SkipReason::OutOfRange {
            column,
            value: "0".into(),
            range: "at least 1",
        }),
        n => Ok(n),
    }
}

/// A gid: 1 ..= 4294967294.
fn id(cell: &Cell, column: &'static str) -> Result<i64, SkipReason> {
    let n = number(cell, column)?;
    match i64::try_from(n) {
        Ok(n) if (1..=MAX_ID).contains(&n) => Ok(n),
        _ => Err(SkipReason::OutOfRange {
            column,
            value: n.to_string(),
            range: "1 to 4294967294; 0 is root and never synced",
        }),
    }
}

/// Non-empty text, trimmed.
fn text<'a>(cell: &'a Cell, column: &'static str) -> Result<&'a str, SkipReason> {
    match cell {
        Cell::Null => Err(missing(column, false)),
        Cell::Text(t) if t.trim().is_empty() => Err(missing(column, true)),
        Cell::Text(t) => Ok(t.trim()),
        _ => Err(malformed(column, cell, "text")),
    }
}

/// A valid date (MySQL's zero date is not one).
fn date(cell: &Cell, column: &'static str) -> Result<DateTime, SkipReason> {
    match cell {
        Cell::Null => Err(missing(column, false)),
        Cell::DateTime(d) if d.is_valid() => Ok(*d),
        Cell::Text(t) if t.trim().is_empty() => Err(missing(column, true)),
        Cell::Text(t) => DateTime::parse(t).ok_or_else(|| malformed(column, cell, "a date")),
        _ => Err(malformed(column, cell, "a date")),
    }
}

/// A person row's login, or why it has none.
fn login(cell: &Cell) -> Result<&str, String> {
    text(cell, "login").map_err(|e| e.to_string())
}

/// Why `login` cannot be a member: it has no object name (admission refuses such a
/// Session), or it maps to no User (when the Users are known).
fn not_a_member(users: Option<&HashSet<String>>, login: &str) -> Option<String> {
    if let Err(e) = names::object_name(login) {
        return Some(e.to_string());
    }
    users
        .is_some_and(|u| !u.contains(login))
        .then(|| "maps to no User".to_owned())
}

/// Person rows by `sessionId`; rows without a usable one are reported.
fn people_by_visit<'a>(
    people: &'a [PersonRow],
    mapped: &mut Mapped,
) -> HashMap<String, Vec<&'a PersonRow>> {
    let mut by_visit: HashMap<String, Vec<&PersonRow>> = HashMap::new();
    for person in people {
        match number(&person.session_id, "sessionId") {
            Ok(id) => by_visit.entry(id.to_string()).or_default().push(person),
            Err(reason) => mapped.skipped_members.push(SkippedMember {
                of: MemberOf::Visit(format!("sessionId={}", person.session_id)),
                login: person.login.to_string(),
                reason: reason.to_string(),
            }),
        }
    }
    by_visit
}

/// The directory's groups by name, compared as LDAP compares `cn` (ignoring case).
struct GroupIndex<'a> {
    by_name: HashMap<String, Vec<&'a PosixGroup>>,
}

impl<'a> GroupIndex<'a> {
    fn new(groups: &'a [PosixGroup]) -> Self {
        let mut by_name: HashMap<String, Vec<&PosixGroup>> = HashMap::new();
        for group in groups {
            by_name
                .entry(group.name.to_lowercase())
                .or_default()
                .push(group);
        }
        Self { by_name }
    }

    fn get(&self, name: &str) -> &[&'a PosixGroup] {
        self.by_name
            .get(&name.to_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The gid of the group named `name`.
    fn gid(&self, name: &str) -> Result<i64, SkipReason> {
        let gids: BTreeSet<i64> = self.get(name).iter().map(|g| g.gid).collect();
        match gids.len() {
            0 => Err(SkipReason::NoGroup {
                name: name.to_owned(),
            }),
            1 => Ok(gids.into_iter().next().unwrap_or_default()),
            _ => Err(SkipReason::AmbiguousGroup {
                name: name.to_owned(),
                gids: gids
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }
}

/// Each instrument's staff, worked out (and its problems reported) once.
#[derive(Default)]
struct StaffCache {
    by_instrument: HashMap<String, Vec<String>>,
}

impl StaffCache {
    fn members(
        &mut self,
        source: &SessionSourceConfig,
        groups: &GroupIndex<'_>,
        users: Option<&HashSet<String>>,
        instrument: &str,
        mapped: &mut Mapped,
    ) -> &[String] {
        self.by_instrument
            .entry(instrument.to_owned())
            .or_insert_with(|| {
                let mut members = BTreeSet::new();
                let names = source.ispyb.staff.get(instrument).into_iter().flatten();
                for group_name in names {
                    let found = groups.get(group_name);
                    if found.is_empty() {
                        if !mapped.unknown_staff_groups.contains(group_name) {
                            mapped.unknown_staff_groups.push(group_name.clone());
                        }
                        continue;
                    }
                    for member in found.iter().flat_map(|g| &g.members) {
                        match not_a_member(users, member) {
                            None => {
                                members.insert(member.clone());
                            }
                            Some(reason) => mapped.skipped_members.push(SkippedMember {
                                of: MemberOf::Staff {
                                    instrument: instrument.to_owned(),
                                    group: group_name.clone(),
                                },
                                login: member.clone(),
                                reason,
                            }),
                        }
                    }
                }
                members.into_iter().collect()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SyncWindow;

    fn at(year: u16, month: u8, day: u8) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour: 9,
            minute: 0,
            second: 0,
        }
    }

    /// The window of every test: March 2024.
    fn window() -> Window {
        Window {
            start: at(2024, 3, 1),
            end: at(2024, 3, 31),
        }
    }

    fn text(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn row(id: u64, code: &str, number: u64, visit: u64, instrument: &str) -> VisitRow {
        VisitRow {
            session_id: Cell::UInt(id),
            proposal_code: text(code),
            proposal_number: text(&number.to_string()),
            visit: Cell::UInt(visit),
            instrument: text(instrument),
            start_date: Cell::DateTime(at(2024, 3, 10)),
            end_date: Cell::DateTime(at(2024, 3, 12)),
            gid: Cell::Null,
        }
    }

    fn person(id: u64, login: &str) -> PersonRow {
        PersonRow {
            session_id: Cell::UInt(id),
            login: text(login),
        }
    }

    fn group(name: &str, gid: i64, members: &[&str]) -> PosixGroup {
        PosixGroup {
            name: name.into(),
            gid,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    fn source() -> SessionSourceConfig {
        let config = Config::from_yaml(
            "ldap: {url: 'ldap://x', users: {base: b, filter: '(a=b)'}, groups: {base: b, filter: '(a=b)'}}\n\
             sessionSource: {ispyb: {url: 'mysql://r@db/ispyb'}}\n",
        )
        .unwrap();
        config.session_source.unwrap()
    }

    struct Case {
        source: SessionSourceConfig,
        visits: Vec<VisitRow>,
        people: Vec<PersonRow>,
        groups: Vec<PosixGroup>,
        users: Option<HashSet<String>>,
    }

    impl Case {
        fn new(visits: Vec<VisitRow>) -> Self {
            let groups = visits
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let Ok(Visit { name, .. }) = read_visit(v) else {
                        return None;
                    };
                    Some(group(&name, 150_000 + i as i64, &[]))
                })
                .collect();
            Self {
                source: source(),
                visits,
                people: Vec::new(),
                groups,
                users: None,
            }
        }

        fn map(&self) -> Mapped {
            map_visits(
                &Config::default(),
                &self.source,
                Input {
                    window: window(),
                    visits: &self.visits,
                    people: &self.people,
                    groups: &self.groups,
                    users: self.users.as_ref(),
                },
            )
        }
    }

    fn names(mapped: &Mapped) -> Vec<&str> {
        mapped
            .sessions
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    fn session<'a>(mapped: &'a Mapped, name: &str) -> &'a Session {
        mapped
            .sessions
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no Session {name} in {:?}", names(mapped)))
    }

    #[test]
    fn a_visit_becomes_a_labelled_session() {
        let mut case = Case::new(vec![row(70001, "cm", 37235, 2, "i03")]);
        case.groups = vec![group("cm37235-2", 159_620, &[])];
        case.people = vec![
            person(70001, "mrg27357"),
            person(70001, "enu43627"),
            person(70001, "enu43627"),
        ];
        let mapped = case.map();
        let s = session(&mapped, "cm37235-2");
        assert_eq!(
            s.spec,
            SessionSpec {
                proposal_code: "cm".into(),
                proposal_number: 37235,
                visit: 2,
                instrument: "i03".into(),
                start_date: "2024-03-10 09:00:00".into(),
                end_date: "2024-03-12 09:00:00".into(),
                data_directory: "/dls/i03/data/2024/cm37235-2/".into(),
                gid: 159_620,
                members: vec!["enu43627".into(), "mrg27357".into()],
                default_member: None,
                ended: false,
            }
        );
        assert_eq!(
            s.metadata.labels.as_ref().unwrap()[LABEL_SOURCE],
            SOURCE_ISPYB
        );
        assert_eq!(
            s.metadata.annotations.as_ref().unwrap()[ANNOTATION_SESSION_ID],
            "70001"
        );
        assert!(mapped.skipped.is_empty() && mapped.skipped_members.is_empty());
        assert_eq!(mapped.rows_read, 1);
    }

    #[test]
    fn the_window_and_the_instrument_filter_put_visits_out_of_scope() {
        let mut before = row(1, "cm", 1, 1, "i03");
        before.start_date = Cell::DateTime(at(2024, 1, 1));
        before.end_date = Cell::DateTime(at(2024, 2, 1));
        let mut after = row(2, "cm", 2, 1, "i03");
        after.start_date = Cell::DateTime(at(2024, 4, 2));
        after.end_date = Cell::DateTime(at(2024, 4, 3));
        let mut spanning = row(3, "cm", 3, 1, "i03");
        spanning.start_date = Cell::DateTime(at(2024, 2, 1));
        spanning.end_date = Cell::DateTime(at(2024, 5, 1));
        let inside = row(4, "cm", 4, 1, "i03");
        let elsewhere = row(5, "cm", 5, 1, "b21");
        let mut case = Case::new(vec![before, after, spanning, inside, elsewhere]);
        let mapped = case.map();
        assert_eq!(names(&mapped), ["cm3-1", "cm4-1", "cm5-1"]);
        assert_eq!(mapped.out_of_window, 2);

        case.source.ispyb.instruments = vec!["i03".into(), "i04".into()];
        let mapped = case.map();
        assert_eq!(names(&mapped), ["cm3-1", "cm4-1"]);
        assert_eq!(mapped.other_instruments, 1);
        // Out of scope is not bad data: nothing is reported or held.
        assert!(mapped.skipped.is_empty() && mapped.held_ids.is_empty());
    }

    #[test]
    fn each_kind_of_bad_row_is_skipped_naming_the_row_and_the_reason() {
        let good = || row(100, "cm", 37235, 2, "i03");
        let with = |id: u64, f: &dyn Fn(&mut VisitRow)| {
            let mut r = good();
            r.session_id = Cell::UInt(id);
            r.visit = Cell::UInt(id);
            f(&mut r);
            r
        };
        let cases: Vec<(VisitRow, &str)> = vec![
            (
                with(1, &|r| r.session_id = Cell::Null),
                "skipped visit sessionId=NULL: sessionId is NULL",
            ),
            (
                with(2, &|r| r.proposal_code = text("")),
                "skipped visit sessionId=2: proposalCode is empty",
            ),
            (
                with(3, &|r| r.proposal_code = Cell::Null),
                "skipped visit sessionId=3: proposalCode is NULL",
            ),
            (
                with(4, &|r| r.proposal_code = text("c/m")),
                "skipped visit sessionId=4: proposalCode \"c/m\" is not lower-case letters and digits",
            ),
            (
                with(14, &|r| r.proposal_code = text("CM")),
                "skipped visit sessionId=14: proposalCode \"CM\" is not lower-case letters and digits",
            ),
            (
                with(5, &|r| r.proposal_number = text("37x")),
                "skipped visit sessionId=5: proposalNumber \"37x\" is not a number",
            ),
            (
                with(6, &|r| r.visit = Cell::UInt(0)),
                "skipped visit sessionId=6: visit 0 is out of range (at least 1)",
            ),
            (
                with(7, &|r| r.instrument = text("../etc")),
                "skipped visit sessionId=7 (cm37235-7): instrument \"../etc\" is not letters, digits, '-', '_' and '.'",
            ),
            (
                with(8, &|r| r.start_date = Cell::Null),
                "skipped visit sessionId=8 (cm37235-8): startDate is NULL",
            ),
            (
                with(9, &|r| r.end_date = Cell::Null),
                "skipped visit sessionId=9 (cm37235-9): endDate is NULL",
            ),
            (
                with(10, &|r| {
                    r.end_date = Cell::DateTime(DateTime {
                        year: 0,
                        month: 0,
                        day: 0,
                        hour: 0,
                        minute: 0,
                        second: 0,
                    })
                }),
                "skipped visit sessionId=10 (cm37235-10): endDate 0000-00-00 00:00:00 is not a date",
            ),
            (
                with(11, &|r| r.end_date = Cell::DateTime(at(2024, 3, 1))),
                "skipped visit sessionId=11 (cm37235-11): endDate 2024-03-01 09:00:00 is before startDate 2024-03-10 09:00:00",
            ),
            (
                with(12, &|r| r.visit = Cell::Other("float 1.5".into())),
                "skipped visit sessionId=12: visit float 1.5 is not a number",
            ),
            (with(13, &|r| r.proposal_number = text(&"9".repeat(70))), ""),
        ];
        let mut visits: Vec<VisitRow> = cases.iter().map(|(r, _)| r.clone()).collect();
        visits.push(good());
        let mapped = Case::new(visits).map();
        assert_eq!(names(&mapped), ["cm37235-2"]);
        let messages: Vec<String> = mapped.skipped.iter().map(ToString::to_string).collect();
        for (_, want) in &cases {
            if want.is_empty() {
                continue;
            }
            assert!(
                messages.iter().any(|m| m == want),
                "missing {want:?} in {messages:#?}"
            );
        }
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("skipped visit sessionId=13: proposalNumber")),
            "{messages:#?}"
        );
        assert_eq!(mapped.skipped.len(), cases.len());
        // Skipped visits are held: a Session synced from them earlier is not ended.
        assert!(mapped.held_ids.contains("8") && mapped.held_names.contains("cm37235-8"));
    }

    #[test]
    fn a_visit_without_its_group_or_with_two_gids_is_skipped() {
        let mut case = Case::new(vec![
            row(1, "cm", 1, 1, "i03"),
            row(2, "cm", 2, 1, "i03"),
            row(3, "cm", 3, 1, "i03"),
        ]);
        case.groups = vec![
            group("CM1-1", 5001, &[]), // LDAP compares cn ignoring case
            group("cm3-1", 5003, &[]),
            group("cm3-1", 5004, &[]),
        ];
        let mapped = case.map();
        assert_eq!(names(&mapped), ["cm1-1"]);
        assert_eq!(mapped.sessions[0].spec.gid, 5001);
        let messages: Vec<String> = mapped.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "skipped visit sessionId=2 (cm2-1): no posixGroup named \"cm2-1\" gives the visit its gid",
                "skipped visit sessionId=3 (cm3-1): posixGroups named \"cm3-1\" have different gids (5003, 5004)",
            ]
        );
    }

    #[test]
    fn gids_from_a_column_must_be_positive_ids() {
        let mut case = Case::new(vec![
            row(1, "cm", 1, 1, "i03"),
            row(2, "cm", 2, 1, "i03"),
            row(3, "cm", 3, 1, "i03"),
            row(4, "cm", 4, 1, "i03"),
        ]);
        case.source.gid_from = GidFrom::Column;
        case.visits[0].gid = Cell::Int(7001);
        case.visits[1].gid = Cell::Null;
        case.visits[2].gid = Cell::Int(0);
        case.visits[3].gid = Cell::Text("4294967295".into());
        let mapped = case.map();
        assert_eq!(names(&mapped), ["cm1-1"]);
        assert_eq!(mapped.sessions[0].spec.gid, 7001);
        let reasons: Vec<String> = mapped
            .skipped
            .iter()
            .map(|s| s.reason.to_string())
            .collect();
        assert_eq!(
            reasons,
            [
                "gid is NULL",
                "gid 0 is out of range (1 to 4294967294; 0 is root and never synced)",
                "gid 4294967295 is out of range (1 to 4294967294; 0 is root and never synced)",
            ]
        );
    }

    #[test]
    fn two_rows_with_one_name_are_both_skipped_naming_each_other() {
        let mut case = Case::new(vec![
            row(1, "cm", 7, 1, "i03"),
            row(2, "cm", 7, 1, "i04"),
            row(3, "cm", 8, 1, "i03"),
        ]);
        case.groups.push(group("cm7-1", 7001, &[]));
        let mapped = case.map();
        assert_eq!(names(&mapped), ["cm8-1"]);
        let messages: Vec<String> = mapped.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            messages,
            [
                "skipped visit sessionId=1 (cm7-1): visit cm7-1 is also returned as sessionId 2; all of them are skipped",
                "skipped visit sessionId=2 (cm7-1): visit cm7-1 is also returned as sessionId 1; all of them are skipped",
            ]
        );
    }

    #[test]
    fn names_and_namespaces_must_be_valid() {
        let mut case = Case::new(vec![row(1, "cm", 37235, 2, "i03")]);
        let mut config = Config::default();
        config.namespaces.session = crate::template::Template::new("{instrument}_{visit}");
        let mapped = map_visits(
            &config,
            &case.source,
            Input {
                window: window(),
                visits: &case.visits,
                people: &[],
                groups: &case.groups,
                users: None,
            },
        );
        assert!(mapped.sessions.is_empty());
        assert_eq!(
            mapped.skipped[0].to_string(),
            "skipped visit sessionId=1 (cm37235-2): namespace \"i03_2\" is not a valid name (lower-case letters, digits and '-', at most 63)"
        );
        case.visits = vec![row(2, &"x".repeat(60), 37235, 2, "i03")];
        let mapped = case.map();
        assert!(matches!(
            mapped.skipped[0].reason,
            SkipReason::BadName {
                what: "Session name",
                ..
            }
        ));
    }

    #[test]
    fn members_are_the_visit_people_and_the_instrument_staff_who_are_users() {
        let mut case = Case::new(vec![row(1, "cm", 1, 1, "i03"), row(2, "cm", 2, 1, "i04")]);
        case.groups.extend([
            group("i03-staff", 9000, &["stf1", "ada", "ghost"]),
            group("i03-extra", 9001, &["stf2"]),
        ]);
        case.source.ispyb.staff = BTreeMap::from([
            (
                "i03".into(),
                vec!["i03-staff".into(), "i03-extra".into(), "nope".into()],
            ),
            ("i24".into(), vec!["i24-staff".into()]),
        ]);
        case.people = vec![
            person(1, "ada"),
            person(1, "zed"),
            person(1, "ad@m"),
            PersonRow {
                session_id: Cell::UInt(1),
                login: Cell::Null,
            },
            person(2, "bob"),
            PersonRow {
                session_id: Cell::Null,
                login: text("eve"),
            },
            person(99, "out-of-scope"),
        ];
        case.users = Some(
            ["ada", "bob", "stf1", "stf2"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        );
        let mapped = case.map();
        assert_eq!(
            session(&mapped, "cm1-1").spec.members,
            ["ada", "stf1", "stf2"]
        );
        assert_eq!(session(&mapped, "cm2-1").spec.members, ["bob"]);
        let messages: Vec<String> = mapped
            .skipped_members
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "skipped member NULL of visit cm1-1: login is NULL",
                "skipped member ad@m of visit cm1-1: username \"ad@m\" contains '@'; only letters, digits, '-', '_' and '.' can be mapped to a name",
                "skipped member zed of visit cm1-1: maps to no User",
                "skipped member \"eve\" of visit sessionId=NULL: sessionId is NULL",
                "skipped member ghost of staff group i03-staff (every i03 visit): maps to no User",
            ]
        );
        // Only staff groups of instruments with visits are looked for.
        assert_eq!(mapped.unknown_staff_groups, ["nope"]);
        // Without the Users known, every login is a member.
        case.users = None;
        let mapped = case.map();
        assert_eq!(
            session(&mapped, "cm1-1").spec.members,
            ["ada", "ghost", "stf1", "stf2", "zed"]
        );
    }

    #[test]
    fn the_data_directory_template_uses_the_start_year_and_site_variables() {
        let mut case = Case::new(vec![row(1, "cm", 37235, 2, "i03")]);
        case.visits[0].start_date = Cell::Text("2023-12-30 09:00:00".into());
        case.source.ispyb.data_directory = crate::template::Template::new(
            "/{site}/{instrument}/{year}/{proposalCode}{proposalNumber:06}-{visit}",
        );
        let config = Config::from_yaml("templateVariables: {site: dls}").unwrap();
        let mapped = map_visits(
            &config,
            &case.source,
            Input {
                window: window(),
                visits: &case.visits,
                people: &[],
                groups: &case.groups,
                users: None,
            },
        );
        assert_eq!(
            mapped.sessions[0].spec.data_directory,
            "/dls/i03/2023/cm037235-2"
        );
        assert_eq!(mapped.sessions[0].spec.start_date, "2023-12-30 09:00:00");
    }

    #[test]
    fn window_defaults_are_a_week_ahead_and_a_month_back() {
        let window = SyncWindow::default();
        assert_eq!(window.before.as_secs(), 7 * 86_400);
        assert_eq!(window.after.as_secs(), 30 * 86_400);
    }
}
