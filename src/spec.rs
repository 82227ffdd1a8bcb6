//! The pipeline spec: one YAML file, parsed, overridden and validated.
//!
//! All YAML handling lives in this module so that a later switch away from `serde_yaml`
//! (deprecated upstream) touches one file.
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
//!    [`crate::graph`], which reports through the same [`SpecError`] type.
//!
//! Every error names the file, the line and column, the field path, and what was expected.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::dataset::{DatasetSpec, Format};
use crate::stages::{self, Stage};

/// One problem in a spec, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file (as given on the command line).
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted field path, e.g. `stages.tok.vocab_size`; empty for the whole file.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// Set when the offending value came from `--set` rather than from the file.
    pub from_override: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(o) = &self.from_override {
            write!(f, " (value given by {o})")?;
        }
        Ok(())
    }
}

/// All problems found in one spec (at least one).
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

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
    /// Reads and validates a spec file that declares no variants, applying `--set` overrides.
    pub fn load(file: &Path, sets: &[String]) -> Result<Spec, SpecErrors> {
        Study::load(file, sets).and_then(Study::single)
    }

    /// Parses spec text that declares no variants (see [`Study::parse`] for those); `file` is
    /// used for messages and to resolve dataset paths.
    pub fn parse(file: &Path, text: &str, sets: &[String]) -> Result<Spec, SpecErrors> {
        Study::parse(file, text, sets).and_then(Study::single)
    }

    /// Builds one variant: the file's tree plus `overrides`, typed and checked.
    fn build(
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
        for (field, msg) in raw.executor.problems(&kinds, &names) {
            ctx.push(&field, &msg);
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
        crate::graph::check(&spec)?;
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

/// A spec file expanded into its variants.
///
/// `variants:` names sets of overrides, `matrix:` crosses lists of values, `repeats: N` runs each
/// combination with seeds `seed`, `seed + 1`, …; every combination is a full [`Spec`] (the
/// file's tree with the overrides applied, then typed and checked like any spec). Variants
/// share stages by construction: a stage whose parameters and inputs coincide in two variants
/// has the same key, so it runs once.
///
/// Naming: `base` plus the names under `variants:` (when that key exists), then one
/// `param=value` part per matrix axis, then `seed=N` when `repeats > 1`, joined by `,`.
#[derive(Debug)]
pub struct Study {
    pub file: PathBuf,
    pub name: String,
    /// Every combination; a single one named "" when the file declares no variants.
    pub variants: Vec<Spec>,
    /// For reports: per variant, the overrides that define it as (path, value) pairs.
    pub definitions: Vec<Vec<(String, String)>>,
    pub repeats: u64,
}

impl Study {
    /// The one spec of a study without variants.
    fn single(mut study: Study) -> Result<Spec, SpecErrors> {
        if study.variants.len() > 1 {
            return Err(SpecErrors(vec![SpecError {
                file: study.file.clone(),
                line: None,
                column: None,
                field: String::new(),
                message: "this spec declares variants; use the commands that accept them".into(),
                from_override: None,
            }]));
        }
        Ok(study.variants.remove(0))
    }

    pub fn load(file: &Path, sets: &[String]) -> Result<Study, SpecErrors> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            SpecErrors(vec![SpecError {
                file: file.to_path_buf(),
                line: None,
                column: None,
                field: String::new(),
                message: format!("cannot read spec file: {e}"),
                from_override: None,
            }])
        })?;
        Study::parse(file, &text, sets)
    }

    pub fn parse(file: &Path, text: &str, sets: &[String]) -> Result<Study, SpecErrors> {
        let spans = SpanIndex::build(text);
        let fail = |field: &str, line_col: Option<(usize, usize)>, message: String| {
            SpecErrors(vec![SpecError {
                file: file.to_path_buf(),
                line: line_col.map(|p| p.0),
                column: line_col.map(|p| p.1),
                field: field.to_string(),
                message,
                from_override: None,
            }])
        };
        let mut root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let loc = e.location().map(|l| (l.line(), l.column()));
                return Err(fail(
                    "",
                    loc,
                    format!("invalid YAML: {}", strip_location(&e.to_string())),
                ));
            }
        };
        if root.is_null() {
            return Err(fail(
                "",
                None,
                "the spec is empty; expected a mapping with `name`, `datasets` and `stages`".into(),
            ));
        }
        // `--set` applies to every variant, before the variant's own overrides.
        let mut common: Vec<(Override, Value)> = Vec::new();
        let mut errors = Vec::new();
        for set in sets {
            match parse_set(set) {
                Ok((path, value)) => common.push((
                    Override {
                        path,
                        origin: format!("`--set {set}`"),
                        at: None,
                    },
                    value,
                )),
                Err(msg) => errors.push(SpecError {
                    file: file.to_path_buf(),
                    line: None,
                    column: None,
                    field: String::new(),
                    message: format!("bad `--set {set}`: {msg}"),
                    from_override: None,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(SpecErrors(errors));
        }
        let mut taken = Mapping::new();
        if let Value::Mapping(m) = &mut root {
            for k in VARIANT_KEYS {
                if let Some(v) = m.remove(k) {
                    taken.insert(Value::String(k.into()), v);
                }
            }
        }
        let declared = !taken.is_empty();
        let raw: RawVariants =
            typed(Value::Mapping(taken), "").map_err(|(path, msg)| fail(&path, spans.find(&path), msg))?;
        if raw.repeats == 0 {
            return Err(fail(
                "repeats",
                spans.find("repeats"),
                "repeats must be at least 1".into(),
            ));
        }
        let base_seed = {
            let mut r = root.clone();
            for (o, v) in &common {
                let _ = apply_value(&mut r, &o.path, v.clone());
            }
            r.get("seed").and_then(Value::as_u64).unwrap_or(0)
        };

        // Named variants (with `base`), then matrix combinations, then repeats.
        let mut named: Vec<(String, Vec<(Override, Value)>)> = Vec::new();
        if raw.variants.is_empty() {
            named.push((String::new(), Vec::new()));
        } else {
            named.push(("base".into(), Vec::new()));
            for (vname, body) in &raw.variants {
                let vname = vname.as_str().unwrap_or_default().to_string();
                if vname == "base" {
                    return Err(fail(
                        "variants.base",
                        spans.find("variants.base"),
                        "`base` is the spec without overrides; give this variant another name".into(),
                    ));
                }
                let Value::Mapping(body) = body else {
                    let at = format!("variants.{vname}");
                    return Err(fail(
                        &at,
                        spans.find(&at),
                        "expected a mapping of `stage.param: value` overrides".into(),
                    ));
                };
                let mut list = Vec::new();
                for (k, v) in body {
                    let path = k.as_str().unwrap_or_default().to_string();
                    let at = format!("variants.{vname}.{path}");
                    list.push((
                        Override {
                            path,
                            origin: format!("variant `{vname}`"),
                            at: Some(at),
                        },
                        v.clone(),
                    ));
                }
                named.push((vname, list));
            }
        }
        let axes: Vec<(String, Vec<Value>)> = raw
            .matrix
            .iter()
            .map(|(k, v)| {
                let path = k.as_str().unwrap_or_default().to_string();
                match v {
                    Value::Sequence(vals) if !vals.is_empty() => Ok((path, vals.clone())),
                    _ => {
                        let at = format!("matrix.{path}");
                        Err(fail(&at, spans.find(&at), "expected a non-empty list of values".into()))
                    }
                }
            })
            .collect::<Result<_, _>>()?;
        // `*.param` stands for every stage that has `param` (e.g. `*.train_size` sets the label
        // budget of every classifier at once); resolved against the spec without variants.
        let wildcard_targets = |path: &str| -> Result<Vec<String>, SpecErrors> {
            let Some(field) = path.strip_prefix("*.") else {
                return Ok(vec![path.to_string()]);
            };
            let base = Spec::build(file, &spans, root.clone(), &common, "")?;
            let hits: Vec<String> = base
                .stages
                .iter()
                .filter(|st| st.stage.params().get(field).is_some())
                .map(|st| format!("{}.{field}", st.name))
                .collect();
            if hits.is_empty() {
                let at = format!("matrix.{path}");
                return Err(fail(
                    &at,
                    spans.find(&at),
                    format!("no stage has a parameter `{field}`"),
                ));
            }
            Ok(hits)
        };
        let mut targets: Vec<Vec<String>> = Vec::new();
        for (path, _) in &axes {
            targets.push(wildcard_targets(path)?);
        }
        let short = |path: &str| -> String {
            let last = path.rsplit('.').next().unwrap_or(path);
            let clash = axes.iter().filter(|(p, _)| p.rsplit('.').next() == Some(last)).count() > 1;
            let clash = clash && !path.starts_with("*.");
            if clash {
                path.to_string()
            } else {
                last.to_string()
            }
        };
        let mut combos: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
        for (a, (_, vals)) in axes.iter().enumerate() {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    (0..vals.len()).map(move |i| {
                        let mut c = c.clone();
                        c.push((a, i));
                        c
                    })
                })
                .collect();
        }

        let mut variants = Vec::new();
        let mut definitions = Vec::new();
        let mut errors: Vec<SpecError> = Vec::new();
        for (vname, vover) in &named {
            for combo in &combos {
                for r in 0..raw.repeats {
                    let mut parts: Vec<String> = Vec::new();
                    if !vname.is_empty() {
                        parts.push(vname.clone());
                    }
                    let mut over = common.clone();
                    over.extend(vover.iter().cloned());
                    let mut def: Vec<(String, String)> = vover.iter().map(|(o, v)| (o.path.clone(), show(v))).collect();
                    for &(a, i) in combo {
                        let (path, vals) = &axes[a];
                        parts.push(format!("{}={}", short(path), show(&vals[i])));
                        def.push((path.clone(), show(&vals[i])));
                        for target in &targets[a] {
                            let o = Override {
                                path: target.clone(),
                                origin: format!("matrix `{path}`"),
                                at: Some(format!("matrix.{path}")),
                            };
                            over.push((o, vals[i].clone()));
                        }
                    }
                    if raw.repeats > 1 {
                        let Some(seed) = base_seed.checked_add(r) else {
                            return Err(fail(
                                "repeats",
                                spans.find("repeats"),
                                format!(
                                    "seed {base_seed} plus {} repeats overflows a 64-bit seed; use a smaller seed",
                                    raw.repeats
                                ),
                            ));
                        };
                        parts.push(format!("seed={seed}"));
                        def.push(("seed".into(), seed.to_string()));
                        over.push((
                            Override {
                                path: "seed".into(),
                                origin: "`repeats`".into(),
                                at: Some("repeats".into()),
                            },
                            Value::from(seed),
                        ));
                    }
                    let name = parts.join(",");
                    match Spec::build(file, &spans, root.clone(), &over, &name) {
                        Ok(spec) => {
                            variants.push(spec);
                            definitions.push(def);
                        }
                        Err(SpecErrors(es)) => {
                            for e in es {
                                if !errors.contains(&e) {
                                    errors.push(e);
                                }
                            }
                        }
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(SpecErrors(errors));
        }
        let _ = declared;
        let name = variants[0].name.clone();
        Ok(Study {
            file: file.to_path_buf(),
            name,
            variants,
            definitions,
            repeats: raw.repeats,
        })
    }

    /// Display name of a stage in a variant: `stage@variant`, or `stage` without variants.
    pub fn display(spec: &Spec, stage: &str) -> String {
        if spec.variant.is_empty() {
            stage.to_string()
        } else {
            format!("{stage}@{}", spec.variant)
        }
    }

    /// Finds `stage` or `stage@variant`.
    pub fn find(&self, name: &str) -> Option<(&Spec, &StageSpec)> {
        let (stage, variant) = name.split_once('@').unwrap_or((name, ""));
        let spec = self.variants.iter().find(|v| v.variant == variant).or_else(|| {
            if variant.is_empty() && self.variants.len() == 1 {
                self.variants.first()
            } else {
                None
            }
        })?;
        Some((spec, spec.stage(stage)?))
    }
}

/// A YAML value as it appears in a variant name or report.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// The variant keys of a spec.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawVariants {
    #[serde(default)]
    variants: Mapping,
    #[serde(default)]
    matrix: Mapping,
    #[serde(default = "one")]
    repeats: u64,
}

fn one() -> u64 {
    1
}

/// Top-level shape of a spec. Unknown keys are errors.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    datasets: Mapping,
    stages: Mapping,
    #[serde(default)]
    executor: crate::resources::ExecutorSpec,
}

