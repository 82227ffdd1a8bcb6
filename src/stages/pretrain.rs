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
use super::tokenize::read_meta;
use super::{params_of, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::cbow::{self, CbowSettings, PretrainLog};
use crate::model::classifier::EncoderSpec;
use crate::seqfile::{read_padded, read_ragged};

pub const KIND: Kind = Kind {
    name: "pretrain",
    version: 2,
    summary: "pretrain an encoder on unlabelled text (cbow)",
    parse: super::parse_as::<Pretrain>,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    Cbow,
    #[default]
    Skipgram,
    Mlm,
    Lm,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pretrain {
    /// The tokenize stage (whole texts) or pad stage (texts cut to max_len) to read.
    pub from: String,
    /// Datasets (of that pad stage) to pretrain on.
    pub data: Vec<String>,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub encoder: EncoderSpec,
    #[serde(default = "d_epochs")]
    pub epochs: usize,
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Tokens on each side that form the context.
    #[serde(default = "d_window")]
    pub window: usize,
    #[serde(default = "d_neg")]
    pub negatives: usize,
    #[serde(default = "d_held")]
    pub held_out: f64,
    /// A seed of its own: then this stage ignores the pipeline seed, so repeats (which vary the
    /// seed) share one pretrained encoder and vary only what is trained on top of it.
    #[serde(default)]
    pub seed: Option<u64>,
}

fn d_epochs() -> usize {
    5
}
fn d_lr() -> f64 {
    0.05
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
            want: Want::Stage(&["tokenize", "pad"]),
        }]
    }

    fn params(&self) -> serde_json::Value {
        params_of(self)
    }

    fn uses_seed(&self) -> bool {
        self.seed.is_none()
    }

    fn check(&self) -> Vec<(String, String)> {
        let mut v = self.encoder.problems();
        if matches!(self.objective, Objective::Mlm | Objective::Lm) {
            v.push((
                "objective".into(),
                format!(
                    "objective `{:?}` is not available in this version; available: cbow, skipgram",
                    self.objective
                )
                .to_lowercase(),
            ));
        }
        if self.data.is_empty() {
            v.push(("data".into(), "expected at least one dataset to pretrain on".into()));
        }
        for (f, ok, want) in [
            ("epochs", (1..=1000).contains(&self.epochs), "1..=1000"),
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
        // A tokenize stage gives whole texts; a pad stage gives them cut to max_len.
        let tok = read_meta(src)?;
        let from_pad = src.join("meta.json").exists() && read_pad_meta(src).is_ok();
        let mut data: Vec<Vec<u32>> = Vec::new();
        for name in &self.data {
            if !tok.datasets.contains_key(name) {
                bail!(
                    "stage `{}` has no dataset `{name}`; it has: {}",
                    self.from,
                    tok.datasets.keys().cloned().collect::<Vec<_>>().join(", ")
                );
            }
            if from_pad {
                let p = read_padded(&src.join(format!("{name}.pad")))?;
                data.extend((0..p.rows()).map(|r| {
                    p.row(r)
                        .iter()
                        .zip(p.mask_row(r))
                        .filter(|(_, &m)| m != 0)
                        .map(|(&i, _)| i)
                        .collect()
                }));
            } else {
                let r = read_ragged(&src.join(format!("{name}.seq")))?;
                data.extend((0..r.len()).map(|i| r.row(i).to_vec()));
            }
        }
        let seed = self.seed.unwrap_or(ctx.seed);
        let dev = crate::model::Dev::seed_from_u64(seed);
        let settings = CbowSettings {
            skipgram: self.objective == Objective::Skipgram,
            dim: self.encoder.dim,
            window: self.window,
            negatives: self.negatives,
            epochs: self.epochs,
            lr: self.lr as f32,
            seed,
            held_out: self.held_out,
        };
        let specials = crate::stages::tokenize::SPECIALS.len();
        if !data
            .iter()
            .any(|r| r.iter().filter(|&&t| t as usize >= specials).count() >= 2)
        {
            bail!(
                "datasets [{}] of stage `{}` have no row with two or more tokens; pretraining needs context \
                 (each token is learned from its neighbours): use running text, not single words",
                self.data.join(", "),
                self.from
            );
        }
        let (params, history, tokens_per_second) =
            cbow::train(&dev, &data, tok.vocab_size, specials, &settings, ctx.progress)?;
        params.save(&ctx.out.join("encoder.safetensors"))?;
        let last = history.last().map(|h| h.held_out_loss).unwrap_or(f64::NAN);
        let cfg = PretrainConfig {
            encoder: self.encoder.clone(),
            vocab_size: tok.vocab_size,
            objective: self.objective,
            history,
        };
        std::fs::write(ctx.out.join("encoder.json"), serde_json::to_vec_pretty(&cfg)?)?;
        Ok(Outcome {
            summary: format!("{} rows, {} epochs, held-out loss {last:.3}", data.len(), self.epochs),
            metrics: Some(serde_json::json!({"held_out_loss": last, "tokens_per_second": tokens_per_second})),
        })
    }
}
