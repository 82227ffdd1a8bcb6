//! Stage kinds and their registry.
//!
//! A stage kind is one file in this folder plus one line in [`REGISTRY`]. The file defines a
//! parameter struct (serde: the YAML fields, unknown ones denied, defaults filled in) that
//! implements [`Stage`]. The executor treats every kind the same way:
//!
//! * its **key** is computed from [`Stage::params`] (canonical JSON, every default included), the
//!   keys of the inputs named by [`Stage::inputs`], the kind's `version`, and the pipeline seed
//!   if [`Stage::uses_seed`];
//! * [`Stage::run`] is a pure function of the parameters and the input artefacts: it reads
//!   only what the [`StageCtx`] gives it and writes only into `ctx.out`, so the same stage
//!   can later run as a job on another machine. Bump `version` when the output format or the
//!   algorithm changes, so old cache entries stop matching.

use crate::problem::Problem;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::dataset::DatasetSpec;
use crate::progress::Progress;

pub mod classify;
pub mod evaluate;
pub mod feature_extract;
pub mod finetune;
pub mod pad;
pub mod pretrain;
pub mod tokenize;

/// Reads a stage's parameters; on error, the failing field path and a message.
pub type ParseFn = fn(serde_json::Value, &str) -> Result<Box<dyn Stage>, (String, String)>;

/// An entry of the registry: how to read one kind of stage from YAML.
pub struct Kind {
    pub name: &'static str,
    /// What its artefact is. Consumers ask for a product, never for a kind by name, so a new
    /// kind that produces a classifier is usable by `evaluate`, `predict` and `export` as is.
    pub produces: Product,
    /// Bumped when the artefact format or the algorithm changes; part of every key.
    pub version: u32,
    /// One line for `--help`-style listings.
    pub summary: &'static str,
    pub parse: ParseFn,
    /// The JSON Schema of its parameters (`warmstart schema`), from the same struct `parse`
    /// fills, so the two cannot drift.
    pub schema: SchemaFn,
}

pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// [`SchemaFn`] of a parameter struct.
pub fn schema_of<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    T::json_schema(g)
}

impl Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kind({})", self.name)
    }
}

/// Every stage kind warmstart knows.
pub static REGISTRY: &[Kind] = &[
    tokenize::KIND,
    pad::KIND,
    pretrain::KIND,
    feature_extract::KIND,
    finetune::KIND,
    evaluate::KIND,
];

pub fn find_kind(name: &str) -> Option<&'static Kind> {
    REGISTRY.iter().find(|k| k.name == name)
}

pub fn kind_names() -> String {
    REGISTRY.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
}

/// Reads a kind's parameter struct from the stage's YAML mapping (without `kind`).
pub fn parse_as<T>(value: serde_json::Value, at: &str) -> Result<Box<dyn Stage>, (String, String)>
where
    T: Stage + serde::de::DeserializeOwned + 'static,
{
    Ok(Box::new(crate::typed::typed::<T, _>(value, at)?))
}

/// What a stage's artefact holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// A tokenizer and the encoded (ragged) datasets.
    Tokens,
    /// Fixed-length ids and masks (plus the tokenizer carried forward).
    Padded,
    /// A pretrained encoder (token embeddings or a whole network).
    Encoder,
    /// A trained classifier: the model folder `evaluate`, `predict` and `export` read.
    Classifier,
    /// Metrics of a classifier on a dataset.
    Metrics,
}

/// The names of the kinds whose artefact is one of `products`, in registry order (for
/// messages: "a stage of kind finetune or feature-extract is expected here").
pub fn kinds_making(products: &[Product]) -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|k| products.contains(&k.produces))
        .map(|k| k.name)
        .collect()
}

/// What the kind named `name` produces (`None` for a name no kind has).
pub fn product_of(name: &str) -> Option<Product> {
    find_kind(name).map(|k| k.produces)
}

/// What an input reference must point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Dataset,
    /// A stage whose artefact is one of these.
    Stage(&'static [Product]),
}

/// One name a stage reads, and the field (relative to the stage) that names it.
#[derive(Debug, Clone)]
pub struct InputRef {
    pub field: String,
    pub name: String,
    pub want: Want,
}

