//! The `cnn` encoder: token embeddings, then one 1-D convolution over time with ReLU ("same"
//! padding; padding tokens count as zero), max-pooled by default — Kim (2014)'s sentence CNN
//! with one window width. The convolution is the fused op
//! [`ops::conv1d_relu`](super::ops::conv1d_relu).

use anyhow::Result;
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use super::encoder_kind::{default_dim, out_of_range, EncoderKind, States, Tokens};
use super::pool::Pooling;
use super::{ops, uniform, zeros, Dev, ParamFn, T2};
use crate::problem::Problem;

pub struct Cnn;

/// `encoder: {type: cnn, dim: 64, filters: 64, kernel: 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CnnConfig {
    /// Embedding width [64].
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Number of filters (output width) [dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<usize>,
    /// Window width in tokens [3].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<usize>,
}

impl EncoderKind for Cnn {
    type Config = CnnConfig;
    const NAME: &'static str = "cnn";
    const OPTIONS: &'static [&'static str] = &["filters", "kernel"];
    const DEFAULT_POOLING: Pooling = Pooling::Max;

    fn with_dim(dim: usize) -> CnnConfig {
        CnnConfig {
            dim,
            filters: None,
            kernel: None,
        }
    }

    fn dim(c: &CnnConfig) -> usize {
        c.dim
    }

    fn resolve(s: &mut CnnConfig) {
        s.filters.get_or_insert(s.dim);
        s.kernel.get_or_insert(3);
    }

    fn problems(s: &CnnConfig) -> Vec<Problem> {
        let mut v = Vec::new();
        v.extend(out_of_range("filters", s.filters, 1, 4096));
        v.extend(out_of_range("kernel", s.kernel, 1, 15));
        v
    }

    fn out_dim(s: &CnnConfig) -> usize {
        s.filters.unwrap_or(s.dim)
    }

    fn init(s: &CnnConfig, dev: &Dev, rng: &mut ChaCha8Rng, put: &mut dyn FnMut(&str, T2)) {
        let (k, d, f) = (s.kernel.unwrap_or(3), s.dim, Self::out_dim(s));
        put(
            "cnn.w",
            uniform(dev, rng, k * d, f, (6.0 / (k * d) as f32).sqrt() / 2.0),
        );
        put("cnn.b", zeros(dev, 1, f));
    }

    /// `ReLU(conv1d(embeddings))`, `(rows·len) × filters`; padding positions are zero.
    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        _c: &CnnConfig,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        _causal: bool,
    ) -> Result<States<T>> {
        let e = ops::embedding(dev, p("encoder.embedding")?, x.ids);
        Ok(ops::conv1d_relu(
            dev,
            e,
            p("encoder.cnn.w")?,
            p("encoder.cnn.b")?,
            x.mask,
            x.rows,
            x.len,
        ))
    }
}
