//! Sessions from ISPyB, the scheduling database of many synchrotrons: visit rows, their
//! people and the directory's groups → `Session`s, and how the sync plans its writes.
//!
//! - [`rows`] — values as the database returned them, dates, the window;
//! - [`mapping`] — rows → desired Sessions, bad rows skipped with reasons.
//!
//! **Ended, never deleted.** A Session this source owns (label `homestead.dev/source=ispyb`)
//! whose visit is no longer returned — it left the window, its instrument is no longer
//! synced, or the row is gone from the database — gets `spec.ended: true`, its other fields
//! as they were. Nothing is deleted: the Session, its namespace and its data stay. A visit
//! that comes back is un-ended. A visit whose row has bad data is *held* instead (left as it
//! was), because the visit has not gone, only its row is wrong. Issue 14's lifecycle reads
//! `spec.ended` (the controller and admission see it in their caches) as "past its end".

pub mod mapping;
pub mod rows;

use std::collections::BTreeMap;

use crate::names::LABEL_SOURCE;
use crate::resources::{Session, SessionSpec};
use crate::sources::sync::{Source, SyncPlan};

pub use mapping::{Input, Mapped, MemberOf, SkipReason, SkippedMember, SkippedRow, map_visits};
pub use rows::{Cell, DateTime, PersonRow, VisitRow, Window};

/// Value of the `homestead.dev/source` label on Sessions the ISPyB sync owns.
pub const SOURCE_ISPYB: &str = "ispyb";
/// Annotation recording the `BLSession.sessionId` a Session was read from.
pub const ANNOTATION_SESSION_ID: &str = "homestead.dev/ispyb-session-id";

/// The ISPyB source, as the shared plan sees it.
#[derive(Debug, Clone, Copy)]
pub struct Ispyb;

impl Source for Ispyb {
    type Object = Session;
    const NAME: &'static str = SOURCE_ISPYB;
    const FIELD_MANAGER: &'static str = "homestead-ispyb";
    const RETIRED_AS: &'static str = "ended";

    fn same_owned_fields(have: &Session, want: &Session) -> bool {
        let (a, b) = (&have.spec, &want.spec);
        a.proposal_code == b.proposal_code
            && a.proposal_number == b.proposal_number
            && a.visit == b.visit
            && a.instrument == b.instrument
            && a.start_date == b.start_date
            && a.end_date == b.end_date
            && a.data_directory == b.data_directory
            && a.gid == b.gid
            && a.members == b.members
            && a.ended == b.ended
            && session_id(have) == session_id(want)
    }

    fn is_retired(session: &Session) -> bool {
        session.spec.ended
    }

    fn retired(have: &Session) -> Session {
        let spec = &have.spec;
        let mut session = Session::new(
            have.metadata.name.as_deref().unwrap_or_default(),
            SessionSpec {
                proposal_code: spec.proposal_code.clone(),
                proposal_number: spec.proposal_number,
                visit: spec.visit,
                instrument: spec.instrument.clone(),
                start_date: spec.start_date.clone(),
                end_date: spec.end_date.clone(),
                data_directory: spec.data_directory.clone(),
                gid: spec.gid,
                members: spec.members.clone(),
                default_member: None,
                ended: true,
            },
        );
        session.metadata.labels = Some(BTreeMap::from([(
            LABEL_SOURCE.to_owned(),
            SOURCE_ISPYB.to_owned(),
        )]));
        session.metadata.annotations = session_id(have)
            .map(|id| BTreeMap::from([(ANNOTATION_SESSION_ID.to_owned(), id.to_owned())]));
        session
    }

    fn emptied(count: usize) -> String {
        format!(
            "the database returned no visit rows; refusing to end all {count} ISPyB Sessions \
             (check sessionSource.ispyb.queries.sessions, the window and what the database \
             user may read)"
        )
    }
}

/// The `BLSession.sessionId` a Session was read from.
pub fn session_id(session: &Session) -> Option<&str> {
    session
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_SESSION_ID))
        .map(String::as_str)
}

