//! `warmstart verify` and `gc`: store maintenance.

use super::*;

pub(super) fn verify(workspace: &Path, repair: bool) -> Result<i32, Failure> {
    let ws = Workspace::open(workspace)?;
    let _lock = ws.lock(|holder| eprintln!("waiting for the run on this workspace to finish ({holder})"))?;
    let keys = ws.store.keys()?;
    let mut bad = 0;
    for k in &keys {
        if let Err(e) = ws.store.verify_full(k) {
            bad += 1;
            let stage = ws.store.lookup(k).map(|m| m.stage).unwrap_or_else(|| "?".into());
            println!("CORRUPT {k} (stage `{stage}`): {e:#}");
            if repair {
                ws.store.remove(k)?;
                println!("  removed; the stage reruns on the next `warmstart run`");
            }
        }
    }
    println!(
        "{} entries checked, {} ok, {} corrupt",
        keys.len(),
        keys.len() - bad,
        bad
    );
    Ok(if bad > 0 && !repair { 1 } else { 0 })
}

pub(super) fn gc(workspace: &Path, specs: &[PathBuf], dry_run: bool) -> Result<i32, Failure> {
    let ws = Workspace::open(workspace)?;
    // Holding the run lock means no run is using (or about to commit) any entry.
    let _lock = ws.lock(|holder| eprintln!("waiting for the run on this workspace to finish ({holder})"))?;
    let mut keep = BTreeSet::new();
    for path in specs {
        let study = crate::pipeline::load(path, &[])?;
        let plan = plan::plan(&study, &ws)?;
        keep.extend(plan.jobs.into_iter().map(|j| j.key));
    }
    let (mut n, mut bytes) = (0usize, 0u64);
    for k in ws.store.keys()? {
        if keep.contains(&k) {
            continue;
        }
        let size = ws
            .store
            .lookup(&k)
            .map(|m| m.files.values().map(|f| f.bytes).sum::<u64>())
            .unwrap_or(0);
        if !dry_run {
            ws.store.remove(&k)?;
        }
        n += 1;
        bytes += size;
    }
    if !dry_run {
        bytes += ws.store.clear_tmp()?;
    }
    // Checkpoints of stages no spec plans any more can never be resumed.
    if let Ok(dirs) = std::fs::read_dir(ws.checkpoints_dir()) {
        for d in dirs.filter_map(|d| d.ok()) {
            if keep.contains(&*d.file_name().to_string_lossy()) {
                continue;
            }
            bytes += folder_bytes(&d.path());
            if !dry_run {
                std::fs::remove_dir_all(d.path())
                    .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", d.path().display()))?;
            }
        }
    }
    let verb = if dry_run { "would free" } else { "freed" };
    println!(
        "{verb} {:.1} MB in {n} entries; kept {} referenced by {} spec(s)",
        bytes as f64 / 1e6,
        keep.len(),
        specs.len()
    );
    Ok(0)
}

fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}
