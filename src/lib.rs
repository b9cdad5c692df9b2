//! homestead: an admission webhook and controller that makes every pod in a managed
//! namespace run as its owner's Unix identity, with their storage mounted.
//!
//! - [`core`] — pure: resources, configuration, directory, identity, mutation, validation.
//! - [`state`] — the configuration and directory shared by admission and the controller.
//! - [`cli`] — the `homestead` command line; [`commands`] — its offline subcommands.
//! - [`embedded`] — the example configuration, directory and review compiled in.

pub mod cli;
pub mod commands;
pub mod core;
pub mod embedded;
pub mod state;
