//! What `kibaverify sign` and `kibaverify attest` share: who signs (a cosign key, or keyless with an OIDC token
//! and Fulcio, Rekor and a TSA from a signing config or flags), where (the layout), and loading all of it with
//! bounded reads and errors that never contain the key password or the token.
use crate::password::PasswordFor;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use kibaship_cosign::identity_token::{IdentityToken, MAX_TOKEN_BYTES};
use kibaship_cosign::key_log::{KeyTransparencyLog, LogServices};
use kibaship_cosign::keyless::{KeylessSigner, now_unix};
use kibaship_cosign::signing_config::{RekorLogs, SigningServices};
use kibaship_cosign::{Layouts, LoadedSigner};
use kibaship_sign::{MAX_KEY_FILE_BYTES, SigningKey, is_encrypted_key_file};
use kibaship_sigstore::{TrustedRoot, Verifier};

use super::digest::RegistryFlags;
use kibaship_cli::input::{MAX_CONFIG_FILE_BYTES, read_bounded};

/// Largest signing config or trusted root read.
/// How long one request to Fulcio, Rekor or the TSA may take (Rekor v2 batches entries: at least 10 s).
const SERVICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where signatures (or attestations) are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureLayout {
    /// cosign's `sha256-<hex>.sig` (`.att`) tag with a simple-signing payload (a DSSE envelope): what cosign v2
    /// and policy-controller read.
    #[default]
    Legacy,
    /// A Sigstore bundle v0.3 attached as an OCI referrer (cosign v3's default layout).
    Bundle,
    /// Both.
    Both,
    /// cosign's OCI 1.1 signature mode (`cosign sign --new-bundle-format=false --registry-referrers-mode=oci-1-1`):
    /// the legacy `.sig` manifest attached as a referrer with artifactType
    /// `application/vnd.dev.cosign.artifact.sig.v1+json` (referrers API, else the fallback tag). Signatures only.
    #[value(name = "oci-1-1")]
    Oci11,
}

impl SignatureLayout {
    /// `layout` for attestations: `oci-1-1` is refused before anything is read or written (cosign has that mode
    /// for signatures only).
    pub fn for_attestations(layout: Option<Self>) -> anyhow::Result<Option<Self>> {
        if layout == Some(SignatureLayout::Oci11) {
            bail!(
                "--layout oci-1-1: {}",
                kibaship_cosign::CosignError::NoOci11Attestations
            );
        }
        Ok(layout)
    }

    /// The layouts kibaship-cosign writes for this flag value.
    pub fn layouts(self) -> Layouts {
        match self {
            SignatureLayout::Legacy => Layouts::Legacy,
            SignatureLayout::Bundle => Layouts::Bundle,
            SignatureLayout::Both => Layouts::Both,
            SignatureLayout::Oci11 => Layouts::LegacyReferrer,
        }
    }
}

/// Who signs: `--key`, or `--keyless` with its services and token.
#[derive(clap::Args, Debug)]
pub struct SignerFlags {
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
    /// Sigstore signing config (v0.2 JSON) naming Fulcio, Rekor (v2 for the bundle layout, v1 for the legacy
    /// layout) and the TSA. With --key, the signature is entered in its Rekor log (unless --tlog-upload=false).
    #[arg(long, value_name = "FILE")]
    pub signing_config: Option<PathBuf>,
    /// Keyless: Fulcio URL (instead of, or overriding, the signing config's).
    #[arg(long, value_name = "URL", requires = "keyless")]
    pub fulcio_url: Option<String>,
    /// Rekor v2 URL (bundle layout), keyless or with --key.
    #[arg(long, value_name = "URL")]
    pub rekor_url: Option<String>,
    /// Rekor v1 URL (legacy layout: its entries carry the signed entry timestamp cosign's legacy verifiers
    /// need), keyless or with --key.
    #[arg(long = "rekor-v1-url", value_name = "URL")]
    pub rekor_v1_url: Option<String>,
    /// RFC 3161 timestamp endpoint (`.../api/v1/timestamp`), needed beside Rekor v2.
    #[arg(long, value_name = "URL")]
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
    /// Verify the new signature (keyless, or a key's logged one) against this `trusted_root.json` before
    /// uploading it.
    #[arg(long, value_name = "FILE")]
    pub trusted_root: Option<PathBuf>,
    /// Upload to the Rekor transparency log. With --key: a signing config or Rekor URL makes the signature
    /// logged unless this is `false`; without one, nothing is logged (verifiers then need
    /// `--insecure-ignore-tlog`) and `true` is an error. Keyless signatures are always logged.
    #[arg(long = "tlog-upload", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub tlog_upload: Option<bool>,
}