/// A dataset that a stage reads by name out of an upstream stage's artefact (finetune's
/// `train` out of its pad stage `from`). `validate` checks that the upstream artefact will hold
/// it, so a typo fails before anything runs rather than after tokenize and pad.
#[derive(Debug, Clone)]
pub struct HeldRef {
    pub field: String,
    pub name: String,
    /// The stage whose artefact must hold `name`.
    pub via: String,
}

impl HeldRef {
    pub fn new(field: &str, name: &str, via: &str) -> HeldRef {
        HeldRef {
            field: field.into(),
            name: name.into(),
            via: via.into(),
        }
    }
}

/// A resolved input as the stage sees it when it runs.
#[derive(Debug, Clone)]
pub enum Input {
    Dataset(DatasetSpec),
    /// The `files/` folder of an upstream stage's complete store entry (read-only).
    Artefact(PathBuf),
}

/// Everything a running stage may look at.
pub struct StageCtx<'a> {
    pub name: &'a str,
    /// Empty folder to write the artefact into; it becomes visible only if `run` succeeds.
    pub out: &'a Path,
    pub inputs: &'a BTreeMap<String, Input>,
    pub seed: u64,
    pub progress: &'a Progress,
    /// Where training loops leave their state between epochs, so a killed run resumes
    /// (keyed by the stage's key; the artefact is the same bytes either way).
    pub checkpoint: &'a Checkpoint,
}

impl StageCtx<'_> {
    pub fn dataset(&self, name: &str) -> anyhow::Result<&DatasetSpec> {
        match self.inputs.get(name) {
            Some(Input::Dataset(d)) => Ok(d),
            _ => anyhow::bail!("internal: `{name}` is not a dataset input of stage `{}`", self.name),
        }
    }

    /// What a training loop in `model/` gets of this context.
    pub fn loop_ctx(&self) -> crate::model::LoopCtx<'_> {
        crate::model::LoopCtx {
            progress: self.progress,
            checkpoint: self.checkpoint,
        }
    }

    pub fn artefact(&self, name: &str) -> anyhow::Result<&Path> {
        match self.inputs.get(name) {
            Some(Input::Artefact(p)) => Ok(p),
            _ => anyhow::bail!("internal: `{name}` is not a stage input of stage `{}`", self.name),
        }
    }
}

/// What a stage reports when it succeeds.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    /// One line for the run log, e.g. "vocab 8000, 4 datasets, 1.2 M tokens".
    pub summary: String,
    /// Metrics to surface in `run --json` (evaluate stages).
    pub metrics: Option<serde_json::Value>,
}

pub trait Stage: Debug + Send + Sync {
    /// The names this stage reads (datasets or stages), with the fields that name them.
    fn inputs(&self) -> Vec<InputRef>;

    /// Datasets this stage reads by name out of upstream artefacts (see [`HeldRef`]).
    fn held_refs(&self) -> Vec<HeldRef> {
        Vec::new()
    }

    /// The datasets whose rows this stage's artefact holds, when the spec alone says so, with
    /// the field that lists them (tokenize: `encode`; pad: `datasets` when given). `None`: the
    /// same as the stage it reads (pad without `datasets`).
    fn holds(&self) -> Option<(&'static str, Vec<String>)> {
        None
    }

    /// Canonical parameters: everything that determines the output, defaults included.
    fn params(&self) -> serde_json::Value;

    /// Whether the pipeline seed influences the output (then it is part of the key). When it
    /// does not, `StageCtx::seed` is 0, so that nothing outside the key can reach the output.
    fn uses_seed(&self) -> bool {
        false
    }

    /// Checks of values that the types alone do not catch, as (field, message) pairs.
    fn check(&self) -> Vec<Problem> {
        Vec::new()
    }

    /// Produces the artefact.
    fn run(&self, ctx: &StageCtx) -> anyhow::Result<Outcome>;
}

/// Implements [`Stage::params`] the same way for every kind: the serde form of the struct.
pub fn params_of<T: serde::Serialize>(t: &T) -> serde_json::Value {
    serde_json::to_value(t).unwrap_or(serde_json::Value::Null)
}
