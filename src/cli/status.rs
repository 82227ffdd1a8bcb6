//! `warmstart status`: which stages are fresh or stale, and why.

use super::*;

pub(super) fn status(workspace: &Path, spec_path: &Path, sets: &[String], json: bool) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    // Stale stages that a Slurm run submitted and that are still queued or running.
    let on_cluster = if workspace.join("jobs").is_dir() {
        crate::slurm::live_jobs()
    } else {
        Default::default()
    };
    let cluster = |key: &str| on_cluster.get(&crate::slurm::job_name(key));
    // A stale training stage killed mid-way resumes from its checkpoint: worth saying.
    let resumes = |key: &str| {
        crate::checkpoint::Checkpoint::for_key(&ws.checkpoints_dir(), key)
            .latest()
            .map(|(epoch, _)| epoch)
    };
    if json {
        let stages: Vec<_> = plan
            .all()
            .map(|p| {
                let mut v = json!({"name": p.name, "stage": p.stage, "variant": study.variants[p.variant].variant,
                       "kind": p.fingerprint.kind, "fresh": p.fresh, "key": p.key, "reasons": p.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(), "why": p.reasons});
                if let (false, Some((id, state))) = (p.fresh, cluster(&p.key)) {
                    v["slurm"] = json!({"id": id, "state": state});
                }
                if let Some(epoch) = (!p.fresh).then(|| resumes(&p.key)).flatten() {
                    v["resumes_after_epoch"] = json!(epoch);
                }
                v
            })
            .collect();
        let out = json!({"pipeline": study.name, "stages": stages});
        println!("{}", serde_json::to_string_pretty(&out).map_err(anyhow::Error::from)?);
    } else {
        for p in plan.all() {
            if p.fresh {
                println!("{:<24} fresh", p.name);
            } else if let Some((id, state)) = cluster(&p.key) {
                println!("{:<24} {} on Slurm (job {id})", p.name, state.to_lowercase());
            } else {
                let resume = resumes(&p.key)
                    .map(|e| format!("; resumes after epoch {e} (checkpoint)"))
                    .unwrap_or_default();
                println!(
                    "{:<24} stale: {}{resume}",
                    p.name,
                    crate::fingerprint::sentences(&p.reasons)
                );
            }
        }
    }
    Ok(0)
}
