//! LDAP sync: keeps `User` objects equal to the site directory (posixAccount and
//! posixGroup entries).
//!
//! - `homestead_core::sources::ldap` — pure: entries and groups → desired Users, bad
//!   entries skipped with reasons;
//! - `homestead_core::sources::sync` — pure: desired vs existing Users → create / update /
//!   disable / skip;
//! - [`client`] — reading the directory (ldap://, ldaps://, StartTLS, paged searches);
//! - [`sync`] — one whole sync (read, map, plan, apply with the shared
//!   [`apply_plan`](crate::sources::apply::apply_plan)), its metric names, and the leader's
//!   periodic task (the shared [`periodic`](crate::sources::periodic) loop).
//!
//! `homestead ldap-sync` (in `crate::commands::ldap_sync`) runs it from the command line.
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
//! use homestead::sources::{SyncMetrics, ldap};
//! if let Some(config) = config.ldap.clone() {
//!     let metrics = SyncMetrics::register(registry, ldap::METRICS);
//!     let shutdown = leadership_lost.cancelled_owned();
//!     tokio::spawn(ldap::run_periodic(client, config, metrics, shutdown));
//! }
//! # }
//! ```

pub mod client;
pub mod sync;

pub use sync::{LdapReport, METRICS, desired_users, leader_task, run_periodic, sync_once};
