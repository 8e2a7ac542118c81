//! YAML limits on the policy and ignore files: aliases cannot multiply a file, deep nesting is
//! refused as soon as it is reached, and every YAML error names the file, line and column.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::{GateError, IgnoreFile, MAX_YAML_ALIASES, Policy};

const HEAD: &str = "version: 1\nfail-on-severity: high\n";

fn policy_error(text: &str) -> GateError {
    Policy::from_yaml(text, "policy.yaml").expect_err("refused")
}

/// One anchored exception with `globs` path patterns, then `aliases` references to it.
fn aliased(prefix: &str, entry_key: &str, aliases: usize, globs: usize) -> String {
    let paths: Vec<String> = (0..globs).map(|i| format!("\"dir{i}/**\"")).collect();
    let mut text = format!(
        "{prefix}{entry_key}:\n  - &e\n    id: CVE-2019-0001\n    paths: [{}]\n    reason: r\n",
        paths.join(", ")
    );
    for _ in 0..aliases {
        text.push_str("  - *e\n");
    }
    text
}

#[test]
fn an_alias_bomb_in_the_policy_is_refused_naming_the_limit() {
    // The report's case was 10,000 aliases of an exception with 100 globs (3.6 GB); a
    // smaller one is enough to go over the limit, and this one was accepted before.
    let err = policy_error(&aliased(HEAD, "exceptions", MAX_YAML_ALIASES + 1, 1));
    let message = err.to_string();
    assert!(
        message.starts_with("gate policy policy.yaml: more than 1000 YAML aliases"),
        "{message}"
    );
    assert!(message.contains(" at line "), "{message}");
    let err = policy_error(&aliased(HEAD, "exceptions", 10_000, 100));
    assert!(
        err.to_string().contains("more than 1000 YAML aliases"),
        "{err}"
    );
    // A few aliases are fine.
    let policy = Policy::from_yaml(&aliased(HEAD, "exceptions", 3, 2), "policy.yaml").unwrap();
    assert_eq!(policy.exceptions.len(), 4);
}

#[test]
fn an_alias_bomb_in_an_ignore_file_is_refused_naming_the_file() {
    let text = aliased("", "vulnerabilities", MAX_YAML_ALIASES + 1, 1);
    let err = IgnoreFile::parse("team/.trivyignore.yaml", &text).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("ignore file team/.trivyignore.yaml: more than 1000 YAML aliases"),
        "{message}"
    );
}

#[test]
fn deep_nesting_is_refused_at_the_depth_limit() {
    // 100,000 levels took 56 s of CPU to refuse with serde_yaml: the limit now holds while
    // parsing, so the refusal comes at level 33.
    let message = policy_error(&format!("{HEAD}exceptions: {}", "[".repeat(100_000))).to_string();
    assert!(
        message.starts_with("gate policy policy.yaml: YAML nested deeper than 32 levels"),
        "{message}"
    );
    // Under a key the gate ignores (with a warning) the nesting is still bounded.
    for deep in [
        format!("unknown: {}", "[".repeat(100_000)),
        format!("unknown: {}", "{a: ".repeat(100_000)),
        format!(
            "unknown:\n{}",
            (0..2_000)
                .map(|i| format!("{}- \n", " ".repeat(2 * i)))
                .collect::<String>()
        ),
    ] {
        let message = IgnoreFile::parse(".trivyignore.yaml", &deep)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("ignore file .trivyignore.yaml: YAML nested deeper than 32 levels"),
            "{message}"
        );
    }
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let err = policy_error(&format!("{HEAD}ignore-unfxed: true\n"));
    let GateError::PolicySyntax { file, error } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(file, "policy.yaml");
    assert_eq!((error.line, error.column), (Some(3), Some(1)), "{error}");
    assert!(
        error.message.contains("unknown field `ignore-unfxed`"),
        "{error}"
    );
    assert!(err.to_string().ends_with(" at line 3 column 1"), "{err}");
    let err = IgnoreFile::parse(".trivyignore.yaml", "vulnerabilities:\n  - id: [\n").unwrap_err();
    let GateError::IgnoreFileSyntax { error, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(error.line.is_some(), "{err}");
}

#[test]
fn more_than_one_document_is_refused() {
    let message = policy_error(&format!("{HEAD}---\n{HEAD}")).to_string();
    assert!(message.contains("policy.yaml"), "{message}");
}

/// String fields keep plain scalars as written, whatever YAML 1.1 would make of them.
#[test]
fn plain_scalars_in_string_fields_stay_strings() {
    let policy = Policy::from_yaml(
        &format!("{HEAD}exceptions:\n  - id: 0440\n    owner: off\n    reason: yes\n    expires: 2027-01-31\n"),
        "policy.yaml",
    )
    .unwrap();
    let exception = policy.exceptions.first().unwrap();
    assert_eq!(exception.id, "0440");
    assert_eq!(exception.owner.as_deref(), Some("off"));
    assert_eq!(exception.reason.as_deref(), Some("yes"));
    assert_eq!(exception.expires_text.as_deref(), Some("2027-01-31"));
    let ignore = IgnoreFile::parse(
        ".trivyignore.yaml",
        "vulnerabilities:\n  - id: NO\n    statement: 1e3\n",
    )
    .unwrap();
    let exception = ignore.exceptions.first().unwrap();
    assert_eq!(exception.id, "NO");
    assert_eq!(exception.reason.as_deref(), Some("1e3"));
}
