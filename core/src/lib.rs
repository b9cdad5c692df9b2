//! homestead's pure core: resources, configuration, the directory, identity resolution,
//! mutation, validation and the planners. Nothing in here does I/O, spawns tasks or reads
//! a clock, and the crate's dependencies make that so: it cannot reach tokio, a Kubernetes
//! client, hyper or rustls. The binary crate's shell (TLS server, controller, LDAP sync,
//! command line) feeds it bytes and objects and acts on what it returns.

pub mod argo;
mod b64;
pub mod certs;
pub mod config;
pub mod custom;
pub mod denial;
pub mod desired;
pub mod directory;
pub(crate) mod envelope;
pub mod handover;
pub mod hooks;
pub mod identity;
pub mod json;
pub mod lease;
pub mod lifecycle;
pub mod mutation;
pub mod names;
pub mod patch;
pub mod pod;
pub mod pod_index;
pub mod resources;
pub mod review;
pub mod sources;
pub mod status;
pub mod template;
pub mod validation;
pub mod webhooks;
pub mod workload;
