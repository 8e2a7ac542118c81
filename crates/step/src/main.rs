//! `kibaship-step`: the program the Tekton railpack tasks run. Thin: parses arguments, calls the library, maps
//! failures to exit codes (see `docs/tekton.md`).
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use kibaship_cli::terminal::{Escaped, print_line};
use kibaship_oci::duration::parse_duration;
use kibaship_oci::{ClientConfig, RegistryClient};
use kibaship_step::build::{BuildOutcome, BuildRequest, BuildResultPaths, run_build};
use kibaship_step::oci_store::OciManifestStore;
use kibaship_step::prepare::{PrepareRequest, run_prepare};
use kibaship_step::secrets::secrets_hash;
use kibaship_step::sign::{SignError, SignInputs, load_signer, sign_image, write_results};
use kibaship_step::{Classify, FailureKind, StepError};
use zeroize::Zeroizing;

/// Tekton step driver for the railpack-prepare and railpack-build tasks.
#[derive(Parser)]
#[command(name = "kibaship-step", version, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the design's secrets-hash of a mounted secrets directory (hex, or an empty line without secrets).
    SecretsHash {
        /// The directory the build secrets are mounted at.
        #[arg(long, default_value = "/secrets")]
        secrets_dir: PathBuf,
    },
    /// Copy this binary to DEST (mode 0555): the first step of a task shares it with the others through an
    /// emptyDir volume, the way Tekton delivers its own entrypoint.
    Install {
        /// Where to copy the binary.
        #[arg(long)]
        dest: PathBuf,
    },
    /// Run `railpack prepare` and write the planPath and infoPath results.
    Prepare(PrepareArgs),
    /// Build and push the image with `buildctl` (or reuse an earlier identical build) and write the results.
    Build(Box<BuildArgs>),
    /// Sign the built image by digest, with a cosign key or keyless, and write the results.
    Sign(Box<SignArgs>),
    /// Write the build's SLSA provenance v1 (an in-toto Statement v1) from its params, results, buildctl's
    /// metadata file, the plan and BuildKit's own provenance; attest it with `kibaverify attest --predicate
    /// <predicate-output> --type slsaprovenance1` (docs/provenance.md).
    Provenance(Box<ProvenanceArgs>),
    /// POST the build's outcome as JSON to the platform, signed with HMAC-SHA256 (X-Kibaship-Signature), with
    /// bounded retries; exit 0 delivered, 64 bad parameters, 75 not delivered, 77 refused (docs/tekton.md).
    Notify(Box<NotifyArgs>),
    /// Receive `notify`'s notifications on a local address and check them as a platform must (signature over
    /// timestamp + body, timestamp within --tolerance, Idempotency-Key); print each verified event (docs/tekton.md).
    NotifyReceiver(Box<NotifyReceiverArgs>),
    /// Scan the built digest with trivy, judge the report with the gate policy, write the verdict and counts,
    /// and attest the report onto the image (cosign vuln predicate); exit 0 pass, 1 gate failed (attested),
    /// 2 scanner failed (nothing signed) (docs/tekton.md).
    Scan(Box<ScanArgs>),
    /// Apply branch-<branch>, latest-<environment> and promotion tags to an already-pushed digest (the manifest
    /// PUT again by digest, never a rebuild), after checking it against an admission policy when one is given.
    Tag(Box<TagArgs>),
    /// Attest the build's SLSA provenance (kibaship-step provenance --predicate-output) and attach + attest the
    /// SBOM BuildKit wrote (the build's sbomRef), by digest, with a cosign key or keyless (docs/tekton.md).
    Attest(Box<AttestArgs>),
}

/// `kibaship-step attest`: empty strings mean "not set", as Tekton passes them.
#[derive(Args)]
struct AttestArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The SLSA provenance v1 predicate (kibaship-step provenance --predicate-output); empty: none.
    #[arg(long, default_value = "")]
    provenance_predicate: String,
    /// The build's sbomRef result (<repository>@<attestation manifest digest>); empty: no SBOM.
    #[arg(long, default_value = "")]
    sbom_ref: String,
    /// File for the attestations result (one reference per line: attestations and the SBOM referrer).
    #[arg(long)]
    attestations_result: Option<PathBuf>,
}

/// What the sign, scan and attest steps are signed with and where: empty strings mean "not set".
#[derive(Args)]
struct SignerArgs {
    /// The build's image result (registry/repository:tag); only its repository is used.
    #[arg(long, default_value = "")]
    image: String,
    /// The build's digest result (sha256:<hex>): what is signed, scanned or attested.
    #[arg(long, default_value = "")]
    digest: String,
    /// `key` or `keyless` (scan also takes `none`: no attestation).
    #[arg(long, default_value = "")]
    mode: String,
    /// `legacy`, `bundle` or `both`; empty: legacy with a key, bundle keyless.
    #[arg(long, default_value = "")]
    layout: String,
    /// Key mode: the cosign private key file (password from COSIGN_PASSWORD).
    #[arg(long, default_value = "")]
    key_file: String,
    /// Keyless: the OIDC identity token file (a projected service-account token with audience sigstore).
    #[arg(long, default_value = "")]
    identity_token_file: String,
    /// Keyless: the Sigstore signing config (v0.2 JSON) naming Fulcio, Rekor and the TSA.
    #[arg(long, default_value = "")]
    signing_config: String,
    /// Keyless, optional: verify each signature or attestation against this trusted_root.json before uploading.
    #[arg(long, default_value = "")]
    trusted_root: String,
    /// Repository the signatures and attestations go to instead of the image's (cosign's COSIGN_REPOSITORY).
    #[arg(long, default_value = "")]
    signature_repository: String,
    /// Talk to the registry over plain HTTP (`true`/`false`; local test registries only).
    #[arg(long, default_value = "false", action = clap::ArgAction::Set)]
    insecure_registry: String,
}

impl SignerArgs {
    /// The sign step's inputs (checked by [`SignInputs::plan`]).
    fn inputs(&self, annotations: Vec<String>) -> SignInputs {
        SignInputs {
            image: self.image.clone(),
            digest: self.digest.clone(),
            mode: self.mode.clone(),
            layout: self.layout.clone(),
            key_file: self.key_file.clone(),
            identity_token_file: self.identity_token_file.clone(),
            signing_config: self.signing_config.clone(),
            trusted_root: self.trusted_root.clone(),
            annotations,
            signature_repository: self.signature_repository.clone(),
        }
    }

    /// `--insecure-registry`: `true`, or `false`/empty.
    fn insecure(&self) -> Result<bool, String> {
        task_bool("--insecure-registry", &self.insecure_registry)
    }
}

/// A Tekton boolean parameter as a Task passes it (`true`, or `false`/empty, surrounding blanks ignored), or an
/// error naming `flag` and the value.
fn task_bool(flag: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" => Ok(true),
        "false" | "" => Ok(false),
        other => Err(format!("{flag} {other:?} is not true or false")),
    }
}