/// The JSON Schema of one `datasets:` entry (src/schema.rs).
pub fn dataset_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<RawDataset>()
}

/// One `datasets:` entry.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dataset")]
struct RawDataset {
    path: String,
    #[serde(default)]
    format: Option<Format>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

/// State while checking one spec: where things are and what went wrong so far.
struct Ctx {
    file: PathBuf,
    spans: SpanIndex,
    overrides: Vec<Override>,
    errors: Vec<SpecError>,
}

impl Ctx {
    fn push(&mut self, field: &str, message: &str) {
        let e = locate(&self.file, &self.spans, &self.overrides, field, message.to_string());
        self.errors.push(e);
    }

    fn fail(&mut self, field: &str, message: &str) -> SpecErrors {
        self.push(field, message);
        SpecErrors(std::mem::take(&mut self.errors))
    }

    /// Dataset and stage names must be plain identifiers: they become file names and CLI words.
    fn key_name(&mut self, key: &Value, section: &str) -> Option<String> {
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

    fn dataset(&mut self, name: &str, d: RawDataset, base: &Path) -> Option<DatasetSpec> {
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
                            "cannot tell the format of `{}` from its extension; add `format:` (one of csv, tsv, jsonl, txt)",
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

    fn stage(&mut self, name: &str, value: Value) -> Option<(&'static stages::Kind, Box<dyn Stage>)> {
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
        match (entry.parse)(Value::Mapping(map), &at) {
            Ok(stage) => {
                let problems = stage.check();
                if problems.is_empty() {
                    Some((entry, stage))
                } else {
                    for (field, msg) in problems {
                        let path = if field.is_empty() {
                            at.clone()
                        } else {
                            format!("{at}.{field}")
                        };
                        self.push(&path, &msg);
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

/// Deserialises a `Value` into `T`, returning the failing field path (prefixed by `at`) and a
/// message on error. Stage kinds use this for their parameter structs.
pub fn typed<T: serde::de::DeserializeOwned>(value: Value, at: &str) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = String::new();
        for seg in e.path().iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                Segment::Map { key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Enum { variant } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(variant);
                }
                Segment::Unknown => {}
            }
        }
        let msg = e.inner().to_string();
        // For `unknown field`, serde reports the path of the enclosing mapping; point at the key.
        let unknown = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next());
        if let Some(field) = unknown.filter(|f| path != *f && !path.ends_with(&format!(".{f}"))) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
        let full = match (at.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => at.to_string(),
            (false, false) => format!("{at}.{path}"),
        };
        (full, friendly(&msg))
    })
}

/// Makes serde's messages read as instructions ("expected one of …").
fn friendly(msg: &str) -> String {
    let m = strip_location(msg);
    if let Some(rest) = m.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return format!("missing required field `{field}`");
    }
    m.replace("invalid type: ", "wrong type: found ")
        .replace(
            "expected struct RawSpec",
            "expected a mapping with `name`, `datasets` and `stages`",
        )
        .replace(
            "expected struct RawDataset",
            "expected a mapping with `path` (and optionally `format`, `text`, `label`)",
        )
        .replace(
            "expected struct EncoderSpec",
            "expected a mapping like `{ type: bag, dim: 64 }`",
        )
        .replace("found sequence", "found a list")
        .replace("found map,", "found a mapping,")
        .replace("u32", "a non-negative integer")
        .replace("u64", "a non-negative integer")
        .replace("usize", "a non-negative integer")
        .replace("f64", "a number")
        .replace("f32", "a number")
        .replace("expected struct ", "expected a mapping for ")
}

fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

fn locate(file: &Path, spans: &SpanIndex, overrides: &[Override], field: &str, message: String) -> SpecError {
    let o = overrides.iter().rev().find(|o| {
        let p = &o.path;
        field == p || field.starts_with(&format!("{p}.")) || field.starts_with(&format!("{p}["))
    });
    let from_override = o.map(|o| o.origin.clone());
    let pos = match o.and_then(|o| o.at.as_deref()) {
        Some(at) => spans.find(at),
        None => spans.find(field),
    };
    SpecError {
        file: file.to_path_buf(),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        field: field.to_string(),
        message,
        from_override,
    }
}

const TOP_LEVEL_KEYS: [&str; 4] = ["name", "seed", "datasets", "stages"];

/// Keys that describe variants; they are read (and removed) before the spec is typed.
const VARIANT_KEYS: [&str; 3] = ["variants", "matrix", "repeats"];

/// Reads one `--set path=value`. The value is read as YAML, so numbers, booleans and `[a, b]`
/// lists get their natural types.
fn parse_set(set: &str) -> Result<(String, Value), String> {
    let Some((path, raw)) = set.split_once('=') else {
        return Err("expected `path.to.param=value`".into());
    };
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| format!("cannot read value `{raw}`: {}", strip_location(&e.to_string())))?;
    Ok((path.trim().to_string(), value))
}

/// Puts `value` at a dotted `path` of the tree and returns the normalised path. A path whose
/// first segment is not a top-level key is taken relative to `stages`. Only existing mappings
/// are entered, and a mapping is never replaced wholesale, so a typo cannot silently add a
/// stage.
fn apply_value(root: &mut Value, path: &str, value: Value) -> Result<String, String> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(format!("`{path}` is not a dotted path like `stage.param`"));
    }
    let mut segs: Vec<&str> = path.split('.').collect();
    if !TOP_LEVEL_KEYS.contains(&segs[0]) {
        segs.insert(0, "stages");
    }
    let full = segs.join(".");
    let mut node = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let Value::Mapping(map) = node else {
            return Err(format!(
                "`{}` is not a mapping, so it has no field `{seg}`",
                segs[..i].join(".")
            ));
        };
        if last {
            if let Some(Value::Mapping(_)) = map.get(*seg) {
                return Err(format!(
                    "`{full}` is a mapping; an override replaces single values, name a field inside it"
                ));
            }
            map.insert(Value::String((*seg).to_string()), value);
            break;
        }
        if !map.contains_key(*seg) {
            let here = if i == 0 {
                "the spec".to_string()
            } else {
                format!("`{}`", segs[..i].join("."))
            };
            let known: Vec<String> = map.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
            return Err(format!("{here} has no `{seg}` (found: {})", known.join(", ")));
        }
        node = map.get_mut(*seg).expect("checked above");
    }
    Ok(full)
}

