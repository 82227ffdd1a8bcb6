//! Checkpoints: the state a training loop leaves between epochs, so that a stage killed
//! mid-way resumes on the next run from its last saved epoch instead of epoch 0.
//!
//! Resuming must not change a single byte of the artefact: the loops here are deterministic
//! (seeded ChaCha generators, fixed reduction orders), so a checkpoint holds *everything* the
//! rest of the loop reads — parameters, the optimiser's moments and per-tensor step counts, the
//! generator's word position, the shuffled order (each epoch shuffles the previous one), the
//! best-so-far parameters and patience counter, the logs — and the loop continues as if it had
//! never stopped. `tests/it/maintenance.rs` kills runs at random moments with checkpoints after
//! every epoch and requires the final artefacts of the clean run.
//!
//! ```text
//! .warmstart/checkpoints/<key>/
//!   epoch-000004/        the newest complete checkpoint (older ones are deleted after a save)
//!     manifest.json      blake3 of every other file; written last, then the folder is renamed
//!     state.json, tensors.safetensors   what the loop wrote
//!   tmp-…/               a save in progress (ignored; removed by the next save)
//! ```
//!
//! | situation                                   | what happens                                   |
//! |---------------------------------------------|------------------------------------------------|
//! | killed between saves                        | next run resumes from the newest `epoch-*`      |
//! | killed during a save                        | the `tmp-…` folder is ignored, older one used   |
//! | a file changed or cut short                 | manifest mismatch: said, and training restarts  |
//! | the state does not fit the loop (a bug, an old format) | the loop says so and restarts from 0 |
//! | the entry is committed                      | the key's folder is deleted                     |
//!
//! An "epoch" is whatever the loop counts: a pass over the data for the SGD loops, one fit
//! for the logistic head's self-training (1 = the labelled fit, 1 + r = after round r).
//!
//! Checkpoints are keyed by the stage's key, so only the same stage of the same inputs and
//! parameters can pick one up, and they live outside the store: nothing reads them but the
//! loop that wrote them. Saving costs a write of the model and optimiser state, so a loop saves
//! only when [`Checkpoint::due`]: at most once per `WARMSTART_CHECKPOINT_EVERY` seconds (default
//! 60; 0 = after every epoch). When they are written changes nothing in the artefact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Where one stage's checkpoints go, and when the next one is due.
pub struct Checkpoint {
    /// `None`: checkpoints are off (unit tests, in-memory callers).
    dir: Option<PathBuf>,
    every: Duration,
    last: Mutex<Instant>,
    /// The epoch the loop resumed from, for the stage's summary line.
    resumed: Mutex<Option<usize>>,
}

const MANIFEST: &str = "manifest.json";
const DEFAULT_EVERY_SECS: u64 = 60;

impl Checkpoint {
    /// No checkpoints: nothing is saved or resumed.
    pub fn off() -> Checkpoint {
        Checkpoint {
            dir: None,
            every: Duration::MAX,
            last: Mutex::new(Instant::now()),
            resumed: Mutex::new(None),
        }
    }

    /// Checkpoints of the stage with `key` under `root` (the workspace's `checkpoints/`),
    /// every `WARMSTART_CHECKPOINT_EVERY` seconds.
    pub fn for_key(root: &Path, key: &str) -> Checkpoint {
        let secs = std::env::var("WARMSTART_CHECKPOINT_EVERY")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(DEFAULT_EVERY_SECS as f64);
        Checkpoint {
            dir: Some(root.join(key)),
            every: Duration::from_secs_f64(secs),
            last: Mutex::new(Instant::now()),
            resumed: Mutex::new(None),
        }
    }

    /// Whether enough time has passed since the stage started (or last saved) to save again.
    pub fn due(&self) -> bool {
        self.dir.is_some() && lock(&self.last).elapsed() >= self.every
    }

