//! Fingerprints: everything that determines a stage's output, and the typed reason a stage is
//! stale.
//!
//! A stage's **key** is the blake3 of its [`Fingerprint`]: the kind and its format version, the
//! canonical parameters, the seed (only for stages that use it) and the keys of its inputs. An
//! input dataset's key hashes the file's *content* plus how it is read (format, columns); an
//! input stage's key is that stage's key. Keys therefore chain: all keys are known before
//! anything runs (`crate::plan`), and a stage is **fresh** exactly when its key is in the store.
//!
//! | what changed                        | effect on keys                          | [`StaleReason`] (`status` says)          |
//! |-------------------------------------|-----------------------------------------|------------------------------------------|
//! | nothing                             | none                                    | — (fresh)                                |
//! | a dataset's mtime only (`touch`)    | none (content hash is the same)         | — (fresh)                                |
//! | a dataset's content                 | its readers and everything downstream   | `InputFile`: input file `P` changed      |
//! | a dataset's path only (moved, same bytes) | none (the path is not in the key) | — (fresh)                                |
//! | a parameter of stage S              | S and everything downstream             | `Param`: param `X` changed (a → b)       |
//! | a parameter given or dropped        | S and everything downstream             | `ParamAdded` / `ParamRemoved`            |
//! | an upstream stage's key             | this stage                              | `Upstream`: upstream stage `U` changed   |
//! | the seed                            | stages that use the seed, and downstream| `Seed`: seed changed (a → b)             |
//! | warmstart's format version of a kind| that kind and downstream                | `Version`: format version changed (a → b)|
//! | the stage's kind                    | S and everything downstream             | `Kind`: kind changed (a → b)             |
//! | nothing recorded / entry removed    | none                                    | `NeverRun` / `EntryMissing`              |
//! | `--force S`                         | none; S is rerun and its entry replaced | forced (decided by the executor)         |
//!
//! Reasons are found by comparing the fingerprint with the one recorded when the stage last
//! completed in this workspace (`state/<pipeline>.json`, kept by `crate::workspace`). A
//! reverted change is fresh again at once: the old key is still in the store. This module
//! depends on nothing else in the crate, so the planner and the workspace both import it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Everything that determines a stage's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub kind: String,
    pub version: u32,
    pub params: serde_json::Value,
    pub seed: Option<u64>,
    pub inputs: BTreeMap<String, InputPrint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputPrint {
    /// `dataset` or `stage`.
    pub kind: String,
    pub key: String,
    /// For datasets: the path as written in the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Why a stage whose key is not in the store must run: one difference between the recorded
/// fingerprint and the current one, with both values where there are two. `Display` is the
/// sentence `status` and `run` print; `status --json` also gives the typed form (`why`:
/// `{"reason": "param", "name": …, "old": …, "new": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StaleReason {
    /// No run of this stage is recorded in the workspace.
    NeverRun,
    /// The recorded key is the current one, but its entry is gone (removed, or found corrupt).
    EntryMissing,
    Kind {
        old: String,
        new: String,
    },
    Version {
        kind: String,
        old: u32,
        new: u32,
    },
    /// A (flattened, dotted) parameter with its old and new canonical JSON values.
    Param {
        name: String,
        old: String,
        new: String,
    },
    ParamAdded {
        name: String,
        new: String,
    },
    ParamRemoved {
        name: String,
        old: String,
    },
    /// `None`: the stage did not use the seed in that fingerprint.
    Seed {
        old: Option<u64>,
        new: Option<u64>,
    },
    /// A dataset input's content changed (named by its path as written in the spec).
    InputFile {
        path: String,
    },
    Upstream {
        stage: String,
    },
    NewInput {
        name: String,
    },
    /// The keys differ but no field does (e.g. an input removed).
    Definition,
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleReason::NeverRun => write!(f, "never run"),
            StaleReason::EntryMissing => write!(f, "its artefact is missing from the store (removed or found corrupt)"),
            StaleReason::Kind { old, new } => write!(f, "kind changed ({old} → {new})"),
            StaleReason::Version { kind, old, new } => {
                write!(f, "warmstart's format version for `{kind}` changed ({old} → {new})")
            }
            StaleReason::Param { name, old, new } => write!(f, "param `{name}` changed ({old} → {new})"),
            StaleReason::ParamAdded { name, new } => write!(f, "param `{name}` added ({new})"),
            StaleReason::ParamRemoved { name, old } => write!(f, "param `{name}` removed (was {old})"),
            StaleReason::Seed { old, new } => {
                let show = |s: &Option<u64>| s.map(|v| v.to_string()).unwrap_or_else(|| "unused".into());
                write!(f, "seed changed ({} → {})", show(old), show(new))
            }
            StaleReason::InputFile { path } => write!(f, "input file `{path}` changed"),
            StaleReason::Upstream { stage } => write!(f, "upstream stage `{stage}` changed"),
            StaleReason::NewInput { name } => write!(f, "new input `{name}`"),
            StaleReason::Definition => write!(f, "definition changed"),
        }
    }
}