/// Field path → (line, column), both 1-based, built from the YAML event stream.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<String, (usize, usize)>,
}

impl SpanIndex {
    /// Builds the index; a text that does not parse yields an empty index (serde_yaml reports
    /// the syntax error with its own location).
    pub fn build(text: &str) -> SpanIndex {
        let mut b = SpanBuilder::default();
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        SpanIndex { spans: b.spans }
    }

    /// The position of `field`, or of its nearest ancestor that is in the file.
    pub fn find(&self, field: &str) -> Option<(usize, usize)> {
        let mut f = field.to_string();
        loop {
            if let Some(p) = self.spans.get(&f) {
                return Some(*p);
            }
            let cut = f.rfind(['.', '['])?;
            f.truncate(cut);
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct SpanBuilder {
    stack: Vec<Frame>,
    spans: HashMap<String, (usize, usize)>,
}

impl SpanBuilder {
    /// Path of the value about to be read in the current container.
    fn child_path(&self) -> Option<String> {
        match self.stack.last()? {
            Frame::Map { path, key: Some(k) } => Some(join(path, k)),
            Frame::Map { key: None, .. } => None,
            Frame::Seq { path, index } => Some(format!("{path}[{index}]")),
        }
    }

    fn value_done(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key, .. }) => *key = None,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for SpanBuilder {
    fn on_event(&mut self, ev: yaml_rust2::parser::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::parser::Event;
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(s, ..) => {
                if let Some(Frame::Map { path, key: key @ None }) = self.stack.last_mut() {
                    let p = join(path, &s);
                    *key = Some(s);
                    self.spans.entry(p).or_insert(pos);
                } else {
                    if let Some(p) = self.child_path() {
                        self.spans.entry(p).or_insert(pos);
                    }
                    self.value_done();
                }
            }
            Event::Alias(_) => self.value_done(),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = match self.stack.last() {
                    None => String::new(),
                    Some(_) => self.child_path().unwrap_or_default(),
                };
                if matches!(self.stack.last(), Some(Frame::Seq { .. })) {
                    self.spans.entry(path.clone()).or_insert(pos);
                }
                if matches!(ev, Event::MappingStart(..)) {
                    self.stack.push(Frame::Map { path, key: None });
                } else {
                    self.stack.push(Frame::Seq { path, index: 0 });
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.value_done();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_index_finds_nested_fields() {
        let text = "name: x\nstages:\n  tok:\n    kind: tokenize\n    fit_on: [a, b]\n";
        let s = SpanIndex::build(text);
        assert_eq!(s.find("name"), Some((1, 1)));
        assert_eq!(s.find("stages.tok.kind"), Some((4, 5)));
        assert_eq!(s.find("stages.tok.fit_on"), Some((5, 5)));
        assert_eq!(s.find("stages.tok.fit_on[1]").map(|p| p.0), Some(5));
        // A field absent from the file falls back to its parent.
        assert_eq!(s.find("stages.tok.vocab_size"), Some((3, 3)));
    }

    #[test]
    fn override_paths_default_to_stages() {
        let mut v: Value = serde_yaml::from_str("name: x\nstages:\n  tok: {kind: tokenize, vocab_size: 10}\n").unwrap();
        let set = |v: &mut Value, s: &str| parse_set(s).and_then(|(p, val)| apply_value(v, &p, val));
        assert_eq!(set(&mut v, "tok.vocab_size=20").unwrap(), "stages.tok.vocab_size");
        assert_eq!(v["stages"]["tok"]["vocab_size"], Value::from(20));
        set(&mut v, "seed=3").unwrap();
        assert_eq!(v["seed"], Value::from(3));
        assert!(set(&mut v, "nope.x=1").unwrap_err().contains("has no `nope`"));
        assert!(set(&mut v, "tok").is_err());
        assert!(set(&mut v, "stages.tok=1").unwrap_err().contains("mapping"));
    }

    #[test]
    fn variants_matrix_and_repeats_expand_with_located_errors() {
        let text = "name: x\nseed: 5\ndatasets:\n  d: { path: d.txt }\nstages:\n  tok: { kind: tokenize, fit_on: [d], vocab_size: 100 }\n  seqs: { kind: pad, from: tok }\nvariants:\n  short: { seqs.max_len: 8 }\nmatrix:\n  tok.vocab_size: [100, 200, 300]\nrepeats: 2\n";
        let st = Study::parse(Path::new("x.yaml"), text, &[]).unwrap();
        assert_eq!(st.variants.len(), 2 * 3 * 2);
        let names: Vec<&str> = st.variants.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(names[0], "base,vocab_size=100,seed=5");
        assert!(names.contains(&"short,vocab_size=300,seed=6"));
        assert_eq!(st.variants[1].seed, 6);
        let bad = text.replace("seqs.max_len: 8", "seqs.max_len: eight");
        let e = Study::parse(Path::new("x.yaml"), &bad, &[]).unwrap_err().0;
        assert_eq!(e[0].field, "stages.seqs.max_len");
        assert_eq!(e[0].line, Some(9), "points at the variant's line: {e:?}");
        assert_eq!(e[0].from_override.as_deref(), Some("variant `short`"));
        let bad = text.replace("seqs.max_len: 8", "seqz.max_len: 8");
        let e = Study::parse(Path::new("x.yaml"), &bad, &[]).unwrap_err().0;
        assert!(e[0].message.contains("has no `seqz`"), "{e:?}");
        assert_eq!(e[0].line, Some(9));
    }
}
