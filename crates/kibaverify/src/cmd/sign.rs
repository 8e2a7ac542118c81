//! `kibaverify sign`: sign an image by digest with a cosign key (legacy `.sig` and/or bundle layout), or keyless
//! (`--keyless`: OIDC token, Fulcio certificate; the bundle layout is logged in Rekor v2 with a TSA timestamp, the
//! legacy layout in Rekor v1, whose signed entry timestamp its layers carry).
//!
//! Exit codes: 0 signed; 2 bad input (key, password, token, reference) or an unreachable registry or service.
use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_oci::Reference;

use super::digest::{OutputFormat, RegistryFlags};
use super::signer_flags::{Keyless, SignatureLayout, SignerFlags};

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

fn parse_annotations(raw: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
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

fn run_keyless(
    args: &Args,
    reference: &Reference,
    signature_repository: Option<Reference>,
    annotations: BTreeMap<String, String>,
) -> anyhow::Result<ExitCode> {
    let layout = args.layout.unwrap_or(SignatureLayout::Bundle);
    let Keyless { signer, check } = args.signer.keyless(layout, &args.registry)?;
    let client = args.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut report = serde_json::Map::new();
    if layout.legacy() {
        let signed = runtime
            .block_on(kibaship_cosign::sign_legacy_keyless(
                &client,
                reference,
                signature_repository.as_ref(),
                &signer,
                annotations.clone(),
                check.as_ref(),
            ))
            .with_context(|| format!("cannot sign {} keyless", args.reference))?;
        if args.output == OutputFormat::Text {
            eprintln!(
                "signed {} keyless as {} (issuer {}): {} signature(s) under {}; Rekor v1 entry {} (log index {}, integrated {}) with its signed entry timestamp{}",
                signed.signed.image,
                signed.certificate_identity,
                signed.certificate_oidc_issuer,
                signed.signed.signatures,
                signed.signed.signature_tag,
                signed.rekor_uuid,
                signed.log_index,
                signed.integrated_time,
                if signed.checked_against_trusted_root {
                    "; verified against the trusted root before upload"
                } else {
                    ""
                }
            );
            println!("{}", signed.signed.image);
        }
        report.insert("legacy".into(), serde_json::to_value(&signed)?);
    }
    if layout.bundle() {
        let signed = runtime
            .block_on(kibaship_cosign::sign_bundle_keyless(
                &client,
                reference,
                signature_repository.as_ref(),
                &signer,
                annotations,
                check.as_ref(),
            ))
            .with_context(|| format!("cannot sign {} keyless", args.reference))?;
        if args.output == OutputFormat::Text {
            let via = match signed.bundle.via {
                kibaship_oci::ReferrersSource::Api => "the referrers API",
                kibaship_oci::ReferrersSource::FallbackTag => "the referrers fallback tag",
            };
            eprintln!(
                "signed {} keyless as {} (issuer {}): bundle {}, found through {via}; Rekor v2 log index {}, RFC 3161 timestamp from {}{}",
                signed.bundle.image,
                signed.certificate_identity,
                signed.certificate_oidc_issuer,
                signed.bundle.referrer,
                signed.log_index,
                signer.services().tsa_url.as_deref().unwrap_or("the TSA"),
                if signed.checked_against_trusted_root {
                    "; verified against the trusted root before upload"
                } else {
                    ""
                }
            );
            if layout == SignatureLayout::Bundle {
                println!("{}", signed.bundle.image);
            }
        }
        report.insert("bundle".into(), serde_json::to_value(&signed)?);
    }
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Signs the image and prints the signed digest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let reference = Reference::parse(&args.reference)?;
    let annotations = parse_annotations(&args.annotations)?;
    let signature_repository = super::verify::signature_repository_from_env()?;
    let Some(key_path) = args.signer.key_path() else {
        return run_keyless(&args, &reference, signature_repository, annotations);
    };
    let key = args.signer.signing_key(key_path)?;
    let layout = args.layout.unwrap_or_default();
    let client = args.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut report = serde_json::Map::new();
    let note = "no transparency-log entry was made: verify with --insecure-ignore-tlog";
    if layout.legacy() {
        let signed = runtime
            .block_on(kibaship_cosign::sign_legacy(
                &client,
                &reference,
                signature_repository.as_ref(),
                &key,
                annotations.clone(),
            ))
            .with_context(|| format!("cannot sign {}", args.reference))?;
        if args.output == OutputFormat::Text {
            eprintln!(
                "signed {} ({} signature(s) under {}); {note}",
                signed.image, signed.signatures, signed.signature_tag
            );
            println!("{}", signed.image);
        }
        report.insert("legacy".into(), serde_json::to_value(&signed)?);
    }
    if layout.bundle() {
        let signed = runtime
            .block_on(kibaship_cosign::sign_bundle(
                &client,
                &reference,
                signature_repository.as_ref(),
                &key,
                annotations,
            ))
            .with_context(|| format!("cannot sign {}", args.reference))?;
        if args.output == OutputFormat::Text {
            let via = match signed.via {
                kibaship_oci::ReferrersSource::Api => "the referrers API",
                kibaship_oci::ReferrersSource::FallbackTag => "the referrers fallback tag",
            };
            eprintln!(
                "signed {} (bundle {}, found through {via}); {note}",
                signed.image, signed.referrer
            );
            if layout == SignatureLayout::Bundle {
                println!("{}", signed.image);
            }
        }
        report.insert("bundle".into(), serde_json::to_value(&signed)?);
    }
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(ExitCode::SUCCESS)
}
