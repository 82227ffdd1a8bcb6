//! `run --executor slurm` against a real Slurm: the private single-node cluster that
//! `.ci/slurm/up.sh` starts (`.ci/run` does so before the tests and exports `SLURM_CONF`).
//! Without a reachable Slurm every test here skips, saying so (stderr and the skip log).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tests share one single-node cluster, and one of them sets the node down: they run one
/// at a time.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cluster() -> std::sync::MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a Slurm controller answers and has a usable node; otherwise logs the skip.
fn slurm_or_skip(test: &str) -> bool {
    let ok = Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout);
            s.lines()
                .any(|l| l.starts_with("idle") || l.starts_with("mix") || l.starts_with("alloc"))
        })
        .unwrap_or(false);
    if !ok {
        crate::common::skip(
            test,
            "no Slurm controller with a usable node (start one with `eval \"$(.ci/slurm/up.sh)\"`, as .ci/run does)",
        );
    }
    ok
}

fn warmstart(workspace: &Path, cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(workspace)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run warmstart");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report(code_out_err: (i32, String, String)) -> (i32, Value, String) {
    let (code, out, err) = code_out_err;
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("no JSON report ({e}); exit {code}\nstdout:\n{out}\nstderr:\n{err}"));
    (code, v, err)
}

fn by_name(r: &Value) -> BTreeMap<String, &Value> {
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s))
        .collect()
}

