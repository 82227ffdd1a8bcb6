//! The LSTM recurrence: per-row cell kernels and backpropagation through time.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{attach, chunks_for, gemm, product, sigmoid, tanh, values, View};
use crate::model::Dev;

simd_kernel! {
    /// One LSTM step of one row: gate pre-activations `g` (`[i f g o]`, 4·h) become
    /// activations in place; writes the cell state `c`, `tanh(c)` and the hidden state `h`.
    fn lstm_cell(g: &mut [f32], c_prev: Option<&[f32]>, c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        let hd = c.len();
        let (ifg, o) = g.split_at_mut(3 * hd);
        let (if_, gg) = ifg.split_at_mut(2 * hd);
        // Two loops, not one over a `chain`: a chained iterator does not vectorise (it was 7 %
        // of the seed LSTM's training step).
        if_.iter_mut().for_each(|v| *v = sigmoid(*v));
        o.iter_mut().for_each(|v| *v = sigmoid(*v));
        gg.iter_mut().for_each(|v| *v = tanh(*v));
        let (i, f) = if_.split_at(hd);
        match c_prev {
            Some(cp) => {
                for j in 0..hd {
                    c[j] = f[j] * cp[j] + i[j] * gg[j];
                }
            }
            None => {
                for j in 0..hd {
                    c[j] = i[j] * gg[j];
                }
            }
        }
        tc.iter_mut().zip(c.iter()).for_each(|(t, c)| *t = tanh(*c));
        h.iter_mut().zip(tc.iter().zip(o.iter())).for_each(|(h, (t, o))| *h = o * t);
    }
}

simd_kernel! {
    /// The backward pass of [`lstm_cell`] for one row: from `dh` and the carried cell gradient
    /// `dc` (updated in place to the previous step's), the gate pre-activation gradients `dg`.
    fn lstm_cell_backward(a: &[f32], c_prev: Option<&[f32]>, tc: &[f32], dh: &[f32], dc: &mut [f32], dg: &mut [f32]) {
        let hd = tc.len();
        let (i, rest) = a.split_at(hd);
        let (f, rest) = rest.split_at(hd);
        let (g, o) = rest.split_at(hd);
        let (dgi, rest) = dg.split_at_mut(hd);
        let (dgf, rest) = rest.split_at_mut(hd);
        let (dgg, dgo) = rest.split_at_mut(hd);
        for j in 0..hd {
            let d = dc[j] + dh[j] * o[j] * (1.0 - tc[j] * tc[j]);
            dgi[j] = d * g[j] * i[j] * (1.0 - i[j]);
            dgg[j] = d * i[j] * (1.0 - g[j] * g[j]);
            dgo[j] = dh[j] * tc[j] * o[j] * (1.0 - o[j]);
            dgf[j] = match c_prev {
                Some(cp) => d * cp[j] * f[j] * (1.0 - f[j]),
                None => 0.0,
            };
            dc[j] = d * f[j];
        }
    }
}

/// What the LSTM's forward pass keeps for its backward pass, for one chunk of rows.
struct LstmChunk {
    rows: std::ops::Range<usize>,
    /// Gate activations `[i f g o]`, `(rows·l) × 4h`.
    act: Vec<f32>,
    /// Cell states, `(rows·l) × h`.
    c: Vec<f32>,
    /// Hidden states, `(rows·l) × h`.
    h: Vec<f32>,
    /// `tanh(c)`, kept for the backward pass.
    tanh_c: Vec<f32>,
}