/// `kibaship-step tag`: empty strings mean "not set", as Tekton passes them.
#[derive(Args)]
struct TagArgs {
    /// The build's image result (registry/repository:tag); only its repository is used.
    #[arg(long, default_value = "")]
    image: String,
    /// The digest to tag (sha256:<hex>).
    #[arg(long, default_value = "")]
    digest: String,
    /// The git branch (refs/heads/ is dropped; / becomes -): tag branch-<branch>.
    #[arg(long, default_value = "")]
    branch: String,
    /// The environment this build deploys to: tag latest-<environment>.
    #[arg(long, default_value = "")]
    environment: String,
    /// Promote to this environment: tag <environment> (staging, prod). Repeatable; empty values are ignored.
    #[arg(long = "promote", num_args = 0..)]
    promotions: Vec<String>,
    /// An admission policy (kind AdmissionPolicy, the webhook's format): the digest is tagged only if the
    /// policies selecting it in --namespace would admit it. Empty: no check.
    #[arg(long, default_value = "")]
    policy: String,
    /// The namespace the policy is judged for (the environment's).
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Sigstore trusted root for keyless signatures; empty: the embedded public-good root.
    #[arg(long, default_value = "")]
    trusted_root: String,
    /// Talk to the registry over plain HTTP (`true`/`false`; local test registries only).
    #[arg(long, default_value = "false", action = clap::ArgAction::Set)]
    insecure_registry: String,
    /// Give up on the registry after this long, retries included; empty: 3m.
    #[arg(long, default_value = "")]
    timeout: String,
    /// File for the tags result (one tagged reference per line).
    #[arg(long)]
    tags_result: Option<PathBuf>,
    /// `true`: no --branch, --environment or --promote is not an error; nothing is tagged and the tags result is
    /// empty (the Pipeline runs the tag task on every build; a build of no branch asks for no tag).
    #[arg(long, default_value = "false", action = clap::ArgAction::Set)]
    allow_empty: String,
}

/// `kibaship-step scan`: empty strings mean "not set", as Tekton passes them.
#[derive(Args)]
struct ScanArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// The gate policy (YAML), e.g. from a ConfigMap.
    #[arg(long)]
    policy: PathBuf,
    /// A trivy ignore file (.trivyignore or .trivyignore.yaml); repeatable; empty values are ignored.
    #[arg(long = "ignorefile", num_args = 0..)]
    ignore_files: Vec<String>,
    /// The trivy program.
    #[arg(long, default_value = "trivy")]
    trivy: PathBuf,
    /// trivy's cache directory (holds its vulnerability DB); empty: trivy's default.
    #[arg(long, default_value = "")]
    cache_dir: String,
    /// Do not let trivy update its DBs or reach the network for anything but the image (true/false).
    #[arg(long, default_value = "false", action = clap::ArgAction::Set)]
    offline: String,
    /// Where trivy writes its JSON report.
    #[arg(long, default_value = "/tmp/trivy-report.json")]
    report_file: PathBuf,
    /// Vulnerability DB URI for the attestation.
    #[arg(long, default_value = "")]
    db_uri: String,
    /// Vulnerability DB version for the attestation.
    #[arg(long, default_value = "")]
    db_version: String,
    /// Judge exception expiry at this RFC 3339 time instead of now.
    #[arg(long, default_value = "")]
    now: String,
    /// File for the verdict result (pass/fail).
    #[arg(long)]
    verdict_result: Option<PathBuf>,
    /// File for the counts result (critical=N high=N medium=N low=N unknown=N, after exceptions).
    #[arg(long)]
    counts_result: Option<PathBuf>,
    /// File for the attestations result (one reference per line).
    #[arg(long)]
    attestations_result: Option<PathBuf>,
    /// File for the report result (the report's path).
    #[arg(long)]
    report_result: Option<PathBuf>,
}

