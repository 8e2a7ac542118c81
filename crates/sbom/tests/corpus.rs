//! The SBOM corpora (testdata/sbom, copied from the CycloneDX specification, bom-examples, spdx-examples,
//! spdx-tools and trivy; see testdata/SOURCES.md): every document gets the outcome its source gives it, and every
//! invalid one is refused naming the failing value's JSON pointer.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::{Path, PathBuf};

use kibaship_sbom::{Format, SbomError, validate};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sbom")
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "{dir} is empty");
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The JSON pointer (and a word of the message) each invalid specification document must be refused with, by
/// its name without the `-1.x.json` suffix.
const INVALID: [(&str, &str, &str); 22] = [
    ("invalid-bomformat", "/bomFormat", "is not one of"),
    (
        "invalid-component-ref",
        "bom-ref",
        "shorter than 1 character",
    ),
    (
        "invalid-component-swid",
        "/components/0/swid",
        "\"tagId\" is a required property",
    ),
    (
        "invalid-dependency",
        "/dependencies/0",
        "\"ref\" is a required property",
    ),
    (
        "invalid-empty-component",
        "/components/0",
        "\"name\" is a required property",
    ),
    (
        "invalid-hash-alg",
        "/components/0/hashes/0/alg",
        "\"FOO\" is not one of",
    ),
    (
        "invalid-hash-sha1",
        "/components/0/hashes/1/content",
        "does not match",
    ),
    (
        "invalid-hash-sha256",
        "/components/0/hashes/2/content",
        "does not match",
    ),
    (
        "invalid-hash-sha512",
        "/components/0/hashes/3/content",
        "does not match",
    ),
    ("invalid-license-choice", "/components/0/licenses", "oneOf"),
    (
        "invalid-license-declared-concluded-mix",
        "/components/0/licenses",
        "oneOf",
    ),
    (
        "invalid-license-encoding",
        "/components/0/licenses",
        "oneOf",
    ),
    ("invalid-license-id", "/components/0/licenses", "oneOf"),
    (
        "invalid-license-missing-id-and-name",
        "/components/0/licenses",
        "oneOf",
    ),
    ("invalid-metadata-license", "/metadata/licenses", "oneOf"),
    (
        "invalid-metadata-timestamp",
        "/metadata/timestamp",
        "is not a \"date-time\"",
    ),
    (
        "invalid-missing-component-type",
        "/components/0",
        "\"type\" is a required property",
    ),
    (
        "invalid-patch-type",
        "/components/0/pedigree/patches/0/type",
        "is not one of",
    ),
    (
        "invalid-properties",
        "/components/0/properties/0",
        "\"name\" is a required property",
    ),
    ("invalid-scope", "/components/0/scope", "is not one of"),
    ("invalid-serialnumber", "/serialNumber", "does not match"),
    (
        "invalid-service-data",
        "/services/0/data/0/flow",
        "is not one of",
    ),
];

fn expected_invalid(file: &str) -> (&'static str, &'static str) {
    let stem = file.rsplit_once('-').map(|(stem, _)| stem).unwrap_or(file);
    INVALID
        .iter()
        .find(|(n, _, _)| *n == stem)
        .map(|(_, pointer, words)| (*pointer, *words))
        .unwrap_or_else(|| panic!("no expectation for {file}"))
}

/// An invalid document is refused as invalid, and one of the violations reported is at `pointer` or inside it
/// (for a pointer without a leading `/`: ends with it) and says `words`.
fn assert_refused_at(
    label: &str,
    bytes: &[u8],
    format: Format,
    version: &str,
    pointer: &str,
    words: &str,
) {
    let Err(err) = validate(bytes) else {
        panic!("{label}: accepted");
    };
    let SbomError::Invalid {
        format: f,
        schema,
        violations,
        ..
    } = &err
    else {
        panic!("{label}: not a schema violation: {err}");
    };
    assert_eq!(*f, format, "{label}");
    assert_eq!(*schema, version, "{label}");
    let hit = violations.first.iter().any(|v| {
        let at = if pointer.starts_with('/') {
            v.pointer == pointer || v.pointer.starts_with(&format!("{pointer}/"))
        } else {
            v.pointer.ends_with(pointer)
        };
        at && (v.message.contains(words) || v.rule.contains(words)) && !v.rule.is_empty()
    });
    assert!(
        hit,
        "{label}: wanted a violation at {pointer} saying {words:?}, got: {err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!("at {}", violations.first[0].pointer)),
        "{text}"
    );
    assert!(text.contains("(schema rule /"), "{text}");
}