/// The reasons as one line, `; `-separated, as `status` prints them.
pub fn sentences(reasons: &[StaleReason]) -> String {
    reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Fingerprint {
    /// The blake3 of the fingerprint *without* dataset paths: a dataset is identified by its
    /// content and how it is read, so moving or renaming a file with the same bytes reruns
    /// nothing. The path stays in the recorded fingerprint only to name the file in reasons.
    pub fn key(&self) -> String {
        let mut keyed = self.clone();
        keyed.inputs.values_mut().for_each(|i| i.path = None);
        let bytes = serde_json::to_vec(&keyed).unwrap_or_default();
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// Why this fingerprint (whose key `key` is not in the store) must run, given the key and
    /// fingerprint recorded when the stage last completed (`None`: never). Never empty.
    pub fn stale_reasons(&self, key: &str, prev: Option<(&str, &Fingerprint)>) -> Vec<StaleReason> {
        let Some((prev_key, old)) = prev else {
            return vec![StaleReason::NeverRun];
        };
        if prev_key == key {
            return vec![StaleReason::EntryMissing];
        }
        let now = self;
        let mut out = Vec::new();
        if old.kind != now.kind {
            out.push(StaleReason::Kind {
                old: old.kind.clone(),
                new: now.kind.clone(),
            });
        } else if old.version != now.version {
            out.push(StaleReason::Version {
                kind: now.kind.clone(),
                old: old.version,
                new: now.version,
            });
        }
        let mut a = BTreeMap::new();
        let mut b = BTreeMap::new();
        flatten("", &old.params, &mut a);
        flatten("", &now.params, &mut b);
        for (k, v) in &b {
            match a.get(k) {
                Some(o) if o == v => {}
                Some(o) => out.push(StaleReason::Param {
                    name: k.clone(),
                    old: o.clone(),
                    new: v.clone(),
                }),
                None => out.push(StaleReason::ParamAdded {
                    name: k.clone(),
                    new: v.clone(),
                }),
            }
        }
        for (k, o) in &a {
            if !b.contains_key(k) {
                out.push(StaleReason::ParamRemoved {
                    name: k.clone(),
                    old: o.clone(),
                });
            }
        }
        if old.seed != now.seed {
            out.push(StaleReason::Seed {
                old: old.seed,
                new: now.seed,
            });
        }
        for (n, inp) in &now.inputs {
            match old.inputs.get(n) {
                Some(o) if o.key == inp.key => {}
                Some(_) if inp.kind == "dataset" => out.push(StaleReason::InputFile {
                    path: inp.path.clone().unwrap_or_else(|| n.clone()),
                }),
                Some(_) => out.push(StaleReason::Upstream { stage: n.clone() }),
                None => out.push(StaleReason::NewInput { name: n.clone() }),
            }
        }
        if out.is_empty() {
            out.push(StaleReason::Definition);
        }
        out
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(params: serde_json::Value, seed: Option<u64>, data_key: &str) -> Fingerprint {
        let mut inputs = BTreeMap::new();
        inputs.insert(
            "train".to_string(),
            InputPrint {
                kind: "dataset".into(),
                key: data_key.into(),
                path: Some("data/train.csv".into()),
            },
        );
        Fingerprint {
            kind: "tokenize".into(),
            version: 2,
            params,
            seed,
            inputs,
        }
    }

    #[test]
    fn every_difference_is_one_typed_reason_with_both_values() {
        let old = print(serde_json::json!({"vocab_size": 8000, "lower": true}), Some(1), "aaa");
        let now = print(serde_json::json!({"vocab_size": 4000, "algo": "bpe"}), Some(2), "bbb");
        let got = now.stale_reasons(&now.key(), Some((&old.key(), &old)));
        assert_eq!(
            got,
            vec![
                StaleReason::ParamAdded {
                    name: "algo".into(),
                    new: "\"bpe\"".into()
                },
                StaleReason::Param {
                    name: "vocab_size".into(),
                    old: "8000".into(),
                    new: "4000".into()
                },
                StaleReason::ParamRemoved {
                    name: "lower".into(),
                    old: "true".into()
                },
                StaleReason::Seed {
                    old: Some(1),
                    new: Some(2)
                },
                StaleReason::InputFile {
                    path: "data/train.csv".into()
                },
            ]
        );
        assert_eq!(got[1].to_string(), "param `vocab_size` changed (8000 → 4000)");
        assert_eq!(now.stale_reasons("k", None), vec![StaleReason::NeverRun]);
        assert_eq!(
            now.stale_reasons("k", Some(("k", &old))),
            vec![StaleReason::EntryMissing]
        );
    }

    #[test]
    fn the_dataset_path_is_not_in_the_key() {
        let a = print(serde_json::json!({}), None, "aaa");
        let mut b = a.clone();
        b.inputs.get_mut("train").unwrap().path = Some("moved/train.csv".into());
        assert_eq!(a.key(), b.key());
    }
}
