//! Untrusted input to cosign's pure parsers (legacy `.sig` manifests, identity tokens, signing configs,
//! Fulcio and Rekor answers) never panics, and a rejection names what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kibaship_cosign::fulcio::parse_signing_cert_response;
use kibaship_cosign::identity_token::{IdentityToken, TokenError};
use kibaship_cosign::legacy::{LayerKind, LayoutError, read_manifest};
use kibaship_cosign::rekor_v1::parse_log_entry;
use kibaship_cosign::signing_config::{RekorLogs, SigningConfigError, SigningServices};
use kibaship_sign::SigningKey;
use proptest::prelude::*;
use std::sync::OnceLock;

const NOW: i64 = 1_748_736_000;
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/cosign/simple-signing/keyless-rekor-set"
);

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURE}/{name}")).unwrap()
}

/// A `.sig` manifest carrying the 2021 keyless layer's annotations.
fn sig_manifest() -> &'static str {
    static M: OnceLock<String> = OnceLock::new();
    M.get_or_init(|| {
        let bundle: serde_json::Value = serde_json::from_str(&fixture("bundle.json")).unwrap();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
            "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": 242,
                "digest": "sha256:5f481572d088dc4023afb35fced9530ced3d9b03bf7299c6f492163cb9f0452e",
                "annotations": {
                    "dev.cosignproject.cosign/signature": fixture("signature.b64").trim(),
                    "dev.sigstore.cosign/certificate": fixture("certificate.pem"),
                    "dev.sigstore.cosign/bundle": bundle.to_string(),
                }}]
        })
        .to_string()
    })
}

fn token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        let claims = serde_json::json!({"iss": "https://oauth2.sigstore.dev/auth", "sub": "a@example.com",
            "aud": "sigstore", "exp": NOW + 600, "email": "a@example.com"});
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    })
}

const SIGNING_CONFIG: &str = r#"{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","caUrls":[{"url":"https://fulcio.example","majorApiVersion":1,"validFor":{"start":"2022-04-13T20:06:15.000Z"}}],"oidcUrls":[],"rekorTlogUrls":[{"url":"https://rekor.example","majorApiVersion":1,"validFor":{"start":"2021-01-12T11:53:27.000Z"}},{"url":"https://log2025.rekor.example","majorApiVersion":2,"validFor":{"start":"2025-01-01T00:00:00Z"}}],"tsaUrls":[{"url":"https://tsa.example/api/v1/timestamp","majorApiVersion":1,"validFor":{"start":"2025-01-01T00:00:00Z"}}],"rekorTlogConfig":{"selector":"ANY"},"tsaConfig":{"selector":"ANY"}}"#;

fn rekor_answer() -> &'static str {
    static A: OnceLock<String> = OnceLock::new();
    A.get_or_init(|| {
        let b: serde_json::Value = serde_json::from_str(&fixture("bundle.json")).unwrap();
        serde_json::json!({"24296fb24b8ad77a": {"body": b["Payload"]["body"],
            "integratedTime": b["Payload"]["integratedTime"], "logIndex": b["Payload"]["logIndex"],
            "logID": b["Payload"]["logID"],
            "verification": {"signedEntryTimestamp": b["SignedEntryTimestamp"]}}})
        .to_string()
    })
}

/// A real input with one byte replaced, one byte removed or cut short.
fn mutated(base: fn() -> &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base().len();
    (0..len, any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
        let mut bytes = base().as_bytes().to_vec();
        match how {
            0 => bytes[at] = byte,
            1 => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
        bytes
    })
}

fn key() -> &'static SigningKey {
    static K: OnceLock<SigningKey> = OnceLock::new();
    K.get_or_init(|| SigningKey::generate().unwrap())
}

#[test]
fn the_unmutated_inputs_are_accepted() {
    assert_eq!(
        read_manifest(sig_manifest().as_bytes(), LayerKind::Signature)
            .unwrap()
            .len(),
        1
    );
    IdentityToken::parse(token(), NOW).unwrap();
    SigningServices::from_signing_config_for(SIGNING_CONFIG.as_bytes(), NOW, RekorLogs::Both)
        .unwrap();
    parse_log_entry(rekor_answer().as_bytes()).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn mutated_signature_manifests_name_the_layer(bytes in mutated(sig_manifest)) {
        for kind in [LayerKind::Signature, LayerKind::Attestation] {
            if let Err(e) = read_manifest(&bytes, kind) {
                let text = e.to_string();
                match e {
                    LayoutError::NotAManifest(_) => prop_assert!(text.starts_with("signature manifest is not an image manifest: "), "{text}"),
                    _ => prop_assert!(text.starts_with("layer 0 ") || text.starts_with("signature manifest "), "{text}"),
                }
            }
        }
    }

    #[test]
    fn mutated_identity_tokens_are_refused_by_reason(bytes in mutated(token)) {
        let raw = String::from_utf8_lossy(&bytes);
        if let Err(e) = IdentityToken::parse(&raw, NOW) {
            prop_assert!(matches!(e, TokenError::NotJwt | TokenError::Claims | TokenError::Missing(_) | TokenError::Audience(_) | TokenError::Expired { .. }), "{e:?}");
            prop_assert!(e.to_string().starts_with("the identity token"), "{e}");
        }
    }

    #[test]
    fn arbitrary_tokens_are_refused_without_echoing_them(raw in "[A-Za-z0-9_.=-]{0,200}") {
        match IdentityToken::parse(&raw, NOW) {
            Ok(t) => prop_assert!(!t.issuer().is_empty() || raw.contains('.')),
            Err(e) => {
                let text = e.to_string();
                prop_assert!(text.starts_with("the identity token"), "{text}");
                // A token is a secret: its text never appears in the error.
                prop_assert!(raw.len() < 8 || !text.contains(&raw), "{text}");
            }
        }
    }

    #[test]
    fn mutated_signing_configs_are_refused_by_reason(bytes in mutated(|| SIGNING_CONFIG)) {
        if let Err(e) = SigningServices::from_signing_config_for(&bytes, NOW, RekorLogs::Both) {
            prop_assert!(matches!(e, SigningConfigError::Parse(_) | SigningConfigError::MediaType(_) | SigningConfigError::NoService(_)), "{e:?}");
            prop_assert!(e.to_string().starts_with("signing config"), "{e}");
        }
    }

    #[test]
    fn mutated_rekor_answers_name_the_log(bytes in mutated(rekor_answer)) {
        if let Err(e) = parse_log_entry(&bytes) {
            let text = e.to_string();
            prop_assert!(text.starts_with("Rekor"), "{text}");
        }
    }

    #[test]
    fn arbitrary_fulcio_answers_name_fulcio(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let e = parse_signing_cert_response(&bytes, key()).unwrap_err();
        prop_assert!(e.to_string().starts_with("Fulcio: "), "{e}");
    }
}
