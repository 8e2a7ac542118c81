//! The railpack-build step: dedupe lookup, `buildctl build`, digest from the metadata file, confirmation on the
//! registry, dedupe tag, results.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use crate::buildctl::{
    BuildMetadata, BuildctlInvocation, CacheTarget, parse_build_arg, parse_platforms,
    validate_railpack_version,
};
use crate::error::StepError;
use crate::failure::FailureKind;
use crate::image::{
    AnnotationInput, BUILD_KEY_ANNOTATION, ImageName, annotations, validate_commit,
};
use crate::key::{BuildKey, BuildKeyInput, build_key};
use crate::plan::{MAX_PLAN_BYTES, RailpackInfo, RailpackPlan};
use crate::registry::{
    FetchedManifest, ManifestStore, RegistryError, find_sbom_ref, manifest_annotations,
};
use crate::results::ResultSet;
use crate::secrets::{SecretName, parse_secret_names, secrets_hash};
use crate::workspace::{context_dir, read_limited};

/// Largest metadata file read.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Where the build step writes its results (`$(results.<name>.path)`); `None` = not requested.
#[derive(Debug, Clone, Default)]
pub struct BuildResultPaths {
    pub image: Option<PathBuf>,
    pub digest: Option<PathBuf>,
    pub sbom_ref: Option<PathBuf>,
    pub build_duration: Option<PathBuf>,
}

/// Inputs of the build step.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The cloned repository (`$(workspaces.output.path)/repo`).
    pub source_dir: PathBuf,
    /// `contextPath`.
    pub context_path: String,
    /// plan.json from prepare.
    pub plan_file: PathBuf,
    /// info.json from prepare.
    pub info_file: Option<PathBuf>,
    /// `imageRegistry`.
    pub image_registry: String,
    /// `imageRepository`.
    pub image_repository: String,
    /// `imageTag` (empty: the commit).
    pub image_tag: String,
    /// Git commit SHA of the source.
    pub revision: String,
    /// Source repository URL (for `org.opencontainers.image.source`).
    pub source_url: String,
    /// RFC 3339 creation time for `org.opencontainers.image.created`.
    pub created: String,
    /// `authors`: `org.opencontainers.image.authors` (empty: left out).
    pub authors: String,
    /// `platforms`.
    pub platforms: String,
    /// `cacheKey`.
    pub cache_key: String,
    /// `railpackVersion`.
    pub railpack_version: String,
    /// `buildSecrets`.
    pub build_secrets: Vec<String>,
    /// `additionalBuildArgs`.
    pub additional_build_args: Vec<String>,
    /// Where secret values are mounted (`/secrets`).
    pub secrets_dir: PathBuf,
    /// The `build-cache` workspace, when bound.
    pub build_cache_dir: Option<PathBuf>,
    /// `buildctl` program.
    pub buildctl: PathBuf,
    /// BuildKit address.
    pub buildkit_host: String,
    /// Ask BuildKit for an SBOM attestation.
    pub sbom: bool,
    /// Plain-HTTP/unverified registry (local tests only).
    pub insecure_registry: bool,
    /// Skip the build when the registry already has one with the same key.
    pub dedupe: bool,
    /// Where buildctl writes its metadata file.
    pub metadata_file: PathBuf,
    /// Result files.
    pub results: BuildResultPaths,
}

/// How the image came to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// buildctl built and pushed it.
    Built,
    /// The registry already had a build with the same key: nothing was built.
    Reused,
}

/// What the build step produced.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub outcome: BuildOutcome,
    pub image: ImageName,
    pub digest: String,
    pub sbom_ref: Option<String>,
    pub build_key: BuildKey,
    pub duration_secs: f64,
    /// The buildctl argv that ran (no secret values in it), when one ran.
    pub buildctl_argv: Option<Vec<String>>,
}

struct Validated {
    image: ImageName,
    platform: String,
    secrets: Vec<SecretName>,
    context: PathBuf,
    plan: RailpackPlan,
    info: Option<RailpackInfo>,
    secrets_hash: String,
    key: BuildKey,
}

