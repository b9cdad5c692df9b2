//! Identity sources, shell halves: reading a site system, writing the plan the core makes
//! of it (`homestead_core::sources`) with server-side apply, and the leader's periodic task
//! with its metrics.
//!
//! - [`apply`] — listing what a source may own, applying a plan, the summary of a sync;
//! - [`metrics`] — duration, results and last success of a source's syncs;
//! - [`periodic`] — sync every interval while leading, retrying a failing source with backoff;
//! - [`ldap`] — Users from the site's LDAP directory;
//! - [`ispyb`] — Sessions from the facility's scheduling database.

pub mod apply;
pub mod ispyb;
pub mod ldap;
pub mod metrics;
pub mod periodic;
