//! Sessions from ISPyB, the facility's scheduling database (MySQL/MariaDB): every visit in
//! the sync window becomes a `Session` with its members, gid and data directory, kept in
//! step as the schedule changes; a visit that leaves is marked ended, never deleted.
//!
//! - [`database`] — connecting, the window on the database's clock, checked queries, rows;
//! - [`sync`] — reading (database + LDAP groups), mapping (pure, in
//!   `homestead_core::sources::ispyb`), planning with the shared plan, applying with the
//!   shared [`apply_plan`](crate::sources::apply::apply_plan); its metric names and the
//!   leader's periodic task (the shared [`periodic`](crate::sources::periodic) loop).
//!
//! `homestead session-sync` (in `crate::commands::session_sync`) runs it from the command line.
//!
//! The controller's leader runs the sync every `sessionSource.interval` while it leads
//! (`serve` hands [`sync::leader_task`] to the controller).

pub mod database;
pub mod sync;

pub use sync::{
    IspybDetails, IspybReport, METRICS, desired_sessions, leader_task, run_periodic, sync_once,
};
