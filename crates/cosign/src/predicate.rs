//! Checks of an attestation's in-toto predicate: a policy may require that a field, named by an RFC 6901 JSON
//! pointer into the predicate, is present, equals a value, is one of several, or is a string a Go regular
//! expression matches.
//!
//! The checks run on the statement whose signature was verified (the DSSE payload the signature covers, or the
//! payload of the bundle the verifier accepted), right after it was verified; only the outcome is kept: a
//! [`PredicateFailure`] naming the first check that failed, with the value found cut to a bounded length.
use std::collections::BTreeMap;

use kibaship_sigstore::GoRegex;
use serde::Serialize;
use serde_json::Value;

use crate::check::ReasonCode;

/// One check of an attestation's predicate.
#[derive(Debug, Clone)]
pub struct PredicateCheck {
    /// RFC 6901 JSON pointer into the in-toto predicate (`/buildDefinition/buildType`; `~1` escapes `/`, `~0`
    /// escapes `~`; the empty pointer is the whole predicate).
    pub path: String,
    /// What the value there must satisfy.
    pub condition: PredicateCondition,
    /// The stable code a failure of this check carries (`source-mismatch`, `builder-mismatch`, ...: what
    /// `verify-provenance` asks for); `None`: `attestation-predicate-failed`, as a policy file's checks.
    pub code: Option<ReasonCode>,
}

/// What the value at a [`PredicateCheck`]'s path must satisfy.
#[derive(Debug, Clone)]
pub enum PredicateCondition {
    /// The path exists (a JSON `null` there counts as present).
    Present,
    /// The value equals this one (JSON equality: object key order does not matter; `1` and `1.0` differ).
    Equals(Value),
    /// The value equals one of these.
    OneOf(Vec<Value>),
    /// The value is a string this Go-syntax regular expression matches (unanchored unless the pattern anchors
    /// itself, as Go's `MatchString`).
    Matches(GoRegex),
}

/// Which check of the policy an attestation's predicate failed: the predicate type, the path, what the policy
/// wanted and what the predicate holds there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PredicateFailure {
    /// The attestation's predicate type.
    pub predicate_type: String,
    /// The JSON pointer of the check, as the policy gave it.
    pub path: String,
    /// What the policy wanted, in words (`present`, `equal to "x"`, `one of ["a","b"]`, `a string matching /re/`).
    pub wanted: String,
    /// The value found there as JSON text (at most [`MAX_GOT_CHARS`] characters, then `…`), or `absent`.
    pub got: String,
    /// The check's own code ([`PredicateCheck::code`]), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ReasonCode>,
}

impl PredicateFailure {
    /// The stable code of this failure: the check's own, else `attestation-predicate-failed`.
    pub fn reason(&self) -> ReasonCode {
        self.code.unwrap_or(ReasonCode::AttestationPredicateFailed)
    }
}

/// Characters of the value found that a [`PredicateFailure`] keeps.
pub const MAX_GOT_CHARS: usize = 200;

/// Why a [`PredicateCheck`]'s path is not a JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// A non-empty pointer must start with `/`.
    #[error("a JSON pointer is empty or starts with `/`")]
    NoLeadingSlash,
    /// `~` must be followed by `0` or `1`.
    #[error("`~` must be followed by `0` or `1` (RFC 6901)")]
    BadEscape,
}

/// A check whose path has been parsed into reference tokens.
#[derive(Debug, Clone)]
pub(crate) struct CompiledCheck {
    pub(crate) check: PredicateCheck,
    tokens: Vec<String>,
}

impl CompiledCheck {
    pub(crate) fn new(check: PredicateCheck) -> Result<Self, PointerError> {
        let tokens = parse_pointer(&check.path)?;
        Ok(CompiledCheck { check, tokens })
    }
}

/// The reference tokens of an RFC 6901 JSON pointer, unescaped.
pub(crate) fn parse_pointer(path: &str) -> Result<Vec<String>, PointerError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path.strip_prefix('/').ok_or(PointerError::NoLeadingSlash)?;
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, PointerError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(PointerError::BadEscape),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// The value `tokens` point at in `root`, if any. An array index is a decimal without leading zeros (`-`, past
/// the end, is absent).
fn resolve<'a>(root: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(root, |value, token| match value {
        Value::Object(map) => map.get(token),
        Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
        _ => None,
    })
}

