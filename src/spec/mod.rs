//! The pipeline spec: one YAML file, parsed, overridden and validated.
//!
//! All YAML handling lives in this module so that a later switch away from `serde_yaml`
//! (deprecated upstream) touches one folder. Stage kinds type their own parameters, but from a
//! `serde_json::Value` that [`raw`] converts the stage's YAML mapping into, so no YAML type
//! crosses this module's border.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Spec`]: one checked pipeline, built from a tree plus overrides |
//! | `study.rs` | [`Study`]: `variants:`, `matrix:` and `repeats:` expanded into specs |
//! | `raw.rs` | the YAML shapes (`RawSpec`, `RawDataset`) and the typing of a tree, with field paths |
//! | `overrides.rs` | `--set path=value`: reading it and placing it in the tree |
//! | `spans.rs` | [`SpanIndex`]: field path → line and column, from the YAML event stream |
//! | `errors.rs` | [`SpecError`]: file, line, column, field, message; serde's messages made readable |
//!
//! # How a spec is read
//!
//! 1. The text is parsed twice: by `serde_yaml` into a [`Value`] (what we use), and by
//!    `yaml-rust2`'s event parser into a [`SpanIndex`] that maps every field path
//!    (`stages.tok.vocab_size`, `stages.tok.fit_on[1]`) to its line and column. serde_yaml
//!    forgets positions once a `Value` exists, and we need a `Value` because `--set` overrides
//!    (and, later, variants) are applied to the tree before it is typed.
//! 2. `--set a.b=c` overrides are applied to the `Value`. A path whose first segment is not a
//!    top-level key (`name`, `seed`, `datasets`, `stages`) is taken relative to `stages`, so
//!    `--set tok.vocab_size=4000` works as well as `--set stages.tok.vocab_size=4000`.
//! 3. The tree is deserialised into typed structs (unknown keys denied) through
//!    `serde_path_to_error`, so a type error knows its field path; the span index turns the
//!    path into `file:line:column`. Each stage's own parameters are typed by its kind's entry
//!    in the registry ([`crate::stages::REGISTRY`]).
//! 4. References (stage inputs naming datasets or stages) and cycles are checked by
//!    the graph module (`graph.rs`, run by `pipeline.rs`, the loader every command uses), which
//!    reports through the same [`SpecError`] type.
//!
//! Every error names the file, the line and column, the field path, and what was expected.

mod errors;
mod overrides;
mod raw;
mod spans;
mod study;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use errors::{SpecError, SpecErrors};
pub use raw::dataset_schema;
pub use spans::SpanIndex;
pub use study::Study;

use crate::dataset::DatasetSpec;
use crate::stages::{self, Stage};
use errors::locate;
use overrides::apply_value;
use raw::{typed, Ctx, RawDataset, RawSpec};

/// A validated pipeline.
#[derive(Debug)]
pub struct Spec {
    /// The spec file as given.
    pub file: PathBuf,
    pub name: String,
    pub seed: u64,
    /// Datasets by name; paths are resolved relative to the spec file's directory.
    pub datasets: BTreeMap<String, DatasetSpec>,
    /// Stages in file order.
    pub stages: Vec<StageSpec>,
    /// Where fields are in the file, for errors found after parsing (references, cycles).
    pub spans: SpanIndex,
    /// The overrides applied to the file (`--set`, then the variant's), by normalised path.
    pub overrides: Vec<Override>,
    /// The variant this spec is (empty when the file declares no variants, matrix or repeats).
    pub variant: String,
    /// Cluster resources per stage (`executor:`; used by `--executor slurm` only).
    pub executor: crate::resources::ExecutorSpec,
}

/// One value replaced on top of the file: by `--set`, a variant or a matrix axis.
#[derive(Debug, Clone)]
pub struct Override {
    /// Normalised path, e.g. `stages.tok.vocab_size`.
    pub path: String,
    /// Where the value came from, for messages: "`--set tok.vocab_size=500`", "variant `scratch`".
    pub origin: String,
    /// The field path in the file that holds the value (variants, matrix), for the location.
    pub at: Option<String>,
}

