//! `feature-extract`: the frozen-encoder recipe. The pretrained encoder runs once over the
//! training rows (no gradient tape) and a head — logistic regression or a small MLP — is
//! trained on the pooled features (`mean`, `max`, `first`, `last`, `concat` = ULMFiT's [last; max; mean], or `meanmax` = [max; mean]).
//! Writes the same model artefact as `finetune`, so `evaluate` and `predict` treat both alike,
//! plus the stored features of the training rows (`features.safetensors`).

use crate::problem::Problem;
use anyhow::Result;
use dfdx::prelude::TensorFromVec;
use serde::{Deserialize, Serialize};

mod logistic;

use super::classify::{self, config_from, save_model};
use super::finetune::check_training;
use super::{params_of, HeldRef, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::classifier::{layer_list_problem, Classifier};
use crate::model::pool::Pooling;
use crate::model::train::TrainSettings;
use crate::model::Dev;

pub const KIND: Kind = Kind {
    name: "feature-extract",
    produces: super::Product::Classifier,
    // 3: thread-count-independent LSTM gradients; per-parameter Adam steps (gradual
    // unfreezing); transformer positions from the first real token.
    // 8: the logistic head solved exactly (C by held-out log-loss on dev, or cross-validated;
    // per block with n-grams).
    // 9: with n-grams, the joint C selection may also switch either block off.
    // 10: `unlabelled` rows whose text is one of the labelled training rows are left out.
    // 11: n-gram idf over the labelled rows by default (`idf: all` for the old weighting).
    // 12: a self-training round that raises the dev log-loss is undone.
    // 13: each pooled part (e.g. max and mean of `meanmax`) is a block with its own C; C's
    // chosen by a coordinate pass over the blocks after the joint grid.
    // 14: the coordinate pass over decades (13's half decades doubled the cost on IMDB).
    version: 15,
    summary: "frozen pretrained encoder + a trained head on pooled features",
    parse: super::parse_as::<FeatureExtract>,
    schema: super::schema_of::<FeatureExtract>,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    #[default]
    Logistic,
    Mlp,
}

/// Which rows the n-gram idf is counted over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdfOver {
    #[default]
    Labelled,
    All,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeatureExtract {
    pub from: String,
    /// The pretrain stage whose encoder is used, frozen.
    pub encoder: String,
    pub train: String,
    #[serde(default)]
    pub dev: Option<String>,
    /// How states become one vector per row [the encoder's default: mean for bag and
    /// transformer, last for lstm, max for cnn].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// Features from these layers of a pretrained encoder (0 = its token embeddings, 1 = the
    /// first layer above them, … up to its depth: `layers` of a transformer, 1 for lstm and
    /// cnn, 0 for bag), each pooled, side by side [the top layer alone]. With the logistic head
    /// each layer's block gets its own C, chosen like the others (so the selection weighs
    /// the layers, or switches one off): a learned mix of layers, as ELMo's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<usize>>,
    #[serde(default)]
    pub head: Head,
    /// The MLP head's hidden width [64]; only with `head: mlp` (rejected and left out of the
    /// key with the logistic head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    #[serde(default)]
    pub train_size: Option<usize>,
    /// logistic: the inverse regularisation strength C (scikit-learn's); absent = chosen by
    /// log-loss on `dev` when given, else by stratified 5-fold cross-validation on the
    /// training rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c: Option<f64>,
    /// logistic: datasets of the pad stage whose *texts* feed class-balanced self-training
    /// (e.g. the training csv beyond the label budget, or other in-domain text). Their labels,
    /// if the dataset has any, are never read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlabelled: Vec<String>,
    /// logistic: add TF-IDF features of token uni- to `ngrams`-grams (1..=3) beside the pooled
    /// vectors, in the same regularised regression (idf: see `idf`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ngrams: Option<usize>,
    /// logistic, with `ngrams`: the rows the n-grams' idf is counted over [`labelled`: the
    /// training rows, as scikit-learn's `TfidfVectorizer` fitted on them; `all`: also the
    /// `unlabelled` rows].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idf: Option<IdfOver>,
    /// logistic: whether the pooled encoder vectors are features [true]. `pooled: false` with
    /// `ngrams` is plain TF-IDF logistic regression — the linear baseline, fitted by the same
    /// solver (the encoder's weights in the head are then exactly 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooled: Option<bool>,
    /// Rounds of self-training over `unlabelled` [0: the texts only inform the n-gram idf].
    /// Measured on mpqa_polarity, self-training lowered accuracy by ~2 points, so it is opt-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// mlp: SGD settings [30 epochs, batch 32, lr 0.02]. The logistic head is solved exactly
    /// (L-BFGS), so these are rejected there and left out of its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// mlp: early stopping on the dev set [5]; needs `dev`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patience: Option<usize>,
}

fn d_hidden() -> usize {
    64
}
fn d_epochs() -> usize {
    30
}
fn d_batch() -> usize {
    32
}
fn d_lr() -> f64 {
    2e-2
}
fn d_patience() -> usize {
    5
}

impl FeatureExtract {
    fn epochs(&self) -> usize {
        self.epochs.unwrap_or_else(d_epochs)
    }
    fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or_else(d_batch)
    }
    fn lr(&self) -> f64 {
        self.lr.unwrap_or_else(d_lr)
    }
    fn rounds(&self) -> usize {
        self.rounds.unwrap_or(0)
    }
}

