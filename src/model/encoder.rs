//! Encoders: what a spec's `encoder:` block says, the parameters each type owns, and how ids
//! become per-position states `(b·l) × out_dim`. Pooling (`pool.rs`) and heads
//! (`classifier.rs`, `lm.rs`) sit on top, so every encoder serves every recipe.
//!
//! | type          | parameters (`encoder.` prefix)                          | states            |
//! |---------------|---------------------------------------------------------|-------------------|
//! | `bag`         | `embedding`                                             | token embeddings  |
//! | `lstm`        | `embedding`, `lstm.{w_ih,w_hh,b}`                       | hidden states     |
//! | `cnn`         | `embedding`, `cnn.{w,b}`                                | ReLU(conv1d)      |
//! | `transformer` | `embedding`, `pos`, `emb_ln.*`, `layer{i}.*`, `final_ln.*` (pre-norm) | last layer |
//!
//! Every size is chosen at run time; [`EncoderSpec::problems`] rejects, at `validate` time,
//! any size the code cannot run (e.g. dim not divisible by heads), so a run never panics on one.

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::pool::Pooling;
use super::{bag, lstm, transformer, uniform, zeros, Dev, ParamFn, Params};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncoderType {
    #[default]
    Bag,
    Lstm,
    Cnn,
    Transformer,
}

impl EncoderType {
    pub fn name(self) -> &'static str {
        match self {
            EncoderType::Bag => "bag",
            EncoderType::Lstm => "lstm",
            EncoderType::Cnn => "cnn",
            EncoderType::Transformer => "transformer",
        }
    }
}

/// Pre-norm (`x + f(LN(x))`, stable with larger rates) or post-norm (`LN(x + f(x))`, BERT's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    Post,
    Pre,
}

/// Encoder sizes as written in a spec, e.g. `encoder: {type: transformer, dim: 64, layers: 2}`.
/// Options that a type does not use must be left out; [`resolved`](Self::resolved) fills in
/// the defaults (that form is what model configs store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    #[serde(rename = "type", default)]
    pub kind: EncoderType,
    /// Embedding width (and LSTM hidden width, transformer model width).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// cnn: number of filters (output width) [dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<usize>,
    /// cnn: window width in tokens [3].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<usize>,
    /// transformer: number of layers [2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// transformer: attention heads; must divide dim [4].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// transformer: feed-forward width [2 × dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ff: Option<usize>,
    /// transformer: `post` (BERT) or `pre` layer norm [post].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<Norm>,
    /// transformer: longest sequence (position embeddings) [512].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
}

impl Default for EncoderSpec {
    fn default() -> Self {
        EncoderSpec {
            kind: EncoderType::Bag,
            dim: default_dim(),
            filters: None,
            kernel: None,
            layers: None,
            heads: None,
            ff: None,
            norm: None,
            positions: None,
        }
    }
}

fn default_dim() -> usize {
    64
}

impl EncoderSpec {
    /// The same spec with every option of its type filled in.
    pub fn resolved(&self) -> EncoderSpec {
        let mut s = self.clone();
        match s.kind {
            EncoderType::Cnn => {
                s.filters.get_or_insert(s.dim);
                s.kernel.get_or_insert(3);
            }
            EncoderType::Transformer => {
                s.layers.get_or_insert(2);
                s.heads.get_or_insert(4);
                s.ff.get_or_insert(2 * s.dim);
                s.norm.get_or_insert(Norm::Post);
                s.positions.get_or_insert(512);
            }
            _ => {}
        }
        s
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Width of each position's state.
    pub fn out_dim(&self) -> usize {
        match self.kind {
            EncoderType::Cnn => self.filters.unwrap_or(self.dim),
            _ => self.dim,
        }
    }

    pub fn default_pooling(&self) -> Pooling {
        match self.kind {
            EncoderType::Bag | EncoderType::Transformer => Pooling::Mean,
            EncoderType::Lstm => Pooling::Last,
            EncoderType::Cnn => Pooling::Max,
        }
    }

    /// What `validate` says about sizes and types; empty when usable.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut bad = |f: &str, m: String| v.push((format!("encoder.{f}"), m));
        let t = self.name();
        if !(2..=1024).contains(&self.dim) {
            bad("dim", format!("dim {} is out of range: expected 2..=1024", self.dim));
        }
        // Options that belong to one encoder type.
        for (f, set, owner) in [
            ("filters", self.filters.is_some(), EncoderType::Cnn),
            ("kernel", self.kernel.is_some(), EncoderType::Cnn),
            ("layers", self.layers.is_some(), EncoderType::Transformer),
            ("heads", self.heads.is_some(), EncoderType::Transformer),
            ("ff", self.ff.is_some(), EncoderType::Transformer),
            ("norm", self.norm.is_some(), EncoderType::Transformer),
            ("positions", self.positions.is_some(), EncoderType::Transformer),
        ] {
            if set && self.kind != owner {
                let owner = EncoderSpec {
                    kind: owner,
                    ..self.clone()
                }
                .name();
                bad(f, format!("`{f}` applies to {owner} encoders only, not {t}"));
            }
        }
        let r = self.resolved();
        let range = |f: &str, x: Option<usize>, lo: usize, hi: usize| -> Option<(String, String)> {
            x.filter(|x| !(lo..=hi).contains(x)).map(|x| {
                (
                    format!("encoder.{f}"),
                    format!("{f} {x} is out of range: expected {lo}..={hi}"),
                )
            })
        };
        v.extend(range("filters", r.filters, 1, 4096));
        v.extend(range("kernel", r.kernel, 1, 15));
        v.extend(range("layers", r.layers, 1, 24));
        v.extend(range("heads", r.heads, 1, 64));
        v.extend(range("ff", r.ff, 1, 16384));
        v.extend(range("positions", r.positions, 1, 8192));
        if self.kind == EncoderType::Lstm && self.dim > 512 {
            v.push((
                "encoder.dim".into(),
                format!("dim {} is out of range for lstm: expected 2..=512", self.dim),
            ));
        }
        if let Some(h) = r.heads.filter(|&h| h > 0 && !self.dim.is_multiple_of(h)) {
            v.push((
                "encoder.heads".into(),
                format!(
                    "dim {} is not divisible by heads {h}: each head gets dim / heads values",
                    self.dim
                ),
            ));
        }
        v
    }

