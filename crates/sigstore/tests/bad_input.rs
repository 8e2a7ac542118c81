//! Malformed bundles get a typed error naming the field; mutated valid bundles are rejected or,
//! when the mutation is a no-op, verify identically.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kibaship_sigstore::{
    ArtifactPolicy, Bundle, BundleError, BundleVersion, CertificateIdentity, IdentityPolicy,
    TrustedRoot, VerificationResult, Verifier,
};
use proptest::prelude::*;
use serde_json::Value;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sigstore/conformance")
}

/// (case, needs its own trusted root)
const HAPPY: [&str; 4] = [
    "happy-path-v0.1",
    "happy-path-v0.3",
    "happy-path-intoto-in-dsse-v3",
    "rekor2-happy-path",
];

struct Case {
    bundle: Vec<u8>,
    verifier: Verifier,
    artifact: Vec<u8>,
    expected: VerificationResult,
}

fn policy() -> IdentityPolicy {
    IdentityPolicy::Certificate(CertificateIdentity::exact(IDENTITY, ISSUER))
}

fn load(name: &str) -> Case {
    let dir = corpus().join(name);
    let root_path = if dir.join("trusted_root.json").exists() {
        dir.join("trusted_root.json")
    } else {
        corpus().join("../trusted-roots/production-trusted_root.json")
    };
    let verifier =
        Verifier::new(TrustedRoot::from_json(&std::fs::read(root_path).unwrap()).unwrap());
    let bundle = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
    let artifact = std::fs::read(corpus().join("a.txt")).unwrap();
    let expected = verifier
        .verify(
            &Bundle::from_json(&bundle).unwrap(),
            ArtifactPolicy::Bytes(&artifact),
            &policy(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Case {
        bundle,
        verifier,
        artifact,
        expected,
    }
}

fn cases() -> &'static [Case] {
    static CASES: std::sync::OnceLock<Vec<Case>> = std::sync::OnceLock::new();
    CASES.get_or_init(|| HAPPY.iter().map(|n| load(n)).collect())
}

/// Err(()) when rejected at load or verification; Ok(result) when accepted.
fn outcome(case: &Case, bytes: &[u8]) -> Result<VerificationResult, String> {
    let bundle = Bundle::from_json(bytes).map_err(|e| e.to_string())?;
    case.verifier
        .verify(&bundle, ArtifactPolicy::Bytes(&case.artifact), &policy())
        .map_err(|e| e.to_string())
}

fn field_error(json: &str) -> String {
    match Bundle::from_json(json.as_bytes()) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e.to_string(),
    }
}

