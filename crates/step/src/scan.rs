//! `kibaship-step scan`: trivy on the built digest, the report judged by the gate (the code of `kibaverify gate`),
//! the verdict and counts as Tekton results, and the report attested onto the image as cosign's vuln predicate.
//!
//! Order matters: the report is read whole and checked (SchemaVersion 2, complete JSON, about the digest scanned)
//! before anything is signed, so a scanner that crashes or writes a truncated report signs nothing
//! ([`ScanError::Scanner`], exit 2). A failed gate is attested first, then reported ([`SCAN_GATE_FAILED`], exit 1),
//! so the registry always records what the scan found.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use kibaship_gate::attestation::{PinnedImage, ScannerInfo, write_vuln_statement};
use kibaship_gate::{GateError, IgnoreFile, Policy, Severity, TrivyGate};
use time::OffsetDateTime;

use crate::failure::{Classify, FailureKind};
use crate::results::{ResultSet, ResultsError};

/// Exit code of a scan whose gate failed (the attestation was written).
pub const SCAN_GATE_FAILED: u8 = 1;
/// Exit code of a scanner that failed or wrote an unusable report (nothing was signed).
pub const SCAN_SCANNER_FAILED: u8 = 2;
/// Largest trivy report read.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;
/// The flags that keep trivy from reaching the network for its DBs and checks (tests, air-gapped clusters).
pub const TRIVY_OFFLINE_FLAGS: [&str; 5] = [
    "--skip-db-update",
    "--skip-java-db-update",
    "--offline-scan",
    "--skip-check-update",
    "--skip-version-check",
];

/// Why a scan did not produce a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// A parameter, the policy or an ignore file is unusable.
    #[error("{0}")]
    Parameter(String),
    /// The policy or an ignore file is invalid.
    #[error("{what}: {source}")]
    Gate {
        what: String,
        #[source]
        source: GateError,
    },
    /// trivy could not run, exited non-zero, or wrote a report that is not a whole trivy report of this image.
    #[error("scanner failed, nothing signed: {0}")]
    Scanner(String),
    /// The results could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl ScanError {
    /// 64 bad parameters, 2 scanner failed, 73 results.
    pub fn exit_code(&self) -> u8 {
        match self {
            ScanError::Scanner(_) => SCAN_SCANNER_FAILED,
            other => other.kind().exit_code(),
        }
    }

    /// The word printed before the message on stderr.
    pub fn label(&self) -> &'static str {
        match self {
            ScanError::Scanner(_) => "scanner error",
            other => match other.kind() {
                FailureKind::Results => "results error",
                _ => "bad parameters",
            },
        }
    }
}

impl Classify for ScanError {
    fn kind(&self) -> FailureKind {
        match self {
            ScanError::Parameter(_) | ScanError::Gate { .. } => FailureKind::BadParameters,
            // Not retryable as such; the exit code (2) is the scan's own.
            ScanError::Scanner(_) => FailureKind::Build,
            ScanError::Results(_) => FailureKind::Results,
        }
    }
}

/// What `scan` needs.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// `registry/repository@sha256:…`: what is scanned and attested.
    pub pinned: String,
    /// The gate policy (YAML) file.
    pub policy: PathBuf,
    /// trivy ignore files (`.trivyignore` or `.trivyignore.yaml`).
    pub ignore_files: Vec<PathBuf>,
    /// The trivy program.
    pub trivy: PathBuf,
    /// trivy's `--cache-dir` (holds its DB).
    pub cache_dir: Option<PathBuf>,
    /// Pass [`TRIVY_OFFLINE_FLAGS`].
    pub offline: bool,
    /// Reach the registry over plain HTTP / without TLS verification (trivy's `--insecure`).
    pub insecure_registry: bool,
    /// Where trivy writes its JSON report (kept for the log and later steps).
    pub report_file: PathBuf,
    /// Vulnerability DB facts for the attestation.
    pub db_uri: Option<String>,
    pub db_version: Option<String>,
    /// When exceptions are judged.
    pub now: OffsetDateTime,
}

