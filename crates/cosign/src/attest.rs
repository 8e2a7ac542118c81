//! Attesting images: in-toto statements about an image digest, signed in DSSE envelopes and stored where
//! cosign (v3.1.3) stores what `cosign attest --predicate F --type T` makes.
//!
//! Pure part ([`Attestation`]): the predicate (JSON, bounded) and its type (cosign's `--type` names or any absolute
//! URI) become the statement cosign builds: `_type` `https://in-toto.io/Statement/v0.1` (what cosign v3.1.3
//! writes in both layouts), one subject named after the image's repository as go-containerregistry names it
//! (`index.docker.io/library/x` for Docker Hub), with the image digest in its digest map, and the predicate type
//! URI. As cosign does, `--type custom` (or its URI) wraps the predicate file's text, JSON or not, as `{"Data":
//! <file text>, "Timestamp": <RFC 3339>}` and `--type spdx` embeds the file's text as a JSON string; every other type embeds the predicate object as
//! given.
//!
//! I/O part (async, over `kibaship-oci`'s [`RegistryClient`]), one function per layout and signer:
//! - [`attest_legacy`] / [`attest_legacy_keyless`]: the DSSE envelope as a new layer of the image's
//!   `sha256-<hex>.att` manifest (existing layers kept), with cosign's layer annotations (empty
//!   `dev.cosignproject.cosign/signature`, `predicateType`, and keyless: certificate, chain and the Rekor v1
//!   bundle of a `dsse` v0.0.1 entry, the entry kind cosign v3.1.3 logs attestations as);
//! - [`attest_bundle`] / [`attest_bundle_keyless`]: a Sigstore bundle v0.3 with the DSSE envelope attached as an
//!   OCI referrer with `dev.sigstore.bundle.predicateType` (keyless: Fulcio certificate, Rekor v2, TSA).
use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kibaship_oci::manifest::Descriptor;
use kibaship_oci::{Digest, Reference, RegistryClient};
use kibaship_sign::SigningKey;
use kibaship_sigstore::{Verifier, pae};
use serde::Serialize;

use crate::check::IN_TOTO_PAYLOAD_TYPE;
use crate::key_log::KeyTransparencyLog;
use crate::keyless::KeylessSigner;
use crate::legacy::{DSSE_MEDIA_TYPE, LayerKind, MAX_PAYLOAD_BYTES, SignatureLayer};
use crate::registry::{
    self, CosignError, KeylessSigned, LegacyKeylessSigned, SignedBundle, SignedImage,
};
use crate::sign_image::{ImageSigner, LayoutSignError, Layouts, Signed};

/// The statement type cosign v3.1.3 writes for `cosign attest` (both layouts).
pub const STATEMENT_TYPE_V01: &str = "https://in-toto.io/Statement/v0.1";
/// Largest predicate file accepted. The statement is signed into a DSSE envelope (base64, 4/3 larger) that
/// verifiers read as one blob of at most 16 MiB, so a larger predicate could never be verified.
pub const MAX_PREDICATE_BYTES: usize = 8 * 1024 * 1024;
/// Largest statement built: its base64 in an envelope or bundle must stay under the verifiers' 16 MiB.
const MAX_STATEMENT_BYTES: usize = (MAX_PAYLOAD_BYTES as usize / 4) * 3 - 64 * 1024;

/// The type of cosign's custom predicate (`--type custom`), `{"Data": <text>, "Timestamp": <RFC 3339>}`.
pub const CUSTOM_PREDICATE_TYPE: &str = "https://cosign.sigstore.dev/attestation/v1";

/// cosign's `--type` names and the predicate types they stand for (cosign v3.1.3, `options.PredicateTypeMap`).
pub const PREDICATE_TYPE_NAMES: [(&str, &str); 10] = [
    ("custom", CUSTOM_PREDICATE_TYPE),
    ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
    ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
    ("spdx", "https://spdx.dev/Document"),
    ("spdxjson", "https://spdx.dev/Document"),
    ("cyclonedx", "https://cyclonedx.org/bom"),
    ("link", "https://in-toto.io/Link/v1"),
    ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
    ("openvex", "https://openvex.dev/ns"),
];