fn validate(req: &BuildRequest) -> Result<Validated, StepError> {
    validate_commit(&req.revision)?;
    let tag = if req.image_tag.is_empty() {
        req.revision.as_str()
    } else {
        req.image_tag.as_str()
    };
    let image = ImageName::new(&req.image_registry, &req.image_repository, tag)?;
    let platforms = parse_platforms(&req.platforms)?;
    validate_railpack_version(&req.railpack_version)?;
    for arg in &req.additional_build_args {
        parse_build_arg(arg)?;
    }
    if req.cache_key.chars().any(char::is_control) {
        return Err(crate::buildctl::BuildParamError::CacheKey(req.cache_key.clone()).into());
    }
    if req.created.is_empty() || req.created.contains(['\n', '\0']) {
        return Err(StepError::BadParameter(format!(
            "created time {:?} is not a timestamp",
            req.created
        )));
    }
    crate::image::check_authors(&req.authors).map_err(StepError::BadParameter)?;
    let secrets = parse_secret_names(&req.build_secrets)?;
    let context = context_dir(&req.source_dir, &req.context_path)?;
    let plan = RailpackPlan::parse(&read_limited(
        &req.plan_file,
        MAX_PLAN_BYTES,
        "plan.json",
        FailureKind::Plan,
    )?)?;
    plan.check_build_secrets(&secrets)?;
    let info = match &req.info_file {
        Some(p) => Some(RailpackInfo::parse(&read_limited(
            p,
            MAX_PLAN_BYTES,
            "info.json",
            FailureKind::Plan,
        )?)?),
        None => None,
    };
    for name in &secrets {
        let path = req.secrets_dir.join(name.as_str());
        if !path.is_file() {
            return Err(StepError::BadParameter(format!(
                "build secret {name} is not mounted at {} (add the key {name} to the build-secret bundle)",
                path.display()
            )));
        }
    }
    let secrets_hash = secrets_hash(&req.secrets_dir)?.unwrap_or_default();
    let key = build_key(&BuildKeyInput {
        commit: &req.revision,
        plan_digest: plan.digest(),
        secrets_hash: &secrets_hash,
        platforms: platforms.clone(),
        railpack_version: &req.railpack_version,
        context_path: &req.context_path,
        build_args: &req.additional_build_args,
    });
    let platform = platforms.into_iter().next().unwrap_or_default();
    Ok(Validated {
        image,
        platform,
        secrets,
        context,
        plan,
        info,
        secrets_hash,
        key,
    })
}

/// Fetches `reference` and requires it to exist.
async fn fetch_required<S: ManifestStore>(
    store: &S,
    image: &ImageName,
    reference: &str,
) -> Result<FetchedManifest, RegistryError> {
    store
        .fetch(image, reference)
        .await?
        .ok_or_else(|| RegistryError::Missing {
            reference: image.to_string(),
            digest: reference.to_string(),
        })
}

/// The manifest under the dedupe tag, when it records exactly this key.
async fn dedupe_lookup<S: ManifestStore>(
    store: &S,
    image: &ImageName,
    key: &BuildKey,
    log: &mut dyn Write,
) -> Result<Option<FetchedManifest>, StepError> {
    let tag = key.dedupe_tag();
    let Some(found) = store.fetch(image, &tag).await? else {
        let _ = writeln!(
            log,
            "kibaship-step: dedupe: no earlier build with key {} (tag {tag})",
            key.as_str()
        );
        return Ok(None);
    };
    let recorded =
        manifest_annotations(&found.bytes).map_err(|problem| RegistryError::BadManifest {
            reference: format!("{}:{tag}", image.repository()),
            problem,
        })?;
    if recorded.get(BUILD_KEY_ANNOTATION).map(String::as_str) != Some(key.as_str()) {
        let _ = writeln!(
            log,
            "kibaship-step: dedupe: tag {tag} exists but does not record key {} in {BUILD_KEY_ANNOTATION}: building",
            key.as_str()
        );
        return Ok(None);
    }
    Ok(Some(found))
}

fn write_results(req: &BuildRequest, report: &BuildReport) -> Result<(), StepError> {
    let mut set = ResultSet::new();
    set.add(
        "image",
        req.results.image.as_deref(),
        report.image.to_string(),
    )
    .add(
        "digest",
        req.results.digest.as_deref(),
        report.digest.clone(),
    )
    .add(
        "sbomRef",
        req.results.sbom_ref.as_deref(),
        report.sbom_ref.clone().unwrap_or_default(),
    )
    .add(
        "buildDuration",
        req.results.build_duration.as_deref(),
        format!("{:.3}s", report.duration_secs),
    );
    set.write()?;
    Ok(())
}

