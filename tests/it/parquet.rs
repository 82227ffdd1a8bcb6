//! Parquet datasets: read like a csv (integer labels included, as Hugging Face stores a
//! `ClassLabel`), and broken ones rejected with the file, the columns found or the row.

use std::sync::Arc;

use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use crate::common::{gen_corpus, gen_csv, Project};

/// Writes `rows` (text, label) as Parquet: `text` a UTF-8 string column (optional, so that a
/// `None` is a null), `label` an int64 column, snappy-compressed as pyarrow writes by default.
fn write_parquet(path: &std::path::Path, rows: &[(Option<String>, i64)]) {
    let schema = Arc::new(
        parse_message_type("message schema { OPTIONAL BYTE_ARRAY text (UTF8); REQUIRED INT64 label; }").unwrap(),
    );
    let props = Arc::new(WriterProperties::builder().set_compression(Compression::SNAPPY).build());
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, schema, props).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let mut col = 0;
    while let Some(mut c) = rg.next_column().unwrap() {
        if col == 0 {
            let values: Vec<ByteArray> = rows
                .iter()
                .filter_map(|(t, _)| t.as_deref().map(ByteArray::from))
                .collect();
            let defs: Vec<i16> = rows.iter().map(|(t, _)| i16::from(t.is_some())).collect();
            c.typed::<ByteArrayType>()
                .write_batch(&values, Some(&defs), None)
                .unwrap();
        } else {
            let labels: Vec<i64> = rows.iter().map(|(_, l)| *l).collect();
            c.typed::<Int64Type>().write_batch(&labels, None, None).unwrap();
        }
        c.close().unwrap();
        col += 1;
    }
    rg.close().unwrap();
    w.close().unwrap();
}

/// The tests' generated rows, labels 1 (pos) / 0 (neg).
fn rows(n: usize, seed: u64) -> Vec<(Option<String>, i64)> {
    gen_csv(n, seed)
        .lines()
        .skip(1)
        .map(|l| {
            let (t, lab) = l.rsplit_once(',').unwrap();
            (Some(t.to_string()), i64::from(lab == "pos"))
        })
        .collect()
}

const SPEC: &str = "\
name: pq
seed: 1
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.parquet, label: label }
  test: { path: test.parquet, label: label }
stages:
  tok: { kind: tokenize, fit_on: [corpus, train], encode: [train, test], vocab_size: 150 }
  seqs: { kind: pad, from: tok, max_len: 16 }
  clf: { kind: finetune, from: seqs, train: train, encoder: { type: bag, dim: 16 }, epochs: 8 }
  ev: { kind: evaluate, model: clf, from: seqs, data: test }
";

fn project() -> Project {
    let p = Project::empty();
    p.write("corpus.txt", &gen_corpus(300, 1));
    write_parquet(&p.path().join("train.parquet"), &rows(300, 2));
    write_parquet(&p.path().join("test.parquet"), &rows(100, 3));
    p.write("spec.yaml", SPEC);
    p
}

/// The same rows as csv, labels `0`/`1`.
fn csv_of(rows: &[(Option<String>, i64)]) -> String {
    let mut out = String::from("text,label\n");
    for (t, l) in rows {
        out.push_str(&format!("{},{l}\n", t.as_deref().unwrap_or_default()));
    }
    out
}

#[test]
fn a_parquet_dataset_reads_exactly_as_its_csv_twin() {
    let p = project();
    let r = p.run_ok("spec.yaml", &[]);
    let ev = crate::common::stage(&r, "ev");
    let acc = ev["metrics"]["accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("no accuracy: {ev:#}"));
    assert!(acc > 0.6, "accuracy {acc} on the Parquet test set (majority ~0.5)");
    // Integer labels become their text, as a csv's would be: the same rows as csv give the
    // same tokenizer, the same model and the same metrics.
    p.write("train.csv", &csv_of(&rows(300, 2)));
    p.write("test.csv", &csv_of(&rows(100, 3)));
    p.write(
        "twin.yaml",
        &SPEC.replace(".parquet", ".csv").replace("name: pq", "name: twin"),
    );
    let t = p.run_ok("twin.yaml", &[]);
    assert_eq!(
        crate::common::stage(&t, "ev")["metrics"],
        ev["metrics"],
        "csv twin differs"
    );
    let (code, out, err) = p.run(&["predict", "spec.yaml", "clf", "a fine film"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains('0') || out.contains('1'), "{out}");
}

#[test]
fn a_missing_parquet_column_names_the_columns_found() {
    let p = project();
    p.write(
        "spec.yaml",
        &SPEC.replace(
            "train: { path: train.parquet, label: label }",
            "train: { path: train.parquet, label: category }",
        ),
    );
    let (code, _, err) = p.run(&["run", "spec.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("train.parquet") && err.contains("`category` not found"),
        "{err}"
    );
    assert!(
        err.contains("`text`, `label`"),
        "the columns found should be listed: {err}"
    );
}

#[test]
fn a_null_text_names_its_row_and_a_non_parquet_file_is_rejected() {
    let p = project();
    let mut r = rows(300, 2);
    r[41].0 = None;
    write_parquet(&p.path().join("train.parquet"), &r);
    let (code, _, err) = p.run(&["run", "spec.yaml"]);
    assert_eq!(code, 1, "a bad row deep in a file fails the stage that reads it: {err}");
    assert!(err.contains("row 42") && err.contains("null"), "{err}");

    p.write("train.parquet", &gen_csv(50, 2));
    let (code, _, err) = p.run(&["run", "spec.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("train.parquet") && err.contains("not a readable Parquet file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// A folder is unlabelled text from every data file under it: the lines of its `.txt` files
/// and the text column of its csv and Parquet files (their labels unread); a README is not data.
#[test]
fn a_folder_dataset_reads_its_text_csv_and_parquet_files() {
    let p = project();
    p.write("mix/a.txt", &gen_corpus(300, 1));
    p.write("mix/sub/b.csv", &csv_of(&rows(50, 4)));
    write_parquet(&p.path().join("mix/c.parquet"), &rows(40, 5));
    p.write("mix/README.md", "not data\n");
    p.write(
        "mix.yaml",
        &SPEC
            .replace("corpus: { path: corpus.txt }", "corpus: { path: mix }")
            .replace("encode: [train, test]", "encode: [corpus, train, test]"),
    );
    let r = p.run_ok("mix.yaml", &[]);
    let key = crate::common::stage(&r, "tok")["key"]
        .as_str()
        .expect("key")
        .to_string();
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.files(&key).join("meta.json")).expect("meta.json")).expect("json");
    assert_eq!(meta["datasets"]["corpus"]["rows"], 300 + 50 + 40, "{meta:#}");
    // The folder's content is its identity: a new csv under it reruns the tokenizer.
    p.write("mix/sub/d.csv", &csv_of(&rows(10, 6)));
    let again = p.run_ok("mix.yaml", &[]);
    assert_ne!(
        crate::common::stage(&again, "tok")["key"],
        crate::common::stage(&r, "tok")["key"]
    );
}
