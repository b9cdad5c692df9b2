//! The `homestead` command line.

use std::process::ExitCode;

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
    /// Print the User and Session CustomResourceDefinitions as YAML.
    Crds,
    /// Read the LDAP directory and print (or, with --kubeconfig, apply) the Users it implies.
    LdapSync(crate::ldap::command::LdapSyncArgs),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds => match crds_yaml() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("homestead: {e}");
                ExitCode::FAILURE
            }
        },
        Command::LdapSync(args) => crate::ldap::command::run(args),
    }
}

/// Both CRDs as one multi-document YAML text.
pub fn crds_yaml() -> Result<String, serde_saphyr::SerializeError> {
    use kube::CustomResourceExt;
    let mut out = String::new();
    for crd in [
        crate::core::resources::User::crd(),
        crate::core::resources::Session::crd(),
    ] {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}
