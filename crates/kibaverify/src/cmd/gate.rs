//! `kibaverify gate`: judge a trivy JSON report against a gate policy.
//!
//! Exit codes: 0 the gate passed, 1 it failed, 2 bad input (unreadable report, policy or
//! ignore file; an exception without a required expiry; ...).
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use kibaship_gate::attestation::{PinnedImage, ScannerInfo, write_vuln_statement};
use kibaship_gate::{GateError, IgnoreFile, Policy, TrivyGate, render};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Output format of the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people (colour on a terminal).
    Table,
    /// The JSON verdict (stable interface, see docs/gate.md).
    Json,
    /// JUnit XML, one test case per finding.
    Junit,
    /// SARIF 2.1.0 for code-scanning UIs.
    Sarif,
}

/// When to colour the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Colour {
    /// When stdout is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Gate an image on its trivy vulnerability report.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trivy report (`trivy image --format json`, SchemaVersion 2); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// The gate policy (YAML); see policies/gate/ for examples.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// A trivy ignore file: `.trivyignore` (line format) or `.trivyignore.yaml`; repeatable.
    #[arg(long = "ignorefile", value_name = "FILE")]
    pub ignorefiles: Vec<PathBuf>,
    /// Output format on stdout (or in `--output`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the `--format` output to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the JSON verdict to FILE.
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Also write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit_out: Option<PathBuf>,
    /// Also write SARIF 2.1.0 to FILE.
    #[arg(long, value_name = "FILE")]
    pub sarif_out: Option<PathBuf>,
    /// The scanned image, pinned by digest (`repo@sha256:...`): the attestation subject.
    #[arg(long, value_name = "REF@DIGEST")]
    pub image: Option<String>,
    /// Write an in-toto statement with the cosign vuln predicate (needs `--image`).
    #[arg(long, value_name = "FILE", requires = "image")]
    pub attestation_out: Option<PathBuf>,
    /// Scanner version for the attestation (default: the report's `Trivy.Version`).
    #[arg(long)]
    pub scanner_version: Option<String>,
    /// Vulnerability DB URI for the attestation.
    #[arg(long)]
    pub db_uri: Option<String>,
    /// Vulnerability DB version for the attestation.
    #[arg(long)]
    pub db_version: Option<String>,
    /// Colour the table.
    #[arg(long, value_enum, default_value_t = Colour::Auto)]
    pub colour: Colour,
    /// Judge exception expiry at this RFC 3339 time instead of now (reproducible runs).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
    /// Refuse reports larger than this many bytes.
    #[arg(long, default_value_t = 4 << 30)]
    pub max_report_bytes: u64,
}

/// Reads a policy or ignore file, refusing one above the gate's cap before parsing it.
fn read_text(path: &Path, what: &str) -> anyhow::Result<String> {
    Ok(kibaship_cli::input::read_text_bounded(
        path,
        what,
        kibaship_gate::MAX_INPUT_FILE_BYTES,
    )?)
}

fn read_report(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .context("cannot read the report from stdin")?;
        if bytes.len() as u64 > limit {
            bail!("report on stdin is larger than --max-report-bytes {limit}");
        }
        return Ok(bytes);
    }
    let mut bytes = Vec::new();
    open_report(path, limit)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read report {}", path.display()))?;
    Ok(bytes)
}

/// Opens the report file, refusing one larger than `limit` bytes.
fn open_report(path: &Path, limit: u64) -> anyhow::Result<std::fs::File> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read report {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot read report {}", path.display()))?
        .len();
    if size > limit {
        bail!(
            "report {} is {size} bytes, larger than --max-report-bytes {limit}",
            path.display()
        );
    }
    Ok(file)
}

