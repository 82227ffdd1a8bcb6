//! The `bag` encoder: token embeddings, pooled (mean by default) — fastText's representation,
//! the fast baseline, and the encoder whose embeddings word2vec-style pretraining transfers.

use anyhow::Result;
use dfdx::prelude::*;

use serde::{Deserialize, Serialize};

use super::encoder_kind::{default_dim, EncoderKind, States, Tokens};
use super::pool::Pooling;
use super::{ops, Dev, ParamFn};

pub struct Bag;

/// `encoder: {type: bag, dim: 64}` — the width is its only option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BagConfig {
    /// Embedding width [64].
    #[serde(default = "default_dim")]
    pub dim: usize,
}

impl EncoderKind for Bag {
    type Config = BagConfig;
    const NAME: &'static str = "bag";
    const DEFAULT_POOLING: Pooling = Pooling::Mean;

    fn with_dim(dim: usize) -> BagConfig {
        BagConfig { dim }
    }

    fn dim(c: &BagConfig) -> usize {
        c.dim
    }

    /// No layers above the embeddings.
    fn depth(_c: &BagConfig) -> usize {
        0
    }

    /// The embeddings of the ids, `(rows·len) × dim`.
    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        _c: &BagConfig,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        _causal: bool,
    ) -> Result<States<T>> {
        Ok(ops::embedding(dev, p("encoder.embedding")?, x.ids))
    }
}