/// The gate's decision and the vuln predicate to attest.
#[derive(Debug, Clone)]
pub struct ScanOutcome {
    /// True when the gate passed.
    pub passed: bool,
    /// `critical=N high=N medium=N low=N unknown=N` after exceptions (what the rules judged).
    pub counts: String,
    /// Vulnerabilities in the report, all severities.
    pub reported: u64,
    /// Failing findings, `ID (SEVERITY) in package` for the log.
    pub failing: Vec<String>,
    /// The cosign vuln predicate (`https://cosign.sigstore.dev/attestation/vuln/v1`) over the report.
    pub predicate: Vec<u8>,
}

fn read_text(path: &Path, what: &str) -> Result<String, ScanError> {
    kibaship_cli::input::read_text_bounded(path, what, kibaship_gate::MAX_INPUT_FILE_BYTES)
        .map_err(|e| ScanError::Parameter(e.to_string()))
}

/// Loads the policy and ignore files into a gate (before trivy runs: a bad policy costs no scan).
pub fn load_gate(
    policy: &Path,
    ignore_files: &[PathBuf],
    now: OffsetDateTime,
) -> Result<TrivyGate, ScanError> {
    let name = policy.display().to_string();
    let policy =
        Policy::from_yaml(&read_text(policy, "policy (--policy)")?, &name).map_err(|source| {
            ScanError::Gate {
                what: format!("policy {name}"),
                source,
            }
        })?;
    let mut ignores = Vec::new();
    for path in ignore_files {
        let name = path.display().to_string();
        ignores.push(
            IgnoreFile::parse(&name, &read_text(path, "ignore file (--ignorefile)")?).map_err(
                |source| ScanError::Gate {
                    what: format!("ignore file {name}"),
                    source,
                },
            )?,
        );
    }
    TrivyGate::new(policy, ignores, now).map_err(|source| ScanError::Gate {
        what: format!("policy {name}"),
        source,
    })
}

/// trivy's argv for the scan of `request.pinned`.
pub fn trivy_args(request: &ScanRequest) -> Vec<String> {
    let mut args: Vec<String> = ["image", "--image-src", "remote", "--scanners", "vuln"]
        .iter()
        .map(ToString::to_string)
        .collect();
    args.extend(["--format", "json", "--quiet", "--disable-telemetry"].map(String::from));
    args.push("--output".into());
    args.push(request.report_file.display().to_string());
    if let Some(dir) = &request.cache_dir {
        args.push("--cache-dir".into());
        args.push(dir.display().to_string());
    }
    if request.offline {
        args.extend(TRIVY_OFFLINE_FLAGS.map(String::from));
    }
    if request.insecure_registry {
        args.push("--insecure".into());
    }
    args.push(request.pinned.clone());
    args
}

