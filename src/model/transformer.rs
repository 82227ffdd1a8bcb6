//! The `transformer` encoder: a small BERT-style stack. Token + learned position embeddings
//! and a layer norm, then `layers` × (multi-head self-attention, feed-forward with GELU), each
//! with a residual connection and layer norm — after it (`norm: post`, BERT) or before it
//! (`norm: pre`, with a final norm on top). Attention never looks at padding keys (the fused
//! [`ops::attention`] masks them), so a row's states do not depend on how much padding it has.
//! No dropout: the label budgets here are small and runs must be reproducible bit for bit.

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use serde::{Deserialize, Serialize};

use super::encoder_kind::{default_dim, encoder_names, is_embedding, out_of_range, EncoderKind, States, Tokens};
use super::pool::Pooling;
use super::{ops, uniform, zeros, Dev, ParamFn, Params, T2};
use crate::problem::Problem;

pub struct Transformer;

/// Pre-norm (`x + f(LN(x))`, stable with larger rates) or post-norm (`LN(x + f(x))`, BERT's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    Post,
    Pre,
}

/// `encoder: {type: transformer, dim: 64, layers: 2, heads: 4}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransformerConfig {
    /// Model width [64].
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// Number of layers [2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// Attention heads; must divide dim [4].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// Feed-forward width [2 × dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ff: Option<usize>,
    /// `post` (BERT) or `pre` layer norm [post].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<Norm>,
    /// Longest sequence (position embeddings) [512].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
}

impl EncoderKind for Transformer {
    type Config = TransformerConfig;
    const NAME: &'static str = "transformer";
    const OPTIONS: &'static [&'static str] = &["layers", "heads", "ff", "norm", "positions"];
    const DEFAULT_POOLING: Pooling = Pooling::Mean;
    const NEXT_TOKEN: bool = true;
    const MASKED: bool = true;

    fn with_dim(dim: usize) -> TransformerConfig {
        TransformerConfig {
            dim,
            layers: None,
            heads: None,
            ff: None,
            norm: None,
            positions: None,
        }
    }

    fn dim(c: &TransformerConfig) -> usize {
        c.dim
    }

    fn resolve(s: &mut TransformerConfig) {
        s.layers.get_or_insert(2);
        s.heads.get_or_insert(4);
        s.ff.get_or_insert(2 * s.dim);
        s.norm.get_or_insert(Norm::Post);
        s.positions.get_or_insert(512);
    }

    fn problems(s: &TransformerConfig) -> Vec<Problem> {
        let mut v = Vec::new();
        v.extend(out_of_range("layers", s.layers, 1, 24));
        v.extend(out_of_range("heads", s.heads, 1, 64));
        v.extend(out_of_range("ff", s.ff, 1, 16384));
        v.extend(out_of_range("positions", s.positions, 1, 8192));
        if let Some(h) = s.heads.filter(|&h| h > 0 && !s.dim.is_multiple_of(h)) {
            v.push(Problem::new(
                "encoder.heads".into(),
                format!(
                    "dim {} is not divisible by heads {h}: each head gets dim / heads values",
                    s.dim
                ),
            ));
        }
        v
    }

    fn init(s: &TransformerConfig, dev: &Dev, rng: &mut ChaCha8Rng, put: &mut dyn FnMut(&str, T2)) {
        init(s, dev, rng, put)
    }

    /// The embeddings, then one group per layer (the final pre-norm layer norm with the top).
    fn layer_groups(s: &TransformerConfig, params: &Params) -> Vec<Vec<String>> {
        let names = encoder_names(params);
        let mut groups = vec![names.iter().filter(|n| is_embedding(n)).cloned().collect::<Vec<_>>()];
        for i in 0..s.layers.unwrap_or(2) {
            let pre = format!("encoder.layer{i}.");
            groups.push(names.iter().filter(|n| n.starts_with(&pre)).cloned().collect());
        }
        groups
            .last_mut()
            .expect("layers ≥ 1")
            .extend(names.iter().filter(|n| n.starts_with("encoder.final_ln.")).cloned());
        groups
    }

    fn depth(s: &TransformerConfig) -> usize {
        s.layers.unwrap_or(2)
    }

    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        s: &TransformerConfig,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        causal: bool,
    ) -> Result<States<T>> {
        check_positions(s, x)?;
        states(s, dev, p, x, causal, &mut |_, _| {})
    }

    /// One forward pass, keeping the output of each chosen layer: 0 the normed embeddings,
    /// `i` the output of layer `i` (with pre-norm, the residual stream before the final norm,
    /// except the top layer, which is `states`).
    fn layer_states(
        s: &TransformerConfig,
        dev: &Dev,
        p: ParamFn<NoneTape>,
        x: Tokens,
        layers: &[usize],
    ) -> Result<Vec<States<NoneTape>>> {
        check_positions(s, x)?;
        let top = Self::depth(s);
        let mut kept: Vec<Option<States<NoneTape>>> = vec![None; top + 1];
        let last = states(s, dev, p, x, false, &mut |i, t| {
            if i < top && layers.contains(&i) {
                kept[i] = Some(t.clone());
            }
        })?;
        kept[top] = Some(last);
        layers
            .iter()
            .map(|&l| {
                kept.get(l)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| anyhow::anyhow!("transformer has no layer {l} (its layers are 0..={top})"))
            })
            .collect()
    }
}

fn check_positions(s: &TransformerConfig, x: Tokens) -> Result<()> {
    let max = s.positions.unwrap_or(512);
    if x.len > max {
        bail!(
            "sequences of {} tokens are longer than the transformer's {max} positions; raise `encoder.positions` or lower the pad stage's max_len",
            x.len
        );
    }
    Ok(())
}

