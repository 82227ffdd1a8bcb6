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
//! Each file implements [`EncoderKind`] (its config struct is a variant of [`EncoderSpec`]);
//! [`dispatch!`] below is the one place that maps a variant to its file. Every size is chosen at run time; [`EncoderSpec::problems`]
//! rejects, at `validate` time, any size the code cannot run (e.g. dim not divisible by
//! heads), so a run never panics on one.

use anyhow::Result;
use dfdx::prelude::*;
use rand_chacha::ChaCha8Rng;
use serde::de::{Deserializer, Error as _, MapAccess, Visitor};
use serde::Deserialize;

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

/// Runs `$body` with `$K` standing for the implementation of an encoder type: `spec $s, $K, $c`
/// also binds `$c` to the spec's config; `type $t, $K` dispatches on the tag alone (and
/// `type $t, $K, $wrap` binds the variant's constructor). A new encoder type adds its arm to
/// each form (the matches are exhaustive, so the compiler asks).
macro_rules! dispatch {
    (spec $spec:expr, $K:ident, $c:ident => $body:expr) => {
        match $spec {
            EncoderSpec::Bag($c) => {
                type $K = Bag;
                $body
            }
            EncoderSpec::Lstm($c) => {
                type $K = Lstm;
                $body
            }
            EncoderSpec::Cnn($c) => {
                type $K = Cnn;
                $body
            }
            EncoderSpec::Transformer($c) => {
                type $K = Transformer;
                $body
            }
        }
    };
    (type $kind:expr, $K:ident => $body:expr) => {
        dispatch!(type $kind, $K, _wrap => $body)
    };
    (type $kind:expr, $K:ident, $wrap:ident => $body:expr) => {
        match $kind {
            EncoderType::Bag => {
                type $K = Bag;
                let $wrap = EncoderSpec::Bag;
                $body
            }
            EncoderType::Lstm => {
                type $K = Lstm;
                let $wrap = EncoderSpec::Lstm;
                $body
            }
            EncoderType::Cnn => {
                type $K = Cnn;
                let $wrap = EncoderSpec::Cnn;
                $body
            }
            EncoderType::Transformer => {
                type $K = Transformer;
                let $wrap = EncoderSpec::Transformer;
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
        dispatch!(type self, K => K::NAME)
    }

    /// The options of this type's config besides `dim`.
    pub fn options(self) -> &'static [&'static str] {
        dispatch!(type self, K => K::OPTIONS)
    }

    /// Whether `objective` can pretrain this type's whole encoder.
    pub fn supports(self, objective: LmObjective) -> bool {
        match objective {
            LmObjective::NextToken => dispatch!(type self, K => K::NEXT_TOKEN),
            LmObjective::Masked => dispatch!(type self, K => K::MASKED),
        }
    }

    /// The types `objective` can pretrain, by name.
    pub fn supporting(objective: LmObjective) -> Vec<&'static str> {
        EncoderType::all()
            .filter(|t| t.supports(objective))
            .map(|t| t.name())
            .collect()
    }

    /// A spec of this type and width, every other option unset.
    pub fn with_dim(self, dim: usize) -> EncoderSpec {
        dispatch!(type self, K, wrap => wrap(K::with_dim(dim)))
    }
}

impl EncoderSpec {
    /// The type tag.
    pub fn kind(&self) -> EncoderType {
        self.into()
    }

