//! `finetune`: trains a classifier — encoder and head — on a labelled dataset, the encoder
//! initialised from a `pretrain` stage or at random (`init: random`, the from-scratch control).
//!
//! `freeze: embeddings|encoder` keeps the pretrained part fixed (it is then run once, without
//! a gradient tape); `encoder_lr_scale` gives the encoder its own, usually smaller, learning
//! rate, `layer_lr_decay` slows each lower layer group further (ULMFiT's discriminative
//! rates), and `gradual_unfreeze` releases the encoder one group per epoch, top first. `train_size: N` trains on a deterministic stratified
//! subset of N rows: the label budget. Early stopping keeps the best dev-accuracy epoch.

use crate::problem::Problem;
use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::classify::{self, config_from, save_model};
use super::{params_of, HeldRef, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::classifier::{Classifier, EncoderSpec};
use crate::model::pool::Pooling;
use crate::model::train::TrainSettings;
use crate::model::Dev;

pub const KIND: Kind = Kind {
    name: "finetune",
    produces: super::Product::Classifier,
    // 3: thread-count-independent LSTM gradients; per-parameter Adam steps (gradual
    // unfreezing); transformer positions from the first real token.
    // 4: the LSTM's d W_hh is one product over all rows (chunks follow the pool size again).
    version: 5,
    summary: "train a classifier (encoder + head), from a pretrained encoder or from scratch",
    parse: super::parse_as::<Finetune>,
    schema: super::schema_of::<Finetune>,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Freeze {
    #[default]
    None,
    Embeddings,
    Encoder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Adam,
    Adamw,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finetune {
    /// The pad stage with the labelled datasets.
    pub from: String,
    pub train: String,
    #[serde(default)]
    pub dev: Option<String>,
    /// `random` or the name of a pretrain stage.
    #[serde(default = "d_init")]
    pub init: String,
    #[serde(default)]
    pub encoder: EncoderSpec,
    #[serde(default)]
    pub freeze: Freeze,
    /// How states become one vector per row [the encoder's default: mean for bag and
    /// transformer, last for lstm, max for cnn].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// Hidden width of an MLP head; 0 = a linear (logistic-regression) head.
    #[serde(default)]
    pub hidden: usize,
    #[serde(default)]
    pub train_size: Option<usize>,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    #[serde(default = "d_one")]
    pub encoder_lr_scale: f64,
    /// ULMFiT's gradual unfreezing: epoch 1 trains the head, each later epoch releases one
    /// more encoder layer group, top first.
    #[serde(default)]
    pub gradual_unfreeze: bool,
    /// Discriminative learning rates: each encoder layer group learns this many times slower
    /// than the one above it (ULMFiT: 2.6) [1].
    #[serde(default = "d_one")]
    pub layer_lr_decay: f64,
    #[serde(default)]
    pub optimizer: Optimizer,
    #[serde(default)]
    pub weight_decay: f64,
    /// Share of steps with a linear warm-up.
    #[serde(default = "d_warmup")]
    pub warmup: f64,
    /// Linear decay of the learning rate to 0 after warm-up.
    #[serde(default = "d_true")]
    pub decay: bool,
    /// Early stopping: epochs without a better dev accuracy (0 = off).
    /// Early stopping on the dev set [3]; needs `dev` (rejected and left out of the key without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
}

fn d_init() -> String {
    "random".into()
}
fn d_epochs() -> usize {
    10
}
fn d_batch() -> usize {
    32
}
fn d_lr() -> f64 {
    1e-2
}
fn d_one() -> f64 {
    1.0
}
fn d_warmup() -> f64 {
    0.1
}
fn d_true() -> bool {
    true
}
fn d_patience() -> usize {
    3
}

/// `patience` watches the dev set: without `dev` it would do nothing.
pub fn check_patience(patience: Option<usize>, dev: Option<&str>) -> Vec<Problem> {
    if patience.is_some() && dev.is_none() {
        vec![Problem::new(
            "patience".into(),
            "`patience` stops training when dev accuracy stops improving, so it needs a `dev` dataset".into(),
        )]
    } else {
        Vec::new()
    }
}

/// Range checks shared with feature-extract.
pub fn check_training(epochs: usize, batch: usize, lr: f64, train_size: Option<usize>) -> Vec<Problem> {
    let mut v = Vec::new();
    if !(1..=10000).contains(&epochs) {
        v.push(Problem::new(
            "epochs".into(),
            "epochs is out of range: expected 1..=10000".into(),
        ));
    }
    if !(1..=65536).contains(&batch) {
        v.push(Problem::new(
            "batch_size".into(),
            "batch_size is out of range: expected 1..=65536".into(),
        ));
    }
    if !(lr > 0.0 && lr.is_finite()) {
        v.push(Problem::new("lr".into(), "lr must be a positive number".into()));
    }
    if train_size == Some(0) {
        v.push(Problem::new(
            "train_size".into(),
            "train_size must be at least 1 (omit it to use every row)".into(),
        ));
    }
    v
}

impl Stage for Finetune {
    fn inputs(&self) -> Vec<InputRef> {
        let mut v = vec![InputRef {
            field: "from".into(),
            name: self.from.clone(),
            want: Want::Stage(&[super::Product::Padded]),
        }];
        if self.init != "random" {
            v.push(InputRef {
                field: "init".into(),
                name: self.init.clone(),
                want: Want::Stage(&[super::Product::Encoder]),
            });
        }
        v
    }

    fn held_refs(&self) -> Vec<HeldRef> {
        let mut v = vec![HeldRef::new("train", &self.train, &self.from)];
        v.extend(self.dev.iter().map(|d| HeldRef::new("dev", d, &self.from)));
        v
    }

    fn params(&self) -> serde_json::Value {
        let mut p = params_of(self);
        if self.dev.is_some() {
            p["patience"] = self.patience.unwrap_or_else(d_patience).into();
        }
        p
    }

    fn uses_seed(&self) -> bool {
        true
    }

    fn check(&self) -> Vec<Problem> {
        let mut v = self.encoder.problems();
        v.extend(check_training(self.epochs, self.batch_size, self.lr, self.train_size));
        v.extend(check_patience(self.patience, self.dev.as_deref()));
        if self.weight_decay != 0.0 && self.optimizer != Optimizer::Adamw {
            v.push(Problem::new(
                "weight_decay".into(),
                "`weight_decay` is decoupled weight decay and needs `optimizer: adamw`".into(),
            ));
        }
        if self.init == "random" && self.freeze != Freeze::None {
            v.push(Problem::new("freeze".into(), "freezing a randomly initialised encoder makes no sense; use `freeze: none` or `init: <pretrain stage>`".into()));
        }
        if !(0.0..1.0).contains(&self.warmup) {
            v.push(Problem::new(
                "warmup".into(),
                "warmup is a share of all steps: expected [0, 1)".into(),
            ));
        }
        if !(self.layer_lr_decay >= 1.0 && self.layer_lr_decay.is_finite()) {
            v.push(Problem::new(
                "layer_lr_decay".into(),
                "layer_lr_decay must be ≥ 1 (each lower layer group learns that many times slower)".into(),
            ));
        }
        if self.gradual_unfreeze && self.freeze == Freeze::Encoder {
            v.push(Problem::new(
                "gradual_unfreeze".into(),
                "gradual_unfreeze releases encoder layers, but `freeze: encoder` keeps them all fixed; drop one of the two".into(),
            ));
        }
        if !(self.encoder_lr_scale >= 0.0 && self.encoder_lr_scale.is_finite()) {
            v.push(Problem::new(
                "encoder_lr_scale".into(),
                "encoder_lr_scale must be ≥ 0".into(),
            ));
        }
        if self.hidden > 65536 {
            v.push(Problem::new(
                "hidden".into(),
                "hidden is out of range: expected 0..=65536".into(),
            ));
        }
        v
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let src = ctx.artefact(&self.from)?;
        let meta = classify::pad_meta(src)?;
        let dev = Dev::seed_from_u64(ctx.seed);
        let (train, devset, train_rows) = classify::training_data(
            src,
            &meta,
            &self.from,
            &self.train,
            self.dev.as_deref(),
            self.train_size,
            ctx.seed,
        )?;
        let pretrained = if self.init == "random" {
            None
        } else {
            let (pre, params) = super::pretrain::load_encoder(&dev, ctx.artefact(&self.init)?)?;
            pre.check_fits(&self.encoder, &self.init)?;
            Some(params)
        };
        let cfg = config_from(&meta, self.encoder.clone(), self.pooling, self.hidden);
        let mut model = Classifier::new(&dev, cfg, pretrained, ctx.seed)?;
        let mut trainable: Vec<String> = model.head_params();
        // none: everything learns; embeddings: the rest of the encoder (an LSTM's weights) still
        // learns; encoder: only the head learns.
        trainable.extend(
            model
                .params
                .tensors
                .keys()
                .filter(|k| k.starts_with("encoder."))
                .filter(|k| match self.freeze {
                    Freeze::None => true,
                    Freeze::Embeddings => *k != "encoder.embedding",
                    Freeze::Encoder => false,
                })
                .cloned(),
        );
        let settings = TrainSettings {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr as f32,
            weight_decay: if self.optimizer == Optimizer::Adamw {
                self.weight_decay as f32
            } else {
                0.0
            },
            warmup: self.warmup as f32,
            decay: self.decay,
            patience: if devset.is_some() {
                self.patience.unwrap_or_else(d_patience)
            } else {
                0
            },
            seed: ctx.seed,
            trainable,
            encoder_lr_scale: self.encoder_lr_scale as f32,
            groups: model.cfg.encoder.layer_groups(&model.params),
            gradual_unfreeze: self.gradual_unfreeze,
            layer_lr_decay: self.layer_lr_decay as f32,
        };
        let history = model.train(&dev, &train, devset.as_ref(), &settings, ctx.loop_ctx())?;
        save_model(ctx.out, src, &model, &history)?;
        let full_rows = meta.tok.datasets.get(&self.train).map(|d| d.rows).unwrap_or(0);
        classify::record_train_rows(ctx.out, full_rows, self.train_size, &train_rows)?;
        let last = history.last();
        Ok(Outcome {
            summary: format!(
                "{} rows, {} epochs, train loss {:.3}{}",
                train.rows(),
                history.len(),
                last.map(|h| h.train_loss).unwrap_or(f64::NAN),
                history
                    .iter()
                    .filter_map(|h| h.dev_accuracy)
                    .reduce(f64::max)
                    .map(|a| format!(", best dev accuracy {:.3}", a))
                    .unwrap_or_default()
            ),
            metrics: None,
        })
    }
}
