//! Keys and freshness: what a run would do, and why.
//!
//! A stage's **key** is the blake3 of its [`Fingerprint`]: the kind and its format version, the
//! canonical parameters, the seed (only for stages that use it) and the keys of its inputs. An
//! input dataset's key hashes the file's *content* plus how it is read (format, columns); an
//! input stage's key is that stage's key. Keys therefore chain: all keys are known before
//! anything runs, and a stage is **fresh** exactly when its key is in the store.
//!
//! What invalidates what, and the typed reason `status` gives for each, is the table in
//! [`crate::fingerprint`].

use std::collections::BTreeMap;

use anyhow::Result;

use crate::fingerprint::{Fingerprint, InputPrint, StaleReason};
use crate::graph::Dag;
use crate::spec::{Spec, SpecError, SpecErrors, Study};
use crate::stages::Want;
use crate::workspace::{FileHashes, State, Workspace};

/// One stage of one variant as the plan sees it.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Index into `study.variants`, and into that spec's `stages`.
    pub variant: usize,
    pub index: usize,
    /// The stage's name in the spec.
    pub stage: String,
    /// `stage@variant` (just `stage` when the spec has no variants).
    pub name: String,
    pub key: String,
    pub fingerprint: Fingerprint,
    /// The key is in the store.
    pub fresh: bool,
    /// Why the stage must run (empty when fresh).
    pub reasons: Vec<StaleReason>,
    /// The job that produces this stage's key.
    pub job: usize,
}

impl Planned {
    /// What this stage's artefact is (from its kind in the registry).
    pub fn produces(&self) -> Option<crate::stages::Product> {
        crate::stages::product_of(&self.fingerprint.kind)
    }
}

/// One unit of work: a distinct key. Stages of several variants with the same key share it.
#[derive(Debug, Clone)]
pub struct Job {
    pub key: String,
    /// The first stage (in variant order) with this key: it is the one that runs.
    pub first: (usize, usize),
    /// Jobs whose artefacts this one reads.
    pub upstream: Vec<usize>,
    pub downstream: Vec<usize>,
}

#[derive(Debug)]
pub struct Plan {
    /// Per variant, the stages in that variant's topological order.
    pub stages: Vec<Vec<Planned>>,
    /// Distinct keys, each after the jobs it reads.
    pub jobs: Vec<Job>,
}

impl Plan {
    /// Every planned stage, variant by variant, each variant in topological order.
    pub fn all(&self) -> impl Iterator<Item = &Planned> {
        self.stages.iter().flatten()
    }

    pub fn find(&self, name: &str) -> Option<&Planned> {
        self.all().find(|p| p.name == name)
    }

    pub fn planned(&self, job: usize) -> &Planned {
        let (v, i) = self.jobs[job].first;
        self.stages[v].iter().find(|p| p.index == i).expect("job planned")
    }
}

/// Computes every stage's key and freshness for every variant. Dataset files are hashed (with
/// the size+mtime shortcut); a missing or unreadable file, or a missing column, is a spec error.
pub fn plan(study: &Study, ws: &Workspace) -> Result<Plan, PlanError> {
    let mut hashes = ws.load_hashes();
    let state = ws.load_state(&study.name);
    let mut stages = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut job_of: BTreeMap<String, usize> = BTreeMap::new();
    for (v, spec) in study.variants.iter().enumerate() {
        let mut planned = plan_variant(spec, v, ws, &state, &mut hashes)?;
        for p in planned.iter_mut() {
            let job = match job_of.get(&p.key) {
                Some(&j) => j,
                None => {
                    let upstream: Vec<usize> = p
                        .fingerprint
                        .inputs
                        .values()
                        .filter(|i| i.kind == "stage")
                        .map(|i| job_of[&i.key])
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    jobs.push(Job {
                        key: p.key.clone(),
                        first: (v, p.index),
                        upstream,
                        downstream: Vec::new(),
                    });
                    job_of.insert(p.key.clone(), jobs.len() - 1);
                    jobs.len() - 1
                }
            };
            p.job = job;
        }
        stages.push(planned);
    }
    for j in 0..jobs.len() {
        for u in jobs[j].upstream.clone() {
            jobs[u].downstream.push(j);
        }
    }
    hashes.save().map_err(PlanError::Other)?;
    Ok(Plan { stages, jobs })
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    #[error(transparent)]
    Other(anyhow::Error),
}

