//! Inline SVG charts for reports: round ticks, line charts with error bars, and the
//! sample-efficiency curve (metric against label budget). Pure string building: no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{mean_std, metric, Row};

pub(super) fn esc(s: &str) -> String {
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
pub(super) enum Range {
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
pub(super) fn line_chart(
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
