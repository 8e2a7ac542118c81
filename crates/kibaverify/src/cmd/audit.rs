//! `kibaverify audit`: which images the workloads of a cluster, of manifests, of an image list or of arguments
//! run, who signed them, and what the admission webhook would answer (docs/audit.md). The logic is in
//! `kibaship_audit`; this is the flags, the file reading and the output.
//!
//! Exit codes: 0 nothing found by `--fail-on`; 1 findings; 2 part of the input could not be read (a manifest, a
//! list line, a resource the account may not list, an unreachable API server or registry), after the rest
//! was audited and reported, or bad flags.
use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use kibaship_audit::cluster::{self, ClusterScope};
use kibaship_audit::render::{report_html, report_json, report_sarif, report_table};
use kibaship_audit::{
    AuditConfig, FailOn, Inventory, MAX_INPUT_FILE_BYTES, Origin, Problem, Progress, Requirements,
};
use kibaship_cli::input::read_text_bounded;
use kibaship_cli::terminal::Escaped;
use kibaship_cosign::LayerKind;
use kibaship_policy::{MAX_POLICY_BYTES, PolicySet};
use kibaship_sigstore::Verifier;

use super::digest::{OutputFormat, RegistryFlags};
use super::identity_flags::GithubClaimFlags;
use super::verify::VerifyFlags;

/// Output formats of `audit`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditOutput {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    /// The stable JSON report (docs/audit.md).
    Json,
    /// SARIF 2.1.0, one result per workload the webhook would deny or warn about.
    Sarif,
    /// One self-contained HTML page (sortable, filterable, a summary chart; no network).
    Html,
}

/// What makes `audit` exit with 1.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailOnArg {
    /// A container runs an image with no signature at all.
    Unsigned,
    /// The webhook would deny a workload.
    #[default]
    Denied,
    /// Anything not clean: a denial, a warning, an image that did not verify (audit mode included).
    Any,
}

/// Arguments of `kibaverify audit`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_identity", "certificate_identity_regexp", "policy"])))]
pub struct Args {
    /// Image references to audit (besides the other inputs).
    #[arg(value_name = "REF")]
    pub references: Vec<String>,
    /// Kubernetes YAML (multi-document, Kustomize output) or JSON: a file, or a directory read recursively
    /// (`*.yaml`, `*.yml`, `*.json`). Repeatable.
    #[arg(long, value_name = "DIR|FILE")]
    pub manifests: Vec<PathBuf>,
    /// An image list: one reference a line, blank lines and `#` comments skipped. Repeatable.
    #[arg(long, value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// Audit the cluster's workloads (implied by --kubeconfig, --context, --all-namespaces and -l, and when
    /// no other input is given): with the kubeconfig, else `KUBECONFIG`/`~/.kube/config`, else in-cluster.
    #[arg(long)]
    pub cluster: bool,
    /// The kubeconfig file to use.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace to list (default: the kubeconfig's); also the namespace of manifest objects without one
    /// and of listed or given images (default: `default`).
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Read each cluster workload's images with its pull secrets, as the kubelet pulls them: the secrets its
    /// `imagePullSecrets` names, else its service account's (types `kubernetes.io/dockerconfigjson` and
    /// `kubernetes.io/dockercfg`). Needs `get` on secrets and serviceaccounts. What one secret's credentials
    /// read is never used for a workload without that secret.
    #[arg(long)]
    pub use_pull_secrets: bool,
    /// List workloads in every namespace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only workloads with these labels (`app=web,tier!=db`), as `kubectl -l`.
    #[arg(short = 'l', long = "selector", value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// Admission policy file (docs/policy.md): judge every container as the webhook would (policy selection by
    /// namespace and image, modes, exceptions). Instead of --key / --certificate-identity.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_oidc_issuer", "certificate_oidc_issuer_regexp", "insecure_ignore_tlog", "certificate_github_source_repository", "certificate_github_workflow_trigger", "certificate_github_workflow_sha", "certificate_github_workflow_name", "certificate_github_workflow_repository", "certificate_github_workflow_ref"])]
    pub policy: Option<PathBuf>,
    /// Public key (PEM) every image's signature must verify with (as `verify --key`; every image is then
    /// judged by one `enforce` policy).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Expected certificate identity (keyless), exact.
    #[arg(long, value_name = "IDENTITY", conflicts_with = "key")]
    pub certificate_identity: Option<String>,
    /// Expected certificate identity as a Go (RE2) regular expression, unanchored.
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_identity"])]
    pub certificate_identity_regexp: Option<String>,
    /// Expected OIDC issuer, exact.
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub certificate_oidc_issuer: Option<String>,
    /// Expected OIDC issuer as a Go (RE2) regular expression, unanchored.
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_oidc_issuer"])]
    pub certificate_oidc_issuer_regexp: Option<String>,
    #[command(flatten)]
    pub github: GithubClaimFlags,
    /// `trusted_root.json` to trust; default: the embedded Sigstore public-good root.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Accept key-based signatures without a Rekor entry.
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Which findings exit with 1.
    #[arg(long, value_enum, default_value_t = FailOnArg::Denied)]
    pub fail_on: FailOnArg,
    /// Images resolved or verified at the same time, per registry.
    #[arg(long, default_value_t = kibaship_audit::DEFAULT_CONCURRENCY as u32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Registry flags; here `--timeout` bounds each image (its resolution, and each verification), not the
    /// whole audit.
    #[command(flatten)]
    pub registry: RegistryFlags,
}

