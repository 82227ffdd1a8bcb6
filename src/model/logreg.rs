//! Multinomial logistic regression solved exactly: L2-regularised, fitted by L-BFGS, with the
//! regularisation strength chosen by stratified k-fold cross-validation on the training rows.
//!
//! Why not the SGD head: with 100 labels an epoch is three or four Adam steps, early stopping
//! ends training after a handful of them, and the head stops far from any optimum (training
//! loss 0.69 → 0.60 was measured on a held-out sentiment set; scikit-learn's
//! `LogisticRegressionCV` on the *same* stored features scored 4.6 points higher). A convex
//! problem deserves a solver that reaches its minimum, and a regularisation strength picked by
//! the data rather than by an epoch count.
//!
//! Conventions follow scikit-learn's `LogisticRegression(C=…, multi_class="multinomial")` so
//! its figures can be compared: the objective is `C · Σᵢ CE(xᵢ, yᵢ) + ½‖W‖²` (bias not
//! penalised), here divided by `C · n`. Features are standardised (per-column mean and standard
//! deviation of the training rows) before fitting, which makes one grid of C values fit every
//! feature kind; the returned weights are mapped back, so they apply to raw features.
//!
//! Deterministic: folds come from a seeded ChaCha generator; products go through gemm, whose
//! bits do not depend on the thread count.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::ops::{product, View};

/// The C values tried by cross-validation: 10^-3 … 10^3 in half decades.
pub const C_GRID: [f64; 13] = [
    1e-3, 3.16e-3, 1e-2, 3.16e-2, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0, 316.0, 1000.0,
];

/// A fitted model on raw features: `logits = x · w + b`, `w` is `d × k` row-major.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    pub c: f64,
    /// Mean held-out log-loss per C of the grid (empty when C was given).
    pub cv_loss: Vec<(f64, f64)>,
    /// Final training objective (mean cross-entropy + penalty) at the chosen C.
    pub objective: f64,
}

/// Fits on `x` (`n × d` row-major) with labels `y` in `0..k`. `c: None` chooses C by
/// stratified cross-validation (up to 5 folds; a fixed C = 1 when a class has fewer than two
/// rows, since then no fold split can hold it out).
pub fn fit(x: &[f32], n: usize, d: usize, y: &[u32], k: usize, c: Option<f64>, seed: u64) -> Fitted {
    assert_eq!(x.len(), n * d);
    assert_eq!(y.len(), n);
    let (mean, sd) = column_stats(x, n, d);
    let z = standardise(x, d, &mean, &sd);
    let (c, cv_loss) = match c {
        Some(c) => (c, Vec::new()),
        None => choose_c(&z, n, d, y, k, seed),
    };
    let rows: Vec<usize> = (0..n).collect();
    let (theta, objective) = solve(&z, d, y, k, &rows, c, None);
    // Back to raw features: z = (x − μ)/σ, so w_raw = w/σ and b_raw = b − Σ_j μ_j w_j/σ_j.
    let mut w = vec![0.0f32; d * k];
    let mut b: Vec<f32> = theta[d * k..].iter().map(|&v| v as f32).collect();
    for j in 0..d {
        for c in 0..k {
            let wj = theta[j * k + c] / sd[j];
            w[j * k + c] = wj as f32;
            b[c] -= (mean[j] * wj) as f32;
        }
    }
    Fitted {
        w,
        b,
        c,
        cv_loss,
        objective,
    }
}

fn column_stats(x: &[f32], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0f64; d];
    for row in x.chunks(d) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut var = vec![0.0f64; d];
    for row in x.chunks(d) {
        var.iter_mut()
            .zip(row)
            .zip(&mean)
            .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2));
    }
    // A constant column gets σ = 1: it carries no information and stays at weight 0.
    let sd = var
        .iter()
        .map(|s| {
            let sd = (s / n.max(1) as f64).sqrt();
            if sd > 1e-12 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    (mean, sd)
}

fn standardise(x: &[f32], d: usize, mean: &[f64], sd: &[f64]) -> Vec<f32> {
    let mut z = x.to_vec();
    for row in z.chunks_mut(d) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(sd) {
            *v = ((*v as f64 - m) / s) as f32;
        }
    }
    z
}

