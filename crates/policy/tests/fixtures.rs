//! The policy files in testdata/policy/ and policies/admission/: every valid one parses, and every invalid one fails
//! with exactly the errors its `# expect: <code> <line>:<column>` comments list.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use kibaship_policy::{Mode, NamespaceInfo, PolicyErrorCode, PolicySet};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// The `(code, line, column)` triples a fixture's `# expect:` comments list, sorted.
fn expected(text: &str, file: &Path) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|spec| {
            let (code, place) = spec.split_once(' ').unwrap();
            let (line, column) = place.split_once(':').unwrap();
            assert!(
                PolicyErrorCode::from_name(code).is_some(),
                "{}: unknown code {code}",
                file.display()
            );
            (
                code.to_owned(),
                line.parse().unwrap(),
                column.parse().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_invalid_fixture_fails_with_exactly_its_expected_errors() {
    let files = yaml_files(&repo().join("testdata/policy/invalid"));
    assert!(files.len() >= 25, "{} invalid fixtures", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let want = expected(&text, &file);
        assert!(!want.is_empty(), "{}: no `# expect:` line", file.display());
        let origin = file.file_name().unwrap().to_string_lossy().into_owned();
        let errors = match PolicySet::parse(&origin, &text) {
            Ok(_) => panic!("{} parsed", file.display()),
            Err(e) => e,
        };
        let mut got: Vec<(String, usize, usize)> = errors
            .errors()
            .iter()
            .map(|e| (e.code.as_str().to_owned(), e.line, e.column))
            .collect();
        got.sort();
        assert_eq!(got, want, "{}:\n{errors}", file.display());
        for error in errors.errors() {
            let shown = error.to_string();
            assert!(
                shown.starts_with(&format!(
                    "{origin}:{}:{}: {}: ",
                    error.line, error.column, error.code
                )),
                "{shown}"
            );
            // Errors about a field name it first (YAML-level errors have no field).
            if !matches!(
                error.code,
                PolicyErrorCode::Syntax | PolicyErrorCode::DuplicateKey | PolicyErrorCode::TooLarge
            ) {
                let field = error.message.split(": ").next().unwrap();
                assert!(
                    field.starts_with("policies")
                        || field.starts_with("exceptions")
                        || ["apiVersion", "kind", "metadata", "spec"].contains(&field),
                    "{shown}"
                );
            }
        }
    }
}

#[test]
fn every_valid_fixture_parses() {
    for file in yaml_files(&repo().join("testdata/policy/valid")) {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Err(e) = PolicySet::parse(&file.display().to_string(), &text) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_example_policies_parse_and_select_as_documented() {
    let dir = repo().join("policies/admission");
    let files = yaml_files(&dir);
    let mut sets = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        match PolicySet::parse(&file.display().to_string(), &text) {
            Ok(set) => sets.push((
                file.file_name().unwrap().to_string_lossy().into_owned(),
                set,
            )),
            Err(e) => panic!("{e}"),
        }
    }
    let (_, prod) = sets
        .iter()
        .find(|(name, _)| name == "prod-enforce.yaml")
        .expect("policies/admission/prod-enforce.yaml");
    let policy = &prod.policies()[0];
    assert_eq!(policy.mode(), Mode::Enforce);
    assert_eq!(
        policy.attestation_types().collect::<Vec<_>>(),
        ["https://slsa.dev/provenance/v1"]
    );
    let prod_ns = NamespaceInfo::without_labels("prod");
    assert_eq!(
        prod.select(&prod_ns, "registry.example.com/team/api:1.4")
            .len(),
        1
    );
    let (_, warn) = sets
        .iter()
        .find(|(name, _)| name == "staging-warn.yaml")
        .expect("policies/admission/staging-warn.yaml");
    let modes: Vec<Mode> = warn.policies().iter().map(|p| p.mode()).collect();
    assert_eq!(modes, [Mode::Warn, Mode::Audit]);
    assert!(warn.needs_namespace_labels());
}
