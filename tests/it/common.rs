//! Shared helpers for the CLI integration tests: a temporary project with small, deterministic
//! generated data, a way to run the `warmstart` binary against it, and JSON helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The spec used by most tests: one tokenize stage over two datasets and one pad stage.
pub const SPEC: &str = "\
name: t1
seed: 3
datasets:
  corpus: { path: corpus.txt }
  train: { path: train.csv, label: label }
stages:
  tok:
    kind: tokenize
    fit_on: [corpus, train]
    encode: [corpus, train]
    vocab_size: 200
    algorithm: wordpiece
  seqs:
    kind: pad
    from: tok
    max_len: 16
";

/// Rows in the generated datasets.
pub const ROWS: usize = 300;

/// A small deterministic pseudo-random generator (an LCG), so the data never depends on a crate.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.next_u32() as usize % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "a",
    "film",
    "movie",
    "plot",
    "actor",
    "actress",
    "story",
    "scene",
    "music",
    "script",
    "ending",
    "was",
    "is",
    "very",
    "quite",
    "rather",
    "really",
    "not",
    "so",
    "and",
    "but",
    "with",
    "great",
    "awful",
    "boring",
    "brilliant",
    "funny",
    "slow",
    "moving",
    "terrible",
    "wonderful",
    "dull",
    "clever",
    "director",
    "camera",
    "cast",
    "performance",
    "dialogue",
    "soundtrack",
];
const POSITIVE: &[&str] = &[
    "great",
    "brilliant",
    "funny",
    "moving",
    "wonderful",
    "clever",
    "loved",
    "superb",
];
const NEGATIVE: &[&str] = &["awful", "boring", "slow", "terrible", "dull", "hated", "weak", "messy"];

/// `n` lines of English-like text, one per line (a `txt` dataset).
pub fn gen_corpus(n: usize, seed: u64) -> String {
    let mut r = Lcg::new(seed);
    let mut out = String::new();
    for _ in 0..n {
        let len = 5 + r.below(8);
        let words: Vec<&str> = (0..len).map(|_| r.pick(WORDS)).collect();
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out
}

/// A labelled csv (`text,label`) of `n` rows; labels are `pos`/`neg`.
pub fn gen_csv(n: usize, seed: u64) -> String {
    let mut r = Lcg::new(seed);
    let mut out = String::from("text,label\n");
    for _ in 0..n {
        let pos = r.below(2) == 0;
        let len = 4 + r.below(6);
        let mut words: Vec<&str> = (0..len).map(|_| r.pick(WORDS)).collect();
        let at = r.below(words.len() + 1);
        words.insert(at, r.pick(if pos { POSITIVE } else { NEGATIVE }));
        out.push_str(&words.join(" "));
        out.push(',');
        out.push_str(if pos { "pos" } else { "neg" });
        out.push('\n');
    }
    out
}

/// `n` Chinese hotel-review sentences ("这家酒店的服务很好。" style), one per line.
pub fn gen_chinese(n: usize, seed: u64) -> String {
    const SUBJECTS: &[&str] = &[
        "这家酒店的服务",
        "房间",
        "早餐",
        "前台",
        "位置",
        "价格",
        "环境",
        "床",
        "服务员",
        "卫生间",
    ];
    const ADVERBS: &[&str] = &["很", "非常", "特别", "比较", "不太", "真的", "挺"];
    const ADJECTIVES: &[&str] = &["好", "干净", "方便", "便宜", "贵", "热情", "差", "舒服", "安静", "吵"];
    const TAILS: &[&str] = &["。", "！", "，下次还来。", "，推荐。", "，不会再来了。", "，总体满意。"];
    let mut r = Lcg::new(seed);
    let mut out = String::new();
    for _ in 0..n {
        let clauses = 1 + r.below(2);
        for c in 0..clauses {
            if c > 0 {
                out.push('，');
            }
            out.push_str(r.pick(SUBJECTS));
            out.push_str(r.pick(ADVERBS));
            out.push_str(r.pick(ADJECTIVES));
        }
        out.push_str(r.pick(TAILS));
        out.push('\n');
    }
    out
}

/// A temporary project folder; removed when dropped.
///
/// Made with `std` only (no `tempfile`): the crate routes `getrandom` to a custom backend that
/// lives in the library, and a test binary that does not link the library cannot use it.
pub struct Project {
    dir: PathBuf,
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Project {
    /// An empty project folder.
    pub fn empty() -> Project {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("warmstart-test-{}-{n}-{nanos}", std::process::id()));
            match std::fs::create_dir(&dir) {
                Ok(()) => return Project { dir },
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }

    /// A project with `corpus.txt`, `train.csv` and `spec.yaml` (= [`SPEC`]).
    pub fn new() -> Project {
        let p = Project::empty();
        p.write("corpus.txt", &gen_corpus(ROWS, 1));
        p.write("train.csv", &gen_csv(ROWS, 2));
        p.write("spec.yaml", SPEC);
        p
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The workspace the helpers pass with `--workspace`.
    pub fn ws(&self) -> PathBuf {
        self.path().join(".ws")
    }

    pub fn write(&self, rel: &str, contents: &str) {
        let p = self.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    }

    pub fn read(&self, rel: &str) -> String {
        let p = self.path().join(rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    /// Runs `warmstart --workspace <tmp>/.ws ARGS...` with the project as working directory.
    /// Returns (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warmstart"));
        cmd.arg("--workspace").arg(self.ws()).args(args);
        self.output(cmd).expect("cannot start the warmstart binary")
    }

    /// (exit code, stdout, stderr) of `cmd` run in the project folder without RUST_BACKTRACE.
    fn output(&self, mut cmd: Command) -> Option<(i32, String, String)> {
        let out = cmd
            .current_dir(self.path())
            .env_remove("RUST_BACKTRACE")
            .output()
            .ok()?;
        let code = out.status.code().unwrap_or(-1);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        Some((code, stdout, stderr))
    }

    /// Runs the binary as the unprivileged user `nobody` (via `setpriv`), for checks that root
    /// would pass trivially (root writes into read-only folders). `None` when this process is
    /// not root (then [`Project::run`] is already unprivileged) or setpriv is missing.
    pub fn run_unprivileged(&self, args: &[&str]) -> Option<(i32, String, String)> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_warmstart"))
            .arg("--workspace")
            .arg(self.ws())
            .args(args);
        self.output(cmd)
    }

    /// Runs `ARGS... --json` and parses stdout; panics (showing stderr) if it is not JSON.
    pub fn run_json(&self, args: &[&str]) -> (i32, Value) {
        let mut a: Vec<&str> = args.to_vec();
        a.push("--json");
        let (code, stdout, stderr) = self.run(&a);
        let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}); exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                a.join(" ")
            )
        });
        (code, v)
    }

    /// `run SPEC --json ARGS...`, asserting the exit code; returns the parsed report.
    pub fn run_ok(&self, spec: &str, extra: &[&str]) -> Value {
        let mut a = vec!["run", spec];
        a.extend_from_slice(extra);
        let (code, v) = self.run_json(&a);
        assert_eq!(code, 0, "`{}` failed: {v:#}", a.join(" "));
        assert_eq!(v["ok"], Value::Bool(true), "{v:#}");
        v
    }

    /// `status SPEC --json ARGS...`, asserting exit 0.
    pub fn status_json(&self, spec: &str, extra: &[&str]) -> Value {
        let mut a = vec!["status", spec];
        a.extend_from_slice(extra);
        let (code, v) = self.run_json(&a);
        assert_eq!(code, 0, "`{}` failed: {v:#}", a.join(" "));
        v
    }

    /// The `files/` folder of a store entry.
    pub fn files(&self, key: &str) -> PathBuf {
        self.ws().join("store").join(key).join("files")
    }
}

