//! `kibaverify verify`: verify an image's signatures in its registry, with cosign's flag names.
//!
//! Exit codes: 0 at least one signature verified; 1 none did (each one's reason is printed); 2 bad input or an
//! unreachable registry.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_cosign::{ImageReport, LayerKind, VerifyOptions};
use kibaship_oci::Reference;
use kibaship_sigstore::{
    CertificateIdentity, GithubClaims, IdentityPolicy, Matcher, PublicKey, TrustedRoot, Verifier,
};

use super::digest::{OutputFormat, RegistryFlags};

/// Largest key or trusted-root file read.
const MAX_POLICY_FILE_BYTES: u64 = 4 * 1024 * 1024;

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
    /// Expected certificate identity as a regular expression (unanchored, as in cosign).
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_identity"])]
    pub certificate_identity_regexp: Option<String>,
    /// Expected OIDC issuer, exact.
    #[arg(long, value_name = "URL", conflicts_with = "key")]
    pub certificate_oidc_issuer: Option<String>,
    /// Expected OIDC issuer as a regular expression.
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["key", "certificate_oidc_issuer"])]
    pub certificate_oidc_issuer_regexp: Option<String>,
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
    #[command(flatten)]
    pub flags: VerifyFlags,
}

fn read_bounded(path: &PathBuf, what: &str) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if meta.len() > MAX_POLICY_FILE_BYTES {
        bail!(
            "{what} {} is larger than {MAX_POLICY_FILE_BYTES} bytes",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn matcher(exact: Option<&String>, regex: Option<&String>, flag: &str) -> anyhow::Result<Matcher> {
    match (exact, regex) {
        (Some(e), None) => Ok(Matcher::Exact(e.clone())),
        (None, Some(r)) => Matcher::regex(r)
            .with_context(|| format!("--{flag}-regexp is not a valid regular expression")),
        _ => bail!("one of --{flag} or --{flag}-regexp is required"),
    }
}

impl VerifyFlags {
    /// The verification options these flags describe.
    pub fn options(&self, predicate_type: Option<String>) -> anyhow::Result<VerifyOptions> {
        let identity = if let Some(key) = &self.key {
            let pem = String::from_utf8(read_bounded(key, "public key")?)
                .context("--key is not PEM text")?;
            IdentityPolicy::Key(
                PublicKey::from_pem(&pem)
                    .with_context(|| format!("cannot load public key {}", key.display()))?,
            )
        } else {
            IdentityPolicy::Certificate(CertificateIdentity {
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
                github: GithubClaims::default(),
            })
        };
        let root = match &self.trusted_root {
            Some(p) => TrustedRoot::from_json(&read_bounded(p, "trusted root")?)
                .with_context(|| format!("invalid trusted root {}", p.display()))?,
            None => TrustedRoot::public_good().context("embedded public-good trusted root")?,
        };
        Ok(VerifyOptions {
            identity,
            verifier: Verifier::new(root),
            ignore_tlog: self.insecure_ignore_tlog,
            predicate_type,
        })
    }
}

/// Verifies `reference` and prints the report; shared by `verify` and `verify-attestation`.
pub fn verify_and_report(
    reference: &str,
    flags: &VerifyFlags,
    kind: LayerKind,
    predicate_type: Option<String>,
) -> anyhow::Result<ExitCode> {
    let parsed = Reference::parse(reference)?;
    let options = flags.options(predicate_type)?;
    let client = flags.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime
        .block_on(kibaship_cosign::verify_image(
            &client, &parsed, kind, &options,
        ))
        .with_context(|| format!("cannot verify {reference}"))?;
    match flags.output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        OutputFormat::Text => print_text(&report),
    }
    Ok(if report.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_text(report: &ImageReport) {
    let passed = report.signatures.iter().filter(|s| s.verified).count();
    let what = report.kind;
    if report.signatures.is_empty() {
        eprintln!(
            "NOT VERIFIED {}: no {what} found (looked for Sigstore bundle referrers and cosign's legacy tag)",
            report.image
        );
        return;
    }
    if report.verified {
        println!(
            "VERIFIED {}: {passed} of {} {what} passed",
            report.image,
            report.signatures.len()
        );
    } else {
        eprintln!(
            "NOT VERIFIED {}: none of {} {what} passed",
            report.image,
            report.signatures.len()
        );
    }
    for s in &report.signatures {
        let place = match s.layer {
            Some(i) => format!("{} layer {i}", s.location),
            None => s.location.clone(),
        };
        match (&s.accepted, &s.reason) {
            (Some(a), _) => {
                let mut line = format!("  ok   {place}: signed by {}", a.signer);
                if let Some(pt) = &a.predicate_type {
                    line.push_str(&format!("; predicate {pt}"));
                }
                line.push_str(&format!("; transparency log: {}", a.transparency_log));
                for n in &a.notes {
                    line.push_str(&format!("; note: {n}"));
                }
                if report.verified {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            }
            (None, reason) => {
                let line = format!(
                    "  FAIL {place}: {}",
                    reason.as_deref().unwrap_or("not verified")
                );
                if report.verified {
                    println!("{line}");
                } else {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// Verifies the image's signatures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    verify_and_report(&args.reference, &args.flags, LayerKind::Signature, None)
}
