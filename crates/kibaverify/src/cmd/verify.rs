//! `kibaverify verify`: verify an image's signatures in its registry, with cosign's flag names; or, with
//! `--policy FILE`, judge it by an admission policy file (docs/policy.md) as the webhook would.
//!
//! Exit codes: 0 at least one signature verified; 1 none did (each one's reason is printed); 2 bad input or an
//! unreachable registry. With `--policy`: 0 for `admit`, `admit-with-warning`, `not-selected` and `exception`; 1
//! for `deny`; 2 for bad input (a policy file with errors, a bad reference or flag) or an unreachable registry.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use kibaship_cosign::{
    Hint, ImagePolicy, ImagePolicyBuilder, ImageReport, ImageVerifier, LayerKind, Outcome,
    PredicateFailure, ReasonCode, Verdict,
};
use kibaship_oci::{Digest, Reference};
use kibaship_policy::{
    Answer, Exception, ExceptionMatch, MAX_POLICY_BYTES, Mode, NamespaceInfo, Policy, PolicySet,
};
use kibaship_sigstore::{CertificateIdentity, TrustedRoot};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::identity_flags::{GithubClaimFlags, matcher};
use kibaship_cli::input::{MAX_CONFIG_FILE_BYTES, read_bounded, read_text_bounded};
use kibaship_cli::terminal::{Escaped, Stdout, print_line};

