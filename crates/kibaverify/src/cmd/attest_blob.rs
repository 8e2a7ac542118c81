//! `kibaverify attest-blob FILE --predicate P --type T (--key K | --keyless ...) --bundle B`: an in-toto
//! attestation about a file, as `cosign attest-blob --bundle B` makes it: the statement (cosign's
//! `https://in-toto.io/Statement/v0.1`, one subject named after the file's base name with its SHA-256) signed
//! in a DSSE envelope inside a Sigstore bundle v0.3: with a key, logged as `sign-blob` logs (Rekor v2 with a TSA
//! timestamp, else Rekor v1, from the signing config or Rekor URLs; nothing with `--tlog-upload=false` or no log
//! named), or keyless (Fulcio, Rekor v2, TSA).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cosign::bundle_layout::key_signed_bundle;
use kibaship_oci::Digest;
use kibaship_sigstore::HashAlgorithm;

use super::attest::read_attestation;
use super::sign_blob::{
    KEY_NOTE, KEYLESS_NOTE, hash_file, keyless_blob_bundle, logged_key_bundle, service_registry,
    write_bundle,
};
use super::signer_flags::{SignerFlags, load_signing_key};

/// Attests a file (an SBOM, a provenance document, a test report about a release tarball) into a Sigstore bundle,
/// as `cosign attest-blob --bundle`.
///
/// Verify with `kibaverify verify-blob-attestation FILE --bundle B --type T` or `cosign
/// verify-blob-attestation`. Nothing is written when anything fails.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The file the statement is about (its SHA-256 is the subject's digest).
    file: PathBuf,
    /// The predicate: a JSON file; with `--type custom` any UTF-8 text (as `attest`).
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// Predicate type: one of cosign's names (custom, slsaprovenance1, spdxjson, cyclonedx, vuln, openvex, ...) or
    /// an absolute URI (as `attest`).
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    predicate_type: String,
    /// Where to write the Sigstore bundle (JSON).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    #[command(flatten)]
    signer: SignerFlags,
    /// PEM bundle of CA certificates trusted for Fulcio, Rekor and the TSA, beside the system roots.
    #[arg(long = "ca-file", value_name = "PEM")]
    ca_file: Option<PathBuf>,
}

/// Builds the statement about the streamed file, signs it and writes the bundle.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let attestation = read_attestation(&args.predicate, &args.predicate_type)?;
    let name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} names no file", args.file.display()))?;
    let statement_for = |digest: &[u8]| -> anyhow::Result<Vec<u8>> {
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let digest =
            Digest::parse(&format!("sha256:{hex}")).context("the file's SHA-256 as a digest")?;
        Ok(attestation.statement(&name, &digest))
    };
    let (bundle, note) = match args.signer.key_path() {
        Some(key_path) => {
            let log = args
                .signer
                .key_blob_log(&service_registry(args.ca_file.as_deref()))?;
            let key = load_signing_key(key_path)?;
            let digest = hash_file(&args.file, "file to attest", HashAlgorithm::Sha256)?;
            let statement = statement_for(&digest)?;
            match log {
                None => (
                    key_signed_bundle(&key, &statement)
                        .with_context(|| format!("cannot sign with key {}", key_path.display()))?,
                    KEY_NOTE.to_string(),
                ),
                Some((log, check)) => logged_key_bundle(
                    &key,
                    check.as_ref(),
                    log.sign_dsse_bundle(&key, &statement),
                    HashAlgorithm::Sha256,
                    &digest,
                )?,
            }
        }
        None => (
            keyless_blob_bundle(
                &args.signer,
                args.ca_file.as_deref(),
                &args.file,
                "file to attest",
                |digest| statement_for(digest).map(Some),
            )?,
            KEYLESS_NOTE.to_string(),
        ),
    };
    write_bundle(
        &args.bundle,
        &bundle,
        &format!("a {} attestation; {note}", attestation.predicate_type()),
    )
}
