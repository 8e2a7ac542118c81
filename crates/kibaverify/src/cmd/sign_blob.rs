//! `kibaverify sign-blob FILE (--key K | --keyless ...) --bundle B`: sign a file as `cosign sign-blob --bundle B`
//! does, writing the Sigstore bundle v0.3 it writes (a message signature over the file's digest). With a key and
//! a signing config (or Rekor URLs) the signature is entered in the transparency log, as cosign does by default:
//! Rekor v2 with a TSA timestamp when the config offers it, else Rekor v1; with a key and no log named (or
//! `--tlog-upload=false`) nothing is logged. Keyless, the ephemeral key's Fulcio certificate, a Rekor v2
//! `hashedrekord` entry and a TSA timestamp go into the bundle. The file is streamed through the hash (bounded
//! memory) and must not change meanwhile.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cli::input::stream_unchanged;
use kibaship_cosign::blob::{
    key_signed_blob_bundle, self_check_key_blob_bundle, self_check_keyless_blob_bundle,
};
use kibaship_cosign::check::IN_TOTO_PAYLOAD_TYPE;
use kibaship_cosign::key_log::{KeyLogError, LoggedEntry};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{HashAlgorithm, Verifier};

use super::digest::{RegistryFlags, current_thread_runtime};
use super::signer_flags::{Keyless, SignatureLayout, SignerFlags, load_signing_key};

/// Signs a file (release tarball, SBOM, provenance document) into a Sigstore bundle, as `cosign sign-blob
/// --bundle`.
///
/// Verify with `kibaverify verify-blob FILE --bundle B` (`--key K.pub`, with `--insecure-ignore-tlog` when nothing
/// was logged; the certificate identity and issuer keyless) or `cosign verify-blob`. Nothing is written when anything fails,
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
    /// PEM bundle of CA certificates trusted for Fulcio, Rekor and the TSA, beside the system roots.
    #[arg(long = "ca-file", value_name = "PEM")]
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
            let registry = service_registry(args.ca_file.as_deref());
            let log = args.signer.key_blob_log(&registry)?;
            let key = load_signing_key(key_path)?;
            let algorithm = key.hash_algorithm();
            let digest = hash_file(&args.file, "file to sign", algorithm)?;
            match log {
                None => (
                    key_signed_blob_bundle(&key, &digest)
                        .with_context(|| format!("cannot sign with key {}", key_path.display()))?,
                    KEY_NOTE.to_string(),
                ),
                Some((log, check)) => logged_key_bundle(
                    &key,
                    check.as_ref(),
                    log.sign_blob_digest(&key, &digest),
                    algorithm,
                    &digest,
                )?,
            }
        }
        None => (
            keyless_blob_bundle(
                &args.signer,
                args.ca_file.as_deref(),
                &args.file,
                "file to sign",
                |_| Ok(None),
            )?,
            KEYLESS_NOTE.to_string(),
        ),
    };
    write_bundle(&args.bundle, &bundle, &note)
}

/// The registry flags that carry `--ca-file` for Fulcio, Rekor and the TSA.
pub fn service_registry(ca_file: Option<&std::path::Path>) -> RegistryFlags {
    RegistryFlags {
        ca_file: ca_file.map(std::path::Path::to_path_buf),
        ..RegistryFlags::default()
    }
}

/// A blob's bundle, `signed` with `key` and logged; with `check`, verified against the trusted
/// root (for the blob's `digest` of `algorithm`) before anything is written. Returns the bundle and the closing
/// note naming the entry.
pub fn logged_key_bundle(
    key: &SigningKey,
    check: Option<&Verifier>,
    signed: impl std::future::Future<Output = Result<(Vec<u8>, LoggedEntry), KeyLogError>>,
    algorithm: HashAlgorithm,
    digest: &[u8],
) -> anyhow::Result<(Vec<u8>, String)> {
    let (bundle, entry) = current_thread_runtime()?
        .block_on(signed)
        .context("cannot sign and log the signature")?;
    if let Some(verifier) = check {
        self_check_key_blob_bundle(verifier, key, &bundle, algorithm, digest).map_err(
            |reason| {
                anyhow::anyhow!(
                    "the new bundle does not verify against --trusted-root ({reason}): not written"
                )
            },
        )?;
    }
    let note = format!(
        "logged in Rekor v{} {} at index {}{}: verify with --key",
        entry.rekor_version,
        entry.log,
        entry.log_index,
        entry
            .timestamp_authority
            .as_deref()
            .map(|tsa| format!(", timestamped by {tsa}"))
            .unwrap_or_default()
    );
    Ok((bundle, note))
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
    let registry = service_registry(ca_file);
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
