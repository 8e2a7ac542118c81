//! `kibaverify sign`: sign an image by digest with a cosign key (legacy `.sig` and/or bundle layout), or keyless
//! (`--keyless`: OIDC token, Fulcio certificate; the bundle layout is logged in Rekor v2 with a TSA timestamp, the
//! legacy layout in Rekor v1, whose signed entry timestamp its layers carry).
//!
//! Exit codes: 0 signed; 2 bad input (key, password, token, reference) or an unreachable registry or service.
use crate::password::PasswordFor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use kibaship_cosign::identity_token::{IdentityToken, MAX_TOKEN_BYTES};
use kibaship_cosign::keyless::{KeylessSigner, now_unix};
use kibaship_cosign::signing_config::{RekorLogs, SigningServices};
use kibaship_oci::Reference;
use kibaship_sign::SigningKey;
use kibaship_sigstore::{TrustedRoot, Verifier};

use super::digest::{OutputFormat, RegistryFlags};

/// Largest key file read.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// Largest signing config or trusted root read.
const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// How long one request to Fulcio, Rekor or the TSA may take (Rekor v2 batches entries: at least 10 s).
const SERVICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "keyless",
        conflicts_with = "keyless"
    )]
    pub key: Option<PathBuf>,
    /// Sign keyless: an ephemeral key certified by Fulcio for the OIDC identity token. The bundle layout (the
    /// default keyless) is logged in Rekor v2 and timestamped by a TSA; the legacy layout is logged in Rekor v1.
    #[arg(long)]
    pub keyless: bool,
    /// Keyless: Sigstore signing config (v0.2 JSON) naming Fulcio, Rekor (v2 for the bundle layout, v1 for the
    /// legacy layout) and the TSA.
    #[arg(long, value_name = "FILE", requires = "keyless")]
    pub signing_config: Option<PathBuf>,
    /// Keyless: Fulcio URL (instead of, or overriding, the signing config's).
    #[arg(long, value_name = "URL", requires = "keyless")]
    pub fulcio_url: Option<String>,
    /// Keyless: Rekor v2 URL (bundle layout).
    #[arg(long, value_name = "URL", requires = "keyless")]
    pub rekor_url: Option<String>,
    /// Keyless: Rekor v1 URL (legacy layout: its entries carry the signed entry timestamp cosign's legacy
    /// verifiers need).
    #[arg(long = "rekor-v1-url", value_name = "URL", requires = "keyless")]
    pub rekor_v1_url: Option<String>,
    /// Keyless: RFC 3161 timestamp endpoint (`.../api/v1/timestamp`).
    #[arg(long, value_name = "URL", requires = "keyless")]
    pub tsa_url: Option<String>,
    /// Keyless: file holding the OIDC identity token (e.g. a Tekton projected service-account token with
    /// audience `sigstore`). Default: the SIGSTORE_ID_TOKEN environment variable.
    #[arg(
        long,
        value_name = "FILE",
        requires = "keyless",
        conflicts_with = "identity_token"
    )]
    pub identity_token_file: Option<PathBuf>,
    /// Keyless: the OIDC identity token itself (visible in the process list: prefer the file or
    /// SIGSTORE_ID_TOKEN).
    #[arg(long, value_name = "TOKEN", requires = "keyless")]
    pub identity_token: Option<String>,
    /// Keyless: verify the new signature against this `trusted_root.json` before uploading it.
    #[arg(long, value_name = "FILE", requires = "keyless")]
    pub trusted_root: Option<PathBuf>,
    /// Annotation `key=value` signed into the payload's `optional` section. Repeatable.
    #[arg(short = 'a', long = "annotations", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// Signature layout to write (default: `legacy` with --key, `bundle` keyless).
    #[arg(long, value_enum)]
    pub layout: Option<SignatureLayout>,
    /// Upload to the Rekor transparency log. With --key only `false` is supported (as `cosign sign
    /// --tlog-upload=false`): verifiers then need `--insecure-ignore-tlog`. Keyless signatures are always logged.
    #[arg(long = "tlog-upload", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub tlog_upload: Option<bool>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub registry: RegistryFlags,
}

