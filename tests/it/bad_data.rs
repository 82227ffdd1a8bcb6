//! Bad data and bad environments (bad specs are in `bad_specs.rs`).
//!
//! Every case runs the real binary on a small generated project and checks four things:
//! - the exit code: 2 for what can be seen before anything runs (a missing or empty file, a
//!   missing column), 1 for what a stage finds while it reads or trains;
//! - a message a user can act on: the file and, where there is one, the line, the column or the
//!   label, and what to do;
//! - no panic, whatever the data;
//! - for exit 1: the stages that finished are cached on a rerun (partial results stay usable),
//!   and the failed stage left nothing in the store.
//!
//! A few cases are data that looks odd but is fine (empty texts, a 2 MB line, a BOM, CRLF line
//! endings, numbers as texts, a label only the test set has); they check that it works.

use std::path::Path;

use crate::common::{gen_corpus, gen_csv, skip, stage, statuses, Lcg, Project};
use serde_json::Value;

/// The spec most cases use. `side_tok` reads only `side.txt`, which no case breaks, so that a
/// run in which `tok` fails still has a finished stage whose caching can be checked.
const SPEC: &str = "\
name: bd
seed: 5
datasets:
  side: { path: side.txt }
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
  test: { path: test.csv, label: label }
stages:
  side_tok: { kind: tokenize, fit_on: [side], vocab_size: 64 }
  tok: { kind: tokenize, fit_on: [corpus, train], encode: [corpus, train, test], vocab_size: 120 }
  seqs: { kind: pad, from: tok, max_len: 16 }
  clf: { kind: finetune, from: seqs, train: train, encoder: { type: bag, dim: 16 }, epochs: 2 }
  ev: { kind: evaluate, model: clf, from: seqs, data: test }
";

/// A project with [`SPEC`] and its four datasets: 300 corpus lines, 300 training rows and
/// 100 test rows (labels `pos`/`neg`), 100 side lines.
fn project() -> Project {
    let p = Project::empty();
    p.write("side.txt", &gen_corpus(100, 9));
    p.write("corpus.txt", &gen_corpus(300, 1));
    p.write("train.csv", &gen_csv(300, 2));
    p.write("test.csv", &gen_csv(100, 3));
    p.write("spec.yaml", SPEC);
    p
}

fn write_bytes(p: &Project, rel: &str, bytes: &[u8]) {
    let path = p.path().join(rel);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `text` with its 1-based line `n` replaced by `line` (line 1 of a csv is its header).
fn replace_line(text: &str, n: usize, line: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    assert!(n >= 1 && n <= lines.len(), "no line {n}");
    lines[n - 1] = line;
    lines.join("\n") + "\n"
}

/// The same as bytes, for lines that are not UTF-8.
fn replace_line_bytes(text: &str, n: usize, line: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        out.extend_from_slice(if i + 1 == n { line } else { l.as_bytes() });
        out.push(b'\n');
    }
    out
}

/// The training rows of `gen_csv(300, 2)` as JSON lines (`{"text": .., "label": ..}`).
fn train_jsonl() -> String {
    gen_csv(300, 2)
        .lines()
        .skip(1)
        .map(|l| {
            let (text, label) = l.rsplit_once(',').expect("text,label");
            serde_json::json!({"text": text, "label": label}).to_string() + "\n"
        })
        .collect()
}

fn assert_no_panic(what: &str, out: &str, err: &str) {
    for s in [out, err] {
        assert!(
            !s.contains("panicked") && !s.contains("RUST_BACKTRACE") && !s.contains("internal error"),
            "`{what}` panicked:\nstdout:\n{out}\nstderr:\n{err}"
        );
    }
}

/// Store entries of the project's workspace.
fn store_entries(p: &Project) -> Vec<String> {
    match std::fs::read_dir(p.ws().join("store")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `run spec.yaml --json --jobs 1 EXTRA...` → (exit code, report, stderr); panics unless
/// stdout is a JSON report, or on a panic message.
fn run_report(p: &Project, extra: &[&str]) -> (i32, Value, String) {
    let mut a = vec!["run", "spec.yaml", "--json", "--jobs", "1"];
    a.extend_from_slice(extra);
    let (code, out, err) = p.run(&a);
    assert_no_panic(&a.join(" "), &out, &err);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "`{}` did not print a JSON report ({e}); exit {code}\nstdout:\n{out}\nstderr:\n{err}",
            a.join(" ")
        )
    });
    (code, v, err)
}

/// `run` with `extra` succeeds; returns the report.
fn run_ok(p: &Project, extra: &[&str]) -> Value {
    let (code, v, err) = run_report(p, extra);
    assert_eq!(code, 0, "run should succeed\nreport: {v:#}\nstderr:\n{err}");
    v
}

