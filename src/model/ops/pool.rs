//! Masked pooling over time, each one op: the mean and the max of a row's positions.
//!
//! Why: built from dfdx ops, a masked mean was a broadcast multiply and a sum over time, a
//! masked max a broadcast add and a max over time — each walking all `b·l·d` elements through
//! dfdx's strided index arithmetic, with an allocation per op and per gradient. In a `bag`
//! classifier's step those passes were over half the time (perf: the binary kernels 33 %, the
//! reductions 11 %, the zero-fills and copies around them most of another 20 %).
//!
//! Bits: these ops do the dfdx path's arithmetic in its order, so results are the same bytes
//! and no stage key had to change (checked by `fused_pooling_matches_the_dfdx_ops_bit_for_bit`
//! in tests.rs, which keeps the dfdx formulation as its reference):
//! - mean: each output starts at +0 and adds `x · (1/n)` over the row's positions in order.
//!   The dfdx path also added the padding positions' `x · 0`; adding ±0 to a sum that started
//!   at +0 never changes it, so those terms are skipped here.
//! - max: each position is `x + a` (`a` = 0, or −1e4 at padding, except position 0 of a row
//!   with no real token), folded from −∞ with `f32::max` in position order; the gradient goes
//!   to every position equal to the maximum (ties share it, as in dfdx).

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{attach, values};
use crate::model::Dev;

/// Rows below this many elements (`b·l·d`) run on one thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Each `width`-wide chunk of `buf` with its index, on the pool's threads when the op is large
/// (chunks are rows, and no sum crosses a row, so the split changes no bits).
fn for_each_row(buf: &mut [f32], width: usize, parallel: bool, f: impl Fn((usize, &mut [f32])) + Sync + Send) {
    if parallel {
        buf.par_chunks_mut(width.max(1)).enumerate().for_each(f);
    } else {
        buf.chunks_mut(width.max(1)).enumerate().for_each(f);
    }
}

/// The states' width, after checking that `x` is `b·l` rows and `mask` `b·l` long.
fn width<T>(x: &Tensor<(usize, usize), f32, Dev, T>, mask: &[u8], b: usize, l: usize, op: &str) -> usize {
    assert_eq!(x.shape().0, b * l, "{op}: states are not b·l rows");
    assert_eq!(mask.len(), b * l, "{op}: mask is not b·l long");
    x.shape().1
}

/// The mean of each row's real positions: `x` is `(b·l) × d`, row `r·l + t`; a row without a
/// real position pools to zeros.
pub fn mean_pool<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = width(&x, mask, b, l, "mean_pool");
    let par = b * l * d >= PARALLEL_MIN;
    let xv = values(&x);
    let weight: Vec<f32> = mask
        .chunks(l.max(1))
        .map(|m| 1.0 / m.iter().filter(|&&v| v != 0).count().max(1) as f32)
        .collect();
    let mask = mask.to_vec();
    let mut out = vec![0.0f32; b * d];
    let row = |(r, o): (usize, &mut [f32])| {
        let w = weight[r];
        for t in (0..l).filter(|&t| mask[r * l + t] != 0) {
            let xs = &xv[(r * l + t) * d..(r * l + t + 1) * d];
            o.iter_mut().zip(xs).for_each(|(o, x)| *o += x * w);
        }
    };
    for_each_row(&mut out, d, par, row);
    attach(dev, vec![x], out, (b, d), move |g: &[f32]| {
        let mut dx = vec![0.0f32; b * l * d];
        let row = |(r, dr): (usize, &mut [f32])| {
            let (w, gr) = (weight[r], &g[r * d..(r + 1) * d]);
            for (t, dt) in dr.chunks_mut(d.max(1)).enumerate() {
                if mask[r * l + t] != 0 {
                    dt.iter_mut().zip(gr).for_each(|(dx, g)| *dx = g * w);
                }
            }
        };
        for_each_row(&mut dx, l * d, par, row);
        vec![Some(dx)]
    })
}

/// The maximum over each row's real positions: `x` is `(b·l) × d`, row `r·l + t`; a row
/// without a real position pools its position 0.
pub fn max_pool<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = width(&x, mask, b, l, "max_pool");
    let par = b * l * d >= PARALLEL_MIN;
    // What each position adds before the max: padding never wins, except that a row with no
    // real position lets its first one count.
    let add: Vec<f32> = mask
        .chunks(l.max(1))
        .flat_map(|m| {
            let any = m.iter().any(|&v| v != 0);
            m.iter()
                .enumerate()
                .map(move |(t, &v)| if v == 0 && (any || t > 0) { -1e4 } else { 0.0 })
        })
        .collect();
    let mut v = values(&x);
    for (row, a) in v.chunks_mut(d.max(1)).zip(&add) {
        row.iter_mut().for_each(|x| *x += a);
    }
    let mut out = vec![f32::NEG_INFINITY; b * d];
    let row = |(r, o): (usize, &mut [f32])| {
        for t in 0..l {
            let vs = &v[(r * l + t) * d..(r * l + t + 1) * d];
            o.iter_mut().zip(vs).for_each(|(o, &x)| *o = o.max(x));
        }
    };
    for_each_row(&mut out, d, par, row);
    let pooled = out.clone();
    attach(dev, vec![x], out, (b, d), move |g: &[f32]| {
        let mut dx = vec![0.0f32; b * l * d];
        let row = |(r, dr): (usize, &mut [f32])| {
            let (o, gr) = (&pooled[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            for (t, dt) in dr.chunks_mut(d.max(1)).enumerate() {
                let vs = &v[(r * l + t) * d..(r * l + t + 1) * d];
                for k in 0..d {
                    if vs[k] == o[k] {
                        dt[k] = gr[k];
                    }
                }
            }
        };
        for_each_row(&mut dx, l * d, par, row);
        vec![Some(dx)]
    })
}
