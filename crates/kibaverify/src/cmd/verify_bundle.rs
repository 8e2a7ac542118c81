//! `kibaverify verify-bundle`: verify a Sigstore bundle offline, with cosign's flag names.
//!
//! Exit codes: 0 verified; 1 not verified (the reason on stderr, or in the JSON on stdout);
//! 2 bad input (unreadable files, malformed bundle or trusted root, bad flags).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, CertificateIdentity, IdentityPolicy, PublicKey, TimeEvidence,
    TrustedRoot, Verifier, VerifyError, parse_digest,
};

use kibaship_cli::input::{MAX_CONFIG_FILE_BYTES, read_bounded};
use kibaship_cli::terminal::{Escaped, print_line};

/// Blobs verified with `--artifact` are hashed in memory.
const MAX_BLOB_FILE_BYTES: u64 = 1024 * 1024 * 1024;
use super::identity_flags::{GithubClaimFlags, matcher};

/// How results are printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Output {
    /// One line on success, one paragraph on failure.
    Text,
    /// A JSON object on stdout.
    Json,
}

/// Arguments of `verify-bundle`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["artifact", "digest"])))]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_identity", "certificate_identity_regexp"])))]
pub struct Args {
    /// The Sigstore bundle (`.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    pub bundle: PathBuf,
    /// The signed artifact (for DSSE bundles: the attestation subject).
    #[arg(long, value_name = "FILE")]
    pub artifact: Option<PathBuf>,
    /// The artifact digest instead of the artifact, e.g. `sha256:<hex>`.
    #[arg(long, value_name = "ALG:HEX")]
    pub digest: Option<String>,
    /// Expected certificate identity (SAN: email, URI or username), exact.
    #[arg(long, value_name = "IDENTITY")]
    pub certificate_identity: Option<String>,
    /// Expected certificate identity as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with = "certificate_identity")]
    pub certificate_identity_regexp: Option<String>,
    /// Expected OIDC issuer, exact.
    #[arg(long, value_name = "URL")]
    pub certificate_oidc_issuer: Option<String>,
    /// Expected OIDC issuer as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with = "certificate_oidc_issuer")]
    pub certificate_oidc_issuer_regexp: Option<String>,
    #[command(flatten)]
    pub github: GithubClaimFlags,
    /// Verify with this managed public key (PEM) instead of a certificate identity.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    pub key: Option<PathBuf>,
    /// `trusted_root.json` to trust (default: the embedded Sigstore public-good root).
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Accept a timestamp-only bundle (an RFC 3161 timestamp, no transparency-log entry) on its timestamp, as
    /// `verify --insecure-ignore-tlog --use-signed-timestamps` and sigstore-go's `WithSignedTimestamps(1)` do;
    /// the timestamp must verify against the trusted root's TSAs. Without it such a bundle is refused with the
    /// code `timestamp-only`. Log entries a bundle has are checked either way.
    #[arg(long)]
    pub use_signed_timestamps: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
}

/// The stable code of a refusal this command names (as `verify` names its reasons), if any.
fn failure_code(err: &VerifyError) -> Option<&'static str> {
    match err {
        VerifyError::NoTransparencyLogEntry => Some("timestamp-only"),
        _ => None,
    }
}

/// Reads a PEM `PUBLIC KEY` file (`--key`), bounded, naming the file in errors.
pub fn load_public_key(path: &std::path::Path) -> anyhow::Result<PublicKey> {
    let pem = String::from_utf8(read_bounded(
        path,
        "key",
        kibaship_sign::MAX_KEY_FILE_BYTES,
    )?)
    .context("--key is not PEM text")?;
    PublicKey::from_pem(&pem).with_context(|| format!("cannot load public key {}", path.display()))
}

/// The certificate identity cosign's flags describe: SAN and issuer, each exact or a Go regexp, and GitHub claims.
pub fn certificate_identity(
    identity: Option<&String>,
    identity_regexp: Option<&String>,
    issuer: Option<&String>,
    issuer_regexp: Option<&String>,
    github: &GithubClaimFlags,
) -> anyhow::Result<CertificateIdentity> {
    Ok(CertificateIdentity {
        issuer: matcher(issuer, issuer_regexp, "certificate-oidc-issuer")?,
        san: matcher(identity, identity_regexp, "certificate-identity")?,
        github: github.github_claims(),
    })
}