/// The exit-1 contract. `run` with `extra` exits 1 with exactly one failed stage, `failed`,
/// whose error (in the report and on stderr) contains every needle; that stage has no store
/// entry; stages downstream of it are skipped and the others ran. A rerun reports every stage
/// that ran as cached and fails the same way, still leaving no entry. Returns the error.
fn stage_fails(p: &Project, extra: &[&str], failed: &str, needles: &[&str]) -> String {
    let (code, r1, err) = run_report(p, extra);
    assert_eq!(code, 1, "a failing stage should exit 1\nreport: {r1:#}\nstderr:\n{err}");
    assert_eq!(r1["ok"], Value::Bool(false), "{r1:#}");
    let st1 = statuses(&r1);
    let failures: Vec<&String> = st1.iter().filter(|(_, s)| *s == "failed").map(|(n, _)| n).collect();
    assert_eq!(failures, [failed], "expected only `{failed}` to fail: {st1:?}\n{r1:#}");
    let msg = stage(&r1, failed)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error for `{failed}`: {r1:#}"))
        .to_string();
    for n in needles {
        assert!(msg.contains(n), "the error of `{failed}` should contain {n:?}:\n{msg}");
    }
    assert!(
        err.contains(&msg),
        "stderr should show the error for a human reader:\n{err}"
    );
    let key = stage(&r1, failed)["key"].as_str().expect("key").to_string();
    let entry = p.ws().join("store").join(&key);
    assert!(
        !entry.exists(),
        "failed stage `{failed}` has a store entry {}",
        entry.display()
    );

    let ran: Vec<String> = st1
        .iter()
        .filter(|(_, s)| *s == "ran")
        .map(|(n, _)| n.clone())
        .collect();
    assert!(!ran.is_empty(), "no stage finished before `{failed}` failed: {st1:?}");
    for (name, s) in &st1 {
        assert!(
            ["ran", "failed", "skipped"].contains(&s.as_str()),
            "stage `{name}`: {s}"
        );
    }

    let (code, r2, err2) = run_report(p, extra);
    assert_eq!(code, 1, "the rerun should fail again\nreport: {r2:#}\nstderr:\n{err2}");
    let st2 = statuses(&r2);
    for name in &ran {
        assert_eq!(st2[name], "cached", "`{name}` should be cached on the rerun: {st2:?}");
    }
    assert_eq!(st2[failed], "failed", "{st2:?}");
    assert_eq!(stage(&r2, failed)["error"].as_str(), Some(msg.as_str()));
    assert!(
        !entry.exists(),
        "failed stage `{failed}` has a store entry after the rerun"
    );
    msg
}

/// The exit-2 contract: `args` exits 2, stderr contains every needle, no panic, nothing in the
/// store. Returns stderr.
fn rejected(p: &Project, args: &[&str], needles: &[&str]) -> String {
    let before = store_entries(p);
    let (code, out, err) = p.run(args);
    let what = args.join(" ");
    assert_no_panic(&what, &out, &err);
    assert_eq!(code, 2, "`{what}` should exit 2\nstdout:\n{out}\nstderr:\n{err}");
    for n in needles {
        assert!(err.contains(n), "`{what}`: stderr should contain {n:?}:\n{err}");
    }
    assert_eq!(store_entries(p), before, "`{what}` must not add store entries");
    err
}

/// `validate`, `status` and `run` all reject the spec with exit 2 and the needles.
fn rejected_before_running(p: &Project, needles: &[&str]) -> String {
    rejected(p, &["validate", "spec.yaml"], needles);
    rejected(p, &["status", "spec.yaml"], needles);
    rejected(p, &["run", "spec.yaml"], needles)
}

/// The `files/` folder of a stage's entry, from a run report.
fn files_of(p: &Project, report: &Value, name: &str) -> std::path::PathBuf {
    p.files(stage(report, name)["key"].as_str().expect("key"))
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Encodings and line endings

#[test]
fn csv_text_that_is_not_utf8_names_the_line() {
    let p = project();
    let bytes = replace_line_bytes(&gen_csv(300, 2), 5, b"caf\xe9 au lait was great,pos");
    write_bytes(&p, "train.csv", &bytes);
    stage_fails(
        &p,
        &[],
        "tok",
        &["train.csv:5:", "not valid UTF-8", "re-encode the file as UTF-8"],
    );
}

#[test]
fn txt_corpus_that_is_not_utf8_names_the_line() {
    let p = project();
    let bytes = replace_line_bytes(&gen_corpus(300, 1), 10, b"the film \xff\xfe was fine");
    write_bytes(&p, "corpus.txt", &bytes);
    stage_fails(&p, &[], "tok", &["corpus.txt:10:", "not valid UTF-8", "re-encode"]);
}

#[test]
fn jsonl_line_that_is_not_utf8_names_the_line() {
    let p = project();
    let bytes = replace_line_bytes(&train_jsonl(), 4, b"{\"text\": \"caf\xe9\", \"label\": \"pos\"}");
    write_bytes(&p, "train.jsonl", &bytes);
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    stage_fails(&p, &[], "tok", &["train.jsonl:4:", "not valid UTF-8"]);
}

#[test]
fn csv_with_a_utf8_bom_still_finds_the_text_column() {
    let p = project();
    p.write("train.csv", &format!("\u{feff}{}", gen_csv(300, 2)));
    let r = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &r, "tok").join("meta.json"));
    assert_eq!(meta["labels"], serde_json::json!(["neg", "pos"]));
    assert_eq!(meta["datasets"]["train"]["rows"], 300);
}

