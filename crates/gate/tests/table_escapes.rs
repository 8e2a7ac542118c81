//! The terminal table shows report text with control characters escaped: package names, versions and
//! the artifact name come from the scanned image, so from whoever built it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_gate::{Policy, Report, TrivyGate, render};

#[test]
fn escape_codes_in_report_text_never_reach_the_terminal() {
    let report = br#"{
      "SchemaVersion": 2,
      "ArtifactName": "evil\u001b]0;owned\u0007:v1",
      "ArtifactType": "container_image",
      "Results": [{
        "Target": "app\u001b[2J",
        "Class": "os-pkgs",
        "Type": "debian",
        "Vulnerabilities": [{
          "VulnerabilityID": "CVE-2026-0001",
          "PkgName": "libevil\n\u001b[32mCVE-0000-0000  ok",
          "InstalledVersion": "1.0\u001b[0m",
          "FixedVersion": "1.1",
          "Severity": "CRITICAL"
        }]
      }]
    }"#;
    let report = Report::from_slice(report).unwrap();
    let policy = Policy::from_yaml("version: 1\nfail-on-severity: high\n", "policy.yaml").unwrap();
    let now = time::macros::datetime!(2026-12-05 00:00 UTC);
    let gate = TrivyGate::new(policy, vec![], now).unwrap();
    let verdict = gate.evaluate(&report);
    assert!(!verdict.passed);
    let table = render::verdict_table(&verdict, false);
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(table.contains("evil\\u{1b}]0;owned\\u{7}:v1"), "{table}");
    assert!(table.contains("libevil\\n\\u{1b}[32mCVE"), "{table}");
    // The forged row did not become a row of its own.
    assert_eq!(table.matches("CVE-2026-0001").count(), 1, "{table}");
    assert!(
        !table
            .lines()
            .any(|l| l.trim_start().starts_with("CVE-0000-0000")),
        "{table}"
    );
}
