//! Encoders: how ids become per-position states `(b·l) × out_dim`, dispatched to one file per
//! type. Pooling (`pool.rs`) and heads (`classifier.rs`, `lm.rs`) sit on top, so every encoder
//! serves every recipe.
//!
//! | type          | file             | parameters (`encoder.` prefix)                         | states            |
//! |---------------|------------------|--------------------------------------------------------|-------------------|
//! | `bag`         | `bag.rs`         | `embedding`                                            | token embeddings  |
//! | `lstm`        | `lstm.rs`        | `embedding`, `lstm.{w_ih,w_hh,b}`                      | hidden states     |
//! | `cnn`         | `cnn.rs`         | `embedding`, `cnn.{w,b}`                               | ReLU(conv1d)      |
//! | `transformer` | `transformer.rs` | `embedding`, `pos`, `emb_ln.*`, `layer{i}.*`, `final_ln.*` (pre-norm) | last layer |
//!
//! Each file implements [`EncoderKind`]; [`dispatch!`] below is the one place that maps an
//! [`EncoderType`] to its file. Every size is chosen at run time; [`EncoderSpec::problems`]
//! rejects, at `validate` time, any size the code cannot run (e.g. dim not divisible by
//! heads), so a run never panics on one.

use anyhow::Result;
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;

use super::bag::Bag;
use super::cnn::Cnn;
use super::encoder_kind::{EncoderKind, States};
use super::lstm::Lstm;
use super::pool::Pooling;
use super::transformer::Transformer;
use super::{uniform, Dev, ParamFn, Params};
use crate::problem::Problem;

pub use super::encoder_config::{EncoderSpec, EncoderType, Norm};
pub use super::encoder_kind::Tokens;

/// Runs `$body` with `$K` standing for the implementation of encoder type `$kind`. A new
/// encoder type adds its line here (the match is exhaustive, so the compiler asks for it).
macro_rules! dispatch {
    ($kind:expr, $K:ident => $body:expr) => {
        match $kind {
            EncoderType::Bag => {
                type $K = Bag;
                $body
            }
            EncoderType::Lstm => {
                type $K = Lstm;
                $body
            }
            EncoderType::Cnn => {
                type $K = Cnn;
                $body
            }
            EncoderType::Transformer => {
                type $K = Transformer;
                $body
            }
        }
    };
}

/// The language-model objectives that pretrain a whole encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmObjective {
    /// Next token (`lm`).
    NextToken,
    /// Masked tokens (`mlm`).
    Masked,
}

impl EncoderType {
    /// The spec's name of the type.
    pub fn name(self) -> &'static str {
        dispatch!(self, K => K::NAME)
    }

    /// The option fields of [`EncoderSpec`] this type reads.
    pub fn options(self) -> &'static [&'static str] {
        dispatch!(self, K => K::OPTIONS)
    }

    /// Whether `objective` can pretrain this type's whole encoder.
    pub fn supports(self, objective: LmObjective) -> bool {
        match objective {
            LmObjective::NextToken => dispatch!(self, K => K::NEXT_TOKEN),
            LmObjective::Masked => dispatch!(self, K => K::MASKED),
        }
    }

    /// The types `objective` can pretrain, by name.
    pub fn supporting(objective: LmObjective) -> Vec<&'static str> {
        EncoderType::ALL
            .iter()
            .filter(|t| t.supports(objective))
            .map(|t| t.name())
            .collect()
    }
}

impl EncoderSpec {
    /// The same spec with every option of its type filled in.
    pub fn resolved(&self) -> EncoderSpec {
        let mut s = self.clone();
        dispatch!(s.kind, K => K::resolve(&mut s));
        s
    }

