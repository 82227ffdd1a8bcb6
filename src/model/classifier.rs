//! A text classifier: an encoder (`encoder.rs`), pooling (`pool.rs`) and a head (logistic regression or a one-layer
//! MLP), trained with Adam/AdamW, warm-up and linear decay, early stopping on the dev set.
//!
//! Parameter names (stable: they are the safetensors keys):
//! `encoder.embedding` (vocab × dim), `head.w1`/`head.b1` (MLP hidden layer, if any),
//! `head.w`/`head.b` (output layer).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::adam::Adam;
pub use super::encoder::{EncoderSpec, EncoderType};
use super::ngrams::{self, NgramSpec};
use super::pool::{pool, Pooling};
use super::resume;
use super::{check_finite, uniform, zeros, Dev, Params, Tp, T2};
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
    /// How new text must be cut and padded for this model.
    pub shape: crate::artefact::Shape,
}

impl ModelConfig {
    /// Width of the pooled encoder output (the head's input).
    pub fn feature_width(&self) -> usize {
        self.pooling.width(self.encoder.out_dim())
    }
}

pub struct Classifier {
    pub cfg: ModelConfig,
    pub params: Params,
}

/// Training settings shared by finetune and feature-extract.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub weight_decay: f32,
    /// Fraction of all steps spent warming the learning rate up linearly.
    pub warmup: f32,
    /// Linear decay to 0 after warm-up.
    pub decay: bool,
    /// Stop after this many epochs without a better dev accuracy (0 = never).
    pub patience: usize,
    pub seed: u64,
    /// Which parameters learn.
    pub trainable: Vec<String>,
    /// Learning-rate multiplier for every encoder parameter.
    pub encoder_lr_scale: f32,
    /// Encoder parameter groups, bottom (embeddings) to top ([`EncoderSpec::layer_groups`]).
    pub groups: Vec<Vec<String>>,
    /// ULMFiT's gradual unfreezing: the first epoch trains only the head, and each later epoch
    /// releases the next encoder group from the top.
    pub gradual_unfreeze: bool,
    /// Discriminative rates: each group learns this many times slower than the one above it
    /// (ULMFiT uses 2.6); 1 = one rate for the whole encoder.
    pub layer_lr_decay: f32,
}

impl TrainSettings {
    /// What learns in `epoch` (0-based).
    fn trainable_in(&self, epoch: usize) -> Vec<String> {
        if !self.gradual_unfreeze {
            return self.trainable.clone();
        }
        let released: Vec<&String> = self.groups.iter().rev().take(epoch).flatten().collect();
        self.trainable
            .iter()
            .filter(|n| !n.starts_with("encoder.") || released.contains(n))
            .cloned()
            .collect()
    }

    /// Learning-rate factor of a parameter.
    fn lr_scale(&self, name: &str) -> f32 {
        if !name.starts_with("encoder.") {
            return 1.0;
        }
        let depth = self
            .groups
            .iter()
            .rev()
            .position(|g| g.iter().any(|n| n == name))
            .unwrap_or(0);
        self.encoder_lr_scale / self.layer_lr_decay.powi(depth as i32)
    }
}