fn array_index(token: &str) -> Option<usize> {
    let digits = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

impl PredicateCondition {
    /// Whether `found` (absent: `None`) satisfies the condition.
    fn holds(&self, found: Option<&Value>) -> bool {
        match (self, found) {
            (_, None) => false,
            (PredicateCondition::Present, Some(_)) => true,
            (PredicateCondition::Equals(wanted), Some(v)) => wanted == v,
            (PredicateCondition::OneOf(wanted), Some(v)) => wanted.iter().any(|w| w == v),
            (PredicateCondition::Matches(re), Some(Value::String(s))) => re.is_match(s),
            (PredicateCondition::Matches(_), Some(_)) => false,
        }
    }

    /// What the condition wants, in words.
    pub fn describe(&self) -> String {
        match self {
            PredicateCondition::Present => "present".to_string(),
            PredicateCondition::Equals(v) => format!("equal to {v}"),
            PredicateCondition::OneOf(vs) => format!("one of {}", Value::Array(vs.clone())),
            PredicateCondition::Matches(re) => format!("a string matching /{}/", re.as_str()),
        }
    }
}

/// `value` as JSON text of at most [`MAX_GOT_CHARS`] characters, printable (JSON escapes C0 controls in
/// strings, not DEL or C1 ones: found by the provenance_statement fuzz target).
fn bounded_json(value: &Value) -> String {
    // `printable` counts the `…` among its characters.
    kibaship_printable::printable(&value.to_string(), MAX_GOT_CHARS + 1)
}

/// The policy's predicate checks, by predicate type: an attestation of a type with checks is accepted only when
/// its predicate passes all of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct PredicateChecks {
    pub(crate) by_type: BTreeMap<String, Vec<CompiledCheck>>,
}

impl PredicateChecks {
    /// Runs the checks of `predicate_type` on the verified in-toto `statement`; the first that fails, if any.
    pub(crate) fn evaluate(
        &self,
        predicate_type: &str,
        statement: &[u8],
    ) -> Result<(), PredicateFailure> {
        let Some(checks) = self.by_type.get(predicate_type).filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        // The statement parsed when its subject was matched; not JSON here cannot happen, and would fail closed.
        let parsed: Option<Value> = serde_json::from_slice(statement).ok();
        let predicate = parsed.as_ref().and_then(|s| s.get("predicate"));
        evaluate_checks(predicate_type, predicate, checks)
    }
}

/// Runs `checks` on the `predicate` of an in-toto statement of `predicate_type` (absent: `None`): the first that
/// fails, if any. The same evaluation the verifier runs on verified attestations, for statements read elsewhere
/// (BuildKit's, inside an image index). A path that is not an RFC 6901 pointer is an error.
pub fn check_predicate(
    predicate_type: &str,
    predicate: Option<&Value>,
    checks: &[PredicateCheck],
) -> Result<Result<(), PredicateFailure>, PointerError> {
    let compiled = checks
        .iter()
        .cloned()
        .map(CompiledCheck::new)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(evaluate_checks(predicate_type, predicate, &compiled))
}

