//! What a spec's `encoder:` block says: the type, its sizes and their defaults, and what
//! `validate` rejects. Configuration only — the parameters and forward passes are in
//! `encoder.rs` and the per-type files, which all read this one (so no encoder file needs
//! another).

use crate::problem::Problem;
use serde::{Deserialize, Serialize};

use super::pool::Pooling;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EncoderType {
    #[default]
    Bag,
    Lstm,
    Cnn,
    Transformer,
}

impl EncoderType {
    pub fn name(self) -> &'static str {
        match self {
            EncoderType::Bag => "bag",
            EncoderType::Lstm => "lstm",
            EncoderType::Cnn => "cnn",
            EncoderType::Transformer => "transformer",
        }
    }
}

/// Pre-norm (`x + f(LN(x))`, stable with larger rates) or post-norm (`LN(x + f(x))`, BERT's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    #[default]
    Post,
    Pre,
}

/// Encoder sizes as written in a spec, e.g. `encoder: {type: transformer, dim: 64, layers: 2}`.
/// Options that a type does not use must be left out; [`resolved`](Self::resolved) fills in
/// the defaults (that form is what model configs store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    #[serde(rename = "type", default)]
    pub kind: EncoderType,
    /// Embedding width (and LSTM hidden width, transformer model width).
    #[serde(default = "default_dim")]
    pub dim: usize,
    /// cnn: number of filters (output width) [dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<usize>,
    /// cnn: window width in tokens [3].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<usize>,
    /// transformer: number of layers [2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<usize>,
    /// transformer: attention heads; must divide dim [4].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heads: Option<usize>,
    /// transformer: feed-forward width [2 × dim].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ff: Option<usize>,
    /// transformer: `post` (BERT) or `pre` layer norm [post].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<Norm>,
    /// transformer: longest sequence (position embeddings) [512].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positions: Option<usize>,
}

impl Default for EncoderSpec {
    fn default() -> Self {
        EncoderSpec {
            kind: EncoderType::Bag,
            dim: default_dim(),
            filters: None,
            kernel: None,
            layers: None,
            heads: None,
            ff: None,
            norm: None,
            positions: None,
        }
    }
}

fn default_dim() -> usize {
    64
}

impl EncoderSpec {
    /// The same spec with every option of its type filled in.
    pub fn resolved(&self) -> EncoderSpec {
        let mut s = self.clone();
        match s.kind {
            EncoderType::Cnn => {
                s.filters.get_or_insert(s.dim);
                s.kernel.get_or_insert(3);
            }
            EncoderType::Transformer => {
                s.layers.get_or_insert(2);
                s.heads.get_or_insert(4);
                s.ff.get_or_insert(2 * s.dim);
                s.norm.get_or_insert(Norm::Post);
                s.positions.get_or_insert(512);
            }
            _ => {}
        }
        s
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Width of each position's state.
    pub fn out_dim(&self) -> usize {
        match self.kind {
            EncoderType::Cnn => self.filters.unwrap_or(self.dim),
            _ => self.dim,
        }
    }

    pub fn default_pooling(&self) -> Pooling {
        match self.kind {
            EncoderType::Bag | EncoderType::Transformer => Pooling::Mean,
            EncoderType::Lstm => Pooling::Last,
            EncoderType::Cnn => Pooling::Max,
        }
    }

    /// What `validate` says about sizes and types; empty when usable.
    pub fn problems(&self) -> Vec<Problem> {
        let mut v = Vec::new();
        let mut bad = |f: &str, m: String| v.push(Problem::new(format!("encoder.{f}"), m));
        let t = self.name();
        if !(2..=1024).contains(&self.dim) {
            bad("dim", format!("dim {} is out of range: expected 2..=1024", self.dim));
        }
        // Options that belong to one encoder type.
        for (f, set, owner) in [
            ("filters", self.filters.is_some(), EncoderType::Cnn),
            ("kernel", self.kernel.is_some(), EncoderType::Cnn),
            ("layers", self.layers.is_some(), EncoderType::Transformer),
            ("heads", self.heads.is_some(), EncoderType::Transformer),
            ("ff", self.ff.is_some(), EncoderType::Transformer),
            ("norm", self.norm.is_some(), EncoderType::Transformer),
            ("positions", self.positions.is_some(), EncoderType::Transformer),
        ] {
            if set && self.kind != owner {
                let owner = EncoderSpec {
                    kind: owner,
                    ..self.clone()
                }
                .name();
                bad(f, format!("`{f}` applies to {owner} encoders only, not {t}"));
            }
        }
        let r = self.resolved();
        let range = |f: &str, x: Option<usize>, lo: usize, hi: usize| -> Option<Problem> {
            x.filter(|x| !(lo..=hi).contains(x)).map(|x| {
                Problem::new(
                    format!("encoder.{f}"),
                    format!("{f} {x} is out of range: expected {lo}..={hi}"),
                )
            })
        };
        v.extend(range("filters", r.filters, 1, 4096));
        v.extend(range("kernel", r.kernel, 1, 15));
        v.extend(range("layers", r.layers, 1, 24));
        v.extend(range("heads", r.heads, 1, 64));
        v.extend(range("ff", r.ff, 1, 16384));
        v.extend(range("positions", r.positions, 1, 8192));
        if self.kind == EncoderType::Lstm && self.dim > 512 {
            v.push(Problem::new(
                "encoder.dim".into(),
                format!("dim {} is out of range for lstm: expected 2..=512", self.dim),
            ));
        }
        if let Some(h) = r.heads.filter(|&h| h > 0 && !self.dim.is_multiple_of(h)) {
            v.push(Problem::new(
                "encoder.heads".into(),
                format!(
                    "dim {} is not divisible by heads {h}: each head gets dim / heads values",
                    self.dim
                ),
            ));
        }
        v
    }
}
