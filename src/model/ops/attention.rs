//! Masked multi-head scaled dot-product attention.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{attach, chunks_for, dot, exp, gemm, max, sum, values, View};
use crate::model::Dev;

simd_kernel! {
    /// Softmax of `row · scale` over the keys whose `keep` is 1 (the others get 0), in place.
    /// Branch-free: masked keys score −1e30 and are zeroed after the exp. A row with no key
    /// to see ends all zeros (attends to nothing).
    fn masked_softmax(row: &mut [f32], keep: &[f32], scale: f32) {
        for (v, &m) in row.iter_mut().zip(keep) {
            *v = *v * scale + (m - 1.0) * 1e30;
        }
        let mx = max(row);
        for (v, &m) in row.iter_mut().zip(keep) {
            *v = exp(*v - mx) * m;
        }
        let total = sum(row);
        if total > 0.0 {
            let inv = 1.0 / total;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

simd_kernel! {
    /// Through a softmax row `p`: `dp ← p ⊙ (dp − ⟨dp, p⟩) · scale`.
    fn softmax_backward(p: &[f32], dp: &mut [f32], scale: f32) {
        let d = dot(p, dp);
        dp.iter_mut().zip(p).for_each(|(g, p)| *g = p * (*g - d) * scale);
    }
}

/// Multi-head scaled dot-product attention: `qkv` is `(b·l) × 3d` (`[q | k | v]`, heads
/// side by side within each), returns `(b·l) × d`. Keys at padding positions (`mask` 0) get no
/// weight; with `causal`, position `i` sees only keys `≤ i` (for next-token objectives).
pub fn attention<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    qkv: Tensor<(usize, usize), f32, Dev, T>,
    heads: usize,
    mask: &[u8],
    b: usize,
    l: usize,
    causal: bool,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d3 = qkv.shape().1;
    let d = d3 / 3;
    let dh = d / heads;
    assert_eq!(dh * heads * 3, d3);
    assert_eq!(qkv.shape().0, b * l);
    let scale = 1.0 / (dh as f32).sqrt();
    let qv = values(&qkv);
    let keep: Vec<f32> = mask.iter().map(|&m| f32::from(m != 0)).collect();
    let parts = chunks_for(b);
    // Forward per chunk of rows: output rows and the attention weights (row, head, l × l).
    let fwd: Vec<(Vec<f32>, Vec<f32>)> = parts
        .par_iter()
        .map(|rows| {
            let mut out = vec![0.0f32; rows.len() * l * d];
            let mut probs = vec![0.0f32; rows.len() * heads * l * l];
            for (k, r) in rows.clone().enumerate() {
                let base = &qv[r * l * d3..(r + 1) * l * d3];
                for h in 0..heads {
                    let p = &mut probs[(k * heads + h) * l * l..(k * heads + h + 1) * l * l];
                    gemm(
                        p,
                        l,
                        View::rows(&base[h * dh..], l, dh, d3),
                        View::rows(&base[d + h * dh..], l, dh, d3).t(),
                        false,
                        1,
                    );
                    for i in 0..l {
                        // Keys this query may see: real tokens, and with `causal` only up to i.
                        let seen = if causal { i + 1 } else { l };
                        let keep = &keep[r * l..r * l + seen];
                        let (row, hidden) = p[i * l..(i + 1) * l].split_at_mut(seen);
                        hidden.fill(0.0);
                        masked_softmax(row, keep, scale);
                    }
                    gemm(
                        &mut out[k * l * d + h * dh..],
                        d,
                        View::rows(p, l, l, l),
                        View::rows(&base[2 * d + h * dh..], l, dh, d3),
                        false,
                        1,
                    );
                }
            }
            (out, probs)
        })
        .collect();
    let mut out = Vec::with_capacity(b * l * d);
    let mut probs = Vec::with_capacity(fwd.len());
    for (o, p) in fwd {
        out.extend_from_slice(&o);
        probs.push(p);
    }
    if !T::OWNS_TAPE {
        return attach(dev, vec![qkv], out, (b * l, d), |_| vec![None]);
    }
    attach(dev, vec![qkv], out, (b * l, d), move |g_out: &[f32]| {
        let grads: Vec<Vec<f32>> = parts
            .par_iter()
            .zip(&probs)
            .map(|(rows, probs)| {
                let mut dq = vec![0.0f32; rows.len() * l * d3];
                let mut dp = vec![0.0f32; l * l];
                for (k, r) in rows.clone().enumerate() {
                    let base = &qv[r * l * d3..(r + 1) * l * d3];
                    let go = &g_out[r * l * d..(r + 1) * l * d];
                    let dbase = &mut dq[k * l * d3..(k + 1) * l * d3];
                    for h in 0..heads {
                        let p = &probs[(k * heads + h) * l * l..(k * heads + h + 1) * l * l];
                        // dV = Pᵀ dO
                        gemm(
                            &mut dbase[2 * d + h * dh..],
                            d3,
                            View::rows(p, l, l, l).t(),
                            View::rows(&go[h * dh..], l, dh, d),
                            false,
                            1,
                        );
                        // dP = dO Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                        gemm(
                            &mut dp,
                            l,
                            View::rows(&go[h * dh..], l, dh, d),
                            View::rows(&base[2 * d + h * dh..], l, dh, d3).t(),
                            false,
                            1,
                        );
                        for i in 0..l {
                            softmax_backward(&p[i * l..(i + 1) * l], &mut dp[i * l..(i + 1) * l], scale);
                        }
                        // dQ = dS K; dK = dSᵀ Q
                        gemm(
                            &mut dbase[h * dh..],
                            d3,
                            View::rows(&dp, l, l, l),
                            View::rows(&base[d + h * dh..], l, dh, d3),
                            false,
                            1,
                        );
                        gemm(
                            &mut dbase[d + h * dh..],
                            d3,
                            View::rows(&dp, l, l, l).t(),
                            View::rows(&base[h * dh..], l, dh, d3),
                            false,
                            1,
                        );
                    }
                }
                dq
            })
            .collect();
        vec![Some(grads.concat())]
    })
}
