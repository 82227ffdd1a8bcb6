//! Mutation fuzzing of the two inputs users hand-edit or copy around: spec files and model
//! folders. Each case starts from a valid input, applies random mutations (seeded, so a failure
//! reproduces), and holds one property: no panic — the input is accepted or rejected with an
//! error. A crashing input is written to `target/fuzz-crashes/` and named in the failure.
//!
//! The default suite runs a fixed number of cases (seconds). `WARMSTART_FUZZ_SECS=N` runs each
//! target for N seconds instead (fuzz/README.md records the long runs).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{gen_corpus, gen_csv, Lcg, Project};

/// How long (or how many cases) a target runs.
fn budget(default_cases: usize) -> (usize, Option<Duration>) {
    match std::env::var("WARMSTART_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(s) => (usize::MAX, Some(Duration::from_secs(s))),
        None => (default_cases, None),
    }
}

fn crash_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
    std::fs::create_dir_all(&d).expect("create target/fuzz-crashes");
    d
}

/// Replacement scalars that have broken parsers before: out-of-range numbers, wrong types,
/// YAML specials, empty and huge values.
const ODD_VALUES: &[&str] = &[
    "0",
    "-1",
    "1e309",
    "-0.0",
    ".nan",
    ".inf",
    "18446744073709551615",
    "18446744073709551616",
    "4294967296",
    "null",
    "~",
    "[]",
    "{}",
    "[1, [2]]",
    "true",
    "\"\"",
    "'x'",
    "*a",
    "&a 1",
    "!!binary AA==",
    "3.5",
    "1_000",
    "0x10",
    "\"\\u0000\"",
    "{ type: lstm, dim: 0 }",
    "[tok, tok]",
    "relu",
];

const KEYS: &[&str] = &[
    "kind",
    "from",
    "train",
    "dev",
    "data",
    "encoder",
    "dim",
    "type",
    "max_len",
    "vocab_size",
    "epochs",
    "batch_size",
    "lr",
    "train_size",
    "seed",
    "repeats",
    "matrix",
    "variants",
    "labels",
    "ngrams",
    "pooling",
    "init",
    "objective",
    "window",
    "negatives",
    "unlabelled",
    "rounds",
    "fit_on",
    "encode",
    "datasets",
    "stages",
    "name",
    "path",
    "label",
    "text",
    "format",
    "model",
    "add_cls",
    "padding",
    "freeze",
];

