//! The `bag` encoder: token embeddings, pooled (mean by default) — fastText's representation,
//! the fast baseline, and the encoder whose embeddings word2vec-style pretraining transfers.

use anyhow::Result;
use dfdx::prelude::*;

use super::encoder_config::EncoderSpec;
use super::encoder_kind::{EncoderKind, States, Tokens};
use super::pool::Pooling;
use super::{ops, Dev, ParamFn};

pub struct Bag;

impl EncoderKind for Bag {
    const NAME: &'static str = "bag";
    const DEFAULT_POOLING: Pooling = Pooling::Mean;

    /// The embeddings of the ids, `(rows·len) × dim`.
    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        _s: &EncoderSpec,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        _causal: bool,
    ) -> Result<States<T>> {
        Ok(ops::embedding(dev, p("encoder.embedding")?, x.ids))
    }
}
