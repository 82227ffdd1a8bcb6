//! Reports that compare variants: `report.md`, a self-contained `index.html` with inline SVG
//! plots, and `metrics.csv` (one row per variant × evaluate stage).
//!
//! Everything is read from the store — the report never reruns anything — so a report only
//! covers stages whose current key has an entry; missing ones are listed as not run.
//! Repeats of a variant (same overrides, different seeds) are aggregated as mean ± standard
//! deviation, and the seeds and row counts are printed beside the numbers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::plan::Plan;
use crate::spec::Study;
use crate::stages::Product;
use crate::workspace::Workspace;

mod chart;
mod html;

pub use chart::sample_efficiency;

/// One evaluate stage of one variant, with what the report needs.
#[derive(Debug, Clone)]
pub struct Row {
    pub variant: String,
    /// The variant's name without its `seed=N` part: repeats share a group.
    pub group: String,
    pub stage: String,
    pub seed: u64,
    pub definition: Vec<(String, String)>,
    pub key: String,
    pub metrics: Option<Value>,
    /// Per-epoch history of the trained model this stage evaluates.
    pub history: Option<Value>,
    pub model_stage: String,
}

/// Collects the evaluate stages of every variant.
pub fn rows(study: &Study, plan: &Plan, ws: &Workspace) -> Vec<Row> {
    let mut out = Vec::new();
    for p in plan.all().filter(|p| p.produces() == Some(Product::Metrics)) {
        let spec = &study.variants[p.variant];
        // Only verified entries are reported; a corrupt one reads as "not run".
        let read = |key: &str, file: &str| -> Option<Value> {
            let bytes = std::fs::read(ws.store.verified_files(key).ok()?.join(file)).ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let metrics = read(&p.key, "metrics.json");
        let model_stage = p.fingerprint.params["model"].as_str().unwrap_or_default().to_string();
        let history = p
            .fingerprint
            .inputs
            .get(&model_stage)
            .and_then(|i| read(&i.key, "history.json"));
        let group = spec
            .variant
            .split(',')
            .filter(|part| !part.starts_with("seed="))
            .collect::<Vec<_>>()
            .join(",");
        out.push(Row {
            variant: spec.variant.clone(),
            group,
            stage: p.stage.clone(),
            seed: spec.seed,
            definition: study.definitions[p.variant].clone(),
            key: p.key.clone(),
            metrics,
            history,
            model_stage,
        });
    }
    out
}

fn metric(r: &Row, name: &str) -> Option<f64> {
    r.metrics.as_ref()?.get(name)?.as_f64()
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// (group, stage) → rows, in first-seen order.
fn groups(rows: &[Row]) -> Vec<((String, String), Vec<&Row>)> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut map: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
    for r in rows {
        let k = (r.group.clone(), r.stage.clone());
        if !map.contains_key(&k) {
            order.push(k.clone());
        }
        map.entry(k).or_default().push(r);
    }
    order
        .into_iter()
        .map(|k| (k.clone(), map.remove(&k).unwrap_or_default()))
        .collect()
}

fn pct(x: f64) -> String {
    format!("{:.1}", 100.0 * x)
}

fn summary_cell(rs: &[&Row], name: &str) -> String {
    let v: Vec<f64> = rs.iter().filter_map(|r| metric(r, name)).collect();
    if v.is_empty() {
        return "not run".into();
    }
    let (m, s) = mean_std(&v);
    if v.len() > 1 {
        format!("{} ± {}", pct(m), pct(s))
    } else {
        pct(m)
    }
}

/// Writes report.md, index.html and metrics.csv into `out`.
pub fn write(study: &Study, plan: &Plan, ws: &Workspace, out: &Path) -> Result<Vec<Row>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let rows = rows(study, plan, ws);
    write_csv(&rows, &out.join("metrics.csv"))?;
    let md = markdown(study, plan, ws, &rows);
    crate::store::write_atomic(&out.join("report.md"), md.as_bytes())?;
    let html = html::html(study, plan, ws, &rows);
    crate::store::write_atomic(&out.join("index.html"), html.as_bytes())?;
    // The curve on its own, as a standalone SVG file (for READMEs and slides).
    let chart = sample_efficiency(&rows, "accuracy");
    if let (Some(a), Some(b)) = (chart.find("<svg"), chart.find("</svg>")) {
        let svg = chart[a..b + 6].replacen("<svg ", "<svg xmlns=\"http://www.w3.org/2000/svg\" ", 1);
        crate::store::write_atomic(&out.join("sample-efficiency.svg"), svg.as_bytes())?;
    }
    Ok(rows)
}