#[test]
fn crlf_line_endings_in_csv_and_txt_work() {
    let p = project();
    p.write("train.csv", &gen_csv(300, 2).replace('\n', "\r\n"));
    p.write("corpus.txt", &gen_corpus(300, 1).replace('\n', "\r\n"));
    let r = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &r, "tok").join("meta.json"));
    // No `pos\r` label, no blank `\r` rows.
    assert_eq!(meta["labels"], serde_json::json!(["neg", "pos"]));
    assert_eq!(meta["datasets"]["train"]["rows"], 300);
    assert_eq!(meta["datasets"]["corpus"]["rows"], 300);
    assert_eq!(meta["datasets"]["corpus"]["empty_rows"], 0);
}

// ---------------------------------------------------------------------------------------------
// Empty files

#[test]
fn empty_csv_file_is_rejected_before_running() {
    let p = project();
    p.write("train.csv", "");
    rejected_before_running(
        &p,
        &["datasets.train.path", "train.csv", "the file is empty", "header row"],
    );
}

#[test]
fn csv_with_only_a_header_is_rejected_before_running() {
    let p = project();
    p.write("train.csv", "text,label\n");
    rejected_before_running(
        &p,
        &[
            "datasets.train.path",
            "train.csv",
            "header row but no data rows",
            "add rows",
        ],
    );
}

#[test]
fn empty_txt_file_is_rejected_before_running() {
    let p = project();
    p.write("corpus.txt", "");
    rejected_before_running(
        &p,
        &["datasets.corpus.path", "corpus.txt", "no text", "one text per line"],
    );
}

#[test]
fn txt_file_with_only_blank_lines_is_rejected_before_running() {
    let p = project();
    p.write("corpus.txt", "\n   \n\t\n\r\n\n");
    rejected_before_running(&p, &["datasets.corpus.path", "corpus.txt", "only blank lines"]);
}

#[test]
fn txt_folder_without_data_files_is_rejected_before_running() {
    let p = project();
    p.write("corpus_dir/notes.md", "the film was great\n");
    p.write("spec.yaml", &SPEC.replace("path: corpus.txt", "path: corpus_dir"));
    rejected_before_running(&p, &["datasets.corpus.path", "corpus_dir", "no data files"]);
}

/// A folder's csv must have the folder's text column: a spec error naming the csv and the
/// columns it has, before anything runs.
#[test]
fn csv_in_a_text_folder_without_the_text_column_is_rejected_before_running() {
    let p = project();
    p.write("corpus_dir/a.txt", "the film was great\n");
    p.write("corpus_dir/reviews.csv", "review,stars\nfine film,5\n");
    p.write("spec.yaml", &SPEC.replace("path: corpus.txt", "path: corpus_dir"));
    rejected_before_running(&p, &["reviews.csv", "`text` not found", "`review`, `stars`"]);
}

// ---------------------------------------------------------------------------------------------
// Malformed csv

#[test]
fn ragged_csv_row_names_the_line() {
    let p = project();
    p.write(
        "train.csv",
        &replace_line(&gen_csv(300, 2), 7, "the film was great,pos,extra"),
    );
    stage_fails(&p, &[], "tok", &["train.csv:7:", "3 fields", "header has 2", "quoting"]);
}

#[test]
fn unclosed_quote_in_the_text_column_names_the_line() {
    let p = project();
    p.write(
        "train.csv",
        &replace_line(&gen_csv(300, 2), 7, "\"the film was great,pos"),
    );
    stage_fails(&p, &[], "tok", &["train.csv:7:", "never closed", "close the quote"]);
}

#[test]
fn unclosed_quote_in_the_label_column_names_the_line() {
    // The field counts match (the label swallows the rest of the file): once read silently.
    let p = project();
    p.write(
        "train.csv",
        &replace_line(&gen_csv(300, 2), 7, "the film was great,\"pos"),
    );
    stage_fails(&p, &[], "tok", &["train.csv:7:", "never closed"]);
}

#[test]
fn quoted_multiline_texts_are_fine() {
    // The unclosed-quote check must not catch real multi-line fields, last row included.
    let p = project();
    let mut csv = gen_csv(300, 2);
    csv.push_str("\"a film\nover two lines, with \"\"quotes\"\"\",pos\n");
    p.write("train.csv", &csv);
    let r = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &r, "tok").join("meta.json"));
    assert_eq!(meta["datasets"]["train"]["rows"], 301);
}

#[test]
fn empty_label_names_the_line_and_the_column() {
    let p = project();
    p.write("train.csv", &replace_line(&gen_csv(300, 2), 7, "the film was great,"));
    stage_fails(
        &p,
        &[],
        "tok",
        &["train.csv:7:", "empty label in column `label`", "fill it in"],
    );
}

#[test]
fn tab_separated_file_declared_as_csv_lists_the_columns_found() {
    let p = project();
    p.write("train.csv", &gen_csv(300, 2).replace(',', "\t"));
    rejected_before_running(
        &p,
        &[
            "datasets.train.text",
            "train.csv",
            "column `text` not found",
            "columns found: `text\\tlabel`",
            "format: tsv",
        ],
    );
}

