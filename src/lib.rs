//! homestead: an admission webhook and controller that makes every pod in a managed
//! namespace run as its owner's Unix identity, with their storage mounted.
//!
//! - [`core`] — pure: resources, configuration, directory, identity, mutation, validation.
//! - [`state`] — the configuration and directory shared by admission and the controller.
//! - [`ldap`] — the LDAP sync keeping Users equal to the site directory.
//! - [`cli`] — the `homestead` command line.

pub mod cli;
pub mod core;
pub mod ldap;
pub mod state;
