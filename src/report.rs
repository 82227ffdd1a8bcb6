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
    let html = html(study, plan, ws, &rows);
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
    for ((group, stage), rs) in groups(rows) {
        let seeds: Vec<String> = rs.iter().map(|r| r.seed.to_string()).collect();
        let maj = rs
            .iter()
            .find_map(|r| metric(r, "majority_baseline"))
            .map(pct)
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {stage} | {} | {} | {} | {maj} | {} |",
            if group.is_empty() { "(spec)" } else { &group },
            rs.len(),
            summary_cell(&rs, "accuracy"),
            summary_cell(&rs, "macro_f1"),
            seeds.join(", ")
        );
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

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A named line of (x, y, ± error) points.
type Series = (String, Vec<(f64, f64, f64)>);

const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// What the y axis may show: the chart never runs past a metric's range (accuracy above 1,
/// a loss below 0).
#[derive(Clone, Copy)]
enum Range {
    Unit,
    NonNegative,
}

/// Round tick values covering `[lo, hi]`: a step of 1, 2 or 5 × 10^k giving 4–8 ticks.
fn ticks(lo: f64, hi: f64) -> (Vec<f64>, usize) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| span / st <= 8.0)
        .unwrap_or(10.0 * mag);
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    ((first..=last).map(|k| k as f64 * step).collect(), decimals)
}

/// A line chart as inline SVG: series of (x, y, ±err) points, every series drawn (colours
/// cycle with a dash pattern after eight) with a legend as tall as it needs. `x_names` labels
/// chosen x positions (e.g. "all" for the every-label budget); other x ticks are the data's x
/// values, thinned to at most 12 but always with the last.
fn line_chart(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[Series],
    log_x: bool,
    range: Range,
    x_names: &[(f64, String)],
) -> String {
    let (w, l, r, t, b) = (640.0, 60.0, 190.0, 30.0, 45.0);
    let h = f64::max(360.0, t + 16.0 * series.len() as f64 + 20.0);
    let pts: Vec<&(f64, f64, f64)> = series.iter().flat_map(|(_, p)| p.iter()).collect();
    if pts.is_empty() {
        return String::new();
    }
    let fx = |x: f64| if log_x { x.max(1.0).ln() } else { x };
    let (mut x0, mut x1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(fx(p.0)), b.max(fx(p.0))));
    let (mut y0, mut y1) = pts
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1 - p.2), b.max(p.1 + p.2)));
    if x1 <= x0 {
        x0 -= 1.0;
        x1 += 1.0;
    }
    if y1 <= y0 {
        y0 -= 0.05;
        y1 += 0.05;
    }
    let pad = (y1 - y0) * 0.08;
    let (mut y0, mut y1) = (y0 - pad, y1 + pad);
    match range {
        Range::Unit => {
            y0 = y0.max(0.0);
            y1 = y1.min(1.0);
        }
        Range::NonNegative => y0 = y0.max(0.0),
    }
    let (yt, decimals) = ticks(y0, y1);
    let sx = |x: f64| l + (fx(x) - x0) / (x1 - x0) * (w - l - r);
    let sy = |y: f64| h - b - (y - y0) / (y1 - y0) * (h - t - b);
    let mut s = format!(
        r#"<figure><svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" data-series="{}"><title>{}</title>"#,
        series.len(),
        esc(title)
    );
    let _ = write!(s, r#"<rect x="0" y="0" width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<line x1="{l}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
        h - b,
        w - r,
        h - b
    );
    let _ = write!(s, r#"<line x1="{l}" y1="{t}" x2="{l}" y2="{}" stroke="black"/>"#, h - b);
    for y in yt {
        let _ = write!(
            s,
            r##"<text class="ytick" x="{}" y="{}" font-size="11" text-anchor="end">{:.*}</text><line x1="{l}" x2="{}" y1="{}" y2="{}" stroke="#ddd"/>"##,
            l - 6.0,
            sy(y) + 4.0,
            decimals,
            y,
            w - r,
            sy(y),
            sy(y)
        );
    }
    let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    xs.sort_by(|a, b| a.total_cmp(b));
    xs.dedup();
    let every = xs.len().div_ceil(12).max(1);
    let last = xs.len().saturating_sub(1);
    for (i, x) in xs.iter().enumerate() {
        if i % every != 0 && i != last {
            continue;
        }
        let name = x_names
            .iter()
            .find(|(v, _)| v == x)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| format!("{x}"));
        let _ = write!(
            s,
            r#"<text class="xtick" x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            sx(*x),
            h - b + 16.0,
            esc(&name)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
        (l + w - r) / 2.0,
        h - 8.0,
        esc(xlabel)
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})" text-anchor="middle">{}</text>"#,
        (t + h - b) / 2.0,
        (t + h - b) / 2.0,
        esc(ylabel)
    );
    let _ = write!(
        s,
        r#"<text x="{l}" y="18" font-size="13" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, (name, p)) in series.iter().enumerate() {
        let c = PALETTE[i % PALETTE.len()];
        let dash = match i / PALETTE.len() {
            0 => String::new(),
            k => format!(r#" stroke-dasharray="{} 3""#, 2 + 2 * k),
        };
        let path: Vec<String> = p.iter().map(|q| format!("{:.1},{:.1}", sx(q.0), sy(q.1))).collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2"{dash} points="{}"/>"#,
            path.join(" ")
        );
        for q in p {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                sx(q.0),
                sy(q.1)
            );
            if q.2 > 0.0 {
                let _ = write!(
                    s,
                    r#"<line x1="{0:.1}" x2="{0:.1}" y1="{1:.1}" y2="{2:.1}" stroke="{c}"/>"#,
                    sx(q.0),
                    sy((q.1 - q.2).max(y0)),
                    sy((q.1 + q.2).min(y1))
                );
            }
        }
        let ly = t + 14.0 + 16.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{c}" stroke-width="3"{dash}/><text x="{}" y="{}" font-size="11">{}</text>"#,
            w - r + 6.0,
            w - r + 20.0,
            ly - 4.0,
            ly - 4.0,
            w - r + 24.0,
            ly,
            esc(name)
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

