//! The YAML shapes of a spec and the typing of a tree into them, with the failing field's path
//! for every error (`serde_path_to_error`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::errors::{describe, locate};
use super::{Override, SpanIndex, SpecError, SpecErrors};
use crate::dataset::{DatasetSpec, Format};
use crate::stages::{self, Stage};

/// The variant keys of a spec.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariants {
    #[serde(default)]
    pub(super) variants: Mapping,
    #[serde(default)]
    pub(super) matrix: Mapping,
    #[serde(default = "one")]
    pub(super) repeats: u64,
}

fn one() -> u64 {
    1
}

/// Top-level shape of a spec. Unknown keys are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSpec {
    pub(super) name: String,
    #[serde(default)]
    pub(super) seed: u64,
    #[serde(default)]
    pub(super) datasets: Mapping,
    pub(super) stages: Mapping,
    #[serde(default)]
    pub(super) executor: crate::resources::ExecutorSpec,
}

/// The JSON Schema of one `datasets:` entry (src/schema.rs).
pub fn dataset_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<RawDataset>()
}

/// One `datasets:` entry.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dataset")]
pub(super) struct RawDataset {
    path: String,
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// State while checking one spec: where things are and what went wrong so far.
pub(super) struct Ctx {
    pub(super) file: PathBuf,
    pub(super) spans: SpanIndex,
    pub(super) overrides: Vec<Override>,
    pub(super) errors: Vec<SpecError>,
}

impl Ctx {
    pub(super) fn push(&mut self, field: &str, message: &str) {
        let e = locate(&self.file, &self.spans, &self.overrides, field, message.to_string());
        self.errors.push(e);
    }

    pub(super) fn fail(&mut self, field: &str, message: &str) -> SpecErrors {
        self.push(field, message);
        SpecErrors(std::mem::take(&mut self.errors))
    }

    /// Dataset and stage names must be plain identifiers: they become file names and CLI words.
    pub(super) fn key_name(&mut self, key: &Value, section: &str) -> Option<String> {
        let Some(name) = key.as_str() else {
            self.push(
                section,
                &format!("names in `{section}` must be strings, found {}", describe(key)),
            );
            return None;
        };
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
        if !ok {
            self.push(
                &format!("{section}.{name}"),
                &format!(
                    "invalid name `{name}`: expected a letter followed by letters, digits, `_` or `-` (at most 64)"
                ),
            );
            return None;
        }
        Some(name.to_string())
    }

    pub(super) fn dataset(&mut self, name: &str, d: RawDataset, base: &Path) -> Option<DatasetSpec> {
        let at = format!("datasets.{name}");
        let format = match d.format {
            Some(f) => f,
            None => match Format::from_extension(&d.path) {
                Some(f) => f,
                None if base.join(&d.path).is_dir() => Format::Txt,
                None => {
                    self.push(
                        &format!("{at}.path"),
                        &format!(
                            "cannot tell the format of `{}` from its extension; add `format:` (one of csv, tsv, jsonl, parquet, txt)",
                            d.path
                        ),
                    );
                    return None;
                }
            },
        };
        let text = d.text.unwrap_or_else(|| "text".to_string());
        if format == Format::Txt && d.label.is_some() {
            self.push(
                &format!("{at}.label"),
                "a `txt` dataset has one text per line and no labels; remove `label` or use csv, tsv or jsonl",
            );
            return None;
        }
        Some(DatasetSpec {
            name: name.to_string(),
            path: base.join(&d.path),
            rel_path: d.path,
            format,
            text,
            label: d.label,
        })
    }

    pub(super) fn stage(&mut self, name: &str, value: Value) -> Option<(&'static stages::Kind, Box<dyn Stage>)> {
        let at = format!("stages.{name}");
        let Value::Mapping(mut map) = value else {
            self.push(
                &at,
                &format!(
                    "expected a mapping with `kind` and the stage's parameters, found {}",
                    describe(&value)
                ),
            );
            return None;
        };
        let kind = match map.remove("kind") {
            Some(Value::String(k)) => k,
            Some(other) => {
                self.push(
                    &format!("{at}.kind"),
                    &format!(
                        "expected a stage kind (one of {}), found {}",
                        stages::kind_names(),
                        describe(&other)
                    ),
                );
                return None;
            }
            None => {
                self.push(
                    &at,
                    &format!("missing `kind`; expected one of {}", stages::kind_names()),
                );
                return None;
            }
        };
        let Some(entry) = stages::find_kind(&kind) else {
            self.push(
                &format!("{at}.kind"),
                &format!("unknown stage kind `{kind}`; expected one of {}", stages::kind_names()),
            );
            return None;
        };
        // The kind types its parameters from a JSON tree: YAML stays inside spec/.
        let params = match serde_json::to_value(Value::Mapping(map)) {
            Ok(p) => p,
            Err(e) => {
                self.push(
                    &at,
                    &format!("stage parameters must be plain values with string keys: {e}"),
                );
                return None;
            }
        };
        match (entry.parse)(params, &at) {
            Ok(stage) => {
                let problems = stage.check();
                if problems.is_empty() {
                    Some((entry, stage))
                } else {
                    for p in problems {
                        let path = if p.field.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{}", p.field)
                        };
                        self.push(&path, &p.message);
                    }
                    None
                }
            }
            Err((path, msg)) => {
                self.push(&path, &msg);
                None
            }
        }
    }
}

/// Types a YAML tree into `T`: [`crate::typed::typed`] over serde_yaml's value.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: Value, at: &str) -> Result<T, (String, String)> {
    crate::typed::typed(value, at)
}
