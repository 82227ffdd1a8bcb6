//! Caching behaviour of `warmstart run` / `status`, exercised through the CLI binary.

use std::fs;
use std::time::{Duration, SystemTime};

use crate::common::{
    expect, freshness, gen_chinese, gen_corpus, gen_csv, keys, reasons, stage, statuses, Project, SPEC,
};
use serde_json::Value;

/// Human `status` output: stage name → the rest of its line ("fresh" or "stale: ...").
fn human_status(p: &Project, extra: &[&str]) -> std::collections::BTreeMap<String, String> {
    let mut a = vec!["status", "spec.yaml"];
    a.extend_from_slice(extra);
    let (code, out, err) = p.run(&a);
    assert_eq!(code, 0, "status failed: {err}");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, rest) = l.split_once(char::is_whitespace).expect("`name  state` line");
            (name.to_string(), rest.trim().to_string())
        })
        .collect()
}

#[test]
fn first_run_runs_everything_second_run_is_cached() {
    let p = Project::new();
    let st = p.status_json("spec.yaml", &[]);
    assert_eq!(st["pipeline"], "t1");
    assert_eq!(reasons(&st)["tok"], vec!["never run"]);
    assert_eq!(reasons(&st)["seqs"], vec!["never run"]);

    let r1 = p.run_ok("spec.yaml", &[]);
    assert_eq!(r1["pipeline"], "t1");
    assert_eq!(statuses(&r1), expect(&[("tok", "ran"), ("seqs", "ran")]));
    assert_eq!(stage(&r1, "tok")["kind"], "tokenize");
    assert_eq!(stage(&r1, "seqs")["kind"], "pad");
    assert_eq!(stage(&r1, "tok")["reasons"], serde_json::json!(["never run"]));
    // Stages are reported in dependency order.
    let names: Vec<&str> = r1["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tok", "seqs"]);

    let r2 = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r2), expect(&[("tok", "cached"), ("seqs", "cached")]));
    assert_eq!(keys(&r1), keys(&r2));
    // A cached stage still reports its summary.
    assert_eq!(stage(&r1, "tok")["summary"], stage(&r2, "tok")["summary"]);

    // Human output of status and of a cached run.
    let hs = human_status(&p, &[]);
    assert_eq!(hs["tok"], "fresh");
    assert_eq!(hs["seqs"], "fresh");
    let (code, out, err) = p.run(&["run", "spec.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().any(|l| l.starts_with("tok") && l.contains("cached")),
        "{out}"
    );
    assert!(out.contains("t1: ok"), "{out}");
}

#[test]
fn pad_param_change_in_spec_file_reruns_only_pad() {
    let p = Project::new();
    p.run_ok("spec.yaml", &[]);
    p.write("spec.yaml", &SPEC.replace("max_len: 16", "max_len: 8"));

    let st = p.status_json("spec.yaml", &[]);
    assert!(freshness(&st)["tok"]);
    assert!(!freshness(&st)["seqs"]);
    assert_eq!(reasons(&st)["seqs"], vec!["param `max_len` changed (16 → 8)"]);
    let hs = human_status(&p, &[]);
    assert_eq!(hs["tok"], "fresh");
    assert_eq!(hs["seqs"], "stale: param `max_len` changed (16 → 8)");

    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "ran")]));
    assert_eq!(
        stage(&r, "seqs")["reasons"],
        serde_json::json!(["param `max_len` changed (16 → 8)"])
    );
    assert!(
        stage(&r, "seqs")["summary"].as_str().unwrap().contains("padded to 8"),
        "{r:#}"
    );
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "cached")]));
}

#[test]
fn pad_param_change_via_set_reruns_only_pad() {
    let p = Project::new();
    let r0 = p.run_ok("spec.yaml", &[]);

    let st = p.status_json("spec.yaml", &["--set", "seqs.max_len=8"]);
    assert!(freshness(&st)["tok"]);
    assert_eq!(reasons(&st)["seqs"], vec!["param `max_len` changed (16 → 8)"]);

    let r = p.run_ok("spec.yaml", &["--set", "seqs.max_len=8"]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "ran")]));
    assert_eq!(keys(&r)["tok"], keys(&r0)["tok"]);
    assert_ne!(keys(&r)["seqs"], keys(&r0)["seqs"]);
    // The long form of the path means the same thing.
    let r = p.run_ok("spec.yaml", &["--set", "stages.seqs.max_len=8"]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "cached")]));
}

