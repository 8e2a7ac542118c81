//! `kibaverify digest`: resolve many image references to digests concurrently, in one process.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use kibaship_oci::{ClientConfig, Platform, Reference, RegistryClient};

use kibaship_cli::input::read_bounded_or_stdin;
use kibaship_cli::terminal::{Escaped, Stdout};

/// Registry connection flags shared by `digest`, `referrers` and `attach`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryFlags {
    /// Reach this registry (HOST:PORT, as written in references) over plain HTTP. Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// PEM bundle of CA certificates trusted in addition to the system roots.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Give up on the registry after this long, retries included (as cosign: 30s, 3m, 1m30s; 0: no limit).
    #[arg(long, value_name = "DURATION", default_value = "3m", value_parser = kibaship_oci::duration::parse_duration)]
    pub timeout: std::time::Duration,
}

impl RegistryFlags {
    /// The client configuration these flags describe (credentials from docker `config.json`); the
    /// `--timeout` budget starts when the client is built.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            insecure_registries: self.insecure_registries.clone(),
            ca_file: self.ca_file.clone(),
            timeout: (!self.timeout.is_zero()).then_some(self.timeout),
            ..ClientConfig::default()
        }
    }

    /// Builds the one client a command uses.
    pub fn client(&self) -> anyhow::Result<RegistryClient> {
        RegistryClient::new(self.client_config()).context("cannot set up the registry client")
    }
}

/// The single-threaded async runtime a registry command blocks on.
pub fn current_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Output format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Arguments of `kibaverify digest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image references (`registry/repo:tag`, `repo@sha256:...`).
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
    /// Read more references from a file, one per line (`-` for stdin; blank lines and `#` comments skipped).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// For an index, resolve the manifest of this platform (`os/arch[/variant]`, e.g. linux/arm64).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// References resolved at the same time.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(serde::Serialize)]
struct Outcome {
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    normalized: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(rename = "mediaType", skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Resolves every reference; exit 0 when all resolved, 2 otherwise.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut inputs = args.references.clone();
    if let Some(file) = &args.file {
        inputs.extend(read_reference_list(file)?);
    }
    if inputs.is_empty() {
        anyhow::bail!("no references given (pass REF arguments or --file)");
    }
    let mut config = args.registry.client_config();
    config.max_concurrent_requests_per_registry = config
        .max_concurrent_requests_per_registry
        .max(args.concurrency as usize);
    config.max_idle_connections_per_host = config
        .max_idle_connections_per_host
        .max(args.concurrency as usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(resolve_all(inputs, config, args))
}

async fn resolve_all(
    inputs: Vec<String>,
    config: ClientConfig,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let client = RegistryClient::new(config).context("cannot set up the registry client")?;
    let limiter = Arc::new(tokio::sync::Semaphore::new(args.concurrency as usize));
    let platform = args.platform.clone().map(Arc::new);
    let handles: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let client = client.clone();
            let limiter = limiter.clone();
            let platform = platform.clone();
            tokio::spawn(async move {
                let _permit = limiter.acquire_owned().await;
                resolve_one(&client, input, platform.as_deref()).await
            })
        })
        .collect();
    let mut out = Stdout::lock();
    let mut outcomes = Vec::new();
    let mut failures = 0usize;
    for handle in handles {
        let outcome = handle.await.context("a resolution task failed")?;
        if outcome.error.is_some() {
            failures += 1;
        }
        if args.output == OutputFormat::Text {
            match (&outcome.digest, &outcome.error) {
                (Some(digest), _) => {
                    let name = outcome
                        .reference
                        .split('@')
                        .next()
                        .unwrap_or(&outcome.reference);
                    out.line(format_args!("{}@{digest}", Escaped(name)))?;
                }
                (None, Some(error)) => {
                    out.flush()?;
                    eprintln!(
                        "kibaverify: {}: {}",
                        Escaped(&outcome.reference),
                        Escaped(&error.to_string())
                    );
                }
                (None, None) => {}
            }
        } else {
            outcomes.push(outcome);
        }
    }
    if args.output == OutputFormat::Json {
        out.line(serde_json::to_string_pretty(&outcomes)?)?;
    }
    out.flush()?;
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn resolve_one(
    client: &RegistryClient,
    input: String,
    platform: Option<&Platform>,
) -> Outcome {
    let reference = match Reference::parse(&input) {
        Ok(r) => r,
        Err(e) => {
            return Outcome {
                reference: input,
                normalized: None,
                digest: None,
                media_type: None,
                error: Some(e.to_string()),
            };
        }
    };
    match client.resolve_digest(&reference, platform).await {
        Ok(resolved) => Outcome {
            reference: input,
            normalized: Some(reference.to_string()),
            digest: Some(resolved.digest.to_string()),
            media_type: resolved.media_type,
            error: None,
        },
        Err(e) => Outcome {
            reference: input,
            normalized: Some(reference.to_string()),
            digest: None,
            media_type: None,
            error: Some(format!("{e}{}", crate::registry_hint(&e))),
        },
    }
}

/// A list of references: one a line, `#` comments; at most 64 MiB.
fn read_reference_list(file: &Path) -> anyhow::Result<Vec<String>> {
    let bytes = read_bounded_or_stdin(file, "reference list", 64 * 1024 * 1024)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "reference list {} is not UTF-8 text: {}",
            file.display(),
            e.utf8_error()
        )
    })?;
    let lines = text.lines();
    Ok(lines
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect())
}
