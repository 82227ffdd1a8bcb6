//! Pooling: per-position encoder states `(b·l) × d` → one vector per row, under the
//! attention mask (padding never contributes).

use dfdx::prelude::*;

use super::{ops, Dev};

/// How token states become one vector per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over real positions (bag and transformer default).
    Mean,
    /// Max over real positions (cnn default: max-pooling over time).
    Max,
    /// The first real position (`[CLS]` when the pad stage adds it).
    First,
    /// The last real position (lstm default: the final state).
    Last,
    /// ULMFiT's concat pooling `[last; max; mean]`, 3 × dim wide.
    Concat,
    /// `[max; mean]`, 2 × dim wide: SWEM-concat (Shen et al. 2018) for word vectors, where a
    /// "last" state carries nothing beyond its one word.
    Meanmax,
}

impl Pooling {
    pub fn width(self, dim: usize) -> usize {
        dim * self.parts().len()
    }

    /// The pooled vector's parts, in column order, each `dim` wide: a logistic head gives each
    /// its own regularisation strength (and may switch one off), since max- and mean-pooled
    /// vectors are not equally informative on every task.
    pub fn parts(self) -> &'static [&'static str] {
        match self {
            Pooling::Mean => &["mean"],
            Pooling::Max => &["max"],
            Pooling::First => &["first"],
            Pooling::Last => &["last"],
            Pooling::Concat => &["last", "max", "mean"],
            Pooling::Meanmax => &["max", "mean"],
        }
    }
}

/// Pools `b` rows of `l` states (row `r·l+t`) under `mask`. Rows with no real token pool
/// position 0.
pub fn pool<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
    pooling: Pooling,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = x.shape().1;
    match pooling {
        Pooling::Mean => ops::mean_pool(dev, x, mask, b, l),
        Pooling::Max => ops::max_pool(dev, x, mask, b, l),
        Pooling::First | Pooling::Last => pick(dev, x, mask, b, l, pooling == Pooling::First),
        Pooling::Concat => {
            let (x0, tape) = x.split_tape();
            let last = pick(dev, x0.clone().put_tape(tape), mask, b, l, false);
            let (last, tape) = last.split_tape();
            let max = ops::max_pool(dev, x0.clone().put_tape(tape), mask, b, l);
            let (max, tape) = max.split_tape();
            let mean = ops::mean_pool(dev, x0.put_tape(tape), mask, b, l);
            let (mean, tape) = mean.split_tape();
            concat3(dev, [last, max, mean], tape, d)
        }
        Pooling::Meanmax => {
            let (x0, tape) = x.split_tape();
            let max = ops::max_pool(dev, x0.clone().put_tape(tape), mask, b, l);
            let (max, tape) = max.split_tape();
            let mean = ops::mean_pool(dev, x0.put_tape(tape), mask, b, l);
            let (mean, tape) = mean.split_tape();
            let a = max.put_tape(tape).matmul(selector(dev, 0, 2, d));
            a + mean.retaped::<T>().matmul(selector(dev, 1, 2, d))
        }
    }
}

/// The `d × (parts·d)` matrix that places a `d`-wide block at column block `part`:
/// concatenating along features with selector matmuls keeps every part on one tape.
fn selector(dev: &Dev, part: usize, parts: usize, d: usize) -> Tensor<(usize, usize), f32, Dev> {
    let mut v = vec![0.0f32; d * parts * d];
    for i in 0..d {
        v[i * parts * d + part * d + i] = 1.0;
    }
    dev.tensor_from_vec(v, (d, parts * d))
}

/// `[a | b | c]` along features, the tape (shared by all three) carried through.
fn concat3<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    [a, b, c]: [Tensor<(usize, usize), f32, Dev>; 3],
    tape: T,
    d: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let a = a.put_tape(tape).matmul(selector(dev, 0, 3, d));
    let (a, tape) = a.split_tape();
    let m = b.put_tape(tape).matmul(selector(dev, 1, 3, d));
    let (m, tape) = m.split_tape();
    let a = a.put_tape(tape) + m;
    a + c.retaped::<T>().matmul(selector(dev, 2, 3, d))
}

/// The state at each row's first (or last) real position.
fn pick<T: Tape<f32, Dev> + Merge<NoneTape>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
    first: bool,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let idx: Vec<usize> = (0..b)
        .map(|r| {
            let m = &mask[r * l..(r + 1) * l];
            let t = if first {
                m.iter().position(|&v| v != 0)
            } else {
                m.iter().rposition(|&v| v != 0)
            };
            r * l + t.unwrap_or(0)
        })
        .collect();
    let idx: Tensor<(usize,), usize, Dev> = dev.tensor_from_vec(idx, (b,));
    x.gather(idx)
}