fn stream_report(
    path: &Path,
    limit: u64,
    on_result: impl FnMut(&kibaship_gate::ScanResult<'_>),
) -> anyhow::Result<kibaship_gate::stream::ReportHeader> {
    if path == Path::new("-") {
        let stdin = std::io::stdin().lock().take(limit);
        return Ok(kibaship_gate::stream::read_report(stdin, on_result)?);
    }
    let file = open_report(path, limit)?;
    Ok(kibaship_gate::stream::read_report(file, on_result)?)
}

fn write_to(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the gate; returns 0 (pass) or 1 (fail); errors are bad input (exit 2).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .with_context(|| format!("--now `{text}` is not an RFC 3339 time"))?,
        None => OffsetDateTime::now_utc(),
    };
    let policy_name = args.policy.display().to_string();
    let policy =
        Policy::from_yaml(&read_text(&args.policy, "policy")?, &policy_name).map_err(|error| {
            // A YAML error names the file itself; the others get it here.
            match error {
                GateError::PolicySyntax { .. } => anyhow::Error::from(error),
                other => anyhow::Error::from(other).context(format!("policy {policy_name}")),
            }
        })?;
    let mut ignore_files = Vec::new();
    for path in &args.ignorefiles {
        let name = path.display().to_string();
        ignore_files.push(IgnoreFile::parse(&name, &read_text(path, "ignore file")?)?);
    }
    let image = args.image.as_deref().map(PinnedImage::parse).transpose()?;
    let gate = TrivyGate::new(policy, ignore_files, now)?;

    // With an attestation the report is embedded byte for byte, so it is held in memory (once:
    // the gate streams over those bytes and the statement is written from them straight to the
    // file); otherwise it is streamed from the file one result at a time (memory bounded by the
    // largest result).
    let mut held: Option<Vec<u8>> = None;
    let mut evaluation = gate.start();
    let header = if args.attestation_out.is_some() {
        let bytes = held.insert(read_report(&args.report, args.max_report_bytes)?);
        kibaship_gate::stream::read_report(bytes.as_slice(), |result| evaluation.add_result(result))
            .with_context(|| format!("report {}", args.report.display()))?
    } else {
        stream_report(&args.report, args.max_report_bytes, |result| {
            evaluation.add_result(result)
        })
        .with_context(|| format!("report {}", args.report.display()))?
    };
    let verdict = evaluation.finish(
        header.artifact_name.as_deref(),
        header.artifact_type.as_deref(),
    );

    let colour = match args.colour {
        Colour::Always => true,
        Colour::Never => false,
        Colour::Auto => {
            args.output.is_none()
                && std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    };
    let main_output = match args.format {
        Format::Table => render::verdict_table(&verdict, colour),
        Format::Json => render::verdict_json(&verdict)?,
        Format::Junit => render::verdict_junit(&verdict),
        Format::Sarif => render::verdict_sarif(&verdict)?,
    };
    match &args.output {
        Some(path) => write_to(path, main_output.as_bytes())?,
        None => {
            let mut stdout = std::io::stdout().lock();
            if let Err(err) = stdout
                .write_all(main_output.as_bytes())
                .and_then(|()| stdout.flush())
            {
                // A closed pipe (`| head`) is not an error of the gate.
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(err).context("cannot write to stdout");
                }
            }
        }
    }
    if let Some(path) = &args.json_out {
        write_to(path, render::verdict_json(&verdict)?.as_bytes())?;
    }
    if let Some(path) = &args.junit_out {
        write_to(path, render::verdict_junit(&verdict).as_bytes())?;
    }
    if let Some(path) = &args.sarif_out {
        write_to(path, render::verdict_sarif(&verdict)?.as_bytes())?;
    }
    if let (Some(path), Some(image), Some(bytes)) = (&args.attestation_out, &image, &held) {
        let scanner = ScannerInfo {
            version: args.scanner_version.clone(),
            db_uri: args.db_uri.clone(),
            db_version: args.db_version.clone(),
            invocation_uri: None,
        };
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        write_vuln_statement(&mut out, image, bytes, &header, &scanner, now)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if verdict.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
