//! Runs a plan: independent stages at the same time (up to `jobs`), each stage at most once,
//! every result committed to the store atomically.
//!
//! Scheduling is a small work queue over the DAG: a stage becomes ready when all the stages it
//! reads have succeeded; when a stage fails, everything downstream of it is `skipped` while
//! unrelated branches go on. Stages that finished stay in the store, so a rerun after a failure
//! starts where it stopped.
//!
//! A cached entry is verified against its checksums before it is reported `cached`; a corrupt
//! entry is removed and its stage rerun.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::plan::Plan;
use crate::progress::Reporter;
use crate::spec::Study;
use crate::stages::{Input, StageCtx, Want};
use crate::store::EntryMeta;
use crate::workspace::{Recorded, Workspace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ran,
    Cached,
    Failed,
    Skipped,
}

/// One stage's result, as printed by `run --json`.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// `stage@variant` (just `stage` when the spec has no variants).
    pub name: String,
    /// The stage's name in the spec, and the variant (empty without variants).
    pub stage: String,
    pub variant: String,
    pub kind: String,
    pub status: Status,
    pub seconds: f64,
    pub key: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<serde_json::Value>,
    /// The cluster job that ran the stage (`--executor slurm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<crate::slurm::JobRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub pipeline: String,
    pub ok: bool,
    pub seconds: f64,
    pub jobs: usize,
    pub stages: Vec<StageReport>,
}

pub struct Options<'a> {
    pub jobs: usize,
    /// Stages to rerun even if cached (`stage` for every variant, or `stage@variant`).
    pub force: BTreeSet<String>,
    pub reporter: &'a Reporter,
    /// Where a stale stage runs: here, or as a cluster job.
    pub runner: &'a Runner,
}

/// Where a stale stage runs. The scheduler above (DAG order, cache checks, skip-downstream,
/// run records) is the same for every runner; a runner only turns one planned stage into a
/// committed store entry, or an error.
pub enum Runner {
    /// In this process, on the worker thread that picked the stage.
    Local,
    /// As a Slurm job running `warmstart exec-job` on a compute node (see [`crate::slurm`]).
    Slurm(Box<crate::slurm::Slurm>),
}

struct Sched {
    waiting: Vec<usize>,
    ready: VecDeque<usize>,
    results: Vec<Option<StageReport>>,
    remaining: usize,
}