impl Stage for FeatureExtract {
    fn inputs(&self) -> Vec<InputRef> {
        vec![
            InputRef {
                field: "from".into(),
                name: self.from.clone(),
                want: Want::Stage(&[super::Product::Padded]),
            },
            InputRef {
                field: "encoder".into(),
                name: self.encoder.clone(),
                want: Want::Stage(&[super::Product::Encoder]),
            },
        ]
    }

    fn held_refs(&self) -> Vec<HeldRef> {
        let mut v = vec![HeldRef::new("train", &self.train, &self.from)];
        v.extend(self.dev.iter().map(|d| HeldRef::new("dev", d, &self.from)));
        v.extend(
            self.unlabelled
                .iter()
                .enumerate()
                .map(|(i, d)| HeldRef::new(&format!("unlabelled[{i}]"), d, &self.from)),
        );
        v
    }

    fn params(&self) -> serde_json::Value {
        let mut p = params_of(self);
        if !self.unlabelled.is_empty() {
            p["rounds"] = self.rounds().into();
        }
        if self.ngrams.is_some() {
            p["idf"] = serde_json::to_value(self.idf.unwrap_or_default()).unwrap_or_default();
        }
        if self.head == Head::Mlp {
            p["hidden"] = self.hidden.unwrap_or_else(d_hidden).into();
            p["epochs"] = self.epochs().into();
            p["batch_size"] = self.batch_size().into();
            p["lr"] = self.lr().into();
            if self.dev.is_some() {
                p["patience"] = self.patience.unwrap_or_else(d_patience).into();
            }
        }
        p
    }

    /// The seed draws the label budget, the cross-validation folds, and the MLP head's
    /// initialisation and batches. A logistic head on every labelled row with C judged on
    /// `dev` (or given) uses none of them, so repeats of it share one entry: with every label
    /// the template's three repeats were three identical fits (4 minutes each on IMDB).
    fn uses_seed(&self) -> bool {
        self.train_size.is_some() || self.head == Head::Mlp || (self.c.is_none() && self.dev.is_none())
    }

