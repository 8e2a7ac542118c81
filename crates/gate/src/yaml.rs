//! YAML for the policy and the ignore files (serde-saphyr), with limits that hold while parsing.
//!
//! A policy or ignore file is a small reviewed document, so the limits are far above any real
//! one: aliases (`*name`, which can multiply content), nesting depth (refused as soon as it is
//! reached, not after the whole document was parsed), nodes, events and scalar bytes.
use std::fmt;

use serde::de::DeserializeOwned;
use serde_saphyr::budget::BudgetBreach;

/// Most alias references (`*name`) in one policy or ignore file.
pub const MAX_YAML_ALIASES: usize = 1_000;
/// Most events replayed through aliases in one file (each alias replays its anchored node).
pub const MAX_YAML_REPLAYED_EVENTS: usize = 200_000;
/// Deepest nesting of mappings and sequences (the policy itself needs 4).
pub const MAX_YAML_DEPTH: usize = 32;
/// Most nodes (scalars, mappings, sequences) in one file.
pub const MAX_YAML_NODES: usize = 1_000_000;

/// A YAML document that could not be read: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// What is wrong (without the location).
    pub message: String,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, " at line {line} column {column}"),
            (Some(line), None) => write!(f, " at line {line}"),
            _ => Ok(()),
        }
    }
}

impl std::error::Error for YamlError {}

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
    options.with_snippet = false;
    options
}

/// Parses one YAML document into `T`.
pub(crate) fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options()).map_err(|error| convert(&error))
}

fn convert(error: &serde_saphyr::Error) -> YamlError {
    let error = error.without_snippet();
    let location = error.location().filter(|l| l.line() > 0);
    let (line, column) = (
        location.map(|l| l.line()),
        location.map(|l| l.column()).filter(|&c| c > 0),
    );
    let message = match error {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. } => format!(
            "YAML aliases replay more than {MAX_YAML_REPLAYED_EVENTS} events (an alias bomb?), the most the gate accepts"
        ),
        _ => {
            let text = error.to_string();
            let text = match location {
                Some(l) => text
                    .strip_suffix(&format!(" at line {}, column {}", l.line(), l.column()))
                    .map_or_else(|| text.clone(), str::to_owned),
                None => text,
            };
            // The parser's own limit on nested flow collections (`[[[`), set to the same depth.
            if text == "recursion limit exceeded" {
                budget_message(&BudgetBreach::Depth {
                    depth: MAX_YAML_DEPTH + 1,
                })
            } else {
                text
            }
        }
    };
    YamlError {
        message,
        line,
        column,
    }
}

fn budget_message(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Aliases { .. } => format!(
            "more than {MAX_YAML_ALIASES} YAML aliases (`*name`), the most the gate accepts in one file"
        ),
        BudgetBreach::Anchors { .. } => format!(
            "more than {MAX_YAML_ALIASES} YAML anchors (`&name`), the most the gate accepts in one file"
        ),
        BudgetBreach::Depth { .. } => {
            format!("YAML nested deeper than {MAX_YAML_DEPTH} levels, the most the gate accepts")
        }
        BudgetBreach::Nodes { .. } | BudgetBreach::Events { .. } => {
            format!("more than {MAX_YAML_NODES} YAML nodes, the most the gate accepts in one file")
        }
        BudgetBreach::Documents { .. } => {
            "more than one YAML document (`---`): a policy or ignore file is one document"
                .to_owned()
        }
        other => format!("YAML limit exceeded: {other:?}"),
    }
}