/// Runs the plan's jobs (distinct keys) and reports every stage of every variant: the stage
/// that ran a job reports how it went; other variants' stages with the same key are `cached`
/// with the reason "shared with …".
pub fn run(study: &Study, plan: &Plan, ws: &Workspace, opts: &Options) -> RunReport {
    let t0 = Instant::now();
    let n = plan.jobs.len();
    let waiting: Vec<usize> = plan.jobs.iter().map(|j| j.upstream.len()).collect();
    let ready: VecDeque<usize> = (0..n).filter(|&j| waiting[j] == 0).collect();
    let sched = Mutex::new(Sched {
        waiting,
        ready,
        results: vec![None; n],
        remaining: n,
    });
    let cv = Condvar::new();
    let state = Mutex::new(ws.load_state(&study.name));

    let worker = || loop {
        let j = {
            let mut g = sched.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(j) = g.ready.pop_front() {
                    break j;
                }
                if g.remaining == 0 {
                    return;
                }
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        let report = run_one(study, plan, ws, opts, j);
        let ok = matches!(report.status, Status::Ran | Status::Cached);
        if ok {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let mut changed = false;
            for p in plan.all().filter(|p| p.job == j) {
                let now = Recorded {
                    key: p.key.clone(),
                    fingerprint: p.fingerprint.clone(),
                };
                if st.stages.get(&p.name) != Some(&now) {
                    st.stages.insert(p.name.clone(), now);
                    changed = true;
                }
            }
            // Written (and fsynced) only when it changed: a no-op rerun writes nothing.
            let saved = if changed {
                ws.save_state(&study.name, &st)
            } else {
                Ok(())
            };
            if let Err(e) = saved {
                opts.reporter.line(&format!("warning: cannot save run state: {e:#}"));
            }
        }
        let mut g = sched.lock().unwrap_or_else(|e| e.into_inner());
        g.results[j] = Some(report);
        g.remaining -= 1;
        if ok {
            for &d in &plan.jobs[j].downstream {
                g.waiting[d] -= 1;
                if g.waiting[d] == 0 && g.results[d].is_none() {
                    g.ready.push_back(d);
                }
            }
        } else {
            skip_downstream(plan, &mut g, j, opts.reporter);
        }
        cv.notify_all();
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, n.max(1)) {
            // Big stacks: a stage that recurses deeply (a tokenizer on pathological input) must
            // fail as a stage, not abort the process with a stack overflow.
            let spawned = std::thread::Builder::new().stack_size(64 << 20).spawn_scoped(s, worker);
            if let Err(e) = spawned {
                opts.reporter
                    .line(&format!("warning: cannot start a worker thread: {e}"));
            }
        }
    });

    let g = sched.into_inner().unwrap_or_else(|e| e.into_inner());
    let results: Vec<StageReport> = g.results.into_iter().map(|r| r.expect("every job reported")).collect();
    let mut stages = Vec::new();
    for p in plan.all() {
        let job = &plan.jobs[p.job];
        let mut r = results[p.job].clone();
        if job.first != (p.variant, p.index) {
            let first = plan.planned(p.job).name.clone();
            if matches!(r.status, Status::Ran | Status::Cached) {
                r.status = Status::Cached;
                r.seconds = 0.0;
                r.reasons = vec![format!("shared with `{first}` (same key)")];
            }
        }
        r.name = p.name.clone();
        r.stage = p.stage.clone();
        r.variant = study.variants[p.variant].variant.clone();
        stages.push(r);
    }
    RunReport {
        pipeline: study.name.clone(),
        ok: stages.iter().all(|s| matches!(s.status, Status::Ran | Status::Cached)),
        seconds: t0.elapsed().as_secs_f64(),
        jobs: opts.jobs,
        stages,
    }
}

fn skip_downstream(plan: &Plan, g: &mut Sched, failed: usize, reporter: &Reporter) {
    let mut stack = plan.jobs[failed].downstream.clone();
    let failed_name = plan.planned(failed).name.clone();
    while let Some(d) = stack.pop() {
        if g.results[d].is_some() {
            continue;
        }
        let p = plan.planned(d);
        let why = format!("upstream stage `{failed_name}` failed");
        reporter.line(&format!("{}: skipped ({why})", p.name));
        g.results[d] = Some(StageReport {
            name: p.name.clone(),
            stage: p.stage.clone(),
            variant: String::new(),
            kind: p.fingerprint.kind.clone(),
            status: Status::Skipped,
            seconds: 0.0,
            key: p.key.clone(),
            reasons: vec![why],
            summary: String::new(),
            error: None,
            metrics: None,
            job: None,
        });
        g.remaining -= 1;
        stack.extend(plan.jobs[d].downstream.iter().copied());
    }
}

