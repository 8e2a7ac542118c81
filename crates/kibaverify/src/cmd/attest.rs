//! `kibaverify attest`: sign an in-toto attestation (a predicate of a type) onto an image by digest, as `cosign
//! attest --predicate F --type T` does: with a cosign key, or keyless; into the legacy `sha256-<hex>.att` tag
//! (DSSE envelope layer) and/or a Sigstore bundle v0.3 referrer.
//!
//! Exit codes: 0 attested; 2 bad input (predicate, type, key, password, token, reference) or an unreachable
//! registry or service.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use kibaship_cosign::attest::{self, Attestation, MAX_PREDICATE_BYTES};
use kibaship_cosign::{ImageSigner, Signed};
use kibaship_oci::Reference;

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::sign::{found_through, key_log_note, rekor_v1_entry, rekor_v2_entry};
use super::signer_flags::{SignatureLayout, SignerFlags};
use kibaship_cli::input::read_bounded;
use kibaship_cli::terminal::print_line;

/// Arguments of `kibaverify attest`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to attest (a tag is resolved to its digest first; the statement names that digest).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The predicate: a JSON file (an SBOM, a SLSA provenance, a vulnerability report...); with `--type custom`
    /// any UTF-8 text, JSON or not.
    #[arg(long, value_name = "FILE")]
    pub predicate: PathBuf,
    /// Predicate type: one of cosign's names (custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx,
    /// spdxjson, cyclonedx, link, vuln, openvex) or an absolute URI. As with cosign, `custom` wraps the file as
    /// `{"Data": <text>, "Timestamp": <now>}` and `spdx` embeds it as a string; use a URI to embed a JSON object
    /// as is.
    #[arg(long = "type", value_name = "TYPE", default_value = "custom")]
    pub predicate_type: String,
    #[command(flatten)]
    pub signer: SignerFlags,
    /// Attestation layout to write (default: `legacy` with --key, `bundle` keyless).
    #[arg(long, value_enum)]
    pub layout: Option<SignatureLayout>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Reads and checks the predicate file for `--type predicate_type` before any key, token or registry is touched
/// (`attest` and `attest-blob`).
pub fn read_attestation(
    predicate: &std::path::Path,
    predicate_type: &str,
) -> anyhow::Result<Attestation> {
    // The type first: a wrong name is reported even when the file is fine.
    attest::predicate_type_uri(predicate_type)?;
    let shown = predicate.display().to_string();
    let bytes = read_bounded(predicate, "predicate", MAX_PREDICATE_BYTES as u64)?;
    Ok(Attestation::new(
        predicate_type,
        &bytes,
        &shown,
        time::OffsetDateTime::now_utc(),
    )?)
}

/// Attests the image and prints the attested digest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let layout = SignatureLayout::for_attestations(args.layout)?;
    let attestation = read_attestation(&args.predicate, &args.predicate_type)?;
    let signature_repository = super::verify::signature_repository_from_env()?;
    let predicate_type = attestation.predicate_type().to_string();
    let (layout, loaded) = args.signer.load(layout, &args.registry)?;
    let signer = loaded.as_image_signer();
    let how = if loaded.is_keyless() { " keyless" } else { "" };
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    let written = runtime
        .block_on(attest::attest_image(
            &client,
            &reference,
            signature_repository.as_ref(),
            signer,
            layout.layouts(),
            &attestation,
        ))
        .with_context(|| format!("cannot attest {}{how}", args.reference))?;
    let mut report = serde_json::Map::new();
    report.insert("predicateType".into(), predicate_type.clone().into());
    for signed in &written {
        if args.output == OutputFormat::Text {
            eprintln!("{}", describe(signed, signer, &predicate_type));
        }
        report.insert(signed.layout().into(), serde_json::to_value(signed)?);
    }
    match args.output {
        OutputFormat::Text => {
            if let Some(signed) = written.last() {
                print_line(signed.image())?;
            }
        }
        OutputFormat::Json => print_line(serde_json::to_string_pretty(&report)?)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What one attestation written looks like on stderr.
fn describe(signed: &Signed, signer: ImageSigner<'_>, predicate_type: &str) -> String {
    match signed {
        Signed::Legacy(s) => format!(
            "attested {} with a {predicate_type} predicate ({} attestation(s) under {}); {}",
            s.image,
            s.signatures,
            s.signature_tag,
            key_log_note(s.transparency_log.as_ref(), signer)
        ),
        Signed::Bundle(s) => format!(
            "attested {} with a {predicate_type} predicate (bundle {}, found through {}); {}",
            s.image,
            s.referrer,
            found_through(s.via),
            key_log_note(s.transparency_log.as_ref(), signer)
        ),
        Signed::LegacyKeyless(s) => format!(
            "attested {} keyless as {} (issuer {}) with a {predicate_type} predicate: {} attestation(s) under {}; {}",
            s.signed.image,
            s.certificate_identity,
            s.certificate_oidc_issuer,
            s.signed.signatures,
            s.signed.signature_tag,
            rekor_v1_entry(s)
        ),
        Signed::BundleKeyless(s) => {
            let tsa = signer.tsa_url();
            format!(
                "attested {} keyless as {} (issuer {}) with a {predicate_type} predicate: bundle {}, found through {}; {}",
                s.bundle.image,
                s.certificate_identity,
                s.certificate_oidc_issuer,
                s.bundle.referrer,
                found_through(s.bundle.via),
                rekor_v2_entry(s, tsa)
            )
        }
    }
}