/// `kibaship-step notify-receiver`.
#[derive(Args)]
struct NotifyReceiverArgs {
    /// Address to listen on (port 0: any free port; see --address-file).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// File holding the HMAC key (as for notify).
    #[arg(long)]
    hmac_key_file: PathBuf,
    /// Write the address listened on (host:port) here once listening.
    #[arg(long)]
    address_file: Option<PathBuf>,
    /// Append each new verified notification's body (one JSON document per line) to this file.
    #[arg(long)]
    events_file: Option<PathBuf>,
    /// Exit 0 after this many new verified notifications (default: serve until killed).
    #[arg(long)]
    exit_after: Option<usize>,
    /// Largest accepted difference between the timestamp header and this clock.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    tolerance: Duration,
    /// Serve HTTPS with this PEM certificate chain (leaf first; with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// `kibaship-step notify`: empty strings mean "not set", as Tekton passes them.
#[derive(Args)]
struct NotifyArgs {
    /// The receiver's URL (http or https; no user info).
    #[arg(long)]
    url: String,
    /// File holding the HMAC key (a Secret mount; one trailing newline is ignored; at least 32 bytes).
    #[arg(long)]
    hmac_key_file: PathBuf,
    /// $(context.pipelineRun.name).
    #[arg(long, default_value = "")]
    pipeline_run_name: String,
    /// $(context.pipelineRun.namespace).
    #[arg(long, default_value = "")]
    pipeline_run_namespace: String,
    /// $(context.pipelineRun.uid): the Idempotency-Key header.
    #[arg(long, default_value = "")]
    pipeline_run_uid: String,
    /// $(tasks.status): Succeeded, Failed, Completed or None.
    #[arg(long)]
    aggregate_status: String,
    /// name=$(tasks.<name>.status), in pipeline order; repeatable.
    #[arg(long = "task-status", num_args = 0..)]
    task_statuses: Vec<String>,
    /// Failure kind instead of the one derived from the first failed task.
    #[arg(long, default_value = "")]
    failure_kind: String,
    /// The image (registry/repository:tag).
    #[arg(long, default_value = "")]
    image: String,
    /// The image's digest.
    #[arg(long, default_value = "")]
    digest: String,
    /// The scan's verdict (pass or fail).
    #[arg(long, default_value = "")]
    scan_verdict: String,
    /// An attestation reference (one per line or repeated).
    #[arg(long = "attestation", num_args = 0..)]
    attestations: Vec<String>,
    /// A signature reference (one per line or repeated).
    #[arg(long = "signature", num_args = 0..)]
    signatures: Vec<String>,
    /// Attempts in total, the first included.
    #[arg(long, default_value_t = 6)]
    max_attempts: u32,
    /// First backoff (doubles each retry, full jitter).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    initial_backoff: Duration,
    /// Largest backoff.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    max_backoff: Duration,
    /// No attempt starts after this long.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    max_total: Duration,
    /// Upper bound of one attempt.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    attempt_timeout: Duration,
    /// Extra CA bundle (PEM) for an https receiver.
    #[arg(long, default_value = "")]
    ca_file: String,
    /// File for the delivered result (true/false).
    #[arg(long)]
    delivered_result: Option<PathBuf>,
    /// File for the attempts result.
    #[arg(long)]
    attempts_result: Option<PathBuf>,
    /// File for the responseStatus result (the last HTTP status; empty without one).
    #[arg(long)]
    response_status_result: Option<PathBuf>,
}

/// `kibaship-step provenance`: empty strings mean "not set", as Tekton passes them.
#[derive(Args)]
struct ProvenanceArgs {
    /// The build's image result (registry/repository:tag).
    #[arg(long, default_value = "")]
    image: String,
    /// The build's digest result (sha256:<64 hex>); must equal containerimage.digest in the metadata file.
    #[arg(long, default_value = "")]
    digest: String,
    /// buildctl's --metadata-file of the build.
    #[arg(long)]
    metadata_file: PathBuf,
    /// plan.json the build built (its sha256 and the images it names go into the provenance).
    #[arg(long)]
    plan: PathBuf,
    /// BuildKit's own SLSA provenance statement (the in-toto layer of the pushed index's attestation manifest):
    /// the frontend and base images by digest. Default: read it from the registry (<image>@<digest>).
    #[arg(long, conflicts_with = "no_buildkit_provenance")]
    buildkit_provenance: Option<PathBuf>,
    /// Do not read BuildKit's provenance: the frontend and base images are listed without digests.
    #[arg(long)]
    no_buildkit_provenance: bool,
    /// Talk to the registry over plain HTTP (local test registries only): `--insecure-registry`, or
    /// `--insecure-registry=true|false` as a Task passes its parameter.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    insecure_registry: bool,
    /// Extra CA bundle (PEM) for the registry.
    #[arg(long)]
    registry_ca_file: Option<PathBuf>,
    /// Give up on the registry after this long, retries included (30s, 3m, 1m30s; 0: no limit).
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    timeout: Duration,
    /// Source repository URL (gitUrl).
    #[arg(long, default_value = "")]
    source_url: String,
    /// Git commit SHA of the source (gitCommit, full).
    #[arg(long, default_value = "")]
    revision: String,
    /// The git ref the commit was fetched for (refs/heads/main), if known.
    #[arg(long, default_value = "")]
    git_ref: String,
    /// The build's platform.
    #[arg(long, default_value = "linux/amd64")]
    platforms: String,
    /// The app's directory inside the repository.
    #[arg(long, default_value = ".")]
    context_path: String,
    /// Railpack version: the frontend image tag.
    #[arg(long, default_value = "")]
    railpack_version: String,
    /// Tenant cache key (cache-key build arg).
    #[arg(long, default_value = "")]
    cache_key: String,
    /// Build secret names (values are never read).
    #[arg(long, num_args = 0..)]
    build_secrets: Vec<String>,
    /// Additional KEY=VALUE build args.
    #[arg(long, num_args = 0..)]
    additional_build_args: Vec<String>,
    /// The build's dedupe key (buildKey= on the build's stdout), if known.
    #[arg(long, default_value = "")]
    build_key: String,
    /// The build ran without an SBOM attestation (--no-sbom).
    #[arg(long)]
    no_sbom: bool,
    /// The PipelineRun's UID (runDetails.metadata.invocationId).
    #[arg(long, env = "KIBASHIP_INVOCATION_ID", default_value = "")]
    invocation_id: String,
    /// runDetails.builder.id; default: the railpack-build Task's URI at this version.
    #[arg(long, default_value = "")]
    builder_id: String,
    /// When the build started (RFC 3339); default: BuildKit's startedOn.
    #[arg(long, default_value = "")]
    started_on: String,
    /// When the build finished (RFC 3339); default: BuildKit's finishedOn.
    #[arg(long, default_value = "")]
    finished_on: String,
    /// Where the statement is written.
    #[arg(long)]
    output: PathBuf,
    /// Where the predicate alone is written (for kibaverify attest --predicate).
    #[arg(long)]
    predicate_output: Option<PathBuf>,
}

/// The registry budget of `sign` when `--timeout` is empty (cosign's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// `kibaship-step sign`: every value may be an empty string, meaning "not set" (Tekton cannot omit an argument).
#[derive(Args)]
struct SignArgs {
    #[command(flatten)]
    signer: SignerArgs,
    /// A `key=value` annotation signed into the payload. Repeatable; empty values are ignored.
    #[arg(long = "annotation", num_args = 0..)]
    annotations: Vec<String>,
    /// Extra CA bundle (PEM) for the registry and the Sigstore services; empty: system roots only.
    #[arg(long, default_value = "")]
    registry_ca_file: String,
    /// Give up on the registry after this long, retries included (30s, 3m, 1m30s; 0: no limit); empty: 3m.
    #[arg(long, default_value = "")]
    timeout: String,
    /// File for the signatures result (one line per signature written).
    #[arg(long)]
    signatures_result: Option<PathBuf>,
    /// File for the signedDigest result.
    #[arg(long)]
    signed_digest_result: Option<PathBuf>,
}

#[derive(Args)]
struct PrepareArgs {
    /// The cloned repository.
    #[arg(long)]
    source_dir: PathBuf,
    /// The app's directory inside the repository.
    #[arg(long, default_value = ".")]
    context_path: String,
    /// The railpack program.
    #[arg(long, default_value = "railpack")]
    railpack: PathBuf,
    /// Where plan.json and info.json are written.
    #[arg(long)]
    out_dir: PathBuf,
    /// File for the planPath result.
    #[arg(long)]
    plan_path_result: Option<PathBuf>,
    /// File for the infoPath result.
    #[arg(long)]
    info_path_result: Option<PathBuf>,
    /// Build secret names (values are never read by prepare).
    #[arg(long, num_args = 0..)]
    build_secrets: Vec<String>,
}

#[derive(Args)]
struct BuildArgs {
    /// The cloned repository.
    #[arg(long)]
    source_dir: PathBuf,
    /// The app's directory inside the repository.
    #[arg(long, default_value = ".")]
    context_path: String,
    /// plan.json written by prepare.
    #[arg(long)]
    plan: PathBuf,
    /// info.json written by prepare.
    #[arg(long)]
    info: Option<PathBuf>,
    /// Registry host, e.g. ghcr.io.
    #[arg(long)]
    image_registry: String,
    /// Repository, e.g. kibaship/<project>/<app>.
    #[arg(long)]
    image_repository: String,
    /// Tag; empty means the commit SHA.
    #[arg(long, default_value = "")]
    image_tag: String,
    /// Git commit SHA of the source (full).
    #[arg(long)]
    revision: String,
    /// Source repository URL, for org.opencontainers.image.source.
    #[arg(long, default_value = "")]
    source_url: String,
    /// Who is responsible for the image (free-form, e.g. `Team <team@example.com>`), for
    /// org.opencontainers.image.authors; empty: left out.
    #[arg(long, default_value = "")]
    authors: String,
    /// Creation time (RFC 3339) for org.opencontainers.image.created; default now.
    #[arg(long)]
    created: Option<String>,
    /// Target platform (one; the Railpack frontend builds one per build).
    #[arg(long, default_value = "linux/amd64")]
    platforms: String,
    /// Tenant cache key (cache-key build arg).
    #[arg(long, default_value = "")]
    cache_key: String,
    /// Railpack version: the frontend image tag.
    #[arg(long)]
    railpack_version: String,
    /// Where build secret values are mounted.
    #[arg(long, default_value = "/secrets")]
    secrets_dir: PathBuf,
    /// The build-cache workspace path (empty or absent: registry cache). A string, not a path: Tekton passes an
    /// empty value for an unbound optional workspace.
    #[arg(long)]
    build_cache_dir: Option<String>,
    /// The buildctl program.
    #[arg(long, default_value = "buildctl")]
    buildctl: PathBuf,
    /// BuildKit address.
    #[arg(long, env = "BUILDKIT_HOST", default_value = "tcp://localhost:1234")]
    buildkit_host: String,
    /// Do not ask BuildKit for an SBOM attestation.
    #[arg(long)]
    no_sbom: bool,
    /// Always build, even when the registry has a build with the same key.
    #[arg(long)]
    no_dedupe: bool,
    /// Talk to the registry over plain HTTP (local test registries only): `--insecure-registry`, or
    /// `--insecure-registry=true|false` as a Task passes its parameter.
    #[arg(
        long,
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    insecure_registry: bool,
    /// Extra CA bundle (PEM) for the registry.
    #[arg(long)]
    registry_ca_file: Option<PathBuf>,
    /// Give up on one registry operation (a lookup or a tag push) after this long, retries included (30s, 3m,
    /// 1m30s; 0: no limit). The build itself is not bounded by it.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    timeout: Duration,
    /// Where buildctl writes its metadata file.
    #[arg(long, default_value = "/tmp/buildctl-metadata.json")]
    metadata_file: PathBuf,
    /// File for the image result.
    #[arg(long)]
    image_result: Option<PathBuf>,
    /// File for the digest result.
    #[arg(long)]
    digest_result: Option<PathBuf>,
    /// File for the sbomRef result.
    #[arg(long)]
    sbom_ref_result: Option<PathBuf>,
    /// File for the buildDuration result.
    #[arg(long)]
    build_duration_result: Option<PathBuf>,
    /// Build secret names, mounted at <secrets-dir>/<NAME>.
    #[arg(long, num_args = 0..)]
    build_secrets: Vec<String>,
    /// Additional KEY=VALUE build args.
    #[arg(long, num_args = 0..)]
    additional_build_args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                FailureKind::BadParameters.exit_code()
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // The sign step has its own failure kinds (a refusal is not a build failure).
    let failed = match cli.command {
        Command::Sign(a) => sign(*a)
            .err()
            .map(|e| (e.kind().to_string(), error_chain(&e), e.exit_code())),
        Command::Notify(a) => notify(*a)
            .err()
            .map(|e| (e.label().to_string(), error_chain(&e), e.exit_code())),
        Command::NotifyReceiver(a) => notify_receiver(*a).err().map(|e| {
            (
                "notify-receiver".to_string(),
                error_chain(&e),
                e.exit_code(),
            )
        }),
        Command::Scan(a) => scan_step(*a),
        Command::Attest(a) => attest(*a)
            .err()
            .map(|e| (e.kind().to_string(), error_chain(&e), e.exit_code())),
        Command::Tag(a) => tag(*a)
            .err()
            .map(|e| (e.label().to_string(), error_chain(&e), e.exit_code())),
        command => run(command)
            .err()
            .map(|e| (e.kind().to_string(), error_chain(&e), e.exit_code())),
    };
    match failed {
        None => ExitCode::SUCCESS,
        Some((kind, message, code)) => {
            // Messages can carry registry- or file-supplied text: control characters are escaped.
            eprintln!("kibaship-step: {kind}: {}", Escaped(&message));
            ExitCode::from(code)
        }
    }
}

/// Writes a line of the step's report to stdout. The results that Tekton reads are files; stdout is for the log,
/// so a closed stdout ends nothing and another write failure is only reported.
fn say(line: impl std::fmt::Display) {
    if let Err(e) = print_line(line) {
        eprintln!("kibaship-step: cannot write to stdout: {e}");
    }
}

fn run(command: Command) -> Result<(), StepError> {
    match command {
        Command::SecretsHash { secrets_dir } => {
            let hash = secrets_hash(&secrets_dir)?.unwrap_or_default();
            say(format_args!("{hash}"));
            Ok(())
        }
        Command::Install { dest } => install(&dest),
        Command::Prepare(a) => {
            let report = run_prepare(
                &PrepareRequest {
                    source_dir: a.source_dir,
                    context_path: a.context_path,
                    build_secrets: a.build_secrets,
                    railpack: a.railpack,
                    out_dir: a.out_dir,
                    plan_path_result: a.plan_path_result,
                    info_path_result: a.info_path_result,
                },
                &mut std::io::stderr(),
            )?;
            say(format_args!("planPath={}", report.plan_file.display()));
            say(format_args!("infoPath={}", report.info_file.display()));
            say(format_args!("planDigest={}", report.plan_digest));
            Ok(())
        }
        Command::Build(a) => build(*a),
        Command::Provenance(a) => provenance(*a),
        Command::Sign(a) => Err(StepError::BadParameter(format!(
            "internal: sign is run by main, not here ({} given)",
            a.signer.image
        ))),
        Command::Notify(_)
        | Command::NotifyReceiver(_)
        | Command::Scan(_)
        | Command::Tag(_)
        | Command::Attest(_) => Err(StepError::BadParameter(
            "internal: notify, notify-receiver, scan, tag and attest are run by main, not here"
                .into(),
        )),
    }
}

/// `e` and its sources, joined with `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    // What the user can do about it, in the step's own flags (the library names none).
    if kibaship_oci::Error::find_in(e).is_some_and(kibaship_oci::Error::is_untrusted_certificate) {
        msg.push_str(" (give the registry's CA bundle with --registry-ca-file)");
    }
    msg
}

