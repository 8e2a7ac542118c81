//! `trusted_root.json`: Fulcio CAs, Rekor logs, CT logs and TSAs, each with a validity window
//! (both ends inclusive). Parsed once into keys and certificates ready for verification.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

use crate::keys::{KeyKind, PublicKey};
use crate::protojson::{HASH_ALGORITHMS, PUBLIC_KEY_DETAILS, enum_name};
use crate::x509::Certificate;

const MEDIA_TYPES: [&str; 3] = [
    "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "application/vnd.dev.sigstore.trustedroot.v0.1+json",
    "application/vnd.dev.sigstore.trustedroot.v0.2+json",
];

/// Why a trusted root was rejected.
#[derive(Debug, thiserror::Error)]
pub enum TrustedRootError {
    /// Not JSON, or not the expected shape.
    #[error("trusted root is not valid JSON of the expected shape: {0}")]
    Json(#[from] serde_json::Error),
    /// A field has a bad value.
    #[error("trusted root field `{field}`: {reason}")]
    Field {
        /// JSON path of the field.
        field: String,
        /// What was wrong.
        reason: String,
    },
}

fn field_err(field: impl Into<String>, reason: impl Into<String>) -> TrustedRootError {
    TrustedRootError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// A closed time interval in unix seconds; `None` ends are open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Validity {
    /// Inclusive start.
    pub start: Option<i64>,
    /// Inclusive end.
    pub end: Option<i64>,
}

impl Validity {
    /// Whether `t` lies within the window (ends inclusive).
    pub fn contains(&self, t: i64) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| t <= e)
    }
}

/// A transparency log (Rekor or CT) the root trusts.
#[derive(Debug)]
pub struct TrustedLog {
    /// Base URL, e.g. `https://rekor.sigstore.dev`.
    pub base_url: String,
    /// The host of `base_url`: the checkpoint signer name.
    pub name: String,
    /// The log ID (key ID) bytes.
    pub log_id: Vec<u8>,
    /// The log's key.
    pub key: PublicKey,
    /// When the key may be used.
    pub validity: Validity,
}

/// A certificate authority (Fulcio) or timestamp authority.
#[derive(Debug)]
pub struct TrustedAuthority {
    /// Service URI.
    pub uri: String,
    /// Chain from the issuing certificate up to the root (as listed in the root).
    pub chain: Vec<Certificate>,
    /// When the authority may be used.
    pub validity: Validity,
}

/// The parsed trusted root.
#[derive(Debug, Default)]
pub struct TrustedRoot {
    /// Rekor logs.
    pub tlogs: Vec<TrustedLog>,
    /// CT logs.
    pub ctlogs: Vec<TrustedLog>,
    /// Fulcio CAs.
    pub certificate_authorities: Vec<TrustedAuthority>,
    /// Timestamp authorities.
    pub timestamp_authorities: Vec<TrustedAuthority>,
    /// Entries skipped because we cannot use them (they can then verify nothing).
    pub skipped: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRoot {
    media_type: Option<String>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    tlogs: Vec<RawLog>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    ctlogs: Vec<RawLog>,
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    timestamp_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    base_url: Option<String>,
    hash_algorithm: Option<Value>,
    public_key: Option<RawKey>,
    log_id: Option<RawLogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    key_details: Option<Value>,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: Option<String>,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    uri: Option<String>,
    cert_chain: Option<RawChain>,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default, deserialize_with = "crate::protojson::null_as_empty")]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: Option<String>,
}

/// The reason for a required field that is absent or holds its protobuf default (empty, `*_UNSPECIFIED`).
const MISSING: &str = "missing or empty";

/// Parses an RFC 3339 time to unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// A required `TimeRange`: the message and its `start` must be present (a window without a start is not "valid
/// since forever": the trusted root is malformed); `end` is optional (open-ended).
fn validity(v: Option<&RawValidity>, field: &str) -> Result<Validity, TrustedRootError> {
    let v = v.ok_or_else(|| field_err(field, "missing"))?;
    let conv = |s: &str, which: &str| -> Result<i64, TrustedRootError> {
        parse_rfc3339(s).ok_or_else(|| {
            field_err(
                format!("{field}.{which}"),
                format!("not an RFC 3339 time: {s:?}"),
            )
        })
    };
    let start = match v.start.as_deref() {
        Some(s) => conv(s, "start")?,
        None => return Err(field_err(format!("{field}.start"), "missing")),
    };
    let end = v.end.as_deref().map(|s| conv(s, "end")).transpose()?;
    if end.is_some_and(|e| e < start) {
        return Err(field_err(format!("{field}.end"), "before `start`"));
    }
    Ok(Validity {
        start: Some(start),
        end,
    })
}

/// A required protobuf `bytes` field (absent and `""` are both empty).
fn required_b64(value: Option<&String>, field: &str) -> Result<Vec<u8>, TrustedRootError> {
    let bytes = STANDARD
        .decode(value.map_or("", String::as_str))
        .map_err(|e| field_err(field, format!("bad base64: {e}")))?;
    if bytes.is_empty() {
        return Err(field_err(field, MISSING));
    }
    Ok(bytes)
}

