//! Limits on the gate's own inputs (policy, ignore files): file size, and the total number of
//! path-pattern alternatives one file may expand to. Each refusal names the file and the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::io::Write;

use kibaship_gate::{
    GateError, IgnoreFile, MAX_INPUT_FILE_BYTES, MAX_PATTERNS_PER_FILE, Policy, read_bounded,
};

#[test]
fn read_bounded_refuses_a_file_over_the_limit_naming_it() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&[b'#'; 101]).unwrap();
    let name = file.path().display().to_string();
    let err = read_bounded(file.path(), 100).unwrap_err();
    assert!(
        matches!(err, GateError::InputTooLarge { limit: 100, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&name) && message.contains("100 bytes"),
        "{message}"
    );
    assert_eq!(read_bounded(file.path(), 101).unwrap().len(), 101);
}

#[test]
fn read_bounded_stops_reading_an_endless_input() {
    // /dev/zero never ends: only `limit + 1` bytes are read before the refusal.
    let err = read_bounded(std::path::Path::new("/dev/zero"), 1 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("/dev/zero is larger than 1048576 bytes"),
        "{err}"
    );
}

#[test]
fn read_bounded_names_missing_and_non_utf8_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("policy.yaml");
    let err = read_bounded(&missing, 100).unwrap_err();
    assert!(err.to_string().contains("policy.yaml"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, b"version: 1\n\xff\n").unwrap();
    let err = read_bounded(&bad, 100).unwrap_err().to_string();
    assert!(err.contains("bad.yaml: byte 11: not valid UTF-8"), "{err}");
}

/// `{a,b}` ten times: 1,024 alternatives, the most one pattern may have.
fn widest_pattern() -> String {
    "{a,b}".repeat(10)
}

#[test]
fn policy_patterns_are_bounded_per_file() {
    let exceptions = MAX_PATTERNS_PER_FILE / 1024 + 1;
    let mut policy = String::from("version: 1\nfail-on-severity: high\nexceptions:\n");
    for i in 0..exceptions {
        policy.push_str(&format!(
            "  - id: CVE-{i}\n    paths: [\"{}\"]\n    reason: r\n",
            widest_pattern()
        ));
    }
    let err = Policy::from_yaml(&policy, "big-policy.yaml").unwrap_err();
    assert!(matches!(err, GateError::PatternBudget { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("big-policy.yaml: exceptions[{}]", exceptions - 1))
            && message.contains("more than 100000 alternatives in total"),
        "{message}"
    );
    // One exception fewer fits.
    let (fits, _) = policy.rsplit_once("  - id:").unwrap();
    assert!(Policy::from_yaml(fits, "policy.yaml").is_ok());
}

#[test]
fn ignore_file_patterns_are_bounded_per_file() {
    let mut yaml = String::from("vulnerabilities:\n");
    for i in 0..MAX_PATTERNS_PER_FILE / 1024 + 1 {
        yaml.push_str(&format!(
            "  - id: CVE-{i}\n    paths: [\"{}\"]\n",
            widest_pattern()
        ));
    }
    let err = IgnoreFile::parse(".trivyignore.yaml", &yaml).unwrap_err();
    assert!(matches!(err, GateError::PatternBudget { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(".trivyignore.yaml: vulnerabilities[97]"),
        "{err}"
    );
}

/// The parsers refuse a text above the cap too, whoever read it.
#[test]
fn parsers_refuse_a_text_over_the_cap_before_parsing() {
    let mut text = String::from("version: 1\nfail-on-severity: high\n");
    let padding = usize::try_from(MAX_INPUT_FILE_BYTES).unwrap() + 1 - text.len();
    text.push_str(&"#".repeat(padding));
    let err = Policy::from_yaml(&text, "policy.yaml").unwrap_err();
    assert!(matches!(err, GateError::InputTooLarge { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("policy.yaml is larger than 4194304 bytes"),
        "{err}"
    );
    for name in [".trivyignore", ".trivyignore.yaml"] {
        let err = IgnoreFile::parse(name, &text).unwrap_err();
        assert!(
            matches!(err, GateError::InputTooLarge { .. }),
            "{name}: {err:?}"
        );
    }
    text.pop();
    assert!(Policy::from_yaml(&text, "policy.yaml").is_ok());
}