/// Runs the build step.
pub async fn run_build<S: ManifestStore>(
    req: &BuildRequest,
    store: &S,
    log: &mut dyn Write,
) -> Result<BuildReport, StepError> {
    let started = Instant::now();
    let v = validate(req)?;
    let _ = writeln!(
        log,
        "kibaship-step: image {} build key {}",
        v.image,
        v.key.as_str()
    );

    let existing = if req.dedupe {
        dedupe_lookup(store, &v.image, &v.key, log).await?
    } else {
        None
    };
    if let Some(existing) = existing {
        // Make the requested tag point at the earlier build too (it may have been built under another tag).
        if store.resolve(&v.image, v.image.tag()).await?.as_deref()
            != Some(existing.digest.as_str())
        {
            store.push_tag(&v.image, v.image.tag(), &existing).await?;
        }
        let sbom_ref = find_sbom_ref(store, &v.image, &existing).await?;
        let _ = writeln!(
            log,
            "kibaship-step: dedupe: skip build, {} already holds {} for this key",
            v.key.dedupe_tag(),
            existing.digest
        );
        let report = BuildReport {
            outcome: BuildOutcome::Reused,
            image: v.image,
            digest: existing.digest,
            sbom_ref,
            build_key: v.key,
            duration_secs: started.elapsed().as_secs_f64(),
            buildctl_argv: None,
        };
        write_results(req, &report)?;
        return Ok(report);
    }

    let annotations: BTreeMap<String, String> = annotations(&AnnotationInput {
        source_url: &req.source_url,
        revision: &req.revision,
        created: &req.created,
        authors: &req.authors,
        build_key: v.key.as_str(),
        info: v.info.as_ref(),
    });
    let cache = match &req.build_cache_dir {
        Some(dir) => {
            let dir = dir.join("buildkit");
            CacheTarget::Local {
                import: dir.join("index.json").is_file(),
                dir,
            }
        }
        None => CacheTarget::Registry {
            reference: format!("{}/{}:buildcache", v.image.registry(), v.image.repository()),
        },
    };
    let invocation = BuildctlInvocation {
        program: req.buildctl.clone(),
        addr: req.buildkit_host.clone(),
        context_dir: v.context.clone(),
        plan_file: req.plan_file.clone(),
        railpack_version: req.railpack_version.clone(),
        platform: v.platform.clone(),
        cache_key: req.cache_key.clone(),
        secrets_hash: v.secrets_hash.clone(),
        build_args: req.additional_build_args.clone(),
        secrets: v.secrets.clone(),
        secrets_dir: req.secrets_dir.clone(),
        image: v.image.clone(),
        annotations,
        sbom: req.sbom,
        insecure_registry: req.insecure_registry,
        cache,
        metadata_file: req.metadata_file.clone(),
    };
    let argv: Vec<String> = invocation
        .argv()
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let _ = writeln!(
        log,
        "kibaship-step: plan {} running {}",
        v.plan.digest(),
        argv.join(" ")
    );
    match std::fs::remove_file(&req.metadata_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(StepError::Buildctl(format!(
                "cannot remove old metadata file: {e}"
            )));
        }
    }
    let (status, stderr_tail) = run_relaying_stderr(Command::new(&argv[0]).args(&argv[1..]))
        .map_err(|e| StepError::Buildctl(format!("cannot run {}: {e}", req.buildctl.display())))?;
    if !status.success() {
        let message = match crate::buildctl::error_line(&stderr_tail) {
            Some(line) => format!(
                "buildctl exited with {status}: {}",
                bounded(&one_line(line.trim_start_matches("error: ")), 1024)
            ),
            None => format!("buildctl exited with {status} (see the BuildKit log above)"),
        };
        let registry = crate::buildctl::registry_failure(&stderr_tail).is_some();
        return Err(if registry {
            StepError::BuildctlRegistry(message)
        } else {
            StepError::Buildctl(message)
        });
    }
    let meta_bytes = read_limited(
        &req.metadata_file,
        MAX_METADATA_BYTES,
        "buildctl metadata file",
        FailureKind::Build,
    )?;
    let meta = BuildMetadata::parse(&meta_bytes, &v.image)?;

    // Confirm on the registry: the tag must point at what buildctl says it pushed.
    match store.resolve(&v.image, v.image.tag()).await? {
        Some(d) if d == meta.digest => {}
        Some(d) => {
            return Err(RegistryError::TagMoved {
                reference: v.image.to_string(),
                on_registry: d,
                built: meta.digest,
            }
            .into());
        }
        None => {
            return Err(RegistryError::Missing {
                reference: v.image.to_string(),
                digest: meta.digest,
            }
            .into());
        }
    }
    let pushed = fetch_required(store, &v.image, &meta.digest).await?;
    let sbom_ref = find_sbom_ref(store, &v.image, &pushed).await?;
    let recorded =
        manifest_annotations(&pushed.bytes).map_err(|problem| RegistryError::BadManifest {
            reference: v.image.pinned(&meta.digest),
            problem,
        })?;
    if recorded.get(BUILD_KEY_ANNOTATION).map(String::as_str) == Some(v.key.as_str()) {
        store
            .push_tag(&v.image, &v.key.dedupe_tag(), &pushed)
            .await?;
        let _ = writeln!(
            log,
            "kibaship-step: recorded build as tag {}",
            v.key.dedupe_tag()
        );
    } else {
        let _ = writeln!(
            log,
            "kibaship-step: warning: pushed manifest lacks the {BUILD_KEY_ANNOTATION} annotation; not recording it for dedupe"
        );
    }
    let report = BuildReport {
        outcome: BuildOutcome::Built,
        image: v.image,
        digest: meta.digest,
        sbom_ref,
        build_key: v.key,
        duration_secs: started.elapsed().as_secs_f64(),
        buildctl_argv: Some(argv),
    };
    write_results(req, &report)?;
    Ok(report)
}