#[test]
fn tokenize_param_change_reruns_tok_and_pad() {
    let p = Project::new();
    p.run_ok("spec.yaml", &[]);
    p.write("spec.yaml", &SPEC.replace("vocab_size: 200", "vocab_size: 300"));

    let st = p.status_json("spec.yaml", &[]);
    assert_eq!(reasons(&st)["tok"], vec!["param `vocab_size` changed (200 → 300)"]);
    assert_eq!(reasons(&st)["seqs"], vec!["upstream stage `tok` changed"]);
    let hs = human_status(&p, &[]);
    assert_eq!(hs["tok"], "stale: param `vocab_size` changed (200 → 300)");
    assert_eq!(hs["seqs"], "stale: upstream stage `tok` changed");

    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "ran")]));
    assert_eq!(reasons(&r)["seqs"], vec!["upstream stage `tok` changed"]);

    // The same through --set (algorithm this time).
    let st = p.status_json("spec.yaml", &["--set", "tok.algorithm=bpe"]);
    assert_eq!(
        reasons(&st)["tok"],
        vec!["param `algorithm` changed (\"wordpiece\" → \"bpe\")"]
    );
    let r = p.run_ok("spec.yaml", &["--set", "tok.algorithm=bpe"]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "ran")]));
}

/// A spec whose second tokenize branch reads only `corpus.txt`, so a change to `train.csv` must
/// leave it alone.
const TWO_BRANCH_SPEC: &str = "\
name: t3
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
stages:
  tok:
    kind: tokenize
    fit_on: [corpus, train]
    vocab_size: 200
  seqs:
    kind: pad
    from: tok
    max_len: 16
  tok2:
    kind: tokenize
    fit_on: [corpus]
    vocab_size: 100
  seqs2:
    kind: pad
    from: tok2
    max_len: 12
";

#[test]
fn touching_a_dataset_reruns_nothing_changing_it_reruns_its_readers() {
    let p = Project::new();
    p.write("spec2.yaml", TWO_BRANCH_SPEC);
    let r = p.run_ok("spec2.yaml", &[]);
    assert!(statuses(&r).values().all(|s| s == "ran"), "{r:#}");

    // Same bytes, newer mtime (rewritten after a pause, then pushed an hour ahead to be sure).
    let original = p.read("train.csv");
    std::thread::sleep(Duration::from_millis(20));
    p.write("train.csv", &original);
    let f = fs::File::options()
        .write(true)
        .open(p.path().join("train.csv"))
        .unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(3600)).unwrap();
    drop(f);
    let st = p.status_json("spec2.yaml", &[]);
    assert!(
        freshness(&st).values().all(|&f| f),
        "touch made something stale: {st:#}"
    );
    let r = p.run_ok("spec2.yaml", &[]);
    assert!(statuses(&r).values().all(|s| s == "cached"), "{r:#}");

    // New content: the readers of train.csv (and their downstream) rerun, nothing else.
    p.write("train.csv", &format!("{original}the plot was great and moving,pos\n"));
    let st = p.status_json("spec2.yaml", &[]);
    assert_eq!(reasons(&st)["tok"], vec!["input file `train.csv` changed"]);
    assert_eq!(reasons(&st)["seqs"], vec!["upstream stage `tok` changed"]);
    assert!(freshness(&st)["tok2"]);
    assert!(freshness(&st)["seqs2"]);
    let (code, out, _) = p.run(&["status", "spec2.yaml"]);
    assert_eq!(code, 0);
    assert!(out.contains("stale: input file `train.csv` changed"), "{out}");

    let r = p.run_ok("spec2.yaml", &[]);
    assert_eq!(
        statuses(&r),
        expect(&[("tok", "ran"), ("seqs", "ran"), ("tok2", "cached"), ("seqs2", "cached")])
    );
    assert_eq!(reasons(&r)["tok"], vec!["input file `train.csv` changed"]);
}