/// What is wrong with a predicate or its type. Each message names the file it is about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttestError {
    /// `--type` is neither one of cosign's names nor an absolute URI.
    #[error(
        "unknown predicate type {0:?}: give one of custom, slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, link, vuln, openvex, or an absolute URI (https://...)"
    )]
    UnknownType(String),
    /// The predicate is larger than the limit.
    #[error("predicate {file} is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// Where the predicate came from.
        file: String,
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The predicate is not JSON.
    #[error("predicate {file} is not JSON: {reason}")]
    NotJson {
        /// Where the predicate came from.
        file: String,
        /// The parser's message (line and column).
        reason: String,
    },
    /// A `custom` predicate that is not UTF-8 text (cosign refuses it too: protobuf strings are UTF-8).
    #[error(
        "predicate {file} is not UTF-8 text (invalid byte at offset {offset}): a custom predicate is carried as a JSON string"
    )]
    NotUtf8 {
        /// Where the predicate came from.
        file: String,
        /// The offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// The predicate type needs a JSON object and the predicate is something else.
    #[error(
        "predicate {file} must be a JSON object for predicate type {predicate_type}, found {found}"
    )]
    NotAnObject {
        /// Where the predicate came from.
        file: String,
        /// The predicate type URI.
        predicate_type: String,
        /// What the JSON is instead.
        found: &'static str,
    },
    /// The clock cannot be formatted (for `custom`'s `Timestamp`).
    #[error("cannot format the current time: {0}")]
    Clock(String),
}

/// The predicate type URI `--type` names: one of cosign's names, or an absolute URI as given.
pub fn predicate_type_uri(type_arg: &str) -> Result<String, AttestError> {
    if let Some((_, uri)) = PREDICATE_TYPE_NAMES.iter().find(|(n, _)| *n == type_arg) {
        return Ok((*uri).to_string());
    }
    if is_absolute_uri(type_arg) {
        Ok(type_arg.to_string())
    } else {
        Err(AttestError::UnknownType(type_arg.to_string()))
    }
}

/// `scheme:rest` with an RFC 3986 scheme, a non-empty rest and no whitespace or control characters.
fn is_absolute_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A predicate ready to be attested: its type URI and the predicate JSON the statement embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    predicate_type: String,
    predicate_json: String,
}

#[derive(Serialize)]
struct StatementSubject<'a> {
    name: &'a str,
    digest: BTreeMap<&'a str, &'a str>,
}