/// Runs `checks` on `predicate` (absent: `None`); the first that fails, if any.
fn evaluate_checks(
    predicate_type: &str,
    predicate: Option<&Value>,
    checks: &[CompiledCheck],
) -> Result<(), PredicateFailure> {
    for compiled in checks {
        let found = predicate.and_then(|p| resolve(p, &compiled.tokens));
        if !compiled.check.condition.holds(found) {
            return Err(PredicateFailure {
                predicate_type: predicate_type.to_string(),
                path: compiled.check.path.clone(),
                wanted: compiled.check.condition.describe(),
                got: found.map_or_else(|| "absent".to_string(), bounded_json),
                code: compiled.check.code,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn check(path: &str, condition: PredicateCondition) -> CompiledCheck {
        CompiledCheck::new(PredicateCheck {
            path: path.to_string(),
            condition,
            code: None,
        })
        .unwrap()
    }

    fn run(predicate: &Value, checks: &[CompiledCheck]) -> Result<(), PredicateFailure> {
        evaluate_checks("https://slsa.dev/provenance/v1", Some(predicate), checks)
    }

    fn predicate() -> Value {
        json!({
            "buildDefinition": {
                "buildType": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
                "externalParameters": {"workflow": {"ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
                "resolvedDependencies": [{"uri": "git+https://github.com/org/repo@refs/heads/main"}, {"uri": "second"}],
            },
            "runDetails": {"builder": {"id": "https://github.com/org/builder/.github/workflows/build.yml@refs/tags/v2.0.0"}},
            "a/b": {"c~d": 1},
            "~1": "tilde-one",
            "": "empty key",
            "count": 3,
            "nothing": null,
        })
    }

    #[test]
    fn pointers_unescape_tilde_zero_and_one_in_that_order() {
        assert_eq!(parse_pointer("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_pointer("/").unwrap(), vec![""]);
        assert_eq!(parse_pointer("/a~1b/c~0d").unwrap(), vec!["a/b", "c~d"]);
        // `~01` is `~1` (the `~0` is unescaped, the `1` stays), not `/`.
        assert_eq!(parse_pointer("/~01").unwrap(), vec!["~1"]);
        assert_eq!(parse_pointer("a"), Err(PointerError::NoLeadingSlash));
        assert_eq!(parse_pointer("/a~2"), Err(PointerError::BadEscape));
        assert_eq!(parse_pointer("/a~"), Err(PointerError::BadEscape));

        let p = predicate();
        assert_eq!(
            resolve(&p, &parse_pointer("/a~1b/c~0d").unwrap()),
            Some(&json!(1))
        );
        assert_eq!(
            resolve(&p, &parse_pointer("/~01").unwrap()),
            Some(&json!("tilde-one"))
        );
        assert_eq!(
            resolve(&p, &parse_pointer("/").unwrap()),
            Some(&json!("empty key"))
        );
        assert_eq!(resolve(&p, &parse_pointer("").unwrap()), Some(&p));
    }

    #[test]
    fn array_elements_by_decimal_index_only() {
        let p = predicate();
        let at = |path: &str| resolve(&p, &parse_pointer(path).unwrap()).cloned();
        let deps = "/buildDefinition/resolvedDependencies";
        assert_eq!(at(&format!("{deps}/1/uri")), Some(json!("second")));
        assert_eq!(
            at(&format!("{deps}/0/uri")),
            Some(json!("git+https://github.com/org/repo@refs/heads/main"))
        );
        for absent in ["2", "-", "01", "+1", "1.0", " 1", "", "x"] {
            assert_eq!(at(&format!("{deps}/{absent}")), None, "index {absent:?}");
        }
        // A path through a scalar is absent.
        assert_eq!(at("/count/0"), None);
    }

    #[test]
    fn conditions_hold_or_name_the_failed_path_wanted_and_got() {
        let p = predicate();
        let build_type = "/buildDefinition/buildType";
        let builder = "/runDetails/builder/id";
        let passing = [
            check(build_type, PredicateCondition::Present),
            check("/nothing", PredicateCondition::Present),
            check(
                build_type,
                PredicateCondition::Equals(json!(
                    "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"
                )),
            ),
            check(
                "/buildDefinition/externalParameters/workflow",
                PredicateCondition::Equals(
                    json!({"path": ".github/workflows/release.yml", "ref": "refs/heads/main"}),
                ),
            ),
            check(
                "/count",
                PredicateCondition::OneOf(vec![json!(1), json!(3)]),
            ),
            check(
                builder,
                PredicateCondition::Matches(
                    GoRegex::new(r"^https://github\.com/org/builder/").unwrap(),
                ),
            ),
        ];
        assert_eq!(run(&p, &passing), Ok(()));

        let fails = |c: CompiledCheck| run(&p, &[c]).unwrap_err();
        let missing = fails(check("/runDetails/metadata", PredicateCondition::Present));
        assert_eq!(
            missing,
            PredicateFailure {
                predicate_type: "https://slsa.dev/provenance/v1".into(),
                path: "/runDetails/metadata".into(),
                wanted: "present".into(),
                got: "absent".into(),
                code: None,
            }
        );
        let other = fails(check("/count", PredicateCondition::Equals(json!("3"))));
        assert_eq!(
            (other.wanted.as_str(), other.got.as_str()),
            ("equal to \"3\"", "3")
        );
        // JSON numbers compare as written: 3 is not 3.0.
        assert!(
            run(
                &p,
                &[check("/count", PredicateCondition::Equals(json!(3.0)))]
            )
            .is_err()
        );
        let none_of = fails(check(
            "/count",
            PredicateCondition::OneOf(vec![json!(1), json!(2)]),
        ));
        assert_eq!(
            (none_of.wanted.as_str(), none_of.got.as_str()),
            ("one of [1,2]", "3")
        );

        // Matches wants a string: a number, an object or null fails, naming what was there.
        let re = || PredicateCondition::Matches(GoRegex::new("3").unwrap());
        let number = fails(check("/count", re()));
        assert_eq!(
            (number.wanted.as_str(), number.got.as_str()),
            ("a string matching /3/", "3")
        );
        assert_eq!(fails(check("/nothing", re())).got, "null");
        assert!(fails(check("/a~1b", re())).got.starts_with('{'));
        assert_eq!(fails(check("/absent", re())).got, "absent");
        let unanchored = PredicateCondition::Matches(GoRegex::new("builder/").unwrap());
        assert_eq!(run(&p, &[check(builder, unanchored)]), Ok(()));
        let anchored = PredicateCondition::Matches(GoRegex::new("^builder/").unwrap());
        assert_eq!(fails(check(builder, anchored)).path, builder);

        // The first failing check is the one named.
        let first = run(
            &p,
            &[
                check(build_type, PredicateCondition::Present),
                check("/x", PredicateCondition::Present),
                check("/y", PredicateCondition::Present),
            ],
        )
        .unwrap_err();
        assert_eq!(first.path, "/x");
    }

    #[test]
    fn what_was_found_is_bounded_and_an_absent_predicate_fails() {
        let long = json!({"big": "x".repeat(10_000)});
        let failure = run(
            &long,
            &[check("/big", PredicateCondition::Equals(json!("y")))],
        )
        .unwrap_err();
        assert_eq!(failure.got.chars().count(), MAX_GOT_CHARS + 1);
        assert!(failure.got.ends_with('…'));
        let multibyte = json!({"big": "é".repeat(1_000)});
        let failure = run(
            &multibyte,
            &[check("/big", PredicateCondition::Equals(json!("y")))],
        )
        .unwrap_err();
        assert_eq!(failure.got.chars().count(), MAX_GOT_CHARS + 1);

        let none =
            evaluate_checks("t", None, &[check("", PredicateCondition::Present)]).unwrap_err();
        assert_eq!(none.got, "absent");
    }

    #[test]
    fn statements_are_read_at_their_predicate_and_types_without_checks_pass() {
        let mut checks = PredicateChecks::default();
        checks.by_type.insert(
            "t".into(),
            vec![check(
                "/builder/id",
                PredicateCondition::Equals(json!("me")),
            )],
        );
        let statement = |predicate: Value| {
            serde_json::to_vec(&json!({"_type": "https://in-toto.io/Statement/v1", "predicateType": "t", "predicate": predicate}))
                .unwrap()
        };
        assert_eq!(
            checks.evaluate("t", &statement(json!({"builder": {"id": "me"}}))),
            Ok(())
        );
        let failed = checks
            .evaluate("t", &statement(json!({"builder": {"id": "you"}})))
            .unwrap_err();
        assert_eq!(
            (failed.predicate_type.as_str(), failed.got.as_str()),
            ("t", "\"you\"")
        );
        // The statement's own fields are not the predicate's.
        assert!(checks.evaluate("t", &statement(json!(null))).is_err());
        assert!(checks.evaluate("t", b"not json").is_err());
        assert_eq!(checks.evaluate("other", b"not json"), Ok(()));
    }
}