fn sign(a: SignArgs) -> Result<(), SignError> {
    let bad = |m: String| SignError::Parameter(m);
    let plan = a.signer.inputs(a.annotations).plan()?;
    let insecure = a.signer.insecure().map_err(bad)?;
    let ca_file = Some(a.registry_ca_file.trim())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    // COSIGN_PASSWORD comes from an optional secretKeyRef: unset when the Secret has no password.
    let password = std::env::var("COSIGN_PASSWORD").ok().map(Zeroizing::new);
    let signer = load_signer(&plan, password, ca_file.as_deref())?;
    let insecure_registries = insecure_hosts(&plan, insecure);
    let timeout = match a.timeout.trim() {
        "" => DEFAULT_TIMEOUT,
        text => parse_duration(text).map_err(|e| bad(format!("--timeout: {e}")))?,
    };
    let client = RegistryClient::new(ClientConfig {
        insecure_registries,
        ca_file,
        timeout: (!timeout.is_zero()).then_some(timeout),
        ..ClientConfig::default()
    })
    .map_err(|e| bad(format!("registry client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(format!("cannot start the async runtime: {e}")))?;
    let report = runtime.block_on(sign_image(&client, &plan, &signer))?;
    write_results(
        &report,
        a.signatures_result.as_deref(),
        a.signed_digest_result.as_deref(),
    )?;
    for s in &report.signatures {
        match &s.identity {
            Some((identity, issuer)) => eprintln!(
                "kibaship-step: signed {} keyless as {identity} (issuer {issuer}): {} {}",
                report.image, s.layout, s.location
            ),
            None => eprintln!(
                "kibaship-step: signed {} with the key: {} {} (no transparency-log entry: verify with --insecure-ignore-tlog)",
                report.image, s.layout, s.location
            ),
        }
    }
    say(format_args!("signedDigest={}", report.digest));
    for s in &report.signatures {
        say(format_args!("signature={}", s.location));
    }
    Ok(())
}

fn notify(a: NotifyArgs) -> Result<(), kibaship_step::notify::NotifyError> {
    use kibaship_step::notify::{
        DeliveryOptions, HmacKey, NotifyError, NotifyInputs, NotifyResultPaths, deliver,
        display_url, parse_url, write_results,
    };
    let bad = NotifyError::Parameter;
    let paths = NotifyResultPaths {
        delivered: a.delivered_result,
        attempts: a.attempts_result,
        response_status: a.response_status_result,
    };
    let prepared = (|| {
        let notification = NotifyInputs {
            pipeline_run_name: a.pipeline_run_name,
            pipeline_run_namespace: a.pipeline_run_namespace,
            pipeline_run_uid: a.pipeline_run_uid,
            aggregate_status: a.aggregate_status,
            task_statuses: a.task_statuses,
            failure_kind: a.failure_kind,
            image: a.image,
            digest: a.digest,
            scan_verdict: a.scan_verdict,
            attestations: a.attestations,
            signatures: a.signatures,
        }
        .notification()?;
        let url = parse_url(&a.url)?;
        let key = HmacKey::from_file(&a.hmac_key_file)?;
        if a.max_attempts == 0 {
            return Err(bad("--max-attempts must be at least 1".into()));
        }
        let mut http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(a.attempt_timeout);
        if !a.ca_file.trim().is_empty() {
            let path = PathBuf::from(a.ca_file.trim());
            let pem = kibaship_cli::input::read_bounded(
                &path,
                "CA file",
                kibaship_cli::input::MAX_CONFIG_FILE_BYTES,
            )
            .map_err(|e| bad(format!("--ca-file: {e}")))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                bad(format!(
                    "--ca-file {}: not a PEM bundle: {e}",
                    path.display()
                ))
            })? {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http
            .build()
            .map_err(|e| bad(format!("cannot set up the HTTP client: {e}")))?;
        Ok((notification, url, key, http))
    })();
    let outcome = prepared.and_then(|(notification, url, key, http)| {
        let options = DeliveryOptions {
            retry: kibaship_oci::RetryPolicy {
                max_attempts: a.max_attempts,
                initial_backoff: a.initial_backoff,
                max_backoff: a.max_backoff,
                max_retry_after: a.max_backoff,
                max_total: a.max_total,
            },
            attempt_timeout: a.attempt_timeout,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start the async runtime: {e}")))?;
        let body = notification.to_json();
        eprintln!(
            "kibaship-step: notifying {} of {} ({}{})",
            display_url(&url),
            notification.pipeline_run.uid,
            notification.status,
            notification
                .failure_kind
                .as_deref()
                .map(|k| format!(", {k}"))
                .unwrap_or_default()
        );
        runtime.block_on(deliver(
            &http,
            &url,
            &key,
            &notification.pipeline_run.uid,
            &body,
            &options,
            &mut std::io::stderr(),
        ))
    });
    // The results say what happened whether or not it was delivered (the Task's step continues on error).
    write_results(&paths, &outcome)?;
    let delivery = outcome?;
    say(format_args!("delivered=true"));
    say(format_args!("attempts={}", delivery.attempts));
    say(format_args!("responseStatus={}", delivery.status));
    Ok(())
}

fn notify_receiver(
    a: NotifyReceiverArgs,
) -> Result<(), kibaship_step::notify_receiver::ReceiverError> {
    use kibaship_step::notify::HmacKey;
    use kibaship_step::notify_receiver::{
        Accepted, Receiver, ReceiverError, ServeOptions, serve, tls_config,
    };
    let key = HmacKey::from_file(&a.hmac_key_file)
        .map_err(|e| ReceiverError::Parameter(e.to_string()))?;
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            let read = |path: &PathBuf, what: &str| {
                kibaship_cli::input::read_bounded(
                    path,
                    what,
                    kibaship_cli::input::MAX_CONFIG_FILE_BYTES,
                )
                .map_err(|e| ReceiverError::Parameter(e.to_string()))
            };
            Some(tls_config(
                &read(cert, "TLS certificate (--tls-cert)")?,
                &read(key, "TLS key (--tls-key)")?,
            )?)
        }
        _ => None,
    };
    let listener = std::net::TcpListener::bind(a.listen).map_err(|cause| ReceiverError::Io {
        what: format!("cannot listen on {}", a.listen),
        cause,
    })?;
    let address = listener.local_addr().map_err(|cause| ReceiverError::Io {
        what: "the listening address".into(),
        cause,
    })?;
    if let Some(path) = &a.address_file {
        // Written whole and renamed, so that a reader polling for it never sees half an address.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{address}\n"))
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(|cause| ReceiverError::Io {
                what: format!("address file {}", path.display()),
                cause,
            })?;
    }
    eprintln!(
        "kibaship-step: notify-receiver listening on {}://{address} (timestamps within {}s)",
        if tls.is_some() { "https" } else { "http" },
        a.tolerance.as_secs()
    );
    let mut receiver = Receiver::new(key, a.tolerance);
    let options = ServeOptions {
        exit_after: a.exit_after,
        events_file: a.events_file,
        tls,
    };
    serve(&listener, &mut receiver, &options, &mut |handled| {
        let peer = handled
            .peer
            .map(|p| p.to_string())
            .unwrap_or_else(|| "?".into());
        match &handled.outcome {
            Ok((Accepted::New(n), _)) => {
                say(format_args!(
                    "accepted (HTTP {}) from {peer}: signature and timestamp verified",
                    handled.status
                ));
                for line in n.describe() {
                    say(format_args!("  {line}"));
                }
            }
            Ok((Accepted::Duplicate(uid), _)) => say(format_args!(
                "accepted (HTTP {}) from {peer}: a retry of {}, already recorded",
                handled.status,
                Escaped(uid)
            )),
            Err(refusal) => say(format_args!(
                "refused (HTTP {}) from {peer}: {}",
                handled.status,
                Escaped(&refusal.to_string())
            )),
        }
    })
}

/// `kibaship-step scan`; `None` on a passed gate, else the failure's label, message and exit code.
fn scan_step(a: ScanArgs) -> Option<(String, String, u8)> {
    use kibaship_step::scan::{ScanError, ScanRequest, ScanResultPaths, load_gate, scan};
    let failed = |e: &(dyn std::error::Error + 'static), label: &str, code: u8| {
        Some((label.to_string(), error_chain(e), code))
    };
    let sign_failed = |e: SignError| failed(&e, &e.kind().to_string(), e.exit_code());
    let scan_failed = |e: ScanError| failed(&e, e.label(), e.exit_code());
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let (insecure, offline) = match (
        a.signer.insecure().map_err(ScanError::Parameter),
        task_bool("--offline", &a.offline).map_err(ScanError::Parameter),
    ) {
        (Ok(i), Ok(o)) => (i, o),
        (Err(e), _) | (_, Err(e)) => return scan_failed(e),
    };
    let now = match opt(&a.now) {
        None => time::OffsetDateTime::now_utc(),
        Some(text) => {
            match time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
            {
                Ok(t) => t,
                Err(e) => {
                    return scan_failed(ScanError::Parameter(format!(
                        "--now {text:?} is not an RFC 3339 time: {e}"
                    )));
                }
            }
        }
    };
    let attest = a.signer.mode.trim() != "none";
    // The sign step's checks of image, digest and signing inputs; with mode none only image and digest matter.
    let mut inputs = a.signer.inputs(Vec::new());
    if !attest {
        inputs.mode = "key".into();
        inputs.key_file = "unused".into();
    }
    let plan = match inputs.plan() {
        Ok(plan) => plan,
        Err(e) => return sign_failed(e),
    };
    let ignore_files: Vec<PathBuf> = a
        .ignore_files
        .iter()
        .filter_map(|p| opt(p))
        .map(PathBuf::from)
        .collect();
    let gate = match load_gate(&a.policy, &ignore_files, now) {
        Ok(g) => g,
        Err(e) => return scan_failed(e),
    };
    let request = ScanRequest {
        pinned: plan.target.to_string(),
        policy: a.policy,
        ignore_files,
        trivy: a.trivy,
        cache_dir: opt(&a.cache_dir).map(PathBuf::from),
        offline,
        insecure_registry: insecure,
        report_file: a.report_file,
        db_uri: opt(&a.db_uri),
        db_version: opt(&a.db_version),
        now,
    };
    eprintln!("kibaship-step: scanning {}", request.pinned);
    // The key's unlock (scrypt) or the keyless certificate, and the registry client, do not depend on the report:
    // they are made on a second thread while trivy scans. A signing error is still reported before a scan error.
    let (signing, scanned) = std::thread::scope(|threads| {
        let signing = attest.then(|| threads.spawn(|| signing_for_attestation(&plan, insecure)));
        let scanned = scan(&request, &gate);
        let signing = signing.map(|thread| {
            thread.join().unwrap_or_else(|_| {
                Err(SignError::Parameter(
                    "loading the signer stopped unexpectedly".into(),
                ))
            })
        });
        (signing, scanned)
    });
    let signing = match signing.transpose() {
        Ok(s) => s,
        Err(e) => return sign_failed(e),
    };
    let outcome = match scanned {
        Ok(o) => o,
        Err(e) => return scan_failed(e),
    };
    let mut attestations = Vec::new();
    if let Some((signer, client)) = &signing {
        let runtime = match current_thread_runtime() {
            Ok(r) => r,
            Err(e) => return failed(&e, &e.kind().to_string(), e.exit_code()),
        };
        match runtime.block_on(kibaship_step::attest::attest_predicate(
            client,
            &plan,
            signer,
            "vuln",
            &outcome.predicate,
            "trivy report",
            now,
        )) {
            Ok(written) => {
                for location in &written {
                    eprintln!(
                        "kibaship-step: attested the scan onto {}: {location}",
                        plan.target
                    );
                }
                attestations = written;
            }
            Err(e) => return failed(&e, &e.kind().to_string(), e.exit_code()),
        }
    }
    let paths = ScanResultPaths {
        verdict: a.verdict_result,
        counts: a.counts_result,
        attestations: a.attestations_result,
        report: a.report_result,
    };
    if let Err(e) =
        kibaship_step::scan::write_results(&paths, &outcome, &attestations, &request.report_file)
    {
        return scan_failed(e.into());
    }
    let verdict = if outcome.passed { "pass" } else { "fail" };
    say(format_args!("verdict={verdict}"));
    say(format_args!("counts={}", outcome.counts));
    for a in &attestations {
        say(format_args!("attestation={a}"));
    }
    if outcome.passed {
        return None;
    }
    Some((
        "gate failed".to_string(),
        format!(
            "{} of {} vulnerabilities fail the policy: {}",
            outcome.failing.len(),
            outcome.reported,
            outcome.failing.join(", ")
        ),
        kibaship_step::scan::SCAN_GATE_FAILED,
    ))
}

/// What `kibaship-step scan` signs its vuln attestation with: the signer (`COSIGN_PASSWORD` unlocks a key) and
/// the registry client that pushes it.
fn signing_for_attestation(
    plan: &kibaship_step::sign::SignPlan,
    insecure: bool,
) -> Result<(kibaship_step::sign::Signer, RegistryClient), SignError> {
    let password = std::env::var("COSIGN_PASSWORD").ok().map(Zeroizing::new);
    let signer = load_signer(plan, password, None)?;
    let client = RegistryClient::new(ClientConfig {
        insecure_registries: insecure_hosts(plan, insecure),
        timeout: Some(DEFAULT_TIMEOUT),
        ..ClientConfig::default()
    })
    .map_err(|e| SignError::Parameter(format!("registry client: {e}")))?;
    Ok((signer, client))
}

fn tag(a: TagArgs) -> Result<(), kibaship_step::tag::TagError> {
    use kibaship_step::tag::{TagError, apply_tags, check_policy, parse_policy, tag_names};
    let bad = TagError::Parameter;
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());

    let branch = opt(&a.branch);
    let environment = opt(&a.environment);
    let promotions: Vec<String> = a.promotions.iter().filter_map(|p| opt(p)).collect();
    let none_requested = branch.is_none() && environment.is_none() && promotions.is_empty();
    let allow_empty = task_bool("--allow-empty", &a.allow_empty).map_err(bad)?;
    let image = kibaship_oci::Reference::parse(a.image.trim())
        .map_err(|e| bad(format!("--image {:?}: {e}", a.image)))?;
    let digest: kibaship_oci::Digest = a
        .digest
        .trim()
        .parse()
        .map_err(|e| bad(format!("--digest {:?}: {e}", a.digest)))?;
    let pinned = image.with_digest(digest);
    let insecure = task_bool("--insecure-registry", &a.insecure_registry).map_err(bad)?;
    let tags = if none_requested && allow_empty {
        eprintln!(
            "kibaship-step: no tag requested (no --branch, --environment or --promote): {pinned} is left as it is"
        );
        Vec::new()
    } else {
        tag_names(branch.as_deref(), environment.as_deref(), &promotions)?
    };
    let timeout = match a.timeout.trim() {
        "" => DEFAULT_TIMEOUT,
        text => parse_duration(text).map_err(|e| bad(format!("--timeout: {e}")))?,
    };
    let policy = match opt(&a.policy) {
        Some(path) => {
            let text = kibaship_cli::input::read_text_bounded(
                std::path::Path::new(&path),
                "admission policy (--policy)",
                kibaship_policy::MAX_POLICY_BYTES as u64,
            )
            .map_err(|e| bad(e.to_string()))?;
            Some(parse_policy(&path, &text)?)
        }
        None => None,
    };
    let client = RegistryClient::new(ClientConfig {
        insecure_registries: if insecure {
            vec![pinned.registry().to_string()]
        } else {
            Vec::new()
        },
        timeout: (!timeout.is_zero()).then_some(timeout),
        ..ClientConfig::default()
    })
    .map_err(|e| bad(format!("registry client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(format!("cannot start the async runtime: {e}")))?;
    if let (Some(set), false) = (&policy, tags.is_empty()) {
        let root = match opt(&a.trusted_root) {
            Some(path) => {
                let json = kibaship_cli::input::read_bounded(
                    std::path::Path::new(&path),
                    "trusted root (--trusted-root)",
                    kibaship_cli::input::MAX_CONFIG_FILE_BYTES,
                )
                .map_err(|e| bad(e.to_string()))?;
                kibaship_sigstore::TrustedRoot::from_json(&json)
                    .map_err(|e| bad(format!("--trusted-root {path}: {e}")))?
            }
            None => kibaship_sigstore::TrustedRoot::public_good()
                .map_err(|e| bad(format!("embedded public-good trusted root: {e}")))?,
        };
        let verifier = kibaship_cosign::ImageVerifier::new(client.clone(), root);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let decision = runtime.block_on(check_policy(
            &verifier,
            set,
            a.namespace.trim(),
            &pinned,
            now,
        ))?;
        eprintln!(
            "kibaship-step: admission policy for {pinned} in namespace {}: {} ({})",
            a.namespace.trim(),
            decision.answer.as_str(),
            if decision.policies.is_empty() {
                "no policy selects it".to_string()
            } else {
                decision.policies.join(", ")
            }
        );
    }
    let tagged = runtime.block_on(apply_tags(&client, &pinned, &tags))?;
    let mut results = kibaship_step::results::ResultSet::new();
    results.add("tags", a.tags_result.as_deref(), tagged.join("  "));
    if results.encoded_len() > kibaship_step::results::TEKTON_RESULTS_BUDGET {
        return Err(kibaship_step::results::ResultsError::TooLarge {
            needed: results.encoded_len(),
            largest: "tags".into(),
        }
        .into());
    }
    if let Some(path) = &a.tags_result {
        std::fs::write(path, tagged.join("\n")).map_err(|source| {
            kibaship_step::results::ResultsError::Write {
                name: "tags".into(),
                path: path.clone(),
                source,
            }
        })?;
    }
    for t in &tagged {
        say(format_args!("tagged={t}"));
    }
    Ok(())
}

fn attest(a: AttestArgs) -> Result<(), kibaship_step::attest::AttestError> {
    use kibaship_step::attest::{AttestError, attach_buildkit_sbom, attest_provenance};
    let bad = AttestError::Parameter;
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let plan = a.signer.inputs(Vec::new()).plan()?;
    let insecure = a.signer.insecure().map_err(bad)?;
    let predicate = match opt(&a.provenance_predicate) {
        Some(path) => Some(
            kibaship_cli::input::read_bounded(
                std::path::Path::new(&path),
                "provenance predicate (--provenance-predicate)",
                kibaship_cosign::attest::MAX_PREDICATE_BYTES as u64,
            )
            .map_err(|e| bad(e.to_string()))?,
        ),
        None => None,
    };
    let sbom_ref = match opt(&a.sbom_ref) {
        Some(text) => Some(
            kibaship_oci::Reference::parse(&text)
                .map_err(|e| bad(format!("--sbom-ref {text:?}: {e}")))?,
        ),
        None => None,
    };
    if let Some(r) = &sbom_ref {
        kibaship_step::attest::check_sbom_ref(&plan, r)?;
    }
    if predicate.is_none() && sbom_ref.is_none() {
        return Err(bad(
            "nothing to attest: give --provenance-predicate and/or --sbom-ref".into(),
        ));
    }
    let password = std::env::var("COSIGN_PASSWORD").ok().map(Zeroizing::new);
    let signer = load_signer(&plan, password, None)?;
    let client = RegistryClient::new(ClientConfig {
        insecure_registries: insecure_hosts(&plan, insecure),
        timeout: Some(DEFAULT_TIMEOUT),
        ..ClientConfig::default()
    })
    .map_err(|e| bad(format!("registry client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| bad(format!("cannot start the async runtime: {e}")))?;
    let now = time::OffsetDateTime::now_utc();
    let mut written = Vec::new();
    if let Some(predicate) = &predicate {
        let refs = runtime.block_on(attest_provenance(&client, &plan, &signer, predicate, now))?;
        for r in &refs {
            eprintln!(
                "kibaship-step: attested the SLSA provenance onto {}: {r}",
                plan.target
            );
        }
        written.extend(refs);
    }
    if let Some(sbom_ref) = &sbom_ref {
        let refs =
            runtime.block_on(attach_buildkit_sbom(&client, &plan, &signer, sbom_ref, now))?;
        eprintln!(
            "kibaship-step: attached BuildKit's SBOM to {} and attested it: {}",
            plan.target,
            refs.join(" ")
        );
        written.extend(refs);
    }
    let mut budget = kibaship_step::results::ResultSet::new();
    budget.add(
        "attestations",
        a.attestations_result.as_deref(),
        written.join("  "),
    );
    if budget.encoded_len() > kibaship_step::results::TEKTON_RESULTS_BUDGET {
        return Err(
            SignError::Results(kibaship_step::results::ResultsError::TooLarge {
                needed: budget.encoded_len(),
                largest: "attestations".into(),
            })
            .into(),
        );
    }
    if let Some(path) = &a.attestations_result {
        std::fs::write(path, written.join("\n")).map_err(|source| {
            SignError::Results(kibaship_step::results::ResultsError::Write {
                name: "attestations".into(),
                path: path.clone(),
                source,
            })
        })?;
    }
    for w in &written {
        say(format_args!("attestation={w}"));
    }
    Ok(())
}

/// The registries reached over plain HTTP with `--insecure-registry true`: the image's and the signatures'.
fn insecure_hosts(plan: &kibaship_step::sign::SignPlan, insecure: bool) -> Vec<String> {
    let mut hosts = Vec::new();
    if insecure {
        hosts.push(plan.target.registry().to_string());
        if let Some(r) = &plan.signature_repository {
            hosts.push(r.registry().to_string());
        }
    }
    hosts
}

fn install(dest: &std::path::Path) -> Result<(), StepError> {
    use std::os::unix::fs::PermissionsExt;
    let io =
        |what: &str, e: std::io::Error| StepError::BadParameter(format!("install: {what}: {e}"));
    let me = std::env::current_exe().map_err(|e| io("cannot locate this binary", e))?;
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| io(&format!("cannot create {}", dir.display()), e))?;
    }
    std::fs::copy(&me, dest).map_err(|e| io(&format!("cannot copy to {}", dest.display()), e))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| io(&format!("cannot chmod {}", dest.display()), e))?;
    let _ = writeln!(
        std::io::stderr(),
        "kibaship-step: installed {}",
        dest.display()
    );
    Ok(())
}

/// Largest BuildKit provenance read (BuildKit's mode=max statements stay far below).
const MAX_BUILDKIT_PROVENANCE_BYTES: usize = 16 * 1024 * 1024;

fn provenance(a: ProvenanceArgs) -> Result<(), StepError> {
    use kibaship_step::buildctl::BuildMetadata;
    use kibaship_step::image::ImageName;
    use kibaship_step::provenance::{
        BuildkitProvenance, ProvenanceError, ProvenanceInput, default_builder_id, generate,
        plan_images, sha256_digest,
    };
    use kibaship_step::results::ResultsError;
    use kibaship_step::workspace::read_limited;
    let field = |field: &'static str, problem: String| ProvenanceError::Input { field, problem };
    let opt = |s: String| Some(s).filter(|s| !s.trim().is_empty());
    // The image result: registry/repository:tag, as the build wrote it.
    let image_field = "--image (image result)";
    let reference = kibaship_oci::Reference::parse(&a.image)
        .map_err(|e| field(image_field, format!("{:?}: {e}", a.image)))?;
    let (registry, rest) = a.image.split_once('/').ok_or_else(|| {
        field(
            image_field,
            format!("{:?} is not registry/repository:tag", a.image),
        )
    })?;
    let (repository, tag) = rest
        .rsplit_once(':')
        .ok_or_else(|| field(image_field, format!("{:?} has no tag", a.image)))?;
    let image = ImageName::new(registry, repository, tag)?;
    kibaship_step::provenance::check_sha256_digest("--digest (digest result)", &a.digest)?;
    let metadata = read_limited(
        &a.metadata_file,
        1024 * 1024,
        "buildctl metadata file (--metadata-file)",
        FailureKind::Build,
    )?;
    let metadata = BuildMetadata::parse(&metadata, &image)?;
    if metadata.digest != a.digest {
        return Err(field(
            "--digest (digest result)",
            format!(
                "{:?} is not what buildctl pushed ({} in {})",
                a.digest,
                metadata.digest,
                a.metadata_file.display()
            ),
        )
        .into());
    }
    let plan = read_limited(
        &a.plan,
        kibaship_step::plan::MAX_PLAN_BYTES,
        "plan.json (--plan)",
        FailureKind::Plan,
    )?;
    let buildkit = match &a.buildkit_provenance {
        Some(p) => Some(BuildkitProvenance::parse(&read_limited(
            p,
            MAX_BUILDKIT_PROVENANCE_BYTES,
            "BuildKit provenance (--buildkit-provenance)",
            FailureKind::Build,
        )?)?),
        None if a.no_buildkit_provenance => None,
        None => Some(BuildkitProvenance::parse(
            &buildkit_provenance_from_registry(&image, &metadata.digest, &a)?,
        )?),
    };
    let platform = kibaship_step::buildctl::parse_platforms(&a.platforms)?
        .into_iter()
        .next()
        .unwrap_or_default();
    let statement = generate(&ProvenanceInput {
        image: a.image.clone(),
        subject_name: reference.ggcr_repository(),
        digest: if a.digest.is_empty() {
            metadata.digest
        } else {
            a.digest
        },
        source_uri: a.source_url,
        commit: a.revision,
        git_ref: opt(a.git_ref),
        plan_digest: sha256_digest(&plan),
        plan_images: plan_images(&plan)?,
        platform,
        context_path: a.context_path,
        railpack_version: a.railpack_version,
        cache_key: a.cache_key,
        build_args: a.additional_build_args,
        build_secrets: a.build_secrets,
        build_key: opt(a.build_key),
        sbom: !a.no_sbom,
        invocation_id: a.invocation_id,
        builder_id: opt(a.builder_id).unwrap_or_else(default_builder_id),
        started_on: opt(a.started_on),
        finished_on: opt(a.finished_on),
        buildkit,
    })?;
    let write = |name: &str, path: &PathBuf, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| ResultsError::Write {
            name: name.to_string(),
            path: path.clone(),
            source,
        })
    };
    write(
        "provenance statement (--output)",
        &a.output,
        &statement.to_json(),
    )?;
    if let Some(p) = &a.predicate_output {
        write(
            "provenance predicate (--predicate-output)",
            p,
            &statement.predicate_json(),
        )?;
    }
    let subject = &statement.subject[0];
    say(format_args!(
        "subject={}@sha256:{}",
        subject.name.as_deref().unwrap_or_default(),
        subject
            .digest
            .get("sha256")
            .map(String::as_str)
            .unwrap_or_default()
    ));
    say(format_args!("provenance={}", a.output.display()));
    if let Some(p) = &a.predicate_output {
        say(format_args!("predicate={}", p.display()));
    }
    Ok(())
}

/// The one registry client of `build` and `provenance`: `registry` over plain HTTP when `insecure`, trusting
/// `ca_file` when given.
fn registry_client(
    registry: &str,
    insecure: bool,
    ca_file: Option<PathBuf>,
) -> Result<RegistryClient, StepError> {
    RegistryClient::new(ClientConfig {
        insecure_registries: if insecure {
            vec![registry.to_string()]
        } else {
            Vec::new()
        },
        ca_file,
        ..ClientConfig::default()
    })
    .map_err(|e| StepError::BadParameter(format!("registry client: {e}")))
}

/// A current-thread Tokio runtime for one subcommand's registry work.
fn current_thread_runtime() -> Result<tokio::runtime::Runtime, StepError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StepError::BadParameter(format!("cannot start the async runtime: {e}")))
}

