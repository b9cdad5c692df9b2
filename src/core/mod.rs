//! The pure core: resources, configuration, the directory, identity resolution, mutation
//! and validation. Nothing in here does I/O, spawns tasks or reads a clock; the shell
//! (`server`, `controller`, `ldap`, `cli`) feeds it bytes and objects and acts on what it
//! returns.

pub mod config;
pub mod denial;
pub mod desired;
pub mod directory;
pub(crate) mod envelope;
pub mod identity;
pub mod mutation;
pub mod names;
pub mod patch;
pub mod pod;
pub mod resources;
pub mod review;
pub mod template;
pub mod validation;
pub mod workload;
