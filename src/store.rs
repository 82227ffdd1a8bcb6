//! The content-addressed artefact store.
//!
//! Layout under the workspace (`.warmstart/` by default):
//!
//! ```text
//! store/<key>/entry.json     what made it, when, and a blake3 checksum of every file
//! store/<key>/files/...      the stage's output
//! tmp/                       entries being written (never read by lookups)
//! ```
//!
//! **Invariant: an entry is visible only once complete.** A stage writes into a fresh folder
//! under `tmp/`; when it succeeds, every file is checksummed and fsynced, `entry.json` is written
//! and fsynced last, and the folder is renamed to `store/<key>` (an atomic rename on one file
//! system), after which the `store/` directory is fsynced. A run killed at any moment therefore
//! leaves either no entry or a complete one; leftovers in `tmp/` are ignored and removed later.
//! A lookup additionally requires `entry.json` to parse and name the same key.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// `entry.json`: the metadata of one complete store entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryMeta {
    pub key: String,
    pub kind: String,
    /// The stage (and pipeline) that first produced it.
    pub stage: String,
    pub pipeline: String,
    pub created_unix: u64,
    pub seconds: f64,
    pub summary: String,
    #[serde(default)]
    pub metrics: Option<serde_json::Value>,
    /// Relative path (under `files/`) → size and blake3 hex.
    pub files: BTreeMap<String, FileSum>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSum {
    pub bytes: u64,
    pub blake3: String,
}

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    tmp: PathBuf,
}

/// An entry being written; dropping it without [`Store::commit`] deletes it.
pub struct Pending {
    dir: tempfile::TempDir,
}

impl Pending {
    /// Where the stage writes its files.
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }
}

impl Store {
    pub fn open(workspace: &Path) -> Result<Store> {
        let root = workspace.join("store");
        let tmp = workspace.join("tmp");
        for d in [&root, &tmp] {
            fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        Ok(Store { root, tmp })
    }

    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The `files/` folder of an entry.
    pub fn files_dir(&self, key: &str) -> PathBuf {
        self.root.join(key).join("files")
    }

    /// The metadata of a complete entry, or `None` if there is none (or it is unreadable).
    pub fn lookup(&self, key: &str) -> Option<EntryMeta> {
        let bytes = fs::read(self.root.join(key).join("entry.json")).ok()?;
        let meta: EntryMeta = serde_json::from_slice(&bytes).ok()?;
        (meta.key == key).then_some(meta)
    }

    /// Starts a new entry in `tmp/`.
    pub fn begin(&self) -> Result<Pending> {
        let dir = tempfile::Builder::new()
            .prefix("entry-")
            .tempdir_in(&self.tmp)
            .with_context(|| format!("cannot create a temporary folder in {}", self.tmp.display()))?;
        fs::create_dir(dir.path().join("files"))?;
        Ok(Pending { dir })
    }

    /// Checksums and fsyncs a finished entry and moves it into place. If an entry with the
    /// key exists already (forced rerun), it is replaced.
    pub fn commit(&self, pending: Pending, mut meta: EntryMeta) -> Result<EntryMeta> {
        let files_dir = pending.files();
        meta.files = checksum_tree(&files_dir, true)?;
        let entry_json = pending.dir.path().join("entry.json");
        write_synced(&entry_json, &serde_json::to_vec_pretty(&meta)?)?;
        sync_dir(&files_dir)?;
        sync_dir(pending.dir.path())?;
        let target = self.entry_dir(&meta.key);
        let staged = pending.dir.keep();
        if target.exists() {
            // Move the old entry aside first: rename cannot replace a non-empty folder.
            let trash = tempfile::Builder::new().prefix("old-").tempdir_in(&self.tmp)?.keep();
            fs::remove_dir(&trash)?;
            fs::rename(&target, &trash).with_context(|| format!("cannot move aside {}", target.display()))?;
            let _ = fs::remove_dir_all(&trash);
        }
        if let Err(e) = fs::rename(&staged, &target) {
            let _ = fs::remove_dir_all(&staged);
            return Err(e).with_context(|| format!("cannot move the new entry to {}", target.display()));
        }
        sync_dir(&self.root)?;
        Ok(meta)
    }

    /// The `files/` folder of an entry after checking every file against its checksum: the
    /// one way for anything (run, predict, export, report) to read a cached artefact, so that
    /// a truncated or edited entry is never used as if it were what the key promises.
    pub fn verified_files(&self, key: &str) -> Result<PathBuf> {
        self.verify(key)
            .with_context(|| format!("store entry {} is not intact", self.entry_dir(key).display()))?;
        Ok(self.files_dir(key))
    }

    /// Checks an entry's files against its checksums. `Ok(())` when intact.
    pub fn verify(&self, key: &str) -> Result<()> {
        let Some(meta) = self.lookup(key) else {
            bail!("entry.json is missing or unreadable")
        };
        let found = checksum_tree(&self.files_dir(key), false)?;
        for (path, sum) in &meta.files {
            match found.get(path) {
                None => bail!("file `{path}` is missing"),
                Some(f) if f != sum => {
                    bail!("file `{path}` does not match its checksum (corrupted or truncated)")
                }
                _ => {}
            }
        }
        if let Some(extra) = found.keys().find(|p| !meta.files.contains_key(*p)) {
            bail!("unexpected file `{extra}`");
        }
        Ok(())
    }

    /// Removes an entry (used to discard corrupt entries so they are recomputed).
    pub fn remove(&self, key: &str) -> Result<()> {
        let dir = self.entry_dir(key);
        if !dir.exists() {
            return Ok(());
        }
        let trash = tempfile::Builder::new().prefix("bad-").tempdir_in(&self.tmp)?.keep();
        fs::remove_dir(&trash)?;
        fs::rename(&dir, &trash)?;
        fs::remove_dir_all(&trash)?;
        Ok(())
    }

    /// Deletes leftovers of interrupted runs in `tmp/`; only safe while holding the run lock.
    /// Returns the bytes freed.
    pub fn clear_tmp(&self) -> Result<u64> {
        let mut freed = 0;
        for e in fs::read_dir(&self.tmp)? {
            let p = e?.path();
            freed += disk_size(&p);
            let _ = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
        }
        Ok(freed)
    }

    /// Keys of every complete entry.
    pub fn keys(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        for e in fs::read_dir(&self.root)? {
            let e = e?;
            if let Some(name) = e.file_name().to_str() {
                if e.path().join("entry.json").is_file() {
                    v.push(name.to_string());
                }
            }
        }
        v.sort();
        Ok(v)
    }
}

/// blake3 of every file under `dir`, by relative path (with `/` separators); fsyncs each file
/// when `sync` is set.
fn checksum_tree(dir: &Path, sync: bool) -> Result<BTreeMap<String, FileSum>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let mut f = File::open(&p).with_context(|| format!("cannot open {}", p.display()))?;
            let mut h = blake3::Hasher::new();
            let bytes = std::io::copy(&mut f, &mut h)?;
            if sync {
                f.sync_all()?;
            }
            out.insert(
                rel,
                FileSum {
                    bytes,
                    blake3: h.finalize().to_hex().to_string(),
                },
            );
        }
    }
    Ok(out)
}

