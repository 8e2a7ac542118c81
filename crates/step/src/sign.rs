//! The `kibaship-sign` task's step: sign the image the build pushed, by digest, with a cosign key or keyless.
//!
//! Tekton cannot leave an argument out, so every input arrives as a string that may be empty ("not set");
//! [`SignInputs::plan`] turns them into a checked [`SignPlan`] (no I/O), [`load_signer`] reads the key, token,
//! signing config and trusted root (bounded reads; errors never contain the password or the token), and
//! [`sign_image`] writes the signatures with `kibaship-cosign`. The reference signed is always
//! `<repository of --image>@<--digest>`: the tag is never resolved again, so a tag moved since the build cannot
//! swap the image that gets signed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kibaship_cli::input::InputError;
use kibaship_cosign::identity_token::{IdentityToken, MAX_TOKEN_BYTES, TokenError};
use kibaship_cosign::keyless::{KeylessError, KeylessSigner, now_unix};
use kibaship_cosign::registry::CosignError;
use kibaship_cosign::signing_config::{RekorLogs, SigningConfigError, SigningServices};
use kibaship_oci::{Digest, Reference, RegistryClient};
use kibaship_sign::{KeyError, SigningKey};
use kibaship_sigstore::{TrustedRoot, Verifier};
use zeroize::Zeroizing;

use crate::failure::{Classify, FailureKind};
use crate::results::{ResultSet, ResultsError, TEKTON_RESULTS_BUDGET};

