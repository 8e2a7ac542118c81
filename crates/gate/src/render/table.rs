//! The terminal table: what failed and why, counts, and the state of every exception.
use std::fmt::Write as _;

use kibaship_cli::terminal::Escaped;

use crate::gate::{ExceptionState, Verdict};
use crate::severity::Severity;

const MAX_CELL: usize = 48;

struct Style {
    colour: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn severity(&self, severity: Severity, padded: &str) -> String {
        let code = match severity {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "34",
            Severity::Unknown => "2",
        };
        self.paint(code, padded)
    }
}

/// A cell: report text (package names and versions come from the scanned image, so from whoever built it) with
/// control characters escaped, so that no escape code reaches the terminal, clipped to [`MAX_CELL`].
fn clip(text: &str) -> String {
    let text = Escaped(text).to_string();
    if text.chars().count() <= MAX_CELL {
        text
    } else {
        let mut clipped: String = text.chars().take(MAX_CELL - 1).collect();
        clipped.push('…');
        clipped
    }
}

fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    format!("{text}{}", " ".repeat(width.saturating_sub(len)))
}

/// Renders rows as aligned columns; `severity_column` (if any) is coloured.
fn write_rows(
    out: &mut String,
    style: &Style,
    rows: &[Vec<String>],
    severities: &[Option<Severity>],
) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (index, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let width = widths.get(c).copied().unwrap_or(0);
            let padded = if c + 1 == row.len() {
                cell.clone()
            } else {
                pad(cell, width)
            };
            let painted = match (c, severities.get(index).copied().flatten()) {
                (0, Some(severity)) => style.severity(severity, &padded),
                _ if index == 0 => style.paint("1", &padded),
                _ => padded,
            };
            line.push_str(&painted);
            if c + 1 < row.len() {
                line.push_str("  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// The verdict as a table for people; `colour` adds ANSI colours (use it only on a terminal).
pub fn verdict_table(verdict: &Verdict<'_>, colour: bool) -> String {
    let style = Style { colour };
    let mut out = String::new();
    let word = if verdict.passed {
        style.paint("1;32", "PASS")
    } else {
        style.paint("1;31", "FAIL")
    };
    let artifact = verdict
        .artifact_name
        .as_deref()
        .unwrap_or("(unnamed artifact)");
    let _ = writeln!(out, "gate: {word}  {}", Escaped(artifact));
    for rule in &verdict.rules {
        let _ = writeln!(out, "  rule: {rule}");
    }
    out.push('\n');

    let failing: Vec<_> = verdict.failing().collect();
    if failing.is_empty() {
        out.push_str("No finding failed the policy.\n");
    } else {
        let _ = writeln!(out, "Failing findings ({}):", failing.len());
        let mut rows = vec![
            [
                "SEVERITY",
                "ID",
                "PACKAGE",
                "INSTALLED",
                "FIXED",
                "TARGET",
                "RULE",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        let mut severities = vec![None];
        for finding in &failing {
            let rules: Vec<&str> = finding.rules().iter().map(|h| h.rule.as_str()).collect();
            rows.push(vec![
                finding.severity().as_trivy().to_owned(),
                clip(finding.id()),
                clip(finding.package().unwrap_or("-")),
                clip(finding.installed_version().unwrap_or("-")),
                clip(finding.fixed_version().unwrap_or("-")),
                clip(finding.location()),
                rules.join(", "),
            ]);
            severities.push(Some(finding.severity()));
        }
        write_rows(&mut out, &style, &rows, &severities);
    }
    out.push('\n');

    let mut rows = vec![vec!["VULNERABILITIES".to_owned()]];
    if let Some(header) = rows.first_mut() {
        header.extend(Severity::DESCENDING.iter().map(|s| s.as_trivy().to_owned()));
        header.push("TOTAL".to_owned());
    }
    for (name, counts) in [
        ("reported", verdict.counts.reported),
        ("before exceptions", verdict.counts.before_exceptions),
        ("after exceptions", verdict.counts.after_exceptions),
    ] {
        let mut row = vec![name.to_owned()];
        row.extend(
            Severity::DESCENDING
                .iter()
                .map(|s| counts.get(*s).to_string()),
        );
        row.push(counts.total().to_string());
        rows.push(row);
    }
    write_rows(&mut out, &style, &rows, &[]);
    if verdict.unfixed_ignored > 0 {
        let _ = writeln!(
            out,
            "({} vulnerabilities without a fix left out by ignore-unfixed)",
            verdict.unfixed_ignored
        );
    }

    if !verdict.exceptions.is_empty() {
        out.push('\n');
        out.push_str("Exceptions:\n");
        let mut rows = vec![
            ["STATE", "ID", "WHERE", "MATCHED", "EXPIRES", "REASON"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for outcome in &verdict.exceptions {
            let e = outcome.exception;
            let state = match outcome.state {
                ExceptionState::Applied => "applied",
                ExceptionState::Expired => "EXPIRED",
                ExceptionState::Stale => "stale",
            };
            rows.push(vec![
                state.to_owned(),
                clip(&e.id),
                clip(&format!("{} {}", e.file, e.location)),
                outcome.matched.to_string(),
                e.expires_text.clone().unwrap_or_else(|| "never".to_owned()),
                clip(e.reason.as_deref().unwrap_or("-")),
            ]);
        }
        write_rows(&mut out, &style, &rows, &[]);
    }
    for warning in &verdict.warnings {
        let _ = writeln!(
            out,
            "{}: {}",
            style.paint("33", "warning"),
            Escaped(&warning.to_string())
        );
    }
    out
}
