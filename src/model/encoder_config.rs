//! What a spec's `encoder:` block says, typed: [`EncoderSpec`] has one variant per encoder
//! type, holding that type's own configuration struct (defined in the type's file with its
//! options; the file fills in their defaults and checks them). [`EncoderType`], the tag alone,
//! is derived from the variants, so a new type is one variant here.
//!
//! The wire form stays one flat mapping, `{type: cnn, dim: 64, kernel: 5}`, with `type`
//! defaulting to `bag`:
//! - writing puts the tag first, then the type's fields (serde's internally tagged form), so
//!   stage keys and stored model configs are the flat mapping they always were;
//! - reading is by hand in `encoder.rs` (serde cannot default an internal tag): it reads `type`,
//!   refuses an option of another type naming its owner, and types the rest into the type's
//!   struct, which denies unknown fields.
//!
//! This file reads the per-type files for their config structs; they never read it (nor
//! `encoder.rs`), which keeps the `model/` import graph acyclic.

use serde::Serialize;

pub use super::bag::BagConfig;
pub use super::cnn::CnnConfig;
pub use super::lstm::LstmConfig;
pub use super::transformer::{Norm, TransformerConfig};

/// An encoder as a spec configures it, e.g. `encoder: {type: transformer, dim: 64, layers: 2}`.
/// [`resolved`](Self::resolved) fills in the defaults (that form is what model configs store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema, strum::EnumDiscriminants)]
#[serde(tag = "type", rename_all = "lowercase")]
#[schemars(transform = type_may_be_left_out_for_bag)]
#[strum_discriminants(
    name(EncoderType),
    derive(Serialize, serde::Deserialize, schemars::JsonSchema, strum::EnumIter),
    serde(rename_all = "lowercase")
)]
pub enum EncoderSpec {
    /// Token embeddings, mean-pooled by default (fastText's representation).
    Bag(BagConfig),
    /// One LSTM layer over the embeddings; the state after the last real token by default.
    Lstm(LstmConfig),
    /// One 1-D convolution with ReLU over the embeddings, max-pooled by default.
    Cnn(CnnConfig),
    /// A BERT-style stack of self-attention layers.
    Transformer(TransformerConfig),
}

impl Default for EncoderSpec {
    fn default() -> Self {
        EncoderSpec::Bag(BagConfig {
            dim: super::encoder_kind::default_dim(),
        })
    }
}

impl EncoderType {
    /// Every type, in declaration order (the order `supporting` lists them).
    pub fn all() -> impl Iterator<Item = EncoderType> {
        <EncoderType as strum::IntoEnumIterator>::iter()
    }
}

/// The schema says what reading does: a `bag` encoder may leave out `type`.
fn type_may_be_left_out_for_bag(schema: &mut schemars::Schema) {
    let Some(branches) = schema.get_mut("oneOf").and_then(|b| b.as_array_mut()) else {
        return;
    };
    for branch in branches {
        let is_bag = branch.pointer("/properties/type/const").and_then(|c| c.as_str()) == Some("bag");
        if let (true, Some(required)) = (is_bag, branch.get_mut("required").and_then(|r| r.as_array_mut())) {
            required.retain(|f| f != "type");
            if required.is_empty() {
                branch.as_object_mut().map(|b| b.remove("required"));
            }
        }
    }
}
