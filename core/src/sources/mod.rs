//! Identity sources, pure halves: each maps what it read from a site system to the objects
//! homestead keeps, and every source plans its writes with the one [`SyncPlan`].
//!
//! - [`sync`] — the shared plan: create, update, retire (never delete), skip what is not
//!   the source's, and the retry backoff of a periodic sync;
//! - [`ldap`] — posixAccount/posixGroup entries → `User`s;
//! - [`ispyb`] — visits, their people and LDAP groups → `Session`s.
//!
//! The shell half of each source (reading, applying, scheduling) is `src/sources/<source>/`.

pub mod ispyb;
pub mod ldap;
pub mod sync;

pub use sync::{Source, SyncPlan, check_not_emptied, is_owned, plan, retry_delay};

/// A posixGroup as a directory holds it: its name, gid and member usernames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PosixGroup {
    /// `cn`.
    pub name: String,
    /// `gidNumber`.
    pub gid: i64,
    /// `memberUid` values.
    pub members: Vec<String>,
}
