//! Untrusted trivy reports, gate policies and ignore files never panic; a rejection names the
//! document it is about and what was wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::{GateError, IgnoreFile, Policy, Report, TrivyGate, stream};
use proptest::prelude::*;

const REPORT: &str = include_str!("../../../testdata/trivy/alpine-310.json.golden");
const POLICY: &str = include_str!("../../../policies/gate/strict.yaml");
const IGNORE_YAML: &str = include_str!("../../../testdata/trivy/trivyignore.example.yaml");
const IGNORE_LINES: &str = include_str!("../../../testdata/trivy/trivyignore.example");

/// A real input with one byte replaced, one byte removed or cut short.
fn mutated(base: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (0..len, any::<u8>(), 0..3u8).prop_map(move |(at, byte, how)| {
        let mut bytes = base.as_bytes().to_vec();
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

fn gate() -> TrivyGate {
    let policy = Policy::from_yaml("version: 1\nfail-on-severity: low\n", "policy.yaml").unwrap();
    TrivyGate::new(policy, Vec::new(), time::OffsetDateTime::UNIX_EPOCH).unwrap()
}

/// Both report readers; each error must name the trivy report.
fn check_report(bytes: &[u8]) -> Result<(), TestCaseError> {
    let gate = gate();
    let whole = Report::from_slice(bytes);
    if let Err(e) = &whole {
        prop_assert!(e.to_string().starts_with("trivy report"), "{e}");
    }
    let mut evaluation = gate.start();
    let streamed = stream::read_report_in_chunks(bytes, 5, |r| evaluation.add_result(r));
    if let Err(e) = &streamed {
        prop_assert!(e.to_string().contains("trivy report"), "{e}");
    }
    // What the whole-document parser accepts, the streaming reader accepts too (it reads the same format).
    if whole.is_ok() {
        prop_assert!(streamed.is_ok(), "streamed: {:?}", streamed.err());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_refused_as_a_trivy_report(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_report(&bytes)?;
    }

    #[test]
    fn mutated_reports_are_read_or_refused_by_name(bytes in mutated(REPORT)) {
        check_report(&bytes)?;
    }

    #[test]
    fn mutated_policies_are_read_or_refused_by_name(bytes in mutated(POLICY)) {
        let text = String::from_utf8_lossy(&bytes);
        match Policy::from_yaml(&text, "strict.yaml") {
            Ok(policy) => { let _ = TrivyGate::new(policy, Vec::new(), time::OffsetDateTime::UNIX_EPOCH); }
            Err(e) => {
                prop_assert!(matches!(e, GateError::PolicySyntax { .. } | GateError::PolicyInvalid(_) | GateError::PolicyException { .. }), "{e:?}");
                prop_assert!(e.to_string().starts_with("gate policy"), "{e}");
            }
        }
    }

    #[test]
    fn arbitrary_policies_are_refused_by_name(text in "\\PC{0,120}") {
        if let Err(e) = Policy::from_yaml(&text, "p.yaml") {
            prop_assert!(e.to_string().starts_with("gate policy"), "{e}");
        }
    }

    #[test]
    fn mutated_yaml_ignore_files_name_the_file(bytes in mutated(IGNORE_YAML)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(e) = IgnoreFile::parse(".trivyignore.yaml", &text) {
            prop_assert!(e.to_string().starts_with("ignore file .trivyignore.yaml: "), "{e}");
        }
    }

    #[test]
    fn mutated_line_ignore_files_warn_about_lines_they_skip(bytes in mutated(IGNORE_LINES)) {
        let text = String::from_utf8_lossy(&bytes);
        let file = IgnoreFile::parse(".trivyignore", &text).expect("the line format never fails");
        for warning in &file.warnings {
            prop_assert!(warning.contains(".trivyignore"), "{warning}");
        }
    }
}

#[test]
fn an_empty_report_and_a_v1_array_are_named() {
    assert_eq!(
        Report::from_slice(b"  \n").unwrap_err().to_string(),
        "trivy report is empty"
    );
    assert!(
        Report::from_slice(b"[]")
            .unwrap_err()
            .to_string()
            .contains("SchemaVersion 1 layout")
    );
}
