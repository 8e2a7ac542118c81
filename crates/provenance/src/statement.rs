//! In-toto statements (v0.1 and v1) read strictly: at most [`MAX_STATEMENT_BYTES`], a duplicate JSON key anywhere
//! refused with its JSON pointer (serde_json would keep the last one silently, so two readers could see two
//! different predicates), `_type`, `subject` and `predicateType` checked.
use std::collections::BTreeMap;

use kibaship_oci::Digest;
use serde_json::Value;

pub use crate::buildkit::MAX_STATEMENT_BYTES;

/// In-toto Statement v0.1 (what cosign writes).
pub const STATEMENT_V01: &str = "https://in-toto.io/Statement/v0.1";
/// In-toto Statement v1 (what BuildKit writes).
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";

/// Why bytes are not an in-toto statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// More bytes than are read.
    #[error("the statement is {len} bytes, more than the {max} read")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// Not JSON, or JSON with a duplicate key (named by its JSON pointer).
    #[error("the statement is not valid JSON: {0}")]
    Json(String),
    /// A field missing or of the wrong kind.
    #[error("the statement's {field} {problem}")]
    Field {
        /// The field (`_type`, `subject[0].digest`, `predicateType`).
        field: String,
        /// What is wrong.
        problem: String,
    },
}

/// One subject of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Its name (may be empty).
    pub name: String,
    /// Its digests, by algorithm.
    pub digest: BTreeMap<String, String>,
}

/// An in-toto statement, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `_type`: [`STATEMENT_V01`] or [`STATEMENT_V1`].
    pub statement_type: String,
    /// `subject`, at least one.
    pub subjects: Vec<Subject>,
    /// `predicateType`.
    pub predicate_type: String,
    /// `predicate` (absent: `None`).
    pub predicate: Option<Value>,
}

impl Statement {
    /// Parses `bytes` strictly (see the module documentation).
    pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
        if bytes.len() as u64 > MAX_STATEMENT_BYTES {
            return Err(StatementError::TooLarge {
                len: bytes.len(),
                max: MAX_STATEMENT_BYTES,
            });
        }
        let value = parse_json_without_duplicates(bytes)?;
        let field = |field: &str, problem: &str| StatementError::Field {
            field: field.to_string(),
            problem: problem.to_string(),
        };
        let Value::Object(mut object) = value else {
            return Err(field("document", "is not a JSON object"));
        };
        let statement_type = match object.get("_type") {
            Some(Value::String(t)) if t == STATEMENT_V01 || t == STATEMENT_V1 => t.clone(),
            Some(Value::String(t)) => {
                return Err(field(
                    "_type",
                    &format!("is {t:?}, not {STATEMENT_V01} or {STATEMENT_V1}"),
                ));
            }
            Some(_) => return Err(field("_type", "is not a string")),
            None => return Err(field("_type", "is absent")),
        };
        let predicate_type = match object.get("predicateType") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            _ => return Err(field("predicateType", "is absent, empty or not a string")),
        };
        let Some(Value::Array(items)) = object.get("subject") else {
            return Err(field("subject", "is absent or not an array"));
        };
        if items.is_empty() {
            return Err(field("subject", "is empty"));
        }
        let mut subjects = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let name = match item.get("name") {
                None => String::new(),
                Some(Value::String(n)) => n.clone(),
                Some(_) => return Err(field(&format!("subject[{i}].name"), "is not a string")),
            };
            let Some(Value::Object(digests)) = item.get("digest") else {
                return Err(field(
                    &format!("subject[{i}].digest"),
                    "is absent or not an object",
                ));
            };
            let mut digest = BTreeMap::new();
            for (algorithm, value) in digests {
                let Value::String(hex) = value else {
                    return Err(field(
                        &format!("subject[{i}].digest.{algorithm}"),
                        "is not a string",
                    ));
                };
                digest.insert(algorithm.clone(), hex.clone());
            }
            subjects.push(Subject { name, digest });
        }
        Ok(Statement {
            statement_type,
            subjects,
            predicate_type,
            predicate: object.remove("predicate"),
        })
    }

    /// Whether a subject names `digest` (same algorithm, hex compared case-insensitively, as cosign does).
    pub fn names_digest(&self, digest: &Digest) -> bool {
        let algorithm = digest.algorithm().name();
        self.subjects.iter().any(|s| {
            s.digest
                .get(algorithm)
                .is_some_and(|hex| hex.eq_ignore_ascii_case(digest.hex()))
        })
    }

    /// The subjects' digests as `algorithm:hex`, for messages.
    pub fn subject_digests(&self) -> Vec<String> {
        self.subjects
            .iter()
            .flat_map(|s| s.digest.iter().map(|(a, h)| format!("{a}:{h}")))
            .collect()
    }
}

