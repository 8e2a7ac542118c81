//! `kibaverify verify-blob FILE --bundle B --key K`: verify a file against a key-signed Sigstore bundle, as
//! `cosign verify-blob --key K --bundle B` does. The file is streamed through the hash (bounded memory) and must
//! not change meanwhile. Exit codes: 0 verified, 1 not verified, 2 bad input.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::{read_bounded, stream_unchanged};
use kibaship_cli::terminal::{Escaped, print_line};
use kibaship_cosign::blob::{BlobBundleError, check_unlogged_key_blob_bundle};
use kibaship_sigstore::{ArtifactPolicy, Bundle, IdentityPolicy, TrustedRoot, Verifier};

use super::verify_bundle::load_public_key;
use kibaship_cli::input::MAX_CONFIG_FILE_BYTES;

/// Verifies a file against a Sigstore bundle signed with a cosign key (`sign-blob`'s or `cosign sign-blob`'s).
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The signed file.
    file: PathBuf,
    /// The Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The public key (PEM `PUBLIC KEY`, e.g. `cosign.pub`).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Accept a bundle without a transparency-log entry (as written by `sign-blob` or `cosign sign-blob
    /// --tlog-upload=false`), as cosign's flag does.
    #[arg(long)]
    insecure_ignore_tlog: bool,
    /// `trusted_root.json` for bundles that carry log entries (default: the embedded Sigstore public-good root).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
}

/// Hashes the file with the key's hash and checks the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let key = load_public_key(&args.key)?;
    let bundle = read_bounded(
        &args.bundle,
        "bundle",
        kibaship_sigstore::MAX_BUNDLE_BYTES as u64,
    )?;
    let algorithm = key.kind().default_hash();
    let mut hasher = algorithm.hasher();
    stream_unchanged(&args.file, "file to verify", |chunk| hasher.update(chunk))?;
    let digest = hasher.finish();
    let failure = match check_unlogged_key_blob_bundle(&bundle, &key, algorithm, &digest) {
        Ok(()) if args.insecure_ignore_tlog => {
            print_line(format_args!(
                "Verified OK: {} signed by the given key (transparency log not checked: --insecure-ignore-tlog)",
                args.file.display()
            ))?;
            return Ok(ExitCode::SUCCESS);
        }
        Ok(()) => "the signature verifies with the given key, but the bundle has no transparency-log entry (signed without uploading to a log?): pass --insecure-ignore-tlog to accept it".to_string(),
        Err(BlobBundleError::Logged) => {
            let root = match &args.trusted_root {
                Some(p) => TrustedRoot::from_json(&read_bounded(
                    p,
                    "trusted root",
                    MAX_CONFIG_FILE_BYTES,
                )?)
                .with_context(|| format!("invalid trusted root {}", p.display()))?,
                None => TrustedRoot::public_good().context("embedded public-good trusted root")?,
            };
            let parsed = Bundle::from_json(&bundle)
                .with_context(|| format!("invalid bundle {}", args.bundle.display()))?;
            let artifact = ArtifactPolicy::Digest {
                algorithm,
                digest: &digest,
            };
            match Verifier::new(root).verify(&parsed, artifact, &IdentityPolicy::Key(key)) {
                Ok(_) => {
                    print_line(format_args!(
                        "Verified OK: {} signed by the given key, logged in the transparency log",
                        args.file.display()
                    ))?;
                    return Ok(ExitCode::SUCCESS);
                }
                Err(err) => err.to_string(),
            }
        }
        Err(BlobBundleError::Malformed(reason)) => {
            anyhow::bail!("invalid bundle {}: {reason}", args.bundle.display())
        }
        Err(err) => err.to_string(),
    };
    eprintln!(
        "Verification FAILED for {} with bundle {}: {}",
        args.file.display(),
        args.bundle.display(),
        Escaped(&failure)
    );
    Ok(ExitCode::from(1))
}
