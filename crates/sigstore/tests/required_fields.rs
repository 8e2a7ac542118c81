//! Required fields, table-driven over real trusted roots and bundles: every field of every real document is
//! classified by the Sigstore protobuf-specs (and the proto3 JSON mapping), then deleted in turn.
//!
//! - A **required** field (a message the specs need, or a `bytes`/`string`/enum field that must not hold its
//!   default): deleting it, or setting it to its protobuf default (`""`, `*_UNSPECIFIED`), is refused and the error
//!   names the field's path, e.g. `tlogs[0].publicKey.validFor.start`.
//! - A **defaulted** scalar (`logIndex`, `integratedTime`, ...): the proto3 JSON mapping omits a zero, so deleting
//!   it reads as 0; the bundle then parses, and verifies only if the value was 0 (no false accept).
//! - An **optional** or repeated field: deleting it never panics; whatever verifies still verifies for the right
//!   reasons (covered by `bad_input.rs`).
//!
//! A field no table classifies fails the test, so a new field must be classified before it is read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use kibaship_sigstore::{
    ArtifactPolicy, Bundle, BundleError, CertificateIdentity, IdentityPolicy, PublicKey,
    TrustedRoot, TrustedRootError, Verifier,
};
use serde_json::Value;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// How a field is treated when it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Refused; the error names this path (or the override).
    Required(Option<&'static str>),
    /// Reads as its proto3 default (0).
    Defaulted,
    /// May be absent.
    Optional,
}
use Class::{Defaulted, Optional, Required};

