//! `kibaverify policy check`: valid files print `FILE: ok (...)`, invalid ones every error as
//! `file:line:column: code: message` (or JSON objects) with exit 1, unreadable ones exit 2; exceptions that expired or
//! expire within 7 days draw warnings.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kibaverify");

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(["policy", "check"])
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[test]
fn valid_files_are_ok_with_their_counts() {
    let full = repo("testdata/policy/valid/full.yaml");
    let minimal = repo("testdata/policy/valid/minimal.yaml");
    // Before either exception expires and more than 7 days before the first does.
    let r = check(&[&full, &minimal, "--now", "2025-06-01T00:00:00Z"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!("{full}: ok (3 policies, 2 exceptions)\n{minimal}: ok (1 policy, 0 exceptions)\n")
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn the_example_policies_are_accepted() {
    let prod = repo("policies/admission/prod-enforce.yaml");
    let staging = repo("policies/admission/staging-warn.yaml");
    let r = check(&[&prod, &staging, "--now", "2026-12-01T00:00:00Z"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout,
        format!("{prod}: ok (1 policy, 1 exception)\n{staging}: ok (2 policies, 0 exceptions)\n")
    );
}

#[test]
fn expired_and_expiring_exceptions_warn_without_failing() {
    let full = repo("testdata/policy/valid/full.yaml");
    // 2027-01-28: the first exception (2027-01-31T00:00:00Z) expires in 3 days, the second expired in 2026.
    let r = check(&[&full, "--now", "2027-01-28T00:00:00Z"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert_eq!(
        lines[0],
        format!(
            "{full}:55:5: warning: exception-expiring: exceptions[0] (owner team-payments@example.com, reason \
             \"migration ticket PAY-123\") expires in 3 days, at 2027-01-31T00:00:00Z"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{full}:60:5: warning: exception-expired: exceptions[1] "
        )),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with("expired at 2026-01-01T08:00:00Z; it no longer applies"));
    assert_eq!(lines[2], format!("{full}: ok (3 policies, 2 exceptions)"));

    // Exactly 7 days before: no warning yet; a second later: expiring.
    let r = check(&[&full, "--now", "2027-01-24T00:00:00Z"]);
    assert!(!r.stdout.contains("exception-expiring"), "{}", r.stdout);
    let r = check(&[&full, "--now", "2027-01-24T00:00:01Z"]);
    assert!(r.stdout.contains("exception-expiring"), "{}", r.stdout);
    assert!(r.stdout.contains("expires in 7 days"), "{}", r.stdout);
    let r = check(&[&full, "--now", "2027-01-30T12:00:00+00:00"]);
    assert!(r.stdout.contains("expires within a day"), "{}", r.stdout);
}

/// The `(code, line, column)` a fixture's `# expect:` lines list, as `line:column: code` suffixes of error lines.
fn expected_suffixes(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|spec| {
            let (code, place) = spec.split_once(' ').unwrap();
            format!("{place}: {code}")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn invalid_files_list_every_error_with_its_place_and_exit_1() {
    let dir = PathBuf::from(repo("testdata/policy/invalid"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 25);
    for file in files {
        let name = file.display().to_string();
        let r = check(&[&name]);
        assert_eq!(r.code, 1, "{name}: {}{}", r.stdout, r.stderr);
        let mut got: Vec<String> = r
            .stdout
            .lines()
            .map(|line| {
                let rest = line
                    .strip_prefix(&format!("{name}:"))
                    .unwrap_or_else(|| panic!("{line}"));
                // `line:column: code: message` → `line:column: code`
                let mut parts = rest.splitn(4, ':');
                let (l, c, code) = (
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                    parts.next().unwrap(),
                );
                assert!(parts.next().is_some_and(|m| m.len() > 1), "{line}");
                format!("{l}:{c}:{code}")
            })
            .collect();
        got.sort();
        assert_eq!(got, expected_suffixes(&file), "{name}:\n{}", r.stdout);
        assert!(!r.stdout.contains(": ok ("), "{}", r.stdout);
    }
}

#[test]
fn one_bad_file_fails_the_run_and_the_good_ones_are_still_reported() {
    let good = repo("testdata/policy/valid/minimal.yaml");
    let bad = repo("testdata/policy/invalid/bad-mode.yaml");
    let r = check(&[&bad, &good]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        format!(
            "{bad}:6:11: bad-value: policies[0].mode: `garbage` is not a mode; expected `enforce`, `warn` or \
             `audit`\n{good}: ok (1 policy, 0 exceptions)\n"
        )
    );
}

#[test]
fn json_output_has_errors_and_warnings_as_objects() {
    let full = repo("testdata/policy/valid/full.yaml");
    let bad = repo("testdata/policy/invalid/missing-identity.yaml");
    let r = check(&[
        "--output",
        "json",
        &full,
        &bad,
        "--now",
        "2027-01-28T00:00:00Z",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let files = json["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["file"], full.as_str());
    assert_eq!(files[0]["valid"], true);
    assert_eq!(files[0]["policies"], 3);
    assert_eq!(files[0]["exceptions"], 2);
    assert_eq!(files[0]["errors"], serde_json::json!([]));
    let warnings = files[0]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2);
    assert_eq!(warnings[0]["code"], "exception-expiring");
    assert_eq!(warnings[0]["line"], 55);
    assert_eq!(warnings[0]["column"], 5);
    assert_eq!(warnings[1]["code"], "exception-expired");

    assert_eq!(files[1]["valid"], false);
    assert!(files[1].get("policies").is_none());
    let errors = files[1]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4);
    assert_eq!(
        errors[0],
        serde_json::json!({
            "origin": bad,
            "line": 9,
            "column": 18,
            "code": "missing-field",
            "message": "policies[0].authorities[0].keyless.issuer: required field is missing: give the OIDC issuer \
                        as `issuer` (exact) or `issuerRegExp` (Go regular expression)",
        })
    );
}

#[test]
fn unreadable_and_oversized_files_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml").display().to_string();
    let good = repo("testdata/policy/valid/minimal.yaml");
    let r = check(&[&missing, &good]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read admission policy"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains(": ok (1 policy"), "{}", r.stdout);

    let big = dir.path().join("big.yaml");
    let mut text = std::fs::read_to_string(&good).unwrap();
    text.push('#');
    text.push_str(&"x".repeat(kibaship_policy::MAX_POLICY_BYTES));
    std::fs::write(&big, text).unwrap();
    let r = check(&[&big.display().to_string()]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("larger than the 1048576 bytes accepted"),
        "{}",
        r.stderr
    );

    let r = check(&["--output", "json", &missing]);
    assert_eq!(r.code, 2);
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(
        json["files"][0]["readError"]
            .as_str()
            .unwrap()
            .contains("cannot read")
    );
}

#[test]
fn bad_flags_exit_2() {
    let good = repo("testdata/policy/valid/minimal.yaml");
    let r = check(&[&good, "--now", "yesterday"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("--now `yesterday` is not an RFC 3339 time"),
        "{}",
        r.stderr
    );
    let r = check(&[]);
    assert_eq!(r.code, 2);
}

#[test]
fn control_characters_from_the_file_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(
        &file,
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    \"\\e[31mred\\nforged: ok\": 1\n",
    )
    .unwrap();
    let r = check(&[&file.display().to_string()]);
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains('\u{1b}'), "{:?}", r.stdout);
    assert!(
        r.stdout.contains("\\u{1b}[31mred\\nforged: ok"),
        "{}",
        r.stdout
    );
    // One line per error: the newline in the key did not make a second one.
    assert!(
        r.stdout
            .lines()
            .all(|l| l.starts_with(&file.display().to_string())),
        "{}",
        r.stdout
    );
}