/// How a log key is encoded, the kind it must be, and whether RSA signs with PSS; `Err` names why the key
/// details are not usable here (the log is then skipped: it can verify nothing).
fn key_details(details: &str) -> Result<(bool, KeyKind), &'static str> {
    // (PKCS#1 RSAPublicKey instead of SubjectPublicKeyInfo, kind)
    Ok(match details {
        "PKCS1_RSA_PKCS1V5" => (true, KeyKind::RsaPkcs1),
        "PKCS1_RSA_PSS" => (true, KeyKind::RsaPss),
        "PKIX_RSA_PKCS1V5"
        | "PKIX_RSA_PKCS1V15_2048_SHA256"
        | "PKIX_RSA_PKCS1V15_3072_SHA256"
        | "PKIX_RSA_PKCS1V15_4096_SHA256" => (false, KeyKind::RsaPkcs1),
        "PKIX_RSA_PSS"
        | "PKIX_RSA_PSS_2048_SHA256"
        | "PKIX_RSA_PSS_3072_SHA256"
        | "PKIX_RSA_PSS_4096_SHA256" => (false, KeyKind::RsaPss),
        "PKIX_ECDSA_P256_SHA_256" | "PKIX_ECDSA_P256_HMAC_SHA_256" => (false, KeyKind::EcdsaP256),
        "PKIX_ECDSA_P384_SHA_384" => (false, KeyKind::EcdsaP384),
        "PKIX_ED25519" => (false, KeyKind::Ed25519),
        "PKIX_ECDSA_P384_SHA_256"
        | "PKIX_ECDSA_P521_SHA_256"
        | "PKIX_ECDSA_P521_SHA_512"
        | "PKIX_ED25519_PH"
        | "LMS_SHA256"
        | "LMOTS_SHA256"
        | "ML_DSA_44"
        | "ML_DSA_65"
        | "ML_DSA_87" => return Err("key type not supported"),
        _ => return Err("unknown key details"),
    })
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

impl TrustedRoot {
    /// Parses `trusted_root.json`. Every field the Sigstore protobuf-specs require for verification must be there
    /// (the error names its path, e.g. `tlogs[0].publicKey.validFor.start: missing`): a log's `hashAlgorithm`,
    /// `logId.keyId`, `publicKey` with `rawBytes`, `keyDetails` and `validFor.start`; an authority's `certChain`
    /// (at least one certificate, each with `rawBytes`) and `validFor.start`. A well-formed entry we cannot use
    /// (another hash or key algorithm, a certificate we do not parse) is skipped and listed in `skipped`.
    pub fn from_json(json: &[u8]) -> Result<Self, TrustedRootError> {
        let raw: RawRoot = serde_json::from_slice(json)?;
        match raw.media_type.as_deref() {
            Some(m) if MEDIA_TYPES.contains(&m) => {}
            Some("") | None => return Err(field_err("mediaType", MISSING)),
            Some(m) => {
                return Err(field_err(
                    "mediaType",
                    format!("unsupported trusted root media type {m:?}"),
                ));
            }
        }
        let mut root = TrustedRoot::default();
        for (kind, list, out) in [
            ("tlogs", &raw.tlogs, &mut root.tlogs),
            ("ctlogs", &raw.ctlogs, &mut root.ctlogs),
        ] {
            for (i, log) in list.iter().enumerate() {
                let path = format!("{kind}[{i}]");
                if let Some(log) = parse_log(log, &path, &mut root.skipped)? {
                    out.push(log);
                }
            }
        }
        for (kind, list, out) in [
            (
                "certificateAuthorities",
                &raw.certificate_authorities,
                &mut root.certificate_authorities,
            ),
            (
                "timestampAuthorities",
                &raw.timestamp_authorities,
                &mut root.timestamp_authorities,
            ),
        ] {
            for (i, ca) in list.iter().enumerate() {
                let path = format!("{kind}[{i}]");
                if let Some(ca) = parse_authority(ca, &path, &mut root.skipped)? {
                    out.push(ca);
                }
            }
        }
        Ok(root)
    }

    pub(crate) fn tlog_by_id(&self, id: &[u8]) -> Option<&TrustedLog> {
        self.tlogs.iter().find(|l| l.log_id == id)
    }

    pub(crate) fn ctlog_by_id(&self, id: &[u8]) -> Option<&TrustedLog> {
        self.ctlogs.iter().find(|l| l.log_id == id)
    }
}

