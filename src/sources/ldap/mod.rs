//! LDAP sync: keeps `User` objects equal to the site directory (posixAccount and
//! posixGroup entries).
//!
//! - `homestead_core::sources::ldap` — pure: entries and groups → desired Users, bad
//!   entries skipped with reasons;
//! - `homestead_core::sources::sync` — pure: desired vs existing Users → create / update /
//!   disable / skip;
//! - [`client`] — reading the directory (ldap://, ldaps://, StartTLS, paged searches);
//! - [`apply`] — server-side apply of a plan, and one whole sync;
//! - [`periodic`] — the leader's task syncing every `interval` with backoff;
//! - [`metrics`] — sync duration, results and last success;
//! - [`command`] — `homestead ldap-sync`.
//!
//! The controller's leader runs the sync while it leads ([`leader_task`] is how `serve`
//! hands it to the controller); by hand:
//!
//! ```no_run
//! # async fn leader(
//! #     client: kube::Client,
//! #     config: homestead_core::config::Config,
//! #     registry: &mut prometheus_client::registry::Registry,
//! #     leadership_lost: tokio_util::sync::CancellationToken,
//! # ) {
//! if let Some(ldap) = config.ldap.clone() {
//!     let metrics = homestead::sources::ldap::LdapMetrics::register(registry);
//!     let shutdown = leadership_lost.cancelled_owned();
//!     tokio::spawn(homestead::sources::ldap::run_periodic(client, ldap, metrics, shutdown));
//! }
//! # }
//! ```

pub mod apply;
pub mod client;
pub mod command;
pub mod metrics;
pub mod periodic;

pub use apply::{FIELD_MANAGER, Outcome, Summary, sync_once};
pub use metrics::LdapMetrics;
pub use periodic::{leader_task, run_periodic};
