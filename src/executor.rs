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

use crate::plan::Plan;
use crate::progress::Reporter;
use crate::spec::Spec;
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
    pub name: String,
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
    /// Stages to rerun even if cached.
    pub force: BTreeSet<String>,
    pub reporter: &'a Reporter,
}

struct Sched {
    waiting: Vec<usize>,
    ready: VecDeque<usize>,
    results: Vec<Option<StageReport>>,
    remaining: usize,
}

pub fn run(spec: &Spec, plan: &Plan, ws: &Workspace, opts: &Options) -> RunReport {
    let t0 = Instant::now();
    let n = spec.stages.len();
    let waiting: Vec<usize> = (0..n).map(|i| plan.dag.upstream(i).len()).collect();
    let ready: VecDeque<usize> = plan.dag.order.iter().copied().filter(|&i| waiting[i] == 0).collect();
    let sched = Mutex::new(Sched {
        waiting,
        ready,
        results: vec![None; n],
        remaining: n,
    });
    let cv = Condvar::new();
    let state = Mutex::new(ws.load_state(&spec.name));

    let worker = || loop {
        let i = {
            let mut g = sched.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(i) = g.ready.pop_front() {
                    break i;
                }
                if g.remaining == 0 {
                    return;
                }
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        };
        let report = run_one(spec, plan, ws, opts, i);
        let ok = matches!(report.status, Status::Ran | Status::Cached);
        if ok {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let p = &plan.stages[i];
            st.stages.insert(
                p.name.clone(),
                Recorded {
                    key: p.key.clone(),
                    fingerprint: p.fingerprint.clone(),
                },
            );
            if let Err(e) = ws.save_state(&spec.name, &st) {
                opts.reporter.line(&format!("warning: cannot save run state: {e:#}"));
            }
        }
        let mut g = sched.lock().unwrap_or_else(|e| e.into_inner());
        g.results[i] = Some(report);
        g.remaining -= 1;
        if ok {
            for d in plan.dag.downstream(i) {
                g.waiting[d] -= 1;
                if g.waiting[d] == 0 && g.results[d].is_none() {
                    g.ready.push_back(d);
                }
            }
        } else {
            skip_downstream(spec, plan, &mut g, i, opts.reporter);
        }
        cv.notify_all();
    };
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, n.max(1)) {
            s.spawn(worker);
        }
    });

    let g = sched.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut results: Vec<Option<StageReport>> = g.results;
    let stages: Vec<StageReport> = plan.dag.order.iter().filter_map(|&i| results[i].take()).collect();
    RunReport {
        pipeline: spec.name.clone(),
        ok: stages.iter().all(|s| matches!(s.status, Status::Ran | Status::Cached)),
        seconds: t0.elapsed().as_secs_f64(),
        jobs: opts.jobs,
        stages,
    }
}

fn skip_downstream(spec: &Spec, plan: &Plan, g: &mut Sched, failed: usize, reporter: &Reporter) {
    let mut stack = plan.dag.downstream(failed);
    while let Some(d) = stack.pop() {
        if g.results[d].is_some() {
            continue;
        }
        let p = &plan.stages[d];
        let why = format!("upstream stage `{}` failed", spec.stages[failed].name);
        reporter.line(&format!("{}: skipped ({why})", p.name));
        g.results[d] = Some(StageReport {
            name: p.name.clone(),
            kind: spec.stages[d].kind.name.to_string(),
            status: Status::Skipped,
            seconds: 0.0,
            key: p.key.clone(),
            reasons: vec![why],
            summary: String::new(),
            error: None,
            metrics: None,
        });
        g.remaining -= 1;
        stack.extend(plan.dag.downstream(d));
    }
}

fn run_one(spec: &Spec, plan: &Plan, ws: &Workspace, opts: &Options, i: usize) -> StageReport {
    let p = &plan.stages[i];
    let s = &spec.stages[i];
    let t = Instant::now();
    let mut report = StageReport {
        name: p.name.clone(),
        kind: s.kind.name.to_string(),
        status: Status::Cached,
        seconds: 0.0,
        key: p.key.clone(),
        reasons: p.reasons.clone(),
        summary: String::new(),
        error: None,
        metrics: None,
    };
    let forced = opts.force.contains(&p.name);
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
    let progress = opts.reporter.stage(&p.name);
    let result = (|| -> anyhow::Result<EntryMeta> {
        let pending = ws.store.begin()?;
        let mut inputs = BTreeMap::new();
        for inp in s.stage.inputs() {
            let v = match inp.want {
                Want::Dataset => Input::Dataset(spec.datasets[&inp.name].clone()),
                Want::Stage(_) => {
                    let key = &plan.stages.iter().find(|q| q.name == inp.name).expect("planned").key;
                    Input::Artefact(ws.store.files_dir(key))
                }
            };
            inputs.insert(inp.name, v);
        }
        let out = pending.files();
        let ctx = StageCtx {
            name: &p.name,
            out: &out,
            inputs: &inputs,
            seed: spec.seed,
            progress: &progress,
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
            pipeline: spec.name.clone(),
            created_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            seconds: t.elapsed().as_secs_f64(),
            summary: outcome.summary,
            metrics: outcome.metrics,
            files: BTreeMap::new(),
        };
        ws.store.commit(pending, meta)
    })();
    progress.finish();
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
