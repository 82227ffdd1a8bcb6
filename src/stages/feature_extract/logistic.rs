//! The logistic head of `feature-extract`: the pooled vectors' parts and the optional TF-IDF
//! n-gram block in one L2-regularised regression (a C per block, chosen on dev or by
//! cross-validation), then optional class-balanced self-training on `unlabelled` texts.
//! Writes the head's tensors into the model and `logistic.json` (what was chosen and why).

use anyhow::Result;
use dfdx::prelude::TensorFromVec;

use super::super::classify;
use super::super::StageCtx;
use super::{FeatureExtract, IdfOver};
use crate::model::classifier::Classifier;
use crate::model::logreg;
use crate::model::ngrams::{self, NgramSpec};
use crate::model::train::EpochLog;
use crate::model::Dev;
use crate::seqfile::{read_padded, Padded};

/// Fits the head on `feats` (the pooled training rows) and writes it into `model`; returns the
/// one-entry history and the stage summary's description of what was chosen.
pub(super) fn fit(
    fe: &FeatureExtract,
    ctx: &StageCtx,
    dev: &Dev,
    model: &mut Classifier,
    train: &Padded,
    devset: Option<&Padded>,
    feats: &[f32],
) -> Result<(Vec<EpochLog>, String)> {
    let src = ctx.artefact(&fe.from)?;
    let width = model.cfg.feature_width();
    let k = model.cfg.labels.len();
    let y: Vec<u32> = train.labels.iter().map(|&l| l as u32).collect();
    // Unlabelled rows: only their ids and masks reach the encoder; labels are dropped
    // here so that nothing downstream could read them.
    let spec = fe.ngrams.map(|n| NgramSpec {
        n,
        buckets: ngrams::BUCKETS,
    });
    let rounds = if fe.unlabelled.is_empty() { 0 } else { fe.rounds() };
    // Without pooled vectors the dense block is empty and its head weights stay 0.
    let dw = if fe.pooled == Some(false) { 0 } else { width };
    // The encoder runs over unlabelled rows only when self-training will read their
    // vectors; for the n-gram idf their token counts suffice.
    let mut u = Vec::new();
    let mut u_counts = Vec::new();
    let mut unlabelled_rows = 0;
    // A text that is in the labelled budget is not unlabelled: self-training would
    // otherwise pseudo-label the training rows themselves (with every label in the
    // budget, the whole pool), and the idf would count them twice.
    let labelled: std::collections::HashSet<Vec<u32>> = (0..train.rows()).map(|r| train.real_ids(r)).collect();
    let mut left_out = 0;
    for name in &fe.unlabelled {
        let all = read_padded(&src.join(format!("{name}.pad")))?;
        let keep: Vec<usize> = (0..all.rows())
            .filter(|&r| !labelled.contains(&all.real_ids(r)))
            .collect();
        left_out += all.rows() - keep.len();
        let mut rows = classify::take_rows(&all, &keep);
        rows.labels.iter_mut().for_each(|l| *l = 0);
        unlabelled_rows += rows.rows();
        if rounds > 0 && dw > 0 {
            u.extend(model.features_of(dev, &rows)?);
        }
        if let Some(spec) = spec {
            u_counts.extend(row_counts(spec, &rows));
        }
    }
    // n-grams: idf over every text this stage may read (labelled and unlabelled rows).
    let sparse = spec.map(|spec| {
        let counts = row_counts(spec, train);
        let idf = match fe.idf.unwrap_or_default() {
            IdfOver::Labelled => ngrams::idf(&counts, spec.buckets),
            IdfOver::All => {
                let all: Vec<_> = counts.iter().chain(&u_counts).cloned().collect();
                ngrams::idf(&all, spec.buckets)
            }
        };
        let weigh = |rows: &[ngrams::SparseRow]| -> Vec<ngrams::SparseRow> {
            rows.iter().map(|r| ngrams::weigh(r, &idf)).collect()
        };
        let (l, u) = (weigh(&counts), weigh(&u_counts));
        (spec, idf, l, u)
    });
    // The pooled vector's parts (e.g. max and mean), and with `layers` each layer's, are
    // blocks with a C each.
    let blocks = if dw == 0 {
        Vec::new()
    } else {
        model.cfg.feature_blocks()
    };
    let names: Vec<&str> = blocks.iter().map(|(n, _)| n.as_str()).collect();
    let names = &names[..];
    let parts: Vec<usize> = blocks.iter().map(|(_, w)| *w).collect();
    let l_rows = logreg::Rows {
        dense: if dw == 0 { &[] } else { feats },
        d: dw,
        parts: &parts,
        sparse: sparse.as_ref().map(|(s, _, l, _)| (&l[..], s.buckets)),
    };
    let u_rows = logreg::Rows {
        dense: &u,
        d: dw,
        parts: &parts,
        sparse: sparse.as_ref().map(|(s, _, _, u)| (&u[..], s.buckets)),
    };
    // C is judged on the dev set when there is one (the same rows the SGD arms early-stop
    // on), else by cross-validation on the labelled rows.
    let dev_dense = match (&devset, dw) {
        (Some(d), w) if w > 0 => model.features_of(dev, d)?,
        _ => Vec::new(),
    };
    let dev_sparse: Vec<ngrams::SparseRow> = match (&devset, &sparse) {
        (Some(d), Some((spec, idf, _, _))) => row_counts(*spec, d).iter().map(|r| ngrams::weigh(r, idf)).collect(),
        _ => Vec::new(),
    };
    let dev_y: Vec<u32> = devset
        .as_ref()
        .map(|d| d.labels.iter().map(|&l| l as u32).collect())
        .unwrap_or_default();
    let dev_rows = devset.as_ref().map(|_| {
        (
            logreg::Rows {
                dense: &dev_dense,
                d: dw,
                parts: &parts,
                sparse: sparse.as_ref().map(|(s, _, _, _)| (&dev_sparse[..], s.buckets)),
            },
            &dev_y[..],
        )
    });
    let labelled = logreg::Labelled {
        rows: l_rows,
        y: &y,
        classes: k,
    };
    let (fitted, self_training) = logreg::self_train(
        labelled,
        fe.c,
        dev_rows,
        u_rows,
        rounds,
        ctx.seed,
        Some(&ctx.loop_ctx()),
    );
    if let (Some((spec, idf, _, _)), Some(ws)) = (&sparse, &fitted.ws) {
        model.cfg.ngrams = Some(*spec);
        model.params.tensors.insert(
            "head.ngram_idf".into(),
            dev.tensor_from_vec(idf.clone(), (1, spec.buckets)),
        );
        model.params.tensors.insert(
            "head.ngram_w".into(),
            dev.tensor_from_vec(ws.clone(), (spec.buckets, k)),
        );
    }
    model.params.tensors.insert(
        "head.w".into(),
        dev.tensor_from_vec(
            if dw == 0 {
                vec![0.0; width * k]
            } else {
                fitted.w.clone()
            },
            (width, k),
        ),
    );
    model
        .params
        .tensors
        .insert("head.b".into(), dev.tensor_from_vec(fitted.b.clone(), (1, k)));
    let dev_metrics = devset.as_ref().map(|d| model.evaluate(dev, d)).transpose()?;
    let log = EpochLog {
        epoch: 1,
        train_loss: fitted.objective,
        dev_loss: dev_metrics.as_ref().map(|m| m.loss),
        dev_accuracy: dev_metrics.as_ref().map(|m| m.accuracy),
        dev_macro_f1: dev_metrics.as_ref().map(|m| m.macro_f1),
    };
    // What the solver chose and why, beside the model (the report and
    // benches/logreg_vs_sklearn.py read it).
    let sparse_block = fitted.ws.is_some();
    let record = serde_json::json!({
        "c": block_cs(names, &fitted.c, sparse_block),
        "chosen_by": match (fe.c, &fe.dev) {
            (Some(_), _) => "spec".to_string(),
            (None, Some(d)) => format!("log-loss on dev set `{d}`"),
            (None, None) => "stratified 5-fold cross-validation, mean held-out log-loss".to_string(),
        },
        "cv_log_loss": fitted.cv_loss.iter().map(|(c, l)| serde_json::json!({"c": block_cs(names, c, sparse_block), "log_loss": l})).collect::<Vec<_>>(),
        "objective": fitted.objective,
        "standardised": true,
        "unlabelled_rows": unlabelled_rows,
        "unlabelled_rows_left_out_as_labelled": left_out,
        "self_training": self_training,
    });
    std::fs::write(ctx.out.join("logistic.json"), serde_json::to_vec_pretty(&record)?)?;
    let chosen = if fe.dev.is_some() {
        "on dev"
    } else {
        "by cross-validation"
    };
    let how = match fe.c {
        Some(c) => format!("C {c}"),
        None => format!("{} {chosen}", describe_cs(names, &fitted.c, sparse_block)),
    };
    let kept: Vec<_> = self_training.iter().filter(|r| r.kept).collect();
    let undone = if kept.len() < self_training.len() {
        format!("; round {} undone: dev log-loss rose", kept.len() + 1)
    } else {
        String::new()
    };
    let how = match kept.last() {
        Some(r) => format!(
            "{how}, {} self-training rounds ({} pseudo-labels{undone})",
            kept.len(),
            r.added.iter().sum::<usize>()
        ),
        None if !self_training.is_empty() => {
            format!("{how}, no self-training (round 1 raised the dev log-loss)")
        }
        None => how,
    };
    Ok((vec![log], how))
}

