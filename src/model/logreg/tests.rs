//! The solver against scikit-learn's optimum conditions, selection and self-training.

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
        dense: standardise(&x, d, &mean, &sd, 1.0),
        d,
        sparse: Vec::new(),
        slots: Vec::new(),
        k: 2,
    };
    let all: Vec<usize> = (0..n).collect();
    let (theta, _) = solve(&z, &y, &all, Reg::both(1.0), None);
    let (_, g) = objective(&z, &y, &all, Reg::both(1.0), &theta);
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
        sparse: None,
    };
    let u = Rows {
        dense: &xu,
        d,
        sparse: None,
    };
    let (m, rounds) = self_train(l, &yl, 2, Some(1.0), None, u, 3, 0);
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
        sparse: None,
    };
    let dev = Some((
        Rows {
            dense: &dv,
            d,
            sparse: None,
        },
        &yd[..],
    ));
    let base = fit_select(lr, &yl, 2, Some(1.0), dev, 0);
    let (m, log) = self_train(
        lr,
        &yl,
        2,
        Some(1.0),
        dev,
        Rows {
            dense: &shifted,
            d,
            sparse: None,
        },
        2,
        0,
    );
    assert_eq!(log.len(), 1, "stops at the first harmful round: {log:?}");
    assert!(!log[0].kept && log[0].dev_log_loss.is_some());
    assert_eq!(m.w, base.w, "the labelled-only model is kept");
    // Without a dev set there is nothing to judge by: every round runs.
    let (_, log) = self_train(
        lr,
        &yl,
        2,
        Some(1.0),
        None,
        Rows {
            dense: &xu,
            d,
            sparse: None,
        },
        2,
        0,
    );
    assert!(log.len() == 2 && log.iter().all(|r| r.kept && r.dev_log_loss.is_none()));
}

/// Cross-validation prefers strong regularisation on pure noise and weak regularisation on
/// a clean signal, and is the same on every call (seeded folds).
#[test]
fn cross_validation_follows_the_signal() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let (n, d) = (120, 20);
    let noise: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let a = fit(
        Rows {
            dense: &noise,
            d,
            sparse: None,
        },
        &y,
        3,
        None,
        9,
    );
    // On noise no C predicts better than chance; the held-out log-loss still says that
    // strong regularisation is right (its minimum lies at the strong end of the grid).
    let best_loss = a.cv_loss.iter().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap().0;
    assert!(
        best_loss.dense <= 0.0316,
        "noise: log-loss is lowest at C {best_loss:?}"
    );
    let mut clean = noise.clone();
    for i in 0..n {
        clean[i * d + y[i] as usize] += 3.0;
    }
    let b = fit(
        Rows {
            dense: &clean,
            d,
            sparse: None,
        },
        &y,
        3,
        None,
        9,
    );
    assert!(
        b.c.dense >= 0.316,
        "a clean signal should be regularised lightly, chose C {:?}",
        b.c
    );
    let b2 = fit(
        Rows {
            dense: &clean,
            d,
            sparse: None,
        },
        &y,
        3,
        None,
        9,
    );
    assert_eq!(b.w, b2.w);
    assert_eq!(b.cv_loss.len(), C_GRID.len());
}

/// A sparse block alone is plain TF-IDF logistic regression: words that mark a class win,
/// and the dense and sparse parts of a mixed model both carry weight.
#[test]
fn sparse_and_mixed_blocks_fit() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let n = 60;
    let mut sparse: Vec<SparseRow> = Vec::new();
    let mut dense = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i % 2) as u32;
        y.push(c);
        // slot 7 marks class 1, slot 9 class 0; slot 3 is noise in both.
        let mark = if c == 1 { 7 } else { 9 };
        sparse.push(vec![(3, 0.5), (mark, 0.8)]);
        dense.push(rng.gen_range(-1.0..1.0) + c as f32 * 0.5);
    }
    let m = fit(
        Rows {
            dense: &[],
            d: 0,
            sparse: Some((&sparse, 16)),
        },
        &y,
        2,
        None,
        1,
    );
    let ws = m.ws.as_ref().unwrap();
    assert!(ws[7 * 2 + 1] > ws[7 * 2] && ws[9 * 2] > ws[9 * 2 + 1]);
    assert!(ws[5 * 2] == 0.0, "an unseen slot keeps weight 0");
    let p = predict_proba(
        &m,
        Rows {
            dense: &[],
            d: 0,
            sparse: Some((&sparse, 16)),
        },
    );
    assert!((0..n).all(|i| (p[2 * i + 1] > 0.5) == (y[i] == 1)));
    let mixed = fit(
        Rows {
            dense: &dense,
            d: 1,
            sparse: Some((&sparse, 16)),
        },
        &y,
        2,
        Some(1.0),
        1,
    );
    assert!(mixed.w[1] - mixed.w[0] > 0.0, "the dense column leans to class 1");
}

