//! A text classifier: an encoder (`encoder.rs`), pooling (`pool.rs`) and a head (logistic
//! regression or a one-layer MLP); its loss and inference. How it is trained is `train.rs`.
//!
//! Parameter names (stable: they are the safetensors keys):
//! `encoder.embedding` (vocab × dim), `head.w1`/`head.b1` (MLP hidden layer, if any),
//! `head.w`/`head.b` (output layer).

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::encoder::Tokens;
pub use super::encoder::{EncoderSpec, EncoderType};
use super::ngrams::{self, NgramSpec};
use super::pool::{pool, Pooling};
use super::{uniform, zeros, Dev, Params, Tp, T2};
use crate::metrics::Metrics;
use crate::seqfile::Padded;

/// Everything needed to rebuild a trained classifier (written as `model.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelConfig {
    pub encoder: EncoderSpec,
    pub vocab_size: usize,
    pub pooling: Pooling,
    /// 0 = logistic-regression head; otherwise the MLP's hidden width.
    pub hidden: usize,
    pub labels: Vec<String>,
    /// TF-IDF n-gram features of the token ids beside the pooled vectors (feature-extract's
    /// logistic head only): parameters `head.ngram_idf` (1 × buckets) and `head.ngram_w`
    /// (buckets × labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngrams: Option<NgramSpec>,
    /// Frozen features from these layers of the encoder (0 = token embeddings, up to its
    /// depth), each pooled and placed side by side in this order; absent = the top layer
    /// (`feature-extract`'s `layers`; a model with layers never trains its encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<usize>>,
    /// How new text must be cut and padded for this model.
    pub shape: crate::artefact::Shape,
}

impl ModelConfig {
    /// Width of the pooled encoder output (the head's input).
    pub fn feature_width(&self) -> usize {
        self.feature_blocks().iter().map(|(_, w)| w).sum()
    }

    /// The pooled features' blocks in column order, each named and sized: a pooled part
    /// (`mean`, `max`, …), or with `layers` a part of a layer (`mean@0`). A logistic head
    /// gives each block its own C — with `layers`, the weight of each layer in the mix.
    pub fn feature_blocks(&self) -> Vec<(String, usize)> {
        let parts = self.pooling.parts();
        match &self.layers {
            None => parts.iter().map(|p| (p.to_string(), self.encoder.out_dim())).collect(),
            Some(layers) => layers
                .iter()
                .flat_map(|&l| {
                    let w = self.encoder.layer_width(l);
                    parts.iter().map(move |p| (format!("{p}@{l}"), w))
                })
                .collect(),
        }
    }

    /// What is wrong with `layers` for this encoder, if anything.
    pub fn layers_problem(&self) -> Option<String> {
        let layers = self.layers.as_ref()?;
        if let Some(problem) = layer_list_problem(layers) {
            return Some(problem.into());
        }
        let top = self.encoder.depth();
        layers.iter().find(|&&l| l > top).map(|l| {
            format!(
                "layer {l} is not a layer of this {} encoder: its layers are 0 (token embeddings) to {top}",
                self.encoder.name()
            )
        })
    }
}

/// What is wrong with a `layers` list whatever the encoder: it must name one or more layers,
/// each once (the spec check and the model-config check share this).
pub fn layer_list_problem(layers: &[usize]) -> Option<&'static str> {
    let mut seen = layers.to_vec();
    seen.sort_unstable();
    seen.dedup();
    (layers.is_empty() || seen.len() < layers.len())
        .then_some("`layers` must name one or more distinct layers (0 = token embeddings)")
}

pub struct Classifier {
    pub cfg: ModelConfig,
    pub params: Params,
}