/// Largest signing config or trusted root read.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// How long one request to Fulcio, Rekor or the TSA may take (Rekor v2 batches entries: at least 10 s).
const SERVICE_TIMEOUT: Duration = Duration::from_secs(60);
/// Any failure of the sign step. `Display` never contains the key password or the identity token.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A parameter is missing or malformed.
    #[error("{0}")]
    Parameter(String),
    /// An input file could not be read.
    #[error("cannot read {what} {path}: {reason}")]
    ReadInput {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The key file is not a usable key (or the password is wrong).
    #[error("cannot load key {path}: {source}")]
    Key {
        path: PathBuf,
        #[source]
        source: KeyError,
    },
    /// The identity token is unusable.
    #[error("unusable identity token from {path}: {source}")]
    Token {
        path: PathBuf,
        #[source]
        source: TokenError,
    },
    /// The signing config is unusable.
    #[error("cannot use signing config {path}: {source}")]
    SigningConfig {
        path: PathBuf,
        #[source]
        source: SigningConfigError,
    },
    /// The trusted root is unusable.
    #[error("invalid trusted root {path}: {reason}")]
    TrustedRoot { path: PathBuf, reason: String },
    /// The keyless signer could not be set up.
    #[error("cannot set up keyless signing: {0}")]
    Keyless(#[source] KeylessError),
    /// Signing or uploading failed.
    #[error("cannot sign {image} ({layout} layout): {source}")]
    Sign {
        image: String,
        layout: &'static str,
        #[source]
        source: Box<CosignError>,
    },
    /// The results could not be written.
    #[error(transparent)]
    Results(#[from] ResultsError),
}

impl SignError {
    /// Adds `hint` (where the file should come from) to a file that could not be read.
    fn with_hint(self, hint: &str) -> SignError {
        match self {
            SignError::ReadInput { what, path, reason } => SignError::ReadInput {
                what,
                path,
                reason: format!("{reason} ({hint})"),
            },
            other => other,
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        self.kind().exit_code()
    }
}

impl Classify for SignError {
    fn kind(&self) -> FailureKind {
        match self {
            SignError::Parameter(_)
            | SignError::ReadInput { .. }
            | SignError::Key { .. }
            | SignError::Token { .. }
            | SignError::SigningConfig { .. }
            | SignError::TrustedRoot { .. } => FailureKind::BadParameters,
            SignError::Keyless(e) => keyless_failure(e),
            SignError::Sign { source, .. } => cosign_failure(source),
            SignError::Results(_) => FailureKind::Results,
        }
    }
}

fn keyless_failure(e: &KeylessError) -> FailureKind {
    match e {
        KeylessError::Token(_)
        | KeylessError::Config(_)
        | KeylessError::NoRekorLog { .. }
        | KeylessError::NoTimestampAuthority => FailureKind::BadParameters,
        KeylessError::Unreachable { .. } | KeylessError::Response { .. } => FailureKind::Registry,
        KeylessError::Refused { status, .. } if retryable_status(*status) => FailureKind::Registry,
        _ => FailureKind::Refused,
    }
}

fn cosign_failure(e: &CosignError) -> FailureKind {
    match e {
        CosignError::Registry { source, .. } => match source {
            kibaship_oci::Error::NotFound { .. } => FailureKind::BadParameters,
            kibaship_oci::Error::Unauthorized { .. } => FailureKind::Refused,
            kibaship_oci::Error::Reference(_) => FailureKind::BadParameters,
            _ => FailureKind::Registry,
        },
        CosignError::Reference(_) | CosignError::Payload(_) => FailureKind::BadParameters,
        CosignError::Keyless(k) => keyless_failure(k),
        CosignError::Clock(_) => FailureKind::Registry,
        _ => FailureKind::Refused,
    }
}

fn retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// Who signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMode {
    /// A cosign key from a Secret (no transparency-log entry, as `cosign sign --tlog-upload=false`).
    Key,
    /// An ephemeral key certified by Fulcio for the pod's service-account token, logged in Rekor.
    Keyless,
}

/// Where the signatures go.
/// Which layouts the step writes (kibaship-cosign's: legacy tag, bundle referrer, or both).
pub use kibaship_cosign::Layouts as SignLayout;

/// The step's inputs as Tekton passes them: every string may be empty, meaning "not set".
#[derive(Debug, Clone, Default)]
pub struct SignInputs {
    /// The build's `image` result (`registry/repository:tag`).
    pub image: String,
    /// The build's `digest` result (`sha256:<hex>`).
    pub digest: String,
    /// `key` or `keyless`.
    pub mode: String,
    /// `legacy`, `bundle`, `both`, or empty for the mode's default.
    pub layout: String,
    /// Key mode: the cosign key file.
    pub key_file: String,
    /// Keyless: the OIDC identity token file.
    pub identity_token_file: String,
    /// Keyless: the Sigstore signing config (v0.2 JSON).
    pub signing_config: String,
    /// Keyless, optional: the trusted root each signature is verified against before upload.
    pub trusted_root: String,
    /// `key=value` annotations signed into the payload.
    pub annotations: Vec<String>,
    /// Where the signatures go instead of the image's repository (cosign's `COSIGN_REPOSITORY`).
    pub signature_repository: String,
}

/// The checked plan of a sign step.
#[derive(Debug, Clone)]
pub struct SignPlan {
    /// `registry/repository@digest`: what gets signed.
    pub target: Reference,
    /// The signature repository, if not the image's.
    pub signature_repository: Option<Reference>,
    /// Key or keyless.
    pub mode: SignMode,
    /// The layout(s) written.
    pub layout: SignLayout,
    /// Signed annotations.
    pub annotations: BTreeMap<String, String>,
    /// Key mode: the key file.
    pub key_file: Option<PathBuf>,
    /// Keyless: the token file.
    pub identity_token_file: Option<PathBuf>,
    /// Keyless: the signing config.
    pub signing_config: Option<PathBuf>,
    /// Keyless: the trusted root for the check before upload.
    pub trusted_root: Option<PathBuf>,
}

fn set(value: &str) -> Option<&str> {
    let v = value.trim();
    (!v.is_empty()).then_some(v)
}

fn bad(message: impl Into<String>) -> SignError {
    SignError::Parameter(message.into())
}

impl SignInputs {
    /// Checks every input and says which one is wrong. No I/O.
    pub fn plan(&self) -> Result<SignPlan, SignError> {
        let mode = match set(&self.mode) {
            Some("key") => SignMode::Key,
            Some("keyless") => SignMode::Keyless,
            Some(other) => {
                return Err(bad(format!(
                    "--mode {other:?} is not key or keyless (the pipeline's signingMode `none` skips this task)"
                )));
            }
            None => return Err(bad("--mode is empty: give key or keyless")),
        };
        let layout = match set(&self.layout) {
            Some("legacy") => SignLayout::Legacy,
            Some("bundle") => SignLayout::Bundle,
            Some("both") => SignLayout::Both,
            Some(other) => {
                return Err(bad(format!(
                    "--layout {other:?} is not legacy, bundle or both (or empty for the default)"
                )));
            }
            None => match mode {
                SignMode::Key => SignLayout::Legacy,
                SignMode::Keyless => SignLayout::Bundle,
            },
        };
        let target = target_reference(&self.image, &self.digest)?;
        let signature_repository = match set(&self.signature_repository) {
            None => None,
            Some(raw) => {
                let r = Reference::parse(raw).map_err(|e| {
                    bad(format!(
                        "--signature-repository {raw:?} is not a repository: {e}"
                    ))
                })?;
                if r.tag().is_some() || r.digest().is_some() {
                    return Err(bad(format!(
                        "--signature-repository {raw:?} must name a repository, without a tag or digest"
                    )));
                }
                Some(r)
            }
        };
        let annotations = parse_annotations(&self.annotations)?;
        let path = |v: &str| set(v).map(PathBuf::from);
        let plan = SignPlan {
            target,
            signature_repository,
            mode,
            layout,
            annotations,
            key_file: path(&self.key_file),
            identity_token_file: path(&self.identity_token_file),
            signing_config: path(&self.signing_config),
            trusted_root: path(&self.trusted_root),
        };
        // The Task passes the inputs of both modes (Tekton cannot leave an argument out): the other mode's are
        // ignored.
        match mode {
            SignMode::Key if plan.key_file.is_none() => {
                return Err(bad(
                    "--mode key needs --key-file (the cosign key mounted from the signing-key Secret)",
                ));
            }
            SignMode::Keyless if plan.identity_token_file.is_none() => {
                return Err(bad(
                    "--mode keyless needs --identity-token-file (a projected service-account token with audience sigstore)",
                ));
            }
            SignMode::Keyless if plan.signing_config.is_none() => {
                return Err(bad(
                    "--mode keyless needs --signing-config (a Sigstore signing config naming Fulcio, Rekor and the TSA)",
                ));
            }
            _ => {}
        }
        Ok(plan)
    }
}

/// `<repository of image>@<digest>`, refusing an image whose own digest differs.
pub fn target_reference(image: &str, digest: &str) -> Result<Reference, SignError> {
    let Some(raw_digest) = set(digest) else {
        return Err(bad(
            "--digest is empty: pass the build task's digest result (sha256:<64 hex>)",
        ));
    };
    let parsed_digest = Digest::parse(raw_digest)
        .map_err(|e| bad(format!("--digest {raw_digest:?} is not a digest: {e}")))?;
    let Some(raw_image) = set(image) else {
        return Err(bad(
            "--image is empty: pass the build task's image result (registry/repository:tag)",
        ));
    };
    let image_ref = Reference::parse(raw_image).map_err(|e| {
        bad(format!(
            "--image {raw_image:?} is not an image reference: {e}"
        ))
    })?;
    if let Some(own) = image_ref.digest() {
        if *own != parsed_digest {
            return Err(bad(format!(
                "--image {raw_image:?} names digest {own}, but --digest is {parsed_digest}"
            )));
        }
    }
    Ok(image_ref.with_digest(parsed_digest))
}

/// Parses repeated `key=value` annotations; empty entries (an empty array param item) are skipped.
pub fn parse_annotations(raw: &[String]) -> Result<BTreeMap<String, String>, SignError> {
    let mut out = BTreeMap::new();
    for a in raw.iter().filter(|a| !a.is_empty()) {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| bad(format!("--annotation {a:?} is not key=value")))?;
        if k.is_empty() {
            return Err(bad(format!("--annotation {a:?} has an empty key")));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(bad(format!("--annotation key {k:?} is given twice")));
        }
    }
    Ok(out)
}

/// The signer a plan needs, loaded.
pub use kibaship_cosign::LoadedSigner as Signer;

/// Reads `path` (a `what`) with the command lines' one bounded reader (`kibaship_cli::input`).
pub fn read_bounded(path: &Path, what: &'static str, max: u64) -> Result<Vec<u8>, SignError> {
    kibaship_cli::input::read_bounded(path, what, max).map_err(|e| SignError::ReadInput {
        what,
        path: path.to_path_buf(),
        reason: match e {
            InputError::Read { cause, .. }
                if cause.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                // The Tasks mount Secrets with mode 0440 and run as uid 1000: only fsGroup makes them readable.
                format!(
                    "{cause}; the Tasks run as uid 1000 and mount Secrets with mode 0440: give the TaskRun or \
                     PipelineRun a podTemplate with securityContext.fsGroup: 1000 (docs/tekton.md)"
                )
            }
            InputError::Read { cause, .. } => cause.to_string(),
            InputError::TooLarge { limit, .. } => format!("larger than the {limit} bytes accepted"),
            InputError::NotUtf8 { offset, .. } => format!("byte {offset}: not valid UTF-8"),
            InputError::Changed { change, .. } => format!("changed while it was read ({change})"),
        },
    })
}