/// BuildKit's SLSA statement from the registry: the index `digest`, its attestation manifests, the first SLSA v1
/// layer (blob checked against its digest).
fn buildkit_provenance_from_registry(
    image: &kibaship_step::image::ImageName,
    digest: &str,
    a: &ProvenanceArgs,
) -> Result<Vec<u8>, StepError> {
    use kibaship_step::provenance::{ProvenanceError, slsa_layer_digest};
    use kibaship_step::registry::{ManifestStore, RegistryError, attestation_manifests};
    let client = registry_client(
        image.registry(),
        a.insecure_registry,
        a.registry_ca_file.clone(),
    )?;
    let client = if a.timeout.is_zero() {
        client
    } else {
        client.with_timeout(a.timeout)
    };
    let store = OciManifestStore::new(client.clone());
    let runtime = current_thread_runtime()?;
    runtime.block_on(async {
        let pinned = image.pinned(digest);
        let index = store
            .fetch(image, digest)
            .await?
            .ok_or_else(|| RegistryError::Missing {
                reference: image.to_string(),
                digest: digest.to_string(),
            })?;
        for att in attestation_manifests(&index.bytes) {
            let Some(manifest) = store.fetch(image, &att).await? else {
                continue;
            };
            let Some(layer) = slsa_layer_digest(&manifest.bytes) else {
                continue;
            };
            let repository = kibaship_oci::Reference::parse(&image.pinned(&att)).map_err(|e| {
                RegistryError::Request {
                    reference: image.pinned(&att),
                    message: e.to_string(),
                }
            })?;
            let layer_digest = layer.parse().map_err(|e| RegistryError::BadManifest {
                reference: image.pinned(&att),
                problem: format!("layer digest {layer}: {e}"),
            })?;
            return client
                .fetch_blob(&repository, &layer_digest, MAX_BUILDKIT_PROVENANCE_BYTES as u64)
                .await
                .map_err(|e| {
                    StepError::from(RegistryError::Request {
                        reference: format!("{}@{layer}", image.repository()),
                        message: e.to_string(),
                    })
                });
        }
        Err(ProvenanceError::Buildkit(format!(
            "{pinned} has no attestation manifest with an {} layer (build without attest:provenance?); give \
             --buildkit-provenance FILE or --no-buildkit-provenance",
            kibaship_step::provenance::SLSA_PROVENANCE_V1
        ))
        .into())
    })
}