/// A keyless signer ready to use, and the verifier of its self-check.
pub struct Keyless {
    /// Signs with Fulcio, Rekor and the TSA.
    pub signer: KeylessSigner,
    /// The trusted root each signature is verified against before upload (`--trusted-root`).
    pub check: Option<Verifier>,
}

impl SignerFlags {
    /// The signer the flags describe and the layout it writes (`layout`, else `legacy` with a key and `bundle`
    /// keyless): the key, or the keyless signer.
    pub fn load(
        &self,
        layout: Option<SignatureLayout>,
        registry: &RegistryFlags,
    ) -> anyhow::Result<(SignatureLayout, LoadedSigner)> {
        Ok(match self.key_path() {
            Some(key_path) => {
                let layout = layout.unwrap_or_default();
                let key = load_signing_key(key_path)?;
                match self.key_transparency_log(layout, registry)? {
                    Some((log, check)) => (
                        layout,
                        LoadedSigner::KeyLogged {
                            key,
                            log: Box::new(log),
                            check: check.map(Box::new),
                        },
                    ),
                    None => (layout, LoadedSigner::Key(key)),
                }
            }
            None => {
                let layout = layout.unwrap_or(SignatureLayout::Bundle);
                let Keyless { signer, check } = self.keyless(layout, registry)?;
                (
                    layout,
                    LoadedSigner::Keyless {
                        signer: Box::new(signer),
                        check: check.map(Box::new),
                    },
                )
            }
        })
    }

    /// The key file, when signing with a key (not keyless).
    pub fn key_path(&self) -> Option<&Path> {
        self.key.as_deref().filter(|_| !self.keyless)
    }

    /// Whether a log is named for key signatures: a signing config or a Rekor URL.
    fn names_a_log(&self) -> bool {
        self.signing_config.is_some() || self.rekor_url.is_some() || self.rekor_v1_url.is_some()
    }

    /// With `--key`: the transparency log its signatures in `layout` are entered in (from `--signing-config`,
    /// overridden by `--rekor-url`, `--rekor-v1-url`, `--tsa-url`), and the trusted root to check them against,
    /// or `None` when nothing is logged (`--tlog-upload=false`, or no log named). `--tlog-upload=true` without a
    /// log is an error.
    pub fn key_transparency_log(
        &self,
        layout: SignatureLayout,
        registry: &RegistryFlags,
    ) -> anyhow::Result<Option<(KeyTransparencyLog, Option<Verifier>)>> {
        self.key_log_for(Some(layout.layouts().rekor_logs()), registry)
    }

    /// With `--key`, for a blob's bundle (`sign-blob`, `attest-blob`): the log its signature is entered in, as
    /// cosign v3.1.3 picks it from the signing config (Rekor v2 with the TSA when offered, else Rekor v1), and
    /// the trusted root to check the bundle against; `None` when nothing is logged, as
    /// [`SignerFlags::key_transparency_log`].
    pub fn key_blob_log(
        &self,
        registry: &RegistryFlags,
    ) -> anyhow::Result<Option<(KeyTransparencyLog, Option<Verifier>)>> {
        self.key_log_for(None, registry)
    }

