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

use super::{bag, lstm, transformer, uniform, zeros, Dev, ParamFn, Params};

pub use super::encoder_config::{EncoderSpec, EncoderType, Norm};

impl EncoderSpec {
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