#[test]
fn same_size_content_change_is_detected() {
    // A change that keeps the file size must still be seen (content hash, not size alone).
    let p = Project::new();
    p.run_ok("spec.yaml", &[]);
    let original = p.read("train.csv");
    let changed = original.replacen(",pos\n", ",neg\n", 1);
    assert_ne!(original, changed);
    assert_eq!(original.len(), changed.len());
    p.write("train.csv", &changed);
    let st = p.status_json("spec.yaml", &[]);
    assert_eq!(reasons(&st)["tok"], vec!["input file `train.csv` changed"]);
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "ran")]));
}

#[test]
fn reverted_param_is_fresh_again_immediately() {
    let p = Project::new();
    let r0 = p.run_ok("spec.yaml", &[]);
    let r1 = p.run_ok("spec.yaml", &["--set", "tok.vocab_size=300"]);
    assert_eq!(statuses(&r1), expect(&[("tok", "ran"), ("seqs", "ran")]));

    // Back to the file's values: both old entries are still in the store.
    let st = p.status_json("spec.yaml", &[]);
    assert!(freshness(&st).values().all(|&f| f), "{st:#}");
    let r2 = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r2), expect(&[("tok", "cached"), ("seqs", "cached")]));
    assert_eq!(keys(&r2), keys(&r0));

    // And the changed one is still there too.
    let r3 = p.run_ok("spec.yaml", &["--set", "tok.vocab_size=300"]);
    assert_eq!(statuses(&r3), expect(&[("tok", "cached"), ("seqs", "cached")]));
    assert_eq!(keys(&r3), keys(&r1));

    // Same through editing the file and editing it back.
    p.write("spec.yaml", &SPEC.replace("max_len: 16", "max_len: 9"));
    let r4 = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r4), expect(&[("tok", "cached"), ("seqs", "ran")]));
    p.write("spec.yaml", SPEC);
    let r5 = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r5), expect(&[("tok", "cached"), ("seqs", "cached")]));
}

#[test]
fn force_reruns_only_the_named_stage() {
    let p = Project::new();
    let r0 = p.run_ok("spec.yaml", &[]);
    let pad_before = fs::read(p.files(&keys(&r0)["seqs"]).join("train.pad")).unwrap();

    let r = p.run_ok("spec.yaml", &["--force", "seqs"]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "ran")]));
    assert_eq!(stage(&r, "seqs")["reasons"], serde_json::json!(["forced"]));
    assert_eq!(keys(&r), keys(&r0), "forcing must not change keys");
    let pad_after = fs::read(p.files(&keys(&r)["seqs"]).join("train.pad")).unwrap();
    assert_eq!(pad_before, pad_after);

    // The replaced entry is intact: the next run finds everything cached.
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "cached")]));
    assert_eq!(fs::read_dir(p.ws().join("tmp")).unwrap().count(), 0);

    // Forcing the upstream stage reruns it; the pad stage's key is unchanged, so it stays cached.
    let r = p.run_ok("spec.yaml", &["--force", "tok"]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "cached")]));
}

#[test]
fn force_unknown_stage_is_a_usage_error() {
    let p = Project::new();
    let (code, out, err) = p.run(&["run", "spec.yaml", "--force", "nope"]);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    assert!(err.contains("nope"), "{err}");
    assert!(err.contains("no such stage"), "{err}");
    assert!(
        err.contains("tok") && err.contains("seqs"),
        "should list the stages: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Nothing ran.
    let st = p.status_json("spec.yaml", &[]);
    assert!(freshness(&st).values().all(|&f| !f));
}

fn branches_spec(bad_dataset: &str) -> String {
    format!(
        "\
name: branches
datasets:
  train: {{ path: train.csv, label: label }}
  other: {{ path: {bad_dataset}, label: label }}
stages:
  tok_a:
    kind: tokenize
    fit_on: [train]
    vocab_size: 200
  pad_a:
    kind: pad
    from: tok_a
    max_len: 16
  tok_b:
    kind: tokenize
    fit_on: [other]
    vocab_size: 300
    algorithm: bpe
  pad_b:
    kind: pad
    from: tok_b
    max_len: 10
    padding: pre
    add_cls: true
"
    )
}

#[test]
fn independent_branches_run_in_parallel() {
    let p = Project::new();
    p.write("other.csv", &gen_csv(200, 7));
    p.write("branches.yaml", &branches_spec("other.csv"));
    let r = p.run_ok("branches.yaml", &["--jobs", "2"]);
    assert_eq!(r["jobs"], 2);
    assert_eq!(
        statuses(&r),
        expect(&[("tok_a", "ran"), ("pad_a", "ran"), ("tok_b", "ran"), ("pad_b", "ran")])
    );
    let k = keys(&r);
    let distinct: std::collections::BTreeSet<&String> = k.values().collect();
    assert_eq!(distinct.len(), 4, "every stage has its own key: {k:?}");
    // Each pad stage comes after its tokenize stage in the report.
    let names: Vec<&str> = r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("tok_a") < pos("pad_a") && pos("tok_b") < pos("pad_b"), "{names:?}");

    let r = p.run_ok("branches.yaml", &["--jobs", "2"]);
    assert!(statuses(&r).values().all(|s| s == "cached"), "{r:#}");
}