/// Loads the key (with `password`, COSIGN_PASSWORD's value) or the keyless signer of `plan`. `ca_file` is an
/// extra CA bundle trusted for the Sigstore services too.
pub fn load_signer(
    plan: &SignPlan,
    password: Option<Zeroizing<String>>,
    ca_file: Option<&Path>,
) -> Result<Signer, SignError> {
    match plan.mode {
        SignMode::Key => {
            let path = plan
                .key_file
                .as_deref()
                .ok_or_else(|| bad("--mode key needs --key-file"))?;
            let pem =
                read_bounded(path, "key file", kibaship_sign::MAX_KEY_FILE_BYTES).map_err(|e| {
                    e.with_hint("the Task mounts cosign.key from the signingKeySecret Secret")
                })?;
            let key = SigningKey::from_key_file(&pem, password.as_ref().map(|p| p.as_bytes()))
                .map_err(|source| match source {
                    KeyError::PasswordRequired => bad(format!(
                        "key {} is encrypted: set COSIGN_PASSWORD (from the signing-key Secret's `password` key)",
                        path.display()
                    )),
                    source => SignError::Key {
                        path: path.to_path_buf(),
                        source,
                    },
                })?;
            Ok(Signer::Key(key))
        }
        SignMode::Keyless => {
            let token_path = plan
                .identity_token_file
                .as_deref()
                .ok_or_else(|| bad("--mode keyless needs --identity-token-file"))?;
            let raw = read_bounded(token_path, "identity token file", MAX_TOKEN_BYTES as u64)
                .map_err(|e| {
                    e.with_hint(
                        "the Task projects the service-account token with audience sigstore",
                    )
                })?;
            let raw = Zeroizing::new(String::from_utf8(raw).map_err(|_| SignError::ReadInput {
                what: "identity token file",
                path: token_path.to_path_buf(),
                reason: "not UTF-8".into(),
            })?);
            let token =
                IdentityToken::parse(&raw, now_unix()).map_err(|source| SignError::Token {
                    path: token_path.to_path_buf(),
                    source,
                })?;
            let config_path = plan
                .signing_config
                .as_deref()
                .ok_or_else(|| bad("--mode keyless needs --signing-config"))?;
            let json = read_bounded(config_path, "signing config", MAX_CONFIG_FILE_BYTES).map_err(
                |e| {
                    e.with_hint(
                        "the Task mounts signing_config.json from the sigstoreConfigMap ConfigMap",
                    )
                },
            )?;
            let needs = plan.layout.rekor_logs();
            let mut services = SigningServices::from_signing_config_for(&json, now_unix(), needs)
                .map_err(|source| SignError::SigningConfig {
                path: config_path.to_path_buf(),
                source,
            })?;
            if needs == RekorLogs::V1 {
                // The legacy layout is dated by Rekor v1's SET; a Rekor v2 log from the config is not used.
                services.rekor_url = None;
            }
            let check = match &plan.trusted_root {
                Some(p) => {
                    let json = read_bounded(p, "trusted root", MAX_CONFIG_FILE_BYTES)?;
                    let root =
                        TrustedRoot::from_json(&json).map_err(|e| SignError::TrustedRoot {
                            path: p.clone(),
                            reason: e.to_string(),
                        })?;
                    Some(Box::new(Verifier::new(root)))
                }
                None => None,
            };
            let mut http = reqwest::Client::builder().timeout(SERVICE_TIMEOUT);
            if let Some(path) = ca_file {
                let pem = read_bounded(path, "CA file", MAX_CONFIG_FILE_BYTES)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    SignError::ReadInput {
                        what: "CA file",
                        path: path.to_path_buf(),
                        reason: format!("not a PEM bundle: {e}"),
                    }
                })?;
                for cert in certs {
                    http = http.add_root_certificate(cert);
                }
            }
            let http = http.build().map_err(|e| {
                bad(format!(
                    "cannot set up the HTTP client for Fulcio, Rekor and the TSA: {e}"
                ))
            })?;
            let signer = KeylessSigner::new(http, services, token).map_err(SignError::Keyless)?;
            Ok(Signer::Keyless {
                signer: Box::new(signer),
                check,
            })
        }
    }
}

