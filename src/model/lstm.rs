//! The `lstm` encoder (the seed's Embedding → LSTM): dfdx has no RNN, so the recurrence is the
//! fused op [`ops::lstm`](super::ops::lstm) (one pass over plain slices per step, gemm for
//! `h·W_hh`, rows split over threads). The input projection for all time steps is one dfdx
//! matmul before it. Gate order in `W_ih`, `W_hh`, `b`: input, forget, cell, output (PyTorch's).
//! Padding positions carry the state over, so the state at the last position is the state after
//! the last real token whatever the padding side. The finite-difference tests in `ops/mod.rs` and
//! `classifier.rs` cover this encoder.

use anyhow::Result;
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use super::encoder_kind::{default_dim, EncoderKind, States, Tokens};
use super::pool::Pooling;
use super::{ops, uniform, Dev, ParamFn, T2};
use crate::problem::Problem;

pub struct Lstm;

/// `encoder: {type: lstm, dim: 64}` — one layer; `dim` is the embedding and the hidden width.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LstmConfig {
    /// Embedding and hidden width [64].
    #[serde(default = "default_dim")]
    pub dim: usize,
}

impl EncoderKind for Lstm {
    type Config = LstmConfig;
    const NAME: &'static str = "lstm";
    /// The state after the last real token.
    const DEFAULT_POOLING: Pooling = Pooling::Last;
    const NEXT_TOKEN: bool = true;

    fn with_dim(dim: usize) -> LstmConfig {
        LstmConfig { dim }
    }

    fn dim(c: &LstmConfig) -> usize {
        c.dim
    }

    fn problems(s: &LstmConfig) -> Vec<Problem> {
        let mut v = Vec::new();
        if s.dim > 512 {
            v.push(Problem::new(
                "encoder.dim".into(),
                format!("dim {} is out of range for lstm: expected 2..=512", s.dim),
            ));
        }
        v
    }

    /// uniform ±1/√hidden; forget-gate bias 1 (remember by default).
    fn init(s: &LstmConfig, dev: &Dev, rng: &mut ChaCha8Rng, put: &mut dyn FnMut(&str, T2)) {
        let d = s.dim;
        let k = 1.0 / (d as f32).sqrt();
        put("lstm.w_ih", uniform(dev, rng, d, 4 * d, k));
        put("lstm.w_hh", uniform(dev, rng, d, 4 * d, k));
        let bias: Vec<f32> = (0..4 * d)
            .map(|i| if (d..2 * d).contains(&i) { 1.0 } else { 0.0 })
            .collect();
        put("lstm.b", dev.tensor_from_vec(bias, (1, 4 * d)));
    }

    /// Hidden states `(rows·len) × hidden`.
    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        _c: &LstmConfig,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        _causal: bool,
    ) -> Result<States<T>> {
        let xw = ops::linear(
            dev,
            ops::embedding(dev, p("encoder.embedding")?, x.ids),
            p("encoder.lstm.w_ih")?,
            p("encoder.lstm.b")?,
        );
        Ok(ops::lstm(dev, xw, p("encoder.lstm.w_hh")?, x.mask, x.rows, x.len))
    }
}
