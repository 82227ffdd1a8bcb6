//! The content-addressed artefact store.
//!
//! Layout under the workspace (`.warmstart/` by default):
//!
//! ```text
//! store/<key>/entry.json     what made it, when, and a blake3 checksum of every file
//! store/<key>/files/...      the stage's output
//! store/<key>/stamps.json    per file, the stat fields seen when its checksum last matched
//! tmp/                       entries being written (never read by lookups)
//! ```
//!
//! **Invariant: an entry is visible only once complete.** A stage writes into a fresh folder
//! under `tmp/`; when it succeeds, every file is checksummed and fsynced, `entry.json` is written
//! and fsynced last, and the folder is renamed to `store/<key>` (an atomic rename on one file
//! system), after which the `store/` directory is fsynced. A run killed at any moment therefore
//! leaves either no entry or a complete one; leftovers in `tmp/` are ignored and removed later.
//! A lookup additionally requires `entry.json` to parse and name the same key.
//!
//! **Invariant: an entry is never used unverified**, and verifying stays cheap as entries grow.
//! [`Store::verify`] re-hashes a file only when its stamp changed:
//!
//! | what happened to a file since its checksum last matched | stamp        | verify      |
//! |---------------------------------------------------------|--------------|-------------|
//! | nothing                                                 | same         | trusted     |
//! | written, truncated, replaced, `touch`ed, chmod-ed       | ctime/size/… | re-hashed   |
//! | bits rotted on disk without a write                     | same         | not seen    |
//!
//! The stamp is (size, mtime, ctime, inode, device), as git's index and the dataset hash cache
//! ([`crate::workspace::FileHashes`]) use: every write through the file system moves ctime,
//! which no user call can set back. The last row is what `warmstart verify` is for: it
//! re-hashes everything ([`Store::verify_full`]). Why: a no-op rerun used to re-hash every
//! cached byte — 280 ms for a study with 296 MB of artefacts, growing with the bytes.
//! `stamps.json` is not itself checksummed: a lost or edited one only costs a re-hash.

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

/// What `stat` says about a file, compared to decide whether its checksum must be re-read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    bytes: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    inode: u64,
    device: u64,
}

#[cfg(unix)]
fn stamp_of(p: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).ok()?;
    Some(Stamp {
        bytes: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        ctime_ns: m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128,
        inode: m.ino(),
        device: m.dev(),
    })
}

/// Without ctime and inodes there is no safe stamp: every verify re-hashes.
#[cfg(not(unix))]
fn stamp_of(_: &Path) -> Option<Stamp> {
    None
}

type Stamps = BTreeMap<String, Stamp>;

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
        // The files were hashed a moment ago: their stamps now save the first rerun a re-hash.
        let stamps: Stamps = meta
            .files
            .keys()
            .filter_map(|rel| Some((rel.clone(), stamp_of(&self.files_dir(&meta.key).join(rel))?)))
            .collect();
        self.save_stamps(&meta.key, &stamps);
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

    /// Checks an entry's files against its checksums, re-hashing only files whose stamp
    /// changed since their checksum last matched (module docs). `Ok(())` when intact.
    pub fn verify(&self, key: &str) -> Result<()> {
        self.check(key, false)
    }

    /// Checks an entry by re-hashing every file, stamps or not (`warmstart verify`).
    pub fn verify_full(&self, key: &str) -> Result<()> {
        self.check(key, true)
    }

    fn check(&self, key: &str, full: bool) -> Result<()> {
        let Some(meta) = self.lookup(key) else {
            bail!("entry.json is missing or unreadable")
        };
        let dir = self.files_dir(key);
        let found = list_tree(&dir)?;
        for path in meta.files.keys() {
            if !found.contains(path) {
                bail!("file `{path}` is missing");
            }
        }
        if let Some(extra) = found.iter().find(|p| !meta.files.contains_key(*p)) {
            bail!("unexpected file `{extra}`");
        }
        let old = if full { Stamps::new() } else { self.load_stamps(key) };
        let mut now = Stamps::new();
        for (path, sum) in &meta.files {
            let p = dir.join(path);
            let stamp = stamp_of(&p);
            let trusted = matches!((&stamp, old.get(path)), (Some(s), Some(o)) if s == o && s.bytes == sum.bytes);
            if !trusted && hash_file(&p)? != *sum {
                bail!("file `{path}` does not match its checksum (corrupted or truncated)");
            }
            if let Some(s) = stamp {
                now.insert(path.clone(), s);
            }
        }
        if now != old {
            self.save_stamps(key, &now);
        }
        Ok(())
    }

    fn load_stamps(&self, key: &str) -> Stamps {
        fs::read(self.entry_dir(key).join("stamps.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Best effort: a workspace that cannot be written (read-only mount) still verifies, by
    /// re-hashing each time.
    fn save_stamps(&self, key: &str, stamps: &Stamps) {
        if let Ok(bytes) = serde_json::to_vec(stamps) {
            let _ = write_atomic(&self.entry_dir(key).join("stamps.json"), &bytes);
        }
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
    for rel in list_tree(dir)? {
        let p = dir.join(&rel);
        let sum = hash_file(&p)?;
        if sync {
            File::open(&p)?.sync_all()?;
        }
        out.insert(rel, sum);
    }
    Ok(out)
}

/// Relative paths (with `/` separators) of every file under `dir`.
fn list_tree(dir: &Path) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p);
                continue;
            }
            out.insert(p.strip_prefix(dir).unwrap_or(&p).to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(out)
}

fn hash_file(p: &Path) -> Result<FileSum> {
    let mut f = File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
    let mut h = blake3::Hasher::new();
    let bytes = std::io::copy(&mut f, &mut h)?;
    Ok(FileSum {
        bytes,
        blake3: h.finalize().to_hex().to_string(),
    })
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
mod tests;
