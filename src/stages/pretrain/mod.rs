//! `pretrain`: learns an encoder from unlabelled text.
//!
//! | objective           | learns                         | encoders           | cost        |
//! |---------------------|--------------------------------|--------------------|-------------|
//! | `cbow`, `skipgram`  | token embeddings (word2vec)    | any (embedding)    | seconds     |
//! | `lm` (next token)   | the whole encoder (ULMFiT)     | lstm, transformer* | minutes     |
//! | `mlm` (masked)      | the whole encoder (BERT)       | transformer        | minutes     |
//!
//! (*) with causal attention while pretraining. word2vec objectives are cheap enough for a
//! laptop CPU and transfer well to small labelled sets (BENCHMARKS.md); the language-model
//! objectives train every encoder weight (`model/lm.rs` explains how their softmax is kept cheap).
//! The held-out loss is measured on the last `held_out` share of rows; for `lm`/`mlm` it is the
//! full-softmax cross-entropy, reported with its perplexity.
//!
//! Artefact: `encoder.safetensors` (`encoder.*` parameters), `encoder.json`
//! ([`PretrainConfig`]: encoder sizes, vocabulary size, objective, per-epoch losses), a copy of
//! the `tokenizer.json` the ids came from, and for word2vec `output.safetensors` (the output
//! table). The last two exist for `init:`: a pretrain stage can continue another one's
//! training on other text — ULMFiT's second stage, task-adaptive pretraining ("don't stop
//! pretraining") — which needs the very same vocabulary and, for word2vec, both tables.

use crate::problem::Problem;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

mod check;
mod init;
mod output;

pub use output::{load_encoder, PretrainConfig};