/// Stratified folds: each class's rows shuffled (seeded) and dealt round-robin.
fn folds(y: &[u32], k: usize, nfolds: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c6f_6772_6567);
    let mut fold = vec![0usize; y.len()];
    let mut next = 0usize;
    for class in 0..k as u32 {
        let mut rows: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rows.shuffle(&mut rng);
        for r in rows {
            fold[r] = next % nfolds;
            next += 1;
        }
    }
    fold
}

fn choose_c(z: &[f32], n: usize, d: usize, y: &[u32], k: usize, seed: u64) -> (f64, Vec<(f64, f64)>) {
    let mut counts = vec![0usize; k];
    y.iter().for_each(|&l| counts[l as usize] += 1);
    let smallest = counts.iter().copied().filter(|&c| c > 0).min().unwrap_or(0);
    let nfolds = smallest.min(5);
    if nfolds < 2 {
        return (1.0, Vec::new());
    }
    let fold = folds(y, k, nfolds, seed);
    let mut loss = vec![0.0f64; C_GRID.len()];
    for f in 0..nfolds {
        let train: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let test: Vec<usize> = (0..n).filter(|&i| fold[i] == f).collect();
        // Warm start along the path, from strong to weak regularisation.
        let mut warm: Option<Vec<f64>> = None;
        for (ci, &c) in C_GRID.iter().enumerate() {
            let (theta, _) = solve(z, d, y, k, &train, c, warm.as_deref());
            loss[ci] += mean_log_loss(z, d, y, k, &test, &theta) * test.len() as f64;
            warm = Some(theta);
        }
    }
    let curve: Vec<(f64, f64)> = C_GRID.iter().zip(&loss).map(|(&c, &l)| (c, l / n as f64)).collect();
    // The smallest held-out loss; ties go to the stronger regularisation (listed first).
    let best = curve
        .iter()
        .fold(curve[0], |best, &cur| if cur.1 < best.1 - 1e-12 { cur } else { best });
    (best.0, curve)
}

/// Logits of `rows` under `theta` (`d × k` weights then `k` biases).
fn logits(z: &[f32], d: usize, k: usize, rows: &[usize], theta: &[f64]) -> Vec<f32> {
    let mut xs = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        xs.extend_from_slice(&z[r * d..(r + 1) * d]);
    }
    let w: Vec<f32> = theta[..d * k].iter().map(|&v| v as f32).collect();
    let mut out = product(View::rows(&xs, rows.len(), d, d), View::rows(&w, d, k, k), 1);
    for row in out.chunks_mut(k) {
        row.iter_mut().zip(&theta[d * k..]).for_each(|(v, &b)| *v += b as f32);
    }
    out
}

/// Softmax in place; returns log-sum-exp of the row.
fn softmax(row: &mut [f32]) -> f64 {
    let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let mut s = 0.0f64;
    for v in row.iter_mut() {
        let e = ((*v as f64) - mx).exp();
        *v = e as f32;
        s += e;
    }
    row.iter_mut().for_each(|v| *v = (*v as f64 / s) as f32);
    mx + s.ln()
}

fn mean_log_loss(z: &[f32], d: usize, y: &[u32], k: usize, rows: &[usize], theta: &[f64]) -> f64 {
    let mut lg = logits(z, d, k, rows, theta);
    let mut total = 0.0f64;
    for (row, &r) in lg.chunks_mut(k).zip(rows) {
        let target = row[y[r] as usize] as f64;
        total += softmax(row) - target;
    }
    total / rows.len().max(1) as f64
}

