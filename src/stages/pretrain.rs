//! `pretrain`: learns an encoder from unlabelled text.
//!
//! Objective `cbow` (word2vec-style, negative sampling) pretrains the `bag` encoder's token
//! embeddings; it is cheap enough to run on a laptop CPU in seconds and transfers well to small
//! labelled sets (see BENCHMARKS.md). The held-out loss is the negative-sampling loss on the
//! last `held_out` share of rows.
//!
//! Artefact: `encoder.safetensors` (`encoder.embedding`), `encoder.json`
//! ([`PretrainConfig`]: encoder sizes, vocabulary size, objective, per-epoch losses).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::pad::read_pad_meta;
use super::{params_of, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::cbow::{self, CbowSettings, PretrainLog};
use crate::model::classifier::{EncoderSpec, EncoderType};
use crate::seqfile::read_padded;

pub const KIND: Kind = Kind {
    name: "pretrain",
    version: 1,
    summary: "pretrain an encoder on unlabelled text (cbow)",
    parse: super::parse_as::<Pretrain>,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    #[default]
    Cbow,
    Mlm,
    Lm,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pretrain {
    /// The pad stage whose datasets are read.
    pub from: String,
    /// Datasets (of that pad stage) to pretrain on.
    pub data: Vec<String>,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub encoder: EncoderSpec,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    #[serde(default = "d_lr")]
    pub lr: f32,
    /// Tokens on each side that form the context.
    #[serde(default = "d_window")]
    pub window: usize,
    #[serde(default = "d_neg")]
    pub negatives: usize,
    #[serde(default = "d_held")]
    pub held_out: f64,
}

fn d_epochs() -> usize {
    3
}
fn d_batch() -> usize {
    256
}
fn d_lr() -> f32 {
    5e-3
}
fn d_window() -> usize {
    4
}
fn d_neg() -> usize {
    5
}
fn d_held() -> f64 {
    0.05
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainConfig {
    pub encoder: EncoderSpec,
    pub vocab_size: usize,
    pub objective: Objective,
    pub history: Vec<PretrainLog>,
}

impl Stage for Pretrain {
    fn inputs(&self) -> Vec<InputRef> {
        vec![InputRef {
            field: "from".into(),
            name: self.from.clone(),
            want: Want::Stage(&["pad"]),
        }]
    }

    fn params(&self) -> serde_json::Value {
        params_of(self)
    }

    fn uses_seed(&self) -> bool {
        true
    }

    fn check(&self) -> Vec<(String, String)> {
        let mut v = self.encoder.problems();
        if self.objective != Objective::Cbow {
            v.push((
                "objective".into(),
                format!(
                    "objective `{:?}` is not available in this version; available: cbow",
                    self.objective
                )
                .to_lowercase(),
            ));
        }
        if self.encoder.kind != EncoderType::Bag && self.objective == Objective::Cbow {
            v.push((
                "objective".into(),
                "objective `cbow` pretrains embeddings for the `bag` encoder".into(),
            ));
        }
        if self.data.is_empty() {
            v.push((
                "data".into(),
                "expected at least one dataset to pretrain on".into(),
            ));
        }
        for (f, ok, want) in [
            ("epochs", (1..=1000).contains(&self.epochs), "1..=1000"),
            (
                "batch_size",
                (1..=65536).contains(&self.batch_size),
                "1..=65536",
            ),
            ("window", (1..=32).contains(&self.window), "1..=32"),
            ("negatives", (1..=100).contains(&self.negatives), "1..=100"),
        ] {
            if !ok {
                v.push((f.into(), format!("{f} is out of range: expected {want}")));
            }
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            v.push(("lr".into(), "lr must be a positive number".into()));
        }
        if !(0.0..0.5).contains(&self.held_out) {
            v.push(("held_out".into(), "held_out must be in [0, 0.5)".into()));
        }
        v
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let src = ctx.artefact(&self.from)?;
        let meta = read_pad_meta(src)?;
        let mut all: Option<crate::seqfile::Padded> = None;
        for name in &self.data {
            if !meta.tok.datasets.contains_key(name) {
                bail!(
                    "pad stage `{}` has no dataset `{name}`; it has: {}",
                    self.from,
                    meta.tok
                        .datasets
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let p = read_padded(&src.join(format!("{name}.pad")))?;
            all = Some(match all {
                None => p,
                Some(mut a) => {
                    a.ids.extend(p.ids);
                    a.mask.extend(p.mask);
                    a.labels.extend(p.labels);
                    a
                }
            });
        }
        let Some(data) = all else {
            bail!("no data to pretrain on")
        };
        let dev = crate::model::Dev::seed_from_u64(ctx.seed);
        let settings = CbowSettings {
            dim: self.encoder.dim,
            window: self.window,
            negatives: self.negatives,
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            seed: ctx.seed,
            held_out: self.held_out,
        };
        let specials = crate::stages::tokenize::SPECIALS.len();
        let (params, history) = cbow::train(
            &dev,
            &data,
            meta.tok.vocab_size,
            specials,
            &settings,
            ctx.progress,
        )?;
        params.save(&ctx.out.join("encoder.safetensors"))?;
        let last = history.last().map(|h| h.held_out_loss).unwrap_or(f64::NAN);
        let cfg = PretrainConfig {
            encoder: self.encoder.clone(),
            vocab_size: meta.tok.vocab_size,
            objective: self.objective,
            history,
        };
        std::fs::write(
            ctx.out.join("encoder.json"),
            serde_json::to_vec_pretty(&cfg)?,
        )?;
        Ok(Outcome {
            summary: format!(
                "{} rows, {} epochs, held-out loss {last:.3}",
                data.rows(),
                self.epochs
            ),
            metrics: Some(serde_json::json!({"held_out_loss": last})),
        })
    }
}
