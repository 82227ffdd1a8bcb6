//! 1-D convolution over time (im2col + gemm) with ReLU.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{attach, gemm, product, values, View};
use crate::model::Dev;

/// 1-D convolution over time with ReLU: `x` is `(b·l) × d`, `w` is `(k·d) × f` (offset-major:
/// rows `o·d..(o+1)·d` multiply the token at `t + o − (k−1)/2`), `bias` is `1 × f`. Tokens
/// outside the row or under a 0 in `mask` count as zero vectors ("same" padding), and outputs at
/// padding positions are 0. Returns `(b·l) × f`.
pub fn conv1d_relu<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    w: Tensor<(usize, usize), f32, Dev, T>,
    bias: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = x.shape().1;
    let (kd, f) = *w.shape();
    let k = kd / d;
    assert_eq!(k * d, kd);
    assert_eq!(bias.shape(), &(1, f));
    let n = b * l;
    let xv = values(&x);
    let wv = values(&w);
    let bv = values(&bias);
    // im2col: row (r, t) holds the k token vectors of its window.
    let mut cols = vec![0.0f32; n * kd];
    cols.par_chunks_mut(l * kd).enumerate().for_each(|(r, rc)| {
        for (t, o, s) in window_slots(&mask[r * l..(r + 1) * l], k) {
            rc[t * kd + o * d..t * kd + (o + 1) * d].copy_from_slice(&xv[(r * l + s) * d..(r * l + s + 1) * d]);
        }
    });
    let mut y = vec![0.0f32; n * f];
    for row in y.chunks_mut(f) {
        row.copy_from_slice(&bv);
    }
    let threads = rayon::current_num_threads();
    gemm(
        &mut y,
        f,
        View::rows(&cols, n, kd, kd),
        View::rows(&wv, kd, f, f),
        true,
        threads,
    );
    for (i, row) in y.chunks_mut(f).enumerate() {
        if mask[i] == 0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    let y_keep = if T::OWNS_TAPE { y.clone() } else { Vec::new() };
    let mask = mask.to_vec();
    attach(dev, vec![x, w, bias], y, (n, f), move |g_out: &[f32]| {
        // Through the ReLU (and the zeroed padding outputs).
        let dy: Vec<f32> = g_out
            .iter()
            .zip(&y_keep)
            .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
            .collect();
        let mut d_bias = vec![0.0f32; f];
        for row in dy.chunks(f) {
            d_bias.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let d_w = product(View::rows(&cols, n, kd, kd).t(), View::rows(&dy, n, f, f), threads);
        let d_cols = product(View::rows(&dy, n, f, f), View::rows(&wv, kd, f, f).t(), threads);
        // col2im: each window slot adds back into the token it was copied from.
        let mut d_x = vec![0.0f32; n * d];
        d_x.par_chunks_mut(l * d).enumerate().for_each(|(r, dx)| {
            for (t, o, s) in window_slots(&mask[r * l..(r + 1) * l], k) {
                let src = &d_cols[(r * l + t) * kd + o * d..(r * l + t) * kd + (o + 1) * d];
                dx[s * d..(s + 1) * d].iter_mut().zip(src).for_each(|(a, b)| *a += b);
            }
        });
        vec![Some(d_x), Some(d_w), Some(d_bias)]
    })
}

/// The filled slots of one row's windows: `(t, o, s)` = window at `t`, offset `o` holds the
/// real token at position `s` ("same" padding; positions outside the row or masked are left
/// empty, i.e. zero). The forward pass copies along these slots, the backward adds back.
fn window_slots(mask: &[u8], k: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let l = mask.len();
    let left = (k - 1) / 2;
    (0..l).flat_map(move |t| {
        (0..k).filter_map(move |o| {
            (t + o)
                .checked_sub(left)
                .filter(|&s| s < l && mask[s] != 0)
                .map(|s| (t, o, s))
        })
    })
}
