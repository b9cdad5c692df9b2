//! `homestead webhook-secret`: the init container of every replica in `self` mode.
//!
//! The admission server needs its certificate files to start, and in `self` mode the
//! leader — which runs inside that same server process — is what makes them. To break the
//! circle, each pod's init container creates the Secret when it does not exist yet (a new
//! CA and serving certificate; replicas racing each other get 409 and use the winner's),
//! then waits until the kubelet has put `tls.crt` into the pod's Secret volume. It never
//! changes an existing Secret: rotation and repair are the leader's.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use tracing::info;

use super::{CertMode, Settings, WebhookArgs};
use crate::certs::Rcgen;
use homestead_core::certs::rotation::{self, Step};
use homestead_core::certs::secret::{Material, Observed};

/// Flags of `homestead webhook-secret`.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookSecretArgs {
    /// Certificate and webhook settings (the same flags and environment as `serve`).
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// After the Secret exists, wait until this file (the mounted `tls.crt`) exists.
    #[arg(long, env = "HOMESTEAD_TLS_CERT", value_name = "FILE")]
    pub wait_for: Option<PathBuf>,
    /// Give up waiting for the file after this long.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub wait_timeout: Duration,
}

/// What [`ensure_secret_exists`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bootstrap {
    /// This call created the Secret.
    Created,
    /// The Secret was there (or another replica created it first).
    Existed,
    /// Not `self` mode: the Secret is someone else's.
    NotManaged,
}

/// Creates the certificate Secret with a new CA and serving certificate unless it exists.
pub async fn ensure_secret_exists(
    client: &Client,
    settings: &Settings,
    now: SystemTime,
) -> anyhow::Result<Bootstrap> {
    if settings.mode != CertMode::SelfSigned {
        return Ok(Bootstrap::NotManaged);
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    if secrets
        .get_opt(&settings.secret)
        .await
        .with_context(|| format!("reading Secret {}/{}", settings.namespace, settings.secret))?
        .is_some()
    {
        return Ok(Bootstrap::Existed);
    }
    let fresh = rotation::apply(
        Step::Create,
        &Material::default(),
        &Observed::default(),
        &settings.names,
        now,
        &settings.policy,
        &Rcgen,
    )?;
    let secret = super::registration::new_secret(settings, fresh.to_secret_data());
    match secrets
        .create(&super::registration::post_params(), &secret)
        .await
    {
        Ok(_) => Ok(Bootstrap::Created),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Bootstrap::Existed),
        Err(e) => Err(e).with_context(|| format!("creating Secret {}", settings.secret)),
    }
}

/// Waits until `path` exists and is not empty.
pub async fn wait_for_file(path: &Path, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        if tokio::fs::metadata(path).await.is_ok_and(|m| m.len() > 0) {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            anyhow::bail!(
                "{} did not appear within {}; is the Secret volume mounted there?",
                path.display(),
                humantime::format_duration(timeout)
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn bootstrap(args: WebhookSecretArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(&args.webhooks)?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let outcome = ensure_secret_exists(&client, &settings, SystemTime::now()).await?;
    info!(?outcome, secret = %settings.secret, "webhook certificate Secret");
    if let Some(path) = args.wait_for.as_deref() {
        wait_for_file(path, args.wait_timeout).await?;
        info!(file = %path.display(), "serving certificate is mounted");
    }
    Ok(())
}

/// Runs `homestead webhook-secret`.
pub fn run(args: WebhookSecretArgs) -> anyhow::Result<ExitCode> {
    crate::telemetry::init(crate::telemetry::LogFormat::Text, "info");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(bootstrap(args))?;
    Ok(ExitCode::SUCCESS)
}