/// `--trusted-root`, or the embedded Sigstore public-good root without one.
pub fn load_trusted_root(path: Option<&std::path::Path>) -> anyhow::Result<TrustedRoot> {
    match path {
        Some(p) => TrustedRoot::from_json(&read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?)
            .with_context(|| format!("invalid trusted root {}", p.display())),
        None => TrustedRoot::public_good().context("embedded public-good trusted root"),
    }
}

fn identity_policy(args: &Args) -> anyhow::Result<IdentityPolicy> {
    if let Some(key) = &args.key {
        let key = load_public_key(key)?;
        return Ok(IdentityPolicy::Key(key));
    }
    Ok(IdentityPolicy::Certificate(certificate_identity(
        args.certificate_identity.as_ref(),
        args.certificate_identity_regexp.as_ref(),
        args.certificate_oidc_issuer.as_ref(),
        args.certificate_oidc_issuer_regexp.as_ref(),
        &args.github,
    )?))
}

/// Runs the subcommand.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let policy = identity_policy(&args)?;
    let verifier = Verifier::new(load_trusted_root(args.trusted_root.as_deref())?);
    let bundle = Bundle::from_json(&read_bounded(
        &args.bundle,
        "bundle",
        kibaship_sigstore::MAX_BUNDLE_BYTES as u64,
    )?)
    .with_context(|| format!("invalid bundle {}", args.bundle.display()))?;
    let artifact_bytes;
    let digest;
    let artifact = match (&args.artifact, &args.digest) {
        (Some(path), None) => {
            artifact_bytes = read_bounded(path, "artifact", MAX_BLOB_FILE_BYTES)?;
            ArtifactPolicy::Bytes(&artifact_bytes)
        }
        (None, Some(d)) => {
            digest = parse_digest(d).with_context(|| {
                format!("--digest {d:?} is not `sha256:<64 hex digits>` (or sha384/sha512)")
            })?;
            ArtifactPolicy::Digest {
                algorithm: digest.0,
                digest: &digest.1,
            }
        }
        _ => bail!("exactly one of --artifact or --digest is required"),
    };
    let evidence = if args.use_signed_timestamps {
        TimeEvidence::SignedTimestamps
    } else {
        TimeEvidence::TransparencyLog
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let outcome = verifier.verify_at_with(&bundle, artifact, &policy, now, evidence);
    match outcome {
        Ok(result) => {
            match args.output {
                Output::Json => print_line(
                    serde_json::json!({ "verified": true, "bundle": args.bundle.display().to_string(), "result": result }),
                )?,
                Output::Text => {
                    let who = result.signer.to_string();
                    let times = result
                        .verified_times
                        .iter()
                        .map(|t| {
                            let when = time::OffsetDateTime::from_unix_timestamp(t.time)
                                .ok()
                                .and_then(|d| {
                                    d.format(&time::format_description::well_known::Rfc3339)
                                        .ok()
                                })
                                .unwrap_or_else(|| t.time.to_string());
                            format!("{when} ({})", t.source)
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    print_line(format_args!(
                        "Verified OK: {} signed by {}; signing time {times}",
                        args.bundle.display(),
                        Escaped(&who)
                    ))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let code = failure_code(&err);
            let err = err.to_string();
            match args.output {
                Output::Json => print_line(
                    serde_json::json!({ "verified": false, "bundle": args.bundle.display().to_string(), "error": err, "code": code }),
                )?,
                Output::Text => {
                    eprintln!(
                        "Verification FAILED for {}: {}{}. The bundle was checked offline against the trusted root; nothing from it is trusted.",
                        args.bundle.display(),
                        code.map(|c| format!("[{c}] ")).unwrap_or_default(),
                        Escaped(&err)
                    );
                    if code == Some("timestamp-only") {
                        eprintln!(
                            "hint: pass --use-signed-timestamps to accept it on its RFC 3161 timestamp alone"
                        );
                    }
                }
            }
            Ok(ExitCode::from(1))
        }
    }
}
