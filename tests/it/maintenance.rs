//! Store maintenance: `verify` finds corrupt entries and a run recomputes them; `gc` removes
//! only what no given spec references; an interrupted run (SIGKILL at random moments) never
//! leaves an entry that a later run trusts, and the final metrics equal a clean run's.

use crate::common::warmstart;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn quickstart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml")
}

fn run(ws: &Path) -> Value {
    let spec = quickstart();
    let (code, out, err) = warmstart(ws, &["run", spec.to_str().unwrap(), "--json", "--jobs", "2"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn metrics(r: &Value) -> Vec<(String, Value)> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "evaluate")
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["metrics"].clone()))
        .collect()
}

fn key_of(r: &Value, name: &str) -> String {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn verify_detects_corruption_and_run_recomputes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let first = run(&ws);
    let (code, out, _) = warmstart(&ws, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("9 entries checked, 9 ok, 0 corrupt"), "{out}");

    // Truncate the padded training data of `seqs`.
    let seqs = key_of(&first, "seqs");
    let f = ws.join("store").join(&seqs).join("files/train.pad");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let (code, out, _) = warmstart(&ws, &["verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("CORRUPT {seqs} (stage `seqs`)")) && out.contains("train.pad"),
        "{out}"
    );

    // The next run never uses it: `seqs` reruns, everything downstream stays cached (same key).
    let again = run(&ws);
    for s in again["stages"].as_array().unwrap() {
        let want = if s["name"] == "seqs" { "ran" } else { "cached" };
        assert_eq!(s["status"], want, "{s}");
    }
    assert!(again["stages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "seqs" && s["reasons"][0].as_str().unwrap().contains("corrupt")));
    // The recomputed entry holds the original bytes again (not merely the same cached metrics,
    // which downstream entries that never reran would report anyway).
    assert!(
        std::fs::read(&f).unwrap() == bytes,
        "the rerun of `seqs` wrote other bytes"
    );
    assert_eq!(metrics(&again), metrics(&first));
    let (code, out, _) = warmstart(&ws, &["verify"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn gc_keeps_what_specs_reference_and_frees_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let spec = quickstart();
    let s = spec.to_str().unwrap();
    run(&ws);
    // A variant's entries (only `scratch` and its evaluation differ).
    let (code, _, err) = warmstart(&ws, &["run", s, "--set", "scratch.epochs=3", "--jobs", "2"]);
    assert_eq!(code, 0, "{err}");
    let count = || std::fs::read_dir(ws.join("store")).unwrap().count();
    assert_eq!(count(), 11);
    let (code, out, _) = warmstart(&ws, &["gc", s, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("would free") && out.contains("in 2 entries"), "{out}");
    assert_eq!(count(), 11);
    let (code, out, _) = warmstart(&ws, &["gc", s]);
    assert_eq!(code, 0);
    assert!(out.contains("freed") && out.contains("in 2 entries"), "{out}");
    assert_eq!(count(), 9);
    // Everything the spec needs is still there.
    let r = run(&ws);
    assert!(r["stages"].as_array().unwrap().iter().all(|s| s["status"] == "cached"));
}

/// Kills runs with SIGKILL at random moments (during tokenize, training, commits), resumes
/// each time, and checks that no `cached` stage ever fails verification and that the final
/// metrics equal a clean run's.
#[test]
fn sigkill_at_random_moments_never_leaves_a_trusted_partial_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = run(&tmp.path().join("clean"));
    let ws = tmp.path().join("ws");
    let spec = quickstart();
    // Deterministic pseudo-random delays (xorshift), spread over most of a full run's duration
    // (measured here, so the spread holds on a fast machine as on a slow one).
    let full = {
        let t = Instant::now();
        run(&tmp.path().join("timing"));
        t.elapsed().as_millis() as u64
    };
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut kills = 0;
    // 12 rounds in the default suite; `.ci/run` runs a second pass with 100.
    let rounds: usize = std::env::var("WARMSTART_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut hit: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let log = tmp.path().join("stderr.log");
    // The span delays are drawn from, per kind of round. Rounds that redo little finish in a
    // fraction of a full run (more so as cached entries verify by stamp in milliseconds), so a
    // round that ended before its kill halves its kind's span: the kills keep landing while
    // work is going on, on a fast machine as on a slow one.
    let mut span = [full; 4];
    for round in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = x % (span[round % 4] * 3 / 4).max(50);
        let mut child = Command::new(env!("CARGO_BIN_EXE_warmstart"))
            // A checkpoint after every epoch: kills land in training loops and in saves, and
            // the stages that resume must still end at the clean run's metrics.
            .env("WARMSTART_CHECKPOINT_EVERY", "0")
            .arg("--workspace")
            .arg(&ws)
            .args(["run", spec.to_str().unwrap(), "--jobs", "2"])
            // Most rounds also redo finished work of some stage kinds, so there is always
            // something to interrupt (including the replacement of an existing entry).
            .args(match round % 4 {
                1 => &["--force", "embed", "--force", "scratch"][..],
                2 => &["--force", "tok", "--force", "seqs", "--force", "test_scratch"][..],
                3 => &["--force", "frozen", "--force", "tuned", "--force", "test_tuned"][..],
                _ => &[][..],
            })
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        if round % 4 == 1 {
            // Pretraining is short (about a second of the run), so random delays from the
            // start seldom land in it: in these rounds the delay counts from its start.
            let t = Instant::now();
            while !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("embed: running")
                && child.try_wait().unwrap().is_none()
                && t.elapsed() < Duration::from_secs(30)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(delay % 600));
        } else {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if child.try_wait().unwrap().is_some() {
            span[round % 4] = (span[round % 4] / 2).max(60);
        } else {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
            child.wait().unwrap();
            // The stages running when the kill landed: reported running, not yet done.
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let started: Vec<&str> = text
                .lines()
                .filter_map(|l| l.split_once(": running").map(|(s, _)| s))
                .collect();
            let running: Vec<&str> = started
                .into_iter()
                .filter(|s| !text.lines().any(|l| l.starts_with(&format!("{s}: done"))))
                .collect();
            if running.is_empty() {
                *hit.entry("(planning)".into()).or_default() += 1;
            }
            for s in running {
                *hit.entry(s.to_string()).or_default() += 1;
            }
        }
        child.wait().unwrap();
        // Whatever the store holds now must verify: no half-written entry is visible.
        let (code, out, _) = warmstart(&ws, &["verify"]);
        assert_eq!(code, 0, "after a kill at {delay} ms: {out}");
    }
    let last = run(&ws);
    if metrics(&last) != metrics(&clean) {
        // Say which entries differ, so that a failure here can be traced to a stage.
        let (a, b) = (
            crate::common::store_checksums(&tmp.path().join("clean")),
            crate::common::store_checksums(&ws),
        );
        let differing: Vec<&String> = a
            .iter()
            .filter(|(f, h)| b.get(*f).is_some_and(|x| x != *h))
            .map(|(f, _)| f)
            .collect();
        panic!(
            "final metrics differ from the clean run's\nclean: {:?}\nafter kills: {:?}\nfiles that differ under the same key: {differing:?}\nlast run's stderr:\n{}",
            metrics(&clean),
            metrics(&last),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    eprintln!("survived {kills} SIGKILLs in {rounds} rounds; killed while running: {hit:?}; final metrics equal the clean run's");
    assert!(
        kills >= rounds / 3,
        "only {kills} of {rounds} runs were still going when killed"
    );
    // With 100 rounds the kills must land in every kind of work that lasts long enough to be
    // hit: tokenizing, pretraining, fine-tuning/feature extraction (evaluate stages take ~20
    // ms, so kills during them are counted when they happen but not required). The stages
    // counted are those reported running and not done; with `--jobs 2` two can run at once.
    if rounds >= 100 {
        let kinds: std::collections::BTreeSet<&str> = hit
            .keys()
            .map(|s| match s.as_str() {
                "tok" | "seqs" => "tokenize",
                "embed" => "pretrain",
                s if s.starts_with("test_") => "evaluate",
                "(planning)" => "planning",
                _ => "train",
            })
            .collect();
        assert!(
            ["tokenize", "pretrain", "train"].iter().all(|k| kinds.contains(k)),
            "kills should spread over the kinds of work: {hit:?}"
        );
    }
}

/// A second run on a busy workspace waits, says for what, and then proceeds.
#[test]
fn a_run_on_a_busy_workspace_waits_and_says_why() {
    use fs2::FileExt;
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(ws.join("lock"))
        .unwrap();
    lock.lock_exclusive().unwrap();
    std::fs::write(ws.join("lock"), "pid 4242").unwrap();
    let spec = quickstart();
    let child = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(&ws)
        .args(["run", spec.to_str().unwrap(), "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        !ws.join("store").exists() || std::fs::read_dir(ws.join("store")).unwrap().count() == 0,
        "it must not run while the workspace is locked"
    );
    FileExt::unlock(&lock).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("waiting for another warmstart run on workspace") && err.contains("pid 4242"),
        "{err}"
    );
}