/// One signature written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSignature {
    /// `legacy` or `bundle`.
    pub layout: &'static str,
    /// The `.sig` tag (legacy) or the referrer manifest `registry/repo@sha256:...` (bundle).
    pub location: String,
    /// Keyless: the certificate identity and issuer.
    pub identity: Option<(String, String)>,
}

/// What the step signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignReport {
    /// `registry/repository@digest`.
    pub image: String,
    /// The digest signed.
    pub digest: String,
    /// Every signature written, legacy first.
    pub signatures: Vec<WrittenSignature>,
}

/// Signs `plan.target` in `plan.layout` with `signer` and reports every signature written.
pub async fn sign_image(
    client: &RegistryClient,
    plan: &SignPlan,
    signer: &Signer,
) -> Result<SignReport, SignError> {
    let target = &plan.target;
    let signatures = kibaship_cosign::sign_image(
        client,
        target,
        plan.signature_repository.as_ref(),
        signer.as_image_signer(),
        plan.layout,
        &plan.annotations,
    )
    .await
    .map_err(|e| SignError::Sign {
        image: target.to_string(),
        layout: e.layout,
        source: Box::new(e.source),
    })?
    .iter()
    .map(|signed| WrittenSignature {
        layout: signed.layout(),
        location: signed.location().to_string(),
        identity: signed
            .certificate_identity()
            .map(|(identity, issuer)| (identity.to_string(), issuer.to_string())),
    })
    .collect();
    let digest = target
        .digest()
        .map(ToString::to_string)
        .ok_or_else(|| bad("the target has no digest"))?;
    Ok(SignReport {
        image: target.to_string(),
        digest,
        signatures,
    })
}

