//! `kibaverify`: kibaship's command line.
//!
//! Each subcommand lives in its own module under `cmd/` and returns the process exit
//! code it wants; errors that reach `main` are bad input or an unreachable service and
//! exit with 2, printed with their whole cause chain.
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod cmd;

/// mimalloc instead of the C library's allocator: validating a large SBOM builds and frees a tree of small
/// values per item on each core, and was 15 % faster with it, measured (docs/sbom.md, Speed).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
// pub(crate): examples/kibaverify-man.rs compiles this file as a module and re-exports these at its root.
pub(crate) mod password;

#[derive(Parser)]
#[command(name = "kibaverify", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Resolve image references to digests (`ref@sha256:...`).
    Digest(cmd::digest::Args),
    /// List the referrers (signatures, SBOMs, attestations) of an image.
    Referrers(cmd::referrers::Args),
    /// Attach an artifact to an image as an OCI 1.1 referrer (API or tag fallback).
    Attach(cmd::attach::Args),
    /// Gate an image on its trivy vulnerability report.
    Gate(cmd::gate::Args),
    /// Verify a Sigstore bundle offline against a trusted root.
    VerifyBundle(cmd::verify_bundle::Args),
    /// Generate a cosign-compatible key pair (encrypted private key + public key).
    GenerateKeyPair(cmd::generate_key_pair::Args),
    /// Import a PEM RSA or EC private key (PKCS#1, SEC1, PKCS#8) into cosign's encrypted key format.
    ImportKeyPair(cmd::import_key_pair::Args),
    /// Sign a file with a cosign key into a Sigstore bundle, as `cosign sign-blob --bundle`.
    SignBlob(cmd::sign_blob::Args),
    /// Verify a file against a key-signed Sigstore bundle, as `cosign verify-blob --bundle`.
    VerifyBlob(cmd::verify_blob::Args),
    /// Sign an in-toto attestation about a file into a Sigstore bundle, as `cosign attest-blob --bundle`.
    AttestBlob(cmd::attest_blob::Args),
    /// Verify an attestation about a file, as `cosign verify-blob-attestation --bundle`.
    VerifyBlobAttestation(cmd::verify_blob_attestation::Args),
    /// Sign an image by digest, cosign-compatible (legacy `.sig` tag and/or Sigstore bundle referrer).
    Sign(cmd::sign::Args),
    /// Sign an in-toto attestation (predicate file + type) onto an image, cosign-compatible (legacy `.att` tag
    /// and/or Sigstore bundle referrer).
    Attest(cmd::attest::Args),
    /// Verify an image's signatures in the registry (both layouts).
    Verify(cmd::verify::Args),
    /// Verify an image's attestations in the registry (both layouts).
    VerifyAttestation(cmd::verify_attestation::Args),
    /// Audit what workloads run (cluster, manifests, an image list): who signed each image, and the webhook's answer.
    Audit(cmd::audit::Args),
    /// Admission policies: `policy check FILE...` validates them as the webhook loads them.
    Policy(cmd::policy::Args),
    /// SBOMs (CycloneDX, SPDX) as referrers and attestations of an image: `sbom attach|list|get`.
    Sbom(cmd::sbom::Args),
    /// BuildKit's attestations in an image index: `provenance get|rehome` (read them; sign them onto the
    /// platform images).
    Provenance(cmd::provenance::Args),
    /// Verify an image's SLSA provenance (v0.2, v1) offline with slsa-verifier's flags, for any builder.
    VerifyProvenance(cmd::verify_provenance::Args),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish), as `cosign completion`.
    Completion(cmd::completion::Args),
    /// Print the version, git commit, build date, Rust version and platform (`--json` for one object).
    Version(cmd::version::Args),
}

/// The whole command tree as clap builds it: completion scripts and man pages (examples/kibaverify-man.rs,
/// `make man`) are generated from it, so they always match the parser.
pub(crate) fn cli_command() -> clap::Command {
    Cli::command()
}

/// What the user can do about a registry error, in kibaverify's flags (the library names none).
pub(crate) fn registry_hint(error: &(dyn std::error::Error + 'static)) -> &'static str {
    match kibaship_oci::Error::find_in(error) {
        Some(e) if e.is_untrusted_certificate() => {
            " (pass the registry's CA bundle with --ca-file)"
        }
        _ => "",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Digest(args) => cmd::digest::run(args),
        Command::Referrers(args) => cmd::referrers::run(args),
        Command::Attach(args) => cmd::attach::run(args),
        Command::Gate(args) => cmd::gate::run(args),
        Command::VerifyBundle(args) => cmd::verify_bundle::run(args),
        Command::GenerateKeyPair(args) => cmd::generate_key_pair::run(args),
        Command::ImportKeyPair(args) => cmd::import_key_pair::run(args),
        Command::SignBlob(args) => cmd::sign_blob::run(args),
        Command::VerifyBlob(args) => cmd::verify_blob::run(args),
        Command::AttestBlob(args) => cmd::attest_blob::run(args),
        Command::VerifyBlobAttestation(args) => cmd::verify_blob_attestation::run(args),
        Command::Sign(args) => cmd::sign::run(args),
        Command::Attest(args) => cmd::attest::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::VerifyAttestation(args) => cmd::verify_attestation::run(args),
        Command::Audit(args) => cmd::audit::run(args),
        Command::Policy(args) => cmd::policy::run(args),
        Command::Sbom(args) => cmd::sbom::run(args),
        Command::Provenance(args) => cmd::provenance::run(args),
        Command::VerifyProvenance(args) => cmd::verify_provenance::run(args),
        Command::Completion(args) => cmd::completion::run(args, &mut cli_command()),
        Command::Version(args) => cmd::version::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            // Messages can carry registry- or file-supplied text: control characters are escaped.
            eprintln!(
                "kibaverify: error: {}{}",
                kibaship_cli::terminal::Escaped(&format!("{err:#}")),
                registry_hint(err.as_ref())
            );
            ExitCode::from(2)
        }
    }
}
