//! `homestead ldap-sync`: print the Users the directory implies, or apply them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};

use super::apply::{desired_users, sync_once};
use super::metrics::LdapMetrics;
use super::periodic::run_periodic;
use homestead_core::config::{Config, LdapConfig};

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
    #[arg(long, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
    /// Apply the Users to the cluster of this kubeconfig and print a summary.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
}

/// Output formats of the sync commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Multi-document YAML, one object per document.
    Yaml,
    /// One JSON `v1/List` of the objects.
    Json,
}

/// Runs the subcommand.
pub fn run(args: LdapSyncArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("homestead ldap-sync: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("homestead ldap-sync: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: LdapSyncArgs) -> Result<()> {
    // Tests and other callers may have installed it already.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
            let client = kube_client(path).await?;
            let outcome = sync_once(client, &ldap).await?;
            for skipped in &outcome.skipped_entries {
                eprintln!("warning: {skipped}");
            }
            for (name, reason) in &outcome.skipped_users {
                eprintln!("warning: User {name}: {reason}");
            }
            for (name, error) in &outcome.failures {
                eprintln!("error: User {name}: {error}");
            }
            println!("{}", outcome.summary);
            if outcome.summary.failed > 0 {
                bail!("{} Users could not be written", outcome.summary.failed);
            }
            Ok(())
        }
        (Some(path), false) => {
            let client = kube_client(path).await?;
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            run_periodic(client, ldap, LdapMetrics::default(), shutdown).await;
            Ok(())
        }
    }
}

/// The `ldap` section of a configuration file.
pub fn load_ldap_config(path: &Path) -> Result<LdapConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration {}", path.display()))?;
    let config =
        Config::from_yaml(&text).with_context(|| format!("configuration {}", path.display()))?;
    config
        .ldap
        .with_context(|| format!("configuration {} has no ldap section", path.display()))
}

async fn kube_client(path: &Path) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// Objects (Users, Sessions) as text in the chosen format.
pub fn render<T: serde::Serialize>(objects: &[T], output: Output) -> Result<String> {
    match output {
        Output::Yaml => {
            let mut out = String::new();
            for object in objects {
                out.push_str("---\n");
                out.push_str(&serde_saphyr::to_string(object).context("writing YAML")?);
            }
            Ok(out)
        }
        Output::Json => {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": "List", "items": objects });
            let mut text = serde_json::to_string_pretty(&list).context("writing JSON")?;
            text.push('\n');
            Ok(text)
        }
    }
}