use super::pad::read_pad_meta;
use super::tokenize::read_meta;
use super::{params_of, HeldRef, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::cbow::{self, CbowSettings};
use crate::model::encoder::{EncoderSpec, LmObjective};
use crate::model::lm::{self, LmSettings};
use crate::seqfile::{read_padded, read_ragged};

pub const KIND: Kind = Kind {
    name: "pretrain",
    produces: super::Product::Encoder,
    // 4: LSTM gradients summed over fixed row chunks; per-parameter Adam steps; transformer
    // positions from the first real token.
    // 5: word2vec objectives subsample frequent tokens (`subsample`, default 1e-4).
    // 6: held-out rows spread over all the data, not its tail (which was the in-domain dataset).
    // 7: word2vec negatives drawn from an alias table, dot products over eight running sums
    // (the same objective and distributions; other random draws, so other bytes).
    // 8: word2vec trains `shards` slices of each round in parallel and merges them (default 2).
    // 9: the artefact also holds `tokenizer.json` and word2vec's output table, for `init:`.
    // 10: the LSTM's d W_hh is one product over all rows (lm with an lstm encoder; word2vec's
    // bytes are unchanged).
    version: 10,
    summary: "pretrain an encoder on unlabelled text (cbow, skipgram, lm, mlm)",
    parse: super::parse_as::<Pretrain>,
    schema: super::schema_of::<Pretrain>,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    Cbow,
    #[default]
    Skipgram,
    Mlm,
    Lm,
}

impl Objective {
    /// The language-model objective this is, when it pretrains a whole encoder.
    fn lm(self) -> Option<LmObjective> {
        match self {
            Objective::Lm => Some(LmObjective::NextToken),
            Objective::Mlm => Some(LmObjective::Masked),
            Objective::Cbow | Objective::Skipgram => None,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// Learning rate [word2vec: 0.05, decaying linearly; lm/mlm: Adam's, 0.002, with warm-up
    /// and linear decay].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// lm/mlm: rows per batch [32].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// lm/mlm: text is cut into pieces of at most this many tokens [64].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_len: Option<usize>,
    /// lm/mlm: sampled-softmax negatives per batch, 0 = full softmax [1024].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<usize>,
    /// mlm: share of tokens masked and predicted [0.15].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_prob: Option<f64>,
    /// cbow/skipgram: tokens on each side that form the context [4].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// cbow/skipgram: negative samples per target [5].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negatives: Option<usize>,
    /// cbow/skipgram: frequent-token subsampling threshold, word2vec's `sample` [1e-4, as
    /// fastText; 0 = off]. Measured on ag_news at 100 labels: see BENCHMARKS.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsample: Option<f64>,
    /// cbow/skipgram: slices of each round of text (~16 k tokens a slice) trained in
    /// parallel on private copies of the vectors, merged after every round by adding up their
    /// changes [2; 1 = sequential word2vec; at most 2, since 4 diverged]. The vectors depend on
    /// this number, never on `--jobs`: fewer threads give the same bytes, only later.
    /// Held-out loss on english_unlabelled_corpus: 2.762 (1), 2.763 (2) — BENCHMARKS.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<usize>,
    #[serde(default = "d_held")]
    pub held_out: f64,
    /// A seed of its own: then this stage ignores the pipeline seed, so repeats (which vary the
    /// seed) share one pretrained encoder and vary only what is trained on top of it.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Another pretrain stage to continue from instead of starting at random: its tables
    /// (word2vec) or its whole encoder (lm/mlm) train on for `epochs` more over `data`, with
    /// a fresh learning-rate schedule. The usual use is task-adaptive pretraining: a long run
    /// on general text, shared by every task, then a short one on each task's own texts. Both
    /// stages must read the same tokenizer and use the same kind of objective (word2vec, or
    /// a language model) with the same encoder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
}

impl Pretrain {
    fn is_lm(&self) -> bool {
        self.objective.lm().is_some()
    }
    fn window(&self) -> usize {
        self.window.unwrap_or_else(d_window)
    }
    fn negatives(&self) -> usize {
        self.negatives.unwrap_or_else(d_neg)
    }
    fn subsample(&self) -> f64 {
        self.subsample.unwrap_or(1e-4)
    }
    fn shards(&self) -> usize {
        self.shards.unwrap_or(2)
    }
}

fn d_epochs() -> usize {
    5
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

impl Stage for Pretrain {
    fn inputs(&self) -> Vec<InputRef> {
        let mut v = vec![InputRef {
            field: "from".into(),
            name: self.from.clone(),
            want: Want::Stage(&[super::Product::Tokens, super::Product::Padded]),
        }];
        v.extend(self.init.iter().map(|name| InputRef {
            field: "init".into(),
            name: name.clone(),
            want: Want::Stage(&[super::Product::Encoder]),
        }));
        v
    }

    fn held_refs(&self) -> Vec<HeldRef> {
        self.data
            .iter()
            .enumerate()
            .map(|(i, d)| HeldRef::new(&format!("data[{i}]"), d, &self.from))
            .collect()
    }

    /// word2vec's `window` and `negatives` are in the key with their defaults for cbow and
    /// skipgram (so the key is the same whether a default is written out or not) and absent
    /// for lm/mlm, which do not use them (`check` rejects them there).
    fn params(&self) -> serde_json::Value {
        let mut p = params_of(self);
        if !self.is_lm() {
            p["window"] = self.window().into();
            p["negatives"] = self.negatives().into();
            p["subsample"] = self.subsample().into();
            p["shards"] = self.shards().into();
        }
        p
    }

    fn uses_seed(&self) -> bool {
        self.seed.is_none()
    }

    fn check(&self) -> Vec<Problem> {
        check::problems(self)
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
                data.extend((0..p.rows()).map(|r| p.real_ids(r)));
            } else {
                let r = read_ragged(&src.join(format!("{name}.seq")))?;
                data.extend((0..r.len()).map(|i| r.row(i).to_vec()));
            }
        }
        let seed = self.seed.unwrap_or(ctx.seed);
        let dev = crate::model::Dev::seed_from_u64(seed);
        let start = match &self.init {
            Some(name) => Some(self.start_from(&dev, ctx, name, src, tok.vocab_size)?),
            None => None,
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
        let (mut params, history, tokens_per_second) = if matches!(self.objective, Objective::Lm | Objective::Mlm) {
            let settings = LmSettings {
                masked: self.objective == Objective::Mlm,
                epochs: self.epochs,
                batch_size: self.batch_size.unwrap_or(32),
                max_len: self.max_len.unwrap_or(64),
                lr: self.lr.unwrap_or(2e-3) as f32,
                candidates: self.candidates.unwrap_or(1024),
                mask_prob: self.mask_prob.unwrap_or(0.15),
                seed,
                held_out: self.held_out,
            };
            let rows: Vec<Vec<u32>> = data
                .iter()
                .map(|r| r.iter().copied().filter(|&t| t as usize >= specials).collect())
                .collect();
            let corpus = lm::Corpus {
                rows: &rows,
                vocab: tok.vocab_size,
                specials: specials as u32,
            };
            lm::train(
                &dev,
                corpus,
                &self.encoder,
                &settings,
                start.map(|s| s.params),
                ctx.loop_ctx(),
            )?
        } else {
            let settings = CbowSettings {
                skipgram: self.objective == Objective::Skipgram,
                dim: self.encoder.dim(),
                window: self.window(),
                negatives: self.negatives(),
                epochs: self.epochs,
                lr: self.lr.unwrap_or(0.05) as f32,
                seed,
                held_out: self.held_out,
                subsample: self.subsample(),
                shards: self.shards(),
            };
            let tables = match start {
                Some(mut s) => {
                    let output = s.output.take();
                    let emb = s.params.get("encoder.embedding")?.as_vec();
                    Some((emb, output.unwrap_or_default()))
                }
                None => None,
            };
            cbow::train(&dev, &data, tok.vocab_size, specials, &settings, tables, ctx.loop_ctx())?
        };
        if let Some(out) = params.tensors.remove(cbow::OUTPUT) {
            let mut o = crate::model::Params::default();
            o.tensors.insert(cbow::OUTPUT.into(), out);
            o.save(&ctx.out.join("output.safetensors"))?;
        }
        params.save(&ctx.out.join("encoder.safetensors"))?;
        std::fs::copy(src.join("tokenizer.json"), ctx.out.join("tokenizer.json")).context("copying tokenizer.json")?;
        let last = history.last().map(|h| h.held_out_loss).unwrap_or(f64::NAN);
        let ppl = history.last().and_then(|h| h.held_out_perplexity);
        let cfg = PretrainConfig {
            encoder: self.encoder.resolved(),
            vocab_size: tok.vocab_size,
            objective: self.objective,
            history,
        };
        std::fs::write(ctx.out.join("encoder.json"), serde_json::to_vec_pretty(&cfg)?)?;
        Ok(Outcome {
            summary: format!(
                "{} rows, {} epochs, held-out loss {last:.3}{}",
                data.len(),
                self.epochs,
                ppl.map(|p| format!(", perplexity {p:.1}")).unwrap_or_default()
            ),
            metrics: Some(serde_json::json!({
                "held_out_loss": last,
                "held_out_perplexity": ppl,
                "tokens_per_second": tokens_per_second
            })),
        })
    }
}
