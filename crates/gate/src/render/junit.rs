//! JUnit XML: one test case per finding in scope, so CI dashboards list each one.
//!
//! A failed finding is a `<failure>` (type = the first failing rule), a finding accepted by an
//! exception is `<skipped>` with the exception's reason, and a report without findings gets a
//! single passing `gate` test case.
use std::fmt::Write as _;

use super::GATE_VERSION;
use crate::gate::{Outcome, Verdict};

/// Escapes text for XML 1.0 attributes and content; characters XML 1.0 forbids are dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The verdict as a JUnit XML document.
pub fn verdict_junit(verdict: &Verdict<'_>) -> String {
    let failures = verdict.failing().count();
    let skipped = verdict
        .findings
        .iter()
        .filter(|f| matches!(f.outcome, Outcome::Excepted(_)))
        .count();
    let tests = verdict.findings.len().max(1);
    let suite = escape(verdict.artifact_name.as_deref().unwrap_or("trivy report"));
    let mut out = String::with_capacity(256 + verdict.findings.len() * 200);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"kibaship-gate\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{suite}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    let _ = writeln!(out, "    <properties>");
    let _ = writeln!(
        out,
        "      <property name=\"gate.version\" value=\"{GATE_VERSION}\"/>"
    );
    let _ = writeln!(
        out,
        "      <property name=\"gate.verdict\" value=\"{}\"/>",
        verdict.word()
    );
    for rule in &verdict.rules {
        let _ = writeln!(
            out,
            "      <property name=\"gate.rule\" value=\"{}\"/>",
            escape(rule)
        );
    }
    let _ = writeln!(out, "    </properties>");
    if verdict.findings.is_empty() {
        let _ = writeln!(
            out,
            "    <testcase classname=\"kibaship-gate\" name=\"gate\"/>"
        );
    }
    for finding in &verdict.findings {
        let mut name = format!("{} [{}]", finding.id(), finding.severity().as_trivy());
        if let Some(package) = finding.package() {
            let _ = write!(name, " {package}");
            if let Some(version) = finding.installed_version() {
                let _ = write!(name, "@{version}");
            }
        }
        let classname = format!("{}.{}", finding.kind(), finding.target());
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\"",
            escape(&classname),
            escape(&name)
        );
        match &finding.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Excepted(index) => {
                let reason = verdict
                    .exceptions
                    .get(*index)
                    .map(|o| {
                        let e = o.exception;
                        format!(
                            "accepted by {} {}: {}",
                            e.file,
                            e.location,
                            e.reason.as_deref().unwrap_or("no reason given")
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                    escape(&reason)
                );
            }
            Outcome::Failed(hits) => {
                let kind = hits.first().map(|h| h.rule.as_str()).unwrap_or("gate");
                let message: Vec<&str> = hits.iter().map(|h| h.detail.as_str()).collect();
                let mut body = String::new();
                if let Some(title) = finding.title() {
                    let _ = writeln!(body, "{title}");
                }
                let _ = writeln!(body, "target: {}", finding.location());
                if let Some(fixed) = finding.fixed_version() {
                    let _ = writeln!(body, "fixed in: {fixed}");
                }
                if let Some(url) = finding.url() {
                    let _ = writeln!(body, "{url}");
                }
                let _ = write!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                    escape(&message.join("; ")),
                    kind,
                    escape(&body)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
