//! Streaming validation of a large CycloneDX document: its big top-level arrays (`components`, `dependencies`)
//! are validated one item at a time while the document is parsed, against the item's subschema, keeping only a
//! 128-bit hash of each item (for `uniqueItems`); the rest of the document is validated against the schema
//! without those properties. Memory then stays near the document's own size instead of several times it (a
//! `serde_json::Value` tree costs about ten times the JSON text of small objects).
//!
//! The violations are those the whole-document validation reports: the same JSON pointers and schema rules
//! (an item's are its definition's, `/definitions/component/...`, as the whole validation names them). Anything the plan does not cover (another
//! shape of schema, a document that does not parse as expected) falls back to the whole-document validation.

use std::collections::HashSet;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::{MAX_COUNTED_VIOLATIONS, Violation, shorten};

/// What validates one streamed top-level array.
pub(crate) struct StreamedArray {
    /// Its property name.
    pub key: String,
    /// The item's subschema, compiled.
    pub items: jsonschema::Validator,
    /// Whether the schema asks for unique items.
    pub unique: bool,
}

/// A schema split for streaming: the streamed arrays, and the schema without them.
pub(crate) struct StreamPlan {
    pub arrays: Vec<StreamedArray>,
    pub rest: jsonschema::Validator,
}

/// Keywords a streamed array's schema may carry (anything else and the property is validated whole).
const ARRAY_KEYWORDS: [&str; 7] = [
    "type",
    "items",
    "uniqueItems",
    "additionalItems",
    "title",
    "description",
    "$comment",
];

/// The properties of `root` (a parsed schema) that can be streamed: arrays whose items are one `$ref` into the
/// schema itself; each with its absolute item reference (`<$id>#/definitions/component`) and `uniqueItems`.
pub(crate) fn streamable(root: &Value, keys: &[&str]) -> Vec<(String, String, bool)> {
    let Some(id) = root.get("$id").and_then(Value::as_str) else {
        return Vec::new();
    };
    let id = id.split('#').next().unwrap_or(id);
    // Cross-property keywords at the root could involve a streamed property: stream nothing then.
    let root_keys_ok = root.as_object().is_some_and(|m| {
        m.keys().all(|k| {
            matches!(
                k.as_str(),
                "$schema"
                    | "$id"
                    | "$comment"
                    | "type"
                    | "title"
                    | "description"
                    | "required"
                    | "additionalProperties"
                    | "properties"
                    | "definitions"
            )
        })
    });
    if !root_keys_ok {
        return Vec::new();
    }
    let mut out = Vec::new();
    for key in keys {
        let Some(property) = root.pointer(&format!("/properties/{key}")) else {
            continue;
        };
        let Some(fields) = property.as_object() else {
            continue;
        };
        let plain = fields.keys().all(|k| ARRAY_KEYWORDS.contains(&k.as_str()))
            && fields.get("type").and_then(Value::as_str) == Some("array");
        let reference = fields
            .get("items")
            .and_then(Value::as_object)
            .filter(|items| items.len() == 1)
            .and_then(|items| items.get("$ref"))
            .and_then(Value::as_str)
            .filter(|r| r.starts_with("#/"));
        if let (true, Some(reference)) = (plain, reference) {
            let unique = fields.get("uniqueItems").and_then(Value::as_bool) == Some(true);
            out.push((key.to_string(), format!("{id}{reference}"), unique));
        }
    }
    out
}

/// `root` without the streamed properties.
pub(crate) fn without(root: &Value, keys: &[String]) -> Value {
    let mut rest = root.clone();
    if let Some(properties) = rest.get_mut("properties").and_then(Value::as_object_mut) {
        for key in keys {
            properties.remove(key);
        }
    }
    rest
}

/// Violations found while streaming, in document order, counted up to [`MAX_COUNTED_VIOLATIONS`].
#[derive(Default)]
pub(crate) struct Found {
    pub violations: Vec<Violation>,
    pub total: usize,
    pub keep: usize,
}

impl Found {
    fn push(&mut self, violation: impl FnOnce() -> Violation) {
        if self.total < MAX_COUNTED_VIOLATIONS {
            self.total += 1;
            if self.violations.len() < self.keep {
                self.violations.push(violation());
            }
        }
    }

