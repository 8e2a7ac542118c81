//! The YAML layer: text → a tree of nodes that each know their line and column, within budgets that hold while
//! parsing (serde-saphyr, set up as the gate's policy files are: aliases, anchors, depth, nodes, replayed events).
//!
//! The tree is untyped on purpose: the policy walker ([`crate::parse`]) then reports every unknown key, missing
//! field and wrong type with its place and path, instead of serde stopping at the first.
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use serde_saphyr::budget::BudgetBreach;

use crate::error::PolicyErrorCode;

/// Most alias references (`*name`) in one policy file.
pub const MAX_YAML_ALIASES: usize = 1_000;
/// Most events replayed through aliases in one file (each alias replays its anchored node).
pub const MAX_YAML_REPLAYED_EVENTS: usize = 100_000;
/// Deepest nesting of mappings and sequences (the format itself needs 7; predicate values in checks may nest).
pub const MAX_YAML_DEPTH: usize = 32;
/// Most nodes (scalars, mappings, sequences) in one file.
pub const MAX_YAML_NODES: usize = 250_000;

/// A YAML node with its place in the text.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    /// 1-based line and column (characters) where the node is used (an alias: the alias).
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// A plain scalar read as a boolean, number or null: its text as written (for fields that take strings).
    pub(crate) raw: Option<String>,
}

/// What a node holds.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order (keys are nodes: YAML allows non-string keys, the walker refuses them).
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub(crate) fn position(&self) -> (usize, usize) {
        (self.line, self.column)
    }

    /// How messages name the node's kind.
    pub(crate) fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) | Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// The tree as serde-saphyr hands it over, before raw texts are attached.
#[derive(Debug)]
enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawValue>>),
    Map(Vec<(Spanned<RawValue>, Spanned<RawValue>)>),
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(deserializer)
    }

    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::UInt(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<RawValue, E> {
        match std::str::from_utf8(v) {
            Ok(s) => Ok(RawValue::Str(s.to_owned())),
            Err(_) => Err(E::custom("binary data is not text")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_aliases = MAX_YAML_ALIASES;
    budget.max_anchors = MAX_YAML_ALIASES;
    budget.max_depth = MAX_YAML_DEPTH;
    budget.flow_nesting_limit = MAX_YAML_DEPTH;
    budget.max_nodes = MAX_YAML_NODES;
    budget.max_events = 4 * MAX_YAML_NODES;
    budget.max_documents = 1;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_YAML_REPLAYED_EVENTS;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    // YAML 1.2 booleans only (`yes`/`on` stay strings), and `0440` stays text rather than becoming 440.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.with_snippet = false;
    options
}

/// A YAML problem: code, place (when known) and message without the place.
#[derive(Debug)]
pub(crate) struct YamlProblem {
    pub(crate) code: PolicyErrorCode,
    pub(crate) position: (usize, usize),
    pub(crate) message: String,
}

/// Parses one YAML document of `text` into a node tree.
pub(crate) fn parse(text: &str) -> Result<Node, YamlProblem> {
    let root: Spanned<RawValue> =
        serde_saphyr::from_str_with_options(text, options()).map_err(|e| convert(&e))?;
    Ok(attach(text, root))
}

/// Turns serde-saphyr's tree into [`Node`]s, keeping the written text of plain non-string scalars.
fn attach(text: &str, spanned: Spanned<RawValue>) -> Node {
    let line = usize::try_from(spanned.referenced.line()).unwrap_or(usize::MAX);
    let column = usize::try_from(spanned.referenced.column()).unwrap_or(usize::MAX);
    // An alias's raw text is its anchored definition's, not `*name`.
    let span = spanned.defined.span();
    let raw_text = || {
        let start = usize::try_from(span.byte_offset()?).ok()?;
        let len = usize::try_from(span.byte_len()?).ok()?;
        text.get(start..start.checked_add(len)?).map(str::to_owned)
    };
    let (value, raw) = match spanned.value {
        RawValue::Null => (Value::Null, raw_text()),
        RawValue::Bool(b) => (Value::Bool(b), raw_text()),
        RawValue::Int(i) => (Value::Int(i), raw_text()),
        RawValue::UInt(u) => (Value::UInt(u), raw_text()),
        RawValue::Float(f) => (Value::Float(f), raw_text()),
        RawValue::Str(s) => (Value::Str(s), None),
        RawValue::Seq(items) => (
            Value::Seq(items.into_iter().map(|i| attach(text, i)).collect()),
            None,
        ),
        RawValue::Map(entries) => (
            Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (attach(text, k), attach(text, v)))
                    .collect(),
            ),
            None,
        ),
    };
    Node {
        value,
        line,
        column,
        raw,
    }
}

/// The error inside alias and snippet wrappers.
fn original(mut error: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match error {
            serde_saphyr::Error::WithSnippet { error: inner, .. }
            | serde_saphyr::Error::AliasError { error: inner, .. } => error = inner,
            other => return other,
        }
    }
}