fn mutate_text(text: &str, rng: &mut Lcg) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for _ in 0..1 + rng.below(3) {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let i = rng.below(lines.len());
        match rng.below(9) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            // A value replaced.
            2 | 3 => {
                if let Some(c) = lines[i].find(": ") {
                    let v = ODD_VALUES[rng.below(ODD_VALUES.len())];
                    lines[i] = format!("{}: {v}", &lines[i][..c]);
                }
            }
            // A key replaced.
            4 => {
                let indent = lines[i].len() - lines[i].trim_start().len();
                if let Some(c) = lines[i].find(':') {
                    let k = KEYS[rng.below(KEYS.len())];
                    lines[i] = format!("{}{k}{}", " ".repeat(indent), &lines[i][c..]);
                }
            }
            // Indentation changed.
            5 => {
                let l = lines[i].trim_start().to_string();
                lines[i] = format!("{}{l}", " ".repeat(rng.below(7)));
            }
            // A new key in a random place.
            6 => {
                let indent = lines[i].len() - lines[i].trim_start().len();
                let k = KEYS[rng.below(KEYS.len())];
                let v = ODD_VALUES[rng.below(ODD_VALUES.len())];
                lines.insert(i, format!("{}{k}: {v}", " ".repeat(indent)));
            }
            // A byte inserted or removed.
            7 => {
                let l = &mut lines[i];
                let p = if l.is_empty() { 0 } else { rng.below(l.len()) };
                if l.is_char_boundary(p) {
                    let c = [
                        ':', '-', '[', '{', '}', ']', ',', '#', '\'', '"', '\t', '&', '*', '!', '|', '>',
                    ][rng.below(16)];
                    l.insert(p, c);
                }
            }
            _ => {
                let l = &mut lines[i];
                if !l.is_empty() {
                    let p = rng.below(l.len());
                    if l.is_char_boundary(p) && l.is_char_boundary(p + 1) {
                        l.remove(p);
                    }
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

/// Every shipped pipeline and the test specs, mutated; parsing (spec reading, variant
/// expansion, graph checks) and planning (dataset files and columns) must never panic.
#[test]
fn fuzz_spec_files_never_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<(PathBuf, String)> = Vec::new();
    for e in std::fs::read_dir(root.join("pipelines")).expect("pipelines/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).expect("read pipeline");
            seeds.push((p, text));
        }
    }
    let p = Project::new();
    seeds.push((p.path().join("spec.yaml"), crate::common::SPEC.to_string()));
    seeds.sort();
    let ws = warmstart::workspace::Workspace::open(&p.ws()).expect("workspace");
    let (cases, time) = budget(3000);
    let start = Instant::now();
    let mut rng = Lcg::new(7);
    let (mut accepted, mut n) = (0usize, 0usize);
    while n < cases && time.is_none_or(|t| start.elapsed() < t) {
        let (path, seed) = &seeds[n % seeds.len()];
        let text = mutate_text(seed, &mut rng);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let study = warmstart::pipeline::parse(path, &text, &[]).ok()?;
            // Planning reads dataset files; a pipeline whose data is absent just errs.
            warmstart::plan::plan(&study, &ws).ok().map(|_| ())
        }));
        match outcome {
            Ok(Some(())) => accepted += 1,
            Ok(None) => {}
            Err(_) => {
                let f = crash_dir().join(format!("spec-{n}.yaml"));
                std::fs::write(&f, &text).expect("write crash");
                panic!(
                    "case {n}: reading a mutated {} panicked; input saved to {}",
                    path.display(),
                    f.display()
                );
            }
        }
        n += 1;
    }
    eprintln!(
        "fuzz specs: {n} cases in {:.1?}, {accepted} accepted and planned",
        start.elapsed()
    );
    assert!(n >= cases.min(100), "ran only {n} cases");
}

/// One mutation of a model folder's files.
fn mutate_folder(dir: &Path, rng: &mut Lcg) {
    let files = ["model.json", "model.safetensors", "tokenizer.json", "history.json"];
    let name = files[rng.below(files.len())];
    let path = dir.join(name);
    let Ok(mut bytes) = std::fs::read(&path) else {
        return;
    };
    match rng.below(6) {
        // Truncated.
        0 => bytes.truncate(rng.below(bytes.len().max(1))),
        // Bytes flipped.
        1 => {
            for _ in 0..1 + rng.below(8) {
                if !bytes.is_empty() {
                    let i = rng.below(bytes.len());
                    bytes[i] ^= 1 << rng.below(8);
                }
            }
        }
        // The file removed.
        2 => {
            let _ = std::fs::remove_file(&path);
            return;
        }
        // A JSON leaf replaced (model.json, tokenizer.json, history.json, or the safetensors
        // header: an 8-byte length, then JSON).
        _ => {
            let (prefix, json) = if name == "model.safetensors" && bytes.len() > 8 {
                let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
                if 8 + n > bytes.len() {
                    return;
                }
                (8, &bytes[8..8 + n])
            } else {
                (0, &bytes[..])
            };
            let Ok(mut v) = serde_json::from_slice::<Value>(json) else {
                return;
            };
            let mut leaves = Vec::new();
            collect_leaves(&v, String::new(), &mut leaves);
            if leaves.is_empty() {
                return;
            }
            let target = leaves[rng.below(leaves.len())].clone();
            let odd: Value = match rng.below(10) {
                0 => Value::from(0),
                1 => Value::from(-1),
                2 => Value::from(u64::MAX),
                3 => Value::from(1u64 << 40),
                4 => Value::from(""),
                5 => Value::Null,
                6 => Value::from(vec![Value::from(1)]),
                7 => Value::from(3.5),
                8 => Value::from("F16"),
                _ => Value::from(1_000_000),
            };
            if let Some(slot) = v.pointer_mut(&target) {
                *slot = odd;
            }
            let out = serde_json::to_vec(&v).expect("json");
            if prefix == 8 {
                let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
                let mut nb = (out.len() as u64).to_le_bytes().to_vec();
                nb.extend(&out);
                nb.extend(&bytes[8 + n..]);
                bytes = nb;
            } else {
                bytes = out;
            }
        }
    }
    std::fs::write(&path, bytes).expect("write mutated file");
}

