//! `warmstart report` and `compare` over a matrix with repeats: metrics.csv has one row per
//! variant × evaluate stage and matches the evaluate artefacts; report.md aggregates repeats
//! as mean ± std; index.html renders in headless Chromium (where installed) without console
//! errors and is not blank.

use crate::common::warmstart;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn study(dir: &Path) -> PathBuf {
    let d = root().join("datasets/quickstart");
    let text = format!(
        "name: small-study\nseed: 3\ndatasets:\n  unlabelled: {{ path: {d}/unlabelled.txt }}\n  train: {{ path: {d}/train.csv, label: label }}\n  dev: {{ path: {d}/dev.csv, label: label }}\n  test: {{ path: {d}/test.csv, label: label }}\nstages:\n  tok: {{ kind: tokenize, fit_on: [unlabelled, train], encode: [unlabelled, train, dev, test], vocab_size: 800 }}\n  seqs: {{ kind: pad, from: tok, max_len: 24 }}\n  vec: {{ kind: pretrain, from: tok, data: [unlabelled], epochs: 1, seed: 1 }}\n  scratch: {{ kind: finetune, from: seqs, train: train, dev: dev, epochs: 4 }}\n  tuned: {{ kind: finetune, from: seqs, train: train, dev: dev, init: vec, encoder_lr_scale: 0.1, epochs: 4 }}\n  ev_scratch: {{ kind: evaluate, model: scratch, from: seqs, data: test }}\n  ev_tuned: {{ kind: evaluate, model: tuned, from: seqs, data: test }}\nmatrix:\n  \"*.train_size\": [50, 200]\nrepeats: 2\n",
        d = d.display()
    );
    let p = dir.join("study.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn report_and_compare_over_a_matrix_with_repeats() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let spec = study(tmp.path());
    let s = spec.to_str().unwrap();
    let (code, out, err) = warmstart(&ws, &["run", s, "--json", "--jobs", "2"]);
    assert_eq!(code, 0, "{err}");
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    // 2 budgets × 2 seeds = 4 variants; the pretraining has its own seed: it runs once.
    let vec_ran = run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["stage"] == "vec" && x["status"] == "ran")
        .count();
    assert_eq!(vec_ran, 1);

    let out_dir = tmp.path().join("report");
    let (code, out, err) = warmstart(&ws, &["report", s, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("8 evaluate stages"), "{out}");

    // metrics.csv: one row per variant × evaluate stage, numbers equal to the artefacts'.
    let mut rdr = csv::Reader::from_path(out_dir.join("metrics.csv")).unwrap();
    let headers = rdr.headers().unwrap().clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {headers:?}"))
    };
    let (vi, si, ai, ki) = (col("variant"), col("stage"), col("accuracy"), col("key"));
    assert!(headers.iter().any(|h| h == "*.train_size"), "{headers:?}");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 8);
    for r in &rows {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ws.join("store").join(&r[ki]).join("files/metrics.json")).unwrap())
                .unwrap();
        assert_eq!(
            r[ai].parse::<f64>().unwrap(),
            m["accuracy"].as_f64().unwrap(),
            "{:?}",
            r
        );
        let reported = run["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == r[si] && x["variant"] == r[vi])
            .unwrap();
        assert_eq!(reported["metrics"]["accuracy"], m["accuracy"]);
    }

    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(
        md.contains("| train_size=50 | ev_tuned | 2 |") && md.contains(" ± "),
        "{md}"
    );
    assert!(md.contains("```mermaid"));
    let html = std::fs::read_to_string(out_dir.join("index.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 4,
        "expected sample-efficiency, loss, dev and pretraining plots"
    );
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "must be self-contained"
    );
    // The DAG is drawn (its Mermaid source only behind a <details>); every chart draws all its
    // series, and its y ticks are round numbers.
    assert!(html.contains(r#"class="dag""#), "the pipeline as an SVG drawing");
    for fig in html.split("<figure>").skip(1) {
        let fig = fig.split("</figure>").next().unwrap();
        let n: usize = fig
            .split(r#"data-series=""#)
            .nth(1)
            .and_then(|t| t.split('"').next()?.parse().ok())
            .expect("data-series on every chart");
        assert_eq!(fig.matches("<polyline").count(), n, "every series drawn");
        for t in fig.split(r#"<text class="ytick""#).skip(1) {
            let v = t.split('>').nth(1).unwrap().split('<').next().unwrap();
            assert!(v.len() <= 5, "round tick value: {v}");
        }
    }

    let (code, out, err) = warmstart(&ws, &["compare", s, "train_size=50,seed=3", "train_size=200,seed=3"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ev_tuned") && out.contains("accuracy") && (out.contains('+') || out.contains('-')),
        "{out}"
    );
    let (code, _, err) = warmstart(&ws, &["compare", s, "nope", "train_size=50,seed=3"]);
    assert_eq!(code, 2);
    assert!(err.contains("`nope` selects no variant"), "{err}");
    // Groups: every repeat of a budget, as mean ± std over the seeds, naming what each side holds.
    let (code, out, err) = warmstart(&ws, &["compare", s, "train_size=50", "train_size=200"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("A = `train_size=50`: 2 variant(s)"), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("ev_tuned") && l.contains("accuracy"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.matches("(n=2)").count(), 2, "{line}");
    assert!(line.contains(" ± "), "{line}");

    render_in_chromium(&out_dir.join("index.html"), tmp.path());
}

/// Renders the whole report, then each chart on a page of its own (the report's `<head>`, so
/// the same styles, and one `<figure>`), saving a screenshot per chart under
/// `target/report-shots/` for a person to look at; each must render to a non-blank image.
fn render_in_chromium(page: &Path, tmp: &Path) {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        crate::common::skip(
            "report chromium rendering",
            "skipped the Chromium check: no /usr/bin/chromium (`.ci/run` installs Debian's chromium)",
        );
        return;
    };
    let png = screenshot(chromium, page, &tmp.join("shot.png"), tmp, "1100,1800");
    // A blank page of this size compresses to a few kB; text, tables and plots do not.
    assert!(png.len() > 30_000, "screenshot looks blank ({} bytes)", png.len());
    println!(
        "chromium rendered the report: {} byte screenshot, no console errors",
        png.len()
    );

    let html = std::fs::read_to_string(page).unwrap();
    let head = &html[..html.find("<body").expect("a <body>")];
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-shots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let mut n = 0;
    for (i, fig) in html.split("<figure>").skip(1).enumerate() {
        let fig = fig.split("</figure>").next().unwrap();
        let one = tmp.join(format!("chart-{i}.html"));
        std::fs::write(&one, format!("{head}<body><figure>{fig}</figure></body></html>")).unwrap();
        let png = screenshot(chromium, &one, &shots.join(format!("chart-{i}.png")), tmp, "800,600");
        // A chart (axes, ticks, lines, legend) is several kB even compressed; an empty frame is
        // a few hundred bytes.
        assert!(png.len() > 4_000, "chart {i} looks blank ({} bytes)", png.len());
        n += 1;
    }
    assert!(n >= 4, "expected at least four charts, screenshotted {n}");
    println!("chromium rendered each of {n} charts alone: {}", shots.display());
}

/// Chromium's screenshot of `page` into `shot`; no console errors allowed. Returns the PNG.
fn screenshot(chromium: &str, page: &Path, shot: &Path, tmp: &Path, size: &str) -> Vec<u8> {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", tmp.join("chrome-profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") && (l.contains("rror") || l.contains("Uncaught")))
        .collect();
    assert!(console_errors.is_empty(), "console errors: {console_errors:?}");
    let png = std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said: {log}"));
    assert_eq!(&png[1..4], b"PNG");
    png
}