impl Attestation {
    /// Reads `predicate` (the bytes of the file named `source`) for `--type type_arg` as cosign does. `now` is the
    /// time `custom` predicates carry as their `Timestamp`.
    pub fn new(
        type_arg: &str,
        predicate: &[u8],
        source: &str,
        now: time::OffsetDateTime,
    ) -> Result<Self, AttestError> {
        let predicate_type = predicate_type_uri(type_arg)?;
        if predicate.len() > MAX_PREDICATE_BYTES {
            return Err(AttestError::TooLarge {
                file: source.to_string(),
                len: predicate.len(),
                max: MAX_PREDICATE_BYTES,
            });
        }
        // cosign's `generateCustomPredicate`: the custom type (`--type custom` or its URI) carries the file as a
        // string, whatever the text is (JSON or not); it refuses what is not UTF-8 (`structpb.NewStruct`:
        // "invalid UTF-8 in string").
        if predicate_type == CUSTOM_PREDICATE_TYPE {
            let text = std::str::from_utf8(predicate).map_err(|e| AttestError::NotUtf8 {
                file: source.to_string(),
                offset: e.valid_up_to(),
            })?;
            let timestamp = now
                .to_offset(time::UtcOffset::UTC)
                .replace_nanosecond(0)
                .map_err(|e| AttestError::Clock(e.to_string()))?
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| AttestError::Clock(e.to_string()))?;
            let predicate_json =
                serde_json::json!({"Data": text, "Timestamp": timestamp}).to_string();
            return Self::checked(source, predicate_type, predicate_json);
        }
        let value: serde_json::Value =
            serde_json::from_slice(predicate).map_err(|e| AttestError::NotJson {
                file: source.to_string(),
                reason: e.to_string(),
            })?;
        // Valid JSON is UTF-8.
        let text = String::from_utf8_lossy(predicate);
        let predicate_json = match type_arg {
            "spdx" => serde_json::Value::String(text.into_owned()).to_string(),
            _ => {
                if !value.is_object() {
                    return Err(AttestError::NotAnObject {
                        file: source.to_string(),
                        predicate_type,
                        found: json_kind(&value),
                    });
                }
                text.trim().to_string()
            }
        };
        Self::checked(source, predicate_type, predicate_json)
    }

    /// The attestation, unless its predicate JSON is too large for its statement to be verified.
    fn checked(
        source: &str,
        predicate_type: String,
        predicate_json: String,
    ) -> Result<Self, AttestError> {
        if predicate_json.len() > MAX_STATEMENT_BYTES {
            return Err(AttestError::TooLarge {
                file: source.to_string(),
                len: predicate_json.len(),
                max: MAX_STATEMENT_BYTES,
            });
        }
        Ok(Attestation {
            predicate_type,
            predicate_json,
        })
    }

    /// The predicate type URI.
    pub fn predicate_type(&self) -> &str {
        &self.predicate_type
    }

    /// The in-toto statement about the image `digest` in `repository` (as go-containerregistry names it, see
    /// [`Reference::ggcr_repository`]), fields in the order cosign writes them.
    pub fn statement(&self, repository: &str, digest: &Digest) -> Vec<u8> {
        let hex = digest.hex();
        let subject = [StatementSubject {
            name: repository,
            digest: BTreeMap::from([(digest.algorithm().name(), hex)]),
        }];
        // Strings and maps of strings always serialise.
        let head =
            serde_json::to_string(&serde_json::json!(STATEMENT_TYPE_V01)).unwrap_or_default();
        let subject = serde_json::to_string(&subject).unwrap_or_default();
        let predicate_type = serde_json::to_string(&self.predicate_type).unwrap_or_default();
        format!(
            "{{\"_type\":{head},\"subject\":{subject},\"predicateType\":{predicate_type},\"predicate\":{}}}",
            self.predicate_json
        )
        .into_bytes()
    }

    /// The statement for the image `reference` pins to `digest`.
    fn statement_for(&self, reference: &Reference, digest: &Digest) -> Vec<u8> {
        self.statement(&reference.ggcr_repository(), digest)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Attests `reference` with `key` in cosign's legacy layout (as `cosign attest --new-bundle-format=false
/// --tlog-upload=false`): resolve the tag to a digest, sign the statement in a DSSE envelope, push it as a new
/// layer of `sha256-<hex>.att` (in `signature_repository` if given), keeping every layer already there.
/// Nothing goes to a transparency log: verifiers need `--insecure-ignore-tlog`.
pub async fn attest_legacy(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    key: &SigningKey,
    attestation: &Attestation,
) -> Result<SignedImage, CosignError> {
    let (digest, image) = registry::pin_to_digest(client, reference).await?;
    let statement = attestation.statement_for(reference, &digest);
    let envelope = key_signed_envelope(key, &statement)?;
    let material = SignatureLayer {
        index: 0,
        descriptor: Descriptor::of(DSSE_MEDIA_TYPE, &envelope),
        // cosign leaves the signature annotation of a DSSE layer empty: the envelope holds the signature.
        signature: Vec::new(),
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle: None,
        rfc3161_timestamp: None,
        predicate_type: Some(attestation.predicate_type().to_string()),
    };
    let store = signature_repository.unwrap_or(reference);
    registry::push_legacy_layer(
        client,
        store,
        LayerKind::Attestation,
        (&digest, &image),
        &envelope,
        &material,
        registry::LegacyStore::Tag,
    )
    .await
}

/// Attests `reference` with `key` in cosign's legacy `.att` layout, as [`attest_legacy`], with the envelope
/// entered in Rekor v1 first (`dsse` v0.0.1, the public key as verifier), as `cosign attest --key
/// --new-bundle-format=false` does with a Rekor v1 log: the layer's bundle annotation carries the entry and its
/// SET. With `check`, the layer is verified with the key against that trusted root before it is pushed.
pub async fn attest_legacy_logged(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    (key, log): (&SigningKey, &KeyTransparencyLog),
    attestation: &Attestation,
    check: Option<&Verifier>,
) -> Result<SignedImage, CosignError> {
    let (digest, image) = registry::pin_to_digest(client, reference).await?;
    let statement = attestation.statement_for(reference, &digest);
    let (envelope, signature) = signed_envelope(key, &statement)?;
    let entry = log.log_dsse_rekor_v1(key, &envelope).await?;
    let material = SignatureLayer {
        index: 0,
        descriptor: Descriptor::of(DSSE_MEDIA_TYPE, &envelope),
        // cosign leaves the signature annotation of a DSSE layer empty: the envelope holds the signature.
        signature: Vec::new(),
        certificate_pem: None,
        chain_pem: None,
        rekor_bundle: Some(entry.rekor_bundle()),
        rfc3161_timestamp: None,
        predicate_type: Some(attestation.predicate_type().to_string()),
    };
    if let Some(verifier) = check {
        let content = crate::check::SignedContent::Dsse {
            payload_type: IN_TOTO_PAYLOAD_TYPE,
            payload: &statement,
            signature: &signature,
            image_digest: &digest,
        };
        registry::self_check_logged_layer(verifier, key, &material, &entry, &content, &digest)
            .map_err(CosignError::SelfCheck)?;
    }
    let store = signature_repository.unwrap_or(reference);
    let mut signed = registry::push_legacy_layer(
        client,
        store,
        LayerKind::Attestation,
        (&digest, &image),
        &envelope,
        &material,
        registry::LegacyStore::Tag,
    )
    .await?;
    signed.transparency_log = Some(log.logged_v1(&entry));
    Ok(signed)
}

/// Attests `reference` with `key` in cosign v3's layout, as [`attest_bundle`], with the signature timestamped
/// and entered in Rekor v2 ([`KeyTransparencyLog::sign_dsse_rekor_v2`]). With `check`, the bundle is verified
/// with the key against that trusted root before it is attached.
pub async fn attest_bundle_logged(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    (key, log): (&SigningKey, &KeyTransparencyLog),
    attestation: &Attestation,
    check: Option<&Verifier>,
) -> Result<SignedBundle, CosignError> {
    let (digest, image) = registry::pin_to_digest(client, reference).await?;
    let statement = attestation.statement_for(reference, &digest);
    let (bundle, entry) = log.sign_dsse_rekor_v2(key, &statement).await?;
    if let Some(verifier) = check {
        registry::self_check_logged_bundle(verifier, key, &bundle, &digest)
            .map_err(CosignError::SelfCheck)?;
    }
    let mut signed = registry::attach_bundle(
        client,
        &image,
        signature_repository,
        &digest,
        bundle,
        attestation.predicate_type(),
    )
    .await?;
    signed.transparency_log = Some(entry);
    Ok(signed)
}

/// The DSSE envelope (as cosign writes it into a `.att` layer) of `statement` signed with `key`.
pub fn key_signed_envelope(
    key: &SigningKey,
    statement: &[u8],
) -> Result<Vec<u8>, kibaship_sign::KeyError> {
    signed_envelope(key, statement).map(|(envelope, _)| envelope)
}

/// [`key_signed_envelope`] and the signature it holds.
pub(crate) fn signed_envelope(
    key: &SigningKey,
    statement: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), kibaship_sign::KeyError> {
    let signature = key.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement))?;
    let envelope = serde_json::json!({
        "payload": STANDARD.encode(statement),
        "payloadType": IN_TOTO_PAYLOAD_TYPE,
        "signatures": [{"sig": STANDARD.encode(&signature)}],
    });
    // A Value of strings always serialises.
    Ok((serde_json::to_vec(&envelope).unwrap_or_default(), signature))
}

