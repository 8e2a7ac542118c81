//! Identity and issuer regexes in Go's `regexp` syntax (as cosign compiles them) decide like Go: for each pattern of
//! `testdata/sigstore/go-regexp/expected.json` (made by Go 1.26's `regexp.Compile` + `MatchString`, see
//! `main.go` there; and `random.json`, random patterns), we accept exactly the patterns Go accepts, and match
//! exactly the inputs Go matches.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::Path;

use kibaship_sigstore::{Matcher, RegexError};

#[derive(serde::Deserialize)]
struct Expected {
    pattern: String,
    valid: bool,
    #[serde(default)]
    r#match: Vec<String>,
    #[serde(default)]
    nomatch: Vec<String>,
}

fn cases(file: &str) -> Vec<Expected> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sigstore/go-regexp")
        .join(file);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn go_regexp_syntax_and_matches() {
    let written = cases("expected.json");
    assert!(written.len() > 150);
    differences_from_go(&written);
}

/// Every Unicode category, script and alias name Go knows, as `\p{Name}` and (canonical) `\P{Name}`, over 19
/// characters of different categories and scripts (`unicode_names.go cases`): Go refuses script names with `_`.
#[test]
fn unicode_class_names_decide_as_go() {
    let names = cases("unicode_names.json");
    assert_eq!(names.len(), 447);
    differences_from_go(&names);
}

/// 800 random patterns over atoms, classes, escapes, groups, flags and repetitions (`random_patterns.py`), each
/// with 31 inputs, as Go decided them.
#[test]
fn random_patterns_decide_as_go() {
    let random = cases("random.json");
    assert_eq!(random.len(), 800);
    differences_from_go(&random);
}

fn differences_from_go(cases: &[Expected]) {
    let mut wrong = Vec::new();
    for case in cases {
        match (Matcher::regex(&case.pattern), case.valid) {
            (Ok(m), true) => {
                for input in &case.r#match {
                    if !m.matches(input) {
                        wrong.push(format!("{:?} should match {input:?}", case.pattern));
                    }
                }
                for input in &case.nomatch {
                    if m.matches(input) {
                        wrong.push(format!("{:?} should not match {input:?}", case.pattern));
                    }
                }
            }
            (Ok(m), false) => wrong.push(format!(
                "{:?} is refused by Go, accepted here as {m:?}",
                case.pattern
            )),
            (Err(e), true) => {
                wrong.push(format!("{:?} is valid in Go, refused: {e}", case.pattern))
            }
            (Err(e), false) => {
                let text = e.to_string();
                assert!(text.contains(&format!("{:?}", case.pattern)), "{text}");
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn refusals_name_the_construct_and_why() {
    for (pattern, construct, why) in [
        (r"^a\Cb$", r"`\C`", "any single byte"),
        (r"(?x) a", "`(?x`", "not a flag of Go's regexp"),
        (r"(?=a)", "`(?=`", "lookaround"),
        (r"(a)\1", r"`\1`", "backreferences"),
        (r"a**", "`**`", "nested repetition"),
        (r"x{1001}", "`{1001}`", "above 1000"),
        (r"\p{gc=L}", r"`\p{gc=L}`", "name=value"),
        (r"a\Z", r"`\Z`", r"`\z`"),
    ] {
        let e = Matcher::regex(pattern).unwrap_err();
        assert!(matches!(e, RegexError::Unsupported { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(construct) && text.contains(why),
            "{pattern}: {text}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Any pattern over regex-heavy characters compiles or is refused with an error naming it; never a panic.
    #[test]
    fn arbitrary_patterns_compile_or_are_refused(pattern in r"[\\\[\]{}()^$.|*+?:=!<>PpQEC0-9a-zA-Z,#&~ _-]{0,24}") {
        match Matcher::regex(&pattern) {
            Ok(m) => {
                let _ = m.matches("https://github.com/org/repo@refs/heads/main");
            }
            Err(e) => proptest::prop_assert!(e.to_string().contains(&format!("{pattern:?}")), "{e}"),
        }
    }
}
