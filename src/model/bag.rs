//! The `bag` encoder: token embeddings, pooled (mean by default) — fastText's representation,
//! the fast baseline, and the encoder whose embeddings word2vec-style pretraining transfers.

use dfdx::prelude::*;

use super::Dev;

/// The embeddings of `b` rows of `l` ids, `(b·l) × dim`.
pub fn states<T: Tape<f32, Dev>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let idx: Tensor<(usize,), usize, Dev> = dev.tensor_from_vec(ids.iter().map(|&i| i as usize).collect(), (b * l,));
    emb.gather(idx)
}