/// Loads a private key as cosign does: encrypted cosign/sigstore keys with COSIGN_PASSWORD (or a terminal
/// prompt), plain PEM as is.
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
        let shown = path.display().to_string();
        let password = crate::password::cosign_password(PasswordFor::ExistingKey(&shown))?;
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

fn read_bounded(path: &Path, what: &str, max: u64) -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if meta.len() > max {
        bail!(
            "{what} {} is {} bytes, more than the {max} accepted",
            path.display(),
            meta.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// The identity token: `--identity-token`, else `--identity-token-file`, else SIGSTORE_ID_TOKEN. Errors never
/// contain the token.
fn identity_token(args: &Args) -> anyhow::Result<IdentityToken> {
    let (raw, from) = if let Some(t) = &args.identity_token {
        (t.clone(), "--identity-token".to_string())
    } else if let Some(path) = &args.identity_token_file {
        let bytes = read_bounded(path, "identity token file", MAX_TOKEN_BYTES as u64)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("identity token file {} is not UTF-8", path.display()))?;
        (text, format!("identity token file {}", path.display()))
    } else if let Ok(t) = std::env::var("SIGSTORE_ID_TOKEN") {
        (t, "SIGSTORE_ID_TOKEN".to_string())
    } else {
        bail!(
            "keyless signing needs an OIDC identity token: set SIGSTORE_ID_TOKEN, or give --identity-token-file (e.g. a projected service-account token with audience sigstore)"
        );
    };
    IdentityToken::parse(&raw, now_unix()).with_context(|| format!("unusable token from {from}"))
}

/// Fulcio, Rekor and the TSA: from `--signing-config` (requiring the Rekor logs in `needs`), overridden by the
/// URL flags.
fn signing_services(args: &Args, needs: RekorLogs) -> anyhow::Result<SigningServices> {
    let mut services = match &args.signing_config {
        Some(path) => {
            let json = read_bounded(path, "signing config", MAX_CONFIG_FILE_BYTES)?;
            // A log given by flag need not be in the config.
            let needs = match (needs, args.rekor_url.is_some(), args.rekor_v1_url.is_some()) {
                (RekorLogs::Both, true, false) => RekorLogs::V1,
                (RekorLogs::Both, false, true) => RekorLogs::V2,
                (n, _, _) => n,
            };
            let flagged = match needs {
                RekorLogs::V2 => args.rekor_url.is_some(),
                RekorLogs::V1 => args.rekor_v1_url.is_some(),
                RekorLogs::Both => args.rekor_url.is_some() && args.rekor_v1_url.is_some(),
            };
            let parsed = if flagged {
                // Every log needed is given by flag: the config only has to offer Fulcio.
                SigningServices::from_signing_config_for(&json, now_unix(), RekorLogs::V2).or_else(
                    |_| SigningServices::from_signing_config_for(&json, now_unix(), RekorLogs::V1),
                )
            } else {
                SigningServices::from_signing_config_for(&json, now_unix(), needs)
            };
            parsed.with_context(|| format!("cannot use signing config {}", path.display()))?
        }
        None => {
            let rekor_given = match needs {
                RekorLogs::V2 => args.rekor_url.is_some(),
                RekorLogs::V1 => args.rekor_v1_url.is_some(),
                RekorLogs::Both => args.rekor_url.is_some() && args.rekor_v1_url.is_some(),
            };
            let Some(fulcio) = args.fulcio_url.as_ref().filter(|_| rekor_given) else {
                bail!(
                    "keyless signing needs --signing-config, or --fulcio-url and {}",
                    match needs {
                        RekorLogs::V2 => "--rekor-url and --tsa-url (bundle layout)",
                        RekorLogs::V1 => "--rekor-v1-url (legacy layout)",
                        RekorLogs::Both =>
                            "--rekor-url, --tsa-url and --rekor-v1-url (both layouts)",
                    }
                );
            };
            SigningServices {
                fulcio_url: fulcio.clone(),
                rekor_url: None,
                rekor_v1_url: None,
                tsa_url: None,
                oidc_url: None,
            }
        }
    };
    if let Some(u) = &args.fulcio_url {
        services.fulcio_url = u.clone();
    }
    if let Some(u) = &args.rekor_url {
        services.rekor_url = Some(u.clone());
    }
    if let Some(u) = &args.rekor_v1_url {
        services.rekor_v1_url = Some(u.clone());
    }
    if let Some(u) = &args.tsa_url {
        services.tsa_url = Some(u.clone());
    }
    if needs == RekorLogs::V1 {
        // The legacy layout is dated by Rekor v1's SET; a Rekor v2 log from the config is not used.
        services.rekor_url = None;
    }
    for (flag, url) in [
        ("Fulcio", Some(&services.fulcio_url)),
        ("Rekor", services.rekor_url.as_ref()),
        ("Rekor v1", services.rekor_v1_url.as_ref()),
        ("TSA", services.tsa_url.as_ref()),
    ] {
        if let Some(url) = url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("{flag} URL {url:?} is not an http(s) URL");
            }
        }
    }
    Ok(services)
}

