//! `PolicySet::parse` takes text from ConfigMaps anyone with edit rights can write: whatever it is given, it
//! returns a set or errors with a place, and never panics.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use kibaship_policy::PolicySet;
use proptest::prelude::*;

const FULL: &str = include_str!("../../../testdata/policy/valid/full.yaml");

/// Parses `text` and checks what comes back is well formed.
fn parse_checked(text: &str) {
    match PolicySet::parse("p.yaml", text) {
        Ok(set) => {
            for policy in set.policies() {
                assert!(!policy.name().is_empty());
                assert!(policy.line() >= 1);
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors.errors() {
                assert!(e.line >= 1 && e.column >= 1, "{e}");
                assert!(!e.message.is_empty(), "{e}");
                assert!(e.to_string().starts_with("p.yaml:"), "{e}");
                // One line per error, and nothing from the file reaches a terminal raw.
                assert!(kibaship_printable::is_printable(&e.to_string()), "{e:?}");
            }
        }
    }
}

/// Characters that make YAML structure, and a few that make trouble.
fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just("\n".to_owned()),
            Just("  ".to_owned()),
            Just("- ".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just(",".to_owned()),
            Just("&a ".to_owned()),
            Just("*a".to_owned()),
            Just("<<: ".to_owned()),
            Just("!!str ".to_owned()),
            Just("|\n".to_owned()),
            Just(">-\n".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("#".to_owned()),
            Just("---\n".to_owned()),
            Just("\t".to_owned()),
            Just("\u{feff}".to_owned()),
            Just("policies".to_owned()),
            Just("name".to_owned()),
            Just("images".to_owned()),
            Just("authorities".to_owned()),
            Just("key".to_owned()),
            Just("keyless".to_owned()),
            Just("expires".to_owned()),
            Just("~".to_owned()),
            Just(".nan".to_owned()),
            Just("0x1F".to_owned()),
            Just("1e999".to_owned()),
            "[a-z0-9/*?@.]{1,8}",
        ],
        0..80,
    )
    .prop_map(|parts| parts.concat())
}

/// The policy_parse fuzz target's findings: a value and a pattern with control characters (a newline, ESC, DEL)
/// are quoted printable, each error on one line.
#[test]
fn errors_quote_the_file_printable() {
    let texts = [
        "apiVersion: \"A misspelt key\\n11\\e[2J\"\nkind: AdmissionPolicy\npolicies: []\n",
        "apiVersion: kibaship.io/v1alpha1\nkind: AdmissionPolicy\npolicies:\n  - name: p\n    images: [\"*\"]\n    \
         authorities:\n      - name: a\n        keyless:\n          issuer: https://issuer.example\n          \
         subjectRegExp: \"(unclosed\\n\\x7f\"\n",
    ];
    let quoted = [
        "`A misspelt key\\u{a}11\\u{1b}[2J`",
        "\"(unclosed\\n\\u{7f}\": unclosed group",
    ];
    for (text, quoted) in texts.into_iter().zip(quoted) {
        let errors = PolicySet::parse("p.yaml", text).expect_err("refused");
        assert!(errors.to_string().contains(quoted), "{errors}");
        let shown = errors.to_string();
        assert_eq!(shown.lines().count(), errors.len(), "{shown}");
        for e in errors.errors() {
            assert!(kibaship_printable::is_printable(&e.to_string()), "{e:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text(text in any::<String>()) {
        parse_checked(&text);
    }

    #[test]
    fn yaml_shaped_text(text in yamlish()) {
        parse_checked(&text);
    }

    #[test]
    fn edited_valid_files(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, "[ -~\n]{0,3}"), 1..6)
    ) {
        // Delete or insert a little at a few places of a file that uses every field.
        let mut text: Vec<char> = FULL.chars().collect();
        for (at, delete, insert) in edits {
            let at = at.index(text.len() + 1);
            let end = (at + delete).min(text.len());
            text.splice(at..end, insert.chars());
        }
        let text: String = text.into_iter().collect();
        parse_checked(&text);
    }
}
