//! Rekor v1 (`github.com/sigstore/rekor`, backed by Trillian): `POST /api/v1/log/entries` with a proposed entry,
//! `hashedrekord` v0.0.1 for signatures over a digest (cosign's legacy `.sig` layers) or `dsse` v0.0.1 for DSSE
//! envelopes (attestations). Unlike Rekor v2, the answer carries a **signed entry timestamp** (SET): the log's
//! signature over the entry body, its integrated time, log index and log ID. That SET is what cosign stores in
//! the `dev.sigstore.cosign/bundle` annotation of a legacy layer, and what cluster verifiers (policy-controller,
//! Kyverno) date a short-lived Fulcio certificate with.
//!
//! Building requests and reading answers is pure ([`hashed_rekord_request`], [`dsse_request`],
//! [`parse_log_entry`]); [`create_entry`] does the HTTP request.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::keyless::KeylessError;
use crate::legacy::{RekorBundle, RekorPayload};
use crate::service_http;

/// A `hashedrekord` v0.0.1 proposed entry: SHA-256 `digest` of the signed bytes, the signature, and the signer
/// (a PEM certificate or public key), as cosign sends it.
pub fn hashed_rekord_request(
    sha256_digest: &[u8],
    signature: &[u8],
    signer_pem: &str,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hex::encode(sha256_digest)}},
            "signature": {
                "content": STANDARD.encode(signature),
                "publicKey": {"content": STANDARD.encode(signer_pem)},
            },
        },
    })
}

/// A `dsse` v0.0.1 proposed entry: the whole DSSE envelope (JSON text) and the signer that verifies it (a PEM
/// certificate or public key).
pub fn dsse_request(envelope_json: &str, signer_pem: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "proposedContent": {
                "envelope": envelope_json,
                "verifiers": [STANDARD.encode(signer_pem)],
            },
        },
    })
}

/// One Rekor v1 log entry, as `POST /api/v1/log/entries` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The entry's UUID (the key of the answer object).
    pub uuid: String,
    /// Base64 canonicalized body.
    pub body: String,
    /// Unix seconds when the log integrated the entry.
    pub integrated_time: i64,
    /// Index in the log.
    pub log_index: i64,
    /// Hex SHA-256 of the log's DER public key.
    pub log_id: String,
    /// Base64 signed entry timestamp.
    pub signed_entry_timestamp: String,
    /// The inclusion proof, as Rekor wrote it (absent from some older logs).
    pub inclusion_proof: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    body: String,
    integrated_time: i64,
    #[serde(rename = "logID")]
    log_id: String,
    log_index: i64,
    verification: Option<RawVerification>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVerification {
    signed_entry_timestamp: Option<String>,
    inclusion_proof: Option<serde_json::Value>,
}

fn bad(reason: impl Into<String>) -> KeylessError {
    KeylessError::Response {
        service: "Rekor",
        reason: reason.into(),
    }
}

/// Reads the answer to an entry creation: an object with exactly one entry, keyed by its UUID, holding a body,
/// integrated time, log index, hex log ID and a SET.
pub fn parse_log_entry(answer: &[u8]) -> Result<LogEntry, KeylessError> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(answer)
        .map_err(|e| bad(format!("the log entry answer is not a JSON object: {e}")))?;
    if map.len() != 1 {
        return Err(bad(format!(
            "the log entry answer holds {} entries, expected exactly one",
            map.len()
        )));
    }
    let Some((uuid, value)) = map.into_iter().next() else {
        return Err(bad("the log entry answer is empty"));
    };
    let raw: RawEntry = serde_json::from_value(value)
        .map_err(|e| bad(format!("log entry {uuid} is malformed: {e}")))?;
    if STANDARD.decode(raw.body.as_bytes()).is_err() {
        return Err(bad(format!("log entry {uuid}: body is not base64")));
    }
    if hex::decode(&raw.log_id).map(|id| id.len()) != Ok(32) {
        return Err(bad(format!(
            "log entry {uuid}: logID {:?} is not a hex SHA-256",
            raw.log_id
        )));
    }
    let verification = raw.verification.ok_or_else(|| {
        bad(format!(
            "log entry {uuid} has no verification (no signed entry timestamp)"
        ))
    })?;
    let set = verification
        .signed_entry_timestamp
        .filter(|s| STANDARD.decode(s.as_bytes()).is_ok_and(|b| !b.is_empty()))
        .ok_or_else(|| {
            bad(format!(
                "log entry {uuid} has no base64 signedEntryTimestamp: is this a Rekor v1 log?"
            ))
        })?;
    Ok(LogEntry {
        uuid,
        body: raw.body,
        integrated_time: raw.integrated_time,
        log_index: raw.log_index,
        log_id: raw.log_id,
        signed_entry_timestamp: set,
        inclusion_proof: verification.inclusion_proof,
    })
}

impl LogEntry {
    /// The Rekor bundle cosign writes in a legacy layer's `dev.sigstore.cosign/bundle` annotation.
    pub fn rekor_bundle(&self) -> RekorBundle {
        RekorBundle {
            signed_entry_timestamp: self.signed_entry_timestamp.clone(),
            payload: RekorPayload {
                body: self.body.clone(),
                integrated_time: self.integrated_time,
                log_index: self.log_index,
                log_id: self.log_id.clone(),
            },
        }
    }

