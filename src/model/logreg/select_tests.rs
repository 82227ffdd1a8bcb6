//! Selection of the regularisation strengths: cross-validation, sparse and mixed blocks, the
//! joint and per-part choices that switch a noise block off.

use super::*;
use rand::Rng;

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
            parts: &[],
            sparse: None,
        },
        &y,
        3,
        None,
        9,
    );
    // On noise no C predicts better than chance; the held-out log-loss still says that
    // strong regularisation is right (its minimum lies at the strong end of the grid).
    let best_loss = a.cv_loss.iter().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap().0.clone();
    assert!(
        best_loss.dense[0] <= 0.0316,
        "noise: log-loss is lowest at C {best_loss:?}"
    );
    let mut clean = noise.clone();
    for i in 0..n {
        clean[i * d + y[i] as usize] += 3.0;
    }
    let clean_rows = Rows {
        dense: &clean,
        d,
        parts: &[],
        sparse: None,
    };
    let b = fit(clean_rows, &y, 3, None, 9);
    assert!(
        b.c.dense[0] >= 0.316,
        "a clean signal should be regularised lightly, chose C {:?}",
        b.c
    );
    let b2 = fit(clean_rows, &y, 3, None, 9);
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
            parts: &[],
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
            parts: &[],
            sparse: Some((&sparse, 16)),
        },
    );
    assert!((0..n).all(|i| (p[2 * i + 1] > 0.5) == (y[i] == 1)));
    let mixed = fit(
        Rows {
            dense: &dense,
            d: 1,
            parts: &[],
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
            parts: &[],
            sparse: Some((&sparse, 1024)),
        };
        let dev = Rows {
            dense: &dd,
            d: 2,
            parts: &[],
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
                    parts: &[],
                    ..rows
                },
                Rows {
                    dense: &[],
                    d: 0,
                    parts: &[],
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
                dense: vec![1.0],
                sparse: OFF,
            }
        } else {
            Reg {
                dense: vec![OFF],
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

/// Dense parts with their own C: the objective's gradient matches finite differences with a
/// different strength per part, and when one part carries the signal and the other only
/// noise, the selection keeps the signal part and switches off or shrinks the noise part, so
/// the dev log-loss is about that of the signal part alone; a part switched off has weights
/// exactly 0 while its sibling's are not.
#[test]
fn dense_parts_get_their_own_c_and_a_noise_part_drops_out() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    // Columns 0..3: part 0 (signal in column 0); columns 3..9: part 1 (noise).
    let make = |n: usize, rng: &mut ChaCha8Rng| {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..n {
            let c = (i % 2) as u32;
            y.push(c);
            for j in 0..9 {
                let shift = if j == 0 { c as f32 * 1.2 } else { 0.0 };
                x.push(rng.gen_range(-1.0..1.0f32) + shift);
            }
        }
        (x, y)
    };
    let (x, y) = make(60, &mut rng);
    let (xd, yd) = make(400, &mut rng);
    let parts = [3usize, 6];
    // Gradient check at a point away from the optimum, C 0.3 for part 0 and 3 for part 1.
    let (mean, sd) = column_stats(&x, 60, 9);
    let z = Z {
        dense: standardise(&x, 9, &mean, &sd, &[0.5; 9]),
        d: 9,
        parts: parts.to_vec(),
        sparse: Vec::new(),
        slots: Vec::new(),
        k: 2,
    };
    let c = Reg {
        dense: vec![0.3, 3.0],
        sparse: 1.0,
    };
    let all: Vec<usize> = (0..60).collect();
    let theta: Vec<f64> = (0..z.dim()).map(|i| ((i * 7 % 5) as f64 - 2.0) * 0.1).collect();
    let (_, g) = objective(&z, &y, &all, &c, &theta);
    for i in [0, 5, 7, 12, 17, 18] {
        let h = 1e-4;
        let (mut up, mut down) = (theta.clone(), theta.clone());
        up[i] += h;
        down[i] -= h;
        let fd = (objective(&z, &y, &all, &c, &up).0 - objective(&z, &y, &all, &c, &down).0) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() < 1e-3,
            "weight {i}: gradient {} vs finite difference {fd}",
            g[i]
        );
    }
    let rows = Rows {
        dense: &x,
        d: 9,
        parts: &parts,
        sparse: None,
    };
    let dev = Rows {
        dense: &xd,
        d: 9,
        parts: &parts,
        sparse: None,
    };
    let m = fit_select(rows, &y, 2, None, Some((dev, &yd)), 1);
    assert_eq!(m.c.dense.len(), 2);
    assert!(
        m.c.dense[1] <= m.c.dense[0] / 3.0,
        "the noise part should be regularised harder: {:?}",
        m.c
    );
    // The signal part alone (its three columns), selected the same way.
    let cols = |v: &[f32]| -> Vec<f32> { v.chunks(9).flat_map(|r| r[..3].to_vec()).collect() };
    let (xs, xds) = (cols(&x), cols(&xd));
    fn rows_of(dense: &[f32]) -> Rows<'_> {
        Rows {
            dense,
            d: 3,
            parts: &[],
            sparse: None,
        }
    }
    let alone = fit_select(rows_of(&xs), &y, 2, None, Some((rows_of(&xds), &yd)), 1);
    let (joint, one) = (log_loss(&m, dev, &yd), log_loss(&alone, rows_of(&xds), &yd));
    assert!(
        joint <= one + 0.01,
        "two parts {joint} vs the signal part alone {one} ({:?})",
        m.c
    );
    let off = fit_with(
        rows,
        &y,
        2,
        Reg {
            dense: vec![1.0, OFF],
            sparse: OFF,
        },
        1,
    );
    assert!(off.w[3 * 2..].iter().all(|&w| w == 0.0), "part 1 is off");
    assert!(off.w[..3 * 2].iter().any(|&w| w != 0.0), "part 0 is on");
}