/// Leaves held Sessions alone: a Session the plan would end whose visit was skipped for
/// bad data (by name or by `sessionId`) is taken out of `plan.retire` and counted
/// unchanged. Returns the names taken out.
pub fn keep_held(plan: &mut SyncPlan<Session>, mapped: &Mapped) -> Vec<String> {
    let mut held = Vec::new();
    plan.retire.retain(|session| {
        let name = session.metadata.name.as_deref().unwrap_or_default();
        let hold = mapped.held_names.contains(name)
            || session_id(session).is_some_and(|id| mapped.held_ids.contains(id));
        if hold {
            held.push(name.to_owned());
        }
        !hold
    });
    plan.unchanged += held.len();
    held
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::sync::{check_not_emptied, is_owned, plan};

    fn synced(name: &str, id: &str, members: &[&str]) -> Session {
        let mut session = Session::new(
            name,
            SessionSpec {
                proposal_code: "cm".into(),
                proposal_number: 1,
                visit: 1,
                instrument: "i03".into(),
                start_date: "2024-03-10 09:00:00".into(),
                end_date: "2024-03-12 09:00:00".into(),
                data_directory: "/dls/i03/data/2024/cm1-1/".into(),
                gid: 5000,
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                ..SessionSpec::default()
            },
        );
        session.metadata.labels = Some(BTreeMap::from([(
            LABEL_SOURCE.to_owned(),
            SOURCE_ISPYB.to_owned(),
        )]));
        session.metadata.annotations = Some(BTreeMap::from([(
            ANNOTATION_SESSION_ID.to_owned(),
            id.to_owned(),
        )]));
        session
    }

    fn names(sessions: &[Session]) -> Vec<&str> {
        sessions
            .iter()
            .map(|s| s.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn visits_that_left_are_ended_with_their_fields_kept_and_come_back() {
        let mut have = synced("cm1-1", "7", &["ada", "bob"]);
        have.metadata.resource_version = Some("9".into());
        have.spec.default_member = Some("ada".into());
        let p = plan::<Ispyb>(&[], std::slice::from_ref(&have));
        assert_eq!(names(&p.retire), ["cm1-1"]);
        let ended = &p.retire[0];
        assert!(ended.spec.ended);
        assert_eq!(ended.spec.members, ["ada", "bob"]);
        assert_eq!(ended.spec.gid, 5000);
        assert_eq!(session_id(ended), Some("7"));
        assert!(is_owned::<Ispyb>(ended));
        assert_eq!(ended.metadata.resource_version, None);
        // The default member is the administrator's, not the source's.
        assert_eq!(ended.spec.default_member, None);

        let mut gone = have.clone();
        gone.spec.ended = true;
        assert!(plan::<Ispyb>(&[], std::slice::from_ref(&gone)).is_empty());
        let back = plan::<Ispyb>(&[synced("cm1-1", "7", &["ada", "bob"])], &[gone]);
        assert_eq!(names(&back.update), ["cm1-1"]);
        assert!(!back.update[0].spec.ended);
    }

    #[test]
    fn a_removed_person_or_a_new_session_id_is_an_update_and_overrides_are_not() {
        let have = synced("cm1-1", "7", &["ada", "bob"]);
        let p = plan::<Ispyb>(
            &[synced("cm1-1", "7", &["ada"])],
            std::slice::from_ref(&have),
        );
        assert_eq!(names(&p.update), ["cm1-1"]);
        assert_eq!(p.update[0].spec.members, ["ada"]);
        let p = plan::<Ispyb>(
            &[synced("cm1-1", "8", &["ada", "bob"])],
            std::slice::from_ref(&have),
        );
        assert_eq!(names(&p.update), ["cm1-1"]);

        let mut overridden = have.clone();
        overridden.spec.default_member = Some("bob".into());
        let p = plan::<Ispyb>(&[have], &[overridden]);
        assert!(p.is_empty());
        assert_eq!(p.unchanged, 1);
    }

    #[test]
    fn sessions_written_by_hand_are_never_touched() {
        let mut by_hand = synced("cm1-1", "7", &["ada"]);
        by_hand.metadata.labels = None;
        let p = plan::<Ispyb>(
            &[synced("cm1-1", "7", &["bob"])],
            std::slice::from_ref(&by_hand),
        );
        assert!(p.is_empty());
        assert!(
            p.skipped[0].1.contains("managed by hand"),
            "{:?}",
            p.skipped
        );
        assert!(plan::<Ispyb>(&[], &[by_hand]).is_empty());
    }

    #[test]
    fn held_visits_are_not_ended() {
        let existing = [
            synced("cm1-1", "1", &[]),
            synced("cm2-1", "2", &[]),
            synced("cm3-1", "3", &[]),
        ];
        let mut p = plan::<Ispyb>(&[], &existing);
        let mapped = Mapped {
            held_names: ["cm1-1".to_owned()].into(),
            held_ids: ["2".to_owned()].into(),
            ..Mapped::default()
        };
        assert_eq!(keep_held(&mut p, &mapped), ["cm1-1", "cm2-1"]);
        assert_eq!(names(&p.retire), ["cm3-1"]);
        assert_eq!(p.unchanged, 2);
    }

    #[test]
    fn an_empty_database_does_not_end_every_session() {
        let p = plan::<Ispyb>(&[], &[synced("cm1-1", "1", &[])]);
        let err = check_not_emptied::<Ispyb>(0, &p).unwrap_err();
        assert!(
            err.contains("refusing to end all 1 ISPyB Sessions"),
            "{err}"
        );
        assert!(check_not_emptied::<Ispyb>(5, &p).is_ok());
    }
}
