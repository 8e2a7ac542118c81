//! Streaming validation of a large CycloneDX document: its big top-level arrays (`components`, `dependencies`)
//! are validated one item at a time while the document is parsed (on one thread per core, see [`stream`]),
//! against the item's subschema, keeping only a 64-bit hash of each item and where its text is (for
//! `uniqueItems`); the rest of the document is validated against the schema without those properties. Memory
//! then stays near the document's own size instead of several times it (a `serde_json::Value` tree costs about
//! ten times the JSON text of small objects).
//!
//! The violations are those the whole-document validation reports: the same JSON pointers and schema rules
//! (an item's are its definition's, `/definitions/component/...`, as the whole validation names them). Anything the plan does not cover (another
//! shape of schema, a document that does not parse as expected) falls back to the whole-document validation.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, mpsc};

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
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

    /// Adds a batch's violations (its first few, in order, and how many it had in all) after those found so far.
    fn merge(&mut self, first: Vec<Violation>, total: usize) {
        let listed = first.len();
        for violation in first {
            self.push(|| violation);
        }
        self.total = (self.total + total.saturating_sub(listed)).min(MAX_COUNTED_VIOLATIONS);
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

/// Parses `utf8` once and validates the streamed arrays' items on `workers` threads, in batches: each item is
/// parsed, validated and freed on the thread that checks it. Returns the rest of the document (the root object
/// without those arrays). Violations are merged in document order, so they are the same whatever the number of
/// workers. A key twice in one object anywhere is [`StrictJsonError::DuplicateKey`] (the first in the document);
/// any other `Err` means the document does not have the expected shape (not an object, a streamed property that
/// is not an array, not JSON): the caller then validates the whole document.
///
/// This thread only finds each item's extent (it builds no tree for them), so it keeps ahead of the workers.
/// Handing built items to a second thread instead was slower (docs/sbom.md, Speed): each was allocated on one
/// thread and freed on the other.
pub(crate) fn stream(
    utf8: &str,
    plan: &StreamPlan,
    found: &mut Found,
    workers: usize,
) -> Result<Map<String, Value>, StrictJsonError> {
    let workers = workers.max(1);
    let keep = found.keep;
    // Keyed at random for each validation: a document cannot choose items whose hashes collide.
    let hashing = ahash::RandomState::new();
    let (rest, events, mut results) = std::thread::scope(|scope| {
        let (batches, queue) = mpsc::sync_channel::<Batch<'_>>(2 * workers);
        // Only the workers hold the queue: should they all stop, sending fails instead of waiting forever.
        let queue = Arc::new(Mutex::new(queue));
        let (checked, results) = mpsc::channel::<Checked>();
        let base = utf8.as_ptr() as usize;
        for _ in 0..workers {
            let (queue, checked) = (Arc::clone(&queue), checked.clone());
            let hashing = &hashing;
            scope.spawn(move || check_batches(plan, keep, base, hashing, &queue, &checked));
        }
        drop((queue, checked));
        let mut dispatcher = Dispatcher {
            batches,
            pending: None,
            events: Vec::new(),
            sent: 0,
        };
        let slot = DuplicateSlot::default();
        let root = Path::Root(&slot);
        let rest = parse(utf8, plan, &root, &mut dispatcher).map_err(|e| slot.into_error(e));
        // Dropping the sender ends the workers once they have drained the queue.
        let events = std::mem::take(&mut dispatcher.events);
        drop(dispatcher);
        let mut by_batch: Vec<Option<Checked>> = Vec::new();
        for result in results {
            let n = result.batch;
            if by_batch.len() <= n {
                by_batch.resize_with(n + 1, || None);
            }
            by_batch[n] = Some(result);
        }
        (rest, events, by_batch)
    });
    // The first duplicate key in document order: the items dispatched before this thread stopped come before
    // whatever stopped it.
    for result in results.iter_mut().flatten() {
        if let Some(error) = result.error.take() {
            return Err(error.into_error(utf8));
        }
    }
    let rest = rest?;
    // The items of one array at a time. On one thread after the workers: with SipHash and a set grown from
    // empty, this loop took 10 to 14 ms for 114,000 items.
    let all = results
        .iter()
        .flatten()
        .map(|r| r.fingerprints.len())
        .sum::<usize>();
    let mut seen = UniqueItems::with_capacity(utf8, all);
    let mut repeated = false;
    for event in events {
        match event {
            Event::Batch(n) => {
                let Some(Some(result)) = results.get_mut(n) else {
                    // A worker that did not report (it cannot happen unless one panicked, which the scope
                    // would have propagated): not the expected shape, so the whole document is validated.
                    return Err(StrictJsonError::Json(serde::de::Error::custom(
                        "a batch of items was not checked",
                    )));
                };
                found.merge(std::mem::take(&mut result.violations), result.total);
                if !repeated {
                    repeated = result.fingerprints.iter().any(|f| seen.repeats(f));
                }
            }
            Event::End(n) => {
                if let (true, Some(array)) = (repeated, plan.arrays.get(n)) {
                    let key = &array.key;
                    found.push(|| Violation {
                        pointer: format!("/{key}"),
                        rule: format!("/properties/{key}/uniqueItems"),
                        message: "has non-unique elements".into(),
                    });
                }
                seen.clear();
                repeated = false;
            }
        }
    }
    Ok(rest)
}

fn parse<'de>(
    utf8: &'de str,
    plan: &StreamPlan,
    root: &Path<'_>,
    out: &mut Dispatcher<'de>,
) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(utf8);
    let rest = RootSeed {
        plan,
        path: root,
        out,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(rest)
}