impl Classifier {
    /// A new classifier: encoder parameters drawn at random, then replaced by those in
    /// `pretrained` (all of them after `lm`/`mlm` pretraining, the embedding alone after
    /// word2vec-style pretraining).
    pub fn new(dev: &Dev, mut cfg: ModelConfig, pretrained: Option<Params>, seed: u64) -> Result<Classifier> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        cfg.encoder = cfg.encoder.resolved();
        let mut params = cfg.encoder.init(dev, &mut rng, cfg.vocab_size);
        for (name, t) in pretrained.map(|p| p.tensors).unwrap_or_default() {
            let Some(mine) = params.tensors.get(&name) else {
                bail!("the pretrained encoder has a parameter `{name}` that a {} encoder does not have; use the same encoder type as the pretrain stage", cfg.encoder.name());
            };
            if mine.shape() != t.shape() {
                bail!(
                    "pretrained `{name}` is {}×{}, but this classifier needs {}×{}: use the pretrain stage's tokenizer and encoder sizes",
                    t.shape().0,
                    t.shape().1,
                    mine.shape().0,
                    mine.shape().1
                );
            }
            params.tensors.insert(name, t);
        }
        let width = cfg.feature_width();
        let c = cfg.labels.len();
        let last_in = if cfg.hidden > 0 {
            params.tensors.insert(
                "head.w1".into(),
                uniform(
                    dev,
                    &mut rng,
                    width,
                    cfg.hidden,
                    (6.0 / (width + cfg.hidden) as f32).sqrt(),
                ),
            );
            params.tensors.insert("head.b1".into(), zeros(dev, 1, cfg.hidden));
            cfg.hidden
        } else {
            width
        };
        params.tensors.insert(
            "head.w".into(),
            uniform(dev, &mut rng, last_in, c, (6.0 / (last_in + c) as f32).sqrt()),
        );
        params.tensors.insert("head.b".into(), zeros(dev, 1, c));
        if let Some(ng) = cfg.ngrams {
            if ng.buckets == 0 || ng.buckets > 1 << 24 || !(1..=3).contains(&ng.n) {
                bail!(
                    "n-gram features with {} buckets and n = {} are out of range",
                    ng.buckets,
                    ng.n
                );
            }
            params
                .tensors
                .insert("head.ngram_idf".into(), zeros(dev, 1, ng.buckets));
            params.tensors.insert("head.ngram_w".into(), zeros(dev, ng.buckets, c));
        }
        Ok(Classifier { cfg, params })
    }

    /// A classifier from a loaded `model.json` and weights, checked against each other: the
    /// config must be usable (labels, shape, encoder sizes) and the weights must be exactly the
    /// tensors, of exactly the shapes, that this config builds. Without this, a folder whose
    /// files came from different models panicked deep inside a matmul.
    pub fn from_parts(dev: &Dev, cfg: ModelConfig, params: Params) -> Result<Classifier> {
        if cfg.labels.is_empty() {
            bail!("the model config has no labels (`labels: []`)");
        }
        let min_len = 1 + usize::from(cfg.shape.add_cls);
        // The same range the pad stage accepts: a larger value can only come from an edited
        // file, and would size every predict batch by it.
        if cfg.shape.max_len < min_len || cfg.shape.max_len > crate::artefact::MAX_LEN {
            bail!(
                "the model config's max_len is {} but must be {min_len}..={}",
                cfg.shape.max_len,
                crate::artefact::MAX_LEN
            );
        }
        if let Some(problem) = cfg.encoder.problems().into_iter().next() {
            bail!("the model config's encoder is invalid: {problem}");
        }
        if let Some(problem) = cfg.layers_problem() {
            bail!("the model config's layers are invalid: {problem}");
        }
        if cfg.hidden > 65536 {
            bail!("the model config's hidden width {} is out of range", cfg.hidden);
        }
        // Sizes come from the (untrusted) config: compare the embedding with the weights
        // before building anything of the config's size.
        let emb = params.get("encoder.embedding")?.shape();
        if emb.0 != cfg.vocab_size {
            bail!(
                "the config says vocab_size {} but encoder.embedding has {} rows",
                cfg.vocab_size,
                emb.0
            );
        }
        let expected = Classifier::new(dev, cfg, None, 0)?;
        for (name, t) in &expected.params.tensors {
            match params.tensors.get(name) {
                None => bail!("the weights lack `{name}`, which this config needs"),
                Some(have) if have.shape() != t.shape() => bail!(
                    "`{name}` is {}×{} but this config needs {}×{}",
                    have.shape().0,
                    have.shape().1,
                    t.shape().0,
                    t.shape().1
                ),
                Some(_) => {}
            }
        }
        if let Some(extra) = params
            .tensors
            .keys()
            .find(|k| !expected.params.tensors.contains_key(*k))
        {
            bail!("the weights have `{extra}`, which this config does not use");
        }
        Ok(Classifier {
            cfg: expected.cfg,
            params,
        })
    }

    /// Names of the head's parameters (what a frozen-encoder classifier trains).
    pub fn head_params(&self) -> Vec<String> {
        self.params
            .tensors
            .keys()
            .filter(|k| k.starts_with("head."))
            .cloned()
            .collect()
    }

    /// A parameter entering a graph with tape type `T`: `OwnedTape` records its gradient,
    /// `NoneTape` (inference, frozen features) does not.
    fn param<T: Tape<f32, Dev> + Default>(&self, name: &str) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
        Ok(self.params.get(name)?.retaped::<T>())
    }

    /// Pooled encoder features, without gradients.
    pub fn features(&self, dev: &Dev, ids: &[u32], mask: &[u8], b: usize) -> Result<T2> {
        self.frozen(dev, ids, mask, b, self.cfg.shape.max_len)
    }

    /// The pooled features without a tape: from the chosen `layers` side by side, or as
    /// [`encode`](Self::encode) gives them.
    fn frozen(&self, dev: &Dev, ids: &[u32], mask: &[u8], b: usize, l: usize) -> Result<T2> {
        let Some(layers) = &self.cfg.layers else {
            return self.encode::<NoneTape>(dev, ids, mask, b, l);
        };
        let p = |n: &str| self.param::<NoneTape>(n);
        let pooled: Vec<Vec<f32>> = cut(ids, mask, b, l, |tokens| -> Result<_> {
            Ok(self
                .cfg
                .encoder
                .layer_states(dev, &p, tokens, layers)?
                .into_iter()
                .map(|x| pool(dev, x, tokens.mask, b, tokens.len, self.cfg.pooling).as_vec())
                .collect())
        })?;
        let w = self.cfg.feature_width();
        let mut out = Vec::with_capacity(b * w);
        for r in 0..b {
            for block in &pooled {
                let bw = block.len() / b;
                out.extend_from_slice(&block[r * bw..(r + 1) * bw]);
            }
        }
        Ok(dev.tensor_from_vec(out, (b, w)))
    }

    /// The pooled encoder output for `b` rows; parameters record gradients when `T` is a real tape.
    fn encode<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        &self,
        dev: &Dev,
        ids: &[u32],
        mask: &[u8],
        b: usize,
        l: usize,
    ) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
        if self.cfg.layers.is_some() {
            bail!("a classifier on chosen `layers` reads frozen features; its encoder cannot be trained");
        }
        let p = |n: &str| self.param::<T>(n);
        cut(ids, mask, b, l, |tokens| {
            let x = self.cfg.encoder.states(dev, &p, tokens, false)?;
            Ok(pool(dev, x, tokens.mask, b, tokens.len, self.cfg.pooling))
        })
    }

    /// Logits from pooled features, on a tape (for training the head).
    fn head<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        &self,
        x: Tensor<(usize, usize), f32, Dev, T>,
    ) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
        let p = |n: &str| self.param::<T>(n);
        let b = x.shape().0;
        let x = if self.cfg.hidden > 0 {
            let b1 = p("head.b1")?
                .reshape_like(&(self.cfg.hidden,))
                .broadcast_like::<_, Axis<0>>(&(b, self.cfg.hidden));
            (x.matmul(p("head.w1")?) + b1).relu()
        } else {
            x
        };
        let c = self.cfg.labels.len();
        let bias = p("head.b")?.reshape_like(&(c,)).broadcast_like::<_, Axis<0>>(&(b, c));
        Ok(x.matmul(p("head.w")?) + bias)
    }

    /// Pooled features of every row of `data` (row-major, `feature_width` per row), computed
    /// without a tape in chunks of rows of similar length ([`by_length`]).
    pub fn features_of(&self, dev: &Dev, data: &Padded) -> Result<Vec<f32>> {
        let w = self.cfg.feature_width();
        let mut out = vec![0.0; data.rows() * w];
        for chunk in by_length(data) {
            let (ids, mask, l) = gather(data, &chunk);
            let x = self.frozen(dev, &ids, &mask, chunk.len(), l)?.as_vec();
            for (&i, f) in chunk.iter().zip(x.chunks(w)) {
                out[i * w..(i + 1) * w].copy_from_slice(f);
            }
        }
        Ok(out)
    }

    /// Class probabilities for padded rows (inference).
    pub fn predict_proba(&self, dev: &Dev, data: &Padded) -> Result<Vec<Vec<f32>>> {
        let c = self.cfg.labels.len();
        // A logistic head whose vector weights are all 0 (`pooled: false`, the linear baseline)
        // reads nothing from the encoder: its logits before the n-grams are the bias (x·0 + b
        // has the same value), so the encoder is not run — on IMDB's 25 k test reviews that
        // was 15 s per evaluation for nothing.
        let bias_only = self.cfg.hidden == 0 && self.params.get("head.w")?.as_vec().iter().all(|&w| w == 0.0);
        let bias = if bias_only {
            self.params.get("head.b")?.as_vec()
        } else {
            Vec::new()
        };
        let ngram_head = match self.cfg.ngrams {
            Some(ng) => Some((
                ng,
                self.params.get("head.ngram_idf")?.as_vec(),
                self.params.get("head.ngram_w")?.as_vec(),
            )),
            None => None,
        };
        let mut out = vec![Vec::new(); data.rows()];
        for chunk in by_length(data) {
            let b = chunk.len();
            let (ids, mask, l) = gather(data, &chunk);
            let mut logits = if bias_only {
                bias.iter().copied().cycle().take(b * c).collect()
            } else {
                let x = self.frozen(dev, &ids, &mask, b, l)?;
                self.head(x)?.as_vec()
            };
            if let Some((ng, idf, w)) = &ngram_head {
                let rows = ngrams::features(*ng, idf, &ids, &mask, l);
                for (row, sp) in logits.chunks_mut(c).zip(&rows) {
                    for &(bucket, v) in sp {
                        let wr = &w[bucket as usize * c..(bucket as usize + 1) * c];
                        row.iter_mut().zip(wr).for_each(|(o, w)| *o += v * w);
                    }
                }
            }
            for row in logits.chunks_mut(c) {
                let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                row.iter_mut().for_each(|v| *v = (*v - mx).exp());
                let s: f32 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            for (&i, p) in chunk.iter().zip(logits.chunks(c)) {
                out[i] = p.to_vec();
            }
        }
        Ok(out)
    }

    /// Mean cross-entropy of rows `batch` of `data`, on a tape that reaches every parameter
    /// used with gradients: the head always, the encoder unless `frozen` gives precomputed
    /// features (row-major, `width` per row).
    pub fn batch_loss(
        &self,
        dev: &Dev,
        data: &Padded,
        batch: &[usize],
        frozen: Option<(&[f32], usize)>,
    ) -> Result<Tensor<Rank0, f32, Dev, Tp>> {
        let b = batch.len();
        let c = self.cfg.labels.len();
        let mut target = vec![0.0f32; b * c];
        for (k, &i) in batch.iter().enumerate() {
            target[k * c + data.labels[i] as usize] = 1.0;
        }
        let target = dev.tensor_from_vec(target, (b, c));
        let x: Tensor<(usize, usize), f32, Dev, Tp> = match frozen {
            Some((f, width)) => {
                let v: Vec<f32> = batch
                    .iter()
                    .flat_map(|&i| f[i * width..(i + 1) * width].iter().copied())
                    .collect();
                dev.tensor_from_vec(v, (b, width)).retaped::<Tp>()
            }
            None => {
                let (ids, mask, l) = gather(data, batch);
                self.encode::<Tp>(dev, &ids, &mask, b, l)?
            }
        };
        let logits = self.head(x)?;
        Ok(cross_entropy_with_logits_loss(logits, target))
    }

    pub fn evaluate(&self, dev: &Dev, data: &Padded) -> Result<Metrics> {
        let probs = self.predict_proba(dev, data)?;
        let labels: Vec<usize> = data.labels.iter().map(|&l| l as usize).collect();
        Ok(Metrics::compute(&probs, &labels, &self.cfg.labels))
    }
}