/// The LSTM recurrence over precomputed input projections: `xw` is `(b·l) × 4h` (row `r·l+t`
/// holds `x_t W_ih + bias` of row `r`), `w_hh` is `h × 4h`; gate order i, f, g, o (PyTorch's).
/// Returns every hidden state, `(b·l) × h`. Where `mask` is 0 the state is carried over
/// unchanged, so the state at `t = l−1` is the state after the last real token whatever the
/// padding side.
pub fn lstm<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    xw: Tensor<(usize, usize), f32, Dev, T>,
    w_hh: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let h4 = w_hh.shape().1;
    let hd = h4 / 4;
    assert_eq!(xw.shape(), &(b * l, h4));
    assert_eq!(w_hh.shape().0, hd);
    assert_eq!(mask.len(), b * l);
    let xv = values(&xw);
    let w = values(&w_hh);
    let chunks: Vec<LstmChunk> = chunks_for(b)
        .into_par_iter()
        .map(|rows| {
            let n = rows.len() * l;
            let r0 = rows.start;
            let mut act = xv[r0 * l * h4..(r0 * l + n) * h4].to_vec();
            let mut c = vec![0.0f32; n * hd];
            let mut h = vec![0.0f32; n * hd];
            let mut tanh_c = vec![0.0f32; n * hd];
            for t in 0..l {
                if t > 0 {
                    // act[·, t] += h[·, t−1] · W_hh, over all rows of the chunk at once.
                    let (h_prev, act_t) = (&h[(t - 1) * hd..], &mut act[t * h4..]);
                    gemm(
                        act_t,
                        l * h4,
                        View::rows(h_prev, rows.len(), hd, l * hd),
                        View::rows(&w, hd, h4, h4),
                        true,
                        1,
                    );
                }
                for (k, r) in rows.clone().enumerate() {
                    let at = k * l + t;
                    if mask[r * l + t] == 0 {
                        if t > 0 {
                            c.copy_within((at - 1) * hd..at * hd, at * hd);
                            h.copy_within((at - 1) * hd..at * hd, at * hd);
                        }
                        continue;
                    }
                    let (done, now) = c.split_at_mut(at * hd);
                    let c_prev = if t == 0 {
                        None
                    } else {
                        Some(&done[(at - 1) * hd..at * hd])
                    };
                    lstm_cell(
                        &mut act[at * h4..(at + 1) * h4],
                        c_prev,
                        &mut now[..hd],
                        &mut tanh_c[at * hd..(at + 1) * hd],
                        &mut h[at * hd..(at + 1) * hd],
                    );
                }
            }
            LstmChunk {
                rows,
                act,
                c,
                h,
                tanh_c,
            }
        })
        .collect();
    let mut out = Vec::with_capacity(b * l * hd);
    for ch in &chunks {
        out.extend_from_slice(&ch.h);
    }
    if !T::OWNS_TAPE {
        return attach(dev, vec![xw, w_hh], out, (b * l, hd), |_| vec![None, None]);
    }
    let mask = mask.to_vec();
    attach(dev, vec![xw, w_hh], out, (b * l, hd), move |g_out: &[f32]| {
        let d_gs: Vec<Vec<f32>> = chunks
            .par_iter()
            .map(|ch| lstm_backward(ch, g_out, &w, &mask, l, hd))
            .collect();
        let d_xw = d_gs.concat();
        // d W_hh = Σ_{rows, t} h_{t−1}ᵀ dG_t as ONE product over every row and step (h_{−1} = 0):
        // gemm splits its outputs among threads, never the inner sum over rows × steps, so the
        // bits do not depend on how the rows were chunked above — which is what lets the chunks
        // follow the pool size.
        let mut h_prev = vec![0.0f32; b * l * hd];
        for ch in &chunks {
            for k in 0..ch.rows.len() {
                let (src, dst) = (k * l * hd, (ch.rows.start + k) * l * hd);
                h_prev[dst + hd..dst + l * hd].copy_from_slice(&ch.h[src..src + (l - 1) * hd]);
            }
        }
        let threads = rayon::current_num_threads();
        let d_w = product(
            View::rows(&h_prev, b * l, hd, hd).t(),
            View::rows(&d_xw, b * l, h4, h4),
            threads,
        );
        vec![Some(d_xw), Some(d_w)]
    })
}

/// Backpropagation through time for one chunk: returns `d xw` (the gate pre-activation
/// gradients) for its rows; `d W_hh` is one product over all rows, in [`lstm`].
fn lstm_backward(ch: &LstmChunk, g_out: &[f32], w: &[f32], mask: &[u8], l: usize, hd: usize) -> Vec<f32> {
    let h4 = 4 * hd;
    let nr = ch.rows.len();
    let n = nr * l;
    let r0 = ch.rows.start;
    let g_out = &g_out[r0 * l * hd..(r0 * l + n) * hd];
    let mut d_g = vec![0.0f32; n * h4];
    let mut dh_carry = vec![0.0f32; nr * hd];
    let mut dc_carry = vec![0.0f32; nr * hd];
    let mut dh_keep = vec![0.0f32; nr * hd];
    let mut dh = vec![0.0f32; hd];
    for t in (0..l).rev() {
        for (k, r) in ch.rows.clone().enumerate() {
            let at = k * l + t;
            for j in 0..hd {
                dh[j] = g_out[at * hd + j] + dh_carry[k * hd + j];
            }
            if mask[r * l + t] == 0 {
                // State carried over: its gradient passes through unchanged.
                dh_keep[k * hd..(k + 1) * hd].copy_from_slice(&dh);
                continue;
            }
            dh_keep[k * hd..(k + 1) * hd].fill(0.0);
            lstm_cell_backward(
                &ch.act[at * h4..(at + 1) * h4],
                if t == 0 {
                    None
                } else {
                    Some(&ch.c[(at - 1) * hd..at * hd])
                },
                &ch.tanh_c[at * hd..(at + 1) * hd],
                &dh,
                &mut dc_carry[k * hd..(k + 1) * hd],
                &mut d_g[at * h4..(at + 1) * h4],
            );
        }
        // dh_{t−1} = dG_t · W_hhᵀ for rows that stepped, the carried gradient for the others.
        if t > 0 {
            gemm(
                &mut dh_carry,
                hd,
                View::rows(&d_g[t * h4..], nr, h4, l * h4),
                View::rows(w, hd, h4, h4).t(),
                false,
                1,
            );
            dh_carry.iter_mut().zip(&dh_keep).for_each(|(a, b)| *a += b);
        }
    }
    d_g
}
