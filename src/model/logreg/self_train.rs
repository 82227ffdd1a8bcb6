//! Class-balanced self-training over unlabelled rows, guarded by the dev log-loss.

use super::*;
use crate::model::{resume, LoopCtx};

/// The labelled rows of a self-training problem: their features, labels and the class count.
#[derive(Clone, Copy)]
pub struct Labelled<'a> {
    pub rows: Rows<'a>,
    pub y: &'a [u32],
    pub classes: usize,
}

/// One round of class-balanced self-training, as recorded in `logistic.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Round {
    pub round: usize,
    /// Pseudo-labelled rows per class.
    pub added: Vec<usize>,
    /// Mean confidence of the added rows.
    pub mean_confidence: f64,
    /// Dev-set log-loss of the refitted model (absent without a dev set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_log_loss: Option<f64>,
    /// Whether the round's model was kept: with a dev set, a round whose refit raises the
    /// dev log-loss is undone and self-training stops there.
    pub kept: bool,
}

/// Class-balanced self-training (Zou et al. 2018's CBST, on a convex head): fit on the labelled
/// rows (C by cross-validation unless given), then for `rounds` rounds pseudo-label the rows of
/// `u` the current model is surest of — per class, in proportion to the labelled class shares,
/// a portion growing from 20 % to 50 % of `u` — and refit on labelled + pseudo-labelled rows
/// with the same C. With a dev set, each round must not raise the dev log-loss (the criterion
/// C was chosen by); the first round that does is undone and ends self-training.
///
/// Why the dev guard: when the labelled-only model is weak, a third or more of its pseudo-
/// labels are wrong and they outnumber the labelled rows; on trec6 at 500 labels two rounds
/// cost 2 points of test accuracy, and the dev set, which the C selection already reads, sees
/// it coming.
///
/// Why class-balanced and capped: naive pseudo-labelling feeds the majority class and its own
/// mistakes back into training (the USB benchmark finds it *hurts*); quotas fixed by the
/// labelled priors keep the class balance, and picking by confidence keeps most labels right.
/// Only the features of `u` are used: the caller passes no labels for them.
pub fn self_train(
    labelled: Labelled,
    c: Option<f64>,
    dev: Option<(Rows, &[u32])>,
    u: Rows,
    rounds: usize,
    seed: u64,
    lc: Option<&LoopCtx>,
) -> (Fitted, Vec<Round>) {
    let Labelled { rows: l, y, classes: k } = labelled;
    let (n, nu, d) = (l.n(), u.n(), l.d);
    let steps = rounds > 0 && nu > 0;
    // A checkpoint counts completed fits as epochs: 1 = the labelled-only fit, 1 + r = after
    // round r. Everything a later round reads is in it, so the resumed loop is the same loop.
    let resumed = lc.filter(|_| steps).and_then(|lc| {
        let (fits, s) = resume::load_state::<Saved>(lc.checkpoint)?;
        if fits != s.log.len() + 1 || fits > rounds {
            eprintln!("warning: ignoring a self-training checkpoint after fit {fits}: it does not fit this loop");
            return None;
        }
        lc.progress.resumed(fits, 0);
        Some(s)
    });
    // Every round refits with the labelled fit's C (and reports its CV losses), so `model`
    // carries all the loop needs of that fit.
    let Saved {
        mut model,
        mut best_dev,
        mut log,
    } = match resumed {
        Some(s) => s,
        None => {
            let base = fit_select(l, y, k, c, dev, seed);
            if !steps {
                return (base, Vec::new());
            }
            let best_dev = dev.map(|(rows, yd)| log_loss(&base, rows, yd));
            save_if_due(lc, &base, best_dev, &[]);
            Saved {
                model: base,
                best_dev,
                log: Vec::new(),
            }
        }
    };
    let mut prior = vec![0.0f64; k];
    y.iter().for_each(|&v| prior[v as usize] += 1.0 / n as f64);
    for r in log.len() + 1..=rounds {
        let portion = if rounds == 1 {
            0.5
        } else {
            0.2 + 0.3 * (r - 1) as f64 / (rounds - 1) as f64
        };
        let p = predict_proba(&model, u);
        // Each row votes for its most probable class; per class, the surest rows fill its quota.
        let mut by_class: Vec<Vec<(f32, usize)>> = vec![Vec::new(); k];
        for (i, row) in p.chunks(k).enumerate() {
            let best = crate::metrics::argmax(row);
            by_class[best].push((row[best], i));
        }
        let mut dense = l.dense.to_vec();
        let mut sparse: Vec<SparseRow> = l.sparse.map(|(s, _)| s.to_vec()).unwrap_or_default();
        let mut ys = y.to_vec();
        let mut added = vec![0usize; k];
        let mut conf = 0.0f64;
        for (class, rows) in by_class.iter_mut().enumerate() {
            rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let quota = (portion * nu as f64 * prior[class]).round() as usize;
            for &(pc, i) in rows.iter().take(quota) {
                dense.extend_from_slice(&u.dense[i * d..(i + 1) * d]);
                if let Some((s, _)) = u.sparse {
                    sparse.push(s[i].clone());
                }
                ys.push(class as u32);
                added[class] += 1;
                conf += pc as f64;
            }
        }
        let total: usize = added.iter().sum();
        let rows = Rows {
            dense: &dense,
            d,
            parts: l.parts,
            sparse: l.sparse.map(|(_, b)| (&sparse[..], b)),
        };
        let mut next = fit_with(rows, &ys, k, model.c.clone(), seed);
        next.cv_loss = model.cv_loss.clone();
        let dev_log_loss = dev.map(|(rows, yd)| log_loss(&next, rows, yd));
        let kept = match (dev_log_loss, best_dev) {
            (Some(now), Some(before)) => now <= before,
            _ => true,
        };
        log.push(Round {
            round: r,
            added,
            mean_confidence: conf / total.max(1) as f64,
            dev_log_loss,
            kept,
        });
        if !kept {
            break;
        }
        model = next;
        best_dev = dev_log_loss;
        if r < rounds {
            save_if_due(lc, &model, best_dev, &log);
        }
    }
    (model, log)
}

/// The self-training loop's state between fits (see [`self_train`]), as read back.
#[derive(serde::Deserialize)]
struct Saved {
    /// The model the next round pseudo-labels with (its C is the labelled fit's).
    model: Fitted,
    best_dev: Option<f64>,
    log: Vec<Round>,
}

/// [`Saved`] as written, borrowing the loop's variables.
#[derive(serde::Serialize)]
struct SavedRef<'a> {
    model: &'a Fitted,
    best_dev: Option<f64>,
    log: &'a [Round],
}

fn save_if_due(lc: Option<&LoopCtx>, model: &Fitted, best_dev: Option<f64>, log: &[Round]) {
    if let Some(lc) = lc.filter(|lc| lc.checkpoint.due()) {
        let state = SavedRef { model, best_dev, log };
        resume::save_state(lc.checkpoint, log.len() + 1, &state);
    }
}
