//! `warmstart schema`: a JSON Schema (draft 2020-12) of the spec file, for editors
//! (`# yaml-language-server: $schema=…` on the first line of a pipeline) and other tools.
//!
//! Why generated: the schema is derived (schemars) from the very structs that parse the spec —
//! each stage kind's parameter struct through its [`Kind::schema`](crate::stages::Kind), the
//! dataset entry from `spec/raw.rs` — so a field added, renamed or given a default shows up here
//! without a second place to edit. Only the top level (name, seed, datasets, stages,
//! variants, matrix, repeats; `executor` is derived too) is written out by hand, because `spec/` reads it in two steps.
//! `warmstart.schema.json` at the repository root is this output, checked by a test.
//!
//! What the schema cannot say: that names in `from`, `train`, `data`, … exist, that the stages
//! form no cycle, value ranges that depend on other fields. `warmstart validate` checks those.

use serde_json::{json, Value};

use crate::stages::REGISTRY;

/// The schema, as pretty-printable JSON.
pub fn spec_schema() -> Value {
    let mut g = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut branches = Vec::new();
    let mut kinds = Vec::new();
    for k in REGISTRY {
        let mut s = (k.schema)(&mut g).to_value();
        // Each kind's struct denies unknown fields; `kind` itself is the discriminator.
        if let Some(props) = s.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("kind".into(), json!({ "const": k.name }));
        }
        if let Some(obj) = s.as_object_mut() {
            obj.remove("$schema");
            obj.insert("description".into(), json!(k.summary));
            match obj.get_mut("required").and_then(Value::as_array_mut) {
                Some(req) => req.push(json!("kind")),
                None => {
                    obj.insert("required".into(), json!(["kind"]));
                }
            }
        }
        kinds.push(json!(k.name));
        branches.push(json!({
            "if": { "properties": { "kind": { "const": k.name } }, "required": ["kind"] },
            "then": s,
        }));
    }
    let dataset = crate::spec::dataset_schema(&mut g).to_value();
    let executor = g.subschema_for::<crate::resources::ExecutorSpec>().to_value();
    let defs = g.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "warmstart pipeline spec",
        "description": "A DAG of stages over named datasets (README.md, docs: `warmstart schema`).",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "stages"],
        "properties": {
            "name": { "type": "string", "description": "Names the pipeline (reports, run records)." },
            "seed": { "type": "integer", "minimum": 0, "description": "Pipeline seed; repeats derive theirs from it." },
            "datasets": {
                "type": "object",
                "description": "Named datasets: csv/tsv/jsonl files or folders of .txt.",
                "additionalProperties": dataset,
            },
            "stages": {
                "type": "object",
                "description": "Named stages; `kind` picks the stage kind.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": { "kind": { "enum": kinds } },
                    "allOf": branches,
                },
            },
            "variants": {
                "type": "object",
                "description": "Named variants: each maps `stage.field` paths to values.",
                "additionalProperties": { "type": "object" },
            },
            "matrix": {
                "type": "object",
                "description": "`stage.field` (or `*.field`) paths to lists of values; every combination is a variant.",
                "additionalProperties": { "type": "array", "minItems": 1 },
            },
            "repeats": { "type": "integer", "minimum": 1, "description": "Runs per variant, each with its own seed." },
            "executor": executor,
        },
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    /// The committed `warmstart.schema.json` is what the code generates (regenerate with
    /// `target/release/warmstart schema > warmstart.schema.json`).
    #[test]
    fn the_committed_schema_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("warmstart.schema.json");
        let committed: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("warmstart.schema.json")).expect("valid JSON");
        assert!(
            committed == super::spec_schema(),
            "warmstart.schema.json is stale: run `target/release/warmstart schema > warmstart.schema.json`"
        );
    }
}