fn plan_variant(
    spec: &Spec,
    v: usize,
    ws: &Workspace,
    state: &State,
    hashes: &mut FileHashes,
) -> Result<Vec<Planned>, PlanError> {
    let dag = Dag::build(spec)?;
    let dataset_keys = dataset_keys(spec, Some(hashes))?;
    let mut keys: Vec<Option<String>> = vec![None; spec.stages.len()];
    let mut planned = Vec::new();
    for &i in &dag.order {
        let s = &spec.stages[i];
        let mut inputs = BTreeMap::new();
        for inp in s.stage.inputs() {
            let print = match inp.want {
                Want::Dataset => InputPrint {
                    kind: "dataset".into(),
                    key: dataset_keys[&inp.name].clone(),
                    path: Some(spec.datasets[&inp.name].rel_path.clone()),
                },
                Want::Stage(_) => {
                    let j = spec
                        .stages
                        .iter()
                        .position(|t| t.name == inp.name)
                        .expect("checked by graph");
                    InputPrint {
                        kind: "stage".into(),
                        key: keys[j].clone().expect("topological order"),
                        path: None,
                    }
                }
            };
            inputs.insert(inp.name.clone(), print);
        }
        let fingerprint = Fingerprint {
            kind: s.kind.name.to_string(),
            version: s.kind.version,
            params: s.stage.params(),
            seed: s.stage.uses_seed().then_some(spec.seed),
            inputs,
        };
        let key = fingerprint.key();
        let name = Study::display(spec, &s.name);
        let fresh = ws.store.lookup(&key).is_some();
        let reasons = if fresh {
            Vec::new()
        } else {
            let prev = state.stages.get(&name).map(|r| (r.key.as_str(), &r.fingerprint));
            fingerprint.stale_reasons(&key, prev)
        };
        keys[i] = Some(key.clone());
        planned.push(Planned {
            variant: v,
            index: i,
            stage: s.name.clone(),
            name,
            key,
            fingerprint,
            fresh,
            reasons,
            job: 0,
        });
    }
    Ok(planned)
}

/// Checks that every dataset file exists and has its columns (reads only file heads).
pub fn check_datasets(spec: &Spec) -> Result<(), SpecErrors> {
    dataset_keys(spec, None).map(|_| ())
}

