//! The `homestead` command line: lists the subcommands and dispatches to the module that
//! owns each one. Errors print as `homestead: <message>: <cause>...` with exit status 1.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

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
    Serve(Box<crate::serve::ServeArgs>),
    /// Answer one AdmissionReview offline: review JSON in, response JSON out.
    Review(commands::review::ReviewArgs),
    /// Show what admission does to a Pod or workload manifest created by a person.
    Mutate(commands::mutate::MutateArgs),
    /// Write a webhook CA and a serving certificate signed by it.
    Certs(crate::certs::CertsArgs),
    /// Print the User and Session CustomResourceDefinitions as YAML.
    Crds(commands::crds::CrdsArgs),
    /// Work with configuration files.
    Config(commands::config::ConfigArgs),
    /// Read the LDAP directory and print (or, with --kubeconfig, apply) the Users it implies.
    LdapSync(crate::sources::ldap::command::LdapSyncArgs),
    /// Read the scheduling database (ISPyB) and print (or, with --kubeconfig, apply) the
    /// Sessions it implies.
    SessionSync(crate::sources::ispyb::command::SessionSyncArgs),
    /// Create the in-cluster webhook certificate Secret if it is missing, then wait for its
    /// files to be mounted (the chart's init container in `self` certificate mode).
    WebhookSecret(crate::webhooks::bootstrap::WebhookSecretArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => Ok(crate::serve::run(*args)),
        Command::Certs(args) => Ok(crate::certs::run(args)),
        Command::Review(args) => commands::review::run(args),
        Command::Mutate(args) => commands::mutate::run(args),
        Command::Crds(args) => commands::crds::run(args),
        Command::Config(args) => commands::config::run(args),
        Command::LdapSync(args) => Ok(crate::sources::ldap::command::run(args)),
        Command::SessionSync(args) => Ok(crate::sources::ispyb::command::run(args)),
        Command::WebhookSecret(args) => crate::webhooks::bootstrap::run(args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("homestead: {error:#}");
        ExitCode::FAILURE
    })
}
