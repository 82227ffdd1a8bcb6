//! The `bag` encoder: token embeddings, pooled (mean by default) — fastText's representation,
//! the fast baseline, and the encoder whose embeddings word2vec-style pretraining transfers.

use dfdx::prelude::*;

use super::Dev;

/// The embeddings of `b` rows of `l` ids, `(b·l) × dim`.
pub fn states<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    debug_assert_eq!(ids.len(), b * l);
    super::ops::embedding(dev, emb, ids)
}
