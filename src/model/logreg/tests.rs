//! The solver against scikit-learn's optimum conditions, and self-training (selection:
//! `select_tests.rs`).

use super::*;
use rand::Rng;

/// Two Gaussian blobs: the fit separates them, its gradient vanishes at the optimum, and
/// weaker regularisation gives larger weights.
#[test]
fn fits_separable_blobs_and_reaches_the_optimum() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (n, d) = (200, 5);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i % 2) as u32;
        y.push(c);
        for j in 0..d {
            let centre = if j == 0 { 2.0 * c as f32 - 1.0 } else { 0.0 };
            x.push(centre * 3.0 + 10.0 + rng.gen_range(-1.0..1.0));
        }
    }
    let rows = Rows {
        dense: &x,
        d,
        parts: &[],
        sparse: None,
    };
    let m = fit(rows, &y, 2, Some(1.0), 0);
    let acc = (0..n)
        .filter(|&i| {
            let l: Vec<f32> = (0..2)
                .map(|c| m.b[c] + (0..d).map(|j| x[i * d + j] * m.w[j * 2 + c]).sum::<f32>())
                .collect();
            (l[1] > l[0]) == (y[i] == 1)
        })
        .count();
    assert_eq!(acc, n);
    let (mean, sd) = column_stats(&x, n, d);
    let z = Z {
        dense: standardise(&x, d, &mean, &sd, &vec![1.0; d]),
        d,
        parts: vec![d],
        sparse: Vec::new(),
        slots: Vec::new(),
        k: 2,
    };
    let all: Vec<usize> = (0..n).collect();
    let (theta, _) = solve(&z, &y, &all, &Reg::all(1.0, 1), None);
    let (_, g) = objective(&z, &y, &all, &Reg::all(1.0, 1), &theta);
    assert!(g.iter().all(|v| v.abs() < 1e-4), "gradient at the optimum: {g:?}");
    let weak = fit(rows, &y, 2, Some(100.0), 0);
    assert!(weak.w[1].abs() > m.w[1].abs());
}

/// Self-training on unlabelled rows from the same two blobs: pseudo-labels follow the
/// blobs, classes stay balanced, and a model fitted on 4 labels moves towards the one
/// fitted on all labels.
#[test]
fn self_training_uses_unlabelled_rows_class_balanced() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let d = 2;
    let mut blob = |n: usize| {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = (i % 2) as u32;
            y.push(c);
            x.push(if c == 1 { 1.5 } else { -1.5 } + rng.gen_range(-1.5..1.5));
            x.push(rng.gen_range(-3.0..3.0));
        }
        (x, y)
    };
    let (xl, yl) = blob(4);
    let (xu, yu) = blob(400);
    let l = Rows {
        dense: &xl,
        d,
        parts: &[],
        sparse: None,
    };
    let u = Rows {
        dense: &xu,
        d,
        parts: &[],
        sparse: None,
    };
    let (m, rounds) = self_train(labelled(l, &yl), Some(1.0), None, u, 3, 0, None);
    assert_eq!(rounds.len(), 3);
    let last = &rounds[2].added;
    assert_eq!(last[0], last[1], "quotas follow the labelled priors (50/50)");
    assert_eq!(
        last[0] + last[1],
        200,
        "the last round labels half of the unlabelled rows"
    );
    let p = predict_proba(&m, u);
    let acc = (0..400).filter(|&i| (p[2 * i + 1] > 0.5) == (yu[i] == 1)).count();
    assert!(acc > 340, "self-trained accuracy {acc}/400");
}

/// The dev guard: pseudo-labels from a shifted pool teach a spurious feature, the dev log-
/// loss rises, and the round is undone (the labelled-only model is returned); without a
/// dev set every round runs.
#[test]
fn self_training_round_that_hurts_dev_is_undone() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let d = 2;
    // Truth: the class is the sign of x0; x1 is noise.
    let mut task = |n: usize| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = (i % 2) as u32;
            y.push(c);
            x.push(if c == 1 { 1.0 } else { -1.0 } + rng.gen_range(-1.2..1.2));
            x.push(rng.gen_range(-3.0..3.0));
        }
        (x, y)
    };
    let (xl, yl) = task(20);
    let (xd, yd) = task(200);
    let (xu, _) = task(200);
    // A shifted pool: every row sits on the boundary (x0 ≈ 0, leaning to class 1) with a
    // large x1, so its pseudo-labels teach "x1 large ⇒ class 1", which dev contradicts.
    let shifted: Vec<f32> = (0..1000).flat_map(|i| [0.01 + 1e-5 * i as f32, 3.0]).collect();
    let rows = |x: &[f32]| -> Vec<f32> { x.to_vec() };
    let (l, dv) = (rows(&xl), rows(&xd));
    let lr = Rows {
        dense: &l,
        d,
        parts: &[],
        sparse: None,
    };
    let dev = Some((
        Rows {
            dense: &dv,
            d,
            parts: &[],
            sparse: None,
        },
        &yd[..],
    ));
    let base = fit_select(lr, &yl, 2, Some(1.0), dev, 0);
    let (m, log) = self_train(
        labelled(lr, &yl),
        Some(1.0),
        dev,
        Rows {
            dense: &shifted,
            d,
            parts: &[],
            sparse: None,
        },
        2,
        0,
        None,
    );
    assert_eq!(log.len(), 1, "stops at the first harmful round: {log:?}");
    assert!(!log[0].kept && log[0].dev_log_loss.is_some());
    assert_eq!(m.w, base.w, "the labelled-only model is kept");
    // Without a dev set there is nothing to judge by: every round runs.
    let (_, log) = self_train(
        labelled(lr, &yl),
        Some(1.0),
        None,
        Rows {
            dense: &xu,
            d,
            parts: &[],
            sparse: None,
        },
        2,
        0,
        None,
    );
    assert!(log.len() == 2 && log.iter().all(|r| r.kept && r.dev_log_loss.is_none()));
}

/// Binary labelled rows for the self-training tests.
fn labelled<'a>(rows: Rows<'a>, y: &'a [u32]) -> Labelled<'a> {
    Labelled { rows, y, classes: 2 }
}
