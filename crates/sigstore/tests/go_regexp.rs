//! Identity and issuer regexes in Go's `regexp` syntax (as cosign compiles them) decide like Go: for each pattern of
//! `testdata/sigstore/go-regexp/expected.json` (made by Go 1.26's `regexp.Compile` + `MatchString`, see
//! `main.go` there), we accept exactly the patterns Go accepts, and match exactly the inputs Go matches.
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

#[test]
fn go_regexp_syntax_and_matches() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sigstore/go-regexp/expected.json");
    let cases: Vec<Expected> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(cases.len() > 150);
    let mut wrong = Vec::new();
    for case in &cases {
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