    pub fn name(&self) -> &'static str {
        self.kind.name()
    }

    /// Width of each position's state.
    pub fn out_dim(&self) -> usize {
        dispatch!(self.kind, K => K::out_dim(self))
    }

    pub fn default_pooling(&self) -> Pooling {
        dispatch!(self.kind, K => K::DEFAULT_POOLING)
    }

    /// What `validate` says about sizes and types; empty when usable.
    pub fn problems(&self) -> Vec<Problem> {
        let mut v = Vec::new();
        let t = self.name();
        if !(2..=1024).contains(&self.dim) {
            v.push(Problem::new(
                "encoder.dim".into(),
                format!("dim {} is out of range: expected 2..=1024", self.dim),
            ));
        }
        // Options that belong to another encoder type. Unset options are left out when the
        // spec is serialised, so its serialised form lists the ones given.
        let given = serde_json::to_value(self).unwrap_or_default();
        for owner in EncoderType::ALL.into_iter().filter(|&o| o != self.kind) {
            for &f in owner.options() {
                if given.get(f).is_some() {
                    v.push(Problem::new(
                        format!("encoder.{f}"),
                        format!("`{f}` applies to {} encoders only, not {t}", owner.name()),
                    ));
                }
            }
        }
        let r = self.resolved();
        v.extend(dispatch!(r.kind, K => K::problems(&r)));
        v
    }

    /// Fresh parameters (PyTorch-like initialisation) from a seeded generator.
    pub fn init(&self, dev: &Dev, rng: &mut ChaCha8Rng, vocab: usize) -> Params {
        let s = self.resolved();
        let d = s.dim;
        let mut p = Params::default();
        let mut put = |n: &str, t| {
            p.tensors.insert(format!("encoder.{n}"), t);
        };
        put("embedding", uniform(dev, rng, vocab, d, 0.5 / (d as f32).sqrt()));
        dispatch!(s.kind, K => K::init(&s, dev, rng, &mut put));
        p
    }

    /// Parameter names from the bottom (embeddings) to the top layer: the groups that gradual
    /// unfreezing releases top-down and discriminative learning rates scale.
    pub fn layer_groups(&self, params: &Params) -> Vec<Vec<String>> {
        let s = self.resolved();
        dispatch!(s.kind, K => K::layer_groups(&s, params))
    }

    /// Per-position states `(b·l) × out_dim` for `b` rows of `l` ids. `p(name)` hands out a
    /// parameter on tape type `T` (a real tape records gradients; `NoneTape` does not).
    /// `causal` (transformer only) hides later positions, for next-token objectives.
    pub fn states<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
        &self,
        dev: &Dev,
        p: ParamFn<T>,
        x: Tokens,
        causal: bool,
    ) -> Result<States<T>> {
        let vocab = p("encoder.embedding")?.shape().0;
        if let Some(&bad) = x.ids.iter().find(|&&id| id as usize >= vocab) {
            anyhow::bail!(
                "token id {bad} is outside the embedding table ({vocab} rows): the sequences were encoded by another tokenizer than the model's"
            );
        }
        let s = self.resolved();
        dispatch!(s.kind, K => K::states(&s, dev, p, x, causal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `EncoderType::ALL` lists every variant the spec accepts (its schema's enum), and each
    /// type's name is the spec's spelling.
    #[test]
    fn all_lists_every_encoder_type_under_its_spec_name() {
        let schema = serde_json::to_value(schemars::schema_for!(EncoderType)).unwrap();
        let mut accepted: Vec<String> = schema["enum"]
            .as_array()
            .expect("EncoderType's schema is an enum of names")
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let mut listed: Vec<String> = EncoderType::ALL.iter().map(|t| t.name().to_string()).collect();
        accepted.sort();
        listed.sort();
        assert_eq!(listed, accepted);
        for t in EncoderType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
        }
    }

    /// Every option a type declares is a field of the spec, serialised when set (how
    /// `problems` sees that another type's option was given).
    #[test]
    fn declared_options_are_spec_fields() {
        for t in EncoderType::ALL {
            for &f in t.options() {
                let value = if f == "norm" {
                    serde_json::json!("pre")
                } else {
                    serde_json::json!(2)
                };
                let s: EncoderSpec = serde_json::from_value(serde_json::json!({"type": t.name(), f: value}))
                    .unwrap_or_else(|e| panic!("{} option `{f}` is not a spec field: {e}", t.name()));
                let given = serde_json::to_value(&s).unwrap();
                assert!(
                    given.get(f).is_some(),
                    "{} option `{f}` is not serialised when set",
                    t.name()
                );
            }
        }
    }

    #[test]
    fn options_of_another_type_are_refused_with_their_owner() {
        let s = EncoderSpec {
            kind: EncoderType::Lstm,
            heads: Some(2),
            filters: Some(8),
            ..EncoderSpec::default()
        };
        let msgs: Vec<String> = s.problems().iter().map(|p| p.to_string()).collect();
        let all = msgs.join("\n");
        assert!(
            all.contains("`heads` applies to transformer encoders only, not lstm"),
            "{all}"
        );
        assert!(
            all.contains("`filters` applies to cnn encoders only, not lstm"),
            "{all}"
        );
    }
}