/// Attests `reference` keyless in cosign's legacy layout (as `cosign attest --new-bundle-format=false`): the
/// statement in a DSSE envelope signed by an ephemeral key with a Fulcio certificate, logged in Rekor v1 as a
/// `dsse` v0.0.1 entry; the `.att` layer carries the certificate, the chain and the Rekor bundle (SET + entry).
///
/// With `check`, the layer is first verified against that trusted root, and nothing is pushed if it fails.
pub async fn attest_legacy_keyless(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    attestation: &Attestation,
    check: Option<&Verifier>,
) -> Result<LegacyKeylessSigned, CosignError> {
    let (digest, image) = registry::pin_to_digest(client, reference).await?;
    let statement = attestation.statement_for(reference, &digest);
    let (envelope, signed) = signer
        .sign_dsse_rekor_v1(IN_TOTO_PAYLOAD_TYPE, &statement)
        .await?;
    let store = signature_repository.unwrap_or(reference);
    registry::push_keyless_legacy_layer(
        client,
        store,
        (&digest, &image),
        registry::LegacyKeylessContent::Attestation {
            envelope: &envelope,
            statement: &statement,
            predicate_type: attestation.predicate_type(),
        },
        signed,
        check,
        registry::LegacyStore::Tag,
    )
    .await
}

