//! `warmstart run` (and `--dry-run`): plan, then execute every stale stage locally or as
//! Slurm jobs.

use super::*;

pub(super) fn default_jobs() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ExecutorKind {
    Local,
    Slurm,
}

pub(super) fn run(
    workspace: &Path,
    spec_path: &Path,
    sets: &[String],
    jobs: Option<usize>,
    force: Vec<String>,
    json: bool,
    runner: &executor::Runner,
) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let jobs = jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return Err(Failure::Usage("--jobs must be at least 1".into()));
    }
    for f in &force {
        if study.find(f).is_none() && study.variants[0].stage(f).is_none() {
            let names: Vec<&str> = study.variants[0].stages.iter().map(|s| s.name.as_str()).collect();
            return Err(Failure::Usage(format!(
                "--force {f}: no such stage (stages: {})",
                names.join(", ")
            )));
        }
    }
    // One thread count for the whole process: data-parallel work inside stages (rayon) uses it,
    // and results depend on it only through floating-point summation order.
    global_pool(jobs);
    let ws = Workspace::open(workspace)?;
    let reporter = Reporter::new();
    let _lock = ws.lock(|holder| {
        reporter.line(&format!(
            "waiting for another warmstart run on workspace {} to finish ({})",
            workspace.display(),
            if holder.is_empty() { "unknown process" } else { holder }
        ))
    })?;
    let plan = plan::plan(&study, &ws)?;
    if matches!(runner, executor::Runner::Slurm(_)) {
        // Ctrl-C / SIGTERM: cancel this run's jobs, then stop (nothing half-written is trusted:
        // entries are committed by rename, on the nodes as here).
        let _ = ctrlc::set_handler(|| {
            eprintln!("interrupted: cancelling this run's Slurm jobs");
            crate::slurm::cancel_all();
            std::process::exit(130);
        });
    }
    let opts = Options {
        jobs,
        force: force.into_iter().collect::<BTreeSet<_>>(),
        reporter: &reporter,
        runner,
    };
    let report = executor::run(&study, &plan, &ws, &opts);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(anyhow::Error::from)?
        );
    } else {
        let quiet = crate::verbosity::get().quiet;
        for s in &report.stages {
            if quiet && s.status != Status::Failed {
                continue;
            }
            // Padded before painting, so that colour codes do not shift the columns.
            let status = match s.status {
                Status::Ran => crate::verbosity::paint(&format!("{:<8}", "ran"), 32),
                Status::Cached => format!("{:<8}", "cached"),
                Status::Failed => crate::verbosity::paint(&format!("{:<8}", "FAILED"), 31),
                Status::Skipped => crate::verbosity::paint(&format!("{:<8}", "skipped"), 33),
            };
            let detail = s.error.clone().unwrap_or_else(|| s.summary.clone());
            let job = s
                .job
                .as_ref()
                .map(|j| format!("  [Slurm job {}, {}]", j.id, j.log.display()))
                .unwrap_or_default();
            println!("{:<24} {status} {:>8.2}s  {}{job}", s.name, s.seconds, detail);
        }
        println!(
            "{}: {} in {:.2}s",
            report.pipeline,
            if report.ok {
                crate::verbosity::paint("ok", 32)
            } else {
                crate::verbosity::paint("FAILED", 31)
            },
            report.seconds
        );
    }
    Ok(if report.ok { 0 } else { 1 })
}

/// `run --dry-run`: the stages a run would execute (stale or forced) and why; nothing runs and
/// nothing is written (not even the run lock is taken).
pub(super) fn dry_run_plan(
    workspace: &Path,
    spec_path: &Path,
    sets: &[String],
    force: &[String],
    json: bool,
) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let mut would = Vec::new();
    let mut seen = BTreeSet::new();
    for p in plan.all() {
        let forced = force.iter().any(|f| f == &p.name || f == &p.stage);
        if !forced && p.fresh {
            continue;
        }
        let why = if forced {
            "forced".to_string()
        } else if !seen.insert(p.job) {
            format!("shared with `{}` (same key)", plan.planned(p.job).name)
        } else {
            crate::fingerprint::sentences(&p.reasons)
        };
        would.push((p, why));
    }
    if json {
        let stages: Vec<_> = would
            .iter()
            .map(|(p, why)| json!({"name": p.name, "kind": p.fingerprint.kind, "key": p.key, "why": why}))
            .collect();
        let out = json!({"pipeline": study.name, "would_run": stages, "cached": plan.all().count() - would.len()});
        println!("{}", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?);
    } else {
        for (p, why) in &would {
            println!("{:<24} would run: {why}", p.name);
        }
        println!(
            "{}: {} of {} stages would run (dry run: nothing was run)",
            study.name,
            would.len(),
            plan.all().count()
        );
    }
    Ok(0)
}