#[test]
fn cyclonedx_specification_documents_pass_and_fail_as_upstream_says() {
    let mut counts = (0, 0);
    for version in ["1.5", "1.6"] {
        for f in files(&format!("cyclonedx/spec-validation/{version}")) {
            let file = name(&f);
            let bytes = std::fs::read(&f).unwrap();
            if file.starts_with("valid-") {
                let v = validate(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
                assert_eq!((v.format, v.schema), (Format::CycloneDx, version), "{file}");
                assert_eq!(v.utf8.as_ref(), bytes.as_slice());
                counts.0 += 1;
            } else {
                let (pointer, words) = expected_invalid(&file);
                assert_refused_at(&file, &bytes, Format::CycloneDx, version, pointer, words);
                counts.1 += 1;
            }
        }
    }
    // As MANIFEST.md counts them: 1.5 27 valid / 17 invalid, 1.6 34 / 19.
    assert_eq!(counts, (27 + 34, 17 + 19));
}

/// CycloneDX 1.7 only added to 1.6: the 1.6 specification documents, relabelled 1.7, get the same outcome
/// against the 1.7 schema (with 1.7's `$schema`).
#[test]
fn cyclonedx_1_6_documents_relabelled_1_7_get_the_same_outcome_against_1_7() {
    for f in files("cyclonedx/spec-validation/1.6") {
        let file = name(&f);
        let mut doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        doc["specVersion"] = "1.7".into();
        if doc.get("$schema").is_some() {
            doc["$schema"] = "http://cyclonedx.org/schema/bom-1.7.schema.json".into();
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        // 1.7 lets a component's licenses mix declared and concluded ones, which 1.6 refused.
        if file.starts_with("valid-") || file.starts_with("invalid-license-declared-concluded-mix")
        {
            let v = validate(&bytes).unwrap_or_else(|e| panic!("{file} as 1.7: {e}"));
            assert_eq!(v.schema, "1.7");
        } else {
            let (pointer, words) = expected_invalid(&file);
            assert_refused_at(
                &format!("{file} as 1.7"),
                &bytes,
                Format::CycloneDx,
                "1.7",
                pointer,
                words,
            );
        }
    }
}

#[test]
fn real_cyclonedx_sboms_validate_or_name_their_unsupported_version() {
    let mut seen = Vec::new();
    for f in files("cyclonedx/examples") {
        let file = name(&f);
        let bytes = std::fs::read(&f).unwrap();
        match validate(&bytes) {
            Ok(v) => {
                assert_eq!(v.format, Format::CycloneDx, "{file}");
                seen.push(v.schema);
            }
            Err(e) => {
                // bom-examples' proton-bridge SBOM is CycloneDX 1.2.
                assert!(file.contains("proton-bridge"), "{file}: {e}");
                assert_eq!(
                    e.to_string(),
                    "CycloneDX version 1.2 is not supported (field /specVersion): supported are 1.4, 1.5, 1.6, 1.7"
                );
            }
        }
    }
    // bom-examples are 1.4, trivy's goldens 1.7.
    seen.sort();
    seen.dedup();
    assert_eq!(seen, ["1.4", "1.7"]);
}

#[test]
fn spdx_examples_validate_each_against_their_version_and_trivys_invalid_output_is_refused() {
    let mut versions = Vec::new();
    for dir in ["spdx/examples", "spdx/spdx-tools"] {
        for f in files(dir) {
            let file = name(&f);
            let bytes = std::fs::read(&f).unwrap();
            if file.starts_with("invalid_") {
                // spdx-tools' validator refuses this real trivy output (files without checksums etc.); the
                // SPDX 2.2 schema does too.
                assert_refused_at(
                    &file,
                    &bytes,
                    Format::Spdx,
                    "2.2",
                    "/files/0",
                    "is a required property",
                );
                let err = validate(&bytes).unwrap_err();
                assert!(err.to_string().contains("1000+ violations"), "{err}");
                continue;
            }
            let v = validate(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(v.format, Format::Spdx, "{file}");
            // A 2.2 document that spells PACKAGE-MANAGER passes the 2.3 schema instead of its own.
            match v.version.as_str() {
                "SPDX-2.3" => assert_eq!(v.schema, "2.3", "{file}"),
                "SPDX-2.2" => assert!(["2.2", "2.3"].contains(&v.schema), "{file}"),
                other => panic!("{file}: {other}"),
            }
            if file.contains("UTF-16") {
                // Transcoded to UTF-8: the text is the UTF-8 example's.
                assert!(bytes.starts_with(&[0xFF, 0xFE]));
                assert!(v.utf8.starts_with(b"{"));
                let utf8: serde_json::Value = serde_json::from_slice(&v.utf8).unwrap();
                let reference: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(
                        testdata().join("spdx/spdx-tools/SPDXJSONExample-v2.2.spdx.json"),
                    )
                    .unwrap(),
                )
                .unwrap();
                assert_eq!(utf8["documentNamespace"], reference["documentNamespace"]);
            } else {
                assert_eq!(v.utf8.as_ref(), bytes.as_slice(), "{file}");
            }
            versions.push(v.schema);
        }
    }
    assert!(versions.contains(&"2.2") && versions.contains(&"2.3"));
}

#[test]
fn an_spdx_2_2_document_relabelled_2_3_is_checked_against_2_3() {
    // 2.2 spells the external reference category PACKAGE_MANAGER, 2.3 PACKAGE-MANAGER.
    let bytes =
        std::fs::read(testdata().join("spdx/spdx-tools/SPDXJSONExample-v2.2.spdx.json")).unwrap();
    let text = String::from_utf8(bytes)
        .unwrap()
        .replace("\"SPDX-2.2\"", "\"SPDX-2.3\"");
    assert_refused_at(
        "2.2 example as 2.3",
        text.as_bytes(),
        Format::Spdx,
        "2.3",
        "/packages/2/externalRefs/0/referenceCategory",
        "is not one of",
    );
}