impl Args {
    fn verify_flags(&self) -> VerifyFlags {
        VerifyFlags {
            key: self.key.clone(),
            certificate_identity: self.certificate_identity.clone(),
            certificate_identity_regexp: self.certificate_identity_regexp.clone(),
            certificate_oidc_issuer: self.certificate_oidc_issuer.clone(),
            certificate_oidc_issuer_regexp: self.certificate_oidc_issuer_regexp.clone(),
            github: self.github.clone(),
            trusted_root: self.trusted_root.clone(),
            insecure_ignore_tlog: self.insecure_ignore_tlog,
            use_signed_timestamps: false,
            output: OutputFormat::Text,
            max_referrers_checked: kibaship_cosign::registry::MAX_REFERRERS_CHECKED as u64,
            registry: self.registry.clone(),
        }
    }

    fn reads_cluster(&self) -> bool {
        self.cluster
            || self.kubeconfig.is_some()
            || self.context.is_some()
            || self.all_namespaces
            || self.selector.is_some()
            || (self.manifests.is_empty() && self.images.is_empty() && self.references.is_empty())
    }
}

/// A progress bar on stderr (only on a terminal).
struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn add_steps(&self, steps: usize) {
        self.0.inc_length(steps as u64);
    }
    fn step_done(&self, _image: &str) {
        self.0.inc(1);
    }
}

/// The manifest files under `path` (itself when a file), sorted.
fn manifest_files(path: &Path, out: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    if !path.is_dir() {
        out.push(path.to_owned());
        return;
    }
    let entries = match std::fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Problem::error(
                path.display().to_string(),
                format!("cannot read the directory: {e}"),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            manifest_files(&p, out, problems);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(p);
        }
    }
}