    pub(crate) fn add_errors<'a>(
        &mut self,
        errors: impl Iterator<Item = jsonschema::ValidationError<'a>>,
        pointer_prefix: &str,
        rule_prefix: &str,
    ) {
        for error in errors {
            if self.total >= MAX_COUNTED_VIOLATIONS {
                break;
            }
            self.push(|| Violation {
                pointer: format!("{pointer_prefix}{}", error.instance_path().as_str()),
                rule: format!("{rule_prefix}{}", error.schema_path().as_str()),
                message: shorten(&error.to_string()),
            });
        }
    }
}

/// Parses `utf8` once, validating the streamed arrays' items as they come; returns the rest of the document
/// (the root object without those arrays). `Err` when the document does not have the expected shape (not an
/// object, a streamed property that is not an array, not JSON): the caller then validates the whole document.
pub(crate) fn stream(
    utf8: &[u8],
    plan: &StreamPlan,
    found: &mut Found,
) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(utf8);
    let rest = RootSeed { plan, found }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(rest)
}

struct RootSeed<'a> {
    plan: &'a StreamPlan,
    found: &'a mut Found,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        let mut streamed = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.plan.arrays.iter().find(|a| a.key == key) {
                // A duplicate key would be validated twice where serde_json keeps the last: validate whole.
                Some(_) if !streamed.insert(key.clone()) => {
                    return Err(serde::de::Error::custom("duplicate streamed key"));
                }
                Some(array) => map.next_value_seed(ArraySeed {
                    array,
                    found: &mut *self.found,
                })?,
                None => {
                    let value: Value = map.next_value()?;
                    rest.insert(key, value);
                }
            }
        }
        Ok(rest)
    }
}

struct ArraySeed<'a> {
    array: &'a StreamedArray,
    found: &'a mut Found,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let key = &self.array.key;
        let mut seen = HashSet::new();
        let mut repeated = false;
        let mut index = 0usize;
        while let Some(item) = seq.next_element::<Value>()? {
            if self.found.total < MAX_COUNTED_VIOLATIONS {
                let prefix = format!("/{key}/{index}");
                // The item validator's rules are the referenced definition's, as the whole validation names them.
                self.found
                    .add_errors(self.array.items.iter_errors(&item), &prefix, "");
            }
            if self.array.unique && !repeated {
                repeated = !seen.insert(fingerprint(&item));
            }
            index += 1;
        }
        if repeated {
            self.found.push(|| Violation {
                pointer: format!("/{key}"),
                rule: format!("/properties/{key}/uniqueItems"),
                message: "has non-unique elements".into(),
            });
        }
        Ok(())
    }
}

/// 128 bits identifying an item's value as `uniqueItems` compares them: objects by their sorted members, numbers
/// by value (`1` and `1.0` are equal). Two hashers keyed apart, so a collision needs both to collide.
fn fingerprint(item: &Value) -> (u64, u64) {
    let mut a = DefaultHasher::new();
    let mut b = DefaultHasher::new();
    0u8.hash(&mut a);
    1u8.hash(&mut b);
    hash_value(item, &mut a);
    hash_value(item, &mut b);
    (a.finish(), b.finish())
}

#[cfg(test)]
pub(crate) fn fingerprint_for_tests(item: &Value) -> (u64, u64) {
    fingerprint(item)
}

fn hash_value(value: &Value, h: &mut DefaultHasher) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, *b).hash(h),
        Value::Number(n) => {
            2u8.hash(h);
            if let Some(i) = n.as_i64() {
                (0u8, i128::from(i)).hash(h);
            } else if let Some(u) = n.as_u64() {
                (0u8, i128::from(u)).hash(h);
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f.abs() < 1e18 {
                    // An integral float equals the integer it spells.
                    #[allow(clippy::cast_possible_truncation)]
                    (0u8, f as i128).hash(h);
                } else {
                    (1u8, f.to_bits()).hash(h);
                }
            }
        }
        Value::String(s) => (3u8, s).hash(h),
        Value::Array(items) => {
            (4u8, items.len()).hash(h);
            for item in items {
                hash_value(item, h);
            }
        }
        Value::Object(members) => {
            (5u8, members.len()).hash(h);
            // serde_json's map is sorted by key: equal objects are hashed in the same order.
            for (key, member) in members {
                key.hash(h);
                hash_value(member, h);
            }
        }
    }
}
