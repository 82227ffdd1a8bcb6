//! The scheduler on a real (tiny) pipeline in-process: stages run once, in order, a failure
//! skips only what reads the failed stage, and a rerun finds everything cached.

use super::*;
use crate::plan::plan;

const SPEC: &str = "name: t
datasets:
  d: { path: d.csv }
stages:
  tok: { kind: tokenize, fit_on: [d], vocab_size: 60 }
  seqs: { kind: pad, from: tok, max_len: 8 }
  other: { kind: pad, from: tok, max_len: 4 }
";

fn run_spec(dir: &std::path::Path, text: &str) -> RunReport {
    let study = Study::parse(&dir.join("t.yaml"), text, &[]).unwrap();
    let ws = Workspace::open(&dir.join("ws")).unwrap();
    let plan = plan(&study, &ws).unwrap();
    let reporter = Reporter::hidden();
    let opts = Options {
        jobs: 2,
        force: Default::default(),
        reporter: &reporter,
        runner: &Runner::Local,
    };
    run(&study, &plan, &ws, &opts)
}

fn statuses(r: &RunReport) -> Vec<(String, Status)> {
    let mut v: Vec<(String, Status)> = r.stages.iter().map(|s| (s.name.clone(), s.status)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..30)
        .map(|i| format!("w{} w{} common,{}\n", i, i % 7, i % 2))
        .collect();
    std::fs::write(dir.path().join("d.csv"), format!("text,label\n{rows}")).unwrap();
    dir
}

#[test]
fn stages_run_once_then_are_cached() {
    let dir = project();
    let first = run_spec(dir.path(), SPEC);
    assert!(first.ok, "{:?}", first.stages);
    assert!(
        statuses(&first).iter().all(|(_, s)| *s == Status::Ran),
        "{:?}",
        statuses(&first)
    );
    let again = run_spec(dir.path(), SPEC);
    assert!(again.ok);
    assert!(
        statuses(&again).iter().all(|(_, s)| *s == Status::Cached),
        "{:?}",
        statuses(&again)
    );
    // A changed parameter reruns that stage only.
    let changed = run_spec(dir.path(), &SPEC.replace("max_len: 4", "max_len: 5"));
    assert_eq!(
        statuses(&changed),
        [
            ("other".to_string(), Status::Ran),
            ("seqs".to_string(), Status::Cached),
            ("tok".to_string(), Status::Cached)
        ]
    );
}

#[test]
fn a_failed_stage_skips_its_readers_and_spares_the_other_branch() {
    let dir = project();
    // `bad_tok` reads a file whose third row is not UTF-8: the spec check reads only the head,
    // so the stage fails when it reads the file.
    let mut bytes = b"text,label\nfine,0\nalso fine,1\n".to_vec();
    bytes.extend_from_slice(b"bad \xff\xfe text,0\n");
    std::fs::write(dir.path().join("bad.csv"), bytes).unwrap();
    let text = "name: t
datasets:
  d: { path: d.csv }
  e: { path: bad.csv }
stages:
  tok: { kind: tokenize, fit_on: [d], vocab_size: 60 }
  seqs: { kind: pad, from: tok, max_len: 8 }
  bad_tok: { kind: tokenize, fit_on: [e], vocab_size: 60 }
  bad_seqs: { kind: pad, from: bad_tok, max_len: 8 }
";
    let r = run_spec(dir.path(), text);
    let st: std::collections::BTreeMap<String, Status> = statuses(&r).into_iter().collect();
    assert_eq!(st["bad_tok"], Status::Failed, "{st:?}");
    let err = r
        .stages
        .iter()
        .find(|s| s.name == "bad_tok")
        .and_then(|s| s.error.clone());
    assert!(
        err.as_deref()
            .unwrap_or("")
            .contains("bad.csv:4: text is not valid UTF-8"),
        "{err:?}"
    );
    assert!(!r.ok);
    assert_eq!(st["bad_seqs"], Status::Skipped);
    assert_eq!(st["tok"], Status::Ran);
    assert_eq!(st["seqs"], Status::Ran);
}