/// The quickstart through Slurm: every stage runs as a job (its id and log in the report),
/// the artefacts are byte-identical to a local run's in another workspace, and a rerun is all
/// `cached` without submitting anything.
#[test]
fn quickstart_on_slurm_matches_a_local_run_byte_for_byte() {
    let _one = cluster();
    if !slurm_or_skip("quickstart_on_slurm_matches_a_local_run_byte_for_byte") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let spec = root().join("pipelines/quickstart.yaml");
    let spec = spec.to_str().unwrap();
    let (local, cluster) = (tmp.path().join("local"), tmp.path().join("cluster"));
    let (code, l, err) = report(warmstart(&local, tmp.path(), &["run", spec, "--json", "--jobs", "2"]));
    assert_eq!(code, 0, "{err}");
    let (code, s, err) = report(warmstart(
        &cluster,
        tmp.path(),
        &["run", spec, "--json", "--executor", "slurm", "--jobs", "4"],
    ));
    assert_eq!(code, 0, "{err}");
    let (ls, ss) = (by_name(&l), by_name(&s));
    assert_eq!(ls.len(), ss.len());
    for (name, st) in &ss {
        assert_eq!(st["status"], "ran", "{name}: {st:#}");
        assert_eq!(
            st["key"], ls[name]["key"],
            "{name}: keys differ between local and Slurm"
        );
        // Metrics equal, but for the training speed (the one figure that differs between runs).
        let strip = |m: &Value| {
            let mut m = m.clone();
            if let Some(o) = m.as_object_mut() {
                o.remove("tokens_per_second");
            }
            m
        };
        assert_eq!(
            strip(&st["metrics"]),
            strip(&ls[name]["metrics"]),
            "{name}: metrics differ"
        );
        let job = &st["job"];
        let log = PathBuf::from(
            job["log"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no job in {st:#}")),
        );
        assert!(job["id"].as_str().is_some_and(|i| !i.is_empty()));
        assert_eq!(job["state"], "COMPLETED", "{name}: {job:#}");
        assert!(log.starts_with(cluster.join("jobs")), "{}", log.display());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(text.contains(&format!("{name}: done")), "{name}'s log:\n{text}");
    }
    let (a, b) = (
        crate::common::store_checksums(&local),
        crate::common::store_checksums(&cluster),
    );
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(a, b, "artefact bytes differ between local and Slurm runs");
    // A rerun submits nothing.
    let (code, r, err) = report(warmstart(
        &cluster,
        tmp.path(),
        &["run", spec, "--json", "--executor", "slurm"],
    ));
    assert_eq!(code, 0, "{err}");
    for (name, st) in by_name(&r) {
        assert_eq!(st["status"], "cached", "{name}");
        assert!(st.get("job").is_none(), "{name} was submitted again: {st:#}");
    }
    assert!(!err.contains("Slurm job"), "{err}");
}

/// A stage that fails on the cluster: exit 1, the error names the job's log (and shows its
/// end), downstream stages are skipped, an independent branch completes, nothing is committed
/// for the failed stage.
#[test]
fn a_stage_failing_on_the_cluster_exits_1_and_names_its_log() {
    let _one = cluster();
    if !slurm_or_skip("a_stage_failing_on_the_cluster_exits_1_and_names_its_log") {
        return;
    }
    let p = crate::common::Project::new();
    // Line 3 of the corpus is not UTF-8: the tokenizer that reads it fails when it runs.
    let mut bad = b"a line of text\nanother line\n".to_vec();
    bad.extend_from_slice(b"caf\xe9 au lait\n");
    std::fs::write(p.path().join("bad.txt"), bad).unwrap();
    p.write(
        "two.yaml",
        "name: two\nseed: 1\ndatasets:\n  bad: { path: bad.txt }\n  train: { path: train.csv, label: label }\n\
         stages:\n  tok_bad: { kind: tokenize, fit_on: [bad] }\n  pad_bad: { kind: pad, from: tok_bad }\n\
         \x20 tok_ok: { kind: tokenize, fit_on: [train] }\n  pad_ok: { kind: pad, from: tok_ok }\n",
    );
    let (code, r, err) = report(warmstart(
        &p.ws(),
        p.path(),
        &["run", "two.yaml", "--json", "--executor", "slurm"],
    ));
    assert_eq!(code, 1, "{r:#}\n{err}");
    let st = by_name(&r);
    assert_eq!(st["tok_bad"]["status"], "failed");
    assert_eq!(st["pad_bad"]["status"], "skipped");
    assert_eq!(st["tok_ok"]["status"], "ran");
    assert_eq!(st["pad_ok"]["status"], "ran");
    let msg = st["tok_bad"]["error"].as_str().unwrap();
    let log = st["tok_bad"]["job"]["log"].as_str().unwrap();
    assert!(msg.contains(log) && log.contains("/jobs/"), "{msg}");
    assert!(
        msg.contains("not valid UTF-8"),
        "the log's end should be in the error: {msg}"
    );
    assert!(err.contains(log), "stderr should name the log: {err}");
    let key = st["tok_bad"]["key"].as_str().unwrap();
    assert!(!p.ws().join("store").join(key).exists());
}

/// The spec's `executor:` block reaches sbatch: per kind and per stage, the command line last.
/// Slurm itself is asked what each job got (`scontrol show job`).
#[test]
fn the_executor_block_sets_each_jobs_resources() {
    let _one = cluster();
    if !slurm_or_skip("the_executor_block_sets_each_jobs_resources") {
        return;
    }
    let p = crate::common::Project::new();
    p.write(
        "res.yaml",
        "name: res\nseed: 1\ndatasets:\n  train: { path: train.csv, label: label }\n\
         stages:\n  tok: { kind: tokenize, fit_on: [train] }\n  short: { kind: pad, from: tok, max_len: 8 }\n\
         \x20 long: { kind: pad, from: tok, max_len: 16 }\n\
         executor:\n  time: \"00:09:00\"\n  kinds:\n    pad: { time: \"00:07:00\" }\n  stages:\n    long: { time: \"00:05:00\" }\n",
    );
    let (code, r, err) = report(warmstart(
        &p.ws(),
        p.path(),
        &["run", "res.yaml", "--json", "--executor", "slurm"],
    ));
    assert_eq!(code, 0, "{r:#}\n{err}");
    let st = by_name(&r);
    let limit = |stage: &str| -> String {
        let id = st[stage]["job"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{stage} ran as a job: {r:#}"));
        let out = Command::new("scontrol").args(["show", "job", id]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace()
            .find_map(|f| f.strip_prefix("TimeLimit="))
            .unwrap_or_else(|| panic!("no TimeLimit for job {id}: {text}"))
            .to_string()
    };
    assert_eq!(limit("tok"), "00:09:00", "the block's default");
    assert_eq!(limit("short"), "00:07:00", "the kind's entry");
    assert_eq!(limit("long"), "00:05:00", "the stage's own entry");
    // `--slurm-arg` comes after the block, so it wins.
    let (code, r, err) = report(warmstart(
        &p.ws(),
        p.path(),
        &[
            "run",
            "res.yaml",
            "--json",
            "--executor",
            "slurm",
            "--force",
            "long",
            "--slurm-arg=--time=00:04:00",
        ],
    ));
    assert_eq!(code, 0, "{r:#}\n{err}");
    let st = by_name(&r);
    let id = st["long"]["job"]["id"].as_str().unwrap().to_string();
    let out = Command::new("scontrol").args(["show", "job", &id]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("TimeLimit=00:04:00"));
    // A name that matches no stage is a spec error with its line, before anything is submitted.
    p.write(
        "bad.yaml",
        &std::fs::read_to_string(p.path().join("res.yaml"))
            .unwrap()
            .replace("    long: {", "    lnog: {"),
    );
    let (code, _, err) = warmstart(&p.ws(), p.path(), &["validate", "bad.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("executor.stages.lnog") && err.contains("bad.yaml:"),
        "{err}"
    );
}

/// Usage errors of the Slurm options exit 2 without submitting anything.
#[test]
fn slurm_options_without_the_slurm_executor_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = root().join("pipelines/quickstart.yaml");
    let (code, _, err) = warmstart(
        &tmp.path().join("ws"),
        tmp.path(),
        &["run", spec.to_str().unwrap(), "--slurm-arg=--time=5"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--executor slurm"), "{err}");
    let (code, _, err) = warmstart(
        &tmp.path().join("ws"),
        tmp.path(),
        &["exec-job", "/nonexistent/job.json"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read job file"), "{err}");
}

/// A driver started in the background on the quickstart with a slow pretraining stage; its
/// stderr goes to a file so the test can watch it.
struct Driver {
    child: std::process::Child,
    log: PathBuf,
}

const SLOW: [&str; 2] = ["--set", "embed.epochs=80"];

fn spawn_driver(ws: &Path, cwd: &Path, log: &Path) -> Driver {
    let spec = root().join("pipelines/quickstart.yaml");
    let child = Command::new(env!("CARGO_BIN_EXE_warmstart"))
        .arg("--workspace")
        .arg(ws)
        .args(["run", spec.to_str().unwrap(), "--executor", "slurm"])
        .args(SLOW)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start the driver");
    Driver {
        child,
        log: log.to_path_buf(),
    }
}

impl Driver {
    fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Waits (at most 120 s) until the driver's stderr contains `needle`.
    fn wait_for(&self, needle: &str) {
        let t = std::time::Instant::now();
        while !self.text().contains(needle) {
            assert!(t.elapsed().as_secs() < 120, "no {needle:?} in:\n{}", self.text());
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    /// Job ids the driver reported.
    fn job_ids(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|l| l.split_once("Slurm job ").map(|(_, r)| r))
            .filter_map(|r| r.split(|c: char| !c.is_ascii_digit()).next().map(str::to_string))
            .filter(|id| !id.is_empty())
            .collect()
    }
}

/// Ids among `ids` that Slurm still has pending or running.
fn alive(ids: &[String]) -> Vec<String> {
    let out = Command::new("squeue").args(["-h", "-o", "%i %T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(' '))
        .filter(|(id, st)| ids.iter().any(|i| i == id) && !st.starts_with("CANCELLED") && !st.starts_with("COMPLETED"))
        .map(|(id, _)| id.to_string())
        .collect()
}

fn node() -> String {
    let out = Command::new("sinfo").args(["-h", "-o", "%N"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn metrics_without_speed(r: &Value) -> BTreeMap<String, Value> {
    by_name(r)
        .into_iter()
        .map(|(n, s)| {
            let mut m = s["metrics"].clone();
            if let Some(o) = m.as_object_mut() {
                o.remove("tokens_per_second");
            }
            (n, m)
        })
        .collect()
}

fn clean_metrics(tmp: &Path) -> BTreeMap<String, Value> {
    let spec = root().join("pipelines/quickstart.yaml");
    let mut args = vec!["run", spec.to_str().unwrap(), "--json"];
    args.extend(SLOW);
    let (code, r, err) = report(warmstart(&tmp.join("clean"), tmp, &args));
    assert_eq!(code, 0, "{err}");
    metrics_without_speed(&r)
}

fn rerun_on_slurm(ws: &Path, cwd: &Path) -> (i32, Value, String) {
    let spec = root().join("pipelines/quickstart.yaml");
    let mut args = vec!["run", spec.to_str().unwrap(), "--json", "--executor", "slurm"];
    args.extend(SLOW);
    report(warmstart(ws, cwd, &args))
}

/// Ctrl-C on the driver cancels the jobs it queued and the one running: none is left in
/// `squeue`, and the driver exits 130.
#[test]
fn ctrl_c_on_the_driver_cancels_its_jobs() {
    let _one = cluster();
    if !slurm_or_skip("ctrl_c_on_the_driver_cancels_its_jobs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut d = spawn_driver(&tmp.path().join("ws"), tmp.path(), &tmp.path().join("driver.log"));
    d.wait_for("embed: Slurm job");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let ids = d.job_ids();
    assert!(!alive(&ids).is_empty(), "nothing running to cancel: {}", d.text());
    unsafe { libc::kill(d.child.id() as i32, libc::SIGINT) };
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{}", d.text());
    let t = std::time::Instant::now();
    while !alive(&ids).is_empty() {
        assert!(t.elapsed().as_secs() < 20, "jobs left after Ctrl-C: {:?}", alive(&ids));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A clean local run's metrics, and a Slurm driver on a fresh workspace whose `embed` job has
/// been submitted (`None`, after logging the skip, without a Slurm).
struct Interrupted {
    tmp: tempfile::TempDir,
    clean: BTreeMap<String, Value>,
    ws: PathBuf,
    d: Driver,
}

fn interrupted_run(test: &str) -> Option<Interrupted> {
    if !slurm_or_skip(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clean = clean_metrics(tmp.path());
    let ws = tmp.path().join("ws");
    let d = spawn_driver(&ws, tmp.path(), &tmp.path().join("driver.log"));
    d.wait_for("embed: Slurm job");
    Some(Interrupted { tmp, clean, ws, d })
}

/// The driver SIGKILLed while a stage runs on the cluster, then rerun: the running job is
/// adopted rather than submitted again (one job log per key: no stage committed twice),
/// `verify` passes, and the metrics equal a clean run's.
#[test]
fn a_sigkilled_driver_is_rerun_without_committing_any_stage_twice() {
    let _one = cluster();
    let Some(Interrupted { tmp, clean, ws, mut d }) =
        interrupted_run("a_sigkilled_driver_is_rerun_without_committing_any_stage_twice")
    else {
        return;
    };
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    // The job outlives its driver, and `status` says so.
    let spec = root().join("pipelines/quickstart.yaml");
    let mut args = vec!["status", spec.to_str().unwrap()];
    args.extend(SLOW);
    let (code, out, err) = warmstart(&ws, tmp.path(), &args);
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("embed ")).unwrap_or_default();
    assert!(line.contains("on Slurm (job"), "status should show the job: {out}");
    let (code, r, err) = rerun_on_slurm(&ws, tmp.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("embed: adopting Slurm job"),
        "the running job should be adopted:\n{err}"
    );
    assert_eq!(metrics_without_speed(&r), clean);
    let (code, out, err) = warmstart(&ws, tmp.path(), &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
    for e in std::fs::read_dir(ws.join("jobs")).unwrap() {
        let dir = e.unwrap().path();
        let logs = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|f| f.as_ref().unwrap().file_name().to_string_lossy().starts_with("slurm-"))
            .count();
        assert_eq!(logs, 1, "{} ran {logs} times", dir.display());
    }
}

/// The node set down while a stage runs: the stage is reported failed with Slurm's NODE_FAIL,
/// nothing of it is committed, and once the node is back the next run completes with the
/// metrics of a clean run.
#[test]
fn a_node_going_down_fails_the_stage_and_the_next_run_completes() {
    let _one = cluster();
    let Some(Interrupted { tmp, clean, ws, mut d }) =
        interrupted_run("a_node_going_down_fails_the_stage_and_the_next_run_completes")
    else {
        return;
    };
    // Wait until the job really runs: a node set down under a *pending* job only delays it.
    let id = d
        .text()
        .lines()
        .find_map(|l| {
            l.strip_prefix("embed: Slurm job ")
                .map(|r| r.split(' ').next().unwrap_or("").to_string())
        })
        .unwrap();
    let t = std::time::Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", &id, "-o", "%T"])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).trim() == "RUNNING" {
            break;
        }
        assert!(t.elapsed().as_secs() < 60, "job {id} never ran: {}", d.text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let node = node();
    /// Brings the node back however the test ends (`resume` is refused, harmlessly, when
    /// ReturnToService already did it).
    struct Resume(String);
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = Command::new("scontrol")
                .args(["update", &format!("nodename={}", self.0), "state=resume"])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
    let resume = Resume(node.clone());
    let down = Command::new("scontrol")
        .args([
            "update",
            &format!("nodename={node}"),
            "state=down",
            "reason=warmstart-test",
        ])
        .status()
        .unwrap();
    assert!(down.success(), "scontrol update state=down");
    d.wait_for("embed: FAILED");
    drop(resume);
    let status = d.child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{}", d.text());
    let text = d.text();
    let failed = text.lines().find(|l| l.starts_with("embed: FAILED")).unwrap();
    assert!(failed.contains("NODE_FAIL"), "{failed}");
    let (code, r, err) = rerun_on_slurm(&ws, tmp.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(metrics_without_speed(&r), clean);
    let (code, out, err) = warmstart(&ws, tmp.path(), &["verify"]);
    assert_eq!(code, 0, "{out}{err}");
}