fn run_one(study: &Study, plan: &Plan, ws: &Workspace, opts: &Options, j: usize) -> StageReport {
    let p = plan.planned(j);
    let spec = &study.variants[p.variant];
    let s = &spec.stages[p.index];
    let t = Instant::now();
    let mut report = StageReport {
        name: p.name.clone(),
        stage: p.stage.clone(),
        variant: spec.variant.clone(),
        kind: s.kind.name.to_string(),
        status: Status::Cached,
        seconds: 0.0,
        key: p.key.clone(),
        reasons: p.reasons.iter().map(ToString::to_string).collect(),
        summary: String::new(),
        error: None,
        metrics: None,
        job: None,
    };
    let forced = opts.force.contains(&p.name) || opts.force.contains(&p.stage);
    if forced {
        report.reasons = vec!["forced".into()];
    } else if p.fresh {
        match (ws.store.verify(&p.key), ws.store.lookup(&p.key)) {
            (Ok(()), Some(meta)) => {
                report.summary = meta.summary;
                report.metrics = meta.metrics;
                report.seconds = t.elapsed().as_secs_f64();
                return report;
            }
            (Err(e), _) => {
                opts.reporter.line(&format!(
                    "{}: cached artefact is corrupt ({e:#}); discarding it",
                    p.name
                ));
                let _ = ws.store.remove(&p.key);
                report.reasons = vec![format!("cached artefact was corrupt: {e:#}")];
            }
            (Ok(()), None) => report.reasons = vec!["cached artefact disappeared".into()],
        }
    }

    opts.reporter
        .line(&format!("{}: running ({})", p.name, report.reasons.join("; ")));
    let result = match opts.runner {
        Runner::Local => {
            let progress = opts.reporter.stage(&p.name);
            let r = execute(study, plan, ws, j, &progress);
            progress.finish();
            r
        }
        Runner::Slurm(slurm) => {
            let resources = study.variants[p.variant]
                .executor
                .for_stage(&p.stage, &p.fingerprint.kind);
            let (r, job) = slurm.run(ws, p, &resources, opts.reporter);
            report.job = job;
            r
        }
    };
    report.seconds = t.elapsed().as_secs_f64();
    match result {
        Ok(meta) => {
            report.status = Status::Ran;
            report.summary = meta.summary;
            report.metrics = meta.metrics;
            opts.reporter.line(&format!(
                "{}: done in {:.2}s — {}",
                p.name, report.seconds, report.summary
            ));
        }
        Err(e) => {
            report.status = Status::Failed;
            report.error = Some(format!("{e:#}"));
            opts.reporter
                .line(&format!("{}: FAILED after {:.2}s: {e:#}", p.name, report.seconds));
        }
    }
    report
}

/// Runs planned job `j` here and commits its entry: the one place a stage's code is called,
/// for a local run and for `warmstart exec-job` on a compute node alike.
pub fn execute(
    study: &Study,
    plan: &Plan,
    ws: &Workspace,
    j: usize,
    progress: &crate::progress::Progress,
) -> anyhow::Result<EntryMeta> {
    let t = Instant::now();
    let p = plan.planned(j);
    let spec = &study.variants[p.variant];
    let s = &spec.stages[p.index];
    let pending = ws.store.begin()?;
    let mut inputs = BTreeMap::new();
    for inp in s.stage.inputs() {
        let v = match inp.want {
            Want::Dataset => Input::Dataset(spec.datasets[&inp.name].clone()),
            Want::Stage(_) => Input::Artefact(ws.store.files_dir(&p.fingerprint.inputs[&inp.name].key)),
        };
        inputs.insert(inp.name, v);
    }
    let out = pending.files();
    let checkpoint = Checkpoint::for_key(&ws.checkpoints_dir(), &p.key);
    let ctx = StageCtx {
        name: &p.name,
        out: &out,
        inputs: &inputs,
        // A stage whose key leaves the seed out must not depend on it: it gets a fixed one.
        seed: if s.stage.uses_seed() { spec.seed } else { 0 },
        progress,
        checkpoint: &checkpoint,
    };
    let outcome = match catch_unwind(AssertUnwindSafe(|| s.stage.run(&ctx))) {
        Ok(r) => r?,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            anyhow::bail!("internal error (a bug in warmstart, please report it): {msg}");
        }
    };
    let meta = EntryMeta {
        key: p.key.clone(),
        kind: s.kind.name.to_string(),
        stage: p.name.clone(),
        pipeline: study.name.clone(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        seconds: t.elapsed().as_secs_f64(),
        summary: match checkpoint.resumed_from() {
            Some(e) => format!("{} (resumed after epoch {e})", outcome.summary),
            None => outcome.summary,
        },
        metrics: outcome.metrics,
        files: BTreeMap::new(),
    };
    let committed = ws.store.commit(pending, meta)?;
    checkpoint.clear();
    Ok(committed)
}

#[cfg(test)]
mod tests;
