//! What one encoder type is, as a trait its file implements: its configuration struct (the
//! options of its `encoder:` block, their defaults and checks), the parameters it owns, and its
//! forward pass from token ids to per-position states.
//!
//! Why a trait with associated functions (no `self`): a type's behaviour depends only on the
//! spec it is given, and `states` is generic over the tape type (dfdx records gradients on
//! `OwnedTape`, none on `NoneTape`), which rules out `dyn`. `model/encoder.rs` maps each
//! variant of [`EncoderSpec`](super::encoder_config::EncoderSpec) to its implementation in one
//! `match` (`dispatch!`), so adding an encoder is its file plus that enum arm (see
//! ARCHITECTURE.md, "Adding an encoder type"). This file names no encoder type and imports no
//! per-type file, so the per-type files and `encoder_config.rs` can both read it.

use anyhow::Result;
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::pool::Pooling;
use super::{Dev, ParamFn, Params, T2};
use crate::problem::Problem;

/// The ids an encoder reads: `rows` rows of `len` positions, row-major, with a 0/1 mask of the
/// real (non-padding) positions.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub ids: &'a [u32],
    pub mask: &'a [u8],
    pub rows: usize,
    pub len: usize,
}

/// Per-position states `(rows·len) × out_dim` on tape type `T`.
pub type States<T> = Tensor<(usize, usize), f32, Dev, T>;

pub trait EncoderKind {
    /// The type's own options as written in a spec (beside `type`), each unset one `None`
    /// until [`resolve`](Self::resolve); it denies unknown fields, so a misspelt option is
    /// an error naming the fields this type has.
    type Config: std::fmt::Debug + Clone + PartialEq + Serialize + DeserializeOwned;
    /// The spec's `type:` value (serde's spelling of the
    /// [`EncoderType`](super::encoder_config::EncoderType) variant; a unit test checks they agree).
    const NAME: &'static str;
    /// The options of [`Config`](Self::Config) besides `dim` (a unit test checks they are its
    /// fields); when a spec sets one under another type, reading it names this type as the owner.
    const OPTIONS: &'static [&'static str] = &[];
    /// Pooling when a classifier's spec names none.
    const DEFAULT_POOLING: Pooling;
    /// Whether the whole encoder can be pretrained as a next-token language model (`lm`):
    /// it must not see the token it predicts (an LSTM reads left to right; a transformer
    /// gets causal attention).
    const NEXT_TOKEN: bool = false;
    /// Whether it can be pretrained as a masked language model (`mlm`).
    const MASKED: bool = false;

    /// A configuration of width `dim`, every other option unset.
    fn with_dim(dim: usize) -> Self::Config;

    /// Embedding width (and hidden or model width where the type has one).
    fn dim(c: &Self::Config) -> usize;

    /// Fills in this type's option defaults (what model configs store).
    fn resolve(_c: &mut Self::Config) {}

    /// What `validate` says about this type's options beyond the shared checks; `c` is resolved.
    fn problems(_c: &Self::Config) -> Vec<Problem> {
        Vec::new()
    }

    /// Width of each position's state (`c` resolved or not: an unset option means its default).
    fn out_dim(c: &Self::Config) -> usize {
        Self::dim(c)
    }

    /// Adds the parameters beyond `embedding` (names without the `encoder.` prefix), drawn
    /// from `rng` in a fixed order; `c` is resolved.
    fn init(_c: &Self::Config, _dev: &Dev, _rng: &mut ChaCha8Rng, _put: &mut dyn FnMut(&str, T2)) {}

    /// Parameter groups from the bottom (embeddings) to the top layer, for gradual unfreezing
    /// and discriminative rates. Default: the embeddings, then everything else as one group.
    fn layer_groups(_c: &Self::Config, params: &Params) -> Vec<Vec<String>> {
        let names = encoder_names(params);
        let (emb, rest): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| is_embedding(n));
        let mut groups = vec![emb];
        if !rest.is_empty() {
            groups.push(rest);
        }
        groups
    }

    /// Layers above the token embeddings: `states` is layer `depth`, the token embeddings as
    /// this type's first step computes them are layer 0 (`bag` has depth 0: its states are
    /// its embeddings).
    fn depth(_c: &Self::Config) -> usize {
        1
    }

    /// Width of layer `layer`'s states (`c` resolved).
    fn layer_width(c: &Self::Config, layer: usize) -> usize {
        if layer == 0 {
            Self::dim(c)
        } else {
            Self::out_dim(c)
        }
    }

    /// The states of each of `layers` (each ≤ [`depth`](Self::depth), checked by the caller),
    /// without a tape: frozen features from a chosen layer (`feature-extract`'s `layers`).
    /// Default: layer 0 is the embedding lookup, layer `depth` is [`states`](Self::states);
    /// a type with layers in between (the transformer) overrides this.
    fn layer_states(
        c: &Self::Config,
        dev: &Dev,
        p: ParamFn<NoneTape>,
        x: Tokens,
        layers: &[usize],
    ) -> Result<Vec<States<NoneTape>>> {
        let top = Self::depth(c);
        layers
            .iter()
            .map(|&layer| match layer {
                l if l == top => Self::states(c, dev, p, x, false),
                0 => Ok(super::ops::embedding(dev, p("encoder.embedding")?, x.ids)),
                l => anyhow::bail!("{} has no layer {l} (its layers are 0..={top})", Self::NAME),
            })
            .collect()
    }

    /// States of `x`; `p(name)` hands out a parameter (full name, `encoder.` prefix) on tape
    /// type `T`. `causal` hides later positions (next-token objectives). `c` is resolved.
    fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        c: &Self::Config,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        causal: bool,
    ) -> Result<States<T>>;
}

/// The width a spec gets when it names none.
pub fn default_dim() -> usize {
    64
}

/// The encoder's parameter names, sorted.
pub fn encoder_names(params: &Params) -> Vec<String> {
    params
        .tensors
        .keys()
        .filter(|k| k.starts_with("encoder."))
        .cloned()
        .collect()
}

/// Whether a parameter belongs to the embedding group (token and position embeddings and
/// their layer norm).
pub fn is_embedding(name: &str) -> bool {
    matches!(name, "encoder.embedding" | "encoder.pos") || name.starts_with("encoder.emb_ln.")
}

/// `Some(problem)` when an option is set outside `lo..=hi`.
pub fn out_of_range(field: &str, x: Option<usize>, lo: usize, hi: usize) -> Option<Problem> {
    x.filter(|x| !(lo..=hi).contains(x)).map(|x| {
        Problem::new(
            format!("encoder.{field}"),
            format!("{field} {x} is out of range: expected {lo}..={hi}"),
        )
    })
}
