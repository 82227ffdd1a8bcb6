//! Exported models open in Python's `safetensors` and `tokenizers` (runs where both are
//! importable by `python3`, or by `$WARMSTART_PYTHON`; prints why it skipped otherwise).

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> Option<String> {
    let py = std::env::var("WARMSTART_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import safetensors, tokenizers, numpy"])
        .output()
        .ok()?
        .status
        .success();
    ok.then_some(py)
}

fn warmstart(ws: &Path, args: &[&str]) {
    let (code, _, err) = crate::common::warmstart(ws, args);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn exported_model_loads_in_python_safetensors_and_tokenizers() {
    let Some(py) = python() else {
        crate::common::skip("python_interop", "skipped: python3 with safetensors, tokenizers and numpy not found (pip install safetensors tokenizers numpy)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets/quickstart");
    let spec = tmp.path().join("s.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: interop\nseed: 1\ndatasets:\n  train: {{ path: {d}/train.csv, label: label }}\nstages:\n  tok: {{ kind: tokenize, fit_on: [train], vocab_size: 300 }}\n  seqs: {{ kind: pad, from: tok, max_len: 16 }}\n  clf: {{ kind: finetune, from: seqs, train: train, epochs: 1, hidden: 8 }}\n",
            d = d.display()
        ),
    )
    .unwrap();
    let ws = tmp.path().join("ws");
    let s = spec.to_str().unwrap();
    warmstart(&ws, &["run", s]);
    let out = tmp.path().join("model");
    warmstart(&ws, &["export", s, "clf", "--out", out.to_str().unwrap()]);
    let script = r#"
import json, sys
from safetensors.numpy import load_file
from tokenizers import Tokenizer
d = sys.argv[1]
cfg = json.load(open(d + "/model.json"))
w = load_file(d + "/model.safetensors")
emb = w["encoder.embedding"]
assert emb.shape == (cfg["vocab_size"], cfg["encoder"]["dim"]), emb.shape
assert w["head.w"].shape == (cfg["hidden"], len(cfg["labels"])), w["head.w"].shape
tok = Tokenizer.from_file(d + "/tokenizer.json")
assert tok.get_vocab_size() == cfg["vocab_size"], (tok.get_vocab_size(), cfg["vocab_size"])
ids = tok.encode("the blender is superb", add_special_tokens=False).ids
assert ids and all(0 <= i < cfg["vocab_size"] for i in ids), ids
assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[MASK]") == 4
print("ok", emb.shape, len(ids))
"#;
    let res = Command::new(py)
        .args(["-c", script, out.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(
        res.status.success() && stdout.starts_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&res.stderr)
    );
    println!("python loaded the export: {stdout}");

    // The model card's Python snippet is the model: its probabilities equal `predict`'s.
    let card = std::fs::read_to_string(out.join("README.md")).expect("export writes a model card");
    for needle in [
        "## Training data",
        "## Evaluation",
        "## Provenance",
        "labelled rows: 800 of 800",
    ] {
        assert!(card.contains(needle), "model card lacks {needle:?}:\n{card}");
    }
    let snippet = card
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a python block in the card");
    let texts = ["the blender is superb", "the kettle broke after a week and smells"];
    let check = format!(
        "{snippet}\nimport sys\nfor t in json.loads(sys.argv[1]):\n    print(json.dumps({{k: float(v) for k, v in predict_proba(t).items()}}))\n"
    );
    let res = Command::new(python().unwrap())
        .current_dir(&out)
        .args(["-c", &check, &serde_json::to_string(&texts).unwrap()])
        .output()
        .unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let ours = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .args(["predict", "--model", out.to_str().unwrap(), "--format", "json"])
        .args(texts)
        .output()
        .unwrap();
    assert!(ours.status.success(), "{}", String::from_utf8_lossy(&ours.stderr));
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let py: Vec<serde_json::Value> = String::from_utf8_lossy(&res.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    println!("warmstart: {ours}\npython snippet: {py:?}");
    for (i, p) in py.iter().enumerate() {
        for (label, v) in p.as_object().unwrap() {
            let w = ours[i]["probabilities"][label].as_f64().expect("same labels");
            assert!(
                (v.as_f64().unwrap() - w).abs() < 1e-4,
                "text {i}, {label}: python {v} vs warmstart {w}"
            );
        }
    }
}
