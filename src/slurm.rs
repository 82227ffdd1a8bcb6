//! The Slurm runner: each stale stage becomes one batch job that runs `warmstart exec-job` on
//! a compute node, against the same store (the workspace on a shared filesystem).
//!
//! Life cycle of one stage (driver side, [`Slurm::run`]):
//!
//! | step | what | why |
//! |---|---|---|
//! | 1 | write `<workspace>/jobs/<key>/job.json` ([`JobFile`]) | the node re-plans from the spec and must arrive at the same key, or refuse |
//! | 2 | look for a live job named `ws-<key prefix>` | a timed-out `sbatch`, or an earlier driver that was killed, may have queued it already: adopt it |
//! | 3 | `sbatch --parsable --job-name ws-<key> --no-requeue --output jobs/<key>/slurm-%j.out` | one job per key; a requeued job could race a resubmitted one |
//! | 4 | poll (one `squeue` per round for all of this driver's jobs, backing off; then `scontrol show job` for ended ones) | "unknown" counts as pending until a deadline, never as success |
//! | 5 | success = the store entry is there and verifies (waiting up to `fs_latency`) | Slurm can say COMPLETED for a job that never ran |
//!
//! On the node ([`crate::cli`]'s `exec-job`): the spec is loaded and planned again, the job's
//! key must match, an entry already committed under it is accepted as is, and otherwise the
//! stage runs through [`crate::executor::execute`] — the same code and the same atomic commit
//! as a local run. The node never takes the workspace's run lock (file locks over NFS are
//! unreliable); each attempt writes under its own temporary folder and the commit is a rename.
//!
//! On SIGINT/SIGTERM the driver cancels every job it submitted or adopted ([`cancel_all`]).
//! A SIGKILLed driver leaves its jobs running; they commit or fail on their own, and the next
//! run adopts the live ones (step 2) or finds their entries cached.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::plan::Planned;
use crate::progress::Reporter;
use crate::store::EntryMeta;
use crate::workspace::Workspace;

/// What a compute node needs to run one stage: enough to re-plan it from the spec and to check
/// that it arrived at the same stage (same key); the rest is there for people reading it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobFile {
    /// The spec, as an absolute path (it must be readable on the node).
    pub spec: PathBuf,
    /// `--set` overrides of the driver's run.
    pub sets: Vec<String>,
    /// `stage@variant`.
    pub name: String,
    /// The store key the entry must be committed under.
    pub key: String,
    pub kind: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Input name → store key.
    pub inputs: BTreeMap<String, String>,
}

/// A Slurm job of this run, for `run --json` and the plain output.
#[derive(Debug, Clone, Serialize)]
pub struct JobRef {
    pub id: String,
    pub log: PathBuf,
    /// The state Slurm last reported (COMPLETED, FAILED, NODE_FAIL, …).
    pub state: String,
}

/// Job ids submitted or adopted by this process, for [`cancel_all`].
static SUBMITTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The Slurm runner's settings and its shared view of the queue.
pub struct Slurm {
    /// The warmstart binary the jobs run (the driver's own, by absolute path).
    pub exe: PathBuf,
    /// The workspace, absolute (it must be the same path on the nodes).
    pub workspace: PathBuf,
    pub spec: PathBuf,
    pub sets: Vec<String>,
    /// Extra `sbatch` arguments (`--slurm-arg`), e.g. `--partition=gpu`, `--time=30`.
    pub sbatch_args: Vec<String>,
    /// How long to wait for a finished job's entry to appear (shared filesystems lag).
    pub fs_latency: Duration,
    /// How long a job Slurm no longer knows about may stay unexplained before it is given up.
    pub unknown_deadline: Duration,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Job id → state, from the last `squeue` round.
    states: BTreeMap<String, String>,
    /// Jobs being waited for.
    watched: Vec<String>,
    last: Option<Instant>,
    interval: Duration,
}

/// States after which a job will not run any more.
const ENDED: [&str; 10] = [
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
];

