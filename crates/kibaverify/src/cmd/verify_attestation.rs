//! Not built yet: this subcommand arrives with its issue.
use std::process::ExitCode;

/// Arguments (none yet).
#[derive(clap::Args)]
pub struct Args {}

/// Refuses to run until the subcommand exists.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this subcommand is not built yet")
}
