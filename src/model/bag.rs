//! The `bag` encoder: the masked mean (or max) of token embeddings — fastText's representation,
//! the fast baseline, and the encoder whose embeddings word2vec-style pretraining transfers.

use dfdx::prelude::*;

use super::Dev;

/// How token vectors become one vector per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    #[default]
    Mean,
    Max,
    /// `[mean; max]` (ULMFiT's concat pooling without the last state), 2 × dim wide.
    Concat,
}

impl Pooling {
    pub fn width(self, dim: usize) -> usize {
        match self {
            Pooling::Concat => 2 * dim,
            _ => dim,
        }
    }
}

/// Pools the embeddings of `b` rows of `l` ids (row-major) under their attention mask.
/// Rows with no real token pool to zeros.
pub fn encode<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
    mask: &[u8],
    b: usize,
    l: usize,
    pooling: Pooling,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = emb.shape().1;
    let idx: Tensor<(usize,), usize, Dev> = dev.tensor_from_vec(ids.iter().map(|&i| i as usize).collect(), (b * l,));
    let x = emb.gather(idx).reshape_like(&(b, l, d));
    match pooling {
        Pooling::Mean => mean_pool(dev, x, mask, b, l, d),
        Pooling::Max => max_pool(dev, x, mask, b, l, d),
        Pooling::Concat => {
            let (x0, tape) = x.split_tape();
            let mean = mean_pool(dev, x0.clone().put_tape(tape), mask, b, l, d);
            let (mean, tape) = mean.split_tape();
            let max = max_pool(dev, x0.put_tape(tape), mask, b, l, d);
            let (max, tape) = max.split_tape();
            // Concatenate along features: [mean | max] via two matmuls with selector matrices,
            // which keeps gradients flowing into both halves on one tape.
            let sel = |off: usize| {
                let mut v = vec![0.0f32; d * 2 * d];
                for i in 0..d {
                    v[i * 2 * d + off + i] = 1.0;
                }
                dev.tensor_from_vec(v, (d, 2 * d))
            };
            mean.put_tape(tape).matmul(sel(0)) + max.retaped::<T>().matmul(sel(d))
        }
    }
}

fn mean_pool<T: Tape<f32, Dev> + Merge<NoneTape>>(
    dev: &Dev,
    x: Tensor<(usize, usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
    d: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let mut w = vec![0.0f32; b * l];
    for r in 0..b {
        let m = &mask[r * l..(r + 1) * l];
        let n = m.iter().filter(|&&v| v != 0).count().max(1) as f32;
        for (j, &v) in m.iter().enumerate() {
            if v != 0 {
                w[r * l + j] = 1.0 / n;
            }
        }
    }
    let wt: Tensor<(usize, usize, usize), f32, Dev> =
        dev.tensor_from_vec(w, (b, l)).broadcast_like::<_, Axis<2>>(&(b, l, d));
    (x * wt).sum::<(usize, usize), Axis<1>>()
}

fn max_pool<T: Tape<f32, Dev> + Merge<NoneTape>>(
    dev: &Dev,
    x: Tensor<(usize, usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
    d: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    // Padding positions get -1e4 so they never win; an all-padding row then pools to -1e4,
    // which we avoid by letting its first position count.
    let mut add = vec![0.0f32; b * l];
    for r in 0..b {
        let m = &mask[r * l..(r + 1) * l];
        let any = m.iter().any(|&v| v != 0);
        for (j, &v) in m.iter().enumerate() {
            if v == 0 && (any || j > 0) {
                add[r * l + j] = -1e4;
            }
        }
    }
    let at: Tensor<(usize, usize, usize), f32, Dev> = dev
        .tensor_from_vec(add, (b, l))
        .broadcast_like::<_, Axis<2>>(&(b, l, d));
    (x + at).max::<(usize, usize), Axis<1>>()
}
