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
            write!(f, " (value given by `--set {o}`)")?;
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
    /// The `--set` overrides that were applied, by normalised path.
    pub overrides: Vec<(String, String)>,
}

/// One stage of a spec: its name, kind and typed parameters.
#[derive(Debug)]
pub struct StageSpec {
    pub name: String,
    pub kind: &'static stages::Kind,
    pub stage: Box<dyn Stage>,
}

impl Spec {
    /// Reads and validates a spec file, applying `--set` overrides (`path=value`).
    pub fn load(file: &Path, sets: &[String]) -> Result<Spec, SpecErrors> {
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
        Spec::parse(file, &text, sets)
    }

    /// Parses spec text; `file` is used for messages and to resolve dataset paths.
    pub fn parse(file: &Path, text: &str, sets: &[String]) -> Result<Spec, SpecErrors> {
        let mut ctx = Ctx {
            file: file.to_path_buf(),
            spans: SpanIndex::build(text),
            overrides: Vec::new(),
            errors: Vec::new(),
        };
        let mut root: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let loc = e.location();
                return Err(SpecErrors(vec![SpecError {
                    file: ctx.file.clone(),
                    line: loc.as_ref().map(|l| l.line()),
                    column: loc.as_ref().map(|l| l.column()),
                    field: String::new(),
                    message: format!("invalid YAML: {}", strip_location(&e.to_string())),
                    from_override: None,
                }]));
            }
        };
        if root.is_null() {
            return Err(ctx.fail(
                "",
                "the spec is empty; expected a mapping with `name`, `datasets` and `stages`",
            ));
        }
        for set in sets {
            if let Err(msg) = apply_override(&mut root, set, &mut ctx.overrides) {
                ctx.errors.push(SpecError {
                    file: ctx.file.clone(),
                    line: None,
                    column: None,
                    field: String::new(),
                    message: format!("bad `--set {set}`: {msg}"),
                    from_override: None,
                });
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    overrides: Vec<(String, String)>,
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

fn locate(file: &Path, spans: &SpanIndex, overrides: &[(String, String)], field: &str, message: String) -> SpecError {
    let from_override = overrides
        .iter()
        .rev()
        .find(|(p, _)| field == p || field.starts_with(&format!("{p}.")) || field.starts_with(&format!("{p}[")))
        .map(|(p, v)| format!("{p}={v}"));
    let pos = spans.find(field);
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

/// Applies one `--set path=value` to the tree. The value is read as YAML, so numbers, booleans
/// and `[a, b]` lists get their natural types.
fn apply_override(root: &mut Value, set: &str, applied: &mut Vec<(String, String)>) -> Result<(), String> {
    let Some((path, raw)) = set.split_once('=') else {
        return Err("expected `path.to.param=value`".into());
    };
    let path = path.trim();
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(format!("`{path}` is not a dotted path like `stage.param`"));
    }
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| format!("cannot read value `{raw}`: {}", strip_location(&e.to_string())))?;
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
                    "`{full}` is a mapping; `--set` replaces single values, name a field inside it"
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
    applied.push((full, raw.to_string()));
    Ok(())
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
        let mut applied = Vec::new();
        apply_override(&mut v, "tok.vocab_size=20", &mut applied).unwrap();
        assert_eq!(v["stages"]["tok"]["vocab_size"], Value::from(20));
        apply_override(&mut v, "seed=3", &mut applied).unwrap();
        assert_eq!(v["seed"], Value::from(3));
        assert!(apply_override(&mut v, "nope.x=1", &mut applied)
            .unwrap_err()
            .contains("has no `nope`"));
        assert!(apply_override(&mut v, "tok", &mut applied).is_err());
        assert!(apply_override(&mut v, "stages.tok=1", &mut applied)
            .unwrap_err()
            .contains("mapping"));
    }
}
