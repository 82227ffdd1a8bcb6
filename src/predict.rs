//! Using a trained model on new text: `warmstart predict` and `warmstart export`.
//!
//! A model folder (a finetune/feature-extract artefact, or an exported copy) holds everything
//! needed: `tokenizer.json`, `model.json` (sizes, labels, how to pad) and `model.safetensors`.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use tokenizers::Tokenizer;

use crate::model::classifier::Classifier;
use crate::model::Dev;
use crate::seqfile::Padded;
use crate::stages::classify::load_model;
use crate::stages::tokenize::{CLS_ID, PAD_ID};

/// The files of a self-contained model folder.
pub const MODEL_FILES: [&str; 4] = ["model.json", "model.safetensors", "tokenizer.json", "history.json"];

pub struct Predictor {
    dev: Dev,
    model: Classifier,
    tokenizer: Tokenizer,
}

#[derive(Debug, Serialize)]
pub struct Prediction {
    pub text: String,
    pub label: String,
    pub probabilities: Vec<(String, f32)>,
}

/// Loads a model folder's `tokenizer.json`.
///
/// Why not `Tokenizer::from_file` alone: `tokenizers` 0.22 *panics* on some malformed JSON
/// instead of returning an error (its decoder, normaliser, … deserialisers `expect` an untagged
/// helper to parse; the model-folder fuzzer found `"decoder": un"ll`). The file is therefore
/// parsed as plain JSON first, which rejects every such input with a line and column, and the
/// tokenizer is built from that value (one parse of the text); a panic that still escapes the
/// crate is caught and reported as an unreadable file, never exit 101.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let cannot = |why: String| anyhow!("cannot load {}: {why}", path.display());
    let bytes = std::fs::read(path).map_err(|e| cannot(e.to_string()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| cannot(format!("not valid JSON: {e}")))?;
    match std::panic::catch_unwind(|| serde_json::from_value::<Tokenizer>(value)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(cannot(e.to_string())),
        Err(_) => Err(cannot("the tokenizers crate could not read it".into())),
    }
}

impl Predictor {
    pub fn from_dir(dir: &Path) -> Result<Predictor> {
        let dev = Dev::default();
        let model = load_model(&dev, dir)?;
        let tp = dir.join("tokenizer.json");
        let tokenizer = load_tokenizer(&tp)?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > model.cfg.vocab_size {
            bail!(
                "{} has {vocab} tokens but the model's embedding has {} rows: the folder mixes a tokenizer and a model that were not trained together",
                tp.display(),
                model.cfg.vocab_size
            );
        }
        Ok(Predictor { dev, model, tokenizer })
    }

    pub fn labels(&self) -> &[String] {
        &self.model.cfg.labels
    }

    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        let shape = self.model.cfg.shape;
        let l = shape.max_len;
        let mut data = Padded {
            len: l,
            ids: vec![PAD_ID; texts.len() * l],
            mask: vec![0; texts.len() * l],
            labels: vec![0; texts.len()],
        };
        for (i, t) in texts.iter().enumerate() {
            let enc = self
                .tokenizer
                .encode_fast(t.as_str(), false)
                .map_err(|e| anyhow!("cannot tokenize: {e}"))?;
            shape.pad_into(
                enc.get_ids(),
                CLS_ID,
                &mut data.ids[i * l..(i + 1) * l],
                &mut data.mask[i * l..(i + 1) * l],
            );
        }
        let probs = self.model.predict_proba(&self.dev, &data)?;
        Ok(texts
            .iter()
            .zip(probs)
            .map(|(t, p)| {
                let best = crate::metrics::argmax(&p);
                Prediction {
                    text: t.clone(),
                    label: self.model.cfg.labels[best].clone(),
                    probabilities: self.model.cfg.labels.iter().cloned().zip(p).collect(),
                }
            })
            .collect())
    }
}

/// Copies a model folder to `out` (created if needed), file by file via temp names.
pub fn export(src: &Path, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for f in MODEL_FILES {
        let bytes = std::fs::read(src.join(f)).with_context(|| format!("cannot read {}", src.join(f).display()))?;
        crate::store::write_atomic(&out.join(f), &bytes)?;
    }
    Ok(())
}