/// JSON parsed as serde_json parses it, except that an object with a key twice is an error naming the key's JSON
/// pointer, line and column (serde_json's own recursion limit applies). The one implementation of this check is
/// [`kibaship_sbom::json`], which SBOM validation uses too.
pub fn parse_json_without_duplicates(bytes: &[u8]) -> Result<Value, StatementError> {
    kibaship_sbom::json::parse_without_duplicates(bytes)
        .map_err(|e| StatementError::Json(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn statement(predicate: &str) -> String {
        format!(
            r#"{{"_type":"https://in-toto.io/Statement/v1","subject":[{{"name":"x","digest":{{"sha256":"{}"}}}}],
               "predicateType":"https://slsa.dev/provenance/v1","predicate":{predicate}}}"#,
            &DIGEST[7..]
        )
    }

    #[test]
    fn statements_parse_with_their_subjects() {
        let s = Statement::parse(statement(r#"{"a":[1,2.5,null,true]}"#).as_bytes()).unwrap();
        assert_eq!(s.predicate_type, "https://slsa.dev/provenance/v1");
        assert!(s.names_digest(&Digest::parse(DIGEST).unwrap()));
        let other = Digest::parse(&format!("sha256:{}", "b".repeat(64))).unwrap();
        assert!(!s.names_digest(&other));
        assert_eq!(s.predicate.unwrap()["a"][1], 2.5);
    }

    #[test]
    fn duplicate_keys_are_refused_with_their_pointer() {
        let twice = statement(r#"{"builder":{"id":"good","id":"evil"}}"#);
        let err = Statement::parse(twice.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains(r#"duplicate key "id" (at JSON pointer /predicate/builder/id)"#),
            "{err}"
        );
        let in_array = statement(r#"{"m":[{},{"a~/b":1,"a~/b":2}]}"#);
        let err = Statement::parse(in_array.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/predicate/m/1/a~0~1b"), "{err}");
        let top = r#"{"_type":"https://in-toto.io/Statement/v1","_type":"x"}"#;
        assert!(
            Statement::parse(top.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("duplicate key \"_type\"")
        );
    }

    #[test]
    fn malformed_statements_name_the_field() {
        let cases = [
            (r#"[]"#, "document is not a JSON object"),
            (
                r#"{"_type":"https://example.com/x"}"#,
                "_type is \"https://example.com/x\"",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"t"}"#,
                "subject is absent",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"t","subject":[]}"#,
                "subject is empty",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","predicateType":"t","subject":[{"digest":{"sha256":1}}]}"#,
                "subject[0].digest.sha256 is not a string",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1","subject":[]}"#,
                "predicateType is absent",
            ),
            (
                r#"{"_type":"https://in-toto.io/Statement/v1""#,
                "not valid JSON",
            ),
            (r#"{} {}"#, "trailing characters"),
        ];
        for (text, wanted) in cases {
            let err = Statement::parse(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text}: {err}");
        }
        let big = vec![b' '; MAX_STATEMENT_BYTES as usize + 1];
        assert!(matches!(
            Statement::parse(&big),
            Err(StatementError::TooLarge { .. })
        ));
        let deep = "[".repeat(10_000);
        assert!(Statement::parse(deep.as_bytes()).is_err());
    }
}