#[test]
fn csv_dataset_path_that_is_a_folder() {
    let p = project();
    std::fs::remove_file(p.path().join("train.csv")).unwrap();
    std::fs::create_dir(p.path().join("train.csv")).unwrap();
    rejected_before_running(&p, &["datasets.train.path", "train.csv", "is a folder"]);
}

// ---------------------------------------------------------------------------------------------
// jsonl

#[test]
fn jsonl_invalid_json_names_the_line() {
    let p = project();
    let jsonl = replace_line(&train_jsonl(), 5, "{\"text\": \"a great film\", \"label\": \"pos\"");
    p.write("train.jsonl", &jsonl);
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    let msg = stage_fails(&p, &[], "tok", &["train.jsonl:5:", "invalid JSON at column"]);
    assert!(
        !msg.contains("line 1"),
        "serde_json's own `line 1` would mislead: {msg}"
    );
}

#[test]
fn jsonl_rows_without_the_text_field_are_rejected_before_running() {
    let p = project();
    p.write("train.jsonl", &train_jsonl().replace("\"text\"", "\"body\""));
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    rejected_before_running(
        &p,
        &[
            "datasets.train.text",
            "train.jsonl",
            "field `text` not found",
            "`body`",
            "`label`",
        ],
    );
}

#[test]
fn jsonl_one_row_without_the_text_field_names_the_line() {
    let p = project();
    p.write(
        "train.jsonl",
        &replace_line(&train_jsonl(), 7, "{\"body\": \"great\", \"label\": \"pos\"}"),
    );
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    stage_fails(&p, &[], "tok", &["train.jsonl:7:", "field `text` is missing", "`body`"]);
}

#[test]
fn jsonl_text_that_is_an_object_names_the_line() {
    let p = project();
    let line = "{\"text\": {\"title\": \"great\"}, \"label\": \"pos\"}";
    p.write("train.jsonl", &replace_line(&train_jsonl(), 3, line));
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    stage_fails(
        &p,
        &[],
        "tok",
        &["train.jsonl:3:", "field `text` must be a string or number"],
    );
}

#[test]
fn jsonl_empty_label_names_the_line() {
    let p = project();
    p.write(
        "train.jsonl",
        &replace_line(&train_jsonl(), 9, "{\"text\": \"great\", \"label\": \"\"}"),
    );
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    stage_fails(&p, &[], "tok", &["train.jsonl:9:", "empty label in field `label`"]);
}

#[test]
fn jsonl_numbers_as_texts_are_read_as_text() {
    let p = project();
    let mut jsonl = train_jsonl();
    for i in 0..10 {
        jsonl.push_str(&format!("{{\"text\": {i}, \"label\": \"pos\"}}\n"));
    }
    p.write("train.jsonl", &jsonl);
    p.write("spec.yaml", &SPEC.replace("train.csv", "train.jsonl"));
    let r = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &r, "tok").join("meta.json"));
    assert_eq!(meta["datasets"]["train"]["rows"], 310);
}

// ---------------------------------------------------------------------------------------------
// Odd but valid texts

#[test]
fn empty_texts_are_rows_of_padding() {
    let p = project();
    let mut train = gen_csv(300, 2);
    train.push_str("\"\",pos\n,neg\n\"\",neg\n");
    p.write("train.csv", &train);
    let test = replace_line(&replace_line(&gen_csv(100, 3), 2, "\"\",pos"), 3, ",neg");
    p.write("test.csv", &test);
    let r = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &r, "tok").join("meta.json"));
    assert_eq!(meta["datasets"]["train"]["empty_rows"], 3);
    assert_eq!(meta["datasets"]["test"]["empty_rows"], 2);
    let m = &stage(&r, "ev")["metrics"];
    assert_eq!(m["rows"], 100, "{r:#}");
    assert!(m["accuracy"].as_f64().is_some_and(f64::is_finite), "{m}");
    assert!(m["loss"].as_f64().is_some_and(f64::is_finite), "{m}");
}

#[test]
fn very_long_lines_are_truncated_by_pad() {
    // A 2 MB text in the csv (a pasted dump: long runs without spaces) and a 2 MB line of
    // ordinary words in the corpus. Both train the tokenizer and are cut to max_len.
    let p = project();
    let mut r = Lcg::new(77);
    let mut dump = String::from("a great film ");
    while dump.len() < 2_000_000 {
        let n = 150 + r.below(1000);
        dump.extend((0..n).map(|_| (b'a' + r.below(26) as u8) as char));
        dump.push(' ');
    }
    let words = [
        "the", "film", "was", "great", "and", "the", "plot", "dull", "music", "so",
    ];
    let mut prose = String::new();
    while prose.len() < 2_000_000 {
        prose.push_str(words[r.below(words.len())]);
        prose.push(' ');
    }
    p.write("train.csv", &replace_line(&gen_csv(300, 2), 4, &format!("{dump},pos")));
    p.write("corpus.txt", &replace_line(&gen_corpus(300, 1), 4, &prose));
    let rep = run_ok(&p, &[]);
    let meta = read_json(&files_of(&p, &rep, "seqs").join("meta.json"));
    assert_eq!(meta["datasets"]["train"]["rows"], 300);
    assert!(meta["truncated"]["train"].as_f64().unwrap() > 0.0, "{meta:#}");
    assert!(meta["truncated"]["corpus"].as_f64().unwrap() > 0.0, "{meta:#}");
    // Padded files hold max_len ids per row, however long the texts were.
    let pad = std::fs::metadata(files_of(&p, &rep, "seqs").join("train.pad"))
        .unwrap()
        .len();
    assert!(pad < 300 * 16 * 8 + 4096, "train.pad is {pad} bytes");
    assert_eq!(stage(&rep, "ev")["metrics"]["rows"], 100);
}