/// stage name → `status` (ran, cached, failed, skipped) of a `run --json` report.
pub fn statuses(report: &Value) -> BTreeMap<String, String> {
    stages_of(report)
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("stage name").to_string(),
                s["status"].as_str().expect("stage status").to_string(),
            )
        })
        .collect()
}

/// stage name → key, of a `run --json` or `status --json` report.
pub fn keys(report: &Value) -> BTreeMap<String, String> {
    stages_of(report)
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("stage name").to_string(),
                s["key"].as_str().expect("stage key").to_string(),
            )
        })
        .collect()
}

/// stage name → reasons, of a `run --json` or `status --json` report.
pub fn reasons(report: &Value) -> BTreeMap<String, Vec<String>> {
    stages_of(report)
        .iter()
        .map(|s| {
            let r = s["reasons"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect())
                .unwrap_or_default();
            (s["name"].as_str().expect("stage name").to_string(), r)
        })
        .collect()
}

/// stage name → fresh, of a `status --json` report.
pub fn freshness(status: &Value) -> BTreeMap<String, bool> {
    stages_of(status)
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("stage name").to_string(),
                s["fresh"].as_bool().expect("fresh flag"),
            )
        })
        .collect()
}

/// The entry for one stage of a report.
pub fn stage<'a>(report: &'a Value, name: &str) -> &'a Value {
    stages_of(report)
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage `{name}` in {report:#}"))
}

fn stages_of(report: &Value) -> &Vec<Value> {
    report["stages"]
        .as_array()
        .unwrap_or_else(|| panic!("no `stages` array in {report:#}"))
}

/// Builds a `BTreeMap<String, String>` from pairs, for comparing with [`statuses`].
pub fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// 1-based number of the first line of `text` containing `needle`; a needle ending in `\n`
/// must match a whole line.
pub fn line_of(text: &str, needle: &str) -> usize {
    let whole = needle.strip_suffix('\n');
    text.lines()
        .position(|l| match whole {
            Some(w) => l == w,
            None => l.contains(needle),
        })
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` not in:\n{text}"))
}

/// Reports a skipped check where it cannot be missed: on stderr (shown by cargo even for a
/// passing test only with --nocapture, hence also) in `target/tmp/skipped-tests.log`, which
/// `.ci/run` prints as a summary at the end.
pub fn skip(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIPPED {test}: {reason}");
    eprintln!("{line}");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.log");
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{line}");
    }
}

/// blake3 of every artefact file under `store/*/files/` of workspace `ws`, by path relative to
/// `store/` (entry.json is left out: it records timings).
pub fn store_checksums(ws: &Path) -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.components().any(|c| c.as_os_str() == "files") {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, blake3::hash(&std::fs::read(&p).unwrap()).to_hex().to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&ws.join("store"), &ws.join("store"), &mut out);
    out
}

/// Runs the built `warmstart` with `--workspace ws` and `args`: (exit code, stdout, stderr).
pub fn warmstart(ws: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(ws)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