impl Slurm {
    pub fn new(workspace: &Path, spec: &Path, sets: &[String], sbatch_args: Vec<String>) -> Result<Slurm> {
        let exe = std::env::current_exe().context("cannot find the warmstart binary for the jobs")?;
        let abs = |p: &Path| -> Result<PathBuf> {
            std::path::absolute(p).with_context(|| format!("cannot make {} absolute", p.display()))
        };
        which("sbatch")?;
        Ok(Slurm {
            exe,
            workspace: abs(workspace)?,
            spec: abs(spec)?,
            sets: sets.to_vec(),
            sbatch_args,
            fs_latency: Duration::from_secs(10),
            unknown_deadline: Duration::from_secs(60),
            queue: Mutex::new(Queue {
                interval: Duration::from_millis(200),
                ..Queue::default()
            }),
        })
    }

    /// Runs one planned stage as a Slurm job and waits for its entry (the table above).
    pub fn run(
        &self,
        ws: &Workspace,
        p: &Planned,
        resources: &crate::resources::Resources,
        reporter: &Reporter,
    ) -> (Result<EntryMeta>, Option<JobRef>) {
        let dir = self.workspace.join("jobs").join(&p.key);
        let name = job_name(&p.key);
        let job = JobFile {
            spec: self.spec.clone(),
            sets: self.sets.clone(),
            name: p.name.clone(),
            key: p.key.clone(),
            kind: p.fingerprint.kind.clone(),
            version: p.fingerprint.version,
            seed: p.fingerprint.seed,
            inputs: p
                .fingerprint
                .inputs
                .iter()
                .map(|(n, i)| (n.clone(), i.key.clone()))
                .collect(),
        };
        let submitted = (|| -> Result<String> {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            crate::store::write_synced(&dir.join("job.json"), &serde_json::to_vec_pretty(&job)?)?;
            if let Some(id) = live_job(&name)? {
                reporter.line(&format!("{}: adopting Slurm job {id}, already queued", p.name));
                return Ok(id);
            }
            self.submit(&dir, &name, &resources.sbatch_args())
        })();
        let id = match submitted {
            Ok(id) => id,
            Err(e) => return (Err(e.context("cannot submit the Slurm job")), None),
        };
        SUBMITTED.lock().unwrap_or_else(|e| e.into_inner()).push(id.clone());
        let log = dir.join(format!("slurm-{id}.out"));
        reporter.line(&format!("{}: Slurm job {id} (log {})", p.name, log.display()));
        let state = self.wait(&id);
        let mut job = JobRef {
            id: id.clone(),
            log: log.clone(),
            state: state.clone(),
        };
        // Success is the verified entry, whatever Slurm said.
        let deadline = Instant::now() + self.fs_latency;
        loop {
            if let (Some(meta), Ok(())) = (ws.store.lookup(&p.key), ws.store.verify(&p.key)) {
                if state != "COMPLETED" {
                    job.state = format!("{state} (entry committed)");
                }
                return (Ok(meta), Some(job));
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let tail = log_tail(&log, 8);
        (
            Err(anyhow!(
                "Slurm job {id} ended {state} without committing the stage's entry; log: {}{}",
                log.display(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("\n{tail}")
                }
            )),
            Some(job),
        )
    }

    /// `resources`: the spec's `executor:` requests; `--slurm-arg` follows them, so it wins.
    fn submit(&self, dir: &Path, name: &str, resources: &[String]) -> Result<String> {
        let job_json = dir.join("job.json");
        let wrap = format!(
            "exec {} --workspace {} exec-job {}",
            sh_quote(&self.exe.to_string_lossy()),
            sh_quote(&self.workspace.to_string_lossy()),
            sh_quote(&job_json.to_string_lossy())
        );
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(format!("--job-name={name}"))
            .arg("--no-requeue")
            .arg(format!("--output={}", dir.join("slurm-%j.out").display()))
            .arg(format!("--chdir={}", dir.display()))
            .args(resources)
            .args(&self.sbatch_args)
            .arg(format!("--wrap={wrap}"))
            .output()
            .context("cannot run sbatch")?;
        if !out.status.success() {
            bail!("sbatch failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!("sbatch printed no job id: {text:?}");
        }
        Ok(id)
    }

    /// Waits until job `id` has ended; returns its final state ("UNKNOWN" when Slurm forgot it
    /// and no record says how it ended).
    fn wait(&self, id: &str) -> String {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watched
            .push(id.to_string());
        let mut unknown_since: Option<Instant> = None;
        let state = loop {
            let state = self.poll(id);
            match state.as_deref() {
                Some(s) if ENDED.iter().any(|e| s.starts_with(e)) => break s.to_string(),
                Some(_) => unknown_since = None,
                None => {
                    // Not in the queue any more: ask for the record of an ended job.
                    if let Some(s) = ended_state(id) {
                        break s;
                    }
                    let since = *unknown_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > self.unknown_deadline {
                        break "UNKNOWN".to_string();
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.watched.retain(|w| w != id);
        state
    }

    /// The state of `id` from the shared view, refreshed by one `squeue` for every watched job
    /// when the last round is older than the (backing-off) interval.
    fn poll(&self, id: &str) -> Option<String> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.last.is_none_or(|t| t.elapsed() >= q.interval) {
            let ids = q.watched.join(",");
            if let Ok(states) = queue_states(&ids) {
                let changed = states != q.states;
                q.states = states;
                // Back off while nothing changes; come back to a quick pace when it does.
                q.interval = if changed {
                    Duration::from_millis(200)
                } else {
                    (q.interval * 3 / 2).min(Duration::from_secs(5))
                };
            }
            q.last = Some(Instant::now());
        }
        q.states.get(id).cloned()
    }
}

/// The job name for a key: `ws-` and the key's first 16 hex digits.
pub fn job_name(key: &str) -> String {
    format!("ws-{}", &key[..key.len().min(16)])
}

/// Cancels every job this process submitted or adopted (on Ctrl-C / SIGTERM).
pub fn cancel_all() {
    let ids = SUBMITTED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !ids.is_empty() {
        let _ = Command::new("scancel").args(&ids).status();
    }
}

fn which(cmd: &str) -> Result<()> {
    match Command::new(cmd).arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => bail!(
            "`--executor slurm` needs Slurm's `{cmd}` on PATH (and SLURM_CONF if the config is not in /etc/slurm)"
        ),
    }
}

/// warmstart's jobs (named `ws-…`) that Slurm has pending or running: name → (id, state).
/// Empty when Slurm is not reachable.
pub fn live_jobs() -> BTreeMap<String, (String, String)> {
    let Ok(out) = Command::new("squeue").args(["-h", "-o", "%j %i %T"]).output() else {
        return BTreeMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (name, id, state) = (f.next()?, f.next()?, f.next()?);
            (name.starts_with("ws-") && !ENDED.iter().any(|e| state.starts_with(e)))
                .then(|| (name.to_string(), (id.to_string(), state.to_string())))
        })
        .collect()
}

/// A job named `name` that is pending or running, if any.
fn live_job(name: &str) -> Result<Option<String>> {
    let out = Command::new("squeue")
        .args(["-h", "-n", name, "-o", "%i %T"])
        .output()
        .context("cannot run squeue")?;
    if !out.status.success() {
        bail!("squeue failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (id, state) = l.trim().split_once(' ')?;
        (!ENDED.iter().any(|e| state.starts_with(e))).then(|| id.to_string())
    }))
}

/// `squeue` states of jobs `ids` (comma-separated); jobs it does not list are absent.
fn queue_states(ids: &str) -> Result<BTreeMap<String, String>> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", ids, "-o", "%i %T"])
        .output()
        .context("cannot run squeue")?;
    // squeue exits non-zero when none of the ids is known any more; that is "not listed".
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(' ').map(|(i, s)| (i.to_string(), s.to_string())))
        .collect())
}

/// The final state of an ended job from `scontrol show job` (kept for MinJobAge after it ends).
fn ended_state(id: &str) -> Option<String> {
    let out = Command::new("scontrol").args(["show", "job", id, "-o"]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let state = text.split_whitespace().find_map(|w| w.strip_prefix("JobState="))?;
    ENDED.iter().any(|e| state.starts_with(e)).then(|| state.to_string())
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
