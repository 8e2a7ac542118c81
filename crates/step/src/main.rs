//! `kibaship-step`: the program the Tekton railpack tasks run.
use clap::Parser;

/// Tekton step driver for the railpack-prepare and railpack-build tasks.
#[derive(Parser)]
#[command(name = "kibaship-step", version)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
}
