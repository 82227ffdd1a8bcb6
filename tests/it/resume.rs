//! Resume: a training stage killed mid-way continues on the next run from its last checkpoint,
//! and what it commits is byte for byte what an uninterrupted run commits.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{gen_corpus, gen_csv, keys, store_checksums, Project};

/// Every training loop that checkpoints: word2vec (`w2v`), a next-token LM of an LSTM (`lm`),
/// fine-tuning that LM with gradual unfreezing and discriminative rates (`tuned`), and an MLP
/// head on frozen features (`mlp`), and the logistic head's self-training (`selftrained`, where
/// an epoch is one fit: the labelled one, then each round). Epoch counts are high so that a
/// kill can land mid-way.
const SPEC: &str = "
name: resume
seed: 5
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
  dev: { path: dev.csv, label: label }
stages:
  tok: { kind: tokenize, fit_on: [corpus, train], encode: [corpus, train, dev], vocab_size: 300 }
  seqs: { kind: pad, from: tok, max_len: 16 }
  w2v:
    kind: pretrain
    from: tok
    data: [corpus]
    objective: skipgram
    encoder: { type: bag, dim: 16 }
    epochs: 150
  lm:
    kind: pretrain
    from: tok
    data: [corpus]
    objective: lm
    encoder: { type: lstm, dim: 16 }
    epochs: 40
  tuned:
    kind: finetune
    from: seqs
    train: train
    dev: dev
    init: lm
    encoder: { type: lstm, dim: 16 }
    pooling: concat
    gradual_unfreeze: true
    encoder_lr_scale: 0.5
    epochs: 60
    patience: 0
  mlp:
    kind: feature-extract
    from: seqs
    encoder: w2v
    train: train
    dev: dev
    head: mlp
    hidden: 16
    epochs: 300
    patience: 0
  selftrained:
    kind: feature-extract
    from: seqs
    encoder: w2v
    train: train
    ngrams: 2
    unlabelled: [corpus]
    rounds: 10
";

const TARGETS: [&str; 5] = ["w2v", "lm", "tuned", "mlp", "selftrained"];

fn project() -> Project {
    let p = Project::empty();
    p.write("corpus.txt", &gen_corpus(2000, 1));
    p.write("train.csv", &gen_csv(400, 2));
    p.write("dev.csv", &gen_csv(200, 3));
    p.write("spec.yaml", SPEC);
    p
}

/// Starts `run spec.yaml` with a checkpoint after every epoch.
fn start(p: &Project, ws: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .current_dir(p.path())
        .env("WARMSTART_CHECKPOINT_EVERY", "0")
        .arg("--workspace")
        .arg(ws)
        .args(["run", "spec.yaml", "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start warmstart")
}

/// The epoch of the newest checkpoint of `key`, if any.
fn checkpointed(ws: &Path, key: &str) -> Option<usize> {
    std::fs::read_dir(ws.join("checkpoints").join(key))
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("epoch-")?.parse().ok())
        .max()
}

#[test]
fn a_killed_training_stage_resumes_and_commits_the_uninterrupted_bytes() {
    let p = project();
    let clean = p.path().join("clean");
    let (code, _, err) = crate::common::warmstart(&clean, &["run", p.path().join("spec.yaml").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let status = p.status_json("spec.yaml", &[]);
    let key = keys(&status);
    let ws = p.ws();
    let mut resumed = Vec::new();
    for (round, target) in TARGETS.iter().enumerate() {
        let k = &key[*target];
        let mut child = start(&p, &ws);
        // Kill once the target has checkpointed a few epochs, a little later each round so the
        // kill lands at different points of an epoch (during a save, too).
        let t = Instant::now();
        let mut at = None;
        while child.try_wait().unwrap().is_none() && t.elapsed() < Duration::from_secs(120) {
            if let Some(e) = checkpointed(&ws, k).filter(|&e| e >= 3) {
                std::thread::sleep(Duration::from_millis(7 * round as u64));
                at = Some(e);
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let still_running = child.try_wait().unwrap().is_none();
        child.kill().ok(); // SIGKILL
        child.wait().unwrap();
        assert!(
            still_running && at.is_some(),
            "`{target}` finished (or never checkpointed) before it could be killed; lengthen it"
        );
        let before = checkpointed(&ws, k).expect("a checkpoint survives the kill");
        // `status` says the stage will resume, and from where.
        let (_, out, _) = p.run(&["status", "spec.yaml"]);
        assert!(
            out.lines()
                .any(|l| l.starts_with(target) && l.contains(&format!("resumes after epoch {before} (checkpoint)"))),
            "{out}"
        );
        // The next run picks the checkpoint up: said on stderr and in the stage's summary.
        let mut finish = Command::new(env!("CARGO_BIN_EXE_warmstart"));
        finish.current_dir(p.path()).arg("--workspace").arg(&ws);
        let out = finish
            .args(["run", "spec.yaml", "--json", "--jobs", "1"])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!("{target}: resuming after epoch {before} (checkpoint)")),
            "`{target}` did not resume from epoch {before}:\n{stderr}"
        );
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let summary = report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == *target)
            .map(|s| s["summary"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        assert!(summary.contains(&format!("resumed after epoch {before}")), "{summary}");
        // Committed: its checkpoints are gone.
        assert!(
            !ws.join("checkpoints").join(k).exists(),
            "checkpoints of `{target}` left behind"
        );
        resumed.push(format!("{target} after epoch {before}"));
        // The next round's target runs again (its successors stay cached: keys are unchanged).
        if let Some(next) = TARGETS.get(round + 1) {
            std::fs::remove_dir_all(ws.join("store").join(&key[*next])).unwrap();
        }
    }
    let (a, b) = (store_checksums(&clean), store_checksums(&ws));
    let differing: Vec<&String> = a
        .iter()
        .filter(|(f, h)| b.get(*f) != Some(*h))
        .map(|(f, _)| f)
        .collect();
    assert!(
        differing.is_empty() && a.len() == b.len(),
        "resumed runs ({resumed:?}) wrote other bytes than an uninterrupted run: {differing:?}"
    );
    eprintln!("resumed {resumed:?}; every artefact equals the uninterrupted run's");
    // A checkpoint no spec plans any more is garbage: gc removes it.
    let orphan = ws.join("checkpoints/0123456789abcdef/epoch-000001");
    std::fs::create_dir_all(&orphan).unwrap();
    let (code, _, err) = p.run(&["gc", "spec.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(!orphan.exists(), "gc left an orphan checkpoint");
}