/// Items are sent to the workers in batches of about this many bytes of JSON.
const BATCH_BYTES: usize = 64 * 1024;

/// Consecutive items of one streamed array, as JSON text borrowed from the document.
struct Batch<'de> {
    /// Its number, in document order.
    batch: usize,
    /// The index of its array in the plan.
    array: usize,
    /// The index of its first item in the array.
    first: usize,
    items: Vec<&'de RawValue>,
    bytes: usize,
}

/// What the scan saw, in document order: batches sent, and the end of a streamed array.
enum Event {
    Batch(usize),
    End(usize),
}

/// What a worker found in one batch.
struct Checked {
    batch: usize,
    /// Its first violations (at most the number kept), in document order.
    violations: Vec<Violation>,
    /// How many (counted up to [`MAX_COUNTED_VIOLATIONS`]).
    total: usize,
    /// The items' fingerprints, when the array's items must be unique.
    fingerprints: Vec<Fingerprint>,
    /// A key twice in an item (the batch's checking stopped there), or an item serde_json would not read.
    error: Option<ItemError>,
}

/// An item's parse error, its position still relative to the item.
struct ItemError {
    /// Where the item starts in the document (a byte offset).
    offset: usize,
    error: StrictJsonError,
}

impl ItemError {
    /// The error with its line and column in the document.
    fn into_error(self, utf8: &str) -> StrictJsonError {
        match self.error {
            StrictJsonError::DuplicateKey(mut d) => {
                let before = &utf8.as_bytes()[..self.offset.min(utf8.len())];
                let lines = before.iter().filter(|b| **b == b'\n').count();
                let column = before.iter().rev().take_while(|b| **b != b'\n').count();
                if d.line == 1 {
                    d.column += column;
                }
                d.line += lines;
                StrictJsonError::DuplicateKey(d)
            }
            other => other,
        }
    }
}

/// Collects the scanned items into batches for the workers.
struct Dispatcher<'de> {
    batches: mpsc::SyncSender<Batch<'de>>,
    pending: Option<Batch<'de>>,
    events: Vec<Event>,
    sent: usize,
}

