//! The report's outputs: a table for terminals, the stable JSON ([`crate::REPORT_SCHEMA`]), SARIF 2.1.0 for
//! code-scanning UIs (one result per workload the webhook would deny or warn about) and one self-contained HTML
//! page (no network: inline style, script and SVG chart; sortable, filterable by namespace and answer).
mod html;
mod sarif;
mod table;

pub use html::report_html;
pub use sarif::{INFORMATION_URI, report_sarif};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ContainerKind, Origin, Problem};
    use crate::report::{
        ContainerEntry, FailOn, ImageEntry, ImageStatus, PolicyResult, REPORT_SCHEMA,
        RequirementsInfo, Summary, WorkloadEntry,
    };
    use kibaship_policy::Answer;

    fn report() -> Report {
        let hostile = "r.example/a:<script>alert(1)</script>\u{1b}[31m";
        let policy = PolicyResult {
            policy: "p".into(),
            mode: "enforce",
            verified: Some(false),
            code: Some("unsigned".into()),
        };
        Report {
            schema: REPORT_SCHEMA,
            generated_at: "2026-01-01T00:00:00Z".into(),
            requirements: RequirementsInfo::Flags,
            summary: Summary::default(),
            images: vec![ImageEntry {
                reference: hostile.into(),
                digest: None,
                status: ImageStatus::NotVerified,
                code: Some("unsigned".into()),
                message: None,
                pull_secret: None,
                signers: vec![],
                attestations: vec![],
                policies: vec![policy.clone()],
                used_by: 1,
            }],
            workloads: vec![WorkloadEntry {
                namespace: "prod".into(),
                kind: "Pod".into(),
                name: "p".into(),
                origin: Origin::Manifest {
                    file: "dir/my app.yaml".into(),
                    document: 1,
                    line: 3,
                },
                answer: Answer::Deny,
                code: Some("unsigned".into()),
                containers: vec![ContainerEntry {
                    name: "c".into(),
                    container_kind: ContainerKind::Container,
                    image: hostile.into(),
                    digest: None,
                    answer: Answer::Deny,
                    code: Some("unsigned".into()),
                    policies: vec![policy],
                    exception: None,
                }],
            }],
            problems: vec![Problem::note("x.yaml:1", "kind Service")],
        }
    }

    #[test]
    fn hostile_text_is_escaped_in_every_output() {
        let report = report();
        let html = report_html(&report);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&#27;[31m"));
        let table = report_table(&report);
        assert!(
            !table.contains('\u{1b}') && table.contains("\\u{1b}[31m"),
            "{table}"
        );
        assert_eq!(report.exit_code(FailOn::Denied), 1);
        assert_eq!(report.exit_code(FailOn::Unsigned), 1);
    }

    #[test]
    fn json_and_sarif_shapes() {
        let report = report();
        let json: serde_json::Value = serde_json::from_str(&report_json(&report)).expect("json");
        assert_eq!(json["schema"], REPORT_SCHEMA);
        assert_eq!(json["requirements"], serde_json::json!({"kind": "flags"}));
        assert_eq!(
            json["workloads"][0]["origin"],
            serde_json::json!({"type": "manifest", "file": "dir/my app.yaml", "document": 1, "line": 3})
        );
        assert_eq!(
            json["workloads"][0]["containers"][0]["containerKind"],
            "container"
        );
        assert_eq!(json["images"][0]["usedBy"], 1);
        assert_eq!(json["problems"][0]["severity"], "note");
        let sarif: serde_json::Value = serde_json::from_str(&report_sarif(&report)).expect("sarif");
        let driver = &sarif["runs"][0]["tool"]["driver"];
        assert_eq!(driver["informationUri"], "https://kibaship.io/docs/audit");
        assert_eq!(driver["name"], "kibaverify audit");
        let result = &sarif["runs"][0]["results"][0];
        assert_eq!(result["ruleId"], "unsigned");
        assert_eq!(result["level"], "error");
        assert_eq!(
            result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "dir/my%20app.yaml"
        );
        assert_eq!(
            result["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
    }
}
