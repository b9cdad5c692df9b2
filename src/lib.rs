//! homestead: an admission webhook and controller that makes every pod in a managed
//! namespace run as its owner's Unix identity, with their storage mounted.
//!
//! - `homestead_core` (the `core/` crate) — pure: resources, configuration, directory,
//!   identity, mutation, validation and the planners. This crate is its I/O shell.
//! - [`state`] — the configuration and directory shared by admission and the controller.
//! - [`commands`] — the composition root: the `homestead` command line, one module per
//!   subcommand, and the one place the runtime, the Kubernetes client, the configuration
//!   and the directory are made.
//! - [`embedded`] — the example configuration, directory and review compiled in.
//! - [`server`] — the TLS admission server, admin endpoints, metrics.
//! - [`certs`] — certificates: the CA, key reading and matching, certificate files, and
//!   the cryptography the core's planners need; [`telemetry`] — logging.
//! - [`controller`] — caches feeding the directory; leader-gated User/Session reconcilers.
//! - [`sources`] — identity sources: the LDAP sync keeping Users equal to the site
//!   directory, the ISPyB sync keeping Sessions equal to the facility's scheduling database,
//!   and what they share (applying a plan, metrics, the leader's periodic task).
//! - [`webhooks`] — in-cluster certificates (make, store, rotate) and webhook configuration repair.

pub mod certs;
pub mod commands;
pub mod controller;
pub mod embedded;
pub mod hooks;
pub mod server;
pub mod sources;
pub mod state;
pub mod telemetry;
pub mod webhooks;
