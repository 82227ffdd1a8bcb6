//! The report's self-contained `index.html`: tables, the sample-efficiency chart, per-stage
//! training curves and confusion matrices, data sizes, the pipeline graph and the spec.

use std::fmt::Write as _;

use super::chart::{esc, line_chart, sample_efficiency, Range};
use serde_json::Value;

use super::{data_sizes, groups, results_table, Row};
use crate::plan::Plan;
use crate::spec::Study;
use crate::stages::Product;
use crate::workspace::Workspace;

pub(super) fn html(study: &Study, plan: &Plan, ws: &Workspace, rows: &[Row]) -> String {
    let mut s = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    s.push_str(&esc(&study.name));
    s.push_str("</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}td:first-child,td:nth-child(2){text-align:left}pre{background:#f8f8f8;padding:1em;overflow:auto}figure{margin:1em 0}</style></head><body>");
    let _ = write!(
        s,
        "<h1>{}</h1><p>{} variant(s), {} repeat(s) each; mean ± standard deviation over repeats.</p>",
        esc(&study.name),
        study.variants.len(),
        study.repeats
    );
    s.push_str("<h2>Results</h2><table><tr><th>variant</th><th>stage</th><th>n</th><th>accuracy %</th><th>macro-F1 %</th><th>majority %</th><th>seeds</th></tr>");
    for cells in results_table(rows) {
        s.push_str("<tr>");
        for c in cells {
            let _ = write!(s, "<td>{}</td>", esc(&c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");

    for metric_name in ["accuracy", "macro_f1"] {
        s.push_str(&sample_efficiency(rows, metric_name));
    }

    // Training curves of the first repeat of each group.
    let mut loss_series = Vec::new();
    let mut dev_series = Vec::new();
    for (_, rs) in groups(rows) {
        let Some(r) = rs.first() else { continue };
        let Some(h) = r.history.as_ref().and_then(Value::as_array) else {
            continue;
        };
        let name = format!(
            "{}@{}",
            r.model_stage,
            if r.group.is_empty() { "spec" } else { &r.group }
        );
        let loss: Vec<(f64, f64, f64)> = h
            .iter()
            .filter_map(|e| Some((e["epoch"].as_f64()?, e["train_loss"].as_f64()?, 0.0)))
            .collect();
        let dev: Vec<(f64, f64, f64)> = h
            .iter()
            .filter_map(|e| Some((e["epoch"].as_f64()?, e["dev_accuracy"].as_f64()?, 0.0)))
            .collect();
        loss_series.push((name.clone(), loss));
        if !dev.is_empty() {
            dev_series.push((name, dev));
        }
    }
    if !loss_series.is_empty() {
        s.push_str("<h2>Training</h2>");
        s.push_str(&line_chart(
            "training loss per epoch",
            "epoch",
            "cross-entropy",
            &loss_series,
            false,
            Range::NonNegative,
            &[],
        ));
        s.push_str(&line_chart(
            "dev accuracy per epoch",
            "epoch",
            "accuracy",
            &dev_series,
            false,
            Range::Unit,
            &[],
        ));
    }

    // Pretraining curves.
    let mut pre_series = Vec::new();
    let mut pre_keys: Vec<String> = Vec::new();
    for p in plan.all().filter(|p| p.produces() == Some(Product::Encoder)) {
        let Ok(files) = ws.store.verified_files(&p.key) else {
            continue;
        };
        let Ok(bytes) = std::fs::read(files.join("encoder.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        let pts: Vec<(f64, f64, f64)> = v["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|e| Some((e["epoch"].as_f64()?, e["held_out_loss"].as_f64()?, 0.0)))
                    .collect()
            })
            .unwrap_or_default();
        // One entry per job: a pretraining run shared by many variants is drawn once.
        if !pts.is_empty() && !pre_keys.contains(&p.key) {
            let shared = plan.all().filter(|q| q.key == p.key).count();
            let name = if shared > 1 {
                format!("{} ({shared} variants)", p.stage)
            } else {
                p.name.clone()
            };
            pre_keys.push(p.key.clone());
            pre_series.push((name, pts));
        }
    }
    if !pre_series.is_empty() {
        s.push_str("<h2>Pretraining</h2>");
        s.push_str(&line_chart(
            "held-out loss per epoch",
            "epoch",
            "negative-sampling loss",
            &pre_series,
            false,
            Range::NonNegative,
            &[],
        ));
    }

    // Confusion matrices of the first repeat of each group.
    s.push_str("<h2>Confusion matrices</h2>");
    for ((group, stage), rs) in groups(rows).into_iter().take(24) {
        let Some(m) = rs.first().and_then(|r| r.metrics.as_ref()) else {
            continue;
        };
        let labels: Vec<String> = m["labels"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let _ = write!(
            s,
            "<h3>{}@{}</h3><table><tr><th>true \\ predicted</th>",
            esc(&stage),
            esc(&group)
        );
        for l in &labels {
            let _ = write!(s, "<th>{}</th>", esc(l));
        }
        s.push_str("</tr>");
        if let Some(rows) = m["confusion"].as_array() {
            for (i, row) in rows.iter().enumerate() {
                let _ = write!(
                    s,
                    "<tr><th>{}</th>",
                    esc(labels.get(i).map(String::as_str).unwrap_or("?"))
                );
                for c in row.as_array().into_iter().flatten() {
                    let _ = write!(s, "<td>{c}</td>");
                }
                s.push_str("</tr>");
            }
        }
        s.push_str("</table>");
    }

    let sizes = data_sizes(plan, ws);
    if !sizes.is_empty() {
        s.push_str("<h2>Data</h2><table><tr><th>dataset</th><th>rows</th></tr>");
        for (k, n) in sizes {
            let _ = write!(s, "<tr><td>{}</td><td>{n}</td></tr>", esc(&k));
        }
        s.push_str("</table>");
    }
    s.push_str("<h2>Artefact keys</h2><table><tr><th>stage</th><th>key</th></tr>");
    for r in rows {
        let _ = write!(
            s,
            "<tr><td>{}@{}</td><td><code>{}</code></td></tr>",
            esc(&r.stage),
            esc(&r.variant),
            &r.key[..16]
        );
    }
    s.push_str("</table><h2>Pipeline</h2>");
    s.push_str(&crate::graph::svg(study));
    s.push_str("<details><summary>Mermaid source</summary><pre>");
    s.push_str(&esc(&crate::graph::mermaid(study)));
    s.push_str("</pre></details><h2>Spec</h2><pre>");
    s.push_str(&esc(&std::fs::read_to_string(&study.file).unwrap_or_default()));
    s.push_str("</pre></body></html>\n");
    s
}
