//! `kibaverify sign-blob FILE (--key K | --keyless ...) --bundle B`: sign a file as `cosign sign-blob --bundle B`
//! does, writing the Sigstore bundle v0.3 it writes (a message signature over the file's digest). With a key
//! nothing is logged (as `--tlog-upload=false`); keyless, the ephemeral key's Fulcio certificate, a Rekor v2
//! `hashedrekord` entry and a TSA timestamp go into the bundle. The file is streamed through the hash (bounded
//! memory) and must not change meanwhile.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::stream_unchanged;
use kibaship_cosign::blob::{key_signed_blob_bundle, self_check_keyless_blob_bundle};
use kibaship_sigstore::HashAlgorithm;

use super::digest::{RegistryFlags, current_thread_runtime};
use super::signer_flags::{Keyless, SignatureLayout, SignerFlags};

/// Signs a file (release tarball, SBOM, provenance document) into a Sigstore bundle, as `cosign sign-blob
/// --bundle`.
///
/// Verify with `kibaverify verify-blob FILE --bundle B` (`--key K.pub --insecure-ignore-tlog` for a key, the
/// certificate identity and issuer keyless) or `cosign verify-blob`. Nothing is written when anything fails,
/// including a file that changed while it was hashed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to sign.
    file: PathBuf,
    /// Where to write the Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    #[command(flatten)]
    signer: SignerFlags,
    /// Keyless: PEM bundle of CA certificates trusted for Fulcio, Rekor and the TSA, beside the system roots.
    #[arg(long = "ca-file", value_name = "PEM", requires = "keyless")]
    ca_file: Option<PathBuf>,
}

/// Hashes the file, signs the digest and writes the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (bundle, how) = match args.signer.key_path() {
        Some(key_path) => {
            let key = args.signer.signing_key(key_path)?;
            let digest = hash_file(&args.file, key.hash_algorithm())?;
            let bundle = key_signed_blob_bundle(&key, &digest)
                .with_context(|| format!("cannot sign with key {}", key_path.display()))?;
            (
                bundle,
                "no transparency-log entry was made: verify with --insecure-ignore-tlog",
            )
        }
        None => {
            let registry = RegistryFlags {
                ca_file: args.ca_file.clone(),
                ..RegistryFlags::default()
            };
            let Keyless { signer, check } =
                args.signer.keyless(SignatureLayout::Bundle, &registry)?;
            let digest = hash_file(&args.file, HashAlgorithm::Sha256)?;
            let signed = current_thread_runtime()?
                .block_on(signer.sign_blob_digest(&digest))
                .context("keyless signing failed")?;
            if let Some(verifier) = &check {
                self_check_keyless_blob_bundle(verifier, &signed.json, &digest).map_err(
                    |reason| {
                        anyhow::anyhow!(
                            "the new bundle does not verify against --trusted-root ({reason}): not written"
                        )
                    },
                )?;
            }
            (
                signed.json,
                "logged in Rekor v2 with a TSA timestamp: verify with the certificate identity and issuer",
            )
        }
    };
    std::fs::write(&args.bundle, bundle)
        .with_context(|| format!("writing {}", args.bundle.display()))?;
    eprintln!("Wrote bundle to file {} ({how})", args.bundle.display());
    Ok(ExitCode::SUCCESS)
}

/// The file's digest, streamed.
fn hash_file(path: &std::path::Path, algorithm: HashAlgorithm) -> anyhow::Result<Vec<u8>> {
    let mut hasher = algorithm.hasher();
    stream_unchanged(path, "file to sign", |chunk| hasher.update(chunk))?;
    Ok(hasher.finish())
}