fn run_keyless(
    args: &Args,
    reference: &Reference,
    signature_repository: Option<Reference>,
    annotations: BTreeMap<String, String>,
) -> anyhow::Result<ExitCode> {
    let layout = args.layout.unwrap_or(SignatureLayout::Bundle);
    let needs = match layout {
        SignatureLayout::Bundle => RekorLogs::V2,
        SignatureLayout::Legacy => RekorLogs::V1,
        SignatureLayout::Both => RekorLogs::Both,
    };
    if args.tlog_upload == Some(false) {
        bail!(
            "--tlog-upload=false cannot be used with --keyless: keyless signatures are always logged"
        );
    }
    let token = identity_token(args)?;
    let services = signing_services(args, needs)?;
    let check = match &args.trusted_root {
        Some(p) => Some(Verifier::new(
            TrustedRoot::from_json(&read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?)
                .with_context(|| format!("invalid trusted root {}", p.display()))?,
        )),
        None => None,
    };
    let mut http = reqwest::Client::builder().timeout(SERVICE_TIMEOUT);
    if let Some(path) = &args.registry.ca_file {
        // The same extra CAs as for the registry: private Sigstore services often share them.
        let pem = read_bounded(path, "CA file", MAX_CONFIG_FILE_BYTES)?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("CA file {} is not a PEM bundle", path.display()))?
        {
            http = http.add_root_certificate(cert);
        }
    }
    let http = http
        .build()
        .context("cannot set up the HTTP client for Fulcio, Rekor and the TSA")?;
    let signer = KeylessSigner::new(http, services, token)?;
    let client = args.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut report = serde_json::Map::new();
    if matches!(layout, SignatureLayout::Legacy | SignatureLayout::Both) {
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
    if matches!(layout, SignatureLayout::Bundle | SignatureLayout::Both) {
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
    let Some(key_path) = args.key.as_ref().filter(|_| !args.keyless) else {
        return run_keyless(&args, &reference, signature_repository, annotations);
    };
    if args.tlog_upload == Some(true) {
        bail!(
            "--tlog-upload=true is not supported with --key: kibaverify signs with a key without a transparency-log entry (as cosign --tlog-upload=false); use --keyless for logged signatures"
        );
    }
    let layout = args.layout.unwrap_or_default();
    let key = load_signing_key(key_path)?;
    let client = args.registry.client()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut report = serde_json::Map::new();
    let note = "no transparency-log entry was made: verify with --insecure-ignore-tlog";
    if matches!(layout, SignatureLayout::Legacy | SignatureLayout::Both) {
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
    if matches!(layout, SignatureLayout::Bundle | SignatureLayout::Both) {
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