    /// The newest complete checkpoint whose files match their manifest, with its epoch.
    /// A damaged one is reported on stderr and skipped (training then starts over).
    pub fn latest(&self) -> Option<(usize, PathBuf)> {
        let dir = self.dir.as_ref()?;
        let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let epoch = name.strip_prefix("epoch-")?.parse().ok()?;
                Some((epoch, e.path()))
            })
            .collect();
        found.sort();
        while let Some((epoch, path)) = found.pop() {
            match check_manifest(&path) {
                Ok(()) => return Some((epoch, path)),
                Err(e) => eprintln!("warning: ignoring checkpoint {}: {e:#}", path.display()),
            }
        }
        None
    }

    /// Records that the loop resumed after `epoch` completed epochs.
    pub fn mark_resumed(&self, epoch: usize) {
        *lock(&self.resumed) = Some(epoch);
    }

    /// The epoch the loop resumed from, if it did.
    pub fn resumed_from(&self) -> Option<usize> {
        *lock(&self.resumed)
    }

    /// Saves the state after `epoch` completed epochs: `write` fills a fresh folder, which is
    /// checksummed and renamed into place; older checkpoints are then deleted. A failure is
    /// reported and otherwise ignored — a checkpoint is an optimisation, never a reason to
    /// fail a stage.
    pub fn save(&self, epoch: usize, write: impl FnOnce(&Path) -> Result<()>) {
        let Some(dir) = &self.dir else { return };
        if let Err(e) = save_in(dir, epoch, write) {
            eprintln!("warning: could not save a checkpoint in {}: {e:#}", dir.display());
        }
        *lock(&self.last) = Instant::now();
    }

    /// Deletes every checkpoint of this key (its entry is committed).
    pub fn clear(&self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn save_in(dir: &Path, epoch: usize, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Leftovers of saves that were interrupted.
    for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        if e.file_name().to_string_lossy().starts_with("tmp-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let tmp = tempfile::Builder::new().prefix("tmp-").tempdir_in(dir)?;
    write(tmp.path())?;
    let mut sums = BTreeMap::new();
    for e in std::fs::read_dir(tmp.path())? {
        let e = e?;
        let name = e.file_name().to_string_lossy().to_string();
        sums.insert(name, hash(&e.path())?);
    }
    std::fs::write(tmp.path().join(MANIFEST), serde_json::to_vec_pretty(&sums)?)?;
    let target = dir.join(format!("epoch-{epoch:06}"));
    if target.exists() {
        std::fs::remove_dir_all(&target)?;
    }
    std::fs::rename(tmp.keep(), &target)?;
    for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("epoch-") && e.path() != target {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    Ok(())
}

fn hash(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(blake3::hash(&bytes).to_hex().to_string())
}

fn check_manifest(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path.join(MANIFEST)).context("no manifest")?;
    let sums: BTreeMap<String, String> = serde_json::from_str(&text).context("unreadable manifest")?;
    for (name, sum) in &sums {
        if &hash(&path.join(name))? != sum {
            bail!("{name} does not match its checksum");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(root: &Path) -> Checkpoint {
        Checkpoint {
            dir: Some(root.join("k")),
            every: Duration::ZERO,
            last: Mutex::new(Instant::now()),
            resumed: Mutex::new(None),
        }
    }

    #[test]
    fn the_newest_intact_checkpoint_is_the_one_resumed() {
        let tmp = tempfile::tempdir().unwrap();
        let c = at(tmp.path());
        assert!(c.latest().is_none());
        c.save(1, |d| Ok(std::fs::write(d.join("state.json"), "1")?));
        c.save(2, |d| Ok(std::fs::write(d.join("state.json"), "2")?));
        let (epoch, dir) = c.latest().unwrap();
        assert_eq!(epoch, 2);
        assert_eq!(std::fs::read_to_string(dir.join("state.json")).unwrap(), "2");
        // Only the newest is kept.
        assert!(!tmp.path().join("k/epoch-000001").exists());
        // A save that died half-way leaves a tmp- folder, which is ignored.
        std::fs::create_dir_all(tmp.path().join("k/tmp-dead")).unwrap();
        assert_eq!(c.latest().unwrap().0, 2);
        // A damaged file makes the checkpoint unusable rather than silently wrong.
        std::fs::write(dir.join("state.json"), "X").unwrap();
        assert!(c.latest().is_none());
        c.clear();
        assert!(!tmp.path().join("k").exists());
    }

    #[test]
    fn a_failing_write_leaves_no_checkpoint_and_no_error() {
        let tmp = tempfile::tempdir().unwrap();
        let c = at(tmp.path());
        c.save(3, |_| bail!("disk full"));
        assert!(c.latest().is_none());
        assert!(!Checkpoint::off().due());
    }
}
