//! Identity sources, shell halves: reading a site system, writing the plan the core makes
//! of it (`homestead_core::sources`) with server-side apply, and the leader's periodic task
//! with its metrics. Every source uses the same pieces:
//!
//! - [`apply`] — listing what a source may own, applying a plan;
//! - [`report`] — what one sync did: [`SyncReport`] with its [`SyncCounts`];
//! - [`metrics`] — duration, results and last success of a source's syncs, named by the
//!   source's [`MetricNames`];
//! - [`periodic`] — sync every interval while leading, retrying a failing source with backoff;
//!
//! and each source holds only its client and its one whole sync:
//!
//! - [`ldap`] — Users from the site's LDAP directory;
//! - [`ispyb`] — Sessions from the facility's scheduling database.

pub mod apply;
pub mod ispyb;
pub mod ldap;
pub mod metrics;
pub mod periodic;
pub mod report;

pub use metrics::{MetricNames, SyncMetrics};
pub use report::{SyncCounts, SyncReport};
