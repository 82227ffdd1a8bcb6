//! The L2-regularised multinomial objective, its gradient, and L-BFGS.

use super::*;

/// Logits of `rows` under `theta` (dense weights, sparse weights, then `k` biases).
pub(super) fn logits(z: &Z, rows: &[usize], theta: &[f64]) -> Vec<f32> {
    let (d, k) = (z.d, z.k);
    let mut out = if d > 0 {
        let mut xs = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            xs.extend_from_slice(&z.dense[r * d..(r + 1) * d]);
        }
        let w: Vec<f32> = theta[..d * k].iter().map(|&v| v as f32).collect();
        product(View::rows(&xs, rows.len(), d, d), View::rows(&w, d, k, k), 1)
    } else {
        vec![0.0; rows.len() * k]
    };
    let bias = &theta[z.dim() - k..];
    for (row, &r) in out.chunks_mut(k).zip(rows) {
        row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b as f32);
        if !z.sparse.is_empty() {
            for &(col, v) in &z.sparse[r] {
                let at = (d + col as usize) * k;
                row.iter_mut()
                    .zip(&theta[at..at + k])
                    .for_each(|(o, &w)| *o += v * w as f32);
            }
        }
    }
    out
}

/// Softmax in place; returns log-sum-exp of the row.
pub(super) fn softmax(row: &mut [f32]) -> f64 {
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

/// Objective and gradient over `rows` at C = `c`.
pub(super) fn objective(z: &Z, y: &[u32], rows: &[usize], c: &Reg, theta: &[f64]) -> (f64, Vec<f64>) {
    let (d, k) = (z.d, z.k);
    let n = rows.len().max(1) as f64;
    let mut p = logits(z, rows, theta);
    let mut f = 0.0f64;
    for (row, &r) in p.chunks_mut(k).zip(rows) {
        let target = row[y[r] as usize] as f64;
        f += softmax(row) - target;
        row[y[r] as usize] -= 1.0;
    }
    f /= n;
    let dim = z.dim();
    let nw = dim - k;
    let mut g = vec![0.0f64; dim];
    if d > 0 {
        let mut xs = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            xs.extend_from_slice(&z.dense[r * d..(r + 1) * d]);
        }
        let gw = product(
            View::rows(&xs, rows.len(), d, d).t(),
            View::rows(&p, rows.len(), k, k),
            1,
        );
        g[..d * k].iter_mut().zip(&gw).for_each(|(g, &v)| *g = v as f64 / n);
    }
    for (row, &r) in p.chunks(k).zip(rows) {
        if !z.sparse.is_empty() {
            for &(col, v) in &z.sparse[r] {
                let at = (d + col as usize) * k;
                g[at..at + k]
                    .iter_mut()
                    .zip(row)
                    .for_each(|(g, &e)| *g += (v * e) as f64 / n);
            }
        }
        for (cl, &v) in row.iter().enumerate() {
            g[nw + cl] += v as f64 / n;
        }
    }
    // The penalty per weight: its dense part's C (the parts' columns in order), or the sparse
    // block's.
    let spans = z.parts.iter().map(|&w| w * k).zip(c.dense.iter().copied());
    let spans = spans.chain(std::iter::once((nw - d * k, c.sparse)));
    let mut at = 0;
    for (len, cb) in spans {
        let l = 1.0 / (cb * n);
        for i in at..at + len {
            g[i] += l * theta[i];
            f += 0.5 * l * theta[i] * theta[i];
        }
        at += len;
    }
    (f, g)
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// L-BFGS (memory 10) with a backtracking Armijo line search; stops when the largest gradient
/// component falls below 1e-5 or after 500 iterations. Returns the parameters and objective.
pub(super) fn solve(z: &Z, y: &[u32], rows: &[usize], c: &Reg, warm: Option<&[f64]>) -> (Vec<f64>, f64) {
    // A block switched off is left out of the problem (its weights exactly 0), not given a
    // vanishing C: that would make the problem too ill-conditioned for L-BFGS.
    let keep: Vec<bool> = c.dense.iter().map(|&cp| cp > OFF).collect();
    let sparse = !c.sparse_off();
    if keep.iter().all(|&k| k) && (sparse || !z.has_sparse()) {
        return solve_lbfgs(z, y, rows, c, warm);
    }
    let zr = z.restrict(&keep, sparse);
    let cr = Reg {
        dense: c.dense.iter().zip(&keep).filter(|(_, &k)| k).map(|(&v, _)| v).collect(),
        sparse: c.sparse,
    };
    let (t, f) = solve_lbfgs(&zr, y, rows, &cr, None);
    // Back to the whole problem's layout: [dense columns × k][sparse columns × k][bias × k].
    let k = z.k;
    let mut full = vec![0.0; z.dim()];
    let mut at = 0;
    for (j, p) in z.part_of_column().into_iter().enumerate() {
        if keep[p] {
            full[j * k..(j + 1) * k].copy_from_slice(&t[at * k..(at + 1) * k]);
            at += 1;
        }
    }
    let (dk, sk) = (z.d * k, z.slots.len() * k);
    if sparse && z.has_sparse() {
        full[dk..dk + sk].copy_from_slice(&t[zr.d * k..zr.d * k + sk]);
    }
    let nb = t.len() - k;
    full[dk + sk..].copy_from_slice(&t[nb..]);
    (full, f)
}

pub(super) fn solve_lbfgs(z: &Z, y: &[u32], rows: &[usize], c: &Reg, warm: Option<&[f64]>) -> (Vec<f64>, f64) {
    const M: usize = 10;
    let dim = z.dim();
    let mut theta = warm.map(<[f64]>::to_vec).unwrap_or_else(|| vec![0.0; dim]);
    let (mut f, mut g) = objective(z, y, rows, c, &theta);
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
            if s_hist.is_empty() {
                break;
            }
            // Not a descent direction (stale curvature information): restart from −g.
            s_hist.clear();
            y_hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let cand: Vec<f64> = theta.iter().zip(&dir).map(|(t, d)| t + step * d).collect();
            let (fc, gc) = objective(z, y, rows, c, &cand);
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