/// Keys of the datasets; checks files and columns first. Without `hashes`, only checks.
fn dataset_keys(spec: &Spec, mut hashes: Option<&mut FileHashes>) -> Result<BTreeMap<String, String>, SpecErrors> {
    let mut errors: Vec<SpecError> = Vec::new();
    let mut keys = BTreeMap::new();
    for (name, d) in &spec.datasets {
        let field = format!("datasets.{name}.path");
        let folder_ok = d.format == crate::dataset::Format::Txt && d.path.is_dir();
        if !d.path.is_file() && !folder_ok {
            let why = if d.path.exists() {
                "is a folder (only `txt` datasets may be folders of .txt files)"
            } else {
                "does not exist"
            };
            errors.push(spec.error_at(
                &field,
                format!(
                    "dataset file `{}` {why} (paths are relative to the spec file)",
                    d.path.display()
                ),
            ));
            continue;
        }
        if let Err(e) = d.check_columns() {
            let f = match &e {
                crate::dataset::DataError::MissingColumn { column, .. } if Some(column) == d.label.as_ref() => {
                    format!("datasets.{name}.label")
                }
                crate::dataset::DataError::MissingColumn { .. } => format!("datasets.{name}.text"),
                _ => field.clone(),
            };
            errors.push(spec.error_at(&f, e.to_string()));
            continue;
        }
        let Some(hashes) = hashes.as_deref_mut() else {
            continue;
        };
        match hashes.hash(&d.path) {
            Ok(content) => {
                let how = serde_json::json!({"content": content, "format": d.format, "text": d.text, "label": d.label});
                keys.insert(
                    name.clone(),
                    blake3::hash(how.to_string().as_bytes()).to_hex().to_string(),
                );
            }
            Err(e) => errors.push(spec.error_at(&field, format!("cannot read `{}`: {e}", d.path.display()))),
        }
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        Err(SpecErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const SPEC: &str = "name: t
datasets:
  d: { path: DATA }
stages:
  tok: { kind: tokenize, fit_on: [d], vocab_size: 100 }
  seqs: { kind: pad, from: tok }
  a: { kind: finetune, from: seqs, train: d, epochs: 1 }
  b: { kind: finetune, from: seqs, train: d, epochs: 3 }
  ev_a: { kind: evaluate, model: a, from: seqs, data: d }
";

    /// The keys of every stage of `SPEC` with its dataset at `data`, after `sets`.
    fn keys(dir: &Path, data: &str, sets: &[&str]) -> BTreeMap<String, String> {
        let text = SPEC.replace("DATA", data);
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let study = Study::parse(&dir.join("t.yaml"), &text, &sets).unwrap();
        let ws = Workspace::open(&dir.join("ws")).unwrap();
        let plan = plan(&study, &ws).unwrap();
        plan.all().map(|p| (p.name.clone(), p.key.clone())).collect()
    }

    fn project() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let rows: String = (0..20).map(|i| format!("word{i} text,{}\n", i % 2)).collect();
        std::fs::write(dir.path().join("d.csv"), format!("text,label\n{rows}")).unwrap();
        dir
    }

    #[test]
    fn a_parameter_changes_its_stage_and_what_reads_it_only() {
        let dir = project();
        let base = keys(dir.path(), "d.csv", &[]);
        assert_eq!(base, keys(dir.path(), "d.csv", &[]), "planning twice gives other keys");
        let changed = keys(dir.path(), "d.csv", &["a.epochs=2"]);
        let moved: Vec<&String> = base.keys().filter(|n| base[*n] != changed[*n]).collect();
        assert_eq!(moved, ["a", "ev_a"]);
        let upstream = keys(dir.path(), "d.csv", &["tok.vocab_size=50"]);
        assert!(base.keys().all(|n| base[n] != upstream[n]), "every stage reads tok");
    }

    /// Dataset identity is content: the same bytes under another name and folder plan the same
    /// keys; other bytes under the same name do not.
    #[test]
    fn a_dataset_is_keyed_by_its_bytes_not_its_path() {
        let dir = project();
        let base = keys(dir.path(), "d.csv", &[]);
        std::fs::create_dir(dir.path().join("moved")).unwrap();
        std::fs::copy(dir.path().join("d.csv"), dir.path().join("moved/renamed.csv")).unwrap();
        assert_eq!(base, keys(dir.path(), "moved/renamed.csv", &[]));
        std::fs::write(dir.path().join("d.csv"), "text,label\nother words,0\nmore words,1\n").unwrap();
        let edited = keys(dir.path(), "d.csv", &[]);
        assert!(base.keys().all(|n| base[n] != edited[n]));
    }

    #[test]
    fn stages_with_the_same_key_share_one_job() {
        let dir = project();
        let text = SPEC.replace("DATA", "d.csv") + "variants:\n  longer: { a.epochs: 2 }\n";
        let study = Study::parse(&dir.path().join("t.yaml"), &text, &[]).unwrap();
        let ws = Workspace::open(&dir.path().join("ws")).unwrap();
        let plan = plan(&study, &ws).unwrap();
        // 2 variants × 5 stages, but only a and ev_a differ: 5 + 2 jobs.
        assert_eq!(plan.all().count(), 10);
        assert_eq!(plan.jobs.len(), 7);
        let tok = plan.find("tok@longer").unwrap();
        assert_eq!(tok.job, plan.find("tok@base").unwrap().job);
        assert_ne!(plan.find("a@longer").unwrap().job, plan.find("a@base").unwrap().job);
        // Each job comes after the jobs it reads.
        for (j, job) in plan.jobs.iter().enumerate() {
            assert!(job.upstream.iter().all(|&u| u < j), "job {j} before its input");
        }
    }
}
