//! `kibaverify verify-blob FILE --bundle B (--key K | --certificate-identity I --certificate-oidc-issuer O)`:
//! verify a file against a Sigstore bundle, as `cosign verify-blob --bundle B` does, offline against a trusted
//! root. The file is streamed through the hash (bounded memory) and must not change meanwhile. Exit codes: 0
//! verified, 1 not verified, 2 bad input.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::read_bounded;
use kibaship_cli::terminal::{Escaped, print_line};
use kibaship_cosign::blob::{BlobBundleError, check_unlogged_key_blob_bundle};
use kibaship_sigstore::{ArtifactPolicy, Bundle, HashAlgorithm, IdentityPolicy, Verifier};

use super::identity_flags::GithubClaimFlags;
use super::sign_blob::hash_file;
use super::verify_bundle::{certificate_identity, load_public_key, load_trusted_root};

/// Verifies a file against a Sigstore bundle (`sign-blob`'s or `cosign sign-blob`'s), by key or by the keyless
/// signer's certificate identity.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signed file.
    file: PathBuf,
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    #[command(flatten)]
    signer: BlobSignerFlags,
}

/// Who must have signed a blob's bundle, and what it is checked against (`verify-blob`,
/// `verify-blob-attestation`): cosign's flags.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["key", "certificate_identity", "certificate_identity_regexp"])))]
pub struct BlobSignerFlags {
    /// The public key (PEM `PUBLIC KEY`, e.g. `cosign.pub`).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["certificate_oidc_issuer", "certificate_oidc_issuer_regexp"])]
    pub key: Option<PathBuf>,
    /// Keyless: expected certificate identity (SAN: email, URI or username), exact.
    #[arg(long, value_name = "IDENTITY")]
    certificate_identity: Option<String>,
    /// Keyless: expected certificate identity as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with = "certificate_identity")]
    certificate_identity_regexp: Option<String>,
    /// Keyless: expected OIDC issuer, exact.
    #[arg(long, value_name = "URL")]
    certificate_oidc_issuer: Option<String>,
    /// Keyless: expected OIDC issuer as a Go (RE2) regular expression, unanchored, as in cosign.
    #[arg(long, value_name = "REGEX", conflicts_with = "certificate_oidc_issuer")]
    certificate_oidc_issuer_regexp: Option<String>,
    #[command(flatten)]
    github: GithubClaimFlags,
    /// With --key: accept a bundle without a transparency-log entry (as written with a key by kibaverify or by
    /// cosign with `--tlog-upload=false`), as cosign's flag does.
    #[arg(long, requires = "key")]
    pub insecure_ignore_tlog: bool,
    /// `trusted_root.json` for bundles that carry log entries (default: the embedded Sigstore public-good root).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

impl BlobSignerFlags {
    /// The key (`--key`) or the certificate identity the flags name.
    pub fn identity_policy(&self) -> anyhow::Result<IdentityPolicy> {
        Ok(match &self.key {
            Some(path) => IdentityPolicy::Key(load_public_key(path)?),
            None => IdentityPolicy::Certificate(certificate_identity(
                self.certificate_identity.as_ref(),
                self.certificate_identity_regexp.as_ref(),
                self.certificate_oidc_issuer.as_ref(),
                self.certificate_oidc_issuer_regexp.as_ref(),
                &self.github,
            )?),
        })
    }

    /// The verifier over `--trusted-root` (or the public-good root).
    pub fn verifier(&self) -> anyhow::Result<Verifier> {
        Ok(Verifier::new(load_trusted_root(
            self.trusted_root.as_deref(),
        )?))
    }
}

/// Hashes the file and checks the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bundle = read_bounded(
        &args.bundle,
        "bundle",
        kibaship_sigstore::MAX_BUNDLE_BYTES as u64,
    )?;
    let policy = args.signer.identity_policy()?;
    // Fulcio certifies the ephemeral P-256 keys cosign and kibaverify sign blobs with: SHA-256.
    let algorithm = match &policy {
        IdentityPolicy::Key(key) => key.kind().default_hash(),
        IdentityPolicy::Certificate(_) => HashAlgorithm::Sha256,
    };
    let digest = hash_file(&args.file, "file to verify", algorithm)?;
    if let IdentityPolicy::Key(key) = &policy {
        match check_unlogged_key_blob_bundle(&bundle, key, algorithm, &digest) {
            Ok(()) if args.signer.insecure_ignore_tlog => {
                print_line(format_args!(
                    "Verified OK: {} signed by the given key (transparency log not checked: --insecure-ignore-tlog)",
                    args.file.display()
                ))?;
                return Ok(ExitCode::SUCCESS);
            }
            Ok(()) => {
                return not_verified(
                    &args,
                    "the signature verifies with the given key, but the bundle has no transparency-log entry (signed without uploading to a log?): pass --insecure-ignore-tlog to accept it",
                );
            }
            Err(BlobBundleError::Logged) => {}
            Err(BlobBundleError::Malformed(reason)) => {
                anyhow::bail!("invalid bundle {}: {reason}", args.bundle.display())
            }
            Err(err) => return not_verified(&args, &err.to_string()),
        }
    }
    let parsed = Bundle::from_json(&bundle)
        .with_context(|| format!("invalid bundle {}", args.bundle.display()))?;
    let verifier = args.signer.verifier()?;
    let artifact = ArtifactPolicy::Digest {
        algorithm,
        digest: &digest,
    };
    match verifier.verify(&parsed, artifact, &policy) {
        Ok(result) => {
            print_line(format_args!(
                "Verified OK: {} signed by {}, logged in the transparency log",
                args.file.display(),
                Escaped(&result.signer.to_string())
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => not_verified(&args, &err.to_string()),
    }
}

/// Says why the file is not verified (exit 1).
fn not_verified(args: &Args, reason: &str) -> anyhow::Result<ExitCode> {
    eprintln!(
        "Verification FAILED for {} with bundle {}: {}",
        args.file.display(),
        args.bundle.display(),
        Escaped(reason)
    );
    Ok(ExitCode::from(1))
}
