//! What the integration tests share; every test file takes it with `mod support;`.
//!
//! - [`admission`] — the admission fixture: a directory (ada, bob, carol, dave, erin and
//!   session `cm37235-2`), AdmissionReview builders, patch helpers. Pure, no I/O.
//! - [`hook_server`] — a site hook: a real HTTP(S) server on 127.0.0.1 that records what
//!   it is sent and answers as scripted; and the payload schema check.
//! - [`slapd`] — a throwaway OpenLDAP server (also used by `examples/ldap_bench.rs`).
//! - [`cluster`] — the harness of the tests that need a real API server. Read its module
//!   comment before writing one; in short:
//!
//! ```ignore
//! #[tokio::test]
//! #[ignore = "needs a cluster"]
//! async fn a_member_pod_runs_as_the_member() {
//!     let cluster = Cluster::exclusive().await;           // waits for its turn, cleans up on drop
//!     let serve = cluster.serve(ServeOptions::default()).await; // `homestead serve`, ready
//!     serve.register_webhooks(&cluster).await;              // by URL, deleted on drop
//!     let ada = cluster.user("ada", &[]).await;             // a unique User, Deployed
//!     let pods = Api::<Pod>::namespaced(client_as(&ada.username).await, &ada.namespace);
//!     // ... create, then assert on what the API server stored
//! }
//! ```
//!
//! `tests/run.sh` starts the control plane in `../shared/controlplane` and runs every
//! `#[ignore = "needs a cluster"]` test with `HOMESTEAD_TEST_KUBECONFIG` set; by hand:
//!
//! ```text
//! kc=$(../shared/controlplane/up /tmp/cp)
//! HOMESTEAD_TEST_KUBECONFIG=$kc cargo nextest run --run-ignored only   # or: cargo test -- --ignored
//! ../shared/controlplane/down /tmp/cp --rm
//! ```

pub mod admission;
pub mod cluster;
pub mod hook_server;
pub mod slapd;