fn ones(dev: &Dev, n: usize) -> T2 {
    dev.tensor_from_vec(vec![1.0; n], (1, n))
}

/// Adds this encoder's parameters (names without the `encoder.` prefix).
fn init(s: &TransformerConfig, dev: &Dev, rng: &mut ChaCha8Rng, put: &mut dyn FnMut(&str, T2)) {
    let d = s.dim;
    let ff = s.ff.unwrap_or(2 * d);
    let xavier = |rng: &mut ChaCha8Rng, i: usize, o: usize| uniform(dev, rng, i, o, (6.0 / (i + o) as f32).sqrt());
    put("pos", uniform(dev, rng, s.positions.unwrap_or(512), d, 0.05));
    put("emb_ln.g", ones(dev, d));
    put("emb_ln.b", zeros(dev, 1, d));
    for i in 0..s.layers.unwrap_or(2) {
        let n = |x: &str| format!("layer{i}.{x}");
        put(&n("qkv.w"), xavier(rng, d, 3 * d));
        put(&n("qkv.b"), zeros(dev, 1, 3 * d));
        put(&n("out.w"), xavier(rng, d, d));
        put(&n("out.b"), zeros(dev, 1, d));
        put(&n("ln1.g"), ones(dev, d));
        put(&n("ln1.b"), zeros(dev, 1, d));
        put(&n("ff1.w"), xavier(rng, d, ff));
        put(&n("ff1.b"), zeros(dev, 1, ff));
        put(&n("ff2.w"), xavier(rng, ff, d));
        put(&n("ff2.b"), zeros(dev, 1, d));
        put(&n("ln2.g"), ones(dev, d));
        put(&n("ln2.b"), zeros(dev, 1, d));
    }
    if s.norm == Some(Norm::Pre) {
        put("final_ln.g", ones(dev, d));
        put("final_ln.b", zeros(dev, 1, d));
    }
}

/// `x + f(x)`, where `x` feeds both `f` and the residual path (both uses reach its gradient).
fn residual<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    f: impl FnOnce(Tensor<(usize, usize), f32, Dev, T>) -> Result<Tensor<(usize, usize), f32, Dev, T>>,
) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
    let (x0, tape) = x.split_tape();
    let y = f(x0.clone().put_tape(tape))?;
    Ok(ops::add(dev, y, x0.retaped::<T>()))
}

fn norm<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    p: ParamFn<T>,
    x: Tensor<(usize, usize), f32, Dev, T>,
    name: &str,
) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
    Ok(ops::layer_norm(
        dev,
        x,
        p(&format!("{name}.g"))?,
        p(&format!("{name}.b"))?,
    ))
}

/// Last-layer states `(b·l) × dim`; `keep(i, x)` sees the states after the embeddings (`i` 0)
/// and after each layer `i` below the top.
fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    s: &TransformerConfig,
    dev: &Dev,
    p: ParamFn<T>,
    x: Tokens,
    causal: bool,
    keep: &mut dyn FnMut(usize, &States<T>),
) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
    let Tokens {
        ids,
        mask,
        rows: b,
        len: l,
    } = x;
    let heads = s.heads.unwrap_or(4);
    let pre = s.norm == Some(Norm::Pre);
    // Positions count from each row's first real token, so `padding: pre` (which shifts the
    // text right) gives a text the same positions as `padding: post`; padding before the text
    // gets position 0 (it is masked out of attention anyway).
    let mut pos = vec![0u32; b * l];
    for (row, m) in pos.chunks_mut(l).zip(mask.chunks(l)) {
        let first = m.iter().position(|&v| v != 0).unwrap_or(l);
        for (t, p) in row.iter_mut().enumerate().skip(first) {
            *p = (t - first) as u32;
        }
    }
    let x = ops::add(
        dev,
        ops::embedding(dev, p("encoder.embedding")?, ids),
        ops::embedding(dev, p("encoder.pos")?, &pos),
    );
    let mut x = norm(dev, p, x, "encoder.emb_ln")?;
    for i in 0..s.layers.unwrap_or(2) {
        keep(i, &x);
        let n = |x: &str| format!("encoder.layer{i}.{x}");
        let attn = |x: Tensor<(usize, usize), f32, Dev, T>| -> Result<_> {
            let x = if pre { norm(dev, p, x, &n("ln1"))? } else { x };
            let qkv = ops::linear(dev, x, p(&n("qkv.w"))?, p(&n("qkv.b"))?);
            let a = ops::attention(dev, qkv, heads, mask, b, l, causal);
            Ok(ops::linear(dev, a, p(&n("out.w"))?, p(&n("out.b"))?))
        };
        let ffn = |x: Tensor<(usize, usize), f32, Dev, T>| -> Result<_> {
            let x = if pre { norm(dev, p, x, &n("ln2"))? } else { x };
            let h = ops::gelu(dev, ops::linear(dev, x, p(&n("ff1.w"))?, p(&n("ff1.b"))?));
            Ok(ops::linear(dev, h, p(&n("ff2.w"))?, p(&n("ff2.b"))?))
        };
        x = residual(dev, x, attn)?;
        if !pre {
            x = norm(dev, p, x, &n("ln1"))?;
        }
        x = residual(dev, x, ffn)?;
        if !pre {
            x = norm(dev, p, x, &n("ln2"))?;
        }
    }
    if pre {
        x = norm(dev, p, x, "encoder.final_ln")?;
    }
    Ok(x)
}
