//! The offline subcommands, one module each: its clap arguments and its `run` function.
//! Shared here: reading a file or standard input, and loading the configuration and the
//! directory (the embedded examples unless a file is given).

pub mod certs;
pub mod config;
pub mod crds;
pub mod mutate;
pub mod review;

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::embedded;
use homestead_core::config::{Config, ConfigError};
use homestead_core::directory::Directory;

/// `--directory` and `--config` of the offline commands.
#[derive(Debug, clap::Args)]
pub struct Sources {
    /// Directory file (Users, Sessions, dataset PVCs); the embedded example when unset.
    #[arg(long, value_name = "FILE", env = "HOMESTEAD_DIRECTORY")]
    pub directory: Option<PathBuf>,
    /// Configuration file; the embedded example when unset.
    #[arg(long, value_name = "FILE", env = "HOMESTEAD_CONFIG")]
    pub config: Option<PathBuf>,
}

impl Sources {
    /// The configuration, then the directory built with it.
    pub fn load(&self) -> anyhow::Result<(Config, Directory)> {
        let config = load_config(self.config.as_ref())?;
        let directory = load_directory(self.directory.as_ref(), &config)?;
        Ok((config, directory))
    }
}

/// Reads `path`, or standard input when it is `None` or `-`.
pub fn read_input(path: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) if path != Path::new("-") => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            Ok(bytes)
        }
    }
}

/// Reads a text file (UTF-8), naming it in any error.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

/// The configuration in `path`, or the embedded example configuration.
pub fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let (text, origin) = match path {
        Some(path) => (read_text(path)?, path.display().to_string()),
        None => (
            embedded::EXAMPLE_CONFIG.to_owned(),
            format!("embedded {}", embedded::EXAMPLE_CONFIG_PATH),
        ),
    };
    Config::from_yaml(&text).map_err(|e| match e {
        ConfigError::Invalid(problems) => anyhow::anyhow!(
            "configuration {origin} has {} problem(s): {}",
            problems.len(),
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        ConfigError::Parse(message) => {
            anyhow::anyhow!("configuration {origin} cannot be parsed: {message}")
        }
    })
}

/// The directory in `path`, or the embedded example directory, built with `config`.
/// Objects it cannot use are left out and reported on standard error.
pub fn load_directory(path: Option<&PathBuf>, config: &Config) -> anyhow::Result<Directory> {
    let (text, origin) = match path {
        Some(path) => (read_text(path)?, path.display().to_string()),
        None => (
            embedded::EXAMPLE_DIRECTORY.to_owned(),
            format!("embedded {}", embedded::EXAMPLE_DIRECTORY_PATH),
        ),
    };
    let (directory, problems) = Directory::from_yaml(config, &text)
        .with_context(|| format!("cannot load directory {origin}"))?;
    for problem in &problems {
        eprintln!("homestead: warning: directory {origin}: skipped {problem}");
    }
    if directory.user_count() == 0 && directory.namespace_count() == 0 && !problems.is_empty() {
        bail!("directory {origin} has no usable User or Session");
    }
    Ok(directory)
}