impl<'de> Dispatcher<'de> {
    fn item(
        &mut self,
        array: usize,
        index: usize,
        item: &'de RawValue,
    ) -> Result<(), &'static str> {
        let batch = self.pending.get_or_insert_with(|| Batch {
            batch: 0,
            array,
            first: index,
            items: Vec::new(),
            bytes: 0,
        });
        batch.items.push(item);
        batch.bytes += item.get().len();
        if batch.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn end(&mut self, array: usize) -> Result<(), &'static str> {
        self.flush()?;
        self.events.push(Event::End(array));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), &'static str> {
        let Some(mut batch) = self.pending.take() else {
            return Ok(());
        };
        batch.batch = self.sent;
        self.batches
            .send(batch)
            .map_err(|_| "the item checkers stopped")?;
        self.events.push(Event::Batch(self.sent));
        self.sent += 1;
        Ok(())
    }
}

/// A worker: checks batches until the queue closes.
fn check_batches(
    plan: &StreamPlan,
    keep: usize,
    base: usize,
    hashing: &ahash::RandomState,
    queue: &Mutex<mpsc::Receiver<Batch<'_>>>,
    checked: &mpsc::Sender<Checked>,
) {
    loop {
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(batch) = next else {
            return;
        };
        let Some(array) = plan.arrays.get(batch.array) else {
            return;
        };
        if checked
            .send(check_batch(array, keep, base, hashing, &batch))
            .is_err()
        {
            return;
        }
    }
}

/// Checks one batch; `base` is the address of the document's first byte (to place an error in the document).
fn check_batch(
    array: &StreamedArray,
    keep: usize,
    base: usize,
    hashing: &ahash::RandomState,
    batch: &Batch<'_>,
) -> Checked {
    let mut found = Found {
        keep,
        ..Found::default()
    };
    let mut fingerprints = Vec::with_capacity(if array.unique { batch.items.len() } else { 0 });
    let mut error = None;
    for (n, raw) in batch.items.iter().enumerate() {
        let index = batch.first + n;
        let slot = DuplicateSlot::default();
        let root = Path::Root(&slot);
        let parent = Path::Key(&root, &array.key);
        let path = Path::Index(&parent, index);
        let text = raw.get();
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = StrictValue::new(&path)
            .deserialize(&mut deserializer)
            .and_then(|value| deserializer.end().map(|()| value))
            .map_err(|e| slot.into_error(e));
        let value = match parsed {
            Ok(value) => value,
            Err(e) => {
                error = Some(ItemError {
                    offset: (text.as_ptr() as usize).saturating_sub(base),
                    error: e,
                });
                break;
            }
        };
        // Valid items (nearly all) are checked without collecting anything.
        if found.total < MAX_COUNTED_VIOLATIONS && !array.items.is_valid(&value) {
            let prefix = format!("/{}/{index}", array.key);
            // The item validator's rules are the referenced definition's, as the whole validation names them.
            found.add_errors(array.items.iter_errors(&value), &prefix, "");
        }
        if array.unique {
            fingerprints.push(Fingerprint {
                hash: fingerprint(hashing, &value),
                at: (text.as_ptr() as usize).saturating_sub(base),
                len: text.len(),
            });
        }
    }
    Checked {
        batch: batch.batch,
        violations: found.violations,
        total: found.total,
        fingerprints,
        error,
    }
}

struct RootSeed<'a, 'o, 'de> {
    plan: &'a StreamPlan,
    path: &'a Path<'a>,
    out: &'o mut Dispatcher<'de>,
}

impl<'de> DeserializeSeed<'de> for RootSeed<'_, '_, 'de> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RootSeed<'_, '_, 'de> {
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

struct ArraySeed<'o, 'de> {
    array: usize,
    out: &'o mut Dispatcher<'de>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            self.out
                .item(self.array, index, item)
                .map_err(serde::de::Error::custom)?;
            index += 1;
        }
        self.out.end(self.array).map_err(serde::de::Error::custom)
    }
}

/// An item of an array whose items must be unique: the hash of its value and where its text is.
pub(crate) struct Fingerprint {
    hash: u64,
    /// Its text's offset in the document, and length.
    at: usize,
    len: usize,
}

