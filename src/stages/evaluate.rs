//! `evaluate`: scores a trained classifier (finetune or feature-extract) on a labelled dataset.
//! Artefact: `metrics.json` (accuracy, macro-F1, per-class precision/recall/F1, confusion
//! matrix, loss, majority-class baseline); `run --json` shows the headline numbers.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::classify::{self, labelled, load_model};
use super::pad::{PadMeta, Shape};
use super::{params_of, HeldRef, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::classifier::ModelConfig;
use crate::model::Dev;

pub const KIND: Kind = Kind {
    name: "evaluate",
    produces: super::Product::Metrics,
    version: 1,
    summary: "accuracy, macro-F1, per-class metrics and confusion matrix on a test set",
    parse: super::parse_as::<Evaluate>,
    schema: super::schema_of::<Evaluate>,
};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluate {
    /// The finetune or feature-extract stage to score.
    pub model: String,
    /// The pad stage holding the evaluation data.
    pub from: String,
    pub data: String,
}

impl Evaluate {
    /// Fails unless the data was tokenized, labelled and padded the way the model was trained:
    /// otherwise the ids or label indices mean something else to the model, and the metrics
    /// would be quietly wrong (or an id beyond the model's vocabulary would stop the run).
    fn check_same_inputs(&self, cfg: &ModelConfig, meta: &PadMeta, model_dir: &Path, src: &Path) -> Result<()> {
        let shape = Shape {
            max_len: meta.max_len,
            add_cls: meta.add_cls,
            padding: meta.padding,
            truncating: meta.truncating,
        };
        let tokenizer = |dir: &Path| std::fs::read(dir.join("tokenizer.json")).ok();
        let why = if cfg.labels != meta.tok.labels {
            format!(
                "its labels are {} but `{}` has {}",
                cfg.labels.join(", "),
                self.from,
                meta.tok.labels.join(", ")
            )
        } else if cfg.shape != shape {
            format!(
                "it was trained on rows padded as {:?}, `{}` pads them as {:?}",
                cfg.shape, self.from, shape
            )
        } else if tokenizer(model_dir) != tokenizer(src) {
            format!("`{}` comes from another tokenizer", self.from)
        } else {
            return Ok(());
        };
        anyhow::bail!(
            "model `{}` does not fit the data of pad stage `{}`: {why}; evaluate with `from:` the pad stage the model was trained from (or one padding the same tokenize stage the same way)",
            self.model,
            self.from
        )
    }
}

impl Stage for Evaluate {
    fn inputs(&self) -> Vec<InputRef> {
        vec![
            InputRef {
                field: "model".into(),
                name: self.model.clone(),
                want: Want::Stage(&[super::Product::Classifier]),
            },
            InputRef {
                field: "from".into(),
                name: self.from.clone(),
                want: Want::Stage(&[super::Product::Padded]),
            },
        ]
    }

    fn held_refs(&self) -> Vec<HeldRef> {
        vec![HeldRef::new("data", &self.data, &self.from)]
    }

    fn params(&self) -> serde_json::Value {
        params_of(self)
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let src = ctx.artefact(&self.from)?;
        let meta = classify::pad_meta(src)?;
        let data = labelled(src, &meta, &self.from, &self.data)?;
        let dev = Dev::default();
        let model_dir = ctx.artefact(&self.model)?;
        let model = load_model(&dev, model_dir)?;
        self.check_same_inputs(&model.cfg, &meta, model_dir, src)?;
        let m = model.evaluate(&dev, &data)?;
        std::fs::write(ctx.out.join("metrics.json"), serde_json::to_vec_pretty(&m)?)?;
        Ok(Outcome {
            summary: format!(
                "accuracy {:.4}, macro-F1 {:.4} on {} rows (majority class {:.4})",
                m.accuracy, m.macro_f1, m.rows, m.majority_baseline
            ),
            metrics: Some(serde_json::json!({
                "accuracy": m.accuracy, "macro_f1": m.macro_f1, "loss": m.loss,
                "rows": m.rows, "majority_baseline": m.majority_baseline,
            })),
        })
    }
}