/// What [`Classifier::train`] needs to continue after an epoch (see `resume.rs`); the
/// parameters, best parameters and moments travel as tensors beside it.
#[derive(Serialize, Deserialize)]
struct TrainState {
    adam_steps: BTreeMap<String, i32>,
    best_accuracy: Option<f64>,
    rng: String,
    order: Vec<usize>,
    history: Vec<EpochLog>,
    since_best: usize,
    step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub train_loss: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_accuracy: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_macro_f1: Option<f64>,
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
        if let Some((field, msg)) = cfg.encoder.problems().into_iter().next() {
            bail!("the model config's encoder is invalid: {field}: {msg}");
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
        self.encode::<NoneTape>(dev, ids, mask, b, self.cfg.shape.max_len)
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
        let p = |n: &str| self.param::<T>(n);
        let x = self.cfg.encoder.states(dev, &p, ids, mask, b, l, false)?;
        Ok(pool(dev, x, mask, b, l, self.cfg.pooling))
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
    /// without a tape in batches of 512 rows.
    pub fn features_of(&self, dev: &Dev, data: &Padded) -> Result<Vec<f32>> {
        let l = data.len;
        let mut out = Vec::with_capacity(data.rows() * self.cfg.feature_width());
        for start in (0..data.rows()).step_by(512) {
            let end = (start + 512).min(data.rows());
            let x = self.features(
                dev,
                &data.ids[start * l..end * l],
                &data.mask[start * l..end * l],
                end - start,
            )?;
            out.extend(x.as_vec());
        }
        Ok(out)
    }

    /// Class probabilities for padded rows (inference).
    pub fn predict_proba(&self, dev: &Dev, data: &Padded) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(data.rows());
        let l = data.len;
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
        for start in (0..data.rows()).step_by(512) {
            let end = (start + 512).min(data.rows());
            let b = end - start;
            let mut logits = if bias_only {
                bias.iter().copied().cycle().take(b * c).collect()
            } else {
                let x = self.features(dev, &data.ids[start * l..end * l], &data.mask[start * l..end * l], b)?;
                self.head(x)?.as_vec()
            };
            if let Some((ng, idf, w)) = &ngram_head {
                let rows = ngrams::features(
                    *ng,
                    idf,
                    &data.ids[start * l..end * l],
                    &data.mask[start * l..end * l],
                    l,
                );
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
            out.extend(logits.chunks(c).map(|r| r.to_vec()));
        }
        Ok(out)
    }

    /// Trains on `train` (optionally with frozen, precomputed features), evaluating on `dev`
    /// after each epoch; keeps the parameters of the best dev epoch.
    pub fn train(
        &mut self,
        dev: &Dev,
        train: &Padded,
        devset: Option<&Padded>,
        s: &TrainSettings,
        lc: super::LoopCtx,
    ) -> Result<Vec<EpochLog>> {
        let progress = lc.progress;
        let n = train.rows();
        if n == 0 {
            bail!("the training set is empty");
        }
        if self.cfg.ngrams.is_some() {
            bail!("n-gram features are fitted by the logistic head's solver, not by SGD");
        }
        let train_encoder = s.trainable.iter().any(|t| t.starts_with("encoder."));
        // A frozen encoder runs once over the data: its pooled features are the head's input.
        let frozen_feats: Option<Vec<f32>> = if train_encoder {
            None
        } else {
            Some(self.features_of(dev, train)?)
        };
        let width = self.cfg.feature_width();
        let steps_per_epoch = n.div_ceil(s.batch_size);
        let total = (steps_per_epoch * s.epochs).max(1) as f32;
        let warm = (s.warmup * total).max(1.0);
        let mut opt = Adam::new(s.lr, s.weight_decay);
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x5eed);
        let mut order: Vec<usize> = (0..n).collect();
        let mut history = Vec::new();
        let mut best: Option<(f64, Params)> = None;
        let mut since_best = 0;
        let mut step = 0usize;
        let mut first = 0;
        progress.set_length(s.epochs as u64);
        if let Some((done, st, t)) = resume::load::<TrainState>(dev, lc.checkpoint) {
            self.params = resume::take(&t, "p.");
            opt.load_state(&t, &st.adam_steps)?;
            best = st.best_accuracy.map(|a| (a, resume::take(&t, "best.")));
            resume::set_rng_pos(&mut rng, &st.rng)?;
            (order, history, since_best, step, first) = (st.order, st.history, st.since_best, st.step, done);
            progress.resumed(done, done as u64);
        }
        for epoch in first..s.epochs {
            let trainable = s.trainable_in(epoch);
            order.shuffle(&mut rng);
            let mut loss_sum = 0.0f64;
            for batch in order.chunks(s.batch_size) {
                let b = batch.len();
                let frozen = frozen_feats.as_deref().map(|f| (f, width));
                let loss = self.batch_loss(dev, train, batch, frozen)?;
                let lv = loss.array();
                check_finite(lv, "training", epoch)?;
                loss_sum += lv as f64 * b as f64;
                let mut grads = loss.backward();
                step += 1;
                let sched = if (step as f32) < warm {
                    step as f32 / warm
                } else if s.decay {
                    ((total - step as f32) / (total - warm).max(1.0)).max(0.0)
                } else {
                    1.0
                };
                opt.step(&mut self.params, &mut grads, &trainable, sched, |name| s.lr_scale(name))?;
            }
            let mut log = EpochLog {
                epoch: epoch + 1,
                train_loss: loss_sum / n as f64,
                dev_loss: None,
                dev_accuracy: None,
                dev_macro_f1: None,
            };
            if let Some(d) = devset {
                let m = self.evaluate(dev, d)?;
                log.dev_loss = Some(m.loss);
                log.dev_accuracy = Some(m.accuracy);
                log.dev_macro_f1 = Some(m.macro_f1);
                if best.as_ref().is_none_or(|(a, _)| m.accuracy > *a) {
                    best = Some((m.accuracy, self.params.clone()));
                    since_best = 0;
                } else {
                    since_best += 1;
                }
            }
            let measured = match (log.dev_loss, log.dev_accuracy) {
                (Some(l), Some(a)) => format!("train loss {:.4}, dev loss {l:.4}, dev accuracy {a:.4}", log.train_loss),
                _ => format!("train loss {:.4}", log.train_loss),
            };
            history.push(log);
            progress.inc(1);
            progress.epoch(epoch + 1, s.epochs, &measured);
            if s.patience > 0 && since_best >= s.patience {
                break;
            }
            if epoch + 1 < s.epochs && lc.checkpoint.due() {
                let mut t = Params::default();
                resume::put(&mut t, "p.", &self.params);
                if let Some((_, b)) = &best {
                    resume::put(&mut t, "best.", b);
                }
                let state = TrainState {
                    adam_steps: opt.save_state(&mut t),
                    best_accuracy: best.as_ref().map(|(a, _)| *a),
                    rng: resume::rng_pos(&rng),
                    order: order.clone(),
                    history: history.clone(),
                    since_best,
                    step,
                };
                resume::save(lc.checkpoint, epoch + 1, &state, &t);
            }
        }
        if let Some((_, p)) = best {
            self.params = p;
        }
        Ok(history)
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
                let ids: Vec<u32> = batch.iter().flat_map(|&i| data.row(i).iter().copied()).collect();
                let mask: Vec<u8> = batch.iter().flat_map(|&i| data.mask_row(i).iter().copied()).collect();
                self.encode::<Tp>(dev, &ids, &mask, b, data.len)?
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artefact::{Shape, Side};

    fn tiny(pooling: Pooling, hidden: usize, kind: EncoderType) -> (Dev, Classifier, Padded) {
        let dev = Dev::default();
        let cfg = ModelConfig {
            encoder: EncoderSpec {
                kind,
                dim: 4,
                heads: (kind == EncoderType::Transformer).then_some(2),
                ..EncoderSpec::default()
            },
            vocab_size: 7,
            pooling,
            hidden,
            labels: vec!["a".into(), "b".into(), "c".into()],
            ngrams: None,
            shape: Shape {
                max_len: 3,
                add_cls: false,
                padding: Side::Post,
                truncating: Side::Post,
            },
        };
        let model = Classifier::new(&dev, cfg, None, 7).unwrap();
        let data = Padded {
            len: 3,
            ids: vec![5, 6, 0, 1, 2, 3, 4, 0, 0],
            mask: vec![1, 1, 0, 1, 1, 1, 1, 0, 0],
            labels: vec![0, 2, 1],
        };
        (dev, model, data)
    }

    /// Ids beyond the embedding table (sequences from another tokenizer) are an error on every
    /// encoder, not an out-of-bounds panic inside the embedding op.
    #[test]
    fn token_ids_beyond_the_embedding_are_an_error() {
        for kind in [
            EncoderType::Bag,
            EncoderType::Lstm,
            EncoderType::Cnn,
            EncoderType::Transformer,
        ] {
            let (dev, model, mut data) = tiny(Pooling::Mean, 0, kind);
            data.ids[1] = 7; // vocab_size is 7: ids 0..=6
            let err = model.predict_proba(&dev, &data).expect_err("must fail");
            assert!(
                err.to_string().contains("outside the embedding table"),
                "{kind:?}: {err}"
            );
        }
    }

    /// Autodiff gradients of every parameter match central finite differences — the check that
    /// no gradient is cut silently on the tape (pooling, bias broadcasts, the MLP head).
    #[test]
    fn gradients_match_finite_differences() {
        let cases = [
            (Pooling::Mean, 0, EncoderType::Bag),
            (Pooling::Max, 5, EncoderType::Bag),
            (Pooling::Concat, 0, EncoderType::Bag),
            (Pooling::Meanmax, 0, EncoderType::Bag),
            (Pooling::Mean, 0, EncoderType::Lstm),
            (Pooling::Last, 3, EncoderType::Lstm),
            (Pooling::First, 0, EncoderType::Lstm),
            (Pooling::Max, 0, EncoderType::Cnn),
            (Pooling::Mean, 0, EncoderType::Transformer),
            (Pooling::Concat, 0, EncoderType::Transformer),
        ];
        for (pooling, hidden, kind) in cases {
            let (dev, mut model, data) = tiny(pooling, hidden, kind);
            let kind = model.cfg.encoder.name();
            let batch = [0usize, 1, 2];
            let grads = model.batch_loss(&dev, &data, &batch, None).unwrap().backward();
            let names: Vec<String> = model.params.tensors.keys().cloned().collect();
            for name in names {
                let g: Vec<f32> = grads.get(&model.params.tensors[&name].retaped::<Tp>()).as_vec();
                let w = model.params.tensors[&name].as_vec();
                for i in (0..w.len()).step_by(3) {
                    let eps = 2e-3f32;
                    let mut at = |delta: f32| {
                        let mut v = w.clone();
                        v[i] += delta;
                        model.params.tensors.get_mut(&name).unwrap().copy_from(&v);
                        let l = model.batch_loss(&dev, &data, &batch, None).unwrap().array();
                        model.params.tensors.get_mut(&name).unwrap().copy_from(&w);
                        l
                    };
                    let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                    assert!(
                        (numeric - g[i]).abs() < 2e-3 + 2e-2 * numeric.abs(),
                        "{kind:?}/{pooling:?}/{hidden}: d loss / d {name}[{i}]: autodiff {} vs numeric {numeric}",
                        g[i]
                    );
                }
            }
        }
    }
}