/// Attests `reference` with `key` in cosign v3's layout (as `cosign attest --tlog-upload=false`): the statement
/// in a DSSE envelope in a Sigstore bundle v0.3 without transparency-log entries, attached as a referrer of the
/// image with `dev.sigstore.bundle.predicateType` = the predicate type.
pub async fn attest_bundle(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    key: &SigningKey,
    attestation: &Attestation,
) -> Result<SignedBundle, CosignError> {
    let (digest, image) = registry::pin_to_digest(client, reference).await?;
    let statement = attestation.statement_for(reference, &digest);
    let bundle = crate::bundle_layout::key_signed_bundle(key, &statement)?;
    registry::attach_bundle(
        client,
        &image,
        signature_repository,
        &digest,
        bundle,
        attestation.predicate_type(),
    )
    .await
}

/// Attests `reference` keyless in cosign v3's layout (as `cosign attest` with a signing config): the statement
/// signed in a DSSE envelope by an ephemeral key with a Fulcio certificate, timestamped by the TSA and logged in
/// Rekor v2; the bundle v0.3 is attached as a referrer with the predicate type annotation.
///
/// With `check`, the bundle is first verified against that trusted root, and nothing is attached if it fails.
pub async fn attest_bundle_keyless(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: &KeylessSigner,
    attestation: &Attestation,
    check: Option<&Verifier>,
) -> Result<KeylessSigned, CosignError> {
    registry::dsse_bundle_keyless(
        client,
        reference,
        signature_repository,
        signer,
        |digest| attestation.statement_for(reference, digest),
        attestation.predicate_type(),
        check,
    )
    .await
}