    fn check(&self) -> Vec<Problem> {
        let mut v = check_training(self.epochs(), self.batch_size(), self.lr(), self.train_size);
        v.extend(super::finetune::check_patience(self.patience, self.dev.as_deref()));
        if self.head == Head::Logistic {
            for (f, set) in [
                ("epochs", self.epochs.is_some()),
                ("batch_size", self.batch_size.is_some()),
                ("lr", self.lr.is_some()),
                ("patience", self.patience.is_some()),
            ] {
                if set {
                    v.push(Problem::new(
                        f.into(),
                        format!("`{f}` applies to `head: mlp` only: the logistic head is solved exactly (L-BFGS, C chosen on `dev` or by cross-validation; set `c` to fix C)"),
                    ));
                }
            }
        }
        if let Some(problem) = self.layers.as_deref().and_then(layer_list_problem) {
            v.push(Problem::new("layers".into(), problem.into()));
        }
        if self.head == Head::Mlp && !self.unlabelled.is_empty() {
            v.push(Problem::new(
                "unlabelled".into(),
                "self-training on `unlabelled` texts needs `head: logistic`".into(),
            ));
        }
        if self.head == Head::Mlp && self.ngrams.is_some() {
            v.push(Problem::new(
                "ngrams".into(),
                "n-gram features need `head: logistic`".into(),
            ));
        }
        if self.pooled == Some(false) && self.ngrams.is_none() {
            v.push(Problem::new(
                "pooled".into(),
                "`pooled: false` leaves no features; add `ngrams` (TF-IDF n-grams) or drop `pooled`".into(),
            ));
        }
        if self.pooled.is_some() && self.head == Head::Mlp {
            v.push(Problem::new(
                "pooled".into(),
                "`pooled` applies to `head: logistic` only".into(),
            ));
        }
        if self.idf.is_some() && self.ngrams.is_none() {
            v.push(Problem::new(
                "idf".into(),
                "`idf` weighs n-gram features; it needs `ngrams`".into(),
            ));
        }
        if self.ngrams.is_some_and(|n| !(1..=3).contains(&n)) {
            v.push(Problem::new(
                "ngrams".into(),
                "ngrams is out of range: expected 1..=3".into(),
            ));
        }
        if self.rounds.is_some() && self.unlabelled.is_empty() {
            v.push(Problem::new(
                "rounds".into(),
                "`rounds` counts self-training rounds over `unlabelled` datasets; name some".into(),
            ));
        }
        if self.rounds.is_some_and(|r| !(1..=10).contains(&r)) {
            v.push(Problem::new(
                "rounds".into(),
                "rounds is out of range: expected 1..=10".into(),
            ));
        }
        match self.c {
            Some(_) if self.head == Head::Mlp => v.push(Problem::new(
                "c".into(),
                "`c` is the logistic head's regularisation; `head: mlp` trains by SGD".into(),
            )),
            Some(c) if !(c > 0.0 && c.is_finite()) => {
                v.push(Problem::new("c".into(), "c must be a positive number".into()))
            }
            _ => {}
        }
        match (self.head, self.hidden) {
            (Head::Logistic, Some(_)) => v.push(Problem::new(
                "hidden".into(),
                "`hidden` is the MLP head's width; it needs `head: mlp`".into(),
            )),
            (Head::Mlp, Some(h)) if !(1..=65536).contains(&h) => v.push(Problem::new(
                "hidden".into(),
                "hidden is out of range: expected 1..=65536".into(),
            )),
            _ => {}
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
        let dir = ctx.artefact(&self.encoder)?;
        let (pre, params) = super::pretrain::load_encoder(&dev, dir)?;
        let hidden = if self.head == Head::Mlp {
            self.hidden.unwrap_or_else(d_hidden)
        } else {
            0
        };
        let mut cfg = config_from(&meta, pre.encoder, self.pooling, hidden);
        cfg.layers = self.layers.clone();
        if let Some(problem) = cfg.layers_problem() {
            anyhow::bail!("layers: {problem} (pretrain stage `{}`)", self.encoder);
        }
        let mut model = Classifier::new(&dev, cfg, Some(params), ctx.seed)?;
        let feats = model.features_of(&dev, &train)?;
        let width = model.cfg.feature_width();
        let (history, how) = if self.head == Head::Logistic {
            logistic::fit(self, ctx, &dev, &mut model, &train, devset.as_ref(), &feats)?
        } else {
            let trainable: Vec<String> = model.head_params();
            let settings = TrainSettings {
                epochs: self.epochs(),
                batch_size: self.batch_size(),
                lr: self.lr() as f32,
                weight_decay: 0.0,
                warmup: 0.0,
                decay: false,
                patience: if devset.is_some() {
                    self.patience.unwrap_or_else(d_patience)
                } else {
                    0
                },
                seed: ctx.seed,
                trainable,
                encoder_lr_scale: 0.0,
                groups: Vec::new(),
                gradual_unfreeze: false,
                layer_lr_decay: 1.0,
            };
            let history = model.train(&dev, &train, devset.as_ref(), &settings, ctx.loop_ctx())?;
            let n = history.len();
            (history, format!("{n} epochs"))
        };
        save_model(ctx.out, src, &model, &history)?;
        let full_rows = meta.tok.datasets.get(&self.train).map(|d| d.rows).unwrap_or(0);
        classify::record_train_rows(ctx.out, full_rows, self.train_size, &train_rows)?;
        // The frozen encoder's pooled features of the training rows, for inspection or for
        // training other heads elsewhere (safetensors: `features` rows × width, `labels`).
        let mut stored = crate::model::Params::default();
        stored
            .tensors
            .insert("features".into(), dev.tensor_from_vec(feats, (train.rows(), width)));
        let labels: Vec<f32> = train.labels.iter().map(|&l| l as f32).collect();
        stored
            .tensors
            .insert("labels".into(), dev.tensor_from_vec(labels, (train.rows(), 1)));
        stored.save(&ctx.out.join("features.safetensors"))?;
        Ok(Outcome {
            summary: format!(
                "{} rows, {how}, head {}, pooling {}",
                train.rows(),
                format!("{:?}", self.head).to_lowercase(),
                format!("{:?}", model.cfg.pooling).to_lowercase()
            ),
            metrics: None,
        })
    }
}
