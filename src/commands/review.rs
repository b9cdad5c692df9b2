//! `homestead review`: an AdmissionReview in, the webhook's AdmissionReview response out,
//! offline (configuration and directory: see [`super::inputs`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Verdict, Webhook, review};

/// Arguments of `homestead review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Which webhook answers: `mutate` or `validate`.
    #[arg(long, value_name = "mutate|validate")]
    pub webhook: Webhook,
    /// Where the configuration and the directory come from.
    #[command(flatten)]
    pub inputs: super::inputs::InputArgs,
    /// The AdmissionReview (JSON); standard input when unset or `-`.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `homestead review`: exit 0 whenever a response was produced, allowed or not.
pub fn run(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let (config, directory) = args.inputs.load()?;
    let body = super::inputs::read_input(args.file.as_deref())?;
    let pods = PodUsers::default();
    let admission = Admission {
        config: &config,
        directory: &directory,
        pods: &pods,
    };
    let reviewed = review(args.webhook, &body, &admission).context("cannot review the input")?;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&reviewed.body)
        .and_then(|()| stdout.write_all(b"\n"))
        .context("cannot write the response")?;
    if let Verdict::Denied { reason, .. } = &reviewed.summary.verdict {
        eprintln!("homestead: {} denied ({reason})", args.webhook);
    }
    Ok(ExitCode::SUCCESS)
}