/// Rescales pretrained embeddings so that the mean row norm is 1: pretraining objectives leave
/// vectors at arbitrary scales, and a head trained with a fixed learning rate needs features of
/// a known scale. Directions (what transfers) are unchanged.
pub fn unit_rows(dev: &Dev, e: &T2) -> T2 {
    let (v, d) = *e.shape();
    let mut w = e.as_vec();
    let norms: Vec<f32> = w
        .chunks(d)
        .map(|r| r.iter().map(|x| x * x).sum::<f32>().sqrt())
        .collect();
    let used: Vec<f32> = norms.iter().copied().filter(|&n| n > 0.0).collect();
    let mean = used.iter().sum::<f32>() / used.len().max(1) as f32;
    if mean > 0.0 {
        w.iter_mut().for_each(|x| *x /= mean);
    }
    dev.tensor_from_vec(w, (v, d))
}

/// `f` on the `b` rows of `l` ids cut to their real columns ([`real_columns`]).
fn cut<R>(ids: &[u32], mask: &[u8], b: usize, l: usize, f: impl FnOnce(Tokens) -> R) -> R {
    let (ids, mask, len) = real_columns(ids, mask, b, l);
    f(Tokens {
        ids: &ids,
        mask: &mask,
        rows: b,
        len,
    })
}

mod columns;
use columns::{by_length, gather, real_columns};

#[cfg(test)]
mod tests;
