//! The classifier's training loop (finetune, and feature-extract's MLP head): Adam with
//! warm-up and linear decay, gradual unfreezing and discriminative rates, early stopping on
//! the dev accuracy keeping the best epoch's parameters, and a checkpoint of the whole loop
//! state between epochs (`resume.rs`), so a killed stage resumes to the same bytes.
//!
//! Apart from `classifier.rs` because training is one concept and the model another: what a
//! trained model is (and how it predicts) does not depend on how it was trained.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::classifier::Classifier;
use super::resume;
use super::{check_finite, Dev, Params};
use crate::seqfile::Padded;

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
}
