//! The management-review pack: a self-contained HTML page (inline CSS and SVG charts) of the
//! 9.3.2 inputs, rendered from `get_management_review_inputs`.

use std::fmt::Write as _;

use serde_json::Value;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn list(v: &Value) -> String {
    let items: Vec<String> =
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(esc).collect()).unwrap_or_default();
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

/// A horizontal bar chart of label → count, as inline SVG.
fn bars(title: &str, counts: &Value) -> String {
    let Some(map) = counts.as_object().filter(|m| !m.is_empty()) else {
        return format!("<p><em>{}: nothing in the period</em></p>", esc(title));
    };
    let max = map.values().filter_map(Value::as_u64).max().unwrap_or(1).max(1);
    let row = 26;
    let height = row * map.len() + 30;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"520\" height=\"{height}\" role=\"img\">",
        esc(title)
    );
    for (i, (label, n)) in map.iter().enumerate() {
        let n = n.as_u64().unwrap_or(0);
        let width = 300 * n / max;
        let y = 10 + i * row;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text><rect x=\"140\" y=\"{}\" width=\"{width}\" height=\"18\" fill=\"#3b6ea5\"/><text x=\"{}\" y=\"{}\" font-size=\"13\">{n}</text>",
            y + 14,
            esc(label),
            y,
            145 + width,
            y + 14
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

/// Renders the pack for `inputs` (the output of `get_management_review_inputs`).
pub fn review_pack(inputs: &Value) -> String {
    let d = &inputs["d_performance"];
    let nc = &d["nonconformities"];
    let f = &inputs["f_risks"];
    let g = &inputs["g_opportunities"];
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Management review inputs</title><style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222}h2{border-bottom:1px solid #ccc}td,th{padding:4px 8px;text-align:left;border-bottom:1px solid #eee}figure{margin:1em 0}</style></head><body>",
    );
    let _ = write!(
        out,
        "<h1>Management review inputs</h1><p>ISO/IEC 27001:2022 clause 9.3.2, computed from the ISMS records for {} to {}.</p>",
        esc(inputs["since"].as_str().unwrap_or_default()),
        esc(inputs["until"].as_str().unwrap_or_default())
    );
    out.push_str("<h2>a) Actions from previous reviews</h2><table><tr><th>Action</th><th>Owner</th><th>Due</th><th>Status</th></tr>");
    for a in inputs["a_previous_actions"].as_array().into_iter().flatten() {
        let status =
            if a["overdue"] == true { "OVERDUE".to_owned() } else { esc(a["status"].as_str().unwrap_or_default()) };
        let _ = write!(
            out,
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{status}</td></tr>",
            esc(a["ref"].as_str().unwrap_or_default()),
            esc(a["description"].as_str().unwrap_or_default()),
            esc(a["owner"].as_str().unwrap_or_default()),
            esc(a["due_date"].as_str().unwrap_or_default())
        );
    }
    out.push_str("</table>");
    for (heading, key) in
        [("b) Internal and external issues", "b_issues"), ("c) Interested parties", "c_interested_parties")]
    {
        let _ = write!(out, "<h2>{heading}</h2><ul>");
        for c in inputs[key].as_array().into_iter().flatten() {
            let _ = write!(
                out,
                "<li><strong>{}</strong>: {} <small>(changed {})</small></li>",
                esc(c["name"].as_str().unwrap_or_default()),
                esc(c["description"].as_str().unwrap_or_default()),
                esc(c["changed_at"].as_str().unwrap_or_default())
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("<h2>d) Information security performance</h2>");
    out.push_str(&bars("Nonconformities logged per month", &nc["by_month"]));
    out.push_str(&bars("Nonconformities logged by severity", &nc["by_severity"]));
    let _ = write!(
        out,
        "<p>Logged: {} ({}). Closed: {} ({}). Open now: {}. Corrective actions done: {} ({}); overdue: {} ({}).</p>",
        nc["totals"]["logged"],
        list(&nc["logged"]),
        nc["totals"]["closed"],
        list(&nc["closed"]),
        nc["open"],
        nc["totals"]["actions_done"],
        list(&nc["actions_done"]),
        nc["totals"]["actions_overdue"],
        list(&nc["actions_overdue"])
    );
    out.push_str("<table><tr><th>Objective</th><th>Period</th><th>Value</th><th>Target met</th></tr>");
    for m in d["measurements"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m["objective"].as_str().unwrap_or_default()),
            esc(m["period"].as_str().unwrap_or_default()),
            m["value"],
            if m["met"] == true { "yes" } else { "no" }
        );
    }
    let _ = write!(
        out,
        "</table><p>Objectives met: {}; not met: {}; not measured: {}.</p><ul>",
        list(&d["objectives_met"]),
        list(&d["objectives_not_met"]),
        list(&d["objectives_unmeasured"])
    );
    for a in d["audits"].as_array().into_iter().flatten() {
        let _ = write!(
            out,
            "<li>{} ({}): {}; findings: {}</li>",
            esc(a["ref"].as_str().unwrap_or_default()),
            esc(a["date"].as_str().unwrap_or_default()),
            esc(a["conclusion"].as_str().unwrap_or_default()),
            list(&a["findings"])
        );
    }
    let _ = write!(
        out,
        "</ul><h2>e) Feedback from interested parties</h2><p>Complaints: {} ({}).</p>",
        inputs["e_feedback"]["complaints_total"],
        list(&inputs["e_feedback"]["complaints"])
    );
    out.push_str("<h2>f) Risk assessment and treatment</h2>");
    out.push_str(&bars("Risks by level", &f["by_level"]));
    out.push_str(&bars("Risks by treatment", &f["by_treatment"]));
    let _ = write!(
        out,
        "<p>Residual risk accepted: {}. Awaiting acceptance: {}. High or critical without treatment: {}.</p>",
        list(&f["accepted"]),
        list(&f["awaiting_acceptance"]),
        list(&f["high_untreated"])
    );
    let _ = writeln!(
        out,
        "<h2>g) Opportunities for improvement</h2><p>Observations: {} ({}). Changes needing control or SoA updates: {}. Stale evidence: {}. Untraceable controls: {}.</p></body></html>",
        g["observations_total"],
        list(&g["observations"]),
        list(&g["changes_needing_updates"]),
        list(&g["stale_evidence"]),
        list(&g["untraceable"])
    );
    out
}
