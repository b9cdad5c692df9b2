//! Where the configuration and the directory come from — one rule for every command
//! (`serve`, `review`, `mutate`, `ldap-sync`):
//!
//! - the configuration is `--config FILE` (env `HOMESTEAD_CONFIG`), else the built-in
//!   defaults (`Config::default()`). `manifests/examples/config.yaml` documents every field;
//!   it is never read implicitly;
//! - the directory is `--directory FILE` (env `HOMESTEAD_DIRECTORY`), else the example
//!   directory compiled in (`manifests/examples/directory.yaml`) for the offline commands
//!   and `serve --dev`, or the cluster's objects for `serve`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::embedded;
use homestead_core::config::{Config, ConfigError};
use homestead_core::directory::{Directory, DirectoryProblem};

/// `--directory` and `--config` of the offline commands.
#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Directory file (Users, Sessions, dataset PVCs); the embedded example when unset.
    #[arg(long, value_name = "FILE", env = "HOMESTEAD_DIRECTORY")]
    pub directory: Option<PathBuf>,
    /// Configuration file; the built-in defaults when unset.
    #[arg(long, value_name = "FILE", env = "HOMESTEAD_CONFIG")]
    pub config: Option<PathBuf>,
}

impl InputArgs {
    /// The configuration, then the directory built with it; objects the directory had to
    /// leave out are reported on standard error.
    pub fn load(&self) -> anyhow::Result<(Config, Directory)> {
        let config = load_config(self.config.as_deref())?;
        let loaded = load_directory(self.directory.as_deref(), &config)?;
        for problem in &loaded.skipped {
            eprintln!(
                "homestead: warning: directory {}: skipped {problem}",
                loaded.origin
            );
        }
        Ok((config, loaded.directory))
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

/// The configuration in `path`, or the built-in defaults.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    let origin = path.display();
    Config::from_yaml(&read_text(path)?).map_err(|e| match e {
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

/// A directory as loaded, with what it had to leave out.
#[derive(Debug)]
pub struct LoadedDirectory {
    /// The directory.
    pub directory: Directory,
    /// Where it came from, for messages.
    pub origin: String,
    /// Objects left out, each with the reason.
    pub skipped: Vec<DirectoryProblem>,
}

/// The directory in `path`, or the example directory compiled in, built with `config`.
/// A directory in which nothing is usable is refused.
pub fn load_directory(path: Option<&Path>, config: &Config) -> anyhow::Result<LoadedDirectory> {
    let (text, origin) = match path {
        Some(path) => (read_text(path)?, path.display().to_string()),
        None => (
            embedded::EXAMPLE_DIRECTORY.to_owned(),
            format!("embedded {}", embedded::EXAMPLE_DIRECTORY_PATH),
        ),
    };
    let (directory, skipped) = Directory::from_yaml(config, &text)
        .with_context(|| format!("cannot load directory {origin}"))?;
    if directory.user_count() == 0 && directory.namespace_count() == 0 && !skipped.is_empty() {
        bail!("directory {origin} has no usable User or Session");
    }
    Ok(LoadedDirectory {
        directory,
        origin,
        skipped,
    })
}