fn build(a: BuildArgs) -> Result<(), StepError> {
    let created = match a.created {
        Some(c) => c,
        None => time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| StepError::BadParameter(format!("cannot format the current time: {e}")))?,
    };
    let registry = a.image_registry.clone();
    let req = BuildRequest {
        source_dir: a.source_dir,
        context_path: a.context_path,
        plan_file: a.plan,
        info_file: a.info,
        image_registry: a.image_registry,
        image_repository: a.image_repository,
        image_tag: a.image_tag,
        revision: a.revision,
        source_url: a.source_url,
        authors: a.authors,
        created,
        platforms: a.platforms,
        cache_key: a.cache_key,
        railpack_version: a.railpack_version,
        build_secrets: a.build_secrets,
        additional_build_args: a.additional_build_args,
        secrets_dir: a.secrets_dir,
        // An unbound optional workspace makes Tekton substitute an empty path.
        build_cache_dir: a
            .build_cache_dir
            .filter(|p| !p.is_empty())
            .map(PathBuf::from),
        buildctl: a.buildctl,
        buildkit_host: a.buildkit_host,
        sbom: !a.no_sbom,
        insecure_registry: a.insecure_registry,
        dedupe: !a.no_dedupe,
        metadata_file: a.metadata_file,
        results: BuildResultPaths {
            image: a.image_result,
            digest: a.digest_result,
            sbom_ref: a.sbom_ref_result,
            build_duration: a.build_duration_result,
        },
    };
    let client = registry_client(&registry, a.insecure_registry, a.registry_ca_file)?;
    let runtime = current_thread_runtime()?;
    let store = OciManifestStore::new(client).with_timeout(a.timeout);
    let report = runtime.block_on(run_build(&req, &store, &mut std::io::stderr()))?;
    let outcome = match report.outcome {
        BuildOutcome::Built => "built",
        BuildOutcome::Reused => "reused",
    };
    say(format_args!("outcome={outcome}"));
    say(format_args!("image={}", report.image));
    say(format_args!("digest={}", report.digest));
    say(format_args!(
        "sbomRef={}",
        report.sbom_ref.unwrap_or_default()
    ));
    say(format_args!("buildKey={}", report.build_key.as_str()));
    say(format_args!("buildDuration={:.3}s", report.duration_secs));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::task_bool;

    #[test]
    fn task_booleans_are_true_false_or_empty() {
        assert_eq!(task_bool("--offline", "true"), Ok(true));
        assert_eq!(task_bool("--offline", " false\n"), Ok(false));
        assert_eq!(task_bool("--offline", ""), Ok(false));
        assert_eq!(
            task_bool("--allow-empty", "yes"),
            Err("--allow-empty \"yes\" is not true or false".to_string())
        );
    }
}