/// Runs trivy, reads its report and judges it. Nothing is signed here.
pub fn scan(request: &ScanRequest, gate: &TrivyGate) -> Result<ScanOutcome, ScanError> {
    let image = PinnedImage::parse(&request.pinned)
        .map_err(|e| ScanError::Parameter(format!("--image/--digest: {e}")))?;
    // A stale report from an earlier run must not be taken for this one's.
    match std::fs::remove_file(&request.report_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ScanError::Parameter(format!(
                "cannot remove the old report {}: {e}",
                request.report_file.display()
            )));
        }
    }
    let output = Command::new(&request.trivy)
        .args(trivy_args(request))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ScanError::Scanner(format!("cannot run {}: {e}", request.trivy.display())))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        return Err(ScanError::Scanner(format!(
            "trivy exited with {}: {}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        )));
    }
    let report =
        kibaship_cli::input::read_bounded(&request.report_file, "trivy report", MAX_REPORT_BYTES)
            .map_err(|e| ScanError::Scanner(e.to_string()))?;
    judge(&image, &report, gate, request)
}

/// Judges `report` (trivy's JSON) about `image` and builds the vuln predicate.
pub fn judge(
    image: &PinnedImage,
    report: &[u8],
    gate: &TrivyGate,
    request: &ScanRequest,
) -> Result<ScanOutcome, ScanError> {
    let scanner_error = |what: &str, e: &dyn std::fmt::Display| {
        ScanError::Scanner(format!("{what} {}: {e}", request.report_file.display()))
    };
    let mut evaluation = gate.start();
    let header = kibaship_gate::stream::read_report(report, |result| evaluation.add_result(result))
        .map_err(|e| scanner_error("unusable trivy report", &e))?;
    // trivy names the artifact as it was given: the report must be about the digest scanned.
    if header.artifact_name.as_deref() != Some(request.pinned.as_str()) {
        return Err(ScanError::Scanner(format!(
            "the report is about {:?}, not {}",
            header.artifact_name, request.pinned
        )));
    }
    let verdict = evaluation.finish(
        header.artifact_name.as_deref(),
        header.artifact_type.as_deref(),
    );
    let after = verdict.counts.after_exceptions;
    let counts = Severity::DESCENDING
        .iter()
        .map(|s| format!("{}={}", s.as_key(), after.get(*s)))
        .collect::<Vec<_>>()
        .join(" ");
    let failing = verdict
        .failing()
        .map(|f| {
            format!(
                "{} ({}) in {}",
                f.id(),
                f.severity().as_trivy(),
                f.package().unwrap_or(f.target())
            )
        })
        .collect();
    let scanner = ScannerInfo {
        version: None,
        db_uri: request.db_uri.clone(),
        db_version: request.db_version.clone(),
        invocation_uri: None,
    };
    let mut statement = Vec::with_capacity(report.len() + 1024);
    write_vuln_statement(
        &mut statement,
        image,
        report,
        &header,
        &scanner,
        request.now,
    )
    .map_err(|e| scanner_error("cannot wrap the report", &e))?;
    #[derive(serde::Deserialize)]
    struct Statement<'a> {
        #[serde(borrow)]
        predicate: &'a serde_json::value::RawValue,
    }
    let predicate = serde_json::from_slice::<Statement<'_>>(&statement)
        .map_err(|e| scanner_error("cannot wrap the report", &e))?
        .predicate
        .get()
        .as_bytes()
        .to_vec();
    Ok(ScanOutcome {
        passed: verdict.passed,
        counts,
        reported: verdict.counts.reported.total(),
        failing,
        predicate,
    })
}

/// The scan's result files.
#[derive(Debug, Clone, Default)]
pub struct ScanResultPaths {
    pub verdict: Option<PathBuf>,
    pub counts: Option<PathBuf>,
    pub attestations: Option<PathBuf>,
    pub report: Option<PathBuf>,
}

/// Writes `verdict` (`pass`/`fail`), `counts`, `attestations` (one reference per line) and `report` (its path).
pub fn write_results(
    paths: &ScanResultPaths,
    outcome: &ScanOutcome,
    attestations: &[String],
    report_file: &Path,
) -> Result<(), ResultsError> {
    let mut set = ResultSet::new();
    set.add(
        "verdict",
        paths.verdict.as_deref(),
        if outcome.passed { "pass" } else { "fail" },
    )
    .add("counts", paths.counts.as_deref(), outcome.counts.clone())
    .add(
        "report",
        paths.report.as_deref(),
        report_file.display().to_string(),
    );
    // One per line in the file; two spaces stand in for "\n" (escaped in the entrypoint's JSON) in the budget.
    let mut budget = set.clone();
    budget.add(
        "attestations",
        paths.attestations.as_deref(),
        attestations.join("  "),
    );
    if budget.encoded_len() > crate::results::TEKTON_RESULTS_BUDGET {
        return Err(ResultsError::TooLarge {
            needed: budget.encoded_len(),
            largest: "attestations".into(),
        });
    }
    set.write()?;
    if let Some(path) = &paths.attestations {
        std::fs::write(path, attestations.join("\n")).map_err(|source| ResultsError::Write {
            name: "attestations".into(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}
