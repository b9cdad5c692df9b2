//! `homestead config check FILE`: every problem of a configuration file, with its path.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use homestead_core::config::{Config, ConfigError};

/// Arguments of `homestead config`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// What to do with a configuration.
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Subcommands of `homestead config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: print every problem with its path and exit 1 if there
    /// is any; print "ok" otherwise.
    Check(CheckArgs),
}

/// Arguments of `homestead config check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file (YAML).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// What a check found, one line each; empty when the text is a usable configuration.
pub fn check(text: &str) -> Vec<String> {
    match Config::from_yaml(text) {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid(problems)) => problems.iter().map(ToString::to_string).collect(),
        Err(parse @ ConfigError::Parse(_)) => vec![parse.to_string()],
    }
}

/// Runs `homestead config ...`.
pub fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ConfigCommand::Check(check_args) => {
            let text = super::inputs::read_text(&check_args.file)?;
            let problems = check(&text);
            if problems.is_empty() {
                println!("ok");
                return Ok(ExitCode::SUCCESS);
            }
            for problem in &problems {
                println!("{problem}");
            }
            eprintln!(
                "homestead: {} has {} problem(s)",
                check_args.file.display(),
                problems.len()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_problem_and_parse_errors() {
        assert!(check(crate::embedded::EXAMPLE_CONFIG).is_empty());
        let lines = check("storage:\n  private:\n    pathTemplate: /x/{usr}\n    size: lots\n");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].starts_with("storage.private.pathTemplate: unknown placeholder {usr}"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("storage.private.size:"), "{lines:?}");
        let lines = check("storage: [1, 2\n");
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("not valid YAML"), "{lines:?}");
    }
}