/// A hash of an item's value as `uniqueItems` compares them: objects by their sorted members, numbers by value
/// (`1` and `1.0` are equal). aHash, not the standard library's SipHash: hashing was a fifth of the validation's
/// time with SipHash, measured (docs/sbom.md, Speed).
fn fingerprint(hashing: &ahash::RandomState, item: &Value) -> u64 {
    let mut hasher = hashing.build_hasher();
    hash_value(item, &mut hasher);
    hasher.finish()
}

/// The items of one array seen so far, for `uniqueItems`, by their [`fingerprint`]; two items with the same
/// hash are compared by value (parsed again from the document's text), so a hash collision never reports a
/// repeated item that is not one, and the hash can be 64 bits (one hasher: two were a tenth of the time).
pub(crate) struct UniqueItems<'t> {
    text: &'t str,
    first: std::collections::HashMap<u64, (usize, usize), ahash::RandomState>,
    /// Items whose hash an item of another value had already (a collision: rare).
    more: Vec<(u64, usize, usize)>,
}

impl<'t> UniqueItems<'t> {
    pub(crate) fn with_capacity(text: &'t str, items: usize) -> Self {
        UniqueItems {
            text,
            first: std::collections::HashMap::with_capacity_and_hasher(
                items,
                ahash::RandomState::new(),
            ),
            more: Vec::new(),
        }
    }

    /// Records `item`; whether an item of the same value was recorded before.
    pub(crate) fn repeats(&mut self, item: &Fingerprint) -> bool {
        let text = self.text;
        match self.first.entry(item.hash) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((item.at, item.len));
                false
            }
            std::collections::hash_map::Entry::Occupied(earlier) => {
                let at = (item.at, item.len);
                let mut same_hash = std::iter::once(*earlier.get()).chain(
                    self.more
                        .iter()
                        .filter(|m| m.0 == item.hash)
                        .map(|m| (m.1, m.2)),
                );
                if same_hash.any(|before| same_value(text, before, at)) {
                    return true;
                }
                self.more.push((item.hash, item.at, item.len));
                false
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.first.clear();
        self.more.clear();
    }
}

/// Whether the items at `a` and `b` (offset and length in `text`) have the same value as `uniqueItems` compares
/// them. An item that does not parse again (it did once) counts as the same: the validation fails closed.
fn same_value(text: &str, a: (usize, usize), b: (usize, usize)) -> bool {
    let parse = |(at, len): (usize, usize)| {
        text.get(at..at.saturating_add(len))
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => json_equal(&x, &y),
        _ => true,
    }
}

/// JSON equality as `uniqueItems` has it: numbers by value (`1` equals `1.0`), objects whatever their order.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_key(x) == number_key(y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A number as `uniqueItems` compares it: integers (and floats that are integral) by their value, other floats
/// by their bits.
fn number_key(n: &serde_json::Number) -> (u8, i128) {
    if let Some(i) = n.as_i64() {
        (0, i128::from(i))
    } else if let Some(u) = n.as_u64() {
        (0, i128::from(u))
    } else {
        let f = n.as_f64().unwrap_or(f64::NAN);
        if f.fract() == 0.0 && f.abs() < 1e18 {
            // An integral float equals the integer it spells.
            #[allow(clippy::cast_possible_truncation)]
            (0, f as i128)
        } else {
            (1, i128::from(f.to_bits()))
        }
    }
}

#[cfg(test)]
pub(crate) fn fingerprint_for_tests(item: &Value) -> u64 {
    fingerprint(&ahash::RandomState::with_seeds(1, 2, 3, 4), item)
}

#[cfg(test)]
pub(crate) fn fingerprint_at_for_tests(hash: u64, at: usize, len: usize) -> Fingerprint {
    Fingerprint { hash, at, len }
}

fn hash_value(value: &Value, h: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => (1u8, *b).hash(h),
        Value::Number(n) => (2u8, number_key(n)).hash(h),
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