#[test]
fn long_runs_without_spaces_do_not_stall_or_crash_tokenizer_training() {
    // One 200 kB "word": the Unigram trainer used to overflow the stack on it (aborting the
    // whole process), BPE/WordPiece merging was quadratic in its length.
    let p = project();
    let mut r = Lcg::new(78);
    let blob: String = (0..200_000).map(|_| (b'a' + r.below(26) as u8) as char).collect();
    p.write(
        "train.csv",
        &replace_line(&gen_csv(300, 2), 4, &format!("great {blob},pos")),
    );
    for algorithm in ["unigram", "bpe", "wordpiece"] {
        let set = format!("tok.algorithm={algorithm}");
        let r = run_ok(&p, &["--set", &set]);
        assert_eq!(statuses(&r)["tok"], "ran", "{r:#}");
    }
}

// ---------------------------------------------------------------------------------------------
// Labels and label budgets

#[test]
fn dev_label_never_seen_in_train_is_listed() {
    let p = project();
    let test = replace_line(
        &replace_line(&gen_csv(100, 3), 5, "the film was okay,neutral"),
        9,
        "so so,meh",
    );
    p.write("test.csv", &test);
    p.write("spec.yaml", &SPEC.replace("train: train,", "train: train, dev: test,"));
    stage_fails(
        &p,
        &[],
        "clf",
        &["dataset `test`", "never shows: meh, neutral", "add training rows"],
    );
}

#[test]
fn evaluate_counts_a_label_never_seen_in_training_as_errors() {
    // Decided behaviour: the test set may have a class the training set lacks; evaluate scores
    // it honestly (recall 0 for that class, its rows wrong) instead of failing.
    let p = project();
    let test = replace_line(
        &replace_line(&gen_csv(100, 3), 5, "the film was okay,neutral"),
        9,
        "so so film,neutral",
    );
    p.write("test.csv", &test);
    let r = run_ok(&p, &[]);
    let m = read_json(&files_of(&p, &r, "ev").join("metrics.json"));
    assert_eq!(m["rows"], 100);
    assert_eq!(m["labels"], serde_json::json!(["neg", "neutral", "pos"]));
    let neutral = m["per_class"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["label"] == "neutral")
        .expect("neutral in per_class")
        .clone();
    assert_eq!(neutral["support"], 2, "{neutral}");
    assert_eq!(neutral["recall"], 0.0, "{neutral}");
    assert_eq!(m["confusion"][1][1], 0, "{m:#}");
}

#[test]
fn evaluate_on_data_from_another_tokenizer_is_refused() {
    let p = project();
    let spec = format!(
        "{SPEC}  tok2: {{ kind: tokenize, fit_on: [corpus], encode: [test], vocab_size: 90 }}\n  \
         seqs2: {{ kind: pad, from: tok2, max_len: 16 }}\n  \
         ev2: {{ kind: evaluate, model: clf, from: seqs2, data: test }}\n"
    );
    p.write("spec.yaml", &spec);
    stage_fails(
        &p,
        &[],
        "ev2",
        &[
            "model `clf`",
            "pad stage `seqs2`",
            "another tokenizer",
            "the pad stage the model was trained from",
        ],
    );
}

#[test]
fn train_size_larger_than_the_training_set_says_how_many_rows_exist() {
    let p = project();
    stage_fails(
        &p,
        &["--set", "clf.train_size=1000"],
        "clf",
        &["train_size 1000", "larger than the training set (300 rows)"],
    );
}

#[test]
fn train_size_smaller_than_the_number_of_classes() {
    let p = project();
    stage_fails(
        &p,
        &["--set", "clf.train_size=1"],
        "clf",
        &["train_size 1", "number of classes", "neg, pos", "train_size ≥ 2"],
    );
}

#[test]
fn finetune_on_an_unlabelled_dataset_says_to_declare_the_label_column() {
    let p = project();
    stage_fails(
        &p,
        &["--set", "clf.train=corpus"],
        "clf",
        &["dataset `corpus` has no labels", "declare its `label` column"],
    );
}

#[test]
fn feature_extract_on_an_unlabelled_dataset_says_to_declare_the_label_column() {
    let p = project();
    let spec = format!(
        "{SPEC}  embed: {{ kind: pretrain, from: tok, data: [corpus], encoder: {{ type: bag, dim: 16 }}, epochs: 1 }}\n  \
         fx: {{ kind: feature-extract, from: seqs, encoder: embed, train: corpus }}\n"
    );
    p.write("spec.yaml", &spec);
    stage_fails(
        &p,
        &[],
        "fx",
        &["dataset `corpus` has no labels", "declare its `label` column"],
    );
}

