//! The simple-signing payload cosign signs for a container image (legacy `.sig` layout).
//!
//! Bytes matter: the signature covers them exactly. cosign marshals with Go's `encoding/json`: keys sorted,
//! no spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped, and `"optional":null` unless annotations were given.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `critical.type` value every cosign verifier requires.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// Not the JSON shape of a simple-signing payload.
    #[error("simple-signing payload is malformed: {0}")]
    Malformed(String),
    /// `critical.type` is not cosign's.
    #[error("simple-signing payload has critical.type `{0}`, expected `{COSIGN_SIGNATURE_TYPE}`")]
    WrongType(String),
    /// The manifest digest is not `sha256:<64 hex>` (or sha384/sha512).
    #[error("simple-signing payload has an invalid docker-manifest-digest `{0}`")]
    BadDigest(String),
}

/// A simple-signing payload: which image (repository and manifest digest) a signature is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimpleSigningPayload {
    /// What is signed.
    pub critical: Critical,
    /// `-a key=value` annotations; `null` when there are none.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The `critical` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Critical {
    /// The repository, as go-containerregistry names it (`index.docker.io/library/alpine`), no tag.
    pub identity: Identity,
    /// The manifest digest.
    pub image: Image,
    /// Always [`COSIGN_SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
}

/// `critical.identity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Repository name.
    #[serde(rename = "docker-reference")]
    pub docker_reference: String,
}

/// `critical.image`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:<hex>`.
    #[serde(rename = "docker-manifest-digest")]
    pub docker_manifest_digest: String,
}

impl SimpleSigningPayload {
    /// A payload for `repository` (normalised as cosign does, no tag or digest) at `manifest_digest`.
    pub fn new(
        repository: &str,
        manifest_digest: &str,
        annotations: BTreeMap<String, String>,
    ) -> Result<Self, PayloadError> {
        check_digest(manifest_digest)?;
        Ok(Self {
            critical: Critical {
                identity: Identity {
                    docker_reference: repository.to_string(),
                },
                image: Image {
                    docker_manifest_digest: manifest_digest.to_string(),
                },
                kind: COSIGN_SIGNATURE_TYPE.to_string(),
            },
            optional: (!annotations.is_empty()).then(|| {
                annotations
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect()
            }),
        })
    }

    /// The exact bytes cosign would sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these plain structs cannot fail; fall back to an empty document defensively.
        let json = serde_json::to_string(self).unwrap_or_default();
        go_html_escape(&json).into_bytes()
    }

    /// Reads a payload and checks what verifiers require: the type string and a well-formed digest.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        let payload: Self =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        if payload.critical.kind != COSIGN_SIGNATURE_TYPE {
            return Err(PayloadError::WrongType(payload.critical.kind));
        }
        check_digest(&payload.critical.image.docker_manifest_digest)?;
        Ok(payload)
    }
}

fn check_digest(digest: &str) -> Result<(), PayloadError> {
    let ok = digest.split_once(':').is_some_and(|(alg, hex)| {
        let len = match alg {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => return false,
        };
        hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if ok {
        Ok(())
    } else {
        Err(PayloadError::BadDigest(digest.to_string()))
    }
}

/// Go's `json.Marshal` escapes these inside strings; they can only occur inside strings in JSON text.
fn go_html_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec";

    #[test]
    fn annotations_are_sorted_and_escaped_like_go() {
        let mut ann = BTreeMap::new();
        ann.insert("z".to_string(), "a<b>&c".to_string());
        ann.insert("a".to_string(), "1".to_string());
        let p = SimpleSigningPayload::new("r.example/x", DIGEST, ann).unwrap();
        let text = String::from_utf8(p.to_bytes()).unwrap();
        assert!(
            text.ends_with(r#""optional":{"a":"1","z":"a\u003cb\u003e\u0026c"}}"#),
            "{text}"
        );
        assert_eq!(SimpleSigningPayload::parse(text.as_bytes()).unwrap(), p);
    }

    #[test]
    fn rejects_wrong_type_and_bad_digests() {
        let p = SimpleSigningPayload::new("r/x", DIGEST, BTreeMap::new()).unwrap();
        let text = String::from_utf8(p.to_bytes()).unwrap();
        let wrong = text.replace(COSIGN_SIGNATURE_TYPE, "something else");
        assert!(matches!(
            SimpleSigningPayload::parse(wrong.as_bytes()),
            Err(PayloadError::WrongType(t)) if t == "something else"
        ));
        for bad in [
            "sha256:abc",
            "md5:00",
            "sha256:4AA3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec",
            "",
        ] {
            assert!(
                SimpleSigningPayload::new("r/x", bad, BTreeMap::new()).is_err(),
                "{bad}"
            );
        }
        assert!(matches!(
            SimpleSigningPayload::parse(b"{\"critical\":1}"),
            Err(PayloadError::Malformed(_))
        ));
    }
}
