//! `kibaverify sign-blob FILE --key K --bundle B`: sign a file as `cosign sign-blob --key K --bundle B
//! --tlog-upload=false` does, writing the Sigstore bundle v0.3 it writes (a message signature over the file's
//! digest). The file is streamed through the hash (bounded memory) and must not change meanwhile.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::stream_unchanged;
use kibaship_cosign::blob::key_signed_blob_bundle;

use super::signer_flags::load_signing_key;

/// Signs a file (release tarball, SBOM, provenance document) with a cosign key into a Sigstore bundle.
///
/// The bundle is what `cosign sign-blob --bundle` writes without a transparency log; verify it with
/// `kibaverify verify-blob FILE --bundle B --key K.pub --insecure-ignore-tlog` or `cosign verify-blob
/// --insecure-ignore-tlog`. Nothing is written when anything fails, including a file that changed while it was
/// hashed.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file to sign.
    file: PathBuf,
    /// Private key: cosign's encrypted key file (password from COSIGN_PASSWORD) or a plain PKCS#8/SEC1/PKCS#1 PEM.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Where to write the Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// Upload to the Rekor transparency log: only `false` is supported with --key (as `cosign sign-blob
    /// --tlog-upload=false`); verifiers then need `--insecure-ignore-tlog`.
    #[arg(long = "tlog-upload", value_name = "BOOL", action = clap::ArgAction::Set)]
    tlog_upload: Option<bool>,
}

/// Hashes the file, signs the digest and writes the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.tlog_upload == Some(true) {
        anyhow::bail!(
            "--tlog-upload=true is not supported by sign-blob: the signature is not uploaded to a transparency log (as cosign sign-blob --tlog-upload=false)"
        );
    }
    let key = load_signing_key(&args.key)?;
    let mut hasher = key.hash_algorithm().hasher();
    stream_unchanged(&args.file, "file to sign", |chunk| hasher.update(chunk))?;
    let digest = hasher.finish();
    let bundle = key_signed_blob_bundle(&key, &digest)
        .with_context(|| format!("cannot sign with key {}", args.key.display()))?;
    std::fs::write(&args.bundle, bundle)
        .with_context(|| format!("writing {}", args.bundle.display()))?;
    eprintln!(
        "Wrote bundle to file {} (no transparency-log entry was made: verify with --insecure-ignore-tlog)",
        args.bundle.display()
    );
    Ok(ExitCode::SUCCESS)
}
