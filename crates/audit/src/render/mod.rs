//! The report's outputs: a table for terminals, the stable JSON ([`crate::REPORT_SCHEMA`]), SARIF 2.1.0 for
//! code-scanning UIs (one result per workload the webhook would deny or warn about) and one self-contained HTML
//! page (no network: inline style, script and SVG chart; sortable, filterable by namespace and answer).
mod html;
mod sarif;
mod table;

pub use html::report_html;
pub use sarif::report_sarif;
pub use table::report_table;

use crate::report::Report;

/// The report as pretty-printed JSON (ends with a newline).
pub fn report_json(report: &Report) -> String {
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
    text.push('\n');
    text
}

/// Text with control characters escaped (registry- and manifest-supplied text goes to terminals).
pub(crate) fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
