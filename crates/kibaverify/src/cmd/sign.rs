//! `kibaverify sign`: sign an image by digest with a cosign key (legacy `.sig` and/or bundle layout), or keyless
//! (`--keyless`: OIDC token, Fulcio certificate; the bundle layout is logged in Rekor v2 with a TSA timestamp, the
//! legacy layout in Rekor v1, whose signed entry timestamp its layers carry).
//!
//! Exit codes: 0 signed; 2 bad input (key, password, token, reference) or an unreachable registry or service.
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_cosign::key_log::LoggedEntry;
use kibaship_cosign::registry::{KeylessSigned, LegacyKeylessSigned};
use kibaship_cosign::{ImageSigner, LoadedSigner, Signed};
use kibaship_oci::{Reference, ReferrersSource};

use super::digest::{OutputFormat, RegistryFlags, current_thread_runtime};
use super::signer_flags::{SignatureLayout, SignerFlags};
use kibaship_cli::terminal::print_line;

/// Arguments of `kibaverify sign`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to sign (a tag is resolved to its digest first; the digest is what gets signed).
    #[arg(value_name = "REF")]
    pub reference: String,
    #[command(flatten)]
    pub signer: SignerFlags,
    /// Annotation `key=value` signed into the payload's `optional` section. Repeatable.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Signature layout to write (default: `legacy` with --key, `bundle` keyless).
    #[arg(long, value_enum)]
    pub layout: Option<SignatureLayout>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// What the text output says after a key signature or attestation: nothing was logged.
pub const NO_TLOG_NOTE: &str =
    "no transparency-log entry was made: verify with --insecure-ignore-tlog";

/// Where a bundle referrer can be found, as the text output says it.
pub fn found_through(via: ReferrersSource) -> &'static str {
    match via {
        ReferrersSource::Api => "the referrers API",
        ReferrersSource::FallbackTag => "the referrers fallback tag",
    }
}

/// cosign's OCI 1.1 mode: how the signature referrer is found (nothing for a `.sig` tag).
fn oci11_route(via: Option<ReferrersSource>) -> String {
    via.map_or_else(String::new, |via| {
        format!(", an OCI 1.1 referrer found through {}", found_through(via))
    })
}

fn checked_note(checked_against_trusted_root: bool) -> &'static str {
    if checked_against_trusted_root {
        "; verified against the trusted root before upload"
    } else {
        ""
    }
}

/// The Rekor v1 entry of a keyless legacy signature or attestation, as the text output describes it.
pub fn rekor_v1_entry(signed: &LegacyKeylessSigned) -> String {
    format!(
        "Rekor v1 entry {} (log index {}, integrated {}) with its signed entry timestamp{}",
        signed.rekor_uuid,
        signed.log_index,
        signed.integrated_time,
        checked_note(signed.checked_against_trusted_root)
    )
}

/// The Rekor entry (v2, or v1 with its signed entry timestamp) and timestamp of a keyless bundle, as the text
/// output describes them.
pub fn rekor_v2_entry(signed: &KeylessSigned, tsa_url: Option<&str>) -> String {
    let timestamp = match (signed.rekor_version, tsa_url) {
        (1, None) => String::new(),
        (_, tsa) => format!(", RFC 3161 timestamp from {}", tsa.unwrap_or("the TSA")),
    };
    let promise = if signed.rekor_version == 1 {
        " with its signed entry timestamp"
    } else {
        ""
    };
    format!(
        "Rekor v{} log index {}{promise}{timestamp}{}",
        signed.rekor_version,
        signed.log_index,
        checked_note(signed.checked_against_trusted_root)
    )
}

/// Parses repeated `-a key=value` flags.
pub fn parse_annotations(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in raw {
        let (k, v) = a
            .split_once('=')
            .with_context(|| format!("annotation {a:?} is not key=value"))?;
        if k.is_empty() {
            bail!("annotation {a:?} has an empty key");
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Signs the image and prints the signed digest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = parse_annotations(&args.annotations)?;
    let signature_repository = super::verify::signature_repository_from_env()?;
    let (layout, loaded) = args.signer.load(args.layout, &args.registry)?;
    let signer = loaded.as_image_signer();
    let how = match &loaded {
        _ if loaded.is_keyless() => " keyless",
        LoadedSigner::KeyLogged { .. } => " (logged in the transparency log)",
        _ => "",
    };
    if signature_repository.is_some()
        && layout == SignatureLayout::Oci11
        && args.output == OutputFormat::Text
    {
        eprintln!(
            "note: COSIGN_REPOSITORY is not used with --layout oci-1-1: the signature referrer is written in the image's repository, as cosign v3.1.3 does in its OCI 1.1 mode"
        );
    }
    let client = args.registry.client()?;
    let runtime = current_thread_runtime()?;
    let written = runtime
        .block_on(kibaship_cosign::sign_image(
            &client,
            &reference,
            signature_repository.as_ref(),
            signer,
            layout.layouts(),
            &annotations,
        ))
        .with_context(|| format!("cannot sign {}{how}", args.reference))?;
    let mut report = serde_json::Map::new();
    for signed in &written {
        if args.output == OutputFormat::Text {
            eprintln!("{}", describe(signed, signer));
            // The signed reference once, whatever the layouts.
            if signed.layout() == "legacy" || !layout.layouts().legacy() {
                print_line(signed.image())?;
            }
        }
        report.insert(signed.layout().into(), serde_json::to_value(signed)?);
    }
    if args.output == OutputFormat::Json {
        print_line(serde_json::to_string_pretty(&report)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What the text output says about a key signature's log entry (or its absence).
pub fn key_log_note(entry: Option<&LoggedEntry>, signer: ImageSigner<'_>) -> String {
    let checked = matches!(signer, ImageSigner::KeyLogged { check: Some(_), .. });
    match entry {
        None => NO_TLOG_NOTE.to_string(),
        Some(e) if e.rekor_version == 1 => format!(
            "Rekor v1 entry {} (log index {}, integrated {}) with its signed entry timestamp{}",
            e.rekor_uuid.as_deref().unwrap_or(""),
            e.log_index,
            e.integrated_time.unwrap_or_default(),
            checked_note(checked)
        ),
        Some(e) => format!(
            "Rekor v{} log index {}, RFC 3161 timestamp from {}{}",
            e.rekor_version,
            e.log_index,
            e.timestamp_authority.as_deref().unwrap_or("the TSA"),
            checked_note(checked)
        ),
    }
}

/// What one signature written looks like on stderr.
fn describe(signed: &Signed, signer: ImageSigner<'_>) -> String {
    match signed {
        Signed::Legacy(s) => format!(
            "signed {} ({} signature(s) under {}{}); {}",
            s.image,
            s.signatures,
            s.signature_tag,
            oci11_route(s.via),
            key_log_note(s.transparency_log.as_ref(), signer)
        ),
        Signed::Bundle(s) => format!(
            "signed {} (bundle {}, found through {}); {}",
            s.image,
            s.referrer,
            found_through(s.via),
            key_log_note(s.transparency_log.as_ref(), signer)
        ),
        Signed::LegacyKeyless(s) => format!(
            "signed {} keyless as {} (issuer {}): {} signature(s) under {}{}; {}",
            s.signed.image,
            s.certificate_identity,
            s.certificate_oidc_issuer,
            s.signed.signatures,
            s.signed.signature_tag,
            oci11_route(s.signed.via),
            rekor_v1_entry(s)
        ),
        Signed::BundleKeyless(s) => {
            let tsa = signer.tsa_url();
            format!(
                "signed {} keyless as {} (issuer {}): bundle {}, found through {}; {}",
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