#[test]
fn failing_branch_is_isolated_and_resumes_after_fix() {
    let p = Project::new();
    let good = gen_csv(200, 7);
    // Blank the label of the 50th data row (file line 51).
    let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
    let row = lines[50].rsplit_once(',').unwrap().0.to_string();
    lines[50] = format!("{row},");
    p.write("other.csv", &(lines.join("\n") + "\n"));
    p.write("branches.yaml", &branches_spec("other.csv"));

    // The spec itself is fine (only the header is checked before running).
    let (code, out, err) = p.run(&["validate", "branches.yaml"]);
    assert_eq!(code, 0, "{out}{err}");

    let (code, r) = p.run_json(&["run", "branches.yaml", "--jobs", "2"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["ok"], false);
    assert_eq!(
        statuses(&r),
        expect(&[
            ("tok_a", "ran"),
            ("pad_a", "ran"),
            ("tok_b", "failed"),
            ("pad_b", "skipped")
        ])
    );
    let error = stage(&r, "tok_b")["error"]
        .as_str()
        .expect("failed stage has an error")
        .to_string();
    assert!(error.contains("other.csv"), "error should name the file: {error}");
    assert!(error.contains("empty label"), "{error}");
    assert!(error.contains(":51:"), "error should name the line: {error}");
    assert_eq!(reasons(&r)["pad_b"], vec!["upstream stage `tok_b` failed"]);
    // A failed stage leaves nothing in the store or in tmp/.
    assert!(!p.ws().join("store").join(&keys(&r)["tok_b"]).exists());
    assert_eq!(fs::read_dir(p.ws().join("tmp")).unwrap().count(), 0);

    // Human output also exits 1 and says FAILED.
    let (code, out, err) = p.run(&["run", "branches.yaml", "--jobs", "2"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    assert!(!err.contains("panicked"), "{err}");

    // Fix the data: only the failed branch runs.
    p.write("other.csv", &good);
    let r = p.run_ok("branches.yaml", &["--jobs", "2"]);
    assert_eq!(
        statuses(&r),
        expect(&[
            ("tok_a", "cached"),
            ("pad_a", "cached"),
            ("tok_b", "ran"),
            ("pad_b", "ran")
        ])
    );
}

#[test]
fn artefacts_are_in_the_store_and_tmp_is_clean() {
    let p = Project::new();
    let r = p.run_ok("spec.yaml", &[]);
    let k = keys(&r);
    let store = p.ws().join("store");
    for (stage_name, key) in &k {
        assert_eq!(key.len(), 64, "blake3 hex key: {key}");
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
        let entry: Value = serde_json::from_slice(&fs::read(store.join(key).join("entry.json")).unwrap()).unwrap();
        assert_eq!(entry["key"], key.as_str());
        assert_eq!(entry["stage"], stage_name.as_str());
        assert_eq!(entry["pipeline"], "t1");
        // Every file listed in entry.json exists with the recorded size.
        let files = entry["files"].as_object().expect("files map");
        assert!(!files.is_empty());
        for (rel, sum) in files {
            let md = fs::metadata(store.join(key).join("files").join(rel)).unwrap();
            assert_eq!(md.len(), sum["bytes"].as_u64().unwrap(), "{rel}");
        }
    }
    let tok = p.files(&k["tok"]);
    assert!(tok.join("tokenizer.json").is_file());
    assert!(tok.join("meta.json").is_file());
    assert!(tok.join("train.seq").is_file());
    assert!(tok.join("corpus.seq").is_file());
    let tokenizer: Value = serde_json::from_slice(&fs::read(tok.join("tokenizer.json")).unwrap()).unwrap();
    assert!(tokenizer["model"].is_object(), "tokenizer.json is a tokenizers file");

    let pad = p.files(&k["seqs"]);
    assert!(pad.join("train.pad").is_file());
    assert!(pad.join("corpus.pad").is_file());
    assert!(pad.join("tokenizer.json").is_file());
    let meta: Value = serde_json::from_slice(&fs::read(pad.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["max_len"], 16);
    assert_eq!(meta["datasets"]["train"]["rows"], crate::common::ROWS);
    assert_eq!(meta["labels"], serde_json::json!(["neg", "pos"]));

    let tmp: Vec<_> = fs::read_dir(p.ws().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "leftovers in tmp: {tmp:?}");
    // Nothing is written next to the spec except the workspace.
    let mut top: Vec<String> = fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(top, [".ws", "corpus.txt", "spec.yaml", "train.csv"]);
}

#[test]
fn fresh_workspaces_reproduce_keys() {
    let a = Project::new();
    let b = Project::new();
    let ra = a.run_ok("spec.yaml", &["--jobs", "1"]);
    let rb = b.run_ok("spec.yaml", &["--jobs", "2"]);
    assert_eq!(
        keys(&ra),
        keys(&rb),
        "keys must not depend on the project folder or --jobs"
    );
    assert_eq!(stage(&ra, "tok")["summary"], stage(&rb, "tok")["summary"]);
    // The same files exist in both entries.
    for name in ["tok", "seqs"] {
        let list = |p: &Project| {
            let mut v: Vec<String> = fs::read_dir(p.files(&keys(&ra)[name]))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(list(&a), list(&b));
    }
    // A different seed does not change tokenize/pad keys (they do not use the seed).
    let rs = a.run_ok("spec.yaml", &["--set", "seed=99"]);
    assert_eq!(statuses(&rs), expect(&[("tok", "cached"), ("seqs", "cached")]));
}

/// The same key must mean the same bytes. Regression test: the tokenize stage's output used to
/// depend on hash-map iteration order inside the `tokenizers` trainer (`AHashMap`s with a
/// per-process random seed decide the ids of `##x` tokens and break ties between merges), so
/// `tokenizer.json`, `.seq` and `.pad` files differed between fresh workspaces with equal keys.
#[test]
fn fresh_workspaces_produce_byte_identical_artefacts() {
    let projects: Vec<Project> = (0..3).map(|_| Project::new()).collect();
    let reports: Vec<Value> = projects
        .iter()
        .zip(["1", "2", "1"])
        .map(|(p, jobs)| p.run_ok("spec.yaml", &["--jobs", jobs]))
        .collect();
    let k = keys(&reports[0]);
    for r in &reports[1..] {
        assert_eq!(keys(r), k);
    }
    let mut differing = Vec::new();
    for (stage_name, file) in [
        ("tok", "tokenizer.json"),
        ("tok", "train.seq"),
        ("tok", "corpus.seq"),
        ("seqs", "train.pad"),
        ("seqs", "corpus.pad"),
    ] {
        let first = fs::read(projects[0].files(&k[stage_name]).join(file)).unwrap();
        for (i, p) in projects.iter().enumerate().skip(1) {
            if fs::read(p.files(&k[stage_name]).join(file)).unwrap() != first {
                differing.push(format!("{stage_name}/{file} (workspace 0 vs {i})"));
            }
        }
    }
    assert!(
        differing.is_empty(),
        "same keys but different artefact bytes in fresh workspaces: {differing:?}"
    );
}

#[test]
fn chinese_text_tokenizes_with_low_unk_rate() {
    let p = Project::empty();
    p.write("reviews.txt", &gen_chinese(300, 5));
    p.write(
        "zh.yaml",
        "\
name: zh
datasets:
  reviews: { path: reviews.txt }
stages:
  tok:
    kind: tokenize
    fit_on: [reviews]
    vocab_size: 300
  seqs:
    kind: pad
    from: tok
    max_len: 24
",
    );
    let r = p.run_ok("zh.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "ran")]));
    let summary = stage(&r, "tok")["summary"].as_str().unwrap().to_string();
    assert!(summary.contains("tokens"), "{summary}");
    assert!(summary.contains("300 rows"), "{summary}");
    let meta: Value = serde_json::from_slice(&fs::read(p.files(&keys(&r)["tok"]).join("meta.json")).unwrap()).unwrap();
    let ds = &meta["datasets"]["reviews"];
    assert_eq!(ds["rows"], 300);
    let tokens = ds["tokens"].as_u64().unwrap();
    // Every CJK character is its own token, so there are more tokens than rows by far.
    assert!(tokens > 300 * 5, "tokens: {tokens}");
    assert!(summary.contains(&format!("{tokens} tokens")), "{summary}");
    let unk = ds["unk_rate"].as_f64().unwrap();
    assert!(unk < 0.05, "unk rate {unk}");
    assert_eq!(ds["empty_rows"], 0);
}

#[test]
fn generated_data_is_deterministic() {
    assert_eq!(gen_corpus(50, 1), gen_corpus(50, 1));
    assert_eq!(gen_csv(50, 2), gen_csv(50, 2));
    assert_ne!(gen_csv(50, 2), gen_csv(50, 3));
    assert_eq!(gen_chinese(50, 5), gen_chinese(50, 5));
    assert_eq!(gen_csv(50, 2).lines().count(), 51);
}

#[test]
fn corrupt_or_missing_store_entries_are_rebuilt() {
    let p = Project::new();
    let r0 = p.run_ok("spec.yaml", &[]);
    let k = keys(&r0);

    // Corrupt a file of the pad entry: the run notices, discards it and reruns only that stage.
    let pad = p.files(&k["seqs"]).join("train.pad");
    let mut bytes = fs::read(&pad).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&pad, &bytes).unwrap();
    let (code, r) = p.run_json(&["run", "spec.yaml"]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "ran")]));
    let why = reasons(&r)["seqs"].join("; ");
    assert!(why.contains("corrupt"), "{why}");
    assert_eq!(keys(&r), k);
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "cached")]));

    // Remove the tokenize entry: status says why, and the run rebuilds it. The pad stage's key
    // does not change, so it stays cached.
    fs::remove_dir_all(p.ws().join("store").join(&k["tok"])).unwrap();
    let st = p.status_json("spec.yaml", &[]);
    assert!(!freshness(&st)["tok"]);
    assert!(reasons(&st)["tok"][0].contains("missing from the store"), "{st:#}");
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "cached")]));
    assert_eq!(fs::read_dir(p.ws().join("tmp")).unwrap().count(), 0);
}