/// Objective and gradient over `rows` at C = `c`.
fn objective(z: &[f32], d: usize, y: &[u32], k: usize, rows: &[usize], c: f64, theta: &[f64]) -> (f64, Vec<f64>) {
    let n = rows.len().max(1) as f64;
    let mut p = logits(z, d, k, rows, theta);
    let mut f = 0.0f64;
    for (row, &r) in p.chunks_mut(k).zip(rows) {
        let target = row[y[r] as usize] as f64;
        f += softmax(row) - target;
        row[y[r] as usize] -= 1.0;
    }
    f /= n;
    let mut xs = Vec::with_capacity(rows.len() * d);
    for &r in rows {
        xs.extend_from_slice(&z[r * d..(r + 1) * d]);
    }
    let gw = product(
        View::rows(&xs, rows.len(), d, d).t(),
        View::rows(&p, rows.len(), k, k),
        1,
    );
    let lam = 1.0 / (c * n);
    let mut g = vec![0.0f64; d * k + k];
    for i in 0..d * k {
        g[i] = gw[i] as f64 / n + lam * theta[i];
        f += 0.5 * lam * theta[i] * theta[i];
    }
    for row in p.chunks(k) {
        for (cl, &v) in row.iter().enumerate() {
            g[d * k + cl] += v as f64 / n;
        }
    }
    (f, g)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// L-BFGS (memory 10) with a backtracking Armijo line search; stops when the largest gradient
/// component falls below 1e-5 or after 500 iterations. Returns the parameters and objective.
fn solve(z: &[f32], d: usize, y: &[u32], k: usize, rows: &[usize], c: f64, warm: Option<&[f64]>) -> (Vec<f64>, f64) {
    const M: usize = 10;
    let dim = d * k + k;
    let mut theta = warm.map(<[f64]>::to_vec).unwrap_or_else(|| vec![0.0; dim]);
    let (mut f, mut g) = objective(z, d, y, k, rows, c, &theta);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    for _ in 0..500 {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < 1e-5 {
            break;
        }
        // Two-loop recursion: direction = −H·g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            q.iter_mut().zip(&y_hist[i]).for_each(|(a, b)| *a -= alpha[i] * b);
        }
        let gamma = match (s_hist.last(), y_hist.last()) {
            (Some(s), Some(yv)) => dot(s, yv) / dot(yv, yv),
            _ => 1.0 / g.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(a, b)| *a += (alpha[i] - beta) * b);
        }
        let dir: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &dir);
        if slope >= 0.0 {
            // Not a descent direction (curvature information went stale): restart.
            s_hist.clear();
            y_hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let cand: Vec<f64> = theta.iter().zip(&dir).map(|(t, d)| t + step * d).collect();
            let (fc, gc) = objective(z, d, y, k, rows, c, &cand);
            if fc <= f + 1e-4 * step * slope {
                accepted = Some((cand, fc, gc));
                break;
            }
            step *= 0.5;
        }
        let Some((cand, fc, gc)) = accepted else {
            break; // no decrease possible at float precision: converged
        };
        let s: Vec<f64> = cand.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let yv: Vec<f64> = gc.iter().zip(&g).map(|(a, b)| a - b).collect();
        let converged = (f - fc).abs() <= 1e-12 * f.abs().max(1.0);
        if dot(&s, &yv) > 1e-12 {
            s_hist.push(s);
            y_hist.push(yv);
            if s_hist.len() > M {
                s_hist.remove(0);
                y_hist.remove(0);
            }
        }
        theta = cand;
        f = fc;
        g = gc;
        if converged {
            break;
        }
    }
    (theta, f)
}

#[cfg(test)]
mod tests {
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
        let m = fit(&x, n, d, &y, 2, Some(1.0), 0);
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
        let z = standardise(&x, d, &mean, &sd);
        let rows: Vec<usize> = (0..n).collect();
        let (theta, _) = solve(&z, d, &y, 2, &rows, 1.0, None);
        let (_, g) = objective(&z, d, &y, 2, &rows, 1.0, &theta);
        assert!(g.iter().all(|v| v.abs() < 1e-4), "gradient at the optimum: {g:?}");
        let weak = fit(&x, n, d, &y, 2, Some(100.0), 0);
        assert!(weak.w[1].abs() > m.w[1].abs());
    }

    /// Cross-validation prefers strong regularisation on pure noise and weak regularisation on
    /// a clean signal, and is the same on every call (seeded folds).
    #[test]
    fn cross_validation_follows_the_signal() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (n, d) = (120, 20);
        let noise: Vec<f32> = (0..n * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let y: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
        let a = fit(&noise, n, d, &y, 3, None, 9);
        assert!(a.c <= 0.0316, "noise should be regularised hard, chose C {}", a.c);
        let mut clean = noise.clone();
        for i in 0..n {
            clean[i * d + y[i] as usize] += 3.0;
        }
        let b = fit(&clean, n, d, &y, 3, None, 9);
        assert!(
            b.c >= 0.316,
            "a clean signal should be regularised lightly, chose C {}",
            b.c
        );
        let b2 = fit(&clean, n, d, &y, 3, None, 9);
        assert_eq!(b.w, b2.w);
        assert_eq!(b.cv_loss.len(), C_GRID.len());
    }
}
