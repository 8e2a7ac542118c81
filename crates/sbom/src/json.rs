//! JSON read strictly: as serde_json reads it into a [`Value`], except that an object with the same key twice
//! is refused, naming the key, its JSON pointer (RFC 6901) and its line and column. serde_json alone keeps the
//! last value silently, so a schema validator and a consumer that keeps the first could read two different
//! documents. The one implementation of this check: in-toto statements (`kibaship-provenance`) and SBOMs (here,
//! whole and streamed) use it.
//!
//! The pointer is built only when a duplicate is found: each value being parsed knows its parent through a
//! chain of borrowed [`Path`] links on the stack, so parsing allocates nothing more than serde_json's own
//! [`Value`] does.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why strict JSON parsing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StrictJsonError {
    /// An object has a key twice.
    #[error("{0}")]
    DuplicateKey(DuplicateKey),
    /// Not JSON, or not of the shape the caller asked for (serde_json's words, with line and column).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// Longest JSON pointer quoted in a message, in characters. A pointer is made of the document's keys: it is
/// quoted printable (found by the provenance_statement fuzz target: a NUL and raw whitespace in a key).
pub const MAX_SHOWN_POINTER_CHARS: usize = 300;

/// Longest key quoted in a message, in characters (a key can be megabytes long).
pub(crate) const MAX_SHOWN_KEY_CHARS: usize = 120;

/// `key` in double quotes, printable and cut to [`MAX_SHOWN_KEY_CHARS`], for a message that names it.
pub(crate) fn shown_key(key: &str) -> String {
    format!(
        "\"{}\"",
        kibaship_printable::printable(key, MAX_SHOWN_KEY_CHARS)
    )
}

/// A key found twice in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key, as written (unescaped).
    pub key: String,
    /// The JSON pointer of its second occurrence (RFC 6901, `~` and `/` escaped).
    pub pointer: String,
    /// 1-based line where the second occurrence of the key ends.
    pub line: usize,
    /// 1-based column of the closing quote of the second occurrence of the key.
    pub column: usize,
}

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duplicate key {} (at JSON pointer {}) at line {} column {}",
            shown_key(&self.key),
            kibaship_printable::printable(&self.pointer, MAX_SHOWN_POINTER_CHARS),
            self.line,
            self.column
        )
    }
}

/// Parses `bytes` (UTF-8 JSON) into a [`Value`], refusing a duplicate key anywhere (serde_json's own recursion
/// limit applies).
pub fn parse_without_duplicates(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let found = DuplicateSlot::default();
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictValue::new(&Path::Root(&found)).deserialize(&mut deserializer);
    let value = parsed
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| found.into_error(e))?;
    Ok(value)
}

/// Where the first duplicate key found is recorded (its key and pointer; the position comes from the error
/// serde_json then returns).
#[derive(Default)]
pub(crate) struct DuplicateSlot(RefCell<Option<(String, String)>>);

impl DuplicateSlot {
    /// The error to report for `e`, which parsing returned: the duplicate key if one was recorded.
    pub(crate) fn into_error(self, e: serde_json::Error) -> StrictJsonError {
        match self.0.into_inner() {
            Some((key, pointer)) => StrictJsonError::DuplicateKey(DuplicateKey {
                key,
                pointer,
                line: e.line(),
                column: e.column(),
            }),
            None => StrictJsonError::Json(e),
        }
    }
}