// ---------------------------------------------------------------------------------------------
// Training that cannot work

#[test]
fn learning_rate_that_makes_the_loss_blow_up() {
    let p = project();
    stage_fails(
        &p,
        &["--set", "clf.lr=1e30"],
        "clf",
        &["training diverged", "lower the learning rate"],
    );
}

#[test]
fn pretraining_on_one_token_lines_says_it_needs_context() {
    let p = project();
    let words = ["great", "film", "dull", "plot", "music"];
    let corpus: String = (0..300).map(|i| format!("{}\n", words[i % words.len()])).collect();
    p.write("corpus.txt", &corpus);
    let spec = format!(
        "{SPEC}  embed: {{ kind: pretrain, from: tok, data: [corpus], encoder: {{ type: bag, dim: 16 }}, epochs: 1 }}\n"
    );
    p.write("spec.yaml", &spec);
    stage_fails(&p, &[], "embed", &["no row with two or more tokens", "needs context"]);
}

#[test]
fn finetune_from_a_language_model_of_another_shape_names_both_encoders() {
    let p = project();
    let spec = format!(
        "{SPEC}  lm: {{ kind: pretrain, from: seqs, data: [corpus], objective: lm, encoder: {{ type: lstm, dim: 16 }}, epochs: 1 }}\n  \
         ft: {{ kind: finetune, from: seqs, train: train, init: lm, encoder: {{ type: transformer, dim: 16, heads: 2 }}, epochs: 1 }}\n"
    );
    p.write("spec.yaml", &spec);
    let msg = stage_fails(
        &p,
        &[],
        "ft",
        &[
            "does not match the encoder",
            "pretrained by stage `lm`",
            "use the same `encoder:` block",
        ],
    );
    assert!(msg.contains("transformer") && msg.contains("lstm"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Files and workspaces that change or refuse

#[test]
fn dataset_deleted_between_validate_and_run() {
    let p = project();
    let (code, out, err) = p.run(&["validate", "spec.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::remove_file(p.path().join("test.csv")).unwrap();
    rejected(
        &p,
        &["run", "spec.yaml"],
        &["datasets.test.path", "test.csv", "does not exist"],
    );
    rejected(&p, &["validate", "spec.yaml"], &["test.csv", "does not exist"]);
}

#[test]
fn workspace_that_is_a_regular_file() {
    let p = project();
    p.write(".ws", "not a folder\n");
    let ws = p.ws().display().to_string();
    for args in [&["run", "spec.yaml"][..], &["status", "spec.yaml"]] {
        let (code, out, err) = p.run(args);
        assert_no_panic(&args.join(" "), &out, &err);
        // An I/O failure, not a bad spec: exit 1 (see src/cli.rs).
        assert_eq!(code, 1, "`{}`\nstdout:\n{out}\nstderr:\n{err}", args.join(" "));
        assert!(err.contains(&ws) && err.contains("workspace"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(p.ws()).unwrap(), "not a folder\n");
}

/// Sets every file and folder under `path` read-only (or back to writable).
fn set_writable(path: &Path, writable: bool) {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        for e in std::fs::read_dir(path).unwrap() {
            set_writable(&e.unwrap().path(), writable);
        }
    }
    let mode = match (meta.is_dir(), writable) {
        (true, true) => 0o755,
        (true, false) => 0o555,
        (false, true) => 0o644,
        (false, false) => 0o444,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_only_workspace_names_the_path() {
    let p = project();
    let r1 = run_ok(&p, &[]);
    set_writable(&p.ws(), false);
    let st = p.status_json("spec.yaml", &["--set", "clf.epochs=3"]);
    let new_key = stage(&st, "clf")["key"].as_str().unwrap().to_string();
    let args = ["run", "spec.yaml", "--set", "clf.epochs=3"];
    let probe = p.ws().join("probe");
    let (code, out, err) = if std::fs::write(&probe, "x").is_ok() {
        // Root writes into read-only folders: run this one as `nobody` instead (CI runs as root).
        let _ = std::fs::remove_file(&probe);
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(p.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        match p.run_unprivileged(&args) {
            Some(r) => r,
            None => {
                set_writable(&p.ws(), true);
                skip(
                    "read_only_workspace_names_the_path",
                    "this user can write to read-only folders and setpriv is not available",
                );
                return;
            }
        }
    } else {
        p.run(&args)
    };
    assert_no_panic("run on a read-only workspace", &out, &err);
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains(&p.ws().display().to_string()), "{err}");
    assert!(err.contains("ermission denied"), "{err}");
    assert!(!p.ws().join("store").join(&new_key).exists());

    // Writable again: what the first run finished is still there.
    set_writable(&p.ws(), true);
    let r2 = run_ok(&p, &["--set", "clf.epochs=3"]);
    let st2 = statuses(&r2);
    for name in ["side_tok", "tok", "seqs"] {
        assert_eq!(st2[name], "cached", "{st2:?}");
    }
    assert_eq!(st2["clf"], "ran");
    assert_eq!(stage(&r2, "clf")["key"].as_str(), Some(new_key.as_str()));
    assert_ne!(stage(&r1, "clf")["key"], stage(&r2, "clf")["key"]);
}

// ---------------------------------------------------------------------------------------------
// predict

#[test]
fn predict_input_file_missing() {
    let p = project();
    run_ok(&p, &[]);
    let err = rejected(
        &p,
        &["predict", "spec.yaml", "clf", "--input", "new_reviews.txt"],
        &["new_reviews.txt", "cannot open", "No such file"],
    );
    assert!(err.starts_with("error: "), "{err}");
}

#[test]
fn predict_input_with_only_a_header() {
    let p = project();
    run_ok(&p, &[]);
    p.write("new.csv", "text\n");
    rejected(
        &p,
        &["predict", "spec.yaml", "clf", "--input", "new.csv"],
        &["new.csv", "header row but no data rows"],
    );
    // And it works once there are rows.
    p.write("new.csv", "text\nthe film was great\n");
    let (code, out, err) = p.run(&["predict", "spec.yaml", "clf", "--input", "new.csv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the film was great"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// broken model folders, unchecked references, moved data

/// Exports `clf` to `model/` and returns its path.
fn exported(p: &Project) -> std::path::PathBuf {
    run_ok(p, &[]);
    let (code, _, err) = p.run(&["export", "spec.yaml", "clf", "--out", "model"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.run(&["predict", "--model", "model", "a fine film"]);
    assert_eq!(code, 0, "the intact export must predict: {err}");
    for f in ["model.json", "model.safetensors", "tokenizer.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p.path().join("model").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o044,
            0o044,
            "exported {f} must be readable by others (mode {mode:o})"
        );
    }
    p.path().join("model")
}

/// `predict --model` on a folder with one broken file: exit 1 or 2, a message naming the
/// file, never a panic (exit 101).
fn predict_on_broken_folder(p: &Project, file: &str, needles: &[&str]) {
    let (code, out, err) = p.run(&["predict", "--model", "model", "a fine film"]);
    assert_no_panic(&format!("predict with a broken {file}"), &out, &err);
    assert!(code == 1 || code == 2, "broken {file}: exit {code}\n{err}");
    assert!(err.contains(file), "the message should name {file}:\n{err}");
    for n in needles {
        assert!(err.contains(n), "broken {file}: stderr should contain {n:?}:\n{err}");
    }
}

#[test]
fn predict_on_a_truncated_safetensors_file() {
    let p = project();
    let m = exported(&p);
    let bytes = std::fs::read(m.join("model.safetensors")).unwrap();
    std::fs::write(m.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    predict_on_broken_folder(&p, "model.safetensors", &[]);
}

#[test]
fn predict_on_a_model_json_without_labels() {
    let p = project();
    let m = exported(&p);
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(m.join("model.json")).unwrap()).unwrap();
    cfg["labels"] = serde_json::json!([]);
    std::fs::write(m.join("model.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    predict_on_broken_folder(&p, "model.json", &["no labels"]);
    // Two labels where the head was trained for two, but a third added: the head does not fit.
    cfg["labels"] = serde_json::json!(["neg", "pos", "meh"]);
    std::fs::write(m.join("model.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    predict_on_broken_folder(&p, "model.json", &["needs 1×3"]);
    // A max_len that leaves no room for the [CLS] token.
    cfg["labels"] = serde_json::json!(["neg", "pos"]);
    cfg["shape"]["max_len"] = serde_json::json!(0);
    cfg["shape"]["add_cls"] = serde_json::json!(true);
    std::fs::write(m.join("model.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    predict_on_broken_folder(&p, "model.json", &["max_len"]);
}

#[test]
fn predict_with_a_tokenizer_larger_than_the_embedding() {
    let p = project();
    let m = exported(&p);
    // The side tokenizer (64 tokens) is smaller; train a bigger one and swap it in.
    p.write(
        "big.yaml",
        &SPEC
            .replace("name: bd", "name: big")
            .replace("vocab_size: 120", "vocab_size: 400"),
    );
    let (code, out, err) = p.run(&["run", "big.yaml", "--json"]);
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    let tok_key = stage(&r, "tok")["key"].as_str().unwrap().to_string();
    std::fs::copy(p.files(&tok_key).join("tokenizer.json"), m.join("tokenizer.json")).unwrap();
    predict_on_broken_folder(&p, "tokenizer.json", &["embedding"]);
}

/// Found by the model_folder fuzzer (2026-12-06): `tokenizers` panicked inside its decoder
/// deserialiser on this malformed value; `predict` must name the file instead (exit 1 or 2).
#[test]
fn predict_with_a_malformed_tokenizer_json() {
    let p = project();
    let m = exported(&p);
    let text = std::fs::read_to_string(m.join("tokenizer.json")).unwrap();
    let at = text
        .find("\"decoder\":")
        .expect("an exported tokenizer.json has a decoder field");
    let (head, tail) = text.split_at(at + "\"decoder\":".len());
    let rest = &tail[tail.find(",\"model\"").expect("model follows decoder")..];
    std::fs::write(m.join("tokenizer.json"), format!("{head}un\"ll{}", &rest[1..])).unwrap();
    predict_on_broken_folder(&p, "tokenizer.json", &["not valid JSON"]);
}

#[test]
fn a_typo_in_a_dataset_read_from_a_pad_stage_fails_validation_with_the_line() {
    for (from, to, field) in [
        ("train: train, encoder", "train: trian, encoder", "stages.clf.train"),
        ("data: test }", "data: tset }", "stages.ev.data"),
    ] {
        let p = project();
        p.write("spec.yaml", &SPEC.replace(from, to));
        let err = rejected_before_running(&p, &[field, "tok", "holds"]);
        assert!(err.contains("spec.yaml:"), "should give file:line: {err}");
        assert!(store_entries(&p).is_empty());
    }
    // A dataset that exists but that the tokenizer does not encode.
    let p = project();
    p.write("spec.yaml", &SPEC.replace("data: test }", "data: side }"));
    rejected_before_running(&p, &["stages.ev.data", "is not in `tok.encode`"]);
}

/// `pad.datasets` pads only what it names: a stage reading another dataset through it is a
/// spec error naming the field to extend, and so is a name the tokenizer does not encode;
/// with a correct list only those `.pad` files exist and the run succeeds.
#[test]
fn a_pad_stage_with_a_dataset_list_holds_only_those() {
    let p = project();
    let only = |list: &str| SPEC.replace("max_len: 16 }", &format!("max_len: 16, datasets: [{list}] }}"));
    p.write("spec.yaml", &only("train"));
    rejected_before_running(&p, &["stages.ev.data", "`test` is not in `seqs.datasets`"]);
    p.write("spec.yaml", &only("train, test, side"));
    rejected_before_running(&p, &["stages.seqs.datasets[2]", "is not in `tok.encode`"]);
    p.write("spec.yaml", &only("train, train"));
    rejected_before_running(&p, &["stages.seqs.datasets", "listed twice"]);
    p.write("spec.yaml", &only("train, test"));
    let r = run_ok(&p, &[]);
    let mut pads: Vec<String> = std::fs::read_dir(files_of(&p, &r, "seqs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pad"))
        .collect();
    pads.sort();
    assert_eq!(pads, ["test.pad", "train.pad"], "the corpus is not padded");
}

/// `idf` weighs n-grams: without `ngrams` it is a spec error.
#[test]
fn feature_extract_idf_without_ngrams_is_rejected() {
    let p = project();
    let spec = SPEC.replace(
        "  ev: { kind: evaluate, model: clf, from: seqs, data: test }",
        "  vec: { kind: pretrain, from: tok, data: [corpus], encoder: { type: bag, dim: 8 }, epochs: 1 }\n  fx: { kind: feature-extract, from: seqs, encoder: vec, train: train, idf: all }\n  ev: { kind: evaluate, model: clf, from: seqs, data: test }",
    );
    p.write("spec.yaml", &spec);
    rejected_before_running(&p, &["stages.fx.idf", "needs `ngrams`"]);
}

#[test]
fn a_moved_dataset_with_the_same_bytes_reruns_nothing() {
    let p = project();
    let r1 = run_ok(&p, &[]);
    std::fs::create_dir(p.path().join("data")).unwrap();
    std::fs::rename(p.path().join("train.csv"), p.path().join("data/train-v1.csv")).unwrap();
    p.write("spec.yaml", &SPEC.replace("path: train.csv", "path: data/train-v1.csv"));
    let r2 = run_ok(&p, &[]);
    for s in r2["stages"].as_array().unwrap() {
        assert_eq!(s["status"], "cached", "{s}");
        assert_eq!(s["key"], stage(&r1, s["name"].as_str().unwrap())["key"]);
    }
}

#[test]
fn repeats_that_overflow_the_seed_are_a_spec_error() {
    let p = project();
    p.write(
        "spec.yaml",
        &format!("{}repeats: 3\n", SPEC.replace("seed: 5", "seed: 18446744073709551614")),
    );
    rejected_before_running(&p, &["repeats", "overflows"]);
}

/// Found by the spec fuzzer: a huge `repeats` (or a matrix whose product is huge) used to
/// build every variant in memory until the machine ran out. Now a study is capped.
#[test]
fn a_study_of_too_many_variants_is_a_spec_error_not_an_out_of_memory() {
    let p = project();
    p.write("spec.yaml", &format!("{SPEC}repeats: 4294967296\n"));
    rejected_before_running(&p, &["repeats", "at most 10000 variants"]);
    let values: Vec<String> = (1..=120).map(|i| i.to_string()).collect();
    p.write(
        "spec.yaml",
        &format!(
            "{SPEC}matrix:\n  clf.epochs: [{v}]\n  seqs.max_len: [{v}]\nrepeats: 2\n",
            v = values.join(", ")
        ),
    );
    rejected_before_running(&p, &["matrix", "28800 variants", "at most 10000"]);
}
