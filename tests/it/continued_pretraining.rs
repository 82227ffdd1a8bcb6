//! `pretrain` with `init:`: a pretrain stage continues another one's training on other text
//! (task-adaptive pretraining, ULMFiT's second stage), and refuses what cannot continue.

use crate::common::{gen_corpus, gen_csv, stage, Project};

/// General text (`corpus`) pretrained first; `tapt` continues it on the task's texts, `cold`
/// trains the same stage from random on the same texts. One epoch each, so each one's
/// held-out loss is its first epoch's. The generated text has no sequence structure for a
/// language model to learn, so `lm_tapt` is checked another way: at a learning rate of 1e-9
/// its weights must stay those of `lm_general`.
const SPEC: &str = "
name: tapt
seed: 3
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
  dev: { path: dev.csv, label: label }
stages:
  tok: { kind: tokenize, fit_on: [corpus, train], encode: [corpus, train, dev], vocab_size: 300 }
  seqs: { kind: pad, from: tok, max_len: 16, datasets: [train, dev] }
  general: { kind: pretrain, from: tok, data: [corpus], objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 5 }
  tapt: { kind: pretrain, from: tok, data: [train], objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 1, init: general }
  cold: { kind: pretrain, from: tok, data: [train], objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 1 }
  lm_general: { kind: pretrain, from: tok, data: [corpus], objective: lm, encoder: { type: lstm, dim: 16 }, epochs: 2 }
  lm_tapt: { kind: pretrain, from: tok, data: [train], objective: lm, encoder: { type: lstm, dim: 16 }, epochs: 1, lr: 1.0e-9, init: lm_general }
  head: { kind: feature-extract, from: seqs, encoder: tapt, train: train, dev: dev }
  test_head: { kind: evaluate, model: head, from: seqs, data: dev }
";

fn project() -> Project {
    let p = Project::empty();
    p.write("corpus.txt", &gen_corpus(3000, 1));
    p.write("train.csv", &gen_csv(400, 2));
    p.write("dev.csv", &gen_csv(200, 3));
    p.write("spec.yaml", SPEC);
    p
}

fn held_out(report: &serde_json::Value, name: &str) -> f64 {
    stage(report, name)["metrics"]["held_out_loss"]
        .as_f64()
        .unwrap_or_else(|| panic!("{name} has no held-out loss: {report:#}"))
}

/// Every value of a pretrain stage's `encoder.safetensors`, tensors in name order.
fn weights(p: &Project, report: &serde_json::Value, name: &str) -> Vec<f32> {
    let key = stage(report, name)["key"].as_str().expect("key").to_string();
    let bytes = std::fs::read(p.files(&key).join("encoder.safetensors")).expect("encoder.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut names = st.names();
    names.sort();
    names
        .iter()
        .flat_map(|n| {
            let data = st.tensor(n).expect("tensor").data().to_vec();
            data.chunks(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_pretrain_stage_continues_another_on_the_task_texts() {
    let p = project();
    let r = p.run_ok("spec.yaml", &[]);
    // Starting from the general run, one epoch on the task's texts ends well below where a
    // cold start gets in the same epoch: what was learned is carried over, not reset.
    let (tapt, cold) = (held_out(&r, "tapt"), held_out(&r, "cold"));
    assert!(tapt < cold - 0.1, "word2vec: continued {tapt:.3}, cold {cold:.3}");
    let (general, tapt) = (weights(&p, &r, "lm_general"), weights(&p, &r, "lm_tapt"));
    assert_eq!(general.len(), tapt.len());
    let drift = general
        .iter()
        .zip(&tapt)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        drift < 1e-5,
        "lm_tapt did not start from lm_general: weights moved by {drift}"
    );
    // The continued vectors feed a classifier like any other, and it learns (measured 0.65:
    // 16-d vectors, the polarity words seen in one epoch only).
    let m = &stage(&r, "test_head")["metrics"];
    let (acc, majority) = (
        m["accuracy"].as_f64().unwrap(),
        m["majority_baseline"].as_f64().unwrap(),
    );
    assert!(
        acc > 0.6 && acc > majority + 0.08,
        "accuracy {acc}, majority {majority}"
    );
    // The general run is an input: changing it reruns the continuation.
    let r = p.run_ok("spec.yaml", &["--set", "general.epochs=6"]);
    assert_eq!(stage(&r, "tapt")["status"], "ran", "{r:#}");
    assert_eq!(stage(&r, "cold")["status"], "cached", "{r:#}");
}

#[test]
fn init_that_cannot_continue_is_refused_with_a_reason() {
    let p = project();
    // Not a pretrain stage: a spec error before anything runs.
    let (code, _, err) = p.run(&["validate", "spec.yaml", "--set", "tapt.init=seqs"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("init"), "{err}");
    // word2vec tables cannot start a language model.
    let (code, out, err) = p.run(&["run", "spec.yaml", "--set", "lm_tapt.init=general"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("different kind of model"), "{err}");
    // Another tokenizer: its ids mean other words.
    p.write(
        "other.yaml",
        &SPEC.replace(
            "  tapt:",
            "  tok2: { kind: tokenize, fit_on: [train], encode: [train], vocab_size: 200 }\n  tapt:",
        )
        .replace("objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 1, init: general }", "objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 1, init: general }\n  tapt2: { kind: pretrain, from: tok2, data: [train], objective: skipgram, encoder: { type: bag, dim: 16 }, epochs: 1, init: general }"),
    );
    let (code, out, err) = p.run(&["run", "other.yaml"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("another tokenizer"), "{err}");
}
