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

use crate::json::{DuplicateSlot, Path, StrictJsonError, StrictValue};
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

/// Parses `utf8` once, validating the streamed arrays' items as they come (in document order); returns the rest
/// of the document (the root object without those arrays). A key twice in one object anywhere is
/// [`StrictJsonError::DuplicateKey`]; any other `Err` means the document does not have the expected shape (not
/// an object, a streamed property that is not an array, not JSON): the caller then validates the whole document.
///
/// The items are validated on this thread: handing them to a second one (tried, one at a time and in batches of
/// 64) was slower on 2 cores, measured (docs/sbom.md, Speed).
pub(crate) fn stream(
    utf8: &[u8],
    plan: &StreamPlan,
    found: &mut Found,
) -> Result<Map<String, Value>, StrictJsonError> {
    let slot = DuplicateSlot::default();
    let root = Path::Root(&slot);
    parse(utf8, plan, &root, &mut Checker::new(plan, found)).map_err(|e| slot.into_error(e))
}

fn parse(
    utf8: &[u8],
    plan: &StreamPlan,
    root: &Path<'_>,
    out: &mut Checker<'_>,
) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(utf8);
    let rest = RootSeed {
        plan,
        path: root,
        out,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(rest)
}

/// What the parser hands to validation.
enum Item {
    /// Item `index` of streamed array `array` (an index into the plan's arrays).
    Value {
        array: usize,
        index: usize,
        value: Value,
    },
    /// The end of streamed array `array`.
    End { array: usize },
}

/// Validates streamed items in document order.
struct Checker<'p> {
    plan: &'p StreamPlan,
    found: &'p mut Found,
    /// Per streamed array: the items' fingerprints (for `uniqueItems`), and whether one repeated.
    seen: Vec<(HashSet<(u64, u64)>, bool)>,
}

impl<'p> Checker<'p> {
    fn new(plan: &'p StreamPlan, found: &'p mut Found) -> Self {
        let seen = plan
            .arrays
            .iter()
            .map(|_| (HashSet::new(), false))
            .collect();
        Checker { plan, found, seen }
    }

    fn check(&mut self, item: Item) {
        match item {
            Item::Value {
                array: n,
                index,
                value,
            } => {
                let (Some(array), Some((seen, repeated))) =
                    (self.plan.arrays.get(n), self.seen.get_mut(n))
                else {
                    return;
                };
                if self.found.total < MAX_COUNTED_VIOLATIONS {
                    let prefix = format!("/{}/{index}", array.key);
                    // The item validator's rules are the referenced definition's, as the whole validation names
                    // them.
                    self.found
                        .add_errors(array.items.iter_errors(&value), &prefix, "");
                }
                if array.unique && !*repeated {
                    *repeated = !seen.insert(fingerprint(&value));
                }
            }
            Item::End { array: n } => {
                let (Some(array), Some((seen, repeated))) =
                    (self.plan.arrays.get(n), self.seen.get_mut(n))
                else {
                    return;
                };
                if *repeated {
                    let key = &array.key;
                    self.found.push(|| Violation {
                        pointer: format!("/{key}"),
                        rule: format!("/properties/{key}/uniqueItems"),
                        message: "has non-unique elements".into(),
                    });
                }
                *seen = HashSet::new();
            }
        }
    }
}

struct RootSeed<'a, 'o, 'p> {
    plan: &'a StreamPlan,
    path: &'a Path<'a>,
    out: &'o mut Checker<'p>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_, '_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, '_, '_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rest = Map::new();
        let mut streamed = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if rest.contains_key(&key) || streamed.contains(&key) {
                return Err(self.path.duplicate(&key));
            }
            let path = Path::Key(self.path, &key);
            match self.plan.arrays.iter().position(|a| a.key == key) {
                Some(array) => {
                    map.next_value_seed(ArraySeed {
                        array,
                        path: &path,
                        out: &mut *self.out,
                    })?;
                    streamed.insert(key);
                }
                None => {
                    let value = map.next_value_seed(StrictValue::new(&path))?;
                    rest.insert(key, value);
                }
            }
        }
        Ok(rest)
    }
}

struct ArraySeed<'a, 'o, 'p> {
    array: usize,
    path: &'a Path<'a>,
    out: &'o mut Checker<'p>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        loop {
            let path = Path::Index(self.path, index);
            let Some(value) = seq.next_element_seed(StrictValue::new(&path))? else {
                break;
            };
            self.out.check(Item::Value {
                array: self.array,
                index,
                value,
            });
            index += 1;
        }
        self.out.check(Item::End { array: self.array });
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