/// With one block carrying the signal and the other pure noise, the joint model is about as
/// good on dev as the signal block alone (the noise block is switched off or shrunk to
/// nothing), and a block switched off has weights exactly 0.
#[test]
fn joint_selection_switches_off_a_block_that_only_adds_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let make = |n: usize, rng: &mut ChaCha8Rng, signal_dense: bool| {
        let (mut dense, mut sparse, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let c = (i % 2) as u32;
            y.push(c);
            let shift = if signal_dense { c as f32 * 1.5 } else { 0.0 };
            dense.extend([rng.gen_range(-1.0..1.0f32) + shift, rng.gen_range(-1.0..1.0)]);
            // Noise slots: many, each row a few at random; or a class marker.
            let row: Vec<(u32, f32)> = if signal_dense {
                let mut r: Vec<u32> = (0..4).map(|_| rng.gen_range(0..400)).collect();
                r.sort_unstable();
                r.dedup();
                r.into_iter().map(|b| (b, 0.5)).collect()
            } else {
                vec![(500 + c, 1.0), (rng.gen_range(0..400), 0.3)]
            };
            sparse.push(row);
        }
        (dense, sparse, y)
    };
    for signal_dense in [true, false] {
        let (dense, sparse, y) = make(80, &mut rng, signal_dense);
        let (dd, sd, yd) = make(200, &mut rng, signal_dense);
        let rows = Rows {
            dense: &dense,
            d: 2,
            sparse: Some((&sparse, 1024)),
        };
        let dev = Rows {
            dense: &dd,
            d: 2,
            sparse: Some((&sd, 1024)),
        };
        let m = fit_select(rows, &y, 2, None, Some((dev, &yd)), 1);
        // The block that carries the signal, alone, fitted the same way.
        let alone = |r: Rows| fit_select(r, &y, 2, None, None, 1);
        let (single, single_dev) = if signal_dense {
            let (a, b) = (Rows { sparse: None, ..rows }, Rows { sparse: None, ..dev });
            (alone(a), b)
        } else {
            let (a, b) = (
                Rows {
                    dense: &[],
                    d: 0,
                    ..rows
                },
                Rows {
                    dense: &[],
                    d: 0,
                    ..dev
                },
            );
            (alone(a), b)
        };
        let loss = |m: &Fitted, r: Rows| -> f64 {
            let p = predict_proba(m, r);
            yd.iter()
                .enumerate()
                .map(|(i, &c)| -(p[2 * i + c as usize] as f64).max(1e-12).ln())
                .sum::<f64>()
                / yd.len() as f64
        };
        let (joint, one) = (loss(&m, dev), loss(&single, single_dev));
        assert!(
            joint <= one + 0.02,
            "joint {joint} vs the signal block alone {one} ({:?})",
            m.c
        );
        // A block switched off is out of the problem: its weights are exactly 0.
        let off = if signal_dense {
            Reg {
                dense: 1.0,
                sparse: OFF,
            }
        } else {
            Reg {
                dense: OFF,
                sparse: 1.0,
            }
        };
        let f = fit_with(rows, &y, 2, off, 1);
        if signal_dense {
            assert!(f.ws.as_ref().unwrap().iter().all(|&w| w == 0.0) && f.w.iter().any(|&w| w != 0.0));
        } else {
            assert!(f.w.iter().all(|&w| w == 0.0) && f.ws.as_ref().unwrap().iter().any(|&w| w != 0.0));
        }
    }
}
