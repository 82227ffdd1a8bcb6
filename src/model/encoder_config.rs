//! What a spec's `encoder:` block says: the type and its sizes, as written. Configuration
//! only — defaults, checks, parameters and forward passes are in the per-type files (which
//! read this one, so no encoder file needs another) and are dispatched by `encoder.rs`.

use serde::{Deserialize, Serialize};

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
    /// Every type, in the order `validate` reports options of other types.
    pub const ALL: [EncoderType; 4] = [
        EncoderType::Bag,
        EncoderType::Lstm,
        EncoderType::Cnn,
        EncoderType::Transformer,
    ];
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