/// One `TransparencyLogInstance`; `None` when well-formed but unusable here (the reason is pushed to `skipped`).
fn parse_log(
    log: &RawLog,
    path: &str,
    skipped: &mut Vec<String>,
) -> Result<Option<TrustedLog>, TrustedRootError> {
    let hash = enum_name(log.hash_algorithm.as_ref(), HASH_ALGORITHMS)
        .map_err(|e| field_err(format!("{path}.hashAlgorithm"), e))?;
    let log_id = log
        .log_id
        .as_ref()
        .ok_or_else(|| field_err(format!("{path}.logId"), "missing"))?;
    let log_id = required_b64(log_id.key_id.as_ref(), &format!("{path}.logId.keyId"))?;
    let key = log
        .public_key
        .as_ref()
        .ok_or_else(|| field_err(format!("{path}.publicKey"), "missing"))?;
    let key_der = required_b64(
        key.raw_bytes.as_ref(),
        &format!("{path}.publicKey.rawBytes"),
    )?;
    let details = enum_name(key.key_details.as_ref(), PUBLIC_KEY_DETAILS)
        .map_err(|e| field_err(format!("{path}.publicKey.keyDetails"), e))?;
    if details.is_empty() {
        return Err(field_err(format!("{path}.publicKey.keyDetails"), MISSING));
    }
    let details = details.as_str();
    let validity = validity(
        key.valid_for.as_ref(),
        &format!("{path}.publicKey.validFor"),
    )?;
    match hash.as_str() {
        "SHA2_256" => {}
        "" => {
            return Err(field_err(format!("{path}.hashAlgorithm"), MISSING));
        }
        other => {
            skipped.push(format!(
                "{path}: Merkle tree hash {other:?} is not supported (SHA2_256 only)"
            ));
            return Ok(None);
        }
    }
    let (pkcs1, kind) = match key_details(details) {
        Ok(k) => k,
        Err(why) => {
            skipped.push(format!("{path}: publicKey.keyDetails {details:?}: {why}"));
            return Ok(None);
        }
    };
    let pss = kind == KeyKind::RsaPss;
    let key = if pkcs1 {
        PublicKey::from_pkcs1_rsa(&key_der, pss)
    } else {
        PublicKey::from_spki(&key_der, pss)
    };
    let key = match key {
        Ok(key) => key,
        Err(e) => {
            skipped.push(format!("{path}: {e}"));
            return Ok(None);
        }
    };
    if key.kind() != kind {
        return Err(field_err(
            format!("{path}.publicKey.keyDetails"),
            format!(
                "{details} does not describe the key in `rawBytes` ({:?})",
                key.kind()
            ),
        ));
    }
    let base_url = log.base_url.clone().unwrap_or_default();
    Ok(Some(TrustedLog {
        name: host_of(&base_url),
        base_url,
        log_id,
        key,
        validity,
    }))
}

/// One `CertificateAuthority` (Fulcio or TSA); `None` when its chain is unusable here (pushed to `skipped`).
fn parse_authority(
    ca: &RawAuthority,
    path: &str,
    skipped: &mut Vec<String>,
) -> Result<Option<TrustedAuthority>, TrustedRootError> {
    let chain_raw = ca
        .cert_chain
        .as_ref()
        .ok_or_else(|| field_err(format!("{path}.certChain"), "missing"))?;
    if chain_raw.certificates.is_empty() {
        return Err(field_err(
            format!("{path}.certChain.certificates"),
            "empty certificate chain",
        ));
    }
    let validity = validity(ca.valid_for.as_ref(), &format!("{path}.validFor"))?;
    let mut ders = Vec::with_capacity(chain_raw.certificates.len());
    for (j, c) in chain_raw.certificates.iter().enumerate() {
        ders.push(required_b64(
            c.raw_bytes.as_ref(),
            &format!("{path}.certChain.certificates[{j}].rawBytes"),
        )?);
    }
    let mut chain = Vec::with_capacity(ders.len());
    for (j, der_bytes) in ders.iter().enumerate() {
        match Certificate::from_der(der_bytes) {
            Ok(cert) => chain.push(cert),
            Err(e) => {
                skipped.push(format!("{path}.certChain.certificates[{j}]: {e}"));
                return Ok(None);
            }
        }
    }
    // The listed chain must hold together: each certificate issued by the next.
    if !chain.windows(2).all(|w| w[0].is_signed_by(&w[1])) {
        skipped.push(format!(
            "{path}: certificate chain signatures do not verify"
        ));
        return Ok(None);
    }
    Ok(Some(TrustedAuthority {
        uri: ca.uri.clone().unwrap_or_default(),
        chain,
        validity,
    }))
}

/// The Sigstore public-good `trusted_root.json` as shipped in the sigstore 4.5.1 wheel: the
/// default when no trusted root is given. A snapshot: refresh it (or pass your own) when the
/// public-good instance rotates keys.
pub const PUBLIC_GOOD_TRUSTED_ROOT: &[u8] = include_bytes!("../trusted_root/public-good.json");

impl TrustedRoot {
    /// The embedded public-good trusted root ([`PUBLIC_GOOD_TRUSTED_ROOT`]).
    pub fn public_good() -> Result<Self, TrustedRootError> {
        Self::from_json(PUBLIC_GOOD_TRUSTED_ROOT)
    }
}
