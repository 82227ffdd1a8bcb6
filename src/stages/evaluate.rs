//! `evaluate`: scores a trained classifier (finetune or feature-extract) on a labelled dataset.
//! Artefact: `metrics.json` (accuracy, macro-F1, per-class precision/recall/F1, confusion
//! matrix, loss, majority-class baseline); `run --json` shows the headline numbers.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::classify::{self, labelled, load_model};
use super::{params_of, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::model::Dev;

pub const KIND: Kind = Kind {
    name: "evaluate",
    version: 1,
    summary: "accuracy, macro-F1, per-class metrics and confusion matrix on a test set",
    parse: super::parse_as::<Evaluate>,
};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluate {
    /// The finetune or feature-extract stage to score.
    pub model: String,
    /// The pad stage holding the evaluation data.
    pub from: String,
    pub data: String,
}

impl Stage for Evaluate {
    fn inputs(&self) -> Vec<InputRef> {
        vec![
            InputRef {
                field: "model".into(),
                name: self.model.clone(),
                want: Want::Stage(&["finetune", "feature-extract"]),
            },
            InputRef {
                field: "from".into(),
                name: self.from.clone(),
                want: Want::Stage(&["pad"]),
            },
        ]
    }

    fn params(&self) -> serde_json::Value {
        params_of(self)
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let src = ctx.artefact(&self.from)?;
        let meta = classify::pad_meta(src)?;
        let data = labelled(src, &meta, &self.from, &self.data)?;
        let dev = Dev::default();
        let model = load_model(&dev, ctx.artefact(&self.model)?)?;
        if model.cfg.labels != meta.tok.labels || model.cfg.shape.max_len != meta.max_len {
            anyhow::bail!(
                "model `{}` was trained on another tokenization/labels than pad stage `{}`",
                self.model,
                self.from
            );
        }
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
