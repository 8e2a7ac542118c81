//! `kibaverify verify`: verify an image's signatures in its registry, with cosign's flag names.
//!
//! Exit codes: 0 at least one signature verified; 1 none did (each one's reason is printed); 2 bad input or an
//! unreachable registry.
use std::path::PathBuf;
use std::process::ExitCode;

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use kibaship_cosign::{
    Hint, ImagePolicy, ImageReport, ImageVerifier, LayerKind, Outcome, ReasonCode,
};
use kibaship_oci::Reference;
use kibaship_sigstore::{CertificateIdentity, TrustedRoot};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::identity_flags::{GithubClaimFlags, matcher};
use kibaship_cli::input::{MAX_CONFIG_FILE_BYTES, read_bounded};
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
    /// Accept key-based signatures without a Rekor entry (signed with `--tlog-upload=false`).
    #[arg(long)]
    pub insecure_ignore_tlog: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
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
}

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
            .annotations(annotations);
        if kind == LayerKind::Attestation {
            builder = builder
                .signature_not_required()
                .require_attestation(predicate_type);
        }
        if let Some(repository) = signature_repository_from_env()? {
            builder = builder.signature_repository(repository);
        }
        let root = match &self.trusted_root {
            Some(p) => {
                TrustedRoot::from_json(&read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?)
                    .with_context(|| format!("invalid trusted root {}", p.display()))?
            }
            None => TrustedRoot::public_good().context("embedded public-good trusted root")?,
        };
        Ok((builder.build()?, root))
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
    let verifier = ImageVerifier::new(flags.registry.client()?, root);
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
        OutputFormat::Text => print_text(report).context("cannot write to stdout")?,
    }
    Ok(if verdict.is_verified() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A library hint in kibaverify's (cosign's) flag names.
fn hint_text(hint: Hint) -> &'static str {
    match hint {
        Hint::AcceptWithoutTransparencyLog => {
            "pass --insecure-ignore-tlog to accept it without transparency-log proof"
        }
        Hint::VerifyWithCertificateIdentity => {
            "verify it with --certificate-identity and --certificate-oidc-issuer"
        }
        Hint::VerifyWithKey => "verify it with --key",
    }
}

/// A verified image's report goes to stdout; a failed one to stderr. Text from the registry, the
/// certificates and the bundles is escaped (see `terminal`).
fn print_text(report: &ImageReport) -> std::io::Result<()> {
    let passed = report.signatures.iter().filter(|s| s.verified()).count();
    let what = report.kind();
    let verified = report.verified();
    let image = Escaped(&report.image);
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
                    line.push_str(hint_text(hint));
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

/// Verifies the image's signatures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut annotations = BTreeMap::new();
    for (key, value) in args.annotations {
        if let Some(previous) = annotations.insert(key.clone(), value.clone()) {
            if previous != value {
                bail!("-a {key} is given twice with different values ({previous:?} and {value:?})");
            }
        }
    }
    verify_and_report(
        &args.reference,
        &args.flags,
        LayerKind::Signature,
        None,
        annotations,
    )
}