/// Writes the `signatures` result (one line per signature) and the `signedDigest` result, after checking both
/// against Tekton's results budget; nothing is written when they do not fit.
pub fn write_results(
    report: &SignReport,
    signatures_path: Option<&Path>,
    signed_digest_path: Option<&Path>,
) -> Result<(), SignError> {
    let lines: Vec<&str> = report
        .signatures
        .iter()
        .map(|s| s.location.as_str())
        .collect();
    // The budget is counted on the JSON the entrypoint writes, where "\n" takes two bytes: two spaces stand in.
    let mut budget = ResultSet::new();
    budget
        .add("signatures", signatures_path, lines.join("  "))
        .add("signedDigest", signed_digest_path, report.digest.clone());
    let needed = budget.encoded_len();
    if needed > TEKTON_RESULTS_BUDGET {
        return Err(ResultsError::TooLarge {
            needed,
            largest: format!("signatures ({} lines)", lines.len()),
        }
        .into());
    }
    let mut single_line = ResultSet::new();
    single_line.add("signedDigest", signed_digest_path, report.digest.clone());
    single_line.write()?;
    if let Some(path) = signatures_path {
        std::fs::write(path, lines.join("\n")).map_err(|source| ResultsError::Write {
            name: "signatures".into(),
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn inputs() -> SignInputs {
        SignInputs {
            image: "registry.example/kibaship/acme/web:abc".into(),
            digest: DIGEST.into(),
            mode: "key".into(),
            key_file: "/kibaship/signing-key/cosign.key".into(),
            ..SignInputs::default()
        }
    }

    #[test]
    fn plans_repository_at_digest_with_the_mode_default_layout() {
        let plan = inputs().plan().expect("plan");
        assert_eq!(
            plan.target.to_string(),
            format!("registry.example/kibaship/acme/web@{DIGEST}")
        );
        assert_eq!(plan.layout, SignLayout::Legacy);
        let keyless = SignInputs {
            mode: "keyless".into(),
            key_file: String::new(),
            identity_token_file: "/var/run/sigstore/token".into(),
            signing_config: "/kibaship/signing-config/signing_config.json".into(),
            ..inputs()
        }
        .plan()
        .expect("keyless plan");
        assert_eq!(keyless.layout, SignLayout::Bundle);
        assert!(keyless.trusted_root.is_none());
    }

    #[test]
    fn names_the_bad_input() {
        let cases: [(SignInputs, &str); 8] = [
            (
                SignInputs {
                    digest: String::new(),
                    ..inputs()
                },
                "--digest is empty",
            ),
            (
                SignInputs {
                    digest: "sha256:abc".into(),
                    ..inputs()
                },
                "--digest \"sha256:abc\" is not a digest",
            ),
            (
                SignInputs {
                    image: " ".into(),
                    ..inputs()
                },
                "--image is empty",
            ),
            (
                SignInputs {
                    mode: "none".into(),
                    ..inputs()
                },
                "--mode \"none\" is not key or keyless",
            ),
            (
                SignInputs {
                    key_file: String::new(),
                    ..inputs()
                },
                "--mode key needs --key-file",
            ),
            (
                SignInputs {
                    layout: "sideways".into(),
                    ..inputs()
                },
                "--layout \"sideways\"",
            ),
            (
                SignInputs {
                    annotations: vec!["novalue".into()],
                    ..inputs()
                },
                "--annotation \"novalue\" is not key=value",
            ),
            (
                SignInputs {
                    image: format!("registry.example/a@sha256:{}", "f".repeat(64)),
                    ..inputs()
                },
                "but --digest is",
            ),
        ];
        for (input, want) in cases {
            let err = input.plan().expect_err(want);
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
            assert_eq!(err.kind(), FailureKind::BadParameters);
            assert_eq!(err.exit_code(), 64);
        }
    }

    #[test]
    fn results_are_lines_and_over_budget_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sigs = dir.path().join("signatures");
        let digest = dir.path().join("signedDigest");
        let sig = |location: String| WrittenSignature {
            layout: "legacy",
            location,
            identity: None,
        };
        let report = SignReport {
            image: "r/a@x".into(),
            digest: DIGEST.into(),
            signatures: vec![sig("r/a:sha256-x.sig".into()), sig("r/a@sha256:y".into())],
        };
        write_results(&report, Some(&sigs), Some(&digest)).expect("fits");
        assert_eq!(
            std::fs::read_to_string(&sigs).expect("read"),
            "r/a:sha256-x.sig\nr/a@sha256:y"
        );
        assert_eq!(std::fs::read_to_string(&digest).expect("read"), DIGEST);
        let dir2 = tempfile::tempdir().expect("tempdir");
        let sigs2 = dir2.path().join("signatures");
        let big = SignReport {
            signatures: (0..40)
                .map(|i| sig(format!("{i}{}", "x".repeat(100))))
                .collect(),
            ..report
        };
        let err = write_results(&big, Some(&sigs2), None).expect_err("over budget");
        assert_eq!(err.kind(), FailureKind::Results);
        assert!(!sigs2.exists());
    }
}
