//! `homestead session-sync`: print the Sessions the scheduling database implies, or apply
//! them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::inputs::load_config;
use super::ldap_sync::{SyncOutput, render};
use super::{kube_client, runtime};
use crate::sources::SyncMetrics;
use crate::sources::ispyb::{desired_sessions, run_periodic, sync_once};

/// Arguments of `homestead session-sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct SessionSyncArgs {
    /// Sync once and exit. Without it the sync repeats every `sessionSource.interval` until
    /// interrupted, which needs --kubeconfig.
    #[arg(long)]
    pub once: bool,
    /// Configuration file with a `sessionSource` section (and `ldap` for gids and staff).
    #[arg(long, env = "HOMESTEAD_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// How to print the Sessions when no cluster is given.
    #[arg(long, value_enum, default_value_t = SyncOutput::Yaml)]
    pub output: SyncOutput,
    /// Apply the Sessions to the cluster of this kubeconfig and print a summary; members
    /// are then checked against the cluster's Users.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Runs `homestead session-sync`.
pub fn run(args: SessionSyncArgs) -> Result<ExitCode> {
    runtime()?.block_on(sync(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn sync(args: SessionSyncArgs) -> Result<()> {
    let config = load_config(Some(&args.config))?;
    let source = config.session_source.clone().with_context(|| {
        format!(
            "configuration {} has no sessionSource section",
            args.config.display()
        )
    })?;
    match (&args.kubeconfig, args.once) {
        (None, true) => {
            let desired = desired_sessions(&config, &source, None).await?;
            for warning in desired.warnings() {
                eprintln!("warning: {warning}");
            }
            eprintln!(
                "note: without --kubeconfig, members are not checked against the cluster's Users"
            );
            print!("{}", render(&desired.mapped.sessions, args.output)?);
            Ok(())
        }
        (None, false) => {
            bail!("without --kubeconfig only --once is possible (it prints the Sessions)")
        }
        (Some(path), true) => {
            let client = kube_client(Some(path)).await?;
            let report = sync_once(client, &config).await?;
            for warning in report.details.desired.warnings() {
                eprintln!("warning: {warning}");
            }
            for name in &report.details.held {
                eprintln!("warning: Session {name} is not ended: its visit's row has bad data");
            }
            for (name, reason) in &report.skipped {
                eprintln!("warning: Session {name}: {reason}");
            }
            for (name, error) in &report.failures {
                eprintln!("error: Session {name}: {error}");
            }
            println!("{}", report.counts);
            if report.counts.failed > 0 {
                bail!("{} Sessions could not be written", report.counts.failed);
            }
            Ok(())
        }
        (Some(path), false) => {
            let client = kube_client(Some(path)).await?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            run_periodic(
                client,
                Arc::new(config),
                source.interval,
                SyncMetrics::default(),
                shutdown,
            )
            .await;
            Ok(())
        }
    }
}