    /// Fresh parameters (PyTorch-like initialisation) from a seeded generator.
    pub fn init(&self, dev: &Dev, rng: &mut ChaCha8Rng, vocab: usize) -> Params {
        let s = self.resolved();
        let d = s.dim;
        let mut p = Params::default();
        let mut put = |n: &str, t| {
            p.tensors.insert(format!("encoder.{n}"), t);
        };
        put("embedding", uniform(dev, rng, vocab, d, 0.5 / (d as f32).sqrt()));
        match s.kind {
            EncoderType::Bag => {}
            EncoderType::Lstm => {
                // uniform ±1/√hidden; forget-gate bias 1 (remember by default).
                let k = 1.0 / (d as f32).sqrt();
                put("lstm.w_ih", uniform(dev, rng, d, 4 * d, k));
                put("lstm.w_hh", uniform(dev, rng, d, 4 * d, k));
                let bias: Vec<f32> = (0..4 * d)
                    .map(|i| if (d..2 * d).contains(&i) { 1.0 } else { 0.0 })
                    .collect();
                put("lstm.b", dev.tensor_from_vec(bias, (1, 4 * d)));
            }
            EncoderType::Cnn => {
                let (k, f) = (s.kernel.unwrap_or(3), s.out_dim());
                put(
                    "cnn.w",
                    uniform(dev, rng, k * d, f, (6.0 / (k * d) as f32).sqrt() / 2.0),
                );
                put("cnn.b", zeros(dev, 1, f));
            }
            EncoderType::Transformer => transformer::init(&s, dev, rng, &mut put),
        }
        p
    }

    /// Parameter names from the bottom (embeddings) to the top layer: the groups that gradual
    /// unfreezing releases top-down and discriminative learning rates scale.
    pub fn layer_groups(&self, params: &Params) -> Vec<Vec<String>> {
        let s = self.resolved();
        let names: Vec<&String> = params.tensors.keys().filter(|k| k.starts_with("encoder.")).collect();
        let pick = |f: &dyn Fn(&str) -> bool| -> Vec<String> {
            names.iter().filter(|n| f(n)).map(|n| n.to_string()).collect()
        };
        let emb = |n: &str| matches!(n, "encoder.embedding" | "encoder.pos") || n.starts_with("encoder.emb_ln.");
        let mut groups = vec![pick(&emb)];
        if s.kind == EncoderType::Transformer {
            for i in 0..s.layers.unwrap_or(2) {
                let pre = format!("encoder.layer{i}.");
                groups.push(pick(&|n: &str| n.starts_with(&pre)));
            }
            groups
                .last_mut()
                .expect("layers ≥ 1")
                .extend(pick(&|n: &str| n.starts_with("encoder.final_ln.")));
        } else {
            let rest = pick(&|n: &str| !emb(n));
            if !rest.is_empty() {
                groups.push(rest);
            }
        }
        groups
    }

    /// Per-position states `(b·l) × out_dim` for `b` rows of `l` ids. `p(name)` hands out a
    /// parameter on tape type `T` (a real tape records gradients; `NoneTape` does not).
    /// `causal` (transformer only) hides later positions, for next-token objectives.
    #[allow(clippy::too_many_arguments)]
    pub fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        &self,
        dev: &Dev,
        p: ParamFn<T>,
        ids: &[u32],
        mask: &[u8],
        b: usize,
        l: usize,
        causal: bool,
    ) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
        let vocab = p("encoder.embedding")?.shape().0;
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            anyhow::bail!(
                "token id {bad} is outside the embedding table ({vocab} rows): the sequences were encoded by another tokenizer than the model's"
            );
        }
        let s = self.resolved();
        Ok(match s.kind {
            EncoderType::Bag => bag::states(dev, p("encoder.embedding")?, ids, b, l),
            EncoderType::Lstm => lstm::states(
                dev,
                p("encoder.embedding")?,
                p("encoder.lstm.w_ih")?,
                p("encoder.lstm.w_hh")?,
                p("encoder.lstm.b")?,
                ids,
                mask,
                b,
                l,
            ),
            EncoderType::Cnn => {
                let x = bag::states(dev, p("encoder.embedding")?, ids, b, l);
                super::ops::conv1d_relu(dev, x, p("encoder.cnn.w")?, p("encoder.cnn.b")?, mask, b, l)
            }
            EncoderType::Transformer => {
                let max = s.positions.unwrap_or(512);
                if l > max {
                    bail!("sequences of {l} tokens are longer than the transformer's {max} positions; raise `encoder.positions` or lower the pad stage's max_len");
                }
                transformer::states(&s, dev, p, ids, mask, b, l, causal)?
            }
        })
    }
}
