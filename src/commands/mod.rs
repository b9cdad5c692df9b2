//! The composition root: the `homestead` command line, one module per subcommand, and the
//! one place where the process's pieces are made — the rustls crypto provider, logging,
//! the tokio runtime ([`runtime`]), the Kubernetes client ([`kube_client`]), the
//! configuration and the directory ([`inputs`]) — and where an error becomes the exit
//! status (`homestead: <message>: <cause>...` on standard error, exit 1).
//!
//! Each subcommand module holds its clap arguments and a `run` that wires the library's
//! pieces together; none of them builds a runtime, a client or a configuration itself.

pub mod certs;
pub mod config;
pub mod crds;
pub mod inputs;
pub mod ldap_sync;
pub mod mutate;
pub mod review;
pub mod serve;
pub mod session_sync;
pub mod webhook_secret;

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// Runs every pod in a managed namespace as its owner's Unix identity.
#[derive(Debug, Parser)]
#[command(name = "homestead", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhooks over TLS (plus /livez, /readyz, /metrics).
    Serve(Box<serve::ServeArgs>),
    /// Answer one AdmissionReview offline: review JSON in, response JSON out.
    Review(review::ReviewArgs),
    /// Show what admission does to a Pod or workload manifest created by a person.
    Mutate(mutate::MutateArgs),
    /// Write a webhook CA and a serving certificate signed by it.
    Certs(certs::CertsArgs),
    /// Print the User and Session CustomResourceDefinitions as YAML.
    Crds(crds::CrdsArgs),
    /// Work with configuration files.
    Config(config::ConfigArgs),
    /// Read the LDAP directory and print (or, with --kubeconfig, apply) the Users it implies.
    LdapSync(ldap_sync::LdapSyncArgs),
    /// Read the scheduling database (ISPyB) and print (or, with --kubeconfig, apply) the
    /// Sessions it implies.
    SessionSync(session_sync::SessionSyncArgs),
    /// Create the in-cluster webhook certificate Secret if it is missing, then wait for its
    /// files to be mounted (the chart's init container in `self` certificate mode).
    WebhookSecret(webhook_secret::WebhookSecretArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::certs::install_crypto_provider();
    let result = match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::Review(args) => review::run(args),
        Command::Mutate(args) => mutate::run(args),
        Command::Certs(args) => certs::run(args),
        Command::Crds(args) => crds::run(args),
        Command::Config(args) => config::run(args),
        Command::LdapSync(args) => ldap_sync::run(args),
        Command::SessionSync(args) => session_sync::run(args),
        Command::WebhookSecret(args) => webhook_secret::run(args),
    };
    result.unwrap_or_else(|error| {
        // Also a log line, for commands whose standard error goes to a log collector.
        tracing::error!("{error:#}");
        eprintln!("homestead: {error:#}");
        ExitCode::FAILURE
    })
}

/// The tokio runtime of every command that needs one (multi-threaded, all drivers).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("homestead")
        .build()
        .context("starting the async runtime")
}

/// The Kubernetes client: from `kubeconfig` when given, else the in-cluster configuration,
/// else `$KUBECONFIG` or `~/.kube/config`.
pub async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "no in-cluster configuration and no usable kubeconfig (pass --kubeconfig FILE)",
        )?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}