/// Who must have signed, and how strictly: shared by `verify` and `verify-attestation`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_identity", "certificate_identity_regexp"])))]
pub struct VerifyFlags {
    /// Public key (PEM `PUBLIC KEY`, e.g. `cosign.pub`) the signatures must verify with.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Expected certificate identity (SAN: email, URI or username), exact (keyless).
    #[arg(long, value_name = "IDENTITY", conflicts_with = "key")]
    pub certificate_identity: Option<String>,
    /// Expected certificate identity as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_identity"])]
    pub certificate_identity_regexp: Option<String>,
    /// Expected OIDC issuer, exact.
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub certificate_oidc_issuer: Option<String>,
    /// Expected OIDC issuer as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_oidc_issuer"])]
    pub certificate_oidc_issuer_regexp: Option<String>,
    #[command(flatten)]
    pub github: GithubClaimFlags,
    /// `trusted_root.json` (Fulcio CAs, Rekor keys) to trust; default: the embedded Sigstore public-good root.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Accept key-based signatures without a Rekor entry (signed with `--tlog-upload=false`); with
    /// --use-signed-timestamps, also keyless timestamp-only bundles.
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
    /// Verify RFC 3161 timestamps (cosign's flag). With --insecure-ignore-tlog, a keyless bundle that has a
    /// timestamp and no transparency-log entry (timestamp-only) is accepted on its timestamp, as cosign does;
    /// without it such a bundle is refused (`timestamp-only`).
    #[arg(long)]
    pub use_signed_timestamps: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Most signature referrers (Sigstore bundles, cosign's OCI 1.1 signatures) checked per image. Beyond it,
    /// those whose descriptors declare the type looked for are checked first, and the output says the bound
    /// was hit.
    #[arg(long, value_name = "N", default_value_t = kibaship_cosign::registry::MAX_REFERRERS_CHECKED as u64,
          value_parser = clap::value_parser!(u64).range(1..=kibaship_oci::MAX_REFERRERS as u64))]
    pub max_referrers_checked: u64,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Arguments of `kibaverify verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image (a tag is resolved to its digest first).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Signed annotation the signature must carry (`key=value`, repeatable), as `cosign verify -a` checks it.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub annotations: Vec<(String, String)>,
    #[command(flatten)]
    pub flags: VerifyFlags,
    /// Admission policy file (docs/policy.md): judge the image by the policies that select it in `--namespace`,
    /// with their exceptions and modes, and print the webhook's answer (`admit`, `admit-with-warning`, `deny`,
    /// `not-selected`, `exception`). The policy names the authorities, the transparency-log requirement and
    /// the annotations, so the flags that would (`--key`, `--certificate-*`, `--insecure-ignore-tlog`, `-a`)
    /// are refused with it; `--trusted-root` and the registry flags apply.
    #[arg(long, value_name = "FILE", group = "signer", conflicts_with_all = POLICY_CONFLICTS)]
    pub policy: Option<PathBuf>,
    /// The namespace the image would run in (with `--policy`; default: `default`).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// A label of that namespace (`key=value`, repeatable; with `--policy`). Given once or more: the namespace
    /// has exactly these labels. Not given: its labels are unknown, and policies that select namespaces by label
    /// select it (as in the webhook when it cannot read them: unknown labels never skip a policy).
    #[arg(long = "namespace-label", value_name = "KEY=VALUE", value_parser = parse_annotation)]
    pub namespace_labels: Vec<(String, String)>,
}

/// The flags that describe a policy themselves, refused beside `--policy` (`--key` and the certificate
/// identities are refused through the `signer` group, of which `--policy` is one choice).
const POLICY_CONFLICTS: [&str; 11] = [
    "certificate_oidc_issuer",
    "certificate_oidc_issuer_regexp",
    "certificate_github_source_repository",
    "certificate_github_workflow_trigger",
    "certificate_github_workflow_sha",
    "certificate_github_workflow_name",
    "certificate_github_workflow_repository",
    "certificate_github_workflow_ref",
    "insecure_ignore_tlog",
    "use_signed_timestamps",
    "annotations",
];

/// The repository cosign's `COSIGN_REPOSITORY` names, where signatures (the legacy `.sig`/`.att` tags and the
/// bundle referrers) are written and read instead of the image's repository. Unset or empty: the image's.
pub fn signature_repository_from_env() -> anyhow::Result<Option<Reference>> {
    let Some(value) = std::env::var_os("COSIGN_REPOSITORY") else {
        return Ok(None);
    };
    let Some(value) = value.to_str() else {
        bail!("COSIGN_REPOSITORY is not UTF-8");
    };
    if value.is_empty() {
        return Ok(None);
    }
    let last = value.rsplit('/').next().unwrap_or(value);
    if value.contains('@') || (value.contains('/') && last.contains(':')) {
        bail!(
            "COSIGN_REPOSITORY={value:?} names a tag or digest; it must be a repository, e.g. registry.example/org/signatures"
        );
    }
    Reference::parse(value)
        .map(Some)
        .with_context(|| format!("COSIGN_REPOSITORY={value:?} is not a repository name"))
}

/// Parses one `-a key=value`.
pub fn parse_annotation(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

impl VerifyFlags {
    /// The policy these flags describe (one authority: the key or the certificate identity) and the trusted root.
    pub fn policy(
        &self,
        kind: LayerKind,
        predicate_type: Option<String>,
        annotations: BTreeMap<String, String>,
    ) -> anyhow::Result<(ImagePolicy, TrustedRoot)> {
        let mut builder = self.policy_builder(annotations)?;
        if kind == LayerKind::Attestation {
            builder = builder
                .signature_not_required()
                .require_attestation(predicate_type);
        }
        Ok((builder.build()?, self.trusted_root()?))
    }

    /// The policy these flags describe before its requirements: the authority (key or certificate identity),
    /// the transparency-log choice, the annotations and `COSIGN_REPOSITORY`.
    pub fn policy_builder(
        &self,
        annotations: BTreeMap<String, String>,
    ) -> anyhow::Result<ImagePolicyBuilder> {
        let mut builder = ImagePolicy::builder();
        if let Some(key) = &self.key {
            let pem = read_bounded(key, "public key", kibaship_sign::MAX_KEY_FILE_BYTES)?;
            builder = builder
                .key_pem(&pem)
                .with_context(|| format!("cannot load public key {}", key.display()))?;
        } else {
            builder = builder.keyless(CertificateIdentity {
                san: matcher(
                    self.certificate_identity.as_ref(),
                    self.certificate_identity_regexp.as_ref(),
                    "certificate-identity",
                )?,
                issuer: matcher(
                    self.certificate_oidc_issuer.as_ref(),
                    self.certificate_oidc_issuer_regexp.as_ref(),
                    "certificate-oidc-issuer",
                )?,
                github: self.github.github_claims(),
            });
        }
        builder = builder
            .accept_without_transparency_log(self.insecure_ignore_tlog)
            .use_signed_timestamps_without_transparency_log(
                self.insecure_ignore_tlog && self.use_signed_timestamps,
            )
            .annotations(annotations);
        if let Some(repository) = signature_repository_from_env()? {
            builder = builder.signature_repository(repository);
        }
        Ok(builder)
    }

    /// The trusted root: `--trusted-root`, else the embedded public-good root.
    pub fn trusted_root(&self) -> anyhow::Result<TrustedRoot> {
        Ok(match &self.trusted_root {
            Some(p) => {
                TrustedRoot::from_json(&read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?)
                    .with_context(|| format!("invalid trusted root {}", p.display()))?
            }
            None => TrustedRoot::public_good().context("embedded public-good trusted root")?,
        })
    }

    /// `--max-referrers-checked` (at most `MAX_REFERRERS`, so it fits).
    pub fn max_referrers(&self) -> usize {
        usize::try_from(self.max_referrers_checked).unwrap_or(usize::MAX)
    }
}

/// Verifies `reference` and prints the report; shared by `verify` and `verify-attestation`.
pub fn verify_and_report(
    reference: &str,
    flags: &VerifyFlags,
    kind: LayerKind,
    predicate_type: Option<String>,
    annotations: BTreeMap<String, String>,
) -> anyhow::Result<ExitCode> {
    let parsed = Reference::parse(reference)?;
    let (policy, root) = flags.policy(kind, predicate_type, annotations)?;
    let verifier = ImageVerifier::new(flags.registry.client()?, root)
        .with_max_referrers_checked(flags.max_referrers());
    let runtime = current_thread_runtime()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let verdict = runtime
        .block_on(verifier.verify(&parsed, &policy, now))
        .map_err(|e| {
            let code = e.code().map_or(String::new(), |c| format!(" ({c})"));
            anyhow::Error::new(e).context(format!("cannot verify {reference}{code}"))
        })?;
    let report = match kind {
        LayerKind::Signature => verdict.signatures(),
        LayerKind::Attestation => verdict.attestations(),
    }
    .context("internal: the verdict lacks the report the policy asked for")?;
    match flags.output {
        OutputFormat::Json => {
            print_line(serde_json::to_string_pretty(report)?).context("cannot write to stdout")?
        }
        OutputFormat::Text => print_text(report, Hints::Flags).context("cannot write to stdout")?,
    }
    Ok(if verdict.is_verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where the requirements came from, so that a hint names what the user would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hints {
    /// kibaverify's (cosign's) flags.
    Flags,
    /// An admission policy file (`--policy`).
    PolicyFile,
}

/// A library hint in kibaverify's (cosign's) flag names, or in the policy file's keys.
fn hint_text(hint: Hint, hints: Hints) -> &'static str {
    match (hint, hints) {
        (Hint::AcceptWithoutTransparencyLog, Hints::Flags) => {
            "pass --insecure-ignore-tlog to accept it without transparency-log proof"
        }
        (Hint::AcceptWithoutTransparencyLog, Hints::PolicyFile) => {
            "the policy would accept it without transparency-log proof with `transparencyLog: optional`"
        }
        (Hint::VerifyWithCertificateIdentity, Hints::Flags) => {
            "verify it with --certificate-identity and --certificate-oidc-issuer"
        }
        (Hint::VerifyWithCertificateIdentity, Hints::PolicyFile) => {
            "it is keyless: the policy would need a `keyless` authority"
        }
        (Hint::VerifyWithKey, Hints::Flags) => "verify it with --key",
        (Hint::VerifyWithKey, Hints::PolicyFile) => {
            "it was signed with a key: the policy would need a `key` authority"
        }
        (Hint::AcceptSignedTimestamps, Hints::Flags) => {
            "pass --insecure-ignore-tlog --use-signed-timestamps to accept it on its RFC 3161 timestamp alone"
        }
        (Hint::AcceptSignedTimestamps, Hints::PolicyFile) => {
            "the policy would accept it on its RFC 3161 timestamp with `signedTimestamps: accept`"
        }
    }
}

/// A verified image's report goes to stdout; a failed one to stderr. Text from the registry, the
/// certificates and the bundles is escaped (see `terminal`).
fn print_text(report: &ImageReport, hints: Hints) -> std::io::Result<()> {
    let passed = report.signatures.iter().filter(|s| s.verified()).count();
    let what = report.kind();
    let verified = report.verified();
    let image = Escaped(&report.image);
    if let Some(hit) = report.referrer_limit_hit {
        eprintln!(
            "note: {image} has {} referrers that could hold {what}; only {} were checked (those declaring the type looked for first, then the newest; raise --max-referrers-checked to check more)",
            hit.found, hit.limit
        );
    }
    if report.signatures.is_empty() {
        eprintln!(
            "NOT VERIFIED {image}: {}: no {what} found (looked for Sigstore bundle referrers and cosign's legacy tag)",
            report.code().map_or("unsigned", ReasonCode::as_str)
        );
        return Ok(());
    }
    let mut lines = Vec::with_capacity(report.signatures.len() + 1);
    if verified {
        lines.push(format!(
            "VERIFIED {image}: {passed} of {} {what} passed",
            report.signatures.len()
        ));
    } else {
        lines.push(format!(
            "NOT VERIFIED {image}: none of {} {what} passed",
            report.signatures.len()
        ));
        // Each FAIL line below starts with its code.
    }
    for s in &report.signatures {
        let place = match s.layer {
            Some(i) => format!("{} layer {i}", Escaped(&s.location)),
            None => Escaped(&s.location).to_string(),
        };
        match &s.outcome {
            Outcome::Accepted(a) => {
                let mut line = format!("  ok   {place}: signed by {}", Escaped(&a.signer));
                if let Some(pt) = &a.predicate_type {
                    line.push_str(&format!("; predicate {}", Escaped(pt)));
                }
                line.push_str(&format!(
                    "; transparency log: {}",
                    Escaped(&a.transparency_log)
                ));
                for n in &a.notes {
                    line.push_str(&format!("; note: {}", Escaped(n)));
                }
                lines.push(line);
            }
            Outcome::Rejected(r) => {
                let mut line = format!(
                    "  FAIL {place}: {}: {}",
                    r.code.as_str(),
                    Escaped(&r.message)
                );
                if let Some(hint) = r.hint {
                    line.push_str("; ");
                    line.push_str(hint_text(hint, hints));
                }
                lines.push(line);
            }
        }
    }
    if verified {
        let mut out = Stdout::lock();
        for line in lines {
            out.line(line)?;
        }
        out.flush()
    } else {
        for line in lines {
            eprintln!("{line}");
        }
        Ok(())
    }
}

/// Verifies the image's signatures (with `--policy`: judges it by the policy file).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.policy {
        return verify_with_policy_file(&args, file);
    }
    // Checked here rather than with clap's `requires`, which a present `--key` (conflicting with `--policy`)
    // would silently satisfy.
    if args.namespace.is_some() || !args.namespace_labels.is_empty() {
        bail!("--namespace and --namespace-label only apply with --policy");
    }
    let annotations = key_values(args.annotations, "-a")?;
    verify_and_report(
        &args.reference,
        &args.flags,
        LayerKind::Signature,
        None,
        annotations,
    )
}

/// `KEY=VALUE` pairs as a map; a key given twice must have one value.
fn key_values(
    pairs: Vec<(String, String)>,
    flag: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (key, value) in pairs {
        if let Some(previous) = map.insert(key.clone(), value.clone()) {
            if previous != value {
                bail!(
                    "{flag} {key} is given twice with different values ({previous:?} and {value:?})"
                );
            }
        }
    }
    Ok(map)
}

/// Whether `name` can be a Kubernetes namespace (an RFC 1123 label: at most 63 lower-case letters, digits and
/// `-`, starting and ending with a letter or digit).
fn is_namespace_name(name: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| alphanumeric(c) || c == '-')
        && name.starts_with(alphanumeric)
        && name.ends_with(alphanumeric)
}

/// 1 for `deny`, else 0.
fn answer_exit_code(answer: Answer) -> ExitCode {
    if answer == Answer::Deny {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One selected policy and its verdict (`None`: not checked, an exception covers the image).
struct Judged<'a> {
    policy: &'a Policy,
    verdict: Option<Verdict>,
}

impl Judged<'_> {
    /// Why the policy is not satisfied (`None` when it is, or was not checked).
    fn code(&self) -> Option<ReasonCode> {
        self.verdict.as_ref().and_then(Verdict::code)
    }
}

/// The answer the webhook gives, from the judged policies: the rules of [`Answer::for_image`], shared with it.
fn answer(judged: &[Judged<'_>], exception: ExceptionMatch<'_>) -> Answer {
    Answer::for_image(
        judged.iter().map(|j| (j.policy.mode(), j.code().is_none())),
        &exception,
    )
}

/// The digest a verdict is about.
fn verdict_digest(verdict: &Verdict) -> &Digest {
    match verdict {
        Verdict::Verified(v) => v.digest(),
        Verdict::NotVerified(n) => &n.digest,
    }
}

/// `kibaverify verify REF --policy FILE`: the policies of FILE that select REF in the namespace, each verified
/// through [`ImageVerifier::verify`] with its own requirements, and the answer the webhook would give.
fn verify_with_policy_file(args: &Args, file: &Path) -> anyhow::Result<ExitCode> {
    let namespace = args.namespace.as_deref().unwrap_or("default");
    if !is_namespace_name(namespace) {
        bail!(
            "--namespace {namespace:?} is not a namespace name (at most 63 lower-case letters, digits and `-`, starting and ending with a letter or digit)"
        );
    }
    let labels = if args.namespace_labels.is_empty() {
        None
    } else {
        Some(key_values(
            args.namespace_labels.clone(),
            "--namespace-label",
        )?)
    };
    let origin = file.display().to_string();
    let text = read_text_bounded(file, "admission policy", MAX_POLICY_BYTES as u64)?;
    let set = match PolicySet::parse(&origin, &text) {
        Ok(set) => set,
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
    };
    let reference = Reference::parse(&args.reference)
        .with_context(|| format!("{:?} is not an image reference", args.reference))?;
    if signature_repository_from_env()?.is_some() {
        eprintln!(
            "kibaverify: note: COSIGN_REPOSITORY is ignored with --policy: a policy's `signatureRepository` says where its signatures are"
        );
    }
    let root = args.flags.trusted_root()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // Selection and exceptions as the webhook applies them: the image as written, the namespace with its
    // labels when known.
    let info = match &labels {
        Some(labels) => NamespaceInfo::new(namespace, labels),
        None => NamespaceInfo::without_labels(namespace),
    };
    let selected = set.select(&info, &args.reference);
    let exception = if selected.is_empty() {
        ExceptionMatch::None
    } else {
        set.exception_for(namespace, &args.reference, now)
    };
    let mut judged: Vec<Judged<'_>> = selected
        .into_iter()
        .map(|policy| Judged {
            policy,
            verdict: None,
        })
        .collect();
    let mut digest = None;
    if !judged.is_empty() && !exception.is_active() {
        let verifier = ImageVerifier::new(args.flags.registry.client()?, root)
            .with_max_referrers_checked(args.flags.max_referrers());
        let runtime = current_thread_runtime()?;
        // The tag is resolved by the first verification; the others verify that digest, so every policy
        // judges the same image even if the tag moves meanwhile.
        let mut target = reference.clone();
        for entry in &mut judged {
            let verdict = runtime
                .block_on(verifier.verify(&target, entry.policy.image_policy(), now))
                .map_err(|e| {
                    let code = e.code().map_or(String::new(), |c| format!(" ({c})"));
                    anyhow::Error::new(e).context(format!(
                        "cannot verify {} for policy {}{code}",
                        args.reference,
                        entry.policy.name()
                    ))
                })?;
            if digest.is_none() {
                let pinned = verdict_digest(&verdict).clone();
                target = reference.with_digest(pinned.clone());
                digest = Some(pinned);
            }
            entry.verdict = Some(verdict);
        }
    }
    let answer = answer(&judged, exception);
    let judgement = Judgement {
        reference: &args.reference,
        digest: digest.as_ref(),
        namespace,
        labels: labels.as_ref(),
        file: &origin,
        answer,
        judged: &judged,
        exception,
    };
    match args.flags.output {
        OutputFormat::Json => print_line(serde_json::to_string_pretty(&judgement.json())?)
            .context("cannot write to stdout")?,
        OutputFormat::Text => judgement.print_text().context("cannot write to stdout")?,
    }
    Ok(answer_exit_code(answer))
}

/// Everything `verify --policy` reports.
struct Judgement<'a> {
    reference: &'a str,
    digest: Option<&'a Digest>,
    namespace: &'a str,
    labels: Option<&'a BTreeMap<String, String>>,
    file: &'a str,
    answer: Answer,
    judged: &'a [Judged<'a>],
    exception: ExceptionMatch<'a>,
}

/// `verify --policy --output json`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct JudgementJson<'a> {
    reference: &'a str,
    /// The digest the policies were verified against (`null` when nothing was verified).
    digest: Option<String>,
    namespace: &'a str,
    /// `null`: unknown (no `--namespace-label`).
    namespace_labels: Option<&'a BTreeMap<String, String>>,
    policy_file: &'a str,
    answer: Answer,
    policies: Vec<PolicyJson<'a>>,
    /// The exception covering the image (active or expired), if any.
    exception: Option<ExceptionJson<'a>>,
}

/// One selected policy in the JSON.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyJson<'a> {
    name: &'a str,
    mode: &'static str,
    /// `file:line` of the policy.
    location: String,
    /// `null`: not checked (an active exception).
    verified: Option<bool>,
    /// Why not verified, with the codes of `kibaverify verify`.
    code: Option<ReasonCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    predicate_failure: Option<&'a PredicateFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures: Option<&'a ImageReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attestations: Option<&'a ImageReport>,
}

/// An exception in the JSON.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ExceptionJson<'a> {
    owner: &'a str,
    reason: &'a str,
    expires: &'a str,
    location: String,
    /// `false`: it expired and no longer applies.
    active: bool,
}

impl<'a> Judgement<'a> {
    fn exception(&self) -> Option<(&'a Exception, bool)> {
        match self.exception {
            ExceptionMatch::Active(e) => Some((e, true)),
            ExceptionMatch::Expired(e) => Some((e, false)),
            ExceptionMatch::None => None,
        }
    }

    fn json(&self) -> JudgementJson<'a> {
        JudgementJson {
            reference: self.reference,
            digest: self.digest.map(ToString::to_string),
            namespace: self.namespace,
            namespace_labels: self.labels,
            policy_file: self.file,
            answer: self.answer,
            policies: self
                .judged
                .iter()
                .map(|j| PolicyJson {
                    name: j.policy.name(),
                    mode: j.policy.mode().as_str(),
                    location: j.policy.location(),
                    verified: j.verdict.as_ref().map(Verdict::is_verified),
                    code: j.code(),
                    predicate_failure: match &j.verdict {
                        Some(Verdict::NotVerified(n)) => n.predicate_failure.as_ref(),
                        _ => None,
                    },
                    signatures: j.verdict.as_ref().and_then(Verdict::signatures),
                    attestations: j.verdict.as_ref().and_then(Verdict::attestations),
                })
                .collect(),
            exception: self.exception().map(|(e, active)| ExceptionJson {
                owner: e.owner(),
                reason: e.reason(),
                expires: e.expires_rfc3339(),
                location: e.location(),
                active,
            }),
        }
    }

    /// A heading, one line per selected policy followed by its signatures (and attestations) as `verify`
    /// prints them, and the answer. Policy-file text is escaped like registry text.
    fn print_text(&self) -> std::io::Result<()> {
        let labels = match self.labels {
            None => "labels unknown".to_owned(),
            Some(labels) => format!(
                "labels {}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        };
        let count = self.judged.len();
        print_line(format_args!(
            "{}: {count} {} select{} {} in namespace {} ({})",
            Escaped(self.file),
            if count == 1 { "policy" } else { "policies" },
            if count == 1 { "s" } else { "" },
            Escaped(self.reference),
            self.namespace,
            Escaped(&labels),
        ))?;
        if let Some((e, false)) = self.exception() {
            print_line(format_args!(
                "exception of {} ({}) expired at {}; it no longer applies",
                Escaped(e.owner()),
                Escaped(&e.location()),
                e.expires_rfc3339()
            ))?;
        }
        for j in self.judged {
            let policy = j.policy;
            let mut line = format!(
                "policy {} ({}, {}): ",
                Escaped(policy.name()),
                policy.mode(),
                Escaped(&policy.location())
            );
            match (&j.verdict, j.code()) {
                (None, _) => line.push_str("not checked (the exception applies)"),
                (Some(_), None) => line.push_str("verified"),
                (Some(_), Some(code)) => {
                    line.push_str(&format!("NOT VERIFIED: {code}"));
                    if policy.mode() == Mode::Audit {
                        line.push_str(" (audit mode: the webhook only logs it)");
                    }
                }
            }
            if self.labels.is_none() && policy.match_labels().is_some() {
                line.push_str(
                    "; selected because the namespace's labels are unknown (pass --namespace-label)",
                );
            }
            print_line(line)?;
            if let Some(verdict) = &j.verdict {
                for report in [verdict.signatures(), verdict.attestations()]
                    .into_iter()
                    .flatten()
                {
                    print_text(report, Hints::PolicyFile)?;
                }
                if let Verdict::NotVerified(n) = verdict
                    && let Some(f) = &n.predicate_failure
                {
                    print_line(format_args!(
                        "  predicate check {} of {}: wanted {}, got {}",
                        Escaped(&f.path),
                        Escaped(&f.predicate_type),
                        Escaped(&f.wanted),
                        Escaped(&f.got)
                    ))?;
                }
            }
        }
        let why = match self.answer {
            Answer::NotSelected => format!(
                "no policy selects it in namespace {}; the webhook does not check it",
                self.namespace
            ),
            Answer::Exception => match self.exception() {
                Some((e, _)) => format!(
                    "admitted by exception (owner {}, expires {}; {}): {}",
                    Escaped(e.owner()),
                    e.expires_rfc3339(),
                    Escaped(&e.location()),
                    Escaped(e.reason())
                ),
                None => "admitted by exception".to_owned(),
            },
            Answer::Admit => {
                let audited = self.failures(Mode::Audit);
                if audited.is_empty() {
                    "every selected policy verified it".to_owned()
                } else {
                    format!("only audit-mode policies failed (the webhook logs them): {audited}")
                }
            }
            Answer::AdmitWithWarning => self.failures(Mode::Warn),
            Answer::Deny => self.failures(Mode::Enforce),
        };
        print_line(format_args!("answer: {}: {why}", self.answer.as_str()))
    }

    /// `policy NAME: CODE` for the policies of `mode` that failed, joined with `; `.
    fn failures(&self, mode: Mode) -> String {
        self.judged
            .iter()
            .filter(|j| j.policy.mode() == mode)
            .filter_map(|j| {
                j.code()
                    .map(|code| format!("policy {}: {code}", Escaped(j.policy.name())))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}
