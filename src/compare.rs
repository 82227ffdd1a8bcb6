//! `warmstart compare SPEC A B`: two groups of variants side by side, per evaluate stage.
//!
//! A selector is a comma-separated list of `key=value` parts (or a variant's whole name); it
//! selects every variant whose name holds all of those parts, so `train_size=100` selects the
//! three repeats `train_size=100,seed=1` … `seed=3` and is compared as mean ± sample std. A
//! whole variant name selects just that variant, as before.

use std::fmt::Write as _;

use crate::report::{mean_std, Row};

/// Whether `variant` (e.g. `train_size=100,seed=2`) is selected by `selector`.
pub fn selects(selector: &str, variant: &str) -> bool {
    let parts: Vec<&str> = variant.split(',').collect();
    selector == variant || selector.split(',').all(|s| parts.contains(&s.trim()))
}

/// The variants of `names` that `selector` selects, in order.
pub fn select<'a>(selector: &str, names: &[&'a str]) -> Vec<&'a str> {
    names.iter().copied().filter(|v| selects(selector, v)).collect()
}

/// The comparison table of groups `a` and `b` (variant names already selected).
pub fn render(rows: &[Row], (sa, a): (&str, &[&str]), (sb, b): (&str, &[&str])) -> String {
    let mut out = String::new();
    for (label, sel, vs) in [("A", sa, a), ("B", sb, b)] {
        let _ = writeln!(out, "{label} = `{sel}`: {} variant(s): {}", vs.len(), vs.join(" | "));
    }
    let _ = writeln!(
        out,
        "\n{:<20} {:<10} {:>26} {:>26} {:>10}",
        "stage", "metric", "A", "B", "B − A"
    );
    let mut stages: Vec<&str> = Vec::new();
    for r in rows {
        if !stages.contains(&r.stage.as_str()) {
            stages.push(&r.stage);
        }
    }
    for stage in stages {
        for m in ["accuracy", "macro_f1", "loss"] {
            let values = |vs: &[&str]| -> (Vec<f64>, usize) {
                let of: Vec<&Row> = rows
                    .iter()
                    .filter(|r| r.stage == stage && vs.contains(&r.variant.as_str()))
                    .collect();
                let got: Vec<f64> = of.iter().filter_map(|r| r.metrics.as_ref()?.get(m)?.as_f64()).collect();
                (got, of.len())
            };
            let ((va, na), (vb, nb)) = (values(a), values(b));
            if na == 0 || nb == 0 {
                continue;
            }
            let cell = |v: &[f64], n: usize| -> String {
                match v.len() {
                    0 => "not run".to_string(),
                    1 if n == 1 => format!("{:.4}", v[0]),
                    k => {
                        let (mean, sd) = mean_std(v);
                        let missing = if k < n {
                            format!(", {} not run", n - k)
                        } else {
                            String::new()
                        };
                        format!("{mean:.4} ± {sd:.4} (n={k}{missing})")
                    }
                }
            };
            let change = if va.is_empty() || vb.is_empty() {
                "—".to_string()
            } else {
                format!("{:+.4}", mean_std(&vb).0 - mean_std(&va).0)
            };
            let _ = writeln!(
                out,
                "{stage:<20} {m:<10} {:>26} {:>26} {change:>10}",
                cell(&va, na),
                cell(&vb, nb)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_selectors_pick_groups_and_whole_names_one_variant() {
        let names = [
            "train_size=100,seed=1",
            "train_size=100,seed=2",
            "train_size=500,seed=1",
            "scratch",
        ];
        assert_eq!(select("train_size=100", &names), &names[..2]);
        assert_eq!(select("seed=1", &names), [names[0], names[2]]);
        assert_eq!(select("train_size=500,seed=1", &names), [names[2]]);
        assert_eq!(select("scratch", &names), ["scratch"]);
        assert!(
            select("train_size=10", &names).is_empty(),
            "parts match whole, not as prefixes"
        );
    }
}
