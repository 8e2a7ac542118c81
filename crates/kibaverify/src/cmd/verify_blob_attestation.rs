//! `kibaverify verify-blob-attestation FILE --bundle B [--type T] (--key K | --certificate-identity I
//! --certificate-oidc-issuer O)`: verify an attestation about a file, as `cosign verify-blob-attestation` does:
//! the bundle's DSSE signature by the key or the keyless identity (offline, against a trusted root), its in-toto
//! statement naming the file's SHA-256, its predicate type the one asked for. The file is streamed. Exit codes:
//! 0 verified, 1 not verified, 2 bad input.
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use kibaship_cli::input::read_bounded;
use kibaship_cli::terminal::{Escaped, print_line};
use kibaship_cosign::attest::predicate_type_uri;
use kibaship_cosign::check::{BundleKind, Subject, VerifyOptions, check_referrer_bundle};
use kibaship_cosign::keyless::now_unix;
use kibaship_oci::Digest;
use kibaship_sigstore::HashAlgorithm;

use super::sign_blob::hash_file;
use super::verify_blob::BlobSignerFlags;

/// Verifies an in-toto attestation about a file (`attest-blob`'s or `cosign attest-blob`'s bundle).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file the attestation is about.
    file: PathBuf,
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The predicate type it must have: a cosign name or a URI. As cosign, `custom` unless given.
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    predicate_type: String,
    #[command(flatten)]
    signer: BlobSignerFlags,
}

/// Hashes the file and checks the bundle's attestation about it.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let predicate_type = predicate_type_uri(&args.predicate_type)?;
    let bundle = read_bounded(
        &args.bundle,
        "bundle",
        kibaship_sigstore::MAX_BUNDLE_BYTES as u64,
    )?;
    let options = VerifyOptions {
        identity: args.signer.identity_policy()?,
        verifier: Arc::new(args.signer.verifier()?),
        now: now_unix(),
        ignore_tlog: args.signer.insecure_ignore_tlog,
        predicate_type: Some(predicate_type.clone()),
        annotations: Default::default(),
    };
    let sha256 = hash_file(&args.file, "file to verify", HashAlgorithm::Sha256)?;
    let hex: String = sha256.iter().map(|b| format!("{b:02x}")).collect();
    let digest =
        Digest::parse(&format!("sha256:{hex}")).context("the file's SHA-256 as a digest")?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let subject = Subject {
        digest: &digest,
        repository: &name,
    };
    let failure = match check_referrer_bundle(&bundle, subject, BundleKind::Attestation, &options) {
        Ok(Some(accepted)) => {
            print_line(format_args!(
                "Verified OK: a {predicate_type} attestation about {} signed by {}; transparency log: {}",
                args.file.display(),
                Escaped(&accepted.signer),
                Escaped(&accepted.transparency_log)
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        Ok(None) => {
            "the bundle holds an image signature (cosign/sign/v1), not an attestation".to_string()
        }
        Err(rejected) => format!("{} ({})", rejected.message, rejected.code.as_str()),
    };
    eprintln!(
        "Verification FAILED for {} with bundle {}: {}",
        args.file.display(),
        args.bundle.display(),
        Escaped(&failure)
    );
    Ok(ExitCode::from(1))
}
