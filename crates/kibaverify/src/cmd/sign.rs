//! `kibaverify sign`: sign an image by digest with a cosign key, in cosign's legacy `.sig` layout.
//!
//! Exit codes: 0 signed; 2 bad input (key, password, reference) or an unreachable registry.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_oci::Reference;
use kibaship_sign::SigningKey;

use super::digest::{OutputFormat, RegistryFlags};

/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// Where signatures are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureLayout {
    /// cosign's `sha256-<hex>.sig` tag with a simple-signing payload (what cosign v2 and policy-controller read).
    #[default]
    Legacy,
    /// A Sigstore bundle v0.3 attached as an OCI referrer (cosign v3's default layout).
    Bundle,
    /// Both.
    Both,
}

/// Arguments of `kibaverify sign`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to sign (a tag is resolved to its digest first; the digest is what gets signed).
    #[arg(value_name = "REF")]
    pub reference: String,
    /// Private key: cosign's encrypted key file (password from COSIGN_PASSWORD) or a plain PKCS#8/SEC1/PKCS#1 PEM.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Annotation `key=value` signed into the payload's `optional` section. Repeatable.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Signature layout to write.
    #[arg(long, value_enum, default_value_t = SignatureLayout::Legacy)]
    pub layout: SignatureLayout,
    /// Upload to the Rekor transparency log. Only `false` is supported for now (as `cosign sign
    /// --tlog-upload=false`): verifiers then need `--insecure-ignore-tlog`.
    #[arg(long = "tlog-upload", value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    pub tlog_upload: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Loads a private key as cosign does: encrypted cosign/sigstore keys with COSIGN_PASSWORD, plain PEM as is.
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read key {}", path.display()))?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        bail!(
            "key {} is {} bytes, larger than any key file ({MAX_KEY_FILE_BYTES} bytes)",
            path.display(),
            meta.len()
        );
    }
    let pem = std::fs::read(path).with_context(|| format!("cannot read key {}", path.display()))?;
    let encrypted = String::from_utf8_lossy(&pem).contains("-----BEGIN ENCRYPTED ");
    if encrypted {
        let password = std::env::var("COSIGN_PASSWORD").map_err(|_| {
            anyhow::anyhow!(
                "key {} is encrypted: set COSIGN_PASSWORD to its password (it may be empty)",
                path.display()
            )
        })?;
        SigningKey::from_encrypted_pem(&pem, password.as_bytes())
            .with_context(|| format!("cannot load key {}", path.display()))
    } else {
        SigningKey::from_pem(&pem).with_context(|| format!("cannot load key {}", path.display()))
    }
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

/// Signs the image and prints the signed digest.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.tlog_upload {
        bail!(
            "--tlog-upload=true is not supported yet: kibaverify signs without a transparency-log entry (as cosign --tlog-upload=false)"
        );
    }
    let reference = Reference::parse(&args.reference)?;
    let annotations = parse_annotations(&args.annotations)?;
    let key = load_signing_key(&args.key)?;
    let client = args.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut report = serde_json::Map::new();
    let note = "no transparency-log entry was made: verify with --insecure-ignore-tlog";
    if matches!(args.layout, SignatureLayout::Legacy | SignatureLayout::Both) {
        let signed = runtime
            .block_on(kibaship_cosign::sign_legacy(
                &client,
                &reference,
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
    if matches!(args.layout, SignatureLayout::Bundle | SignatureLayout::Both) {
        let signed = runtime
            .block_on(kibaship_cosign::sign_bundle(
                &client,
                &reference,
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
            if args.layout == SignatureLayout::Bundle {
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