fn collect_leaves(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                collect_leaves(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        // Long arrays (vocabularies, merges): a few elements are enough.
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate().take(8) {
                collect_leaves(x, format!("{at}/{i}"), out);
            }
            out.push(at);
        }
        _ => out.push(at),
    }
}

/// Exported model folders of three shapes (a bag finetune; frozen vectors with n-grams; a
/// transformer), mutated; loading and predicting must never panic.
#[test]
fn fuzz_model_folders_never_panic() {
    let p = Project::empty();
    p.write("corpus.txt", &gen_corpus(300, 1));
    p.write("train.csv", &gen_csv(200, 2));
    p.write(
        "spec.yaml",
        "\
name: fz
seed: 1
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
stages:
  tok: { kind: tokenize, fit_on: [corpus, train], encode: [corpus, train], vocab_size: 120 }
  seqs: { kind: pad, from: tok, max_len: 12 }
  vec: { kind: pretrain, from: tok, data: [corpus], objective: skipgram, encoder: { type: bag, dim: 8 }, epochs: 1 }
  bag: { kind: finetune, from: seqs, train: train, encoder: { type: bag, dim: 8 }, epochs: 1 }
  fx: { kind: feature-extract, from: seqs, encoder: vec, train: train, ngrams: 2, c: 1.0 }
  tr: { kind: finetune, from: seqs, train: train, encoder: { type: transformer, dim: 8, layers: 1, heads: 2 }, epochs: 1 }
",
    );
    let (code, _, err) = p.run(&["run", "spec.yaml"]);
    assert_eq!(code, 0, "{err}");
    let mut folders = Vec::new();
    for stage in ["bag", "fx", "tr"] {
        let (code, _, err) = p.run(&["export", "spec.yaml", stage, "--out", stage]);
        assert_eq!(code, 0, "{err}");
        folders.push(p.path().join(stage));
    }
    let texts = vec!["a fine film".to_string(), String::new(), "zzz qqq ".repeat(40)];
    let (cases, time) = budget(300);
    let start = Instant::now();
    let mut rng = Lcg::new(11);
    let (mut loaded, mut n) = (0usize, 0usize);
    let scratch = p.path().join("mutant");
    while n < cases && time.is_none_or(|t| start.elapsed() < t) {
        let src = &folders[n % folders.len()];
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).expect("mkdir");
        for e in std::fs::read_dir(src).expect("folder") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), scratch.join(e.file_name())).expect("copy");
        }
        for _ in 0..1 + rng.below(2) {
            mutate_folder(&scratch, &mut rng);
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let pr = warmstart::predict::Predictor::from_dir(&scratch).ok()?;
            pr.predict(&texts).ok().map(|_| ())
        }));
        match outcome {
            Ok(Some(())) => loaded += 1,
            Ok(None) => {}
            Err(_) => {
                let keep = crash_dir().join(format!("model-{n}"));
                let _ = std::fs::remove_dir_all(&keep);
                std::fs::rename(&scratch, &keep).expect("keep crash");
                panic!(
                    "case {n}: a mutated {} panicked; folder saved to {}",
                    src.display(),
                    keep.display()
                );
            }
        }
        n += 1;
    }
    eprintln!(
        "fuzz model folders: {n} cases in {:.1?}, {loaded} still loaded and predicted",
        start.elapsed()
    );
    assert!(n >= cases.min(50), "ran only {n} cases");
}
