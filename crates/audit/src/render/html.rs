//! One self-contained HTML page: a summary chart (inline SVG), the containers' table (sortable by any column,
//! filterable by namespace, answer and text; the filter can be set with the URL fragment
//! `#namespace=prod&answer=deny&sort=answer&dir=desc`), the images and the input problems. No network: style, script and chart are
//! inline, and the page's content security policy forbids every fetch.
use std::collections::BTreeSet;
use std::fmt::Write as _;

use kibaship_policy::Answer;

use crate::report::Report;

/// Escapes text for HTML element content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

const ANSWERS: [(Answer, &str); 5] = [
    (Answer::Deny, "#c62828"),
    (Answer::AdmitWithWarning, "#ef8f00"),
    (Answer::Exception, "#6a1b9a"),
    (Answer::Admit, "#2e7d32"),
    (Answer::NotSelected, "#78909c"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0;cursor:pointer;user-select:none}
td.answer{font-weight:600}
tr.deny td.answer{color:#c62828}tr.admit-with-warning td.answer{color:#ef8f00}
tr.admit td.answer{color:#2e7d32}tr.exception td.answer{color:#6a1b9a}
code{font-size:.85rem}.controls label{margin-right:1rem}";

const SCRIPT: &str = r#"(function(){
var table=document.getElementById('containers');
var rows=Array.prototype.slice.call(table.tBodies[0].rows);
var ns=document.getElementById('filter-namespace'),an=document.getElementById('filter-answer'),tx=document.getElementById('filter-text');
var sorted={column:'',dir:''};
function apply(){var shown=0;rows.forEach(function(r){var ok=(!ns.value||r.dataset.namespace===ns.value)&&(!an.value||r.dataset.answer===an.value)&&(!tx.value||r.textContent.toLowerCase().indexOf(tx.value.toLowerCase())>=0);if(ok){r.removeAttribute('hidden');shown++;}else{r.setAttribute('hidden','');}});document.getElementById('shown-count').textContent=shown+' of '+rows.length+' containers shown';}
function sortBy(t,i,asc){var hs=t.tHead.rows[0].cells,b=t.tBodies[0],rs=Array.prototype.slice.call(b.rows);for(var j=0;j<hs.length;j++){delete hs[j].dataset.sort;}hs[i].dataset.sort=asc?'asc':'desc';rs.sort(function(x,y){var a=x.cells[i].dataset.key||x.cells[i].textContent,c=y.cells[i].dataset.key||y.cells[i].textContent;return (asc?1:-1)*a.localeCompare(c,undefined,{numeric:true});});rs.forEach(function(r){b.appendChild(r);});if(t===table){sorted={column:hs[i].textContent.toLowerCase(),dir:asc?'asc':'desc'};}}
function columnOf(t,name){var hs=t.tHead.rows[0].cells;for(var i=0;i<hs.length;i++){if(hs[i].textContent.toLowerCase()===name){return i;}}return -1;}
function fromHash(){var p=new URLSearchParams(location.hash.replace(/^#/,''));ns.value=p.get('namespace')||'';an.value=p.get('answer')||p.get('verdict')||'';tx.value=p.get('q')||'';var c=columnOf(table,(p.get('sort')||'').toLowerCase());if(c>=0){sortBy(table,c,p.get('dir')!=='desc');}apply();}
function toHash(){var p=new URLSearchParams();if(ns.value)p.set('namespace',ns.value);if(an.value)p.set('answer',an.value);if(tx.value)p.set('q',tx.value);if(sorted.column){p.set('sort',sorted.column);p.set('dir',sorted.dir);}history.replaceState(null,'','#'+p.toString());apply();}
[ns,an].forEach(function(e){e.addEventListener('change',toHash);});tx.addEventListener('input',toHash);
window.addEventListener('hashchange',fromHash);
document.querySelectorAll('table.sortable').forEach(function(t){var hs=t.tHead.rows[0].cells;Array.prototype.forEach.call(hs,function(h,i){h.addEventListener('click',function(){sortBy(t,i,h.dataset.sort!=='asc');if(t===table){toHash();}});});});
fromHash();})();"#;

/// The summary chart: one bar per answer, workloads counted.
fn chart(report: &Report) -> String {
    let counts: Vec<(Answer, &str, usize)> = ANSWERS
        .iter()
        .map(|(a, color)| {
            (
                *a,
                *color,
                report.summary.answers.get(a.as_str()).copied().unwrap_or(0),
            )
        })
        .collect();
    let max = counts.iter().map(|c| c.2).max().unwrap_or(0).max(1);
    let mut svg = String::from(
        "<svg id=\"summary-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"150\" role=\"img\" aria-label=\"workloads by answer\">",
    );
    for (i, (answer, color, count)) in counts.iter().enumerate() {
        let y = 10 + i * 27;
        let width = 300 * count / max;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect class=\"bar\" data-answer=\"{}\" data-count=\"{count}\" x=\"150\" y=\"{y}\" width=\"{width}\" height=\"20\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{count}</text>",
            y + 15,
            answer.as_str(),
            answer.as_str(),
            156 + width,
            y + 15
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The report as one HTML document.
pub fn report_html(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::with_capacity(4096 + 512 * s.containers);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\
<title>kibaverify audit {}</title><style>{STYLE}</style></head><body>\
<h1>kibaverify audit</h1><p id=\"summary\">Generated {}. {} workloads, {} containers, {} images ({} digests, {} verifications); {} input errors.</p>",
        esc(&report.generated_at),
        esc(&report.generated_at),
        s.workloads,
        s.containers,
        s.images,
        s.digests,
        s.verifications,
        s.input_errors
    );
    out.push_str(&chart(report));

    let namespaces: BTreeSet<&str> = report
        .workloads
        .iter()
        .map(|w| w.namespace.as_str())
        .collect();
    out.push_str("<h2>Containers</h2><div class=\"controls\"><label>Namespace <select id=\"filter-namespace\"><option value=\"\">all</option>");
    for ns in &namespaces {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", esc(ns));
    }
    out.push_str("</select></label><label>Answer <select id=\"filter-answer\"><option value=\"\">all</option>");
    for (answer, _) in ANSWERS {
        let _ = write!(out, "<option value=\"{0}\">{0}</option>", answer.as_str());
    }
    out.push_str("</select></label><label>Search <input id=\"filter-text\" type=\"search\"></label><span id=\"shown-count\"></span></div>");
    out.push_str("<table id=\"containers\" class=\"sortable\"><thead><tr><th>Namespace</th><th>Kind</th><th>Name</th><th>Container</th><th>Image</th><th>Digest</th><th>Answer</th><th>Code</th><th>Source</th></tr></thead><tbody>");
    for w in &report.workloads {
        for c in &w.containers {
            let rank = crate::report::answer_rank(c.answer);
            let _ = write!(
                out,
                "<tr class=\"{answer}\" data-namespace=\"{ns}\" data-answer=\"{answer}\"><td>{ns}</td><td>{kind}</td><td>{name}</td><td>{container}</td><td><code>{image}</code></td><td><code>{digest}</code></td><td class=\"answer\" data-key=\"{rank}\">{answer}</td><td>{code}</td><td>{source}</td></tr>",
                answer = c.answer.as_str(),
                ns = esc(&w.namespace),
                kind = esc(&w.kind),
                name = esc(&w.name),
                container = esc(&c.name),
                image = esc(&c.image),
                digest = esc(c.digest.as_deref().unwrap_or("-")),
                code = esc(c.code.as_deref().unwrap_or("")),
                source = esc(&w.origin.describe()),
            );
        }
    }
    out.push_str("</tbody></table>");

    out.push_str("<h2>Images</h2><table id=\"images\" class=\"sortable\"><thead><tr><th>Image</th><th>Digest</th><th>Status</th><th>Code</th><th>Signed by</th><th>Attestations</th><th>Used by</th></tr></thead><tbody>");
    for i in &report.images {
        let attestations: Vec<String> = i
            .attestations
            .iter()
            .map(crate::report::AttestationEntry::describe)
            .collect();
        let _ = write!(
            out,
            "<tr data-status=\"{status}\"><td><code>{reference}</code>{secret}</td><td><code>{digest}</code></td><td>{status}</td><td title=\"{message}\">{code}</td><td>{signers}</td><td>{attestations}</td><td data-key=\"{used}\">{used}</td></tr>",
            status = i.status.as_str(),
            reference = esc(&i.reference),
            secret = i
                .pull_secret
                .as_deref()
                .map(|s| format!(" (pull secret <code>{}</code>)", esc(s)))
                .unwrap_or_default(),
            digest = esc(i.digest.as_deref().unwrap_or("-")),
            message = esc(i.message.as_deref().unwrap_or("")),
            code = esc(i.code.as_deref().unwrap_or("")),
            signers = esc(&i.signers.join(", ")),
            attestations = esc(&attestations.join(", ")),
            used = i.used_by,
        );
    }
    out.push_str("</tbody></table>");

    if !report.problems.is_empty() {
        out.push_str("<h2>Input problems</h2><ul id=\"problems\">");
        for p in &report.problems {
            let severity = match p.severity {
                crate::Severity::Error => "error",
                crate::Severity::Note => "note",
            };
            let _ = write!(
                out,
                "<li class=\"{severity}\"><b>{severity}</b> <code>{}</code>: {}</li>",
                esc(&p.input),
                esc(&p.message)
            );
        }
        out.push_str("</ul>");
    }
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}
