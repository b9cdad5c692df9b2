//! `homestead ldap-sync`: print the Users the directory implies, or apply them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::inputs::load_config;
use super::{kube_client, runtime};
use crate::sources::SyncMetrics;
use crate::sources::ldap::{desired_users, run_periodic, sync_once};
use homestead_core::config::LdapConfig;

/// Arguments of `homestead ldap-sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct LdapSyncArgs {
    /// Sync once and exit. Without it the sync repeats every `ldap.interval` until
    /// interrupted, which needs --kubeconfig.
    #[arg(long)]
    pub once: bool,
    /// Configuration file with an `ldap` section.
    #[arg(long, env = "HOMESTEAD_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// How to print the Users when no cluster is given.
    #[arg(long, value_enum, default_value_t = SyncOutput::Yaml)]
    pub output: SyncOutput,
    /// Apply the Users to the cluster of this kubeconfig and print a summary.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Output formats of the sync commands (`ldap-sync`, `session-sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncOutput {
    /// Multi-document YAML, one object per document.
    Yaml,
    /// One JSON `v1/List` of the objects.
    Json,
}

/// Runs `homestead ldap-sync`.
pub fn run(args: LdapSyncArgs) -> Result<ExitCode> {
    runtime()?.block_on(sync(args))?;
    Ok(ExitCode::SUCCESS)
}

async fn sync(args: LdapSyncArgs) -> Result<()> {
    let ldap = load_ldap_config(&args.config)?;
    match (&args.kubeconfig, args.once) {
        (None, true) => {
            let mapped = desired_users(&ldap).await?;
            for skipped in &mapped.skipped {
                eprintln!("warning: {skipped}");
            }
            for group in &mapped.unknown_groups {
                eprintln!(
                    "warning: onlyMembersOf names {group:?}, which the directory does not have"
                );
            }
            print!("{}", render(&mapped.users, args.output)?);
            Ok(())
        }
        (None, false) => {
            bail!("without --kubeconfig only --once is possible (it prints the Users)")
        }
        (Some(path), true) => {
            let client = kube_client(Some(path)).await?;
            let report = sync_once(client, &ldap).await?;
            for skipped in &report.details {
                eprintln!("warning: {skipped}");
            }
            for (name, reason) in &report.skipped {
                eprintln!("warning: User {name}: {reason}");
            }
            for (name, error) in &report.failures {
                eprintln!("error: User {name}: {error}");
            }
            println!("{}", report.counts);
            if report.counts.failed > 0 {
                bail!("{} Users could not be written", report.counts.failed);
            }
            Ok(())
        }
        (Some(path), false) => {
            // Running until interrupted, it reports through the log like `serve` does;
            // the one-shot forms print their results and warnings instead.
            crate::telemetry::init(crate::telemetry::LogFormat::Text, "info");
            let client = kube_client(Some(path)).await?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            run_periodic(client, ldap, SyncMetrics::default(), shutdown).await;
            Ok(())
        }
    }
}

/// The `ldap` section of a configuration file.
pub fn load_ldap_config(path: &Path) -> Result<LdapConfig> {
    load_config(Some(path))?
        .ldap
        .with_context(|| format!("configuration {} has no ldap section", path.display()))
}

/// Objects (Users, Sessions) as text in the chosen format.
pub fn render<T: serde::Serialize>(objects: &[T], output: SyncOutput) -> Result<String> {
    match output {
        SyncOutput::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(object).context("writing YAML")?);
            }
            Ok(out)
        }
        SyncOutput::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects });
            let mut text = serde_json::to_string_pretty(&list).context("writing JSON")?;
            text.push('\n');
            Ok(text)
        }
    }
}