/// The sample-efficiency curve: `metric` against the label budget, one line per variant
/// group and evaluate stage, mean ± std over repeats. Empty when no matrix axis sets a
/// `train_size` (rows with `train_size: null`, i.e. all rows, are left out of the plot).
pub fn sample_efficiency(rows: &[Row], metric_name: &str) -> String {
    // `train_size: null` (every labelled row) is drawn right of the largest budget, labelled "all".
    let budget_of = |r: &Row| {
        r.definition
            .iter()
            .find(|(p, _)| p.ends_with("train_size"))
            .and_then(|(_, v)| {
                if v == "null" {
                    Some(f64::INFINITY)
                } else {
                    v.parse::<f64>().ok()
                }
            })
    };
    let largest = rows
        .iter()
        .filter_map(budget_of)
        .filter(|b| b.is_finite())
        .fold(0.0f64, f64::max);
    if largest == 0.0 {
        return String::new();
    }
    let all_at = (largest * 4.0).round();
    let mut series: BTreeMap<String, BTreeMap<u64, Vec<f64>>> = BTreeMap::new();
    for r in rows {
        let (Some(b), Some(m)) = (budget_of(r), metric(r, metric_name)) else {
            continue;
        };
        let b = if b.is_finite() { b } else { all_at };
        let rest = r
            .group
            .split(',')
            .filter(|p| !p.contains("train_size="))
            .collect::<Vec<_>>()
            .join(",");
        let name = if rest.is_empty() {
            r.stage.clone()
        } else {
            format!("{rest} {}", r.stage)
        };
        series.entry(name).or_default().entry(b as u64).or_default().push(m);
    }
    let series: Vec<Series> = series
        .into_iter()
        .map(|(n, pts)| {
            let pts = pts
                .into_iter()
                .map(|(b, v)| {
                    let (m, sd) = mean_std(&v);
                    (b as f64, m, sd)
                })
                .collect();
            (n, pts)
        })
        .collect();
    let label = if metric_name == "macro_f1" {
        "macro-F1"
    } else {
        metric_name
    };
    let has_all = rows.iter().any(|r| budget_of(r) == Some(f64::INFINITY));
    let names = if has_all {
        vec![(all_at, "all".to_string())]
    } else {
        Vec::new()
    };
    line_chart(
        &format!("{label} against label budget"),
        "labelled training rows (log scale; \"all\": every labelled row)",
        label,
        &series,
        true,
        if metric_name == "loss" {
            Range::NonNegative
        } else {
            Range::Unit
        },
        &names,
    )
}

