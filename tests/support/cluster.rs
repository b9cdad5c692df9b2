//! Shared by the tests that need a real cluster (`HOMESTEAD_TEST_KUBECONFIG`, a
//! kubeconfig with cluster-admin): clients, a free port, polling, the serve child.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The test cluster's kubeconfig.
pub fn kubeconfig_path() -> PathBuf {
    PathBuf::from(
        std::env::var("HOMESTEAD_TEST_KUBECONFIG")
            .expect("set HOMESTEAD_TEST_KUBECONFIG to a kubeconfig with cluster-admin"),
    )
}

/// A client of the test cluster, impersonating `user` (an authenticated person) if given.
pub async fn client_as(user: Option<&str>) -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig usable");
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    }
    Client::try_from(config).expect("client")
}

/// A loopback port nothing listens on.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `f` every half second until it returns a value; fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A `homestead serve` child process; killed when dropped.
pub struct Serve(pub Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
