//! `homestead webhook-secret`: the init container of every replica in `self` certificate
//! mode. Creates the certificate Secret when it does not exist yet, then waits until the
//! kubelet has mounted `tls.crt` (see [`crate::webhooks::bootstrap`]).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use tracing::info;

use super::{kube_client, runtime};
use crate::webhooks::bootstrap::{ensure_secret_exists, wait_for_file};
use crate::webhooks::{WebhookArgs, WebhookSettings};

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

async fn bootstrap(args: WebhookSecretArgs) -> anyhow::Result<()> {
    let settings = WebhookSettings::from_args(&args.webhooks)?;
    let client = kube_client(None).await?;
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
    runtime()?.block_on(bootstrap(args))?;
    Ok(ExitCode::SUCCESS)
}
