//! `trusted_root.json`: Fulcio CAs, Rekor logs, CT logs and TSAs, each with a validity window
//! (both ends inclusive). Parsed once into keys and certificates ready for verification.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::keys::PublicKey;
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
    #[serde(default)]
    tlogs: Vec<RawLog>,
    #[serde(default)]
    certificate_authorities: Vec<RawAuthority>,
    #[serde(default)]
    ctlogs: Vec<RawLog>,
    #[serde(default)]
    timestamp_authorities: Vec<RawAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLog {
    #[serde(default)]
    base_url: String,
    public_key: RawKey,
    log_id: RawLogId,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawKey {
    raw_bytes: Option<String>,
    key_details: Option<String>,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogId {
    key_id: String,
}

#[derive(Deserialize)]
struct RawValidity {
    start: Option<String>,
    end: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuthority {
    #[serde(default)]
    uri: String,
    cert_chain: RawChain,
    valid_for: Option<RawValidity>,
}

#[derive(Deserialize)]
struct RawChain {
    #[serde(default)]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

/// Parses an RFC 3339 time to unix seconds.
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn validity(v: Option<&RawValidity>, field: &str) -> Result<Validity, TrustedRootError> {
    let Some(v) = v else {
        return Ok(Validity::default());
    };
    let conv = |s: &Option<String>, which: &str| -> Result<Option<i64>, TrustedRootError> {
        s.as_deref()
            .map(|s| {
                parse_rfc3339(s).ok_or_else(|| {
                    field_err(
                        format!("{field}.{which}"),
                        format!("not an RFC 3339 time: {s:?}"),
                    )
                })
            })
            .transpose()
    };
    Ok(Validity {
        start: conv(&v.start, "start")?,
        end: conv(&v.end, "end")?,
    })
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

impl TrustedRoot {
    /// Parses `trusted_root.json`.
    pub fn from_json(json: &[u8]) -> Result<Self, TrustedRootError> {
        let raw: RawRoot = serde_json::from_slice(json)?;
        match raw.media_type.as_deref() {
            Some(m) if MEDIA_TYPES.contains(&m) => {}
            Some(m) => {
                return Err(field_err(
                    "mediaType",
                    format!("unsupported trusted root media type {m:?}"),
                ));
            }
            None => return Err(field_err("mediaType", "missing")),
        }
        let mut root = TrustedRoot::default();
        for (kind, list, out) in [
            ("tlogs", &raw.tlogs, &mut root.tlogs),
            ("ctlogs", &raw.ctlogs, &mut root.ctlogs),
        ] {
            for (i, log) in list.iter().enumerate() {
                let path = format!("{kind}[{i}]");
                let log_id = STANDARD.decode(&log.log_id.key_id).map_err(|e| {
                    field_err(format!("{path}.logId.keyId"), format!("bad base64: {e}"))
                })?;
                let validity = validity(
                    log.public_key.valid_for.as_ref(),
                    &format!("{path}.publicKey.validFor"),
                )?;
                let Some(raw_bytes) = &log.public_key.raw_bytes else {
                    root.skipped.push(format!("{path}: no public key"));
                    continue;
                };
                let key_der = STANDARD.decode(raw_bytes).map_err(|e| {
                    field_err(
                        format!("{path}.publicKey.rawBytes"),
                        format!("bad base64: {e}"),
                    )
                })?;
                let details = log.public_key.key_details.as_deref().unwrap_or("");
                let pss = details.contains("PSS");
                let key = if details.starts_with("PKCS1_") {
                    PublicKey::from_pkcs1_rsa(&key_der, pss)
                } else {
                    PublicKey::from_spki(&key_der, pss)
                };
                match key {
                    Ok(key) => out.push(TrustedLog {
                        base_url: log.base_url.clone(),
                        name: host_of(&log.base_url),
                        log_id,
                        key,
                        validity,
                    }),
                    Err(e) => root.skipped.push(format!("{path}: {e}")),
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
                let validity = validity(ca.valid_for.as_ref(), &format!("{path}.validFor"))?;
                let mut chain = Vec::new();
                let mut usable = true;
                for (j, c) in ca.cert_chain.certificates.iter().enumerate() {
                    let der_bytes = STANDARD.decode(&c.raw_bytes).map_err(|e| {
                        field_err(
                            format!("{path}.certChain.certificates[{j}].rawBytes"),
                            format!("bad base64: {e}"),
                        )
                    })?;
                    match Certificate::from_der(&der_bytes) {
                        Ok(cert) => chain.push(cert),
                        Err(e) => {
                            root.skipped
                                .push(format!("{path}.certChain.certificates[{j}]: {e}"));
                            usable = false;
                        }
                    }
                }
                // The listed chain must hold together: each certificate issued by the next.
                if usable && !chain.windows(2).all(|w| w[0].is_signed_by(&w[1])) {
                    root.skipped.push(format!(
                        "{path}: certificate chain signatures do not verify"
                    ));
                    usable = false;
                }
                if usable && !chain.is_empty() {
                    out.push(TrustedAuthority {
                        uri: ca.uri.clone(),
                        chain,
                        validity,
                    });
                } else if chain.is_empty() && usable {
                    root.skipped
                        .push(format!("{path}: empty certificate chain"));
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