/// Where a value is in the document: a chain of links to its parents, ending at the root (which holds the slot
/// a duplicate key is recorded in).
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The document itself.
    Root(&'a DuplicateSlot),
    /// The member `key` of the object at the parent.
    Key(&'a Path<'a>, &'a str),
    /// The item `index` of the array at the parent.
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn slot(&self) -> &DuplicateSlot {
        let mut at = self;
        loop {
            match at {
                Path::Root(slot) => return slot,
                Path::Key(parent, _) | Path::Index(parent, _) => at = parent,
            }
        }
    }

    /// Its JSON pointer (RFC 6901).
    pub(crate) fn pointer(&self) -> String {
        let mut tokens = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root(_) => break,
                Path::Key(parent, key) => {
                    tokens.push(key.replace('~', "~0").replace('/', "~1"));
                    at = parent;
                }
                Path::Index(parent, index) => {
                    tokens.push(index.to_string());
                    at = parent;
                }
            }
        }
        tokens.iter().rev().fold(String::new(), |mut out, token| {
            out.push('/');
            out.push_str(token);
            out
        })
    }

    /// Records `key`, found twice in the object at `self`, and returns the error that stops parsing.
    pub(crate) fn duplicate<E: de::Error>(&self, key: &str) -> E {
        let pointer = Path::Key(self, key).pointer();
        let message = format!(
            "duplicate key {} (at JSON pointer {})",
            shown_key(key),
            kibaship_printable::printable(&pointer, MAX_SHOWN_POINTER_CHARS)
        );
        let mut slot = self.slot().0.borrow_mut();
        if slot.is_none() {
            *slot = Some((key.to_string(), pointer));
        }
        E::custom(message)
    }
}

/// Deserializes one JSON value at a [`Path`], refusing duplicate keys in it.
pub(crate) struct StrictValue<'a> {
    path: &'a Path<'a>,
}

impl<'a> StrictValue<'a> {
    pub(crate) fn new(path: &'a Path<'a>) -> Self {
        StrictValue { path }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = Path::Index(self.path, items.len());
            match seq.next_element_seed(StrictValue::new(&path))? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // One search of the object per key (a second one to insert was a few % of a large SBOM's validation).
            match object.entry(key) {
                serde_json::map::Entry::Occupied(seen) => {
                    return Err(self.path.duplicate(seen.key()));
                }
                serde_json::map::Entry::Vacant(slot) => {
                    let value = {
                        let path = Path::Key(self.path, slot.key());
                        map.next_value_seed(StrictValue::new(&path))?
                    };
                    slot.insert(value);
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn duplicate(text: &str) -> DuplicateKey {
        match parse_without_duplicates(text.as_bytes()) {
            Err(StrictJsonError::DuplicateKey(d)) => d,
            other => panic!("{text}: expected a duplicate key, got {other:?}"),
        }
    }

    #[test]
    fn parses_as_serde_json_does() {
        let text = r#"{"a":[1,-2,3.5,1e400,"s\u00e9",null,true,{"b":{}}],"c":{"d":[[]]},"e":18446744073709551615}"#;
        let strict = parse_without_duplicates(text.as_bytes());
        let plain = serde_json::from_str::<Value>(text);
        // 1e400 is out of range for both.
        assert_eq!(
            strict.unwrap_err().to_string(),
            plain.unwrap_err().to_string()
        );
        let text = r#"{"a":[1,-2,3.5,"s\u00e9",null,true,{"b":{}}],"c":{"d":[[]]},"e":18446744073709551615}"#;
        assert_eq!(
            parse_without_duplicates(text.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(text).unwrap()
        );
        assert_eq!(
            parse_without_duplicates(b"[1] x").unwrap_err().to_string(),
            serde_json::from_slice::<Value>(b"[1] x")
                .unwrap_err()
                .to_string()
        );
    }

    #[test]
    fn duplicates_are_named_with_pointer_line_and_column() {
        let d = duplicate("{\"a\":1,\n \"a\":2}");
        assert_eq!(
            (d.key.as_str(), d.pointer.as_str(), d.line, d.column),
            ("a", "/a", 2, 4)
        );
        let d = duplicate(r#"{"x":[{"ok":1},{"a~/b":1,"a~/b":2}]}"#);
        assert_eq!(d.pointer, "/x/1/a~0~1b");
        let d = duplicate(r#"{"x":{"y":{"z":1,"y":2,"z":3}}}"#);
        assert_eq!(d.pointer, "/x/y/z");
        let err = parse_without_duplicates(br#"{"k":{"id":"good","id":"evil"}}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"duplicate key "id" (at JSON pointer /k/id) at line 1 column 22"#
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_not_duplicates() {
        let text = r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#;
        parse_without_duplicates(text.as_bytes()).unwrap();
    }
}