fn write_csv(rows: &[Row], path: &Path) -> Result<()> {
    let mut paths: Vec<String> = Vec::new();
    for r in rows {
        for (p, _) in &r.definition {
            if p != "seed" && !paths.contains(p) {
                paths.push(p.clone());
            }
        }
    }
    const METRICS: [&str; 5] = ["accuracy", "macro_f1", "loss", "rows", "majority_baseline"];
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["variant".into(), "stage".into(), "seed".into()];
    header.extend(paths.iter().cloned());
    header.extend(METRICS.iter().map(|s| s.to_string()));
    header.push("key".into());
    w.write_record(&header)?;
    for r in rows {
        let mut rec = vec![r.variant.clone(), r.stage.clone(), r.seed.to_string()];
        for p in &paths {
            rec.push(
                r.definition
                    .iter()
                    .find(|(q, _)| q == p)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
            );
        }
        for m in METRICS {
            rec.push(
                r.metrics
                    .as_ref()
                    .and_then(|x| x.get(m))
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
        rec.push(r.key.clone());
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::store::write_atomic(path, &bytes)
}

fn data_sizes(plan: &Plan, ws: &Workspace) -> Vec<(String, u64)> {
    // Row counts come from the first tokenize artefact of the first variant.
    for p in plan
        .all()
        .filter(|p| p.produces() == Some(Product::Tokens) && p.variant == 0)
    {
        let Ok(files) = ws.store.verified_files(&p.key) else {
            continue;
        };
        if let Ok(meta) = crate::stages::tokenize::read_meta(&files) {
            return meta.datasets.iter().map(|(k, v)| (k.clone(), v.rows as u64)).collect();
        }
    }
    Vec::new()
}

/// The results table, one row of cells per (variant, stage) group: variant, stage, n,
/// accuracy, macro-F1, majority baseline, seeds. Markdown and HTML render the same cells.
fn results_table(rows: &[Row]) -> Vec<[String; 7]> {
    groups(rows)
        .into_iter()
        .map(|((group, stage), rs)| {
            let seeds: Vec<String> = rs.iter().map(|r| r.seed.to_string()).collect();
            let maj = rs
                .iter()
                .find_map(|r| metric(r, "majority_baseline"))
                .map(pct)
                .unwrap_or_default();
            [
                if group.is_empty() { "(spec)".to_string() } else { group },
                stage,
                rs.len().to_string(),
                summary_cell(&rs, "accuracy"),
                summary_cell(&rs, "macro_f1"),
                maj,
                seeds.join(", "),
            ]
        })
        .collect()
}

fn markdown(study: &Study, plan: &Plan, ws: &Workspace, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {}\n", study.name);
    let _ = writeln!(
        s,
        "Spec: `{}` — {} variant(s), {} repeat(s) each. Metrics are on the evaluate stages' datasets; mean ± standard deviation over repeats (seeds listed below).\n",
        study.file.display(),
        study.variants.len(),
        study.repeats
    );
    let _ = writeln!(s, "## Results\n\n| variant | stage | n | accuracy % | macro-F1 % | majority % | seeds |\n|---|---|---|---|---|---|---|");
    for cells in results_table(rows) {
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
    let sizes = data_sizes(plan, ws);
    if !sizes.is_empty() {
        let _ = writeln!(s, "\n## Data\n\n| dataset | rows |\n|---|---|");
        for (k, n) in sizes {
            let _ = writeln!(s, "| {k} | {n} |");
        }
    }
    let _ = writeln!(s, "\n## Artefact keys\n\n| stage | key |\n|---|---|");
    for r in rows {
        let _ = writeln!(s, "| {}@{} | `{}` |", r.stage, r.variant, &r.key[..16]);
    }
    let _ = writeln!(s, "\n## Pipeline\n\n```mermaid\n{}```", crate::graph::mermaid(study));
    s
}
