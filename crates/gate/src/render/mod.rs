//! Verdict outputs: terminal table, JSON (stable interface), JUnit XML, SARIF 2.1.0.
mod json;
mod junit;
mod sarif;
mod table;

pub use json::{VERDICT_SCHEMA, verdict_json};
pub use junit::verdict_junit;
pub use sarif::verdict_sarif;
pub use table::verdict_table;

/// The gate's own version, written into SARIF and JUnit outputs.
pub const GATE_VERSION: &str = env!("CARGO_PKG_VERSION");
