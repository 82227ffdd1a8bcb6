//! Variants, matrix and repeats: every combination is a copy of the DAG, and stages whose keys
//! coincide run once.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(ws: &Path, spec: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(ws)
        .args(["run", spec.to_str().unwrap(), "--json", "--jobs", "2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The quickstart reduced to the from-scratch branch, as a 2 × 3 matrix.
fn spec(dir: &Path, extra_variant: bool) -> PathBuf {
    let data = root().join("datasets/quickstart");
    let mut text = format!(
        "name: matrix\nseed: 3\ndatasets:\n  unlabelled: {{ path: {d}/unlabelled.txt }}\n  train: {{ path: {d}/train.csv, label: label }}\n  test: {{ path: {d}/test.csv, label: label }}\nstages:\n  tok: {{ kind: tokenize, fit_on: [unlabelled, train], encode: [train, test], vocab_size: 500 }}\n  seqs: {{ kind: pad, from: tok, max_len: 24 }}\n  clf: {{ kind: finetune, from: seqs, train: train, epochs: 2 }}\n  ev: {{ kind: evaluate, model: clf, from: seqs, data: test }}\nmatrix:\n  clf.train_size: [50, 100, 200]\n  clf.hidden: [0, 8]\n",
        d = data.display()
    );
    if extra_variant {
        text.push_str("variants:\n  slow: { clf.lr: 0.001 }\n");
    }
    let p = dir.join(if extra_variant {
        "with_variant.yaml"
    } else {
        "matrix.yaml"
    });
    std::fs::write(&p, text).unwrap();
    p
}

fn statuses(r: &Value) -> Vec<(String, String)> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().into(), s["status"].as_str().unwrap().into()))
        .collect()
}

#[test]
fn a_matrix_runs_shared_stages_once_and_a_new_variant_only_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let r = run(&ws, &spec(tmp.path(), false));
    let st = statuses(&r);
    assert_eq!(st.len(), 6 * 4, "{st:?}");
    let ran = |prefix: &str| st.iter().filter(|(n, s)| n.starts_with(prefix) && s == "ran").count();
    let cached = |prefix: &str| {
        st.iter()
            .filter(|(n, s)| n.starts_with(prefix) && s == "cached")
            .count()
    };
    // tok and seqs are the same in all six combinations: they run once.
    assert_eq!((ran("tok@"), cached("tok@")), (1, 5), "{st:?}");
    assert_eq!((ran("seqs@"), cached("seqs@")), (1, 5));
    assert_eq!(ran("clf@"), 6);
    assert_eq!(ran("ev@"), 6);
    assert!(st.iter().any(|(n, _)| n == "clf@train_size=100,hidden=8"), "{st:?}");
    let shared = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "tok@train_size=100,hidden=0")
        .unwrap();
    assert!(
        shared["reasons"][0]
            .as_str()
            .unwrap()
            .contains("shared with `tok@train_size=50,hidden=0`"),
        "{shared}"
    );

    // Adding a named variant: `base` is the six above (all cached); `slow` shares tok and seqs
    // and runs only its own clf and ev.
    let r = run(&ws, &spec(tmp.path(), true));
    let st = statuses(&r);
    assert_eq!(st.len(), 12 * 4);
    for (n, s) in &st {
        let own = n.starts_with("clf@slow") || n.starts_with("ev@slow");
        assert_eq!(s, if own { "ran" } else { "cached" }, "{n}");
    }
}
