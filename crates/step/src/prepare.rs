//! The railpack-prepare step: run `railpack prepare` with the build secrets' names, check what it wrote, emit
//! the `planPath` and `infoPath` results.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::StepError;
use crate::failure::FailureKind;
use crate::plan::{MAX_PLAN_BYTES, RailpackInfo, RailpackPlan};
use crate::results::ResultSet;
use crate::secrets::parse_secret_names;
use crate::workspace::{context_dir, read_limited};

/// Inputs of the prepare step.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    /// The cloned repository (`$(workspaces.output.path)/repo`).
    pub source_dir: PathBuf,
    /// `contextPath`: the app's directory inside the repository.
    pub context_path: String,
    /// `buildSecrets`: names only.
    pub build_secrets: Vec<String>,
    /// The `railpack` program.
    pub railpack: PathBuf,
    /// Where plan.json and info.json go (`$(workspaces.output.path)/railpack`).
    pub out_dir: PathBuf,
    /// `$(results.planPath.path)`.
    pub plan_path_result: Option<PathBuf>,
    /// `$(results.infoPath.path)`.
    pub info_path_result: Option<PathBuf>,
}

/// What prepare produced.
#[derive(Debug, Clone)]
pub struct PrepareReport {
    /// plan.json's path.
    pub plan_file: PathBuf,
    /// info.json's path.
    pub info_file: PathBuf,
    /// `sha256:` digest of plan.json.
    pub plan_digest: String,
    /// Detected providers.
    pub providers: Vec<String>,
}

/// The `railpack prepare` argv (program first). Secrets are passed as `--env NAME=NAME`: Railpack records the
/// names as the plan's secrets; their values never reach prepare.
pub fn railpack_argv(
    railpack: &Path,
    context: &Path,
    plan: &Path,
    info: &Path,
    secrets: &[String],
) -> Vec<String> {
    let mut argv = vec![
        railpack.display().to_string(),
        "prepare".into(),
        context.display().to_string(),
        "--plan-out".into(),
        plan.display().to_string(),
        "--info-out".into(),
        info.display().to_string(),
    ];
    for s in secrets {
        argv.push("--env".into());
        argv.push(format!("{s}={s}"));
    }
    argv
}

/// Runs the prepare step.
pub fn run_prepare(req: &PrepareRequest, log: &mut dyn Write) -> Result<PrepareReport, StepError> {
    let secrets = parse_secret_names(&req.build_secrets)?;
    let names: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
    let context = context_dir(&req.source_dir, &req.context_path)?;
    std::fs::create_dir_all(&req.out_dir).map_err(|source| StepError::ReadInput {
        what: "plan output directory",
        path: req.out_dir.clone(),
        kind: FailureKind::BadParameters,
        source,
    })?;
    let plan_file = req.out_dir.join("plan.json");
    let info_file = req.out_dir.join("info.json");
    // A stale plan from an earlier run must not be mistaken for this run's.
    for f in [&plan_file, &info_file] {
        match std::fs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StepError::ReadInput {
                    what: "old plan file",
                    path: f.clone(),
                    kind: FailureKind::Plan,
                    source,
                });
            }
        }
    }
    // railpack runs in the app directory: a relative program path with a `/` must not be resolved from there.
    let railpack = if req.railpack.components().count() > 1 && req.railpack.is_relative() {
        std::env::current_dir()
            .map(|d| d.join(&req.railpack))
            .unwrap_or_else(|_| req.railpack.clone())
    } else {
        req.railpack.clone()
    };
    let argv = railpack_argv(&railpack, &context, &plan_file, &info_file, &names);
    let _ = writeln!(log, "kibaship-step: running {}", argv.join(" "));
    let status = Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(&context)
        .status()
        .map_err(|e| StepError::Railpack(format!("cannot run {}: {e}", req.railpack.display())))?;
    // info.json explains a failure better than the exit status: read it first when it exists.
    let info_bytes = if info_file.exists() {
        Some(read_limited(
            &info_file,
            MAX_PLAN_BYTES,
            "info.json",
            FailureKind::Plan,
        )?)
    } else {
        None
    };
    if let Some(bytes) = &info_bytes {
        RailpackInfo::parse(bytes)?;
    }
    if !status.success() {
        return Err(StepError::Railpack(format!(
            "railpack exited with {status}"
        )));
    }
    let info = match &info_bytes {
        Some(bytes) => RailpackInfo::parse(bytes)?,
        None => {
            return Err(StepError::Railpack(format!(
                "railpack wrote no {}",
                info_file.display()
            )));
        }
    };
    if !plan_file.exists() {
        return Err(StepError::Railpack(format!(
            "railpack wrote no {}",
            plan_file.display()
        )));
    }
    let plan = RailpackPlan::parse(&read_limited(
        &plan_file,
        MAX_PLAN_BYTES,
        "plan.json",
        FailureKind::Plan,
    )?)?;
    plan.check_build_secrets(&secrets)?;
    let mut results = ResultSet::new();
    results
        .add(
            "planPath",
            req.plan_path_result.as_deref(),
            plan_file.display().to_string(),
        )
        .add(
            "infoPath",
            req.info_path_result.as_deref(),
            info_file.display().to_string(),
        );
    results.write()?;
    let _ = writeln!(
        log,
        "kibaship-step: plan {} ({} steps, providers [{}], secrets [{}])",
        plan.digest(),
        plan.step_names().len(),
        info.detected_providers.join(", "),
        plan.declared_secrets().join(", ")
    );
    Ok(PrepareReport {
        plan_file,
        info_file,
        plan_digest: plan.digest().to_string(),
        providers: info.detected_providers,
    })
}