    /// The same spec with every option of its type filled in.
    pub fn resolved(&self) -> EncoderSpec {
        let mut s = self.clone();
        dispatch!(spec &mut s, K, c => K::resolve(c));
        s
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    /// Embedding width (and hidden or model width where the type has one).
    pub fn dim(&self) -> usize {
        dispatch!(spec self, K, c => K::dim(c))
    }

    /// Width of each position's state.
    pub fn out_dim(&self) -> usize {
        dispatch!(spec self, K, c => K::out_dim(c))
    }

    pub fn default_pooling(&self) -> Pooling {
        dispatch!(type self.kind(), K => K::DEFAULT_POOLING)
    }

    /// What `validate` says about sizes; empty when usable. (Options of another type never
    /// get this far: reading the spec refuses them.)
    pub fn problems(&self) -> Vec<Problem> {
        let mut v = Vec::new();
        let dim = self.dim();
        if !(2..=1024).contains(&dim) {
            v.push(Problem::new(
                "encoder.dim".into(),
                format!("dim {dim} is out of range: expected 2..=1024"),
            ));
        }
        let r = self.resolved();
        v.extend(dispatch!(spec &r, K, c => K::problems(c)));
        v
    }

    /// Fresh parameters (PyTorch-like initialisation) from a seeded generator.
    pub fn init(&self, dev: &Dev, rng: &mut ChaCha8Rng, vocab: usize) -> Params {
        let s = self.resolved();
        let d = s.dim();
        let mut p = Params::default();
        let mut put = |n: &str, t| {
            p.tensors.insert(format!("encoder.{n}"), t);
        };
        put("embedding", uniform(dev, rng, vocab, d, 0.5 / (d as f32).sqrt()));
        dispatch!(spec &s, K, c => K::init(c, dev, rng, &mut put));
        p
    }

    /// Parameter names from the bottom (embeddings) to the top layer: the groups that gradual
    /// unfreezing releases top-down and discriminative learning rates scale.
    pub fn layer_groups(&self, params: &Params) -> Vec<Vec<String>> {
        let s = self.resolved();
        dispatch!(spec &s, K, c => K::layer_groups(c, params))
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
        check_ids(p("encoder.embedding")?.shape().0, x)?;
        let s = self.resolved();
        dispatch!(spec &s, K, c => K::states(c, dev, p, x, causal))
    }

    /// Layers above the token embeddings (layer 0); `states` is the top one.
    pub fn depth(&self) -> usize {
        let s = self.resolved();
        dispatch!(spec &s, K, c => K::depth(c))
    }

    /// Width of layer `layer`'s states.
    pub fn layer_width(&self, layer: usize) -> usize {
        let s = self.resolved();
        dispatch!(spec &s, K, c => K::layer_width(c, layer))
    }

    /// The states of each of `layers` (0 = token embeddings … [`depth`](Self::depth) = the
    /// top), without a tape: what frozen features from chosen layers read.
    pub fn layer_states(
        &self,
        dev: &Dev,
        p: ParamFn<NoneTape>,
        x: Tokens,
        layers: &[usize],
    ) -> Result<Vec<States<NoneTape>>> {
        check_ids(p("encoder.embedding")?.shape().0, x)?;
        let top = self.depth();
        if let Some(l) = layers.iter().find(|&&l| l > top) {
            anyhow::bail!("a {} encoder has no layer {l}: its layers are 0..={top}", self.name());
        }
        let s = self.resolved();
        dispatch!(spec &s, K, c => K::layer_states(c, dev, p, x, layers))
    }
}

/// Token ids past the embedding table mean the rows came from another tokenizer.
fn check_ids(vocab: usize, x: Tokens) -> Result<()> {
    if let Some(&bad) = x.ids.iter().find(|&&id| id as usize >= vocab) {
        anyhow::bail!(
            "token id {bad} is outside the embedding table ({vocab} rows): the sequences were encoded by another tokenizer than the model's"
        );
    }
    Ok(())
}

/// Reads the flat `encoder:` mapping (see `encoder_config.rs`): `type` first wherever it is
/// written (default `bag`), then the rest as that type's config. An option another type owns
/// is refused with its owner's name; errors about one option carry its name through
/// [`crate::typed::field_error`], so `validate` still points at that option's line.
impl<'de> Deserialize<'de> for EncoderSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SpecVisitor)
    }
}

struct SpecVisitor;