fn convert(error: &serde_saphyr::Error) -> YamlProblem {
    let location = error
        .location()
        .or_else(|| original(error).location())
        .filter(|l| l.line() > 0);
    let position = location.map_or((1, 1), |l| {
        (
            usize::try_from(l.line()).unwrap_or(usize::MAX),
            usize::try_from(l.column()).unwrap_or(0).max(1),
        )
    });
    let inner = original(error);
    let (code, message) = match inner {
        serde_saphyr::Error::Budget {
            breach: breach @ BudgetBreach::Documents { .. },
            ..
        } => (PolicyErrorCode::Syntax, budget_message(breach)),
        serde_saphyr::Error::Budget { breach, .. } => {
            (PolicyErrorCode::TooLarge, budget_message(breach))
        }
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
        | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
        | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => (
            PolicyErrorCode::TooLarge,
            format!(
                "YAML aliases expand to more than {MAX_YAML_REPLAYED_EVENTS} events (an alias bomb?), the most a \
                 policy file may"
            ),
        ),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => (
            PolicyErrorCode::DuplicateKey,
            match key {
                Some(key) => format!("`{key}` is given twice in one mapping"),
                None => "a key is given twice in one mapping".to_owned(),
            },
        ),
        serde_saphyr::Error::MultipleDocuments { .. } => (
            PolicyErrorCode::Syntax,
            "more than one YAML document (`---`): a policy file is one document".to_owned(),
        ),
        serde_saphyr::Error::NonFiniteFloat { value, .. } => (
            PolicyErrorCode::BadValue,
            format!("`{value}` is not a finite number (quote it if it is text)"),
        ),
        _ => {
            let text = inner.to_string();
            let text = match location {
                Some(l) => text
                    .strip_suffix(&format!(" at line {}, column {}", l.line(), l.column()))
                    .map_or_else(|| text.clone(), str::to_owned),
                None => text,
            };
            if text == "recursion limit exceeded" {
                (
                    PolicyErrorCode::TooLarge,
                    budget_message(&BudgetBreach::Depth {
                        depth: MAX_YAML_DEPTH + 1,
                    }),
                )
            } else {
                (PolicyErrorCode::Syntax, format!("invalid YAML: {text}"))
            }
        }
    };
    YamlProblem {
        code,
        position,
        message,
    }
}

fn budget_message(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Aliases { .. } => format!(
            "more than {MAX_YAML_ALIASES} YAML aliases (`*name`), the most a policy file may hold"
        ),
        BudgetBreach::Anchors { .. } => format!(
            "more than {MAX_YAML_ALIASES} YAML anchors (`&name`), the most a policy file may hold"
        ),
        BudgetBreach::Depth { .. } => {
            format!("YAML nested deeper than {MAX_YAML_DEPTH} levels, the most a policy file may")
        }
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => {
            format!("more than {MAX_YAML_NODES} YAML nodes, the most a policy file may hold")
        }
        BudgetBreach::Documents { .. } => {
            "more than one YAML document (`---`): a policy file is one document".to_owned()
        }
        other => format!("YAML limit exceeded: {other:?}"),
    }
}
