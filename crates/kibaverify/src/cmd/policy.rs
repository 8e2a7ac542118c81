//! `kibaverify policy check FILE...`: validate admission policy files (docs/policy.md) as the webhook would load
//! them, and warn about exceptions that have expired or expire soon.
//!
//! Exit codes: 0 every file is valid (warnings allowed), 1 a file has errors, 2 a file could not be read or a flag
//! is wrong.
use std::path::PathBuf;
use std::process::ExitCode;

use kibaship_cli::terminal::{Escaped, Stdout};
use kibaship_policy::{MAX_POLICY_BYTES, PolicyError, PolicySet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::digest::OutputFormat;

/// An exception that expires within this many days draws a warning.
pub const EXPIRY_WARNING_DAYS: i64 = 7;

/// Arguments of `kibaverify policy`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do with admission policies.
#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Check admission policy files: print `FILE: ok (...)` or every error as `file:line:column: code: message`.
    Check(CheckArgs),
}

/// Arguments of `kibaverify policy check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Admission policy files (YAML, `kind: AdmissionPolicy`).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Output format: text lines, or one JSON document with errors and warnings as objects.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Judge exception expiry at this RFC 3339 time instead of now (reproducible runs).
    #[arg(long, value_name = "RFC3339")]
    pub now: Option<String>,
}

/// A warning about a valid file: an exception that expired or expires within [`EXPIRY_WARNING_DAYS`].
#[derive(serde::Serialize, Debug)]
struct Warning {
    origin: String,
    line: usize,
    column: usize,
    /// `exception-expired` or `exception-expiring`.
    code: &'static str,
    message: String,
}

/// The outcome for one file.
#[derive(serde::Serialize, Debug)]
struct FileReport {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    policies: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exceptions: Option<usize>,
    errors: Vec<PolicyError>,
    warnings: Vec<Warning>,
    /// Why the file could not be read (then nothing else is known about it).
    #[serde(rename = "readError", skip_serializing_if = "Option::is_none")]
    read_error: Option<String>,
}

#[derive(serde::Serialize, Debug)]
struct Report {
    files: Vec<FileReport>,
}

/// Runs `kibaverify policy ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let now = match &args.now {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| anyhow::anyhow!("--now `{text}` is not an RFC 3339 time ({e})"))?,
        None => OffsetDateTime::now_utc(),
    }
    .unix_timestamp();
    let reports: Vec<FileReport> = args
        .files
        .iter()
        .map(|path| check_file(path, now))
        .collect();
    let mut out = Stdout::lock();
    match args.output {
        OutputFormat::Json => {
            let report = Report { files: reports };
            out.line(serde_json::to_string_pretty(&report)?)?;
            out.flush()?;
            return Ok(exit_code(&report.files));
        }
        OutputFormat::Text => {
            for report in &reports {
                if let Some(error) = &report.read_error {
                    out.flush()?;
                    eprintln!("kibaverify: error: {}", Escaped(error));
                    continue;
                }
                for error in &report.errors {
                    out.line(Escaped(&error.to_string()))?;
                }
                for warning in &report.warnings {
                    out.line(format_args!(
                        "{}:{}:{}: warning: {}: {}",
                        Escaped(&warning.origin),
                        warning.line,
                        warning.column,
                        warning.code,
                        Escaped(&warning.message)
                    ))?;
                }
                if report.valid {
                    let policies = report.policies.unwrap_or_default();
                    let exceptions = report.exceptions.unwrap_or_default();
                    out.line(format_args!(
                        "{}: ok ({policies} {}, {exceptions} {})",
                        Escaped(&report.file),
                        if policies == 1 { "policy" } else { "policies" },
                        if exceptions == 1 {
                            "exception"
                        } else {
                            "exceptions"
                        },
                    ))?;
                }
            }
        }
    }
    out.flush()?;
    Ok(exit_code(&reports))
}

/// 2 when a file could not be read, else 1 when one has errors, else 0.
fn exit_code(reports: &[FileReport]) -> ExitCode {
    if reports.iter().any(|r| r.read_error.is_some()) {
        ExitCode::from(2)
    } else if reports.iter().any(|r| !r.valid) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_file(path: &std::path::Path, now: i64) -> FileReport {
    let file = path.display().to_string();
    let mut report = FileReport {
        file: file.clone(),
        valid: false,
        policies: None,
        exceptions: None,
        errors: Vec::new(),
        warnings: Vec::new(),
        read_error: None,
    };
    let text = match kibaship_cli::input::read_text_bounded(
        path,
        "admission policy",
        MAX_POLICY_BYTES as u64,
    ) {
        Ok(text) => text,
        Err(e) => {
            report.read_error = Some(e.to_string());
            return report;
        }
    };
    match PolicySet::parse(&file, &text) {
        Ok(set) => {
            report.valid = true;
            report.policies = Some(set.policies().len());
            report.exceptions = Some(set.exceptions().len());
            report.warnings = expiry_warnings(&set, now);
        }
        Err(errors) => report.errors = errors.0,
    }
    report
}

/// Exceptions that no longer apply, or stop applying within [`EXPIRY_WARNING_DAYS`] of `now`.
fn expiry_warnings(set: &PolicySet, now: i64) -> Vec<Warning> {
    let soon = EXPIRY_WARNING_DAYS * 86_400;
    let mut warnings = Vec::new();
    for (i, exception) in set.exceptions().iter().enumerate() {
        let left = exception.expires().saturating_sub(now);
        let (code, when) = if exception.is_expired(now) {
            (
                "exception-expired",
                format!(
                    "expired at {}; it no longer applies",
                    exception.expires_rfc3339()
                ),
            )
        } else if left < soon {
            // Whole days left, rounded up: 6 days and 1 hour is "in 7 days".
            let within = match left.saturating_add(86_399) / 86_400 {
                1 => "within a day".to_owned(),
                n => format!("in {n} days"),
            };
            (
                "exception-expiring",
                format!("expires {within}, at {}", exception.expires_rfc3339()),
            )
        } else {
            continue;
        };
        warnings.push(Warning {
            origin: set.origin().to_owned(),
            line: exception.line(),
            column: exception.column(),
            code,
            message: format!(
                "exceptions[{i}] (owner {}, reason {:?}) {when}",
                exception.owner(),
                exception.reason()
            ),
        });
    }
    warnings
}
