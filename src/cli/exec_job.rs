//! `warmstart exec-job` (hidden): a cluster node's side of `--executor slurm`.

use super::*;

/// `exec-job JOB.json`: on a compute node, plan the job's spec again, check that the stage
/// still has the job's key, and run it into the store (exit 0 when the entry is committed,
/// also when it already was; 1 when the stage failed; 2 when the job no longer matches).
pub(super) fn exec_job(workspace: &Path, job_path: &Path) -> Result<i32, Failure> {
    let bytes = std::fs::read(job_path)
        .map_err(|e| Failure::Usage(format!("cannot read job file {}: {e}", job_path.display())))?;
    let job: crate::slurm::JobFile = serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Usage(format!("{} is not a job file: {e}", job_path.display())))?;
    let study = crate::pipeline::load(&job.spec, &job.sets)?;
    // The allocation's CPUs (artefacts do not depend on the count).
    let threads = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(default_jobs);
    global_pool(threads);
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let p = plan.find(&job.name).ok_or_else(|| {
        Failure::Usage(format!(
            "the spec {} has no stage `{}` any more",
            job.spec.display(),
            job.name
        ))
    })?;
    if p.key != job.key {
        return Err(Failure::Usage(format!(
            "stage `{}` now has key {}, not the job's {}: the spec or its data changed since the job was submitted",
            job.name, p.key, job.key
        )));
    }
    if ws.store.lookup(&job.key).is_some() && ws.store.verify(&job.key).is_ok() {
        eprintln!("{}: already committed ({})", job.name, job.key);
        return Ok(0);
    }
    let reporter = Reporter::new();
    let progress = reporter.stage(&job.name);
    eprintln!("{}: running on {}", job.name, hostname());
    let t = std::time::Instant::now();
    let r = executor::execute(&study, &plan, &ws, p.job, &progress);
    progress.finish();
    match r {
        Ok(meta) => {
            eprintln!(
                "{}: done in {:.2}s — {}",
                job.name,
                t.elapsed().as_secs_f64(),
                meta.summary
            );
            Ok(0)
        }
        Err(e) => Err(Failure::Failed(format!("{}: FAILED: {e:#}", job.name))),
    }
}

pub(super) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "this node".into())
}