/// One stage of a spec: its name, kind and typed parameters.
#[derive(Debug)]
pub struct StageSpec {
    pub name: String,
    pub kind: &'static stages::Kind,
    pub stage: Box<dyn Stage>,
}

impl Spec {
    /// Builds one variant: the file's tree plus `overrides`, typed and checked.
    pub(crate) fn build(
        file: &Path,
        spans: &SpanIndex,
        mut root: Value,
        overrides: &[(Override, Value)],
        variant: &str,
    ) -> Result<Spec, SpecErrors> {
        let mut ctx = Ctx {
            file: file.to_path_buf(),
            spans: spans.clone(),
            overrides: Vec::new(),
            errors: Vec::new(),
        };
        for (o, value) in overrides {
            match apply_value(&mut root, &o.path, value.clone()) {
                Ok(full) => ctx.overrides.push(Override {
                    path: full,
                    ..o.clone()
                }),
                Err(msg) => {
                    let at = o.at.as_deref().and_then(|a| spans.find(a));
                    ctx.errors.push(SpecError {
                        file: ctx.file.clone(),
                        line: at.map(|p| p.0),
                        column: at.map(|p| p.1),
                        field: o.at.clone().unwrap_or_default(),
                        message: format!("bad {}: {msg}", o.origin),
                        from_override: None,
                    });
                }
            }
        }
        if !ctx.errors.is_empty() {
            return Err(SpecErrors(ctx.errors));
        }
        let raw: RawSpec = match typed(root, "") {
            Ok(r) => r,
            Err((path, msg)) => return Err(ctx.fail(&path, &msg)),
        };

        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut datasets = BTreeMap::new();
        for (name, value) in raw.datasets {
            let Some(name) = ctx.key_name(&name, "datasets") else {
                continue;
            };
            let at = format!("datasets.{name}");
            match typed::<RawDataset>(value, &at) {
                Ok(d) => {
                    if let Some(ds) = ctx.dataset(&name, d, &base) {
                        datasets.insert(name, ds);
                    }
                }
                Err((path, msg)) => ctx.push(&path, &msg),
            }
        }

        let mut stages_out = Vec::new();
        for (name, value) in raw.stages {
            let Some(name) = ctx.key_name(&name, "stages") else {
                continue;
            };
            if datasets.contains_key(&name) {
                ctx.push(
                    &format!("stages.{name}"),
                    &format!("stage `{name}` has the same name as a dataset; names must be unique"),
                );
                continue;
            }
            if let Some((kind, stage)) = ctx.stage(&name, value) {
                stages_out.push(StageSpec { name, kind, stage });
            }
        }
        if stages_out.is_empty() && ctx.errors.is_empty() {
            ctx.push("stages", "the spec has no stages; expected at least one");
        }
        let kinds: Vec<&str> = stages::REGISTRY.iter().map(|k| k.name).collect();
        let names: Vec<&str> = stages_out.iter().map(|s| s.name.as_str()).collect();
        for p in raw.executor.problems(&kinds, &names) {
            ctx.push(&p.field, &p.message);
        }
        if !ctx.errors.is_empty() {
            return Err(SpecErrors(ctx.errors));
        }
        let spec = Spec {
            file: ctx.file,
            name: raw.name,
            seed: raw.seed,
            datasets,
            stages: stages_out,
            spans: ctx.spans,
            overrides: ctx.overrides,
            variant: variant.to_string(),
            executor: raw.executor,
        };
        Ok(spec)
    }

    /// An error at a field path of this spec (used by later checks: references, cycles, data).
    pub fn error_at(&self, field: &str, message: impl Into<String>) -> SpecError {
        locate(&self.file, &self.spans, &self.overrides, field, message.into())
    }

    pub fn stage(&self, name: &str) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.name == name)
    }
}
