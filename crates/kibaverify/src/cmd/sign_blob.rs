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
use kibaship_cosign::check::IN_TOTO_PAYLOAD_TYPE;
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

/// The closing note of a bundle signed with a key.
pub const KEY_NOTE: &str = "no transparency-log entry was made: verify with --insecure-ignore-tlog";
/// The closing note of a keyless bundle.
pub const KEYLESS_NOTE: &str =
    "logged in Rekor v2 with a TSA timestamp: verify with the certificate identity and issuer";

/// Hashes the file, signs the digest and writes the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (bundle, note) = match args.signer.key_path() {
        Some(key_path) => {
            refuse_key_logging(&args.signer)?;
            let key = args.signer.signing_key(key_path)?;
            let digest = hash_file(&args.file, "file to sign", key.hash_algorithm())?;
            let bundle = key_signed_blob_bundle(&key, &digest)
                .with_context(|| format!("cannot sign with key {}", key_path.display()))?;
            (bundle, KEY_NOTE)
        }
        None => (
            keyless_blob_bundle(
                &args.signer,
                args.ca_file.as_deref(),
                &args.file,
                "file to sign",
                |_| Ok(None),
            )?,
            KEYLESS_NOTE,
        ),
    };
    write_bundle(&args.bundle, &bundle, note)
}

/// Key-signed blobs are not entered in a transparency log yet: a flag asking for that (`--tlog-upload=true`, or a
/// signing config or Rekor URL without `--tlog-upload=false`) is refused rather than silently ignored.
pub fn refuse_key_logging(signer: &SignerFlags) -> anyhow::Result<()> {
    let names_a_log = signer.signing_config.is_some()
        || signer.rekor_url.is_some()
        || signer.rekor_v1_url.is_some();
    if signer.tlog_upload == Some(true) || (names_a_log && signer.tlog_upload != Some(false)) {
        anyhow::bail!(
            "--tlog-upload=true is not supported with --key for blobs yet (a signing config or Rekor URL asks for it too): key-signed blobs are not entered in Rekor; pass --tlog-upload=false"
        );
    }
    Ok(())
}

/// Keyless, about the `file` (a `what`): loads the flags' signer, streams the file through SHA-256, signs either
/// the file itself (a message signature, when `statement` gives `None` for the digest) or the in-toto statement
/// it gives (a DSSE envelope), with Fulcio, Rekor v2 and the TSA, and checks the bundle against `--trusted-root`
/// when given. The signer is loaded (token, services) before the file is read.
pub fn keyless_blob_bundle(
    signer: &SignerFlags,
    ca_file: Option<&std::path::Path>,
    file: &std::path::Path,
    what: &str,
    statement: impl FnOnce(&[u8]) -> anyhow::Result<Option<Vec<u8>>>,
) -> anyhow::Result<Vec<u8>> {
    let registry = RegistryFlags {
        ca_file: ca_file.map(std::path::Path::to_path_buf),
        ..RegistryFlags::default()
    };
    let Keyless { signer, check } = signer.keyless(SignatureLayout::Bundle, &registry)?;
    let digest = hash_file(file, what, HashAlgorithm::Sha256)?;
    let runtime = current_thread_runtime()?;
    let signed = match statement(&digest)? {
        None => runtime.block_on(signer.sign_blob_digest(&digest)),
        Some(statement) => runtime.block_on(signer.sign_dsse(IN_TOTO_PAYLOAD_TYPE, &statement)),
    }
    .context("keyless signing failed")?;
    if let Some(verifier) = &check {
        self_check_keyless_blob_bundle(verifier, &signed.json, &digest).map_err(|reason| {
            anyhow::anyhow!(
                "the new bundle does not verify against --trusted-root ({reason}): not written"
            )
        })?;
    }
    Ok(signed.json)
}

/// Writes the bundle (only once everything succeeded) and says so on stderr, as cosign does.
pub fn write_bundle(path: &std::path::Path, bundle: &[u8], note: &str) -> anyhow::Result<ExitCode> {
    std::fs::write(path, bundle).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("Wrote bundle to file {} ({note})", path.display());
    Ok(ExitCode::SUCCESS)
}

/// The digest of the file (a `what`), streamed, refused if it changed meanwhile.
pub fn hash_file(
    path: &std::path::Path,
    what: &str,
    algorithm: HashAlgorithm,
) -> anyhow::Result<Vec<u8>> {
    let mut hasher = algorithm.hasher();
    stream_unchanged(path, what, |chunk| hasher.update(chunk))?;
    Ok(hasher.finish())
}