fn happy_v03() -> Value {
    serde_json::from_slice(
        &std::fs::read(corpus().join("happy-path-v0.3/bundle.sigstore.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn malformed_bundles_name_the_field() {
    assert!(matches!(
        Bundle::from_json(b"{not json"),
        Err(BundleError::Json(_))
    ));
    assert!(matches!(Bundle::from_json(b""), Err(BundleError::Json(_))));
    assert!(field_error("{}").contains("mediaType"));
    assert!(matches!(
        Bundle::from_json(br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v9+json"}"#),
        Err(BundleError::UnknownVersion(_))
    ));

    let mut v = happy_v03();
    v["messageSignature"]["signature"] = "@@@".into();
    assert!(field_error(&v.to_string()).contains("messageSignature.signature"));

    let mut v = happy_v03();
    v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = "-5".into();
    assert!(field_error(&v.to_string()).contains("tlogEntries[0].logIndex"));

    let mut v = happy_v03();
    v["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = "soon".into();
    assert!(field_error(&v.to_string()).contains("integratedTime"));

    // int64 as a JSON number is accepted, as the protobuf JSON mapping allows.
    let mut v = happy_v03();
    v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = 79571823.into();
    v["verificationMaterial"]["tlogEntries"][0]["integratedTime"] = 1710869186.into();
    Bundle::from_json(v.to_string().as_bytes()).expect("numbers accepted");
    let mut v = happy_v03();
    v["verificationMaterial"]["tlogEntries"][0]["logIndex"] = 1e30.into();
    assert!(field_error(&v.to_string()).contains("logIndex"));

    // Truncated certificate.
    let mut v = happy_v03();
    let der = STANDARD
        .decode(
            v["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    v["verificationMaterial"]["certificate"]["rawBytes"] =
        STANDARD.encode(&der[..der.len() / 2]).into();
    let e = field_error(&v.to_string());
    assert!(
        e.contains("verificationMaterial.certificate.rawBytes") && e.contains("truncated"),
        "{e}"
    );

    // A chain in a v0.3 bundle, a single certificate in a v0.1 bundle.
    let mut v = happy_v03();
    let cert = v["verificationMaterial"]["certificate"].take();
    v["verificationMaterial"]
        .as_object_mut()
        .unwrap()
        .remove("certificate");
    v["verificationMaterial"]["x509CertificateChain"] =
        serde_json::json!({ "certificates": [cert] });
    assert!(field_error(&v.to_string()).contains("x509CertificateChain"));

    // Huge fields.
    let mut v = happy_v03();
    let hashes = vec![Value::from(STANDARD.encode([0u8; 32])); 65];
    v["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] = hashes.into();
    assert!(field_error(&v.to_string()).contains("inclusionProof.hashes"));
    let huge = vec![b' '; kibaship_sigstore::MAX_BUNDLE_BYTES + 1];
    assert!(matches!(
        Bundle::from_json(&huge),
        Err(BundleError::TooLarge(_))
    ));
    let mut v = happy_v03();
    v["verificationMaterial"]["tlogEntries"] =
        vec![v["verificationMaterial"]["tlogEntries"][0].clone(); 17].into();
    assert!(field_error(&v.to_string()).contains("tlogEntries"));

    // Wrong-length digest and unknown algorithm.
    let mut v = happy_v03();
    v["messageSignature"]["messageDigest"]["digest"] = STANDARD.encode([1u8; 5]).into();
    assert!(field_error(&v.to_string()).contains("messageDigest.digest"));
    let mut v = happy_v03();
    v["messageSignature"]["messageDigest"]["algorithm"] = "MD5".into();
    assert!(field_error(&v.to_string()).contains("messageDigest.algorithm"));
}

#[test]
fn malformed_trusted_roots_name_the_field() {
    let e = TrustedRoot::from_json(br#"{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1","tlogs":[{"baseUrl":"x","publicKey":{"rawBytes":"MFkw"},"logId":{"keyId":"!!"}}]}"#)
        .unwrap_err();
    assert!(e.to_string().contains("tlogs[0].logId.keyId"), "{e}");
    let e = TrustedRoot::from_json(br#"{"mediaType":"text/plain"}"#).unwrap_err();
    assert!(e.to_string().contains("mediaType"), "{e}");
}

/// Every path to a string leaf that holds base64 (decodes and is at least 16 bytes).
fn base64_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(k.clone());
                base64_paths(v, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(i.to_string());
                base64_paths(v, path, out);
                path.pop();
            }
        }
        Value::String(s) if STANDARD.decode(s).is_ok_and(|d| d.len() >= 16) => {
            out.push(path.clone())
        }
        _ => {}
    }
}

/// Every path to an object member.
fn member_paths(v: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                path.push(k.clone());
                out.push(path.clone());
                member_paths(v, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(i.to_string());
                member_paths(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => &mut v[k.as_str()],
    })
}

/// The one legitimate non-identical acceptance: a v0.1 bundle stays valid without its
/// (optional in v0.1) inclusion proof, and then reports `inclusionProof: false`.
fn v01_without_proof(expected: &VerificationResult) -> VerificationResult {
    let mut weaker = expected.clone();
    for e in &mut weaker.log_entries {
        e.inclusion_proof = false;
    }
    weaker
}

fn assert_rejected_or_identical(
    case: &Case,
    bytes: &[u8],
    what: &str,
) -> Result<(), TestCaseError> {
    if let Ok(result) = outcome(case, bytes) {
        let same = result == case.expected
            || (case.expected.bundle_version == BundleVersion::V0_1
                && result == v01_without_proof(&case.expected));
        prop_assert!(
            same,
            "{} was accepted with a different result: {:?}",
            what,
            result
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn flipped_json_bytes(which in 0..HAPPY.len(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let case = &cases()[which];
        let mut bytes = case.bundle.clone();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        assert_rejected_or_identical(case, &bytes, &format!("{} byte {i} bit {bit}", HAPPY[which]))?;
    }

    #[test]
    fn flipped_bits_in_decoded_fields(which in 0..HAPPY.len(), field in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let case = &cases()[which];
        let mut v: Value = serde_json::from_slice(&case.bundle).unwrap();
        let mut paths = Vec::new();
        base64_paths(&v, &mut Vec::new(), &mut paths);
        let path = &paths[field.index(paths.len())];
        let slot = at(&mut v, path);
        let mut raw = STANDARD.decode(slot.as_str().unwrap()).unwrap();
        let i = pos.index(raw.len());
        raw[i] ^= 1 << bit;
        *slot = STANDARD.encode(&raw).into();
        let what = format!("{} {} byte {i} bit {bit}", HAPPY[which], path.join("."));
        prop_assert!(outcome(case, v.to_string().as_bytes()).is_err(), "{} was accepted", what);
    }

    #[test]
    fn dropped_fields(which in 0..HAPPY.len(), field in any::<prop::sample::Index>()) {
        let case = &cases()[which];
        let mut v: Value = serde_json::from_slice(&case.bundle).unwrap();
        let mut paths = Vec::new();
        member_paths(&v, &mut Vec::new(), &mut paths);
        let path = &paths[field.index(paths.len())];
        let (last, parent) = path.split_last().unwrap();
        at(&mut v, parent).as_object_mut().unwrap().remove(last);
        assert_rejected_or_identical(case, v.to_string().as_bytes(), &format!("{} without {}", HAPPY[which], path.join(".")))?;
    }

    #[test]
    fn unknown_fields_are_rejected(which in 0..HAPPY.len(), field in any::<prop::sample::Index>()) {
        let case = &cases()[which];
        let mut v: Value = serde_json::from_slice(&case.bundle).unwrap();
        let mut paths = Vec::new();
        member_paths(&v, &mut Vec::new(), &mut paths);
        let path = &paths[field.index(paths.len())];
        let (_, parent) = path.split_last().unwrap();
        at(&mut v, parent).as_object_mut().unwrap().insert("unexpectedField".into(), Value::from(1));
        prop_assert!(Bundle::from_json(v.to_string().as_bytes()).is_err(), "unknown field under {:?} accepted", parent);
    }
}

fn leaf_cert(v: &Value) -> Value {
    let vm = &v["verificationMaterial"];
    if vm.get("certificate").is_some() {
        vm["certificate"].clone()
    } else {
        vm["x509CertificateChain"]["certificates"][0].clone()
    }
}

#[test]
fn swapped_certificates_are_rejected() {
    for (i, a) in cases().iter().enumerate() {
        for (j, b) in cases().iter().enumerate() {
            if i == j {
                continue;
            }
            let mut va: Value = serde_json::from_slice(&a.bundle).unwrap();
            let vb: Value = serde_json::from_slice(&b.bundle).unwrap();
            let cert = leaf_cert(&vb);
            if cert == leaf_cert(&va) {
                continue;
            }
            let vm = &mut va["verificationMaterial"];
            if vm.get("certificate").is_some() {
                vm["certificate"] = cert;
            } else {
                vm["x509CertificateChain"]["certificates"][0] = cert;
            }
            let r = outcome(a, va.to_string().as_bytes());
            assert!(
                r.is_err(),
                "{} with the certificate of {} was accepted",
                HAPPY[i],
                HAPPY[j]
            );
            println!(
                "{} + certificate of {}: {}",
                HAPPY[i],
                HAPPY[j],
                r.unwrap_err()
            );
        }
    }
}

/// Every single-bit flip of every byte of every happy-path bundle: rejected, or (a no-op)
/// verified identically. About 230,000 verifications: run with
/// `cargo test --release -p kibaship-sigstore --test bad_input -- --ignored`.
#[test]
#[ignore = "exhaustive; minutes in a debug build"]
fn every_json_bit_flip() {
    for (which, case) in cases().iter().enumerate() {
        let mut accepted_identically = 0;
        for i in 0..case.bundle.len() {
            for bit in 0..8 {
                let mut bytes = case.bundle.clone();
                bytes[i] ^= 1 << bit;
                if let Ok(result) = outcome(case, &bytes) {
                    let same = result == case.expected
                        || (case.expected.bundle_version == BundleVersion::V0_1
                            && result == v01_without_proof(&case.expected));
                    assert!(
                        same,
                        "{} byte {i} bit {bit}: accepted with {result:?}",
                        HAPPY[which]
                    );
                    accepted_identically += 1;
                }
            }
        }
        println!(
            "{}: {} flips, {accepted_identically} accepted identically (no-ops)",
            HAPPY[which],
            case.bundle.len() * 8
        );
    }
}

fn leaf_der() -> Vec<u8> {
    STANDARD
        .decode(
            happy_v03()["verificationMaterial"]["certificate"]["rawBytes"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Certificates with bytes overwritten, cut short or spliced never panic the parser.
    #[test]
    fn mutated_certificates_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = leaf_der();
        for (i, b) in &edits {
            let at = i.index(der.len());
            der[at] = *b;
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        let _ = kibaship_sigstore::Certificate::from_der(&der);
    }

    /// Arbitrary bytes as a bundle or a trusted root are errors, never panics.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(Bundle::from_json(&bytes).is_err());
        let _ = TrustedRoot::from_json(&bytes);
        let _ = kibaship_sigstore::Certificate::from_der(&bytes);
    }
}
