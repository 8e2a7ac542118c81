//! The terminal table: one line per container, then the images, the input problems and the counts.
use std::fmt::Write as _;

use super::escaped;
use crate::report::Report;

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The report as aligned text.
pub fn report_table(report: &Report) -> String {
    let mut rows = vec![vec![
        "NAMESPACE".to_owned(),
        "WORKLOAD".to_owned(),
        "CONTAINER".to_owned(),
        "IMAGE".to_owned(),
        "ANSWER".to_owned(),
        "CODE".to_owned(),
    ]];
    for w in &report.workloads {
        for c in &w.containers {
            rows.push(vec![
                escaped(&w.namespace),
                escaped(&format!("{}/{}", w.kind, w.name)),
                escaped(&c.name),
                escaped(&c.image),
                c.answer.as_str().to_owned(),
                c.code.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut rows = vec![vec![
        "IMAGE".to_owned(),
        "DIGEST".to_owned(),
        "STATUS".to_owned(),
        "SIGNED BY / WHY NOT".to_owned(),
    ]];
    for i in &report.images {
        let who = if !i.signers.is_empty() {
            let mut who = i.signers.join(", ");
            for a in &i.attestations {
                let _ = write!(who, "; attested {}", a.describe());
            }
            who
        } else {
            match (&i.code, &i.message) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.clone(),
                _ => "-".to_owned(),
            }
        };
        let image = match &i.pull_secret {
            Some(secret) => format!("{} (pull secret {secret})", i.reference),
            None => i.reference.clone(),
        };
        rows.push(vec![
            escaped(&image),
            i.digest.clone().unwrap_or_else(|| "-".to_owned()),
            i.status.as_str().to_owned(),
            escaped(&who),
        ]);
    }
    out.push_str(&table(&rows));
    if !report.problems.is_empty() {
        out.push('\n');
        for p in &report.problems {
            let severity = match p.severity {
                crate::Severity::Error => "error",
                crate::Severity::Note => "note",
            };
            let _ = writeln!(
                out,
                "{severity}: {}: {}",
                escaped(&p.input),
                escaped(&p.message)
            );
        }
    }
    let s = &report.summary;
    let answers: Vec<String> = s.answers.iter().map(|(k, v)| format!("{v} {k}")).collect();
    let _ = writeln!(
        out,
        "\n{} workloads, {} containers, {} images ({} digests, {} verifications): {}{}",
        s.workloads,
        s.containers,
        s.images,
        s.digests,
        s.verifications,
        if answers.is_empty() {
            "nothing to judge".to_owned()
        } else {
            answers.join(", ")
        },
        if s.input_errors > 0 {
            format!("; {} input errors", s.input_errors)
        } else {
            String::new()
        }
    );
    out
}
