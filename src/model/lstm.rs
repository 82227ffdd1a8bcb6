//! The `lstm` encoder (the seed's Embedding → LSTM): dfdx has no RNN, so the recurrence is the
//! fused op [`ops::lstm`](super::ops::lstm) (one pass over plain slices per step, gemm for
//! `h·W_hh`, rows split over threads). The input projection for all time steps is one dfdx
//! matmul before it. Gate order in `W_ih`, `W_hh`, `b`: input, forget, cell, output (PyTorch's).
//! Padding positions carry the state over, so the state at the last position is the state after
//! the last real token whatever the padding side. The finite-difference tests in `ops/mod.rs` and
//! `classifier.rs` cover this encoder.

use dfdx::prelude::*;

use super::{ops, Dev};

/// Hidden states `(b·l) × hidden` of rows of `l` ids.
#[allow(clippy::too_many_arguments)]
pub fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    w_ih: Tensor<(usize, usize), f32, Dev, T>,
    w_hh: Tensor<(usize, usize), f32, Dev, T>,
    bias: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let xw = ops::linear(dev, ops::embedding(dev, emb, ids), w_ih, bias);
    ops::lstm(dev, xw, w_hh, mask, b, l)
}