    /// [`SignerFlags::key_transparency_log`] for the logs `needs` names; `None`: Rekor v2 if named, else v1.
    fn key_log_for(
        &self,
        needs: Option<RekorLogs>,
        registry: &RegistryFlags,
    ) -> anyhow::Result<Option<(KeyTransparencyLog, Option<Verifier>)>> {
        if self.tlog_upload == Some(false) || (!self.names_a_log() && self.tlog_upload.is_none()) {
            if self.trusted_root.is_some() {
                bail!(
                    "--trusted-root with --key checks a logged signature before upload, and nothing is logged here: name a log (--signing-config, --rekor-url, --rekor-v1-url) or drop --trusted-root"
                );
            }
            return Ok(None);
        }
        if !self.names_a_log() {
            bail!(
                "--tlog-upload=true is not supported with --key without a Rekor log: give --signing-config, or --rekor-v1-url (legacy layout) / --rekor-url and --tsa-url (bundle layout)"
            );
        }
        let mut services = match &self.signing_config {
            Some(path) => {
                let json = read_bounded(path, "signing config", MAX_CONFIG_FILE_BYTES)?;
                // A log given by flag need not be in the config.
                let needs = match (needs, self.rekor_url.is_some(), self.rekor_v1_url.is_some()) {
                    (None, _, _) => None,
                    (Some(RekorLogs::V2), true, _) | (Some(RekorLogs::V1), _, true) => None,
                    (Some(RekorLogs::Both), true, true) => None,
                    (Some(RekorLogs::Both), true, false) => Some(RekorLogs::V1),
                    (Some(RekorLogs::Both), false, true) => Some(RekorLogs::V2),
                    (Some(n), _, _) => Some(n),
                };
                let parsed = match needs {
                    Some(needs) => LogServices::from_signing_config(&json, now_unix(), needs),
                    None => LogServices::from_signing_config(&json, now_unix(), RekorLogs::V2)
                        .or_else(|_| {
                            LogServices::from_signing_config(&json, now_unix(), RekorLogs::V1)
                        }),
                };
                parsed.with_context(|| format!("cannot use signing config {}", path.display()))?
            }
            None => LogServices::default(),
        };
        if let Some(u) = &self.rekor_url {
            services.rekor_url = Some(u.clone());
        }
        if let Some(u) = &self.rekor_v1_url {
            services.rekor_v1_url = Some(u.clone());
        }
        if let Some(u) = &self.tsa_url {
            services.tsa_url = Some(u.clone());
        }
        check_service_urls(&[
            ("Rekor", services.rekor_url.as_ref()),
            ("Rekor v1", services.rekor_v1_url.as_ref()),
            ("TSA", services.tsa_url.as_ref()),
        ])?;
        let needs = needs.unwrap_or(if services.rekor_url.is_some() {
            RekorLogs::V2
        } else {
            RekorLogs::V1
        });
        let log = KeyTransparencyLog::new(self.service_client(registry)?, services, needs)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{e} (with --key: --signing-config, --rekor-v1-url for the legacy layout, --rekor-url and --tsa-url for the bundle layout)"
                )
            })?;
        Ok(Some((log, self.trusted_root_verifier()?)))
    }

    /// `--trusted-root`, parsed.
    fn trusted_root_verifier(&self) -> anyhow::Result<Option<Verifier>> {
        Ok(match &self.trusted_root {
            Some(p) => Some(Verifier::new(
                TrustedRoot::from_json(&read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?)
                    .with_context(|| format!("invalid trusted root {}", p.display()))?,
            )),
            None => None,
        })
    }

    /// The HTTP client for Fulcio, Rekor and the TSA, trusting the registry's extra CAs too.
    fn service_client(&self, registry: &RegistryFlags) -> anyhow::Result<reqwest::Client> {
        let mut http = reqwest::Client::builder().timeout(SERVICE_TIMEOUT);
        if let Some(path) = &registry.ca_file {
            // The same extra CAs as for the registry: private Sigstore services often share them.
            let pem = read_bounded(path, "CA file", MAX_CONFIG_FILE_BYTES)?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("CA file {} is not a PEM bundle", path.display()))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        http.build()
            .context("cannot set up the HTTP client for Fulcio, Rekor and the TSA")
    }

    /// The keyless signer for `layout`: the token, the services the layout needs, the HTTP client (trusting the
    /// registry's extra CAs too) and the optional trusted root.
    pub fn keyless(
        &self,
        layout: SignatureLayout,
        registry: &RegistryFlags,
    ) -> anyhow::Result<Keyless> {
        if self.tlog_upload == Some(false) {
            bail!(
                "--tlog-upload=false cannot be used with --keyless: keyless signatures are always logged"
            );
        }
        let token = self.identity_token()?;
        let services = self.signing_services(layout.layouts().rekor_logs())?;
        let check = self.trusted_root_verifier()?;
        let signer = KeylessSigner::new(self.service_client(registry)?, services, token)?;
        Ok(Keyless { signer, check })
    }

    /// The identity token: `--identity-token`, else `--identity-token-file`, else SIGSTORE_ID_TOKEN. Errors never
    /// contain the token.
    fn identity_token(&self) -> anyhow::Result<IdentityToken> {
        let (raw, from) = if let Some(t) = &self.identity_token {
            (t.clone(), "--identity-token".to_string())
        } else if let Some(path) = &self.identity_token_file {
            let bytes = read_bounded(path, "identity token file", MAX_TOKEN_BYTES as u64)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                anyhow::anyhow!("identity token file {} is not UTF-8", path.display())
            })?;
            (text, format!("identity token file {}", path.display()))
        } else if let Ok(t) = std::env::var("SIGSTORE_ID_TOKEN") {
            (t, "SIGSTORE_ID_TOKEN".to_string())
        } else {
            bail!(
                "keyless signing needs an OIDC identity token: set SIGSTORE_ID_TOKEN, or give --identity-token-file (e.g. a projected service-account token with audience sigstore)"
            );
        };
        IdentityToken::parse(&raw, now_unix())
            .with_context(|| format!("unusable token from {from}"))
    }

    /// Fulcio, Rekor and the TSA: from `--signing-config` (requiring the Rekor logs in `needs`), overridden by
    /// the URL flags.
    fn signing_services(&self, needs: RekorLogs) -> anyhow::Result<SigningServices> {
        let mut services = match &self.signing_config {
            Some(path) => {
                let json = read_bounded(path, "signing config", MAX_CONFIG_FILE_BYTES)?;
                // A log given by flag need not be in the config.
                let needs = match (needs, self.rekor_url.is_some(), self.rekor_v1_url.is_some()) {
                    (RekorLogs::Both, true, false) => RekorLogs::V1,
                    (RekorLogs::Both, false, true) => RekorLogs::V2,
                    (n, _, _) => n,
                };
                let flagged = match needs {
                    RekorLogs::V2 => self.rekor_url.is_some(),
                    RekorLogs::V1 => self.rekor_v1_url.is_some(),
                    RekorLogs::Both => self.rekor_url.is_some() && self.rekor_v1_url.is_some(),
                };
                let parsed = if flagged {
                    // Every log needed is given by flag: the config only has to offer Fulcio.
                    SigningServices::from_signing_config_for(&json, now_unix(), RekorLogs::V2)
                        .or_else(|_| {
                            SigningServices::from_signing_config_for(
                                &json,
                                now_unix(),
                                RekorLogs::V1,
                            )
                        })
                } else {
                    SigningServices::from_signing_config_for(&json, now_unix(), needs)
                };
                parsed.with_context(|| format!("cannot use signing config {}", path.display()))?
            }
            None => {
                let rekor_given = match needs {
                    RekorLogs::V2 => self.rekor_url.is_some(),
                    RekorLogs::V1 => self.rekor_v1_url.is_some(),
                    RekorLogs::Both => self.rekor_url.is_some() && self.rekor_v1_url.is_some(),
                };
                let Some(fulcio) = self.fulcio_url.as_ref().filter(|_| rekor_given) else {
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
        if let Some(u) = &self.fulcio_url {
            services.fulcio_url = u.clone();
        }
        if let Some(u) = &self.rekor_url {
            services.rekor_url = Some(u.clone());
        }
        if let Some(u) = &self.rekor_v1_url {
            services.rekor_v1_url = Some(u.clone());
        }
        if let Some(u) = &self.tsa_url {
            services.tsa_url = Some(u.clone());
        }
        if needs == RekorLogs::V1 {
            // The legacy layout is dated by Rekor v1's SET; a Rekor v2 log from the config is not used.
            services.rekor_url = None;
        }
        check_service_urls(&[
            ("Fulcio", Some(&services.fulcio_url)),
            ("Rekor", services.rekor_url.as_ref()),
            ("Rekor v1", services.rekor_v1_url.as_ref()),
            ("TSA", services.tsa_url.as_ref()),
        ])?;
        Ok(services)
    }
}

/// Refuses a service URL that is not http(s), naming the service.
fn check_service_urls(urls: &[(&str, Option<&String>)]) -> anyhow::Result<()> {
    for (service, url) in urls {
        if let Some(url) = url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("{service} URL {url:?} is not an http(s) URL");
            }
        }
    }
    Ok(())
}

/// Loads a private key as cosign does: encrypted cosign/sigstore keys with COSIGN_PASSWORD (or a terminal
/// prompt), plain PEM as is (the rules of [`SigningKey::from_key_file`]).
pub fn load_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = read_bounded(path, "key", MAX_KEY_FILE_BYTES)?;
    let password = if is_encrypted_key_file(&pem) {
        let shown = path.display().to_string();
        Some(crate::password::cosign_password(PasswordFor::ExistingKey(
            &shown,
        ))?)
    } else {
        None
    };
    SigningKey::from_key_file(&pem, password.as_ref().map(|p| p.as_bytes()))
        .with_context(|| format!("cannot load key {}", path.display()))
}