/// Attests `reference` (a tag is resolved; the digest is attested) with `signer` in each of `layouts`, legacy first,
/// keeping the attestations already there: the same dispatch as [`crate::sign_image`], for attestations. Stops at
/// the first layout that fails.
pub async fn attest_image(
    client: &RegistryClient,
    reference: &Reference,
    signature_repository: Option<&Reference>,
    signer: ImageSigner<'_>,
    layouts: Layouts,
    attestation: &Attestation,
) -> Result<Vec<Signed>, LayoutSignError> {
    if layouts == Layouts::LegacyReferrer {
        return Err(LayoutSignError {
            layout: "legacy",
            source: CosignError::NoOci11Attestations,
        });
    }
    let mut written = Vec::new();
    if layouts.legacy() {
        let fail = |source| LayoutSignError {
            layout: "legacy",
            source,
        };
        written.push(match signer {
            ImageSigner::Key(key) => Signed::Legacy(
                attest_legacy(client, reference, signature_repository, key, attestation)
                    .await
                    .map_err(fail)?,
            ),
            ImageSigner::KeyLogged { key, log, check } => Signed::Legacy(
                attest_legacy_logged(
                    client,
                    reference,
                    signature_repository,
                    (key, log),
                    attestation,
                    check,
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::Keyless { signer, check } => Signed::LegacyKeyless(
                attest_legacy_keyless(
                    client,
                    reference,
                    signature_repository,
                    signer,
                    attestation,
                    check,
                )
                .await
                .map_err(fail)?,
            ),
        });
    }
    if layouts.bundle() {
        let fail = |source| LayoutSignError {
            layout: "bundle",
            source,
        };
        written.push(match signer {
            ImageSigner::Key(key) => Signed::Bundle(
                attest_bundle(client, reference, signature_repository, key, attestation)
                    .await
                    .map_err(fail)?,
            ),
            ImageSigner::KeyLogged { key, log, check } => Signed::Bundle(
                attest_bundle_logged(
                    client,
                    reference,
                    signature_repository,
                    (key, log),
                    attestation,
                    check,
                )
                .await
                .map_err(fail)?,
            ),
            ImageSigner::Keyless { signer, check } => Signed::BundleKeyless(
                attest_bundle_keyless(
                    client,
                    reference,
                    signature_repository,
                    signer,
                    attestation,
                    check,
                )
                .await
                .map_err(fail)?,
            ),
        });
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const HEX: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    fn now() -> time::OffsetDateTime {
        time::macros::datetime!(2026-11-25 10:15:10.123 +01:00)
    }

    fn digest() -> Digest {
        format!("sha256:{HEX}").parse().unwrap()
    }

    fn statement(type_arg: &str, predicate: &[u8], repository: &str) -> serde_json::Value {
        let a = Attestation::new(type_arg, predicate, "p.json", now()).unwrap();
        serde_json::from_slice(&a.statement(repository, &digest())).unwrap()
    }

    #[test]
    fn every_cosign_type_name_maps_to_its_uri_and_uris_pass_through() {
        let expected = [
            ("slsaprovenance", "https://slsa.dev/provenance/v0.2"),
            ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
            ("slsaprovenance1", "https://slsa.dev/provenance/v1"),
            ("spdx", "https://spdx.dev/Document"),
            ("spdxjson", "https://spdx.dev/Document"),
            ("cyclonedx", "https://cyclonedx.org/bom"),
            ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
            ("openvex", "https://openvex.dev/ns"),
            ("custom", "https://cosign.sigstore.dev/attestation/v1"),
            ("link", "https://in-toto.io/Link/v1"),
            ("https://example.com/pred/v1", "https://example.com/pred/v1"),
            ("urn:example:pred", "urn:example:pred"),
        ];
        for (name, uri) in expected {
            assert_eq!(predicate_type_uri(name).unwrap(), uri, "{name}");
        }
        for bad in [
            "",
            "provenance",
            "SLSAPROVENANCE",
            "https://a b",
            ":x",
            "1x:y",
            "http:",
        ] {
            assert_eq!(
                predicate_type_uri(bad),
                Err(AttestError::UnknownType(bad.to_string())),
                "{bad:?}"
            );
        }
        assert!(
            AttestError::UnknownType("provenance".into())
                .to_string()
                .contains("unknown predicate type \"provenance\"")
        );
    }

    #[test]
    fn statement_has_cosigns_type_subject_name_digest_and_predicate() {
        let s = statement(
            "slsaprovenance1",
            b" {\"buildDefinition\": {\"buildType\": \"x\"}, \"n\": 12345678901234567890}\n",
            "registry.example:5000/team/app",
        );
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v0.1");
        assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
        assert_eq!(
            s["subject"],
            serde_json::json!([{"name": "registry.example:5000/team/app", "digest": {"sha256": HEX}}])
        );
        assert_eq!(s["predicate"]["buildDefinition"]["buildType"], "x");
        let a = Attestation::new(
            "https://e.com/t",
            b"{\"n\": 12345678901234567890123}",
            "p",
            now(),
        )
        .unwrap();
        let raw = String::from_utf8(a.statement("r/x", &digest())).unwrap();
        // The predicate is embedded as given: numbers keep every digit.
        assert!(
            raw.ends_with("\"predicate\":{\"n\": 12345678901234567890123}}"),
            "{raw}"
        );
        assert!(raw.starts_with(
            "{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"subject\":[{\"name\":\"r/x\""
        ));
    }

    #[test]
    fn subject_is_named_after_the_repository_as_cosign_names_it() {
        let a = Attestation::new("cyclonedx", b"{}", "p", now()).unwrap();
        let docker_hub = Reference::parse("busybox:1.36").unwrap();
        let s: serde_json::Value =
            serde_json::from_slice(&a.statement_for(&docker_hub, &digest())).unwrap();
        assert_eq!(s["subject"][0]["name"], "index.docker.io/library/busybox");
        let local = Reference::parse("127.0.0.1:5000/fixtures/app:v1").unwrap();
        let s: serde_json::Value =
            serde_json::from_slice(&a.statement_for(&local, &digest())).unwrap();
        assert_eq!(s["subject"][0]["name"], "127.0.0.1:5000/fixtures/app");
        assert_eq!(s["subject"][0]["digest"]["sha256"], HEX);
    }

    #[test]
    fn custom_wraps_the_text_with_a_utc_timestamp_and_spdx_embeds_a_string() {
        let s = statement("custom", b"{\"hello\": \"world\"}", "r/x");
        assert_eq!(
            s["predicateType"],
            "https://cosign.sigstore.dev/attestation/v1"
        );
        assert_eq!(s["predicate"]["Data"], "{\"hello\": \"world\"}");
        assert_eq!(s["predicate"]["Timestamp"], "2026-11-25T09:15:10Z");
        let s = statement("spdx", b"{\"spdxVersion\":\"SPDX-2.3\"}", "r/x");
        assert_eq!(s["predicate"], "{\"spdxVersion\":\"SPDX-2.3\"}");
        let s = statement("spdxjson", b"{\"spdxVersion\":\"SPDX-2.3\"}", "r/x");
        assert_eq!(s["predicate"]["spdxVersion"], "SPDX-2.3");
        // custom takes any JSON; the other types an object.
        statement("custom", b"[1, 2]", "r/x");
    }

    #[test]
    fn custom_wraps_text_that_is_not_json_as_cosign_does() {
        // cosign's generateCustomPredicate: {"Data": string(file), "Timestamp": ...}, for `--type custom` and for
        // its URI, the text kept byte for byte (trailing newline, quotes, control characters escaped by JSON).
        let text = "build: ok\n\"quoted\" \t tab é ✓\u{1}\n";
        for type_arg in ["custom", CUSTOM_PREDICATE_TYPE] {
            let s = statement(type_arg, text.as_bytes(), "r/x");
            assert_eq!(s["predicateType"], CUSTOM_PREDICATE_TYPE);
            assert_eq!(
                s["predicate"],
                serde_json::json!({"Data": text, "Timestamp": "2026-11-25T09:15:10Z"})
            );
        }
        let s = statement("custom", b"", "r/x");
        assert_eq!(s["predicate"]["Data"], "");
        // Not UTF-8: refused (cosign: "proto: invalid UTF-8 in string"), naming the file and the offset.
        let err = Attestation::new("custom", b"ok\xff", "bin.dat", now()).unwrap_err();
        assert_eq!(
            err,
            AttestError::NotUtf8 {
                file: "bin.dat".into(),
                offset: 2
            }
        );
        assert!(
            err.to_string()
                .starts_with("predicate bin.dat is not UTF-8 text")
        );
        // Every other type still needs JSON.
        let err = Attestation::new("slsaprovenance1", b"build: ok", "p.txt", now()).unwrap_err();
        assert!(matches!(err, AttestError::NotJson { .. }), "{err:?}");
    }

    #[test]
    fn bad_predicates_are_refused_naming_the_file() {
        let err =
            Attestation::new("cyclonedx", b"{not json", "build/pred.json", now()).unwrap_err();
        assert!(matches!(err, AttestError::NotJson { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with("predicate build/pred.json is not JSON: "),
            "{msg}"
        );
        assert!(msg.contains("line 1 column 2"), "{msg}");

        let err = Attestation::new("vuln", b"[1]", "v.json", now()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "predicate v.json must be a JSON object for predicate type https://cosign.sigstore.dev/attestation/vuln/v1, found an array"
        );

        let big = vec![b' '; MAX_PREDICATE_BYTES + 1];
        let err = Attestation::new("custom", &big, "big.json", now()).unwrap_err();
        assert_eq!(
            err,
            AttestError::TooLarge {
                file: "big.json".into(),
                len: MAX_PREDICATE_BYTES + 1,
                max: MAX_PREDICATE_BYTES
            }
        );
        // Escaping can make a `custom` predicate within the file limit too large to verify.
        let mut quotes = b"[\"".to_vec();
        quotes.extend(std::iter::repeat_n(b'\\', MAX_PREDICATE_BYTES - 4));
        quotes.extend(b"\"]");
        let err = Attestation::new("custom", &quotes, "q.json", now()).unwrap_err();
        assert!(matches!(err, AttestError::TooLarge { .. }), "{err:?}");

        let err = Attestation::new("nope", b"{}", "p", now()).unwrap_err();
        assert_eq!(err, AttestError::UnknownType("nope".into()));
    }
}
