//! `pad`: cuts or pads every encoded dataset of a tokenize stage to `max_len`, like Keras'
//! `pad_sequences` (`padding` and `truncating` are `pre` or `post`), optionally putting `[CLS]`
//! first (needed for first-token pooling).
//!
//! Artefact: one `<dataset>.pad` per dataset (ids, attention mask, labels; see
//! [`crate::seqfile`]), a copy of `tokenizer.json` (so that models trained downstream can be
//! used on new text without going back to the tokenize stage), and `meta.json` ([`PadMeta`]).

use crate::problem::Problem;
use std::collections::BTreeMap;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::artefact::{Shape, Side};

use super::tokenize::{read_meta, TokMeta};
use super::{params_of, HeldRef, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::seqfile::{read_ragged, write_padded, Padded};

pub const KIND: Kind = Kind {
    name: "pad",
    produces: super::Product::Padded,
    // 3: rows stored as spans of real tokens (seqfile.rs): disk follows the text, not max_len.
    version: 3,
    summary: "truncate/pad encoded datasets to a fixed length with an attention mask",
    parse: super::parse_as::<Pad>,
    schema: super::schema_of::<Pad>,
};

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    /// The tokenize stage to read.
    pub from: String,
    #[serde(default = "default_len")]
    pub max_len: usize,
    /// Where padding goes.
    #[serde(default = "post")]
    pub padding: Side,
    /// Which end is cut from sequences longer than `max_len`.
    #[serde(default = "post")]
    pub truncating: Side,
    /// Put `[CLS]` first (it counts towards `max_len`).
    #[serde(default)]
    pub add_cls: bool,
    /// Which of the tokenize stage's datasets to pad [all]. Unlabelled text that only feeds
    /// pretraining (which reads the tokenize stage) need not be padded: at a long `max_len`
    /// a general corpus padded would be the largest file of the run and read by no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasets: Option<Vec<String>>,
}

fn default_len() -> usize {
    64
}
fn post() -> Side {
    Side::Post
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PadMeta {
    #[serde(flatten)]
    pub tok: TokMeta,
    pub max_len: usize,
    pub add_cls: bool,
    pub padding: Side,
    pub truncating: Side,
    /// Per dataset: share of rows that were truncated.
    pub truncated: BTreeMap<String, f64>,
}

impl Pad {
    fn shape(&self) -> Shape {
        Shape {
            max_len: self.max_len,
            add_cls: self.add_cls,
            padding: self.padding,
            truncating: self.truncating,
        }
    }
}

impl Stage for Pad {
    fn inputs(&self) -> Vec<InputRef> {
        vec![InputRef {
            field: "from".into(),
            name: self.from.clone(),
            want: Want::Stage(&[super::Product::Tokens]),
        }]
    }

    fn held_refs(&self) -> Vec<HeldRef> {
        let names = self.datasets.iter().flatten();
        names
            .enumerate()
            .map(|(i, d)| HeldRef::new(&format!("datasets[{i}]"), d, &self.from))
            .collect()
    }

    fn holds(&self) -> Option<(&'static str, Vec<String>)> {
        self.datasets.clone().map(|v| ("datasets", v))
    }

    fn params(&self) -> serde_json::Value {
        params_of(self)
    }

    fn check(&self) -> Vec<Problem> {
        if let Some(v) = &self.datasets {
            if v.is_empty() {
                return vec![Problem::new(
                    "datasets".into(),
                    "`datasets: []` pads nothing; name some, or drop the field to pad all".into(),
                )];
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(d) = v.iter().find(|d| !seen.insert(*d)) {
                return vec![Problem::new(
                    "datasets".into(),
                    format!("dataset `{d}` is listed twice"),
                )];
            }
        }
        let min = 1 + usize::from(self.add_cls);
        if self.max_len < min || self.max_len > crate::artefact::MAX_LEN {
            return vec![Problem::new(
                "max_len".into(),
                format!(
                    "max_len {} is out of range: expected {min}..={}",
                    self.max_len,
                    crate::artefact::MAX_LEN
                ),
            )];
        }
        Vec::new()
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        let src = ctx.artefact(&self.from)?;
        let mut tok = read_meta(src)?;
        if let Some(keep) = &self.datasets {
            // The meta lists only what this artefact holds, so that stages downstream never
            // look for a `.pad` file that was not written.
            tok.datasets.retain(|name, _| keep.contains(name));
        }
        std::fs::copy(src.join("tokenizer.json"), ctx.out.join("tokenizer.json")).context("copying tokenizer.json")?;
        let mut truncated = BTreeMap::new();
        ctx.progress.set_length(tok.datasets.len() as u64);
        for name in tok.datasets.keys() {
            let r = read_ragged(&src.join(format!("{name}.seq")))?;
            let n = r.len();
            let l = self.max_len;
            let mut p = Padded {
                len: l,
                ids: vec![tok.pad_id; n * l],
                mask: vec![0; n * l],
                labels: r.labels.clone(),
            };
            let cut: usize = p
                .ids
                .par_chunks_mut(l)
                .zip(p.mask.par_chunks_mut(l))
                .enumerate()
                .map(|(i, (ids, mask))| usize::from(self.shape().pad_into(r.row(i), tok.cls_id, ids, mask)))
                .sum();
            write_padded(&ctx.out.join(format!("{name}.pad")), &p)?;
            truncated.insert(name.clone(), if n == 0 { 0.0 } else { cut as f64 / n as f64 });
            ctx.progress.inc(1);
        }
        let summary = format!("{} datasets padded to {}", truncated.len(), self.max_len);
        let meta = PadMeta {
            tok,
            max_len: self.max_len,
            add_cls: self.add_cls,
            padding: self.padding,
            truncating: self.truncating,
            truncated,
        };
        std::fs::write(ctx.out.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
        Ok(Outcome { summary, metrics: None })
    }
}

/// Reads the `meta.json` of a pad artefact.
pub fn read_pad_meta(dir: &std::path::Path) -> Result<PadMeta> {
    let p = dir.join("meta.json");
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a valid pad meta file", p.display()))
}
