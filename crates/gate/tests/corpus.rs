//! The gate over trivy's own reports and ignore-file inputs (testdata/trivy, see SOURCES.md).
//!
//! Counts are checked against `jq` run over the same file, never against our own parser.
use std::path::{Path, PathBuf};
use std::process::Command;

use kibaship_gate::attestation::{PinnedImage, ScannerInfo, vuln_statement, write_vuln_statement};
use kibaship_gate::{
    ExceptionState, GateError, IgnoreFile, Outcome, Policy, Report, Rule, Severity, SeverityCounts,
    TrivyGate, render,
};
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 00:00 UTC);

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/trivy")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// Finds a tool on PATH or in the project's tool cache; fails the test clearly if missing.
fn tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("KIBASHIP_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/kibaship")));
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    if let Some(cache) = cache {
        candidates.push(cache.join("venv/bin").join(name));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` is required by this test and was not found on PATH or in $KIBASHIP_CACHE/venv/bin: run `make deps`")
    })
}

/// Per-severity vulnerability counts computed by jq over the file.
fn jq_counts(name: &str) -> [u64; 5] {
    let program = r#"[.Results[]?.Vulnerabilities[]?.Severity] as $s
        | ["CRITICAL","HIGH","MEDIUM","LOW","UNKNOWN"]
        | map(. as $k | [$s[] | select((if . == "" or . == null then "UNKNOWN" else . end) == $k)] | length)
        | @tsv"#;
    let output = Command::new(tool("jq"))
        .args(["-r", program])
        .arg(testdata(name))
        .output()
        .expect("run jq");
    assert!(
        output.status.success(),
        "jq failed on {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("jq output is UTF-8");
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().expect("jq printed a number"))
        .collect();
    numbers.try_into().expect("jq printed five counts")
}

fn as_array(counts: &SeverityCounts) -> [u64; 5] {
    Severity::DESCENDING.map(|s| counts.get(s))
}

fn gate(policy: &str, ignore: Vec<IgnoreFile>) -> TrivyGate {
    let policy = Policy::from_yaml(policy, "policy.yaml").expect("valid policy");
    TrivyGate::new(policy, ignore, NOW).expect("valid gate")
}

fn corpus_reports() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(testdata(""))
        .expect("testdata/trivy exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json.golden"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 10,
        "expected the trivy corpus in testdata/trivy, found {names:?}"
    );
    names
}

#[test]
fn counts_equal_jq_over_every_corpus_report() {
    let gate = gate("version: 1\nfail-on-severity: critical\n", vec![]);
    for name in corpus_reports() {
        let bytes = read(&name);
        let report = Report::from_slice(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let verdict = gate.evaluate(&report);
        let expected = jq_counts(&name);
        assert_eq!(
            as_array(&verdict.counts.reported),
            expected,
            "{name}: reported"
        );
        assert_eq!(
            as_array(&verdict.counts.before_exceptions),
            expected,
            "{name}: before"
        );
        assert_eq!(
            as_array(&verdict.counts.after_exceptions),
            expected,
            "{name}: after"
        );
        // The JSON verdict carries the same numbers under the documented keys.
        let json: serde_json::Value =
            serde_json::from_str(&render::verdict_json(&verdict).expect("json")).expect("parses");
        for (severity, count) in Severity::DESCENDING.iter().zip(expected) {
            assert_eq!(
                json["counts"]["before_exceptions"][severity.as_key()],
                count,
                "{name}"
            );
            assert_eq!(
                json["counts"]["after_exceptions"][severity.as_key()],
                count,
                "{name}"
            );
        }
        assert_eq!(
            json["verdict"],
            if verdict.passed { "pass" } else { "fail" }
        );
        let critical = expected.first().copied().unwrap_or(0);
        assert_eq!(
            verdict.passed,
            critical == 0,
            "{name}: fails exactly when CRITICAL > 0"
        );
    }
}

#[test]
fn ignore_unfixed_matches_trivys_own_ignore_unfixed_reports() {
    let policies = [
        "version: 1\nignore-unfixed: true\nfail-on-severity: low\n",
        "version: 1\nignore-unfixed: true\nfail-on-severity: critical\n",
        "version: 1\nignore-unfixed: true\nmax-counts: {medium: 0}\n",
    ];
    for (full, unfixed) in [
        (
            "centos-7.json.golden",
            "centos-7-ignore-unfixed.json.golden",
        ),
        (
            "debian-buster.json.golden",
            "debian-buster-ignore-unfixed.json.golden",
        ),
    ] {
        let expected = jq_counts(unfixed);
        assert_ne!(
            jq_counts(full),
            expected,
            "{full}: the pair must differ to prove anything"
        );
        let full_bytes = read(full);
        let unfixed_bytes = read(unfixed);
        let full_report = Report::from_slice(&full_bytes).expect("full report");
        let unfixed_report = Report::from_slice(&unfixed_bytes).expect("unfixed report");
        for policy in policies {
            let gate = gate(policy, vec![]);
            let ours = gate.evaluate(&full_report);
            let trivys = gate.evaluate(&unfixed_report);
            assert_eq!(
                as_array(&ours.counts.before_exceptions),
                expected,
                "{full} {policy}"
            );
            assert_eq!(
                as_array(&ours.counts.after_exceptions),
                expected,
                "{full} {policy}"
            );
            assert_eq!(ours.passed, trivys.passed, "{full}: verdict under {policy}");
            let ids = |v: &kibaship_gate::Verdict<'_>| {
                let mut ids: Vec<String> = v.failing().map(|f| f.id().to_owned()).collect();
                ids.sort();
                ids
            };
            assert_eq!(
                ids(&ours),
                ids(&trivys),
                "{full}: failing findings under {policy}"
            );
        }
    }
}

#[test]
fn severity_threshold_and_rule_attribution() {
    let bytes = read("alpine-310.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let gate = gate("version: 1\nfail-on-severity: medium\n", vec![]);
    let verdict = gate.evaluate(&report);
    let [critical, high, medium, ..] = jq_counts("alpine-310.json.golden");
    let failing: Vec<_> = verdict.failing().collect();
    assert!(medium > 0);
    assert_eq!(failing.len() as u64, critical + high + medium);
    for finding in &failing {
        assert!(finding.severity() >= Severity::Medium);
        assert!(
            finding
                .rules()
                .iter()
                .any(|h| h.rule == Rule::SeverityThreshold)
        );
    }
    assert!(!verdict.passed);
}

#[test]
fn trivyignore_example_follows_trivy_semantics() {
    // trivy's own test input: IDs, `exp:` in the past (expired) and far future, extra fields.
    let text = String::from_utf8(read("trivyignore.example")).expect("utf-8");
    let file = IgnoreFile::parse(".trivyignore", &text).expect("parses");
    let ids: Vec<&str> = file.exceptions.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "CVE-2019-0001",
            "CVE-2019-0002",
            "CVE-2019-0004",
            "CVE-2019-0005",
            "CVE-2019-0006",
            "ID300",
            "AVD-ID400",
            "generic-unwanted-rule",
            "GPL-3.0"
        ]
    );
    let expired: Vec<&str> = file
        .exceptions
        .iter()
        .filter(|e| e.is_expired(NOW))
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(expired, ["CVE-2019-0004"]);
    assert!(file.warnings.is_empty());
}

#[test]
fn trivyignore_yaml_example_follows_trivy_semantics() {
    let text = String::from_utf8(read("trivyignore.example.yaml")).expect("utf-8");
    let file = IgnoreFile::parse(".trivyignore.yaml", &text).expect("parses");
    assert_eq!(file.exceptions.len(), 7 + 4 + 3 + 5);
    let find = |id: &str| {
        file.exceptions
            .iter()
            .find(|e| e.id == id)
            .unwrap_or_else(|| panic!("{id} read"))
    };
    assert!(find("CVE-2019-0005").is_expired(NOW));
    assert!(find("CVE-2019-0006").is_expired(NOW));
    assert!(!find("CVE-2019-0001").is_expired(NOW));
    assert!(
        find("CVE-2019-0001")
            .paths
            .iter()
            .any(|g| g.matches("foo/bar/package-lock.json"))
    );
    assert!(
        !find("CVE-2019-0002")
            .paths
            .iter()
            .any(|g| g.matches("foo/bar/package.json"))
    );
    assert!(find("ID100").kinds.misconfigurations && !find("ID100").kinds.vulnerabilities);
    assert!(find("GPL-3.0").kinds.licenses);
}

/// A small SchemaVersion 2 report built here, to drive ignore-file matching precisely.
fn synthetic_report() -> String {
    let vuln = |id: &str, pkg: &str, purl: &str, path: &str| {
        format!(
            r#"{{"VulnerabilityID":"{id}","PkgName":"{pkg}","PkgPath":"{path}","PkgIdentifier":{{"PURL":"{purl}"}},"InstalledVersion":"1.0.0","FixedVersion":"1.0.1","Status":"fixed","Severity":"HIGH"}}"#
        )
    };
    let vulns = [
        vuln(
            "CVE-2019-0001",
            "a",
            "pkg:npm/a@1.0.0",
            "foo/package-lock.json",
        ),
        vuln(
            "CVE-2019-0002",
            "b",
            "pkg:npm/b@1.0.0",
            "foo/bar/package.json",
        ),
        vuln("CVE-2019-0003", "c", "pkg:npm/c@1.0.0", ""),
        vuln("CVE-2019-0004", "d", "pkg:npm/d@1.0.0", "bar/package.json"),
        vuln("CVE-2019-0005", "e", "pkg:npm/e@1.0.0", ""),
        vuln("CVE-2019-0006", "f", "pkg:npm/f@1.0.0", ""),
        vuln(
            "CVE-2019-0007",
            "bar",
            "pkg:golang/github.com/aquasecurity/bar@1.2.3",
            "",
        ),
        vuln(
            "CVE-2019-0007",
            "aaa",
            "pkg:golang/github.com/aquasecurity/aaa@1.0.0",
            "",
        ),
    ];
    format!(
        r#"{{"SchemaVersion":2,"ArtifactName":"synthetic","Results":[{{"Target":"app","Class":"lang-pkgs","Type":"npm","Vulnerabilities":[{}]}}]}}"#,
        vulns.join(",")
    )
}

#[test]
fn trivyignore_yaml_paths_purls_and_expiry_decide_matches() {
    let text = String::from_utf8(read("trivyignore.example.yaml")).expect("utf-8");
    let ignore = IgnoreFile::parse(".trivyignore.yaml", &text).expect("parses");
    let gate = gate("version: 1\nfail-on-severity: low\n", vec![ignore]);
    let report_text = synthetic_report();
    let report = Report::from_slice(report_text.as_bytes()).expect("report");
    let verdict = gate.evaluate(&report);
    let state: Vec<(String, String, bool)> = verdict
        .findings
        .iter()
        .map(|f| {
            (
                f.id().to_owned(),
                f.package().unwrap_or("").to_owned(),
                matches!(f.outcome, Outcome::Excepted(_)),
            )
        })
        .collect();
    let expected = [
        ("CVE-2019-0001", "a", true), // **/*-lock.json matches foo/package-lock.json
        ("CVE-2019-0002", "b", false), // bar/package.json does not match foo/bar/package.json
        ("CVE-2019-0003", "c", true), // no constraint
        ("CVE-2019-0004", "d", true), // bar/package.json matches the PkgPath
        ("CVE-2019-0005", "e", false), // expired 2023-01-01
        ("CVE-2019-0006", "f", false), // expired 2020-01-01
        ("CVE-2019-0007", "bar", true), // pkg:golang/github.com/aquasecurity/bar, any version
        ("CVE-2019-0007", "aaa", false), // aaa@9.9.9 only
    ];
    let expected: Vec<(String, String, bool)> = expected
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect();
    assert_eq!(state, expected);
    let expired: Vec<&str> = verdict
        .exceptions
        .iter()
        .filter(|o| o.state == ExceptionState::Expired)
        .map(|o| o.exception.id.as_str())
        .collect();
    assert_eq!(expired, ["CVE-2019-0005", "CVE-2019-0006"]);
    assert_eq!(verdict.counts.after_exceptions.get(Severity::High), 4);
    assert!(!verdict.passed);
}

#[test]
fn policy_exceptions_need_package_and_purl_to_match() {
    let policy = "version: 1\nfail-on-severity: low\nrequire-exception-expiry: true\nexceptions:\n  - id: CVE-2019-0007\n    purls: [\"pkg:golang/github.com/aquasecurity/aaa\"]\n    expires: 2027-01-01\n    reason: vendored, not built\n  - id: CVE-2019-0003\n    packages: [other]\n    expires: 2027-01-01\n    reason: only for other\n";
    let gate = gate(policy, vec![]);
    let report_text = synthetic_report();
    let report = Report::from_slice(report_text.as_bytes()).expect("report");
    let verdict = gate.evaluate(&report);
    let excepted: Vec<&str> = verdict
        .findings
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Excepted(_)))
        .map(|f| f.package().unwrap_or(""))
        .collect();
    assert_eq!(excepted, ["aaa"]);
    let stale: Vec<&str> = verdict
        .exceptions
        .iter()
        .filter(|o| o.state == ExceptionState::Stale)
        .map(|o| o.exception.id.as_str())
        .collect();
    assert_eq!(stale, ["CVE-2019-0003"]);
}

#[test]
fn secrets_and_misconfigurations_are_findings_when_enabled() {
    let bytes = read("secrets.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let gate_1 = gate("version: 1\nfail-on-severity: critical\n", vec![]);
    let off = gate_1.evaluate(&report);
    assert!(off.passed, "secrets are not gated unless enabled");
    let on = gate(
        "version: 1\nsecrets: {enabled: true, min-severity: high}\n",
        vec![],
    );
    let verdict = on.evaluate(&report);
    assert!(!verdict.passed);
    assert!(
        verdict
            .failing()
            .all(|f| f.kind() == "secret" && f.severity() >= Severity::High)
    );
    // The secret's matched text never reaches an output.
    let json = render::verdict_json(&verdict).expect("json");
    assert!(!json.contains("AWS_ACCESS_KEY_ID="), "secret match leaked");

    let bytes = read("dockerfile-custom-policies.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let gate_2 = gate("version: 1\nmisconfigurations: {enabled: true}\n", vec![]);
    let verdict = gate_2.evaluate(&report);
    assert!(!verdict.passed);
    assert!(verdict.failing().all(|f| f.kind() == "misconfiguration"));
    let ignore = IgnoreFile::parse(".trivyignore", "AVD-BAR-0001\nAVD-FOO-0001\n").expect("parses");
    let gate_3 = gate(
        "version: 1\nmisconfigurations: {enabled: true}\n",
        vec![ignore],
    );
    let verdict = gate_3.evaluate(&report);
    assert!(
        verdict.passed,
        "both custom checks accepted: {:?}",
        verdict.failing().map(|f| f.id()).collect::<Vec<_>>()
    );
}

fn report_error(bytes: &[u8]) -> String {
    match Report::from_slice(bytes) {
        Ok(_) => panic!("expected an error for {}", String::from_utf8_lossy(bytes)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_reports_are_clear_errors() {
    let full = read("alpine-310.json.golden");
    let truncated = full.get(..full.len() / 2).expect("half");
    let message = report_error(truncated);
    assert!(
        message.contains("EOF while parsing") && message.contains("line"),
        "{message}"
    );

    let message = report_error(br#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":3}]}]}"#);
    assert!(
        message.contains("invalid type") && message.contains("column"),
        "{message}"
    );

    let message = report_error(br#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"SEVERE"}]}]}"#);
    assert!(message.contains("unknown severity `SEVERE`"), "{message}");

    let message = report_error(br#"{"SchemaVersion":2,"Results":{"Target":"x"}}"#);
    assert!(
        message.contains("invalid type: map, expected a sequence"),
        "{message}"
    );

    let message = report_error(br#"{"SchemaVersion":1,"Results":[]}"#);
    assert!(message.contains("SchemaVersion: 1"), "{message}");
    let message = report_error(br#"[{"Target":"x","Vulnerabilities":[]}]"#);
    assert!(message.contains("SchemaVersion 1"), "{message}");
    let message = report_error(br#"{"Results":[]}"#);
    assert!(message.contains("no `SchemaVersion`"), "{message}");
    assert!(report_error(b"  \n").contains("empty"));
    let message = report_error(br#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","CVSS":{"nvd":{"V3Score":11.5}}}]}]}"#);
    assert!(message.contains("outside 0.0..=10.0"), "{message}");
}

#[test]
fn escaped_strings_and_unknown_fields_are_read() {
    let text = br#"{"SchemaVersion":2,"Future":{"x":[1,2]},"Results":[{"Target":"a\/b \u00e9","Vulnerabilities":[{"VulnerabilityID":"CVE-\u0031","PkgName":"p","Severity":"","NewField":true}]}]}"#;
    let report = Report::from_slice(text).expect("parses");
    let result = report.results.first().expect("one result");
    assert_eq!(&*result.target, "a/b é");
    let vulnerability = result.vulnerabilities.first().expect("one vulnerability");
    assert_eq!(&*vulnerability.id, "CVE-1");
    assert_eq!(vulnerability.severity, Severity::Unknown);
}

fn policy_error(text: &str) -> String {
    match Policy::from_yaml(text, "policy.yaml") {
        Ok(_) => panic!("expected an error for {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_policies_are_clear_errors() {
    let message = policy_error("version: 1\nfail-on-severity: high\nfail-on-sevrity: low\n");
    assert!(
        message.contains("unknown field `fail-on-sevrity`") && message.contains("line 3"),
        "{message}"
    );
    let message = policy_error("version: 1\nmax-counts:\n  critical: 0\n  hgh: 3\n");
    assert!(
        message.contains("unknown field `hgh`") && message.contains("line 4"),
        "{message}"
    );
    let message = policy_error("version: 1\nfail-on-severity: severe\n");
    assert!(message.contains("unknown severity `severe`"), "{message}");
    let message = policy_error("version: 1\nignore-unfixed: true\n");
    assert!(message.contains("no rule can fail the gate"), "{message}");
    let message = policy_error("version: 2\nfail-on-severity: high\n");
    assert!(message.contains("version: 2"), "{message}");
    let message = policy_error("version: 1\ncvss-threshold: 12\n");
    assert!(message.contains("between 0.0 and 10.0"), "{message}");
    let message = policy_error(
        "version: 1\nfail-on-severity: high\nexceptions:\n  - id: CVE-1\n    expires: 2027-01-01\n",
    );
    assert!(message.contains("missing field `reason`"), "{message}");
    let message = policy_error(
        "version: 1\nfail-on-severity: high\nexceptions:\n  - id: CVE-1\n    expires: soon\n    reason: x\n",
    );
    assert!(
        message.contains("exceptions[0]") && message.contains("`soon`"),
        "{message}"
    );
    let message = policy_error(
        "version: 1\nfail-on-severity: high\nexceptions:\n  - id: CVE-1\n    paths: [\"a/[b\"]\n    reason: x\n",
    );
    assert!(message.contains("unclosed `[`"), "{message}");
}

#[test]
fn missing_or_expired_expiry_is_refused_when_the_policy_says_so() {
    let strict = Policy::from_yaml(
        "version: 1\nfail-on-severity: high\nrequire-exception-expiry: true\n",
        "policy.yaml",
    )
    .expect("policy");
    let ignore = IgnoreFile::parse(".trivyignore", "# accepted\nCVE-2019-1549\n").expect("parses");
    let err = TrivyGate::new(strict.clone(), vec![ignore], NOW).expect_err("must refuse");
    assert!(matches!(err, GateError::ExceptionWithoutExpiry { .. }));
    let message = err.to_string();
    assert!(
        message.contains("CVE-2019-1549") && message.contains("line 2"),
        "{message}"
    );

    let policy = Policy::from_yaml(
        "version: 1\nfail-on-severity: high\nrequire-exception-expiry: true\nexceptions:\n  - id: CVE-1\n    reason: x\n",
        "policy.yaml",
    )
    .expect("parses; the expiry rule is checked when exceptions are combined");
    let message = TrivyGate::new(policy, vec![], NOW)
        .expect_err("refused")
        .to_string();
    assert!(
        message.contains("exceptions[0]") && message.contains("require-exception-expiry"),
        "{message}"
    );

    let refuse_expired = Policy::from_yaml(
        "version: 1\nfail-on-severity: high\nexpired-exceptions: error\n",
        "policy.yaml",
    )
    .expect("policy");
    let ignore =
        IgnoreFile::parse(".trivyignore", "CVE-2019-1549 exp:2020-01-01\n").expect("parses");
    let err = TrivyGate::new(refuse_expired, vec![ignore], NOW).expect_err("must refuse");
    assert!(err.to_string().contains("expired on 2020-01-01"), "{err}");
}

#[test]
fn an_expired_exception_stops_applying_and_is_reported() {
    let bytes = read("alpine-310.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let ignore =
        IgnoreFile::parse(".trivyignore", "CVE-2019-1549 exp:2020-01-01\n").expect("parses");
    let gate_4 = gate("version: 1\nfail-on-severity: medium\n", vec![ignore]);
    let verdict = gate_4.evaluate(&report);
    assert!(!verdict.passed);
    assert!(verdict.failing().any(|f| f.id() == "CVE-2019-1549"));
    let outcome = verdict.exceptions.first().expect("one exception");
    assert_eq!(outcome.state, ExceptionState::Expired);
    assert_eq!(outcome.matched, 2, "libcrypto1.1 and libssl1.1");
    let json: serde_json::Value =
        serde_json::from_str(&render::verdict_json(&verdict).expect("json")).expect("parses");
    assert_eq!(json["exceptions"]["expired"][0]["id"], "CVE-2019-1549");
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let validator = tool("check-jsonschema");
    let schema = testdata("sarif-schema-2.1.0-rtm.5.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let ignore =
        IgnoreFile::parse(".trivyignore", "CVE-2019-1549 exp:2999-01-01\n").expect("parses");
    let gate = gate(
        "version: 1\nfail-on-severity: high\nsecrets: {enabled: true}\nmisconfigurations: {enabled: true}\n",
        vec![ignore],
    );
    let mut files = Vec::new();
    for name in [
        "alpine-310.json.golden",
        "secrets.json.golden",
        "dockerfile-custom-policies.json.golden",
        "npm.json.golden",
    ] {
        let bytes = read(name);
        let report = Report::from_slice(&bytes).expect("report");
        let sarif = render::verdict_sarif(&gate.evaluate(&report)).expect("sarif");
        let parsed: serde_json::Value = serde_json::from_str(&sarif).expect("json");
        assert_eq!(parsed["version"], "2.1.0");
        assert!(
            parsed["runs"][0]["results"]
                .as_array()
                .is_some_and(|r| !r.is_empty()),
            "{name}"
        );
        let path = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&path, sarif).expect("write");
        files.push(path);
    }
    // The schema's own `language` pattern is not valid ECMAScript: use the Python regex dialect.
    let status = Command::new(validator)
        .args(["--regex-variant", "python", "--schemafile"])
        .arg(&schema)
        .args(&files)
        .status()
        .expect("run check-jsonschema");
    assert!(
        status.success(),
        "SARIF output does not validate against the SARIF 2.1.0 schema"
    );
    // The validator does reject a broken log (the check can fail).
    let broken = dir.path().join("broken.sarif");
    std::fs::write(&broken, r#"{"version":"2.1.0","runs":[{"tool":{}}]}"#).expect("write");
    let status = Command::new(tool("check-jsonschema"))
        .args(["--regex-variant", "python", "--schemafile"])
        .arg(&schema)
        .arg(&broken)
        .output()
        .expect("run check-jsonschema");
    assert!(
        !status.status.success(),
        "the schema check must reject a log without a driver"
    );
}

#[test]
fn junit_parses_as_junit_xml() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = read("alpine-310.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let ignore =
        IgnoreFile::parse(".trivyignore", "CVE-2019-1549 exp:2999-01-01\n").expect("parses");
    let gate_5 = gate("version: 1\nfail-on-severity: medium\n", vec![ignore]);
    let verdict = gate_5.evaluate(&report);
    let failures = verdict.failing().count();
    let path = dir.path().join("gate.xml");
    std::fs::write(&path, render::verdict_junit(&verdict)).expect("write");
    let check = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "testsuites", root.tag
suites = root.findall("testsuite")
assert len(suites) == 1
cases = suites[0].findall("testcase")
failed = [c for c in cases if c.find("failure") is not None]
skipped = [c for c in cases if c.find("skipped") is not None]
assert int(suites[0].get("tests")) == len(cases)
assert int(suites[0].get("failures")) == len(failed)
assert int(suites[0].get("skipped")) == len(skipped)
for c in cases:
    assert c.get("classname") and c.get("name")
for c in failed:
    assert c.find("failure").get("type") and c.find("failure").get("message")
print(len(cases), len(failed), len(skipped))
"#;
    let output = Command::new(tool("python3"))
        .args(["-c", check])
        .arg(&path)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "JUnit check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let vulns = jq_counts("alpine-310.json.golden").iter().sum::<u64>();
    assert_eq!(failures, 2, "CVE-2019-1551 in two packages");
    assert_eq!(printed, format!("{vulns} {failures} 2"));
}

#[test]
fn attestation_is_an_in_toto_statement_with_the_cosign_vuln_predicate() {
    let bytes = read("alpine-310.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let digest = "a".repeat(64);
    let image = PinnedImage::parse(&format!("registry.local:5000/team/app:1.0@sha256:{digest}"))
        .expect("pinned");
    assert_eq!(image.name, "registry.local:5000/team/app");
    let scanner = ScannerInfo {
        version: Some("0.59.1".to_owned()),
        db_uri: Some("ghcr.io/aquasecurity/trivy-db:2".to_owned()),
        db_version: Some("2026-05-31T00:00:00Z".to_owned()),
        invocation_uri: None,
    };
    let statement = vuln_statement(&image, &bytes, &report, &scanner, NOW).expect("statement");
    let value: serde_json::Value = serde_json::from_slice(&statement).expect("json");
    assert_eq!(value["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        value["predicateType"],
        "https://cosign.sigstore.dev/attestation/vuln/v1"
    );
    assert_eq!(value["subject"][0]["name"], "registry.local:5000/team/app");
    assert_eq!(value["subject"][0]["digest"]["sha256"], digest.as_str());
    let predicate = &value["predicate"];
    assert_eq!(
        predicate["scanner"]["uri"],
        "pkg:github/aquasecurity/trivy@0.59.1"
    );
    assert_eq!(predicate["scanner"]["version"], "0.59.1");
    assert_eq!(
        predicate["scanner"]["db"]["uri"],
        "ghcr.io/aquasecurity/trivy-db:2"
    );
    let original: serde_json::Value = serde_json::from_slice(&bytes).expect("report json");
    assert_eq!(
        predicate["scanner"]["result"], original,
        "the report is embedded unchanged"
    );
    assert_eq!(
        predicate["metadata"]["scanStartedOn"],
        original["CreatedAt"]
    );
    assert_eq!(
        predicate["metadata"]["scanFinishedOn"],
        original["CreatedAt"]
    );
    assert!(predicate["invocation"].get("builder.id").is_some());
    for bad in [
        "alpine:3.10",
        "alpine@sha256:abc",
        &format!("alpine@sha512:{digest}"),
        &format!("@sha256:{digest}"),
    ] {
        assert!(PinnedImage::parse(bad).is_err(), "{bad}");
    }
}

/// The statement written from the streaming reader's header into a writer is the same statement,
/// byte for byte, as the one built from the whole-document parse: the CLI writes it that way so
/// the report is held once, not also as a statement copy.
#[test]
fn attestation_written_while_streaming_equals_the_in_memory_statement() {
    let image = PinnedImage::parse(&format!(
        "registry.local/team/app@sha256:{}",
        "b".repeat(64)
    ))
    .expect("pinned");
    for (name, scanner) in [
        ("alpine-310.json.golden", ScannerInfo::default()),
        (
            "centos-7.json.golden",
            ScannerInfo {
                version: Some("0.60.0".to_owned()),
                ..ScannerInfo::default()
            },
        ),
    ] {
        let bytes = read(name);
        let report = Report::from_slice(&bytes).expect("report");
        let in_memory = vuln_statement(&image, &bytes, &report, &scanner, NOW).expect("statement");
        let header = kibaship_gate::stream::read_report(bytes.as_slice(), |_| {}).expect("streams");
        let mut written = Vec::new();
        write_vuln_statement(&mut written, &image, &bytes, &header, &scanner, NOW)
            .expect("written");
        assert_eq!(
            String::from_utf8(written).expect("utf-8"),
            String::from_utf8(in_memory).expect("utf-8"),
            "{name}"
        );
    }
}

#[test]
fn table_names_the_failing_rule_and_colours_only_when_asked() {
    let bytes = read("centos-7.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let gate_6 = gate("version: 1\nfail-on-severity: medium\n", vec![]);
    let verdict = gate_6.evaluate(&report);
    let plain = render::verdict_table(&verdict, false);
    assert!(plain.starts_with("gate: FAIL"), "{plain}");
    assert!(
        plain.contains("CVE-2019-1559") && plain.contains("severity-threshold"),
        "{plain}"
    );
    assert!(!plain.contains('\x1b'));
    let coloured = render::verdict_table(&verdict, true);
    assert!(coloured.contains("\x1b[1;31mFAIL"));
}

/// A reader that hands out a few bytes per call, to exercise buffer refills at every boundary.
struct Trickle<'a> {
    bytes: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.step = self.step % 7 + 1;
        let n = self.step.min(out.len()).min(self.bytes.len());
        let (head, tail) = self.bytes.split_at(n);
        out.get_mut(..n).expect("room").copy_from_slice(head);
        self.bytes = tail;
        Ok(n)
    }
}

fn stream_verdict_counts(
    gate: &TrivyGate,
    bytes: &[u8],
) -> ([u64; 5], [u64; 5], bool, Option<String>) {
    let mut evaluation = gate.start();
    let header =
        kibaship_gate::stream::read_report_in_chunks(Trickle { bytes, step: 0 }, 61, |r| {
            evaluation.add_result(r)
        })
        .expect("streams");
    let verdict = evaluation.finish(
        header.artifact_name.as_deref(),
        header.artifact_type.as_deref(),
    );
    (
        as_array(&verdict.counts.reported),
        as_array(&verdict.counts.after_exceptions),
        verdict.passed,
        verdict.artifact_name.clone(),
    )
}

#[test]
fn streaming_read_gives_the_same_verdict_as_jq_and_the_in_memory_parse() {
    let ignore = IgnoreFile::parse(
        ".trivyignore",
        "CVE-2019-1549 exp:2999-01-01\nCVE-2019-18276\n",
    )
    .expect("parses");
    let gate = gate(
        "version: 1\nfail-on-severity: medium\nsecrets: {enabled: true}\n",
        vec![ignore],
    );
    for name in corpus_reports() {
        let bytes = read(&name);
        let (reported, after, passed, artifact) = stream_verdict_counts(&gate, &bytes);
        assert_eq!(reported, jq_counts(&name), "{name}");
        let report = Report::from_slice(&bytes).expect("report");
        let in_memory = gate.evaluate(&report);
        assert_eq!(
            after,
            as_array(&in_memory.counts.after_exceptions),
            "{name}"
        );
        assert_eq!(passed, in_memory.passed, "{name}");
        assert_eq!(artifact, in_memory.artifact_name, "{name}");
    }
}

#[test]
fn streaming_bad_reports_are_clear_errors() {
    let gate = gate("version: 1\nfail-on-severity: critical\n", vec![]);
    let stream_error = |bytes: &[u8]| {
        let mut evaluation = gate.start();
        match kibaship_gate::stream::read_report_in_chunks(bytes, 97, |r| evaluation.add_result(r))
        {
            Ok(_) => panic!("expected an error for {}", String::from_utf8_lossy(bytes)),
            Err(e) => e.to_string(),
        }
    };
    let full = read("alpine-310.json.golden");
    for cut in [10, full.len() / 3, full.len() / 2, full.len() - 3] {
        let message = stream_error(full.get(..cut).expect("prefix"));
        assert!(
            message.contains("truncated") || message.contains("EOF"),
            "cut {cut}: {message}"
        );
    }
    let message = stream_error(br#"{"SchemaVersion":2,"Results":[{"Target":"x","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":3}]}]}"#);
    assert!(
        message.contains("Results[0]") && message.contains("invalid type"),
        "{message}"
    );
    let message = stream_error(br#"{"SchemaVersion":1,"Results":[{"Target":1}]}"#);
    assert!(message.contains("SchemaVersion: 1"), "{message}");
    assert!(stream_error(br#"[{"Target":"x"}]"#).contains("SchemaVersion 1"));
    assert!(stream_error(br#"{"Results":[]}"#).contains("no `SchemaVersion`"));
    let message = stream_error(br#"{"SchemaVersion":2,"Results":[]} trailing"#);
    assert!(message.contains("after the end of the report"), "{message}");
    let message = stream_error(br#"{"SchemaVersion":2,"Metadata":{"OS":[1,}]}"#);
    assert!(message.contains("`Metadata`"), "{message}");
    let message = stream_error(br#"{"SchemaVersion":2 "Results":[]}"#);
    assert!(message.contains("expected `}`"), "{message}");
    let message = stream_error(br#"{"SchemaVersion":2,"Results":{"Target":"x"}}"#);
    assert!(message.contains("`Results`"), "{message}");
}

#[test]
fn streaming_a_report_larger_than_the_read_buffer() {
    // ~20 MB built from real results: several buffer refills and growths.
    let mut results = Vec::new();
    for name in corpus_reports() {
        let value: serde_json::Value = serde_json::from_slice(&read(&name)).expect("json");
        if let Some(list) = value["Results"].as_array() {
            results.extend(list.iter().cloned());
        }
    }
    let chunk = serde_json::to_string(&results).expect("json");
    let chunk = chunk.trim_start_matches('[').trim_end_matches(']');
    let copies = 20_000_000 / chunk.len() + 1;
    let mut text = String::from("{\"SchemaVersion\":2,\"Results\":[");
    for i in 0..copies {
        if i > 0 {
            text.push(',');
        }
        text.push_str(chunk);
    }
    text.push_str("]}");
    let gate = gate("version: 1\nfail-on-severity: critical\n", vec![]);
    let mut evaluation = gate.start();
    let header = kibaship_gate::stream::read_report(text.as_bytes(), |r| evaluation.add_result(r))
        .expect("streams");
    assert_eq!(header.results as usize, results.len() * copies);
    let streamed = evaluation.finish(None, None);
    let report = Report::from_slice(text.as_bytes()).expect("parses");
    let in_memory = gate.evaluate(&report);
    assert_eq!(
        as_array(&streamed.counts.reported),
        as_array(&in_memory.counts.reported)
    );
    assert_eq!(
        streamed.counts.reported.total() as usize,
        report.vulnerability_count()
    );
}

#[test]
fn cvss_threshold_uses_the_highest_score_over_sources() {
    // centos-7: CVE-2019-18276 is LOW for Red Hat but CVSS 7.8 (nvd and redhat V3).
    let bytes = read("centos-7.json.golden");
    let report = Report::from_slice(&bytes).expect("report");
    let strict = gate("version: 1\ncvss-threshold: 7.8\n", vec![]);
    let verdict = strict.evaluate(&report);
    let failing: Vec<(&str, f64)> = verdict
        .failing()
        .map(|f| (f.id(), f.cvss().expect("scored")))
        .collect();
    assert!(
        failing.iter().any(|(id, _)| *id == "CVE-2019-18276"),
        "{failing:?}"
    );
    assert!(
        failing.iter().all(|(_, score)| *score >= 7.8),
        "{failing:?}"
    );
    assert!(
        verdict
            .failing()
            .all(|f| f.rules().iter().all(|h| h.rule == Rule::CvssThreshold))
    );
    let lenient = gate("version: 1\ncvss-threshold: 9.9\n", vec![]);
    assert!(lenient.evaluate(&report).passed);
}