/// How much of a child's stderr [`run_relaying_stderr`] keeps (its end: BuildKit prints the error last).
const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// Runs `command` with its stderr relayed to ours as it comes (as if inherited: the Task's log shows BuildKit's
/// progress as it happens) and returns its exit status and the last [`STDERR_TAIL_BYTES`] of what it printed.
fn run_relaying_stderr(
    command: &mut Command,
) -> std::io::Result<(std::process::ExitStatus, String)> {
    use std::io::Read;
    let mut child = command.stderr(std::process::Stdio::piped()).spawn()?;
    let mut tail: std::collections::VecDeque<u8> = std::collections::VecDeque::new();
    if let Some(mut pipe) = child.stderr.take() {
        let mut chunk = [0u8; 8192];
        let ours = std::io::stderr();
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let got = chunk.get(..n).unwrap_or(&[]);
                    let _ = ours.lock().write_all(got);
                    tail.extend(got.iter().copied());
                    let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                    tail.drain(..excess);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let status = child.wait()?;
    let tail: Vec<u8> = tail.into_iter().collect();
    Ok((status, String::from_utf8_lossy(&tail).into_owned()))
}

/// `line` cut to at most `max` bytes (at a character boundary), with `…` where it was cut: BuildKit's error line
/// goes into the step's one-line error, which Tekton keeps in the TaskRun.
fn bounded(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if line.len() <= max {
        return line.into();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end]).into()
}

/// BuildKit's error on one line: the registry errors containerd lists below it (`...: errors:` then one per line)
/// joined with `; `.
fn one_line(error: &str) -> String {
    let mut lines = error.lines().map(str::trim);
    let first = lines.next().unwrap_or_default().to_string();
    let listed: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    if listed.is_empty() {
        first
    } else {
        format!("{first} {}", listed.join("; "))
    }
}

#[cfg(test)]
mod bounded_tests {
    #[test]
    fn bounded_cuts_long_lines_at_a_character_boundary() {
        assert_eq!(super::bounded("short", 10), "short");
        assert_eq!(super::bounded("ééé", 3), "é…");
        assert_eq!(super::bounded("abcdef", 4), "abcd…");
    }

    #[test]
    fn listed_registry_errors_join_the_error_line() {
        assert_eq!(
            super::one_line("failed to push r/x:t: errors:\nunknown: a\nunknown: b"),
            "failed to push r/x:t: errors: unknown: a; unknown: b"
        );
        assert_eq!(super::one_line("exit code: 3"), "exit code: 3");
    }
}