/// Runs the audit.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.use_pull_secrets && !args.reads_cluster() {
        eprintln!(
            "kibaverify: error: --use-pull-secrets reads the pull secrets of workloads listed from the cluster, and \
             this audit reads no cluster: add --cluster (or -A, -n NS, --kubeconfig FILE), or drop the flag"
        );
        return Ok(ExitCode::from(2));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let flags = args.verify_flags();
    let requirements = match &args.policy {
        Some(file) => {
            let origin = file.display().to_string();
            let text = read_text_bounded(file, "admission policy", MAX_POLICY_BYTES as u64)?;
            match PolicySet::parse(&origin, &text) {
                Ok(set) => Requirements::PolicyFile(origin, Arc::new(set)),
                Err(errors) => {
                    eprintln!(
                        "kibaverify: error: {} is not a valid admission policy:",
                        Escaped(&origin)
                    );
                    for error in &errors.0 {
                        eprintln!("{}", Escaped(&error.to_string()));
                    }
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => {
            let (policy, _) = flags.policy(LayerKind::Signature, None, BTreeMap::new())?;
            Requirements::Flags(Arc::new(policy))
        }
    };
    let root = flags.trusted_root()?;
    let mut client_config = args.registry.client_config();
    client_config.timeout = None;
    let client = kibaship_oci::RegistryClient::new(client_config)
        .context("cannot set up the registry client")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;

    let default_namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    let mut inventory = Inventory::default();
    if args.reads_cluster() {
        match runtime.block_on(cluster::connect(
            args.kubeconfig.as_deref(),
            args.context.as_deref(),
        )) {
            Ok((kube, kube_namespace, url)) => {
                let scope = ClusterScope {
                    namespace: if args.all_namespaces {
                        None
                    } else {
                        Some(args.namespace.clone().unwrap_or(kube_namespace))
                    },
                    label_selector: args.selector.clone(),
                };
                let reached =
                    runtime.block_on(cluster::add_cluster(&mut inventory, &kube, &scope, &url));
                if reached && args.use_pull_secrets {
                    runtime.block_on(cluster::add_pull_credentials(&mut inventory, &kube));
                }
            }
            Err(e) => inventory
                .problems
                .push(Problem::error("cluster", e.to_string())),
        }
    }
    let mut files = Vec::new();
    for path in &args.manifests {
        manifest_files(path, &mut files, &mut inventory.problems);
    }
    for file in &files {
        let name = file.display().to_string();
        match read_text_bounded(file, "manifest", MAX_INPUT_FILE_BYTES) {
            Ok(text) => inventory.add_manifest_file(&name, &text, &default_namespace),
            Err(e) => inventory.problems.push(Problem::error(name, e.to_string())),
        }
    }
    for file in &args.images {
        let name = file.display().to_string();
        match read_text_bounded(file, "image list", MAX_INPUT_FILE_BYTES) {
            Ok(text) => inventory.add_image_list(&name, &text, &default_namespace),
            Err(e) => inventory.problems.push(Problem::error(name, e.to_string())),
        }
    }
    for (i, reference) in args.references.iter().enumerate() {
        inventory.add_reference(
            reference,
            &default_namespace,
            Origin::Argument { position: i + 1 },
        );
    }

    let config = AuditConfig {
        client,
        verifier: Arc::new(Verifier::new(root)),
        concurrency: args.concurrency as usize,
        image_timeout: (!args.registry.timeout.is_zero()).then_some(args.registry.timeout),
        now,
    };
    let report = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} registry reads {elapsed}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let progress = Bar(bar);
        let report = runtime.block_on(kibaship_audit::audit(
            inventory,
            &requirements,
            &config,
            &progress,
        ));
        progress.0.finish_and_clear();
        report
    } else {
        runtime.block_on(kibaship_audit::audit(
            inventory,
            &requirements,
            &config,
            &kibaship_audit::NoProgress,
        ))
    };
    let text = match args.output {
        AuditOutput::Table => report_table(&report),
        AuditOutput::Json => report_json(&report),
        AuditOutput::Sarif => report_sarif(&report),
        AuditOutput::Html => report_html(&report),
    };
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, text.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut stdout))
        .context("cannot write to stdout")?;
    // Input problems also go to stderr when the report is not a table (which lists them).
    if args.output != AuditOutput::Table {
        for p in &report.problems {
            if p.severity == kibaship_audit::Severity::Error {
                eprintln!(
                    "kibaverify: error: {}: {}",
                    Escaped(&p.input),
                    Escaped(&p.message)
                );
            }
        }
    }
    let fail_on = match args.fail_on {
        FailOnArg::Unsigned => FailOn::Unsigned,
        FailOnArg::Denied => FailOn::Denied,
        FailOnArg::Any => FailOn::Any,
    };
    Ok(ExitCode::from(report.exit_code(fail_on)))
}
