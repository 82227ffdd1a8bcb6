//! A spec file expanded into its variants: `variants:`, `matrix:` (with `*.param` wildcards)
//! and `repeats:`; each combination becomes a full [`Spec`].

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::overrides::{apply_value, parse_set, VARIANT_KEYS};
use super::raw::{typed, RawVariants};
use super::{Override, SpanIndex, Spec, SpecError, SpecErrors, StageSpec};
use crate::typed::strip_location;

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

/// The most variants one spec may expand to.
pub const MAX_VARIANTS: u64 = 10_000;

impl Study {
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
        // Every variant is a whole spec in memory and a set of stages to plan: a study is
        // capped, so that `repeats: 4294967296` is an error, not a machine out of memory.
        let count = axes
            .iter()
            .try_fold(named.len() as u64, |n, (_, v)| n.checked_mul(v.len() as u64))
            .and_then(|n| n.checked_mul(raw.repeats));
        if count.is_none_or(|n| n > MAX_VARIANTS) {
            let (field, what) = if raw.repeats > MAX_VARIANTS {
                ("repeats", format!("repeats {} is too many", raw.repeats))
            } else {
                let shown = count.map_or("more than 2^64".to_string(), |n| n.to_string());
                (
                    "matrix",
                    format!("the study expands to {shown} variants (variants × matrix values × repeats)"),
                )
            };
            return Err(fail(
                field,
                spans.find(field),
                format!("{what}; at most {MAX_VARIANTS} variants are supported"),
            ));
        }
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
