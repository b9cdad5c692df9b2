//! homestead: an admission webhook and controller that makes every pod in a managed
//! namespace run as its owner's Unix identity, with their storage mounted.
//!
//! - [`core`] — pure: resources, configuration, directory, identity, mutation, validation.
//! - [`state`] — the configuration and directory shared by admission and the controller.
//! - [`cli`] — the `homestead` command line.

pub mod cli;
pub mod controller;
pub mod core;
pub mod state;
