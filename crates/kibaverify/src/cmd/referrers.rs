//! `kibaverify referrers`: list the OCI 1.1 referrers of an image (API, else the tag-schema fallback).
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_oci::{Reference, ReferrersSource};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use kibaship_cli::terminal::{Escaped, Stdout, print_line};

/// Arguments of `kibaverify referrers`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Only referrers of this artifact type.
    #[arg(long = "artifact-type", value_name = "TYPE")]
    pub artifact_type: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Lists the referrers; exit 0 (also when there are none).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    let referrers = runtime
        .block_on(client.list_referrers(&reference, args.artifact_type.as_deref()))
        .with_context(|| format!("cannot list the referrers of {}", args.reference))?;
    let subject = format!("{}@{}", reference.name(), referrers.subject);
    let source = match referrers.source {
        ReferrersSource::Api => "referrers API",
        ReferrersSource::FallbackTag => "fallback tag",
    };
    match args.output {
        OutputFormat::Text => {
            eprintln!(
                "{} referrer(s) of {subject} (via {source})",
                referrers.descriptors.len()
            );
            let mut out = Stdout::lock();
            for d in &referrers.descriptors {
                out.line(format_args!(
                    "{}\t{}\t{}\t{}",
                    d.digest,
                    Escaped(d.artifact_type.as_deref().unwrap_or("-")),
                    Escaped(&d.media_type),
                    d.size
                ))?;
            }
            out.flush()?;
        }
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "subject": subject,
                "source": referrers.source,
                "referrers": referrers.descriptors,
            });
            print_line(serde_json::to_string_pretty(&doc)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