/// Each block's name and C, in column order (the pooled parts, then `ngrams`); `None` where
/// the selection switched the block off.
fn named_cs<'a>(names: &[&'a str], c: &logreg::Reg, sparse: bool) -> Vec<(&'a str, Option<f64>)> {
    let on = |v: f64| (v > logreg::OFF).then_some(v);
    let mut blocks: Vec<_> = names.iter().zip(&c.dense).map(|(&n, &v)| (n, on(v))).collect();
    if sparse {
        blocks.push(("ngrams", on(c.sparse)));
    }
    blocks
}

/// Each block's C by name (`{"mean": 0.01, "max": "off", "ngrams": 10}`), as `logistic.json`
/// records it.
fn block_cs(names: &[&str], c: &logreg::Reg, sparse: bool) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = named_cs(names, c, sparse)
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.map_or_else(|| "off".into(), Into::into)))
        .collect();
    serde_json::Value::Object(m)
}

/// The chosen C's for the stage summary: "C 0.01 (mean) / off (max) / 10 (n-grams)"; one
/// block: "C 0.01".
fn describe_cs(names: &[&str], c: &logreg::Reg, sparse: bool) -> String {
    let show = |v: Option<f64>| v.map_or_else(|| "off".to_string(), |v| format!("{v}"));
    match &named_cs(names, c, sparse)[..] {
        [(_, v)] => format!("C {}", show(*v)),
        blocks => format!(
            "C {}",
            blocks
                .iter()
                .map(|(n, v)| format!("{} ({})", show(*v), if *n == "ngrams" { "n-grams" } else { n }))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
    }
}

/// Raw n-gram counts of every row of a padded dataset.
fn row_counts(spec: NgramSpec, rows: &crate::seqfile::Padded) -> Vec<ngrams::SparseRow> {
    let l = rows.len;
    rows.ids
        .chunks(l)
        .zip(rows.mask.chunks(l))
        .map(|(i, m)| ngrams::counts(spec, i, m))
        .collect()
}