impl<'de> Visitor<'de> for SpecVisitor {
    type Value = EncoderSpec;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping like `{ type: bag, dim: 64 }`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EncoderSpec, A::Error> {
        let mut kind = None;
        let mut rest = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "type" {
                kind = Some(map.next_value::<EncoderType>()?);
            } else {
                rest.insert(key, map.next_value::<serde_json::Value>()?);
            }
        }
        let kind = kind.unwrap_or(EncoderType::Bag);
        for field in rest.keys() {
            let owner = EncoderType::all().find(|&o| o != kind && o.options().contains(&field.as_str()));
            if let Some(owner) = owner {
                return Err(crate::typed::field_error(
                    field,
                    format!(
                        "`{field}` applies to {} encoders only, not {}",
                        owner.name(),
                        kind.name()
                    ),
                ));
            }
        }
        let rest = serde_json::Value::Object(rest);
        dispatch!(type kind, K, wrap => {
            serde_path_to_error::deserialize::<_, <K as EncoderKind>::Config>(rest)
                .map(wrap)
                .map_err(|e| {
                    let field = e.path().to_string();
                    let msg = e.into_inner().to_string();
                    if field == "." || msg.starts_with("unknown field") {
                        A::Error::custom(msg)
                    } else {
                        crate::typed::field_error(&field, msg)
                    }
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spec variant's tag (its schema's `type` const) is the name its implementation
    /// gives, and `EncoderType::all()` lists them all.
    #[test]
    fn all_lists_every_encoder_type_under_its_spec_name() {
        let schema = serde_json::to_value(schemars::schema_for!(EncoderSpec)).unwrap();
        let mut accepted: Vec<String> = schema["oneOf"]
            .as_array()
            .expect("EncoderSpec's schema is one branch per type")
            .iter()
            .map(|b| b["properties"]["type"]["const"].as_str().unwrap().to_string())
            .collect();
        let mut listed: Vec<String> = EncoderType::all().map(|t| t.name().to_string()).collect();
        accepted.sort();
        listed.sort();
        assert_eq!(listed, accepted);
        for t in EncoderType::all() {
            assert_eq!(serde_json::to_value(t).unwrap(), t.name());
            assert_eq!(t.with_dim(8).kind(), t);
        }
    }

    /// A type's declared options are exactly its config's fields besides `dim` (the resolved
    /// config writes every field), so the owner check and the config cannot drift apart.
    #[test]
    fn declared_options_are_the_config_fields() {
        for t in EncoderType::all() {
            let written = serde_json::to_value(t.with_dim(8).resolved()).unwrap();
            let mut fields: Vec<&str> = written
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .filter(|k| !["type", "dim"].contains(k))
                .collect();
            let mut declared = t.options().to_vec();
            fields.sort();
            declared.sort();
            assert_eq!(fields, declared, "{}", t.name());
        }
    }

    /// The wire form is one flat mapping, tag first; `type` defaults to `bag`; a spec reads back
    /// as the value it was written from.
    #[test]
    fn the_encoder_block_is_a_flat_mapping() {
        let s: EncoderSpec =
            serde_json::from_value(serde_json::json!({"dim": 32, "type": "cnn", "kernel": 5})).unwrap();
        let EncoderSpec::Cnn(c) = &s else { panic!("{s:?}") };
        assert_eq!((c.dim, c.filters, c.kernel), (32, None, Some(5)));
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"type":"cnn","dim":32,"kernel":5}"#
        );
        let bag: EncoderSpec = serde_json::from_value(serde_json::json!({"dim": 16})).unwrap();
        assert_eq!(bag, EncoderType::Bag.with_dim(16));
        let t = EncoderType::Transformer.with_dim(48).resolved();
        let back: EncoderSpec = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn options_of_another_type_are_refused_with_their_owner() {
        let read = |v| crate::typed::typed::<EncoderSpec, _>(serde_json::json!(v), "encoder").expect_err("refused");
        let (at, msg) = read(serde_json::json!({"type": "lstm", "heads": 2}));
        assert_eq!(at, "encoder.heads");
        assert_eq!(msg, "`heads` applies to transformer encoders only, not lstm");
        let (at, msg) = read(serde_json::json!({"filters": 8}));
        assert_eq!(at, "encoder.filters");
        assert_eq!(msg, "`filters` applies to cnn encoders only, not bag");
        // A wrong type of value and a misspelt option still point at the field.
        let (at, msg) = read(serde_json::json!({"type": "cnn", "kernel": "wide"}));
        assert_eq!(at, "encoder.kernel", "{msg}");
        let (at, msg) = read(serde_json::json!({"type": "cnn", "kernal": 3}));
        assert_eq!(at, "encoder.kernal");
        assert!(msg.contains("`filters`") && msg.contains("`kernel`"), "{msg}");
    }
}
