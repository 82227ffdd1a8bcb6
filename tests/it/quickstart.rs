//! The quickstart end to end: learning happens, pretraining pays, reruns are cached, results
//! are reproducible, trained models classify new text, and a diverging run caches nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn quickstart() -> PathBuf {
    root().join("pipelines/quickstart.yaml")
}

/// Runs warmstart with a workspace; returns (exit code, stdout, stderr).
fn ws(workspace: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .output()
        .expect("run warmstart");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_json(workspace: &Path, extra: &[&str]) -> (i32, Value) {
    let spec = quickstart();
    let mut args = vec!["run", spec.to_str().unwrap(), "--json", "--jobs", "2"];
    args.extend_from_slice(extra);
    let (code, out, err) = ws(workspace, &args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}\n{err}"));
    (code, v)
}

fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

fn accuracy(report: &Value, name: &str) -> f64 {
    stage(report, name)["metrics"]["accuracy"].as_f64().unwrap()
}

#[test]
fn quickstart_learns_pretraining_pays_and_reruns_are_cached() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("ws");
    let (code, r) = run_json(&w, &[]);
    assert_eq!(code, 0, "{r}");
    for s in r["stages"].as_array().unwrap() {
        assert_eq!(s["status"], "ran", "{s}");
    }

    // Learning happens: every model beats the majority class clearly.
    let majority = stage(&r, "test_scratch")["metrics"]["majority_baseline"]
        .as_f64()
        .unwrap();
    assert!((majority - 0.55).abs() < 1e-9, "majority {majority}");
    let (scratch, tuned, frozen) = (
        accuracy(&r, "test_scratch"),
        accuracy(&r, "test_tuned"),
        accuracy(&r, "test_frozen"),
    );
    for (name, a) in [("scratch", scratch), ("tuned", tuned), ("frozen", frozen)] {
        assert!(
            a > majority + 0.1,
            "{name} accuracy {a} does not beat the majority class {majority}"
        );
    }
    // Pretraining pays where the data says it should (rare polar words seen only unlabelled).
    // Measured (README): scratch 75.2 %, tuned 95.4 %, frozen 99.6 % (pretrain v7). Results are the same bits
    // on any thread count; the margins allow for other CPUs' float paths (AVX2 or not).
    assert!(scratch > 0.72, "from scratch {scratch} (measured 0.7525)");
    assert!(
        tuned > 0.93 && tuned > scratch + 0.15,
        "fine-tuned {tuned} vs scratch {scratch} (measured 0.954)"
    );
    assert!(frozen > 0.98, "feature-extract {frozen} (measured 0.996)");

    // Training loss falls, per epoch, in the stored history.
    let key = stage(&r, "scratch")["key"].as_str().unwrap().to_string();
    let hist: Value =
        serde_json::from_slice(&std::fs::read(w.join("store").join(&key).join("files/history.json")).unwrap()).unwrap();
    let losses: Vec<f64> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["train_loss"].as_f64().unwrap())
        .collect();
    assert!(
        losses.len() >= 2 && losses.last().unwrap() < &(losses[0] * 0.5),
        "losses {losses:?}"
    );
    let pre_key = stage(&r, "embed")["key"].as_str().unwrap().to_string();
    let pre: Value =
        serde_json::from_slice(&std::fs::read(w.join("store").join(&pre_key).join("files/encoder.json")).unwrap())
            .unwrap();
    let pl: Vec<f64> = pre["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["held_out_loss"].as_f64().unwrap())
        .collect();
    assert!(pl.last().unwrap() < &pl[0], "held-out loss should fall: {pl:?}");

    // evaluate writes the full metrics file.
    // feature-extract stores the frozen encoder's pooled features of its 800 training rows.
    let fx_key = stage(&r, "frozen")["key"].as_str().unwrap().to_string();
    let st = std::fs::read(w.join("store").join(&fx_key).join("files/features.safetensors")).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    assert_eq!(header["features"]["shape"], serde_json::json!([800, 64]), "{header}");
    assert_eq!(header["labels"]["shape"], serde_json::json!([800, 1]), "{header}");

    let ev_key = stage(&r, "test_tuned")["key"].as_str().unwrap().to_string();
    let m: Value =
        serde_json::from_slice(&std::fs::read(w.join("store").join(&ev_key).join("files/metrics.json")).unwrap())
            .unwrap();
    assert_eq!(m["rows"], 1600);
    assert_eq!(m["per_class"].as_array().unwrap().len(), 2);
    let total: u64 = m["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1600);

    // A rerun runs nothing and reports the same metrics.
    let (code, again) = run_json(&w, &[]);
    assert_eq!(code, 0);
    for s in again["stages"].as_array().unwrap() {
        assert_eq!(s["status"], "cached", "{s}");
    }
    assert_eq!(accuracy(&again, "test_tuned"), tuned);

    // Same spec + seed + threads in a fresh workspace: identical keys and metrics.
    let (_, fresh) = run_json(&tmp.path().join("ws2"), &[]);
    for name in ["test_scratch", "test_tuned", "test_frozen"] {
        assert_eq!(
            stage(&fresh, name)["metrics"],
            stage(&r, name)["metrics"],
            "{name} not reproducible"
        );
        assert_eq!(stage(&fresh, name)["key"], stage(&r, name)["key"]);
    }

    // predict and export: the stage and its exported copy give the same answers.
    let spec = quickstart();
    let texts = [
        "i think this blender is superb",
        "the charger arrived flimsy and dreadful",
    ];
    let (code, by_stage, err) = ws(
        &w,
        &[
            "predict",
            spec.to_str().unwrap(),
            "frozen",
            texts[0],
            texts[1],
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let preds: Value = serde_json::from_str(&by_stage).unwrap();
    assert_eq!(preds.as_array().unwrap().len(), 2);
    for p in preds.as_array().unwrap() {
        let probs = p["probabilities"].as_object().unwrap();
        let sum: f64 = probs.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-4);
        assert!(["negative", "positive"].contains(&p["label"].as_str().unwrap()));
    }
    let out = tmp.path().join("model");
    let (code, _, err) = ws(
        &w,
        &[
            "export",
            spec.to_str().unwrap(),
            "frozen",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    for f in ["tokenizer.json", "model.safetensors", "model.json"] {
        assert!(out.join(f).is_file(), "{f} missing from export");
    }
    let (code, by_dir, _) = ws(
        &w,
        &[
            "predict",
            "--model",
            out.to_str().unwrap(),
            texts[0],
            texts[1],
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(by_dir, by_stage);
}

#[test]
fn a_diverging_run_fails_clearly_and_caches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("ws");
    let (code, r) = run_json(&w, &["--set", "scratch.lr=1e30"]);
    assert_eq!(code, 1, "{r}");
    let s = stage(&r, "scratch");
    assert_eq!(s["status"], "failed");
    let err = s["error"].as_str().unwrap();
    assert!(err.contains("lower the learning rate"), "{err}");
    assert_eq!(stage(&r, "test_scratch")["status"], "skipped");
    // Unrelated branches still finished.
    assert_eq!(stage(&r, "test_tuned")["status"], "ran");
    let key = s["key"].as_str().unwrap();
    assert!(
        !w.join("store").join(key).exists(),
        "a failed stage must not leave a store entry"
    );
    // Predicting with it says it is not trained.
    let spec = quickstart();
    let (code, _, err) = ws(
        &w,
        &[
            "predict",
            spec.to_str().unwrap(),
            "scratch",
            "hello",
            "--set",
            "scratch.lr=1e30",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no trained model"), "{err}");
}

#[test]
fn the_lstm_encoder_learns_and_gains_from_pretrained_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("ws");
    let (code, r) = run_json(
        &w,
        &[
            "--set",
            "scratch.encoder.type=lstm",
            "--set",
            "tuned.encoder.type=lstm",
            "--set",
            "scratch.epochs=8",
            "--set",
            "tuned.epochs=8",
        ],
    );
    assert_eq!(code, 0, "{r}");
    let (scratch, tuned) = (accuracy(&r, "test_scratch"), accuracy(&r, "test_tuned"));
    // Measured: scratch 0.755, tuned 0.995.
    assert!(scratch > 0.72, "LSTM from scratch: {scratch}");
    assert!(
        tuned > 0.95 && tuned > scratch + 0.15,
        "LSTM with skip-gram embeddings {tuned} vs scratch {scratch}"
    );
}

/// `--set` pairs for every name in `stages` (e.g. `scratch.encoder.type=cnn`).
fn sets(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
        .collect()
}

fn run_with(w: &Path, pairs: &[(&str, &str)]) -> Value {
    let args = sets(pairs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, r) = run_json(w, &args);
    assert_eq!(code, 0, "{r}");
    r
}

#[test]
fn cnn_and_transformer_encoders_learn_and_gain_from_pretrained_embeddings() {
    let tmp = tempfile::tempdir().unwrap();
    for enc in ["cnn", "transformer"] {
        let r = run_with(
            &tmp.path().join(enc),
            &[
                ("scratch.encoder.type", enc),
                ("tuned.encoder.type", enc),
                ("scratch.epochs", "8"),
                ("tuned.epochs", "8"),
            ],
        );
        let (scratch, tuned) = (accuracy(&r, "test_scratch"), accuracy(&r, "test_tuned"));
        // The majority class is 55 %.
        // Measured (20 epochs): cnn 0.81 → 1.0, transformer 0.76 → 1.0.
        assert!(scratch > 0.72, "{enc} from scratch: {scratch}");
        assert!(
            tuned > 0.95 && tuned > scratch + 0.15,
            "{enc} with skip-gram embeddings {tuned} vs scratch {scratch}"
        );
        // The trained model is usable: predict through the spec, and from an exported folder.
        let spec = quickstart();
        let mut args: Vec<String> = vec!["predict".into(), spec.to_str().unwrap().into(), "tuned".into()];
        args.extend(sets(&[("scratch.encoder.type", enc), ("tuned.encoder.type", enc)]));
        args.extend(sets(&[("scratch.epochs", "8"), ("tuned.epochs", "8")]));
        args.extend([
            "i think this blender is superb".into(),
            "the charger arrived flimsy and dreadful".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let w = tmp.path().join(enc);
        let (code, out, err) = ws(&w, &args);
        assert_eq!(code, 0, "{enc} predict: {err}");
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[1].contains(",positive,") && lines[2].contains(",negative,"),
            "{enc}: {out}"
        );
        let mut export = args[..3].to_vec();
        export[0] = "export";
        let dir = tmp.path().join(format!("{enc}-model"));
        export.extend(["--out", dir.to_str().unwrap()]);
        export.extend(&args[3..11]);
        let (code, _, err) = ws(&w, &export);
        assert_eq!(code, 0, "{enc} export: {err}");
        let (code, out2, err) = ws(&w, &["predict", "--model", dir.to_str().unwrap(), args[11], args[12]]);
        assert_eq!(code, 0, "{enc} predict --model: {err}");
        assert_eq!(out2, out, "{enc}: the exported model predicts differently");
        if enc == "transformer" {
            // The fused ops split rows over threads: same spec, seed and --jobs ⇒ same bits.
            let again = run_with(
                &tmp.path().join("again"),
                &[("scratch.encoder.type", enc), ("scratch.epochs", "8")],
            );
            assert_eq!(
                stage(&again, "test_scratch")["metrics"],
                stage(&r, "test_scratch")["metrics"],
                "transformer training is not reproducible"
            );
        }
    }
}

/// Held-out perplexities of a pretrain stage, per epoch.
fn perplexities(w: &Path, r: &Value, name: &str) -> Vec<f64> {
    let key = stage(r, name)["key"].as_str().unwrap().to_string();
    let pre: Value =
        serde_json::from_slice(&std::fs::read(w.join("store").join(&key).join("files/encoder.json")).unwrap()).unwrap();
    pre["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["held_out_perplexity"].as_f64().unwrap())
        .collect()
}

/// The seed's question: an LSTM pretrained as a next-token language model on the unlabelled
/// text, fine-tuned the ULMFiT way, beats the same LSTM from scratch; so does a transformer
/// pretrained with masked-LM. Perplexity falls and is reported.
///
/// The LSTM's margin moves by several points with the float summation order alone (seeds 13–16
/// measured +2.8, +5.0, +3.4, +8.8 points), so it is asserted on the mean of three seeds
/// (measured +3.7), each seed still ahead; the transformer's is one seed.
#[test]
fn language_model_pretraining_pays() {
    let tmp = tempfile::tempdir().unwrap();
    // (objective, encoder, seeds, the mean margin over scratch to beat, extra settings)
    for (objective, enc, seeds, want, extra) in [
        (
            "lm",
            "lstm",
            &["13", "14", "15"][..],
            0.03,
            &[
                ("tuned.pooling", "concat"),
                ("tuned.gradual_unfreeze", "true"),
                ("tuned.layer_lr_decay", "2.6"),
                ("tuned.encoder_lr_scale", "1"),
            ][..],
        ),
        ("mlm", "transformer", &["13"][..], 0.05, &[][..]),
    ] {
        let mut margins = Vec::new();
        for seed in seeds {
            let w = tmp.path().join(format!("{objective}-{seed}"));
            let mut pairs = vec![
                ("seed", *seed),
                ("embed.objective", objective),
                ("embed.encoder.type", enc),
                ("embed.epochs", "3"),
                ("scratch.encoder.type", enc),
                ("tuned.encoder.type", enc),
                ("scratch.epochs", "8"),
                ("tuned.epochs", "8"),
            ];
            pairs.extend_from_slice(extra);
            let r = run_with(&w, &pairs);
            let ppl = perplexities(&w, &r, "embed");
            assert_eq!(ppl.len(), 3);
            assert!(ppl[2] < ppl[0], "{objective}: perplexity should fall: {ppl:?}");
            // Far below a uniform guess over the 2000-token vocabulary.
            assert!(ppl[2] < 200.0, "{objective}: perplexity {ppl:?}");
            assert_eq!(
                stage(&r, "embed")["metrics"]["held_out_perplexity"].as_f64(),
                ppl.last().copied()
            );
            let (scratch, tuned) = (accuracy(&r, "test_scratch"), accuracy(&r, "test_tuned"));
            assert!(
                tuned > scratch,
                "{enc} pretrained with {objective}, seed {seed}: {tuned} vs scratch {scratch}"
            );
            margins.push(tuned - scratch);
        }
        let mean = margins.iter().sum::<f64>() / margins.len() as f64;
        assert!(
            mean > want,
            "{enc} pretrained with {objective}: margins over scratch {margins:?}, mean {mean}"
        );
    }
}

/// Same spec + seed ⇒ same bytes on any thread count: the quickstart with each of the four
/// encoders and odd batch sizes, run under `--jobs 1`, `2` and `3` in fresh workspaces, gives
/// the same keys and byte-identical files in every store entry. (Before the fused ops chunked
/// batch rows by a fixed count, the LSTM's weight gradient was summed in thread-count-sized
/// chunks and `--jobs 1` / `--jobs 3` wrote different models under one key.)
#[test]
fn artefacts_are_byte_identical_on_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = quickstart();
    let mut per_jobs = Vec::new();
    for jobs in ["1", "2", "3"] {
        let w = tmp.path().join(format!("ws{jobs}"));
        let mut keys = Vec::new();
        for enc in ["bag", "lstm", "cnn", "transformer"] {
            let sets = sets(&[
                ("embed.epochs", "1"),
                ("scratch.encoder.type", enc),
                ("tuned.encoder.type", enc),
                ("scratch.batch_size", "30"),
                ("tuned.batch_size", "17"),
                ("scratch.epochs", "3"),
                ("tuned.epochs", "3"),
            ]);
            let mut args = vec!["run", spec.to_str().unwrap(), "--json", "--jobs", jobs];
            args.extend(sets.iter().map(String::as_str));
            let (code, out, err) = ws(&w, &args);
            assert_eq!(code, 0, "{enc} with --jobs {jobs}: {err}");
            let r: Value = serde_json::from_str(&out).unwrap();
            let mut k: Vec<(String, String)> = r["stages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["name"].as_str().unwrap().to_string(),
                        s["key"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            k.sort();
            keys.push(k);
        }
        per_jobs.push((jobs, keys, crate::common::store_checksums(&w)));
    }
    let (_, keys1, sums1) = &per_jobs[0];
    assert!(
        sums1.len() > 30,
        "expected the files of ~30 entries, got {}",
        sums1.len()
    );
    for (jobs, keys, sums) in &per_jobs[1..] {
        assert_eq!(keys, keys1, "keys differ between --jobs 1 and --jobs {jobs}");
        let differing: Vec<&String> = sums1
            .iter()
            .filter(|(f, h)| sums.get(*f) != Some(h))
            .map(|(f, _)| f)
            .collect();
        assert!(
            differing.is_empty() && sums.len() == sums1.len(),
            "--jobs {jobs} wrote other bytes than --jobs 1 under the same keys: {differing:?}"
        );
    }
}

/// The quickstart with a `domain` dataset (a copy of train.csv, labels declared) added to the
/// tokenizer and three logistic heads: pooled vectors + TF-IDF n-grams, n-grams alone (the
/// linear baseline) and the former with self-training on `domain`.
/// Floor for the hybrid head with `idf: all`: measured 0.961 (the default, idf over the
/// labelled rows: 0.9725).
const IDF_ALL_MIN: f64 = 0.93;

fn ngram_spec(dir: &Path, domain_csv: &str) -> PathBuf {
    let data = root().join("datasets/quickstart");
    std::fs::write(dir.join("domain.csv"), domain_csv).unwrap();
    let spec = std::fs::read_to_string(quickstart())
        .unwrap()
        .replace("../datasets/quickstart", data.to_str().unwrap())
        .replace(
            "  test:       {",
            &format!("  domain:     {{ path: {}, label: label }}\n  test:       {{", dir.join("domain.csv").display()),
        )
        .replace("encode: [unlabelled, train, dev, test]", "encode: [unlabelled, train, dev, test, domain]")
        .replace(
            "  test_scratch:",
            "  hybrid: { kind: feature-extract, from: seqs, encoder: embed, train: train, train_size: 100, ngrams: 2, unlabelled: [domain] }\n  \
             linear: { kind: feature-extract, from: seqs, encoder: embed, train: train, train_size: 100, ngrams: 2, pooled: false }\n  \
             selftrained: { kind: feature-extract, from: seqs, encoder: embed, train: train, train_size: 100, ngrams: 2, unlabelled: [domain], rounds: 2, pooling: meanmax }\n  \
             test_hybrid: { kind: evaluate, model: hybrid, from: seqs, data: test }\n  \
             test_linear: { kind: evaluate, model: linear, from: seqs, data: test }\n  \
             test_selftrained: { kind: evaluate, model: selftrained, from: seqs, data: test }\n  \
             test_scratch:",
        );
    let p = dir.join("ngrams.yaml");
    std::fs::write(&p, spec).unwrap();
    p
}

/// TF-IDF n-grams in the logistic head learn (alone and beside pooled vectors), predict the
/// same from an exported folder, learn from exactly the label budget, and never read the labels
/// of the `unlabelled` texts: scrambling those labels changes no byte of any model.
#[test]
fn ngram_heads_learn_and_read_no_label_beyond_the_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let train = std::fs::read_to_string(root().join("datasets/quickstart/train.csv")).unwrap();
    let scrambled: String = train
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_string()
            } else if i % 2 == 0 {
                l.replace(",positive", ",NEG")
                    .replace(",negative", ",positive")
                    .replace(",NEG", ",negative")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let mut runs = Vec::new();
    for (name, domain) in [("a", &train), ("b", &scrambled)] {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        let spec = ngram_spec(&dir, domain);
        let w = dir.join("ws");
        let (code, out, err) = ws(&w, &["run", spec.to_str().unwrap(), "--json", "--jobs", "2"]);
        assert_eq!(code, 0, "{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        runs.push((w, r, spec));
    }
    let (w, r, spec) = &runs[0];
    // Measured at 100 labels (majority class 0.55; feature-extract v12, pretrain v7): hybrid
    // 0.9725, self-trained 0.969, linear 0.5675 — the quickstart's training rows show only 12 of the 96
    // sentiment words, so n-grams alone barely generalise and the pretrained vectors carry the
    // rest. (v10, with idf over the unlabelled texts too: hybrid 0.868, self-trained 0.852.)
    // pretrain v8 (two-shard word2vec, other random draws): hybrid 0.945, self-trained 0.946,
    // linear 0.5675; v8 with one shard gave 0.97 / 0.927 — at 100 labels the draw of vectors
    // moves these by ~2-4 points, so the floors sit below the spread, not at one draw.
    for (stage, min) in [("test_hybrid", 0.92), ("test_linear", 0.56), ("test_selftrained", 0.92)] {
        let a = accuracy(r, stage);
        assert!(a > min, "{stage}: accuracy {a} (expected > {min})");
    }
    // The template's head: `meanmax` pooling gives the max and the mean part a C each, beside
    // the n-grams' (a number, or "off" where the selection switched the block off).
    let files = w
        .join("store")
        .join(stage(r, "selftrained")["key"].as_str().unwrap())
        .join("files");
    let record: Value = serde_json::from_slice(&std::fs::read(files.join("logistic.json")).unwrap()).unwrap();
    let blocks: Vec<&str> = record["c"].as_object().unwrap().keys().map(|k| k.as_str()).collect();
    assert_eq!(blocks, ["max", "mean", "ngrams"], "{record:#}");
    // `idf: all` (idf also over the unlabelled texts) is a different model with its own key,
    // and it learns too.
    let (code, out, err) = ws(w, &["run", spec.to_str().unwrap(), "--json", "--set", "hybrid.idf=all"]);
    assert_eq!(code, 0, "{err}");
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_ne!(
        stage(&all, "hybrid")["key"],
        stage(r, "hybrid")["key"],
        "idf is in the key"
    );
    let a = accuracy(&all, "test_hybrid");
    eprintln!(
        "accuracy: hybrid {} (idf all {a}), linear {}, selftrained {}",
        accuracy(r, "test_hybrid"),
        accuracy(r, "test_linear"),
        accuracy(r, "test_selftrained")
    );
    assert!(a > IDF_ALL_MIN, "idf: all: accuracy {a} (expected > {IDF_ALL_MIN})");
    for s in ["hybrid", "linear", "selftrained"] {
        let files = w.join("store").join(stage(r, s)["key"].as_str().unwrap()).join("files");
        let rows: Value = serde_json::from_slice(&std::fs::read(files.join("train_rows.json")).unwrap()).unwrap();
        assert_eq!(
            rows["rows"].as_array().unwrap().len(),
            100,
            "{s} must learn from exactly 100 labelled rows"
        );
        // The other model: same bytes although every other label of `domain` was flipped.
        let (w2, r2, _) = &runs[1];
        let files2 = w2
            .join("store")
            .join(stage(r2, s)["key"].as_str().unwrap())
            .join("files");
        for f in ["model.safetensors", "model.json"] {
            assert!(
                std::fs::read(files.join(f)).unwrap() == std::fs::read(files2.join(f)).unwrap(),
                "{s}/{f} changed when only the labels of the unlabelled texts changed"
            );
        }
    }
    // Export and predict: the n-gram weights travel with the model.
    let (code, direct, err) = ws(
        w,
        &[
            "predict",
            spec.to_str().unwrap(),
            "linear",
            "the kettle is superb",
            "the lamp is dreadful",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let out = w.parent().unwrap().join("linear-model");
    let (code, _, err) = ws(
        w,
        &[
            "export",
            spec.to_str().unwrap(),
            "linear",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, exported, err) = ws(
        w,
        &[
            "predict",
            "--model",
            out.to_str().unwrap(),
            "the kettle is superb",
            "the lamp is dreadful",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(direct, exported);
}

/// pipelines/transfer.yaml, the template users copy: exactly five datasets; the test set's texts
/// are only encoded, padded and evaluated — never fitted on, pretrained on, self-trained on or trained
/// on; the three evaluate stages the README names exist; and it validates where ../shared is.
#[test]
fn the_transfer_template_never_trains_on_the_test_set() {
    let path = root().join("pipelines/transfer.yaml");
    let v: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let names: Vec<&str> = v["datasets"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(names, ["general", "domain", "train", "dev", "test"]);
    let mut uses_of_test = Vec::new();
    for (name, stage) in v["stages"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        for (field, value) in stage.as_mapping().unwrap() {
            let field = field.as_str().unwrap();
            let mentions = match value {
                serde_yaml::Value::String(s) => s == "test",
                serde_yaml::Value::Sequence(xs) => xs.iter().any(|x| x.as_str() == Some("test")),
                _ => false,
            };
            if mentions {
                uses_of_test.push(format!("{name}.{field}"));
            }
        }
    }
    uses_of_test.sort();
    assert_eq!(
        uses_of_test,
        [
            "eval_linear.data",
            "eval_recipe.data",
            "eval_scratch.data",
            "seqs.datasets",
            "tok.encode"
        ],
        "the test set may only be encoded, padded and evaluated"
    );
    if !root().join("../shared/datasets").is_dir() {
        crate::common::skip(
            "the_transfer_template_never_trains_on_the_test_set",
            "../shared/datasets is absent: the template's paths were not validated",
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = ws(&tmp.path().join("ws"), &["validate", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}

/// When stderr is not a terminal (CI, Slurm job logs), training stages print a line per epoch
/// with loss, dev metric, elapsed time and ETA (here every epoch: `WARMSTART_PROGRESS_EVERY=0`;
/// by default at most one line per 5 s per stage, so short stages add nothing).
#[test]
fn training_stages_log_epochs_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |every: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
            .arg("--workspace")
            .arg(tmp.path().join(format!("ws{every}")))
            .args(["run", quickstart().to_str().unwrap()])
            .env("WARMSTART_PROGRESS_EVERY", every)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run("0");
    let scratch: Vec<&str> = err.lines().filter(|l| l.starts_with("scratch: epoch ")).collect();
    assert!(scratch.len() >= 3, "a line per epoch of the finetune stage:\n{err}");
    assert!(
        scratch[0].starts_with("scratch: epoch 1/20: train loss "),
        "{}",
        scratch[0]
    );
    assert!(
        scratch
            .iter()
            .all(|l| l.contains("dev accuracy") && l.contains("elapsed, ETA")),
        "{scratch:?}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("embed: epoch 5/5: train loss ") && l.contains("held-out loss")),
        "{err}"
    );
    let quiet = run("3600");
    assert!(
        !quiet.contains(": epoch "),
        "short stages print no epoch lines by default:\n{quiet}"
    );
}

/// `-q`, `-v` and `--color`, as cargo has them: quiet prints only the result line, verbose an
/// epoch line for every epoch, `--color always|never` decides the ANSI status colours, and
/// `-q -v` together is a usage error.
#[test]
fn quiet_verbose_and_color_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |ws: &str, flags: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
            .arg("--workspace")
            .arg(tmp.path().join(ws))
            .args(flags)
            .args(["run", quickstart().to_str().unwrap()])
            .env_remove("WARMSTART_PROGRESS_EVERY")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run("q", &["-q"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "-q: nothing on stderr, got:\n{err}");
    assert_eq!(out.lines().count(), 1, "-q: only the result line:\n{out}");
    assert!(out.starts_with("quickstart: ok in "), "{out}");
    let (_, _, err) = run("v", &["-v"]);
    let epochs = err.lines().filter(|l| l.starts_with("scratch: epoch ")).count();
    assert!(epochs >= 5, "-v: a line for every epoch of `scratch`:\n{err}");
    let (_, out, _) = run("v", &["--color", "always"]);
    assert!(out.contains("\u{1b}[32mok\u{1b}[0m"), "{out}");
    let (_, out, _) = run("v", &["--color", "never"]);
    assert!(!out.contains('\u{1b}'), "{out}");
    let (code, _, err) = run("v", &["-q", "-v"]);
    assert_eq!(code, Some(2), "{err}");
}

/// `feature-extract`'s `layers`: frozen features from chosen layers of a pretrained transformer
/// (0 = its token embeddings … 2 = its top layer), each layer's pooled block with its own C.
/// The top layer named alone gives exactly the features of a spec without `layers`; predict on
/// the stored model reads the same layers; a layer the encoder lacks fails the stage, naming
/// the layers it has.
#[test]
fn features_from_chosen_layers_of_a_pretrained_transformer() {
    let tmp = tempfile::tempdir().unwrap();
    let w = tmp.path().join("ws");
    let base = [
        ("embed.objective", "mlm"),
        ("embed.encoder.type", "transformer"),
        ("embed.epochs", "2"),
        ("scratch.encoder.type", "transformer"),
        ("tuned.encoder.type", "transformer"),
        ("scratch.epochs", "1"),
        ("tuned.epochs", "1"),
    ];
    let with = |layers: Option<&'static str>| {
        let mut pairs = base.to_vec();
        pairs.extend(layers.map(|l| ("frozen.layers", l)));
        run_with(&w, &pairs)
    };
    let top = with(None);
    let mix = with(Some("[0, 1, 2]"));
    let top_named = with(Some("[2]"));
    let logistic = |r: &Value| -> Value {
        let key = stage(r, "frozen")["key"].as_str().unwrap().to_string();
        serde_json::from_slice(&std::fs::read(w.join("store").join(key).join("files/logistic.json")).unwrap()).unwrap()
    };
    let blocks = |r: &Value| -> Vec<String> { logistic(r)["c"].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(blocks(&mix), ["mean@0", "mean@1", "mean@2"], "{}", logistic(&mix));
    assert_eq!(blocks(&top_named), ["mean@2"]);
    assert_eq!(blocks(&top), ["mean"]);
    // Naming the top layer reads the same features as naming none (another key, same fit).
    assert_ne!(stage(&top, "frozen")["key"], stage(&top_named, "frozen")["key"]);
    assert_eq!(logistic(&top)["objective"], logistic(&top_named)["objective"]);
    assert_eq!(accuracy(&top, "test_frozen"), accuracy(&top_named, "test_frozen"));
    // After 2 epochs of masked-LM the top layer's mean is at the majority class (0.55) and the
    // embeddings layer carries more (measured 0.556 vs 0.611; a layer mix 0.610): which layer
    // to read matters, as ELMo and BERT found for their lower layers.
    let bottom = with(Some("[0]"));
    let (t, b, m) = (
        accuracy(&top, "test_frozen"),
        accuracy(&bottom, "test_frozen"),
        accuracy(&mix, "test_frozen"),
    );
    assert!(b > t + 0.03, "layer 0 {b} vs the top layer {t}");
    assert!(m > 0.58, "layers [0, 1, 2]: {m} (majority class 0.55)");
    // predict reads the model's layers: the stored model classifies new text.
    let spec = quickstart();
    let mut args = vec!["predict", spec.to_str().unwrap(), "frozen", "--format", "json"];
    let sets = sets(&[base.to_vec(), vec![("frozen.layers", "[0, 1, 2]")]].concat());
    args.extend(sets.iter().map(String::as_str));
    args.push("a text to classify");
    let (code, out, err) = ws(&w, &args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a text to classify"), "{out}");
    // An exported folder keeps the layers: its card names them and predict --model reads them.
    let folder = tmp.path().join("exported");
    let mut args = vec![
        "export",
        spec.to_str().unwrap(),
        "frozen",
        "--out",
        folder.to_str().unwrap(),
    ];
    args.extend(sets.iter().map(String::as_str));
    let (code, _, err) = ws(&w, &args);
    assert_eq!(code, 0, "{err}");
    let card = std::fs::read_to_string(folder.join("README.md")).unwrap();
    assert!(card.contains("| layers | 0, 1, 2 "), "{card}");
    let (code, out, err) = ws(
        &w,
        &["predict", "--model", folder.to_str().unwrap(), "a text to classify"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a text to classify"), "{out}");
    // A layer the encoder does not have: the stage fails and says which layers there are.
    let mut pairs = base.to_vec();
    pairs.push(("frozen.layers", "[3]"));
    let args = sets_args(&pairs);
    let (code, out, err) = ws(&w, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("layer 3") && err.contains("0 (token embeddings) to 2"),
        "{err}"
    );
}

fn sets_args(pairs: &[(&str, &str)]) -> Vec<String> {
    let spec = quickstart();
    let mut args = vec![
        "run".to_string(),
        spec.to_str().unwrap().to_string(),
        "--jobs".into(),
        "2".into(),
    ];
    args.extend(sets(pairs));
    args
}