/// A field's path with array indices replaced by `[]`, e.g. `tlogs[].publicKey.validFor.start`.
fn pattern(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

/// The path as error messages spell it, e.g. `tlogs[0].publicKey.validFor.start`.
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every object member of `v`, by path.
fn members(v: &Value, path: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(Step::Key(k.clone()));
                out.push(path.clone());
                members(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                path.push(Step::Index(i));
                members(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn parent_mut<'a>(v: &'a mut Value, path: &[Step]) -> &'a mut Value {
    path[..path.len() - 1].iter().fold(v, |v, step| match step {
        Step::Key(k) => &mut v[k.as_str()],
        Step::Index(i) => &mut v[*i],
    })
}

fn last_key(path: &[Step]) -> &str {
    match path.last() {
        Some(Step::Key(k)) => k,
        _ => unreachable!("members are object keys"),
    }
}

fn deleted(doc: &Value, path: &[Step]) -> Value {
    let mut v = doc.clone();
    parent_mut(&mut v, path)
        .as_object_mut()
        .unwrap()
        .remove(last_key(path));
    v
}

/// The field at `path` set to its protobuf default, if it is a string (`""`, or the enum's zero value).
fn defaulted(doc: &Value, path: &[Step], zero: &str) -> Option<Value> {
    let mut v = doc.clone();
    let slot = &mut parent_mut(&mut v, path)[last_key(path)];
    if !slot.is_string() {
        return None;
    }
    *slot = Value::from(zero);
    Some(v)
}

// ---------------------------------------------------------------------------------------------------------------
// Trusted roots

fn root_class(pattern: &str) -> Option<Class> {
    let log_or_ct = |rest: &str| -> Option<Class> {
        Some(match rest {
            "hashAlgorithm"
            | "logId"
            | "logId.keyId"
            | "publicKey"
            | "publicKey.rawBytes"
            | "publicKey.keyDetails"
            | "publicKey.validFor"
            | "publicKey.validFor.start" => Required(None),
            "baseUrl"
            | "publicKey.validFor.end"
            | "checkpointKeyId"
            | "checkpointKeyId.keyId"
            | "operator" => Optional,
            _ => return None,
        })
    };
    let authority = |rest: &str| -> Option<Class> {
        Some(match rest {
            "certChain"
            | "certChain.certificates"
            | "certChain.certificates[].rawBytes"
            | "validFor"
            | "validFor.start" => Required(None),
            "uri"
            | "subject"
            | "subject.organization"
            | "subject.commonName"
            | "operator"
            | "validFor.end" => Optional,
            _ => return None,
        })
    };
    match pattern {
        "mediaType" => Some(Required(None)),
        "tlogs" | "ctlogs" | "certificateAuthorities" | "timestampAuthorities" => Some(Optional),
        _ => {
            if let Some(rest) = pattern
                .strip_prefix("tlogs[].")
                .or_else(|| pattern.strip_prefix("ctlogs[]."))
            {
                log_or_ct(rest)
            } else if let Some(rest) = pattern
                .strip_prefix("certificateAuthorities[].")
                .or_else(|| pattern.strip_prefix("timestampAuthorities[]."))
            {
                authority(rest)
            } else {
                None
            }
        }
    }
}

/// The protobuf zero value of a root field that is a string in JSON.
fn root_zero(pattern: &str) -> &'static str {
    if pattern.ends_with("hashAlgorithm") {
        "HASH_ALGORITHM_UNSPECIFIED"
    } else if pattern.ends_with("keyDetails") {
        "PUBLIC_KEY_DETAILS_UNSPECIFIED"
    } else {
        ""
    }
}

/// Every real trusted root in testdata (distinct contents).
fn real_roots() -> Vec<(String, Value)> {
    let mut paths = vec![
        testdata().join("sigstore/trusted-roots/production-trusted_root.json"),
        testdata().join("sigstore/trusted-roots/staging-trusted_root.json"),
        testdata().join("cosign/bundle-referrer/trusted_root_pgi.json"),
        testdata().join("sigstore/sigstore-go/scaffolding.json"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("trusted_root/public-good.json"),
    ];
    let mut conformance: Vec<PathBuf> = std::fs::read_dir(testdata().join("sigstore/conformance"))
        .unwrap()
        .map(|e| e.unwrap().path().join("trusted_root.json"))
        .filter(|p| p.exists())
        .collect();
    conformance.sort();
    paths.extend(conformance);
    paths.extend(cosign_fixture_roots());
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for p in paths {
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        if !seen.contains(&v) {
            seen.push(v.clone());
            out.push((p.display().to_string(), v));
        }
    }
    out
}

/// Trusted roots of the private Sigstore stacks the cosign fixtures were made with.
fn cosign_fixture_roots() -> Vec<PathBuf> {
    let dir = testdata().join("sigstore/cosign-fresh-log");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.map(|e| e.unwrap().path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().ends_with("trusted_root.json"))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn root_field_error(json: &Value) -> Result<String, String> {
    match TrustedRoot::from_json(json.to_string().as_bytes()) {
        Ok(_) => Err("accepted".into()),
        Err(TrustedRootError::Field { field, .. }) => Ok(field),
        Err(e) => Err(format!("refused without a field path: {e}")),
    }
}

#[test]
fn every_required_trusted_root_field_is_required_by_path() {
    let roots = real_roots();
    assert!(roots.len() >= 10, "{} distinct roots", roots.len());
    let mut required = 0;
    let mut failures = Vec::new();
    for (name, root) in &roots {
        TrustedRoot::from_json(root.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{name} is accepted as it is: {e}"));
        let mut all = Vec::new();
        members(root, &mut Vec::new(), &mut all);
        for path in all {
            let pat = pattern(&path);
            let class = root_class(&pat)
                .unwrap_or_else(|| panic!("{name}: field `{pat}` is not classified"));
            let expected = dotted(&path);
            match class {
                Required(over) => {
                    let expected = over.map_or(expected, str::to_string);
                    required += 1;
                    let mut mutants = vec![("deleted", deleted(root, &path))];
                    if let Some(v) = defaulted(root, &path, root_zero(&pat)) {
                        mutants.push(("set to its default", v));
                    }
                    for (how, mutant) in mutants {
                        match root_field_error(&mutant) {
                            Ok(field) if field == expected => {}
                            other => failures.push(format!(
                                "{name}: `{expected}` {how}: expected a refusal naming it, got {other:?}"
                            )),
                        }
                    }
                }
                Defaulted | Optional => {
                    if let Err(e) =
                        TrustedRoot::from_json(deleted(root, &path).to_string().as_bytes())
                    {
                        failures.push(format!(
                            "{name}: optional `{expected}` deleted: refused: {e}"
                        ));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        required > 500,
        "only {required} required fields were deleted"
    );
}

// ---------------------------------------------------------------------------------------------------------------
// Bundles

fn bundle_class(pattern: &str, v01: bool) -> Option<Class> {
    const ENTRY: &str = "verificationMaterial.tlogEntries[].";
    if let Some(rest) = pattern.strip_prefix(ENTRY) {
        return Some(match rest {
            "logIndex" | "integratedTime" | "inclusionProof.logIndex" => Defaulted,
            "logId"
            | "logId.keyId"
            | "kindVersion"
            | "kindVersion.kind"
            | "kindVersion.version"
            | "canonicalizedBody"
            | "inclusionPromise.signedEntryTimestamp"
            | "inclusionProof.rootHash"
            | "inclusionProof.treeSize" => Required(None),
            "inclusionPromise" if v01 => Required(None),
            "inclusionPromise" => Optional,
            "inclusionProof"
            | "inclusionProof.checkpoint"
            | "inclusionProof.checkpoint.envelope"
                if !v01 =>
            {
                Required(None)
            }
            "inclusionProof"
            | "inclusionProof.checkpoint"
            | "inclusionProof.checkpoint.envelope" => Optional,
            // Repeated: an empty list is a valid proto3 value; the proof then fails unless the tree has one leaf.
            "inclusionProof.hashes" => Optional,
            _ => return None,
        });
    }
    Some(match pattern {
        "mediaType"
        | "verificationMaterial"
        | "verificationMaterial.tlogEntries"
        | "verificationMaterial.certificate.rawBytes"
        | "verificationMaterial.x509CertificateChain.certificates"
        | "verificationMaterial.x509CertificateChain.certificates[].rawBytes"
        | "verificationMaterial.timestampVerificationData.rfc3161Timestamps[].signedTimestamp"
        | "messageSignature.signature"
        | "messageSignature.messageDigest.algorithm"
        | "messageSignature.messageDigest.digest"
        | "dsseEnvelope.payload"
        | "dsseEnvelope.payloadType"
        | "dsseEnvelope.signatures"
        | "dsseEnvelope.signatures[].sig" => Required(None),
        // The `oneof content` of the verification material and of the bundle.
        "verificationMaterial.certificate"
        | "verificationMaterial.x509CertificateChain"
        | "verificationMaterial.publicKey" => Required(Some("verificationMaterial")),
        "messageSignature" | "dsseEnvelope" => Required(Some("messageSignature")),
        "verificationMaterial.publicKey.hint"
        | "verificationMaterial.timestampVerificationData"
        | "verificationMaterial.timestampVerificationData.rfc3161Timestamps"
        | "messageSignature.messageDigest"
        | "dsseEnvelope.signatures[].keyid" => Optional,
        _ => return None,
    })
}

fn bundle_zero(pattern: &str) -> &'static str {
    if pattern.ends_with("messageDigest.algorithm") {
        "HASH_ALGORITHM_UNSPECIFIED"
    } else {
        ""
    }
}

/// A real bundle that verifies, with what it verifies against.
struct Case {
    name: String,
    bundle: Value,
    verifier: Verifier,
    artifact: Vec<u8>,
    policy: IdentityPolicy,
}

impl Case {
    fn verifies(&self, bundle: &Value) -> Result<(), String> {
        let b = Bundle::from_json(bundle.to_string().as_bytes()).map_err(|e| e.to_string())?;
        self.verifier
            .verify(&b, ArtifactPolicy::Bytes(&self.artifact), &self.policy)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned())
}

/// Every passing sigstore-conformance case, and the bundles the real cosign made (`cosign-fresh-log/`).
fn real_bundles() -> Vec<Case> {
    let base = testdata().join("sigstore/conformance");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.to_string_lossy().ends_with("_fail"))
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for dir in dirs {
        let root = if dir.join("trusted_root.json").exists() {
            dir.join("trusted_root.json")
        } else {
            testdata().join("sigstore/trusted-roots/production-trusted_root.json")
        };
        let artifact = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            base.join("a.txt")
        };
        let policy = if dir.join("key.pub").exists() {
            IdentityPolicy::Key(
                PublicKey::from_pem(&std::fs::read_to_string(dir.join("key.pub")).unwrap())
                    .unwrap(),
            )
        } else {
            IdentityPolicy::Certificate(CertificateIdentity::exact(
                read_trimmed(&dir.join("identity")).unwrap_or_else(|| DEFAULT_IDENTITY.into()),
                read_trimmed(&dir.join("issuer")).unwrap_or_else(|| DEFAULT_ISSUER.into()),
            ))
        };
        cases.push(Case {
            name: dir.file_name().unwrap().to_string_lossy().into_owned(),
            bundle: serde_json::from_slice(
                &std::fs::read(dir.join("bundle.sigstore.json")).unwrap(),
            )
            .unwrap(),
            verifier: Verifier::new(TrustedRoot::from_json(&std::fs::read(root).unwrap()).unwrap()),
            artifact: std::fs::read(artifact).unwrap(),
            policy,
        });
    }
    cases.extend(cosign_fresh_log_cases());
    cases
}

/// The bundles `cosign sign-blob` made against a fresh private Sigstore (see `testdata/SOURCES.md`): each
/// `<name>.sigstore.json` with `<name>.trusted_root.json` and either `<name>.pub` (keyed) or `<name>.identity` and
/// `<name>.issuer` (keyless); the artifact is `artifact.txt`.
fn cosign_fresh_log_cases() -> Vec<Case> {
    let dir = testdata().join("sigstore/cosign-fresh-log");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".sigstore.json").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let file = |ext: &str| dir.join(format!("{n}.{ext}"));
            let policy = if file("pub").exists() {
                IdentityPolicy::Key(
                    PublicKey::from_pem(&std::fs::read_to_string(file("pub")).unwrap()).unwrap(),
                )
            } else {
                IdentityPolicy::Certificate(CertificateIdentity::exact(
                    read_trimmed(&file("identity")).unwrap(),
                    read_trimmed(&file("issuer")).unwrap(),
                ))
            };
            Case {
                name: format!("cosign-fresh-log/{n}"),
                bundle: serde_json::from_slice(&std::fs::read(file("sigstore.json")).unwrap())
                    .unwrap(),
                verifier: Verifier::new(
                    TrustedRoot::from_json(&std::fs::read(file("trusted_root.json")).unwrap())
                        .unwrap(),
                ),
                artifact: std::fs::read(dir.join("artifact.txt")).unwrap(),
                policy,
            }
        })
        .collect()
}

fn bundle_field_error(json: &Value) -> Result<String, String> {
    match Bundle::from_json(json.to_string().as_bytes()) {
        Ok(_) => Err("accepted".into()),
        Err(BundleError::Field { field, .. } | BundleError::Certificate { field, .. }) => Ok(field),
        Err(BundleError::UnknownVersion(_)) => Ok("mediaType".into()),
        Err(e) => Err(format!("refused without a field path: {e}")),
    }
}

/// Whether the member at `path` holds a zero (or is one of the fields Rekor v2 leaves out).
fn is_zero(v: &Value) -> bool {
    matches!(v.as_str(), Some("0")) || v.as_i64() == Some(0)
}

#[test]
fn every_required_bundle_field_is_required_by_path() {
    let cases = real_bundles();
    assert!(cases.len() >= 16, "{} bundles", cases.len());
    let mut required = 0;
    let mut failures = Vec::new();
    for case in &cases {
        case.verifies(&case.bundle)
            .unwrap_or_else(|e| panic!("{} verifies as it is: {e}", case.name));
        let v01 = case.bundle["mediaType"]
            .as_str()
            .unwrap()
            .ends_with("version=0.1");
        let mut all = Vec::new();
        members(&case.bundle, &mut Vec::new(), &mut all);
        for path in all {
            let pat = pattern(&path);
            let class = bundle_class(&pat, v01)
                .unwrap_or_else(|| panic!("{}: field `{pat}` is not classified", case.name));
            let expected = dotted(&path);
            let mutant = deleted(&case.bundle, &path);
            let has_timestamps = case.bundle["verificationMaterial"]["timestampVerificationData"]
                ["rfc3161Timestamps"]
                .as_array()
                .is_some_and(|t| !t.is_empty());
            if pat == "verificationMaterial.tlogEntries" && has_timestamps && !v01 {
                // A timestamp-only bundle parses; the default verifier refuses it (issue 20 item 4b).
                required += 1;
                let mut emptied = case.bundle.clone();
                emptied["verificationMaterial"]["tlogEntries"] = Value::Array(Vec::new());
                for (how, mutant) in [("deleted", mutant), ("set to its default", emptied)] {
                    match case.verifies(&mutant) {
                        Err(e) if e.contains("no transparency-log entry") => {}
                        other => failures.push(format!(
                            "{}: `{expected}` {how} (timestamps kept): expected the verifier to refuse it as timestamp-only, got {other:?}",
                            case.name
                        )),
                    }
                }
                continue;
            }
            match class {
                Required(over) => {
                    let expected = over.map_or(expected, str::to_string);
                    required += 1;
                    let mut mutants = vec![("deleted", mutant)];
                    if let Some(v) = defaulted(&case.bundle, &path, bundle_zero(&pat)) {
                        mutants.push(("set to its default", v));
                    }
                    for (how, mutant) in mutants {
                        match bundle_field_error(&mutant) {
                            Ok(field) if field == expected => {}
                            other => failures.push(format!(
                                "{}: `{expected}` {how}: expected a refusal naming it, got {other:?}",
                                case.name
                            )),
                        }
                    }
                }
                Defaulted => {
                    let original = {
                        let parent = parent_mut(&mut case.bundle.clone(), &path).clone();
                        parent[last_key(&path)].clone()
                    };
                    if let Err(e) = Bundle::from_json(mutant.to_string().as_bytes()) {
                        failures.push(format!(
                            "{}: `{expected}` deleted (proto3 default 0): refused: {e}",
                            case.name
                        ));
                    } else if !is_zero(&original) && case.verifies(&mutant).is_ok() {
                        failures.push(format!(
                            "{}: `{expected}` deleted (was {original}): still verifies",
                            case.name
                        ));
                    }
                }
                Optional => {
                    // Never a panic; a verdict either way (bad_input.rs checks what an accepted one says).
                    let _ = case.verifies(&mutant);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        required > 200,
        "only {required} required fields were deleted"
    );
}

/// The reported false accept: a trusted root whose log key has a `validFor` without `start` was read as "valid
/// since forever", and a bundle verified against it.
#[test]
fn a_log_key_validity_without_start_is_a_malformed_root() {
    let dir = testdata().join("sigstore/conformance");
    let bundle = Bundle::from_json(
        &std::fs::read(dir.join("happy-path-v0.3/bundle.sigstore.json")).unwrap(),
    )
    .unwrap();
    let artifact = std::fs::read(dir.join("a.txt")).unwrap();
    let policy =
        IdentityPolicy::Certificate(CertificateIdentity::exact(DEFAULT_IDENTITY, DEFAULT_ISSUER));
    let root: Value = serde_json::from_slice(
        &std::fs::read(testdata().join("sigstore/trusted-roots/production-trusted_root.json"))
            .unwrap(),
    )
    .unwrap();
    Verifier::new(TrustedRoot::from_json(root.to_string().as_bytes()).unwrap())
        .verify(&bundle, ArtifactPolicy::Bytes(&artifact), &policy)
        .expect("verifies with the real root");
    let logs = root["tlogs"].as_array().unwrap().len();
    for i in 0..logs {
        let mut mutant = root.clone();
        mutant["tlogs"][i]["publicKey"]["validFor"]
            .as_object_mut()
            .unwrap()
            .remove("start");
        let e = TrustedRoot::from_json(mutant.to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("tlogs[{i}] without validFor.start accepted"));
        assert_eq!(
            e.to_string(),
            format!("trusted root field `tlogs[{i}].publicKey.validFor.start`: missing"),
        );
    }
}

/// Key details must describe the key; a well-formed log we cannot use (another Merkle hash, a key type we do not
/// verify) is skipped, listed, and verifies nothing.
#[test]
fn log_key_details_and_hash_algorithm() {
    let root: Value = serde_json::from_slice(
        &std::fs::read(testdata().join("sigstore/trusted-roots/production-trusted_root.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        root["tlogs"][0]["publicKey"]["keyDetails"],
        "PKIX_ECDSA_P256_SHA_256"
    );
    let mut wrong = root.clone();
    wrong["tlogs"][0]["publicKey"]["keyDetails"] = "PKIX_ED25519".into();
    assert_eq!(
        root_field_error(&wrong),
        Ok("tlogs[0].publicKey.keyDetails".to_string())
    );
    let mut reversed = root.clone();
    reversed["tlogs"][0]["publicKey"]["validFor"]["end"] = "2001-01-01T00:00:00Z".into();
    assert_eq!(
        root_field_error(&reversed),
        Ok("tlogs[0].publicKey.validFor.end".to_string())
    );
    for (field, value, skipped) in [
        ("hashAlgorithm", "SHA2_384", "Merkle tree hash"),
        ("keyDetails", "ML_DSA_65", "not supported"),
        ("keyDetails", "PKIX_FUTURE_ALGORITHM", "unknown key details"),
    ] {
        let mut v = root.clone();
        if field == "hashAlgorithm" {
            v["tlogs"][0][field] = value.into();
        } else {
            v["tlogs"][0]["publicKey"][field] = value.into();
        }
        let parsed = TrustedRoot::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(
            parsed.tlogs.len() + 1,
            root["tlogs"].as_array().unwrap().len()
        );
        assert!(
            parsed
                .skipped
                .iter()
                .any(|s| s.starts_with("tlogs[0]") && s.contains(skipped)),
            "{:?}",
            parsed.skipped
        );
    }
}

/// The proto3 JSON mapping's other spellings decide the same: enums as numbers, `null` for an empty list.
#[test]
fn enum_numbers_and_null_lists_read_as_protojson_does() {
    let root_path = testdata().join("sigstore/trusted-roots/production-trusted_root.json");
    let mut root: Value = serde_json::from_slice(&std::fs::read(&root_path).unwrap()).unwrap();
    let expected = TrustedRoot::from_json(root.to_string().as_bytes()).unwrap();
    for kind in ["tlogs", "ctlogs"] {
        for log in root[kind].as_array_mut().unwrap() {
            assert_eq!(log["hashAlgorithm"], "SHA2_256");
            log["hashAlgorithm"] = 1.into();
            let number = match log["publicKey"]["keyDetails"].as_str().unwrap() {
                "PKIX_ECDSA_P256_SHA_256" => 5,
                "PKIX_ED25519" => 7,
                "PKCS1_RSA_PKCS1V5" => 1,
                other => panic!("{other}"),
            };
            log["publicKey"]["keyDetails"] = number.into();
        }
    }
    root["timestampAuthorities"] = Value::Null;
    let numbered = TrustedRoot::from_json(root.to_string().as_bytes()).unwrap();
    assert_eq!(numbered.tlogs.len(), expected.tlogs.len());
    assert_eq!(numbered.ctlogs.len(), expected.ctlogs.len());
    assert!(numbered.skipped.is_empty(), "{:?}", numbered.skipped);
    root["tlogs"][0]["hashAlgorithm"] = 42.into();
    assert_eq!(
        root_field_error(&root),
        Ok("tlogs[0].hashAlgorithm".to_string())
    );

    let cases = real_bundles();
    let case = cases.iter().find(|c| c.name == "happy-path-v0.3").unwrap();
    let mut bundle = case.bundle.clone();
    assert_eq!(
        bundle["messageSignature"]["messageDigest"]["algorithm"],
        "SHA2_256"
    );
    bundle["messageSignature"]["messageDigest"]["algorithm"] = 1.into();
    case.verifies(&bundle).unwrap();
    bundle["messageSignature"]["messageDigest"]["algorithm"] = 0.into();
    assert_eq!(
        bundle_field_error(&bundle),
        Ok("messageSignature.messageDigest.algorithm".to_string())
    );
    // Entry 0 of a fresh Rekor v2 log has no proof hashes: `null` reads as the empty list.
    if let Some(case) = cases
        .iter()
        .find(|c| c.name == "cosign-fresh-log/rekor-v2-keyless")
    {
        let mut bundle = case.bundle.clone();
        bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] = Value::Null;
        case.verifies(&bundle).unwrap();
    }
}
