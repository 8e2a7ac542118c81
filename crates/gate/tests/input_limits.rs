//! Limits on the gate's own inputs (policy, ignore files): file size, and the total number of
//! path-pattern alternatives one file may expand to. Each refusal names the file and the limit.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::{GateError, IgnoreFile, MAX_INPUT_FILE_BYTES, MAX_PATTERNS_PER_FILE, Policy};

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
