//! `init: <pretrain stage>`: continuing another pretrain stage's training on this stage's data
//! (task-adaptive pretraining). What may be continued is checked here, with a reason when not.

use anyhow::{bail, Result};

use super::{Objective, Pretrain, PretrainConfig};
use crate::model::cbow;
use crate::stages::StageCtx;

/// Where an `init:` run starts: the earlier stage's raw parameters (word2vec's embeddings not
/// rescaled, as [`load_encoder`] does for classifiers) and word2vec's output table.
pub(super) struct Start {
    pub(super) params: crate::model::Params,
    pub(super) output: Option<Vec<f32>>,
}

impl Pretrain {
    /// Reads the `init` stage's artefact and checks that training can go on from it: the same
    /// tokenizer (byte for byte), the same kind of objective, a fitting encoder.
    pub(super) fn start_from(
        &self,
        dev: &crate::model::Dev,
        ctx: &StageCtx,
        name: &str,
        src: &std::path::Path,
        vocab: usize,
    ) -> Result<Start> {
        let dir = ctx.artefact(name)?;
        let p = dir.join("encoder.json");
        let cfg: PretrainConfig = serde_json::from_slice(&std::fs::read(&p)?)
            .map_err(|e| anyhow::anyhow!("{}: not a pretrain config: {e}", p.display()))?;
        let word2vec = |o: Objective| matches!(o, Objective::Cbow | Objective::Skipgram);
        if word2vec(cfg.objective) != word2vec(self.objective) {
            bail!(
                "`init: {name}` was pretrained with objective `{}`, a different kind of model from this \
                 stage's `{}` (word2vec tables vs a language model); continue it with {}",
                serde_json::to_value(cfg.objective)?.as_str().unwrap_or_default(),
                serde_json::to_value(self.objective)?.as_str().unwrap_or_default(),
                if word2vec(cfg.objective) {
                    "cbow or skipgram"
                } else {
                    "lm or mlm"
                }
            );
        }
        cfg.check_fits(&self.encoder, name)?;
        let same_tokenizer = match (
            std::fs::read(src.join("tokenizer.json")),
            std::fs::read(dir.join("tokenizer.json")),
        ) {
            (Ok(a), Ok(b)) => a == b && cfg.vocab_size == vocab,
            _ => false,
        };
        if !same_tokenizer {
            bail!(
                "`init: {name}` was pretrained on ids of another tokenizer than `{}`'s: both stages must read the \
                 same tokenize stage (directly or through pad stages), or token ids mean other words",
                self.from
            );
        }
        let params = crate::model::Params::load(dev, &dir.join("encoder.safetensors"))?;
        let output = if word2vec(cfg.objective) {
            let o = crate::model::Params::load(dev, &dir.join("output.safetensors"))?;
            Some(o.get(cbow::OUTPUT)?.as_vec())
        } else {
            None
        };
        Ok(Start { params, output })
    }
}
