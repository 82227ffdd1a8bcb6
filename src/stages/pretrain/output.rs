//! What a pretrain stage leaves for the stages that read it: `encoder.json`
//! ([`PretrainConfig`]) beside `encoder.safetensors`, whether a classifier's encoder fits it,
//! and loading it for a classifier.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::Objective;
use crate::model::cbow::PretrainLog;
use crate::model::encoder::EncoderSpec;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainConfig {
    pub encoder: EncoderSpec,
    pub vocab_size: usize,
    pub objective: Objective,
    pub history: Vec<PretrainLog>,
}

impl PretrainConfig {
    /// Whether a classifier with `encoder` can start from this pretrained encoder.
    pub fn check_fits(&self, encoder: &EncoderSpec, stage: &str) -> Result<()> {
        let word2vec = matches!(self.objective, Objective::Cbow | Objective::Skipgram);
        if word2vec && self.encoder.dim() != encoder.dim() {
            bail!(
                "encoder dim {} does not match the pretrained embeddings (dim {}) of stage `{stage}`; set `encoder.dim: {}`",
                encoder.dim(),
                self.encoder.dim(),
                self.encoder.dim()
            );
        }
        if !word2vec && self.encoder.resolved() != encoder.resolved() {
            bail!(
                "encoder {} does not match the encoder {} pretrained by stage `{stage}`; use the same `encoder:` block",
                serde_json::to_string(&encoder.resolved()).unwrap_or_default(),
                serde_json::to_string(&self.encoder.resolved()).unwrap_or_default()
            );
        }
        Ok(())
    }
}

/// A pretrain stage's encoder parameters. word2vec embeddings are rescaled to a mean row norm
/// of 1 (their scale is arbitrary; heads trained at a fixed rate need a known one); encoders
/// trained end to end are used as they are.
pub fn load_encoder(dev: &crate::model::Dev, dir: &std::path::Path) -> Result<(PretrainConfig, crate::model::Params)> {
    let p = dir.join("encoder.json");
    let cfg: PretrainConfig = serde_json::from_slice(&std::fs::read(&p)?)
        .map_err(|e| anyhow::anyhow!("{}: not a pretrain config: {e}", p.display()))?;
    let mut params = crate::model::Params::load(dev, &dir.join("encoder.safetensors"))?;
    if matches!(cfg.objective, Objective::Cbow | Objective::Skipgram) {
        let e = params.get("encoder.embedding")?.clone();
        params
            .tensors
            .insert("encoder.embedding".into(), crate::model::classifier::unit_rows(dev, &e));
    }
    Ok((cfg, params))
}
