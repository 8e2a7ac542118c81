//! SARIF 2.1.0: one result per workload the webhook would deny (`error`) or admit with a warning (`warning`),
//! its rule the reason code; manifests and lists are physical locations (file and line), cluster objects
//! logical ones (`namespace/Kind/name`).
use std::collections::BTreeMap;

use kibaship_policy::Answer;
use serde_json::{Value, json};

use crate::inventory::Origin;
use crate::report::Report;

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The tool's `informationUri`: this command's documentation, on the project's domain (the one the report
/// schema, [`crate::REPORT_SCHEMA`], and the policy API group `kibaship.io/v1alpha1` use).
pub const INFORMATION_URI: &str = "https://kibaship.io/docs/audit";

/// Percent-encodes a path so it is a valid URI reference (`/` kept).
fn uri_reference(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.trim_start_matches("./").bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The report as a SARIF 2.1.0 log (pretty-printed JSON, ends with a newline).
pub fn report_sarif(report: &Report) -> String {
    let mut rules: BTreeMap<String, usize> = BTreeMap::new();
    let mut rule_list: Vec<Value> = Vec::new();
    let mut results = Vec::new();
    for w in &report.workloads {
        let level = match w.answer {
            Answer::Deny => "error",
            Answer::AdmitWithWarning => "warning",
            _ => continue,
        };
        let code = w.code.clone().unwrap_or_else(|| "not-verified".to_owned());
        let index = *rules.entry(code.clone()).or_insert_with(|| {
            rule_list.push(json!({
                "id": code,
                "name": code,
                "shortDescription": { "text": format!("image not verified: {code}") },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["security", "supply-chain"] },
            }));
            rule_list.len() - 1
        });
        let failing: Vec<String> = w
            .containers
            .iter()
            .filter(|c| c.answer == w.answer)
            .map(|c| {
                format!(
                    "container {} runs {} ({})",
                    c.name,
                    c.image,
                    c.code.as_deref().unwrap_or("-")
                )
            })
            .collect();
        let verb = if w.answer == Answer::Deny {
            "would deny"
        } else {
            "would warn about"
        };
        let message = format!(
            "The admission webhook {verb} {} {}/{}: {}",
            w.kind,
            w.namespace,
            w.name,
            failing.join("; ")
        );
        let logical = json!([{
            "fullyQualifiedName": format!("{}/{}/{}", w.namespace, w.kind, w.name),
            "kind": "resource",
        }]);
        let location = match &w.origin {
            Origin::Manifest { file, line, .. } | Origin::ImageList { file, line } => json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": uri_reference(file) },
                    "region": { "startLine": line },
                },
                "logicalLocations": logical,
            }),
            Origin::Cluster | Origin::Argument { .. } => json!({ "logicalLocations": logical }),
        };
        results.push(json!({
            "ruleId": code,
            "ruleIndex": index,
            "level": level,
            "message": { "text": message },
            "locations": [location],
            "partialFingerprints": {
                "workload/v1": format!("{}/{}/{}", w.namespace, w.kind, w.name),
            },
        }));
    }
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "kibaverify audit",
                "informationUri": INFORMATION_URI,
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rule_list,
            }},
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}