fn disk_size(p: &Path) -> u64 {
    if p.is_dir() {
        fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| disk_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        fs::metadata(p).map(|m| m.len()).unwrap_or(0)
    }
}

/// Writes a file and fsyncs it.
pub fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Replaces a small file atomically (temp file beside it, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    // NamedTempFile's default mode is 0600 (right for secrets, wrong for reports and exported
    // models that colleagues and web servers read): ask for 0666 and let the umask decide, as
    // `File::create` does.
    let mut tmp = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(key: &str) -> EntryMeta {
        EntryMeta {
            key: key.into(),
            kind: "t".into(),
            stage: "s".into(),
            pipeline: "p".into(),
            created_unix: 0,
            seconds: 0.0,
            summary: String::new(),
            metrics: None,
            files: BTreeMap::new(),
        }
    }

    #[test]
    fn entry_is_visible_only_after_commit_and_verify_detects_corruption() {
        let ws = tempfile::tempdir().unwrap();
        let store = Store::open(ws.path()).unwrap();
        let p = store.begin().unwrap();
        fs::write(p.files().join("a.bin"), b"hello").unwrap();
        assert!(store.lookup("k1").is_none());
        store.commit(p, meta("k1")).unwrap();
        assert!(store.lookup("k1").is_some());
        store.verify("k1").unwrap();
        fs::write(store.files_dir("k1").join("a.bin"), b"hell").unwrap();
        assert!(store.verify("k1").unwrap_err().to_string().contains("checksum"));

        // An abandoned entry leaves nothing behind.
        let p = store.begin().unwrap();
        fs::write(p.files().join("b.bin"), b"x").unwrap();
        drop(p);
        assert_eq!(fs::read_dir(ws.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(store.keys().unwrap(), vec!["k1".to_string()]);
    }
}