fn html(study: &Study, plan: &Plan, ws: &Workspace, rows: &[Row]) -> String {
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
    for ((group, stage), rs) in groups(rows) {
        let seeds: Vec<String> = rs.iter().map(|r| r.seed.to_string()).collect();
        let maj = rs
            .iter()
            .find_map(|r| metric(r, "majority_baseline"))
            .map(pct)
            .unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{maj}</td><td>{}</td></tr>",
            esc(if group.is_empty() { "(spec)" } else { &group }),
            esc(&stage),
            rs.len(),
            summary_cell(&rs, "accuracy"),
            summary_cell(&rs, "macro_f1"),
            seeds.join(", ")
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The y values of a chart's tick labels.
    fn yticks(svg: &str) -> Vec<f64> {
        svg.split(r#"<text class="ytick""#)
            .skip(1)
            .filter_map(|t| t.split('>').nth(1)?.split('<').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn ticks_are_round_and_within_the_metric_range() {
        let (t, d) = ticks(0.494, 0.868);
        assert_eq!(d, 2);
        assert!(
            t.iter().all(|v| ((v * 100.0).round() - v * 100.0).abs() < 1e-9),
            "{t:?}"
        );
        let series = vec![("a".to_string(), vec![(1.0, 0.97, 0.05), (2.0, 0.99, 0.02)])];
        let svg = line_chart("t", "x", "y", &series, false, Range::Unit, &[]);
        let y = yticks(&svg);
        assert!(
            y.len() >= 3 && *y.last().unwrap() <= 1.0,
            "accuracy axis stops at 1: {y:?}"
        );
        let step = y[1] - y[0];
        assert!(y.windows(2).all(|w| ((w[1] - w[0]) - step).abs() < 1e-9), "{y:?}");
        let loss = vec![("a".to_string(), vec![(1.0, 0.01, 0.0), (2.0, 0.6, 0.0)])];
        let y = yticks(&line_chart("t", "x", "y", &loss, false, Range::NonNegative, &[]));
        assert!(y[0] >= 0.0, "loss axis starts at 0 or above: {y:?}");
    }

    #[test]
    fn every_series_is_drawn_and_epoch_labels_reach_the_last_epoch() {
        let series: Vec<Series> = (0..11)
            .map(|i| {
                (
                    format!("s{i}"),
                    (1..=20).map(|e| (e as f64, 0.5 + 0.01 * i as f64, 0.0)).collect(),
                )
            })
            .collect();
        let svg = line_chart("t", "epoch", "y", &series, false, Range::Unit, &[]);
        assert_eq!(svg.matches("<polyline").count(), 11);
        assert!(svg.contains(r#"data-series="11""#) && svg.contains(">s10</text>"));
        assert!(
            svg.contains(r#"stroke-dasharray"#),
            "series past the palette are dashed"
        );
        assert!(svg.contains(">20</text>"), "the last epoch is labelled");
    }

    #[test]
    fn the_every_label_budget_is_on_the_budget_axis() {
        let row = |budget: &str, seed: u64, acc: f64| Row {
            variant: format!("train_size={budget},seed={seed}"),
            group: format!("train_size={budget}"),
            stage: "ev".into(),
            seed,
            definition: vec![("stages.clf.train_size".into(), budget.into())],
            key: String::new(),
            metrics: Some(serde_json::json!({ "accuracy": acc })),
            history: None,
            model_stage: "clf".into(),
        };
        let rows = vec![
            row("100", 1, 0.6),
            row("100", 2, 0.62),
            row("500", 1, 0.7),
            row("null", 1, 0.8),
        ];
        let svg = sample_efficiency(&rows, "accuracy");
        assert!(svg.contains(">all</text>"), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 3, "100, 500 and all");
    }
}