    /// The entry as a Sigstore bundle `TransparencyLogEntry`: log index, key ID, kind/version from the body,
    /// integrated time, the SET as inclusion promise, and the inclusion proof when Rekor gave one with its
    /// checkpoint.
    pub fn transparency_log_entry(&self) -> Result<serde_json::Value, KeylessError> {
        let body = STANDARD
            .decode(self.body.as_bytes())
            .map_err(|_| bad("the entry body is not base64"))?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| bad(format!("the entry body is not JSON: {e}")))?;
        let field = |k: &str| body.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let log_id = hex::decode(&self.log_id).map_err(|_| bad("the logID is not hex"))?;
        let mut entry = serde_json::json!({
            "logIndex": self.log_index.to_string(),
            "logId": {"keyId": STANDARD.encode(log_id)},
            "kindVersion": {"kind": field("kind"), "version": field("apiVersion")},
            "integratedTime": self.integrated_time.to_string(),
            "inclusionPromise": {"signedEntryTimestamp": self.signed_entry_timestamp},
            "canonicalizedBody": self.body,
        });
        if let Some(proof) = self.inclusion_proof.as_ref().and_then(inclusion_proof) {
            entry["inclusionProof"] = proof;
        }
        Ok(entry)
    }
}

/// Rekor v1's inclusion proof (hex hashes, checkpoint text) in the bundle's form (base64 hashes, checkpoint
/// envelope); `None` when any part is missing.
fn inclusion_proof(proof: &serde_json::Value) -> Option<serde_json::Value> {
    let hashes = proof
        .get("hashes")?
        .as_array()?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|h| hex::decode(h).ok())
                .map(|b| STANDARD.encode(b))
        })
        .collect::<Option<Vec<_>>>()?;
    let root = hex::decode(proof.get("rootHash")?.as_str()?).ok()?;
    Some(serde_json::json!({
        "logIndex": proof.get("logIndex")?.as_i64()?.to_string(),
        "rootHash": STANDARD.encode(root),
        "treeSize": proof.get("treeSize")?.as_i64()?.to_string(),
        "hashes": hashes,
        "checkpoint": {"envelope": proof.get("checkpoint")?.as_str()?},
    }))
}

/// Adds `proposed` to the Rekor v1 log at `base_url` and returns the entry with its SET.
pub async fn create_entry(
    http: &reqwest::Client,
    base_url: &str,
    proposed: &serde_json::Value,
) -> Result<LogEntry, KeylessError> {
    let url = format!("{}/api/v1/log/entries", base_url.trim_end_matches('/'));
    let builder = http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json")
        .body(proposed.to_string());
    let body = service_http::send("Rekor", &url, builder, None).await?;
    parse_log_entry(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(set: &str) -> Vec<u8> {
        serde_json::json!({
            "24296fb24b8ad77a": {
                "body": STANDARD.encode(br#"{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}"#),
                "integratedTime": 1_700_000_000,
                "logID": "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
                "logIndex": 7,
                "verification": {
                    "signedEntryTimestamp": set,
                    "inclusionProof": {
                        "checkpoint": "rekor.sigstore.dev - 1\n8\nAAAA\n\n— rekor x\n",
                        "hashes": ["00ff"],
                        "logIndex": 7,
                        "rootHash": "ab",
                        "treeSize": 8
                    }
                }
            }
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn reads_an_entry_into_cosigns_bundle_annotation() {
        let entry = parse_log_entry(&answer("TUVVQ0lR")).unwrap();
        assert_eq!(entry.uuid, "24296fb24b8ad77a");
        let bundle = serde_json::to_string(&entry.rekor_bundle()).unwrap();
        assert!(
            bundle.starts_with(r#"{"SignedEntryTimestamp":"TUVVQ0lR","Payload":{"body":""#),
            "{bundle}"
        );
        assert!(bundle.ends_with(r#""integratedTime":1700000000,"logIndex":7,"logID":"c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"}}"#), "{bundle}");
        let tle = entry.transparency_log_entry().unwrap();
        assert_eq!(tle["kindVersion"]["kind"], "hashedrekord");
        assert_eq!(
            tle["inclusionProof"]["hashes"][0],
            STANDARD.encode([0, 255])
        );
        assert_eq!(tle["inclusionProof"]["treeSize"], "8");
    }

    #[test]
    fn answers_without_a_set_or_with_several_entries_are_refused() {
        let e = parse_log_entry(&answer("")).unwrap_err();
        assert!(e.to_string().contains("signedEntryTimestamp"), "{e}");
        let e = parse_log_entry(br#"{"a":{},"b":{}}"#).unwrap_err();
        assert!(e.to_string().contains("2 entries"), "{e}");
        let e = parse_log_entry(b"[]").unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }

    #[test]
    fn requests_have_rekors_shape() {
        let r = hashed_rekord_request(&[1; 32], b"sig", "PEM");
        assert_eq!(r["spec"]["data"]["hash"]["value"], hex::encode([1; 32]));
        assert_eq!(
            r["spec"]["signature"]["publicKey"]["content"],
            STANDARD.encode("PEM")
        );
        let d = dsse_request("{}", "PEM");
        assert_eq!(d["kind"], "dsse");
        assert_eq!(d["spec"]["proposedContent"]["envelope"], "{}");
    }
}
