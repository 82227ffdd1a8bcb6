//! The workspace: the store, the run lock, the file-hash cache and the last-run records.
//!
//! ```text
//! .warmstart/
//!   lock                 exclusive while a run writes (fs2 advisory lock)
//!   store/, tmp/         see crate::store
//!   filehash.json        path → (size, mtime, blake3): skip re-reading unchanged datasets
//!   state/<pipeline>.json  the fingerprint each stage had when it last completed, so that
//!                          `status` can say *why* a stage is stale
//!   checkpoints/<key>/   training state between epochs of a stage not yet committed, so a
//!                          killed run resumes (crate::checkpoint); removed on commit or by gc
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result};
use fs2::FileExt;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::store::{write_atomic, Store};

pub struct Workspace {
    pub dir: PathBuf,
    pub store: Store,
}

/// Held while a run writes to the workspace; released on drop.
pub struct RunLock {
    file: File,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

impl Workspace {
    pub fn open(dir: &Path) -> Result<Workspace> {
        if dir.is_file() {
            anyhow::bail!("workspace {} is a file; --workspace needs a folder", dir.display());
        }
        fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create workspace {} (make its parent writable or pass --workspace DIR)",
                dir.display()
            )
        })?;
        let store = Store::open(dir)?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            store,
        })
    }

    /// Takes the workspace's run lock, waiting (and saying so once) if another run holds it.
    pub fn lock(&self, on_wait: impl FnOnce(&str)) -> Result<RunLock> {
        let path = self.dir.join("lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if file.try_lock_exclusive().is_err() {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            on_wait(holder.trim());
            file.lock_exclusive()
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        file.set_len(0)?;
        write!(file, "pid {}", std::process::id())?;
        Ok(RunLock { file })
    }

    /// `checkpoints/<key>/`: training state of stages that have not committed yet
    /// (crate::checkpoint).
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    fn state_path(&self, pipeline: &str) -> PathBuf {
        self.dir.join("state").join(format!("{}.json", sanitize(pipeline)))
    }

    pub fn load_state(&self, pipeline: &str) -> State {
        fs::read(self.state_path(pipeline))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save_state(&self, pipeline: &str, state: &State) -> Result<()> {
        let p = self.state_path(pipeline);
        fs::create_dir_all(p.parent().unwrap_or(&self.dir))?;
        write_atomic(&p, &serde_json::to_vec_pretty(state)?)
    }

    pub fn load_hashes(&self) -> FileHashes {
        let path = self.dir.join("filehash.json");
        let entries = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        FileHashes {
            path,
            entries,
            dirty: false,
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Per pipeline: each stage's fingerprint when it last completed.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub stages: BTreeMap<String, Recorded>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    pub key: String,
    pub fingerprint: Fingerprint,
}

/// Content hashes of dataset files, trusted while size and mtime are unchanged (like make, but
/// a touched file with the same content still hashes the same, so nothing reruns).
pub struct FileHashes {
    path: PathBuf,
    entries: BTreeMap<String, HashEntry>,
    dirty: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HashEntry {
    size: u64,
    mtime_ns: u128,
    blake3: String,
}

impl FileHashes {
    /// The blake3 of a file's content, re-read only if its size or mtime changed.
    pub fn hash(&mut self, path: &Path) -> std::io::Result<String> {
        let abs = fs::canonicalize(path)?;
        if abs.is_dir() {
            // A folder of text files: the hash of its sorted (name, content hash) list.
            let mut h = blake3::Hasher::new();
            for f in crate::dataset::text_files(&abs)? {
                let rel = f.strip_prefix(&abs).unwrap_or(&f).to_string_lossy().to_string();
                h.update(rel.as_bytes());
                h.update(self.hash(&f)?.as_bytes());
            }
            return Ok(h.finalize().to_hex().to_string());
        }
        let md = fs::metadata(&abs)?;
        let mtime_ns = md
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let k = abs.to_string_lossy().to_string();
        if let Some(e) = self.entries.get(&k) {
            if e.size == md.len() && e.mtime_ns == mtime_ns {
                return Ok(e.blake3.clone());
            }
        }
        let mut h = blake3::Hasher::new();
        h.update_reader(File::open(&abs)?)?;
        let hex = h.finalize().to_hex().to_string();
        self.entries.insert(
            k,
            HashEntry {
                size: md.len(),
                mtime_ns,
                blake3: hex.clone(),
            },
        );
        self.dirty = true;
        Ok(hex)
    }

    pub fn save(&self) -> Result<()> {
        if self.dirty {
            write_atomic(&self.path, &serde_json::to_vec(&self.entries)?)?;
        }
        Ok(())
    }
}