#[test]
fn concurrent_runs_on_one_workspace_do_each_stage_once() {
    let p = Project::new();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_warmstart"))
            .arg("--workspace")
            .arg(p.ws())
            .args(["run", "spec.yaml", "--json", "--jobs", "1"])
            .current_dir(p.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    let b = spawn();
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        for (name, status) in statuses(&v) {
            seen.entry(name).or_default().push(status);
        }
    }
    for (name, mut st) in seen {
        st.sort();
        assert_eq!(st, ["cached", "ran"], "stage `{name}` across two concurrent runs");
    }
}

#[test]
fn dataset_paths_are_relative_to_the_spec_file() {
    let p = Project::empty();
    p.write("proj/data/corpus.txt", &gen_corpus(100, 1));
    p.write("proj/data/train.csv", &gen_csv(100, 2));
    p.write(
        "proj/spec.yaml",
        &SPEC
            .replace("path: corpus.txt", "path: data/corpus.txt")
            .replace("path: train.csv", "path: data/train.csv"),
    );
    // Run from the project's parent folder.
    let r = p.run_ok("proj/spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "ran"), ("seqs", "ran")]));
    // Reasons name the path as written in the spec.
    p.write("proj/data/train.csv", &gen_csv(101, 2));
    let st = p.status_json("proj/spec.yaml", &[]);
    assert_eq!(reasons(&st)["tok"], vec!["input file `data/train.csv` changed"]);
}

/// `run --dry-run` says what would run and why, runs nothing and leaves the store empty;
/// after a run it says nothing would; a parameter change names just the stage it touches.
#[test]
fn dry_run_says_what_would_run_and_runs_nothing() {
    let p = Project::new();
    let (code, out, err) = p.run(&["run", "spec.yaml", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("tok") && out.contains("would run: never run"), "{out}");
    assert!(
        out.contains("2 of 2 stages would run (dry run: nothing was run)"),
        "{out}"
    );
    let store = p.ws().join("store");
    assert!(
        !store.exists() || fs::read_dir(&store).unwrap().next().is_none(),
        "a dry run wrote to the store"
    );
    p.run_ok("spec.yaml", &[]);
    let (code, v) = p.run_json(&["run", "spec.yaml", "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(v["would_run"], serde_json::json!([]), "{v:#}");
    let (_, v) = p.run_json(&["run", "spec.yaml", "--dry-run", "--set", "seqs.max_len=9"]);
    let would = v["would_run"].as_array().unwrap();
    assert_eq!(would.len(), 1, "{v:#}");
    assert_eq!(would[0]["name"], "seqs");
    assert!(would[0]["why"].as_str().unwrap().contains("max_len"), "{v:#}");
    // The dry run left the cached entries as they were.
    let r = p.run_ok("spec.yaml", &[]);
    assert_eq!(statuses(&r), expect(&[("tok", "cached"), ("seqs", "cached")]));
}

/// Shell completion scripts for bash, zsh and fish name the commands.
#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let p = Project::empty();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = p.run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            out.contains("warmstart") && out.contains("validate") && out.contains("report"),
            "{shell}: {out}"
        );
    }
    let (code, _, err) = p.run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

/// Writes `warmstart completions SHELL` into the project as `completion.SHELL`.
fn completion_script(p: &Project, shell: &str) {
    let (code, script, err) = p.run(&["completions", shell]);
    assert_eq!(code, 0, "{err}");
    p.write(&format!("completion.{shell}"), &script);
}

/// Runs `shell args…` in the project with the built `warmstart` first on PATH (the scripts
/// call it by name); the non-empty lines of stdout, each cut at its first tab (fish appends
/// descriptions there).
fn in_shell(p: &Project, shell: &str, args: &[&str]) -> Vec<String> {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_warmstart"))
        .parent()
        .unwrap()
        .to_owned();
    let out = std::process::Command::new(shell)
        .args(args)
        .current_dir(p.path())
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap_or_else(|e| panic!("{shell}: {e}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').next().unwrap_or_default().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The bash script completes stage names from the spec where a stage is expected (after
/// `predict SPEC`, `export SPEC` and `run SPEC --force`), and still completes commands
/// elsewhere; a spec that does not load completes nothing rather than printing an error.
#[test]
fn bash_completes_stage_names_from_the_spec() {
    let p = Project::empty();
    completion_script(&p, "bash");
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let complete = |words: &[&str]| -> Vec<String> {
        let line = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
        let script = format!(
            "source completion.bash; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE=\"{}\"; COMP_POINT=${{#COMP_LINE}}; \
             _warmstart_with_stages warmstart '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            words.len() - 1,
            words.join(" "),
            words[words.len() - 1],
            words[words.len() - 2],
        );
        in_shell(&p, "bash", &["-c", &script])
    };
    let spec = spec.to_str().unwrap();
    let all = complete(&["warmstart", "predict", spec, ""]);
    for stage in ["tok", "embed", "frozen", "tuned", "scratch"] {
        assert!(all.iter().any(|s| s == stage), "predict SPEC <tab>: {all:?}");
    }
    assert_eq!(complete(&["warmstart", "export", spec, "tu"]), ["tuned"]);
    assert_eq!(
        complete(&["warmstart", "--workspace", "w", "run", spec, "--force", "scr"]),
        ["scratch"]
    );
    // Elsewhere clap's completion: commands after `warmstart`.
    let commands = complete(&["warmstart", "val"]);
    assert!(commands.iter().any(|c| c == "validate"), "{commands:?}");
    // A spec that does not load: nothing, and no error text in the prompt.
    p.write("broken.yaml", "stages: [\n");
    assert!(complete(&["warmstart", "predict", "broken.yaml", ""]).is_empty());
}

/// zsh's wrapper offers stage names in the same places as bash and hands everything else to
/// clap's `_warmstart`. Run outside an interactive completion: `compadd`, `compdef` and
/// `_warmstart` are stubs that print what they were given.
#[test]
fn zsh_completes_stage_names_from_the_spec() {
    if std::process::Command::new("zsh").arg("--version").output().is_err() {
        crate::common::skip("zsh_completes_stage_names_from_the_spec", "zsh is not installed");
        return;
    }
    let p = Project::empty();
    completion_script(&p, "zsh");
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let complete = |words: &[&str]| -> Vec<String> {
        let quoted = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
        let script = format!(
            "compdef() {{ :; }}; source completion.zsh; compadd() {{ [[ $1 == -- ]] && shift; print -l -- \"$@\"; }}; \
             _warmstart() {{ print CLAP; }}; words=({quoted}); CURRENT={}; _warmstart_with_stages",
            words.len()
        );
        in_shell(&p, "zsh", &["-f", "-c", &script])
    };
    let spec = spec.to_str().unwrap();
    let all = complete(&["warmstart", "predict", spec, ""]);
    for stage in ["tok", "embed", "frozen", "tuned", "scratch"] {
        assert!(all.iter().any(|s| s == stage), "predict SPEC <tab>: {all:?}");
    }
    let forced = complete(&["warmstart", "--workspace", "w", "run", spec, "--force", "scr"]);
    assert!(forced.iter().any(|s| s == "scratch"), "{forced:?}");
    // Elsewhere: clap's function.
    assert_eq!(complete(&["warmstart", "val"]), ["CLAP"]);
    assert_eq!(complete(&["warmstart", "run", spec, "--jobs", ""]), ["CLAP"]);
}

/// fish completes stage names in the same places as bash (`complete -C` asks fish what it
/// would offer for a command line).
#[test]
fn fish_completes_stage_names_from_the_spec() {
    if std::process::Command::new("fish").arg("--version").output().is_err() {
        crate::common::skip("fish_completes_stage_names_from_the_spec", "fish is not installed");
        return;
    }
    let p = Project::empty();
    completion_script(&p, "fish");
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let complete = |line: &str| -> Vec<String> {
        in_shell(
            &p,
            "fish",
            &[
                "--no-config",
                "-c",
                &format!("source completion.fish; complete -C '{line}'"),
            ],
        )
    };
    let spec = spec.to_str().unwrap();
    let all = complete(&format!("warmstart predict {spec} "));
    for stage in ["tok", "embed", "frozen", "tuned", "scratch"] {
        assert!(all.iter().any(|s| s == stage), "predict SPEC <tab>: {all:?}");
    }
    assert_eq!(complete(&format!("warmstart export {spec} tu")), ["tuned"]);
    assert_eq!(
        complete(&format!("warmstart --workspace w run {spec} --force scr")),
        ["scratch"]
    );
    let commands = complete("warmstart val");
    assert!(commands.iter().any(|c| c == "validate"), "{commands:?}");
    p.write("broken.yaml", "stages: [\n");
    assert!(
        !complete("warmstart predict broken.yaml t").iter().any(|c| c == "tok"),
        "a broken spec completes no stage"
    );
}

/// The canonical parameters must not change by accident: the keys of the quickstart's stages
/// are pinned. A refactor that changes one on purpose bumps that kind's `version` and updates
/// this list (the stages' artefacts then rerun, which is the point).
#[test]
fn the_quickstart_keys_are_pinned() {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let p = Project::empty();
    let st = p.status_json(spec.to_str().unwrap(), &[]);
    let got: Vec<(String, String)> = st["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["key"].as_str().unwrap()[..16].to_string(),
            )
        })
        .collect();
    let want = [
        ("tok", "a3ed30af1e1dc925"),
        ("embed", "bc90321ff7c5a9c1"),
        ("seqs", "c2eecab7535b0552"),
        ("frozen", "ed60987a19e2b250"),
        ("test_frozen", "f076b0f83c9137d3"),
        ("tuned", "d3e11e8d8cabcb69"),
        ("test_tuned", "17e97b6948317906"),
        ("scratch", "48f923c74520394b"),
        ("test_scratch", "fcfc5bbfff9eea4c"),
    ];
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(
        got, want,
        "a quickstart key changed: bump the kind's version if that was meant"
    );
}
