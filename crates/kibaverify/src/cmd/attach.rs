//! `kibaverify attach`: push a file as a one-layer OCI 1.1 artifact whose subject is an image.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_oci::{Artifact, Reference, ReferrersSource};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use kibaship_cli::input::read_bounded_or_stdin;
use kibaship_cli::terminal::print_line;

/// Largest file `attach` pushes (it is uploaded in one request).
const MAX_ARTIFACT_BYTES: u64 = 256 * 1024 * 1024;

/// Arguments of `kibaverify attach`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image the artifact refers to (tag or digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The artifact manifest's `artifactType` (e.g. application/spdx+json).
    #[arg(long = "artifact-type", value_name = "TYPE")]
    pub artifact_type: String,
    /// The file to attach (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Media type of the layer holding the file.
    #[arg(
        long = "media-type",
        value_name = "TYPE",
        default_value = "application/octet-stream"
    )]
    pub media_type: String,
    /// Manifest annotation `key=value`. Repeatable.
    #[arg(short = 'a', long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Pushes the artifact and prints its digest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = super::sign::parse_annotations(&args.annotations)?;
    let (content, title) = read_artifact(&args.file)?;
    let artifact = Artifact {
        artifact_type: args.artifact_type.clone(),
        layer_media_type: args.media_type.clone(),
        content: content.into(),
        content_digest: None,
        title,
        annotations,
    };
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    let attached = runtime
        .block_on(client.attach_artifact(&reference, &artifact))
        .with_context(|| {
            format!(
                "cannot attach {} to {}",
                args.file.display(),
                args.reference
            )
        })?;
    match args.output {
        OutputFormat::Text => {
            let via = match attached.via {
                ReferrersSource::Api => "the registry indexes it",
                ReferrersSource::FallbackTag => "added to the fallback index",
            };
            eprintln!(
                "attached to {}@{} ({via})",
                reference.name(),
                attached.subject.digest
            );
            print_line(attached.manifest.digest)?;
        }
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "artifact": format!("{}@{}", reference.name(), attached.manifest.digest),
                "digest": attached.manifest.digest,
                "subject": attached.subject,
                "via": attached.via,
            });
            print_line(serde_json::to_string_pretty(&doc)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_artifact(file: &Path) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let content = read_bounded_or_stdin(file, "artifact", MAX_ARTIFACT_BYTES)?;
    let title = (file.as_os_str() != "-")
        .then(|| file.file_name().map(|n| n.to_string_lossy().into_owned()))
        .flatten();
    Ok((content, title))
}
