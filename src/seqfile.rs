//! Compact binary files for token sequences, shared by the data and network stages.
//!
//! Both formats are little-endian, start with an 8-byte magic that includes a format version,
//! and are read with full bounds checks: a truncated or foreign file is an error, never a panic.
//!
//! * **Ragged** (`*.seq`, written by `tokenize`): `n`, `total`, `n + 1` offsets (u64), `total`
//!   token ids (u32), `n` labels (i32, `-1` = unlabelled).
//! * **Padded** (`*.pad`, written by `pad`), one of two layouts that read back to the same rows:
//!   - *spans* (magic version 2), whenever every row's real tokens are one contiguous run and
//!     every padding position holds the same id — what the pad stage always produces: `n`,
//!     `len`, the padding id, `total`, per row the run's start and length (2 × `n` u32), the
//!     `total` real ids (u32), `n` labels (i32). Disk follows the real tokens, not `max_len`:
//!     IMDB's 22,500 training reviews padded to 4,096 take 27 MB, where full rows took 461 MB.
//!   - *full rows* (version 1), for anything else: `n`, `len`, `n × len` ids (u32), `n × len`
//!     attention mask bytes (1 = real token), `n` labels (i32).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

const RAGGED_MAGIC: &[u8; 8] = b"WSSEQ\0\0\x01";
const PADDED_MAGIC: &[u8; 8] = b"WSPAD\0\0\x01";
const SPANS_MAGIC: &[u8; 8] = b"WSPAD\0\0\x02";

/// Variable-length sequences with optional labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ragged {
    pub offsets: Vec<u64>,
    pub ids: Vec<u32>,
    pub labels: Vec<i32>,
}

impl Ragged {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

/// Fixed-length sequences with their attention mask and labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Padded {
    pub len: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<u8>,
    pub labels: Vec<i32>,
}

impl Padded {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn row(&self, i: usize) -> &[u32] {
        &self.ids[i * self.len..(i + 1) * self.len]
    }

    /// The real (unmasked) token ids of row `i`: the text as encoded, without padding.
    pub fn real_ids(&self, i: usize) -> Vec<u32> {
        self.row(i)
            .iter()
            .zip(self.mask_row(i))
            .filter(|(_, &m)| m != 0)
            .map(|(&t, _)| t)
            .collect()
    }

    pub fn mask_row(&self, i: usize) -> &[u8] {
        &self.mask[i * self.len..(i + 1) * self.len]
    }
}

pub fn write_ragged(path: &Path, r: &Ragged) -> Result<()> {
    let mut buf = Vec::with_capacity(24 + r.offsets.len() * 8 + r.ids.len() * 4 + r.labels.len() * 4);
    buf.extend_from_slice(RAGGED_MAGIC);
    buf.extend_from_slice(&(r.labels.len() as u64).to_le_bytes());
    buf.extend_from_slice(&(r.ids.len() as u64).to_le_bytes());
    r.offsets.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
    r.ids.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
    r.labels.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
    write_file(path, &buf)
}

pub fn read_ragged(path: &Path) -> Result<Ragged> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut c = Cursor::new(&bytes, path, RAGGED_MAGIC)?;
    let n = c.count()?;
    let total = c.count()?;
    let offsets = c.u64s(n + 1)?;
    let ids = c.u32s(total)?;
    let labels = c.i32s(n)?;
    c.end()?;
    if offsets.first() != Some(&0) || offsets.last() != Some(&(total as u64)) || offsets.windows(2).any(|w| w[0] > w[1])
    {
        bail!("{}: corrupt offsets", path.display());
    }
    Ok(Ragged { offsets, ids, labels })
}

/// Each row's real tokens as `(start, count)` and the one id every padding position holds, if
/// the rows have that shape (the spans layout can then store them).
fn spans(p: &Padded) -> Option<(Vec<(u32, u32)>, u32)> {
    let mut pad = None;
    let mut out = Vec::with_capacity(p.rows());
    for r in 0..p.rows() {
        let m = p.mask_row(r);
        let start = m.iter().position(|&v| v != 0).unwrap_or(0);
        let count = m[start..].iter().take_while(|&&v| v != 0).count();
        if m[start + count..].iter().any(|&v| v != 0) || m.iter().any(|&v| v > 1) {
            return None;
        }
        let ids = p.row(r);
        for &id in ids[..start].iter().chain(&ids[start + count..]) {
            if *pad.get_or_insert(id) != id {
                return None;
            }
        }
        out.push((u32::try_from(start).ok()?, u32::try_from(count).ok()?));
    }
    Some((out, pad.unwrap_or(0)))
}

pub fn write_padded(path: &Path, p: &Padded) -> Result<()> {
    if let Some((runs, pad)) = spans(p) {
        let total: usize = runs.iter().map(|&(_, c)| c as usize).sum();
        let mut buf = Vec::with_capacity(40 + runs.len() * 12 + total * 4);
        buf.extend_from_slice(SPANS_MAGIC);
        buf.extend_from_slice(&(p.labels.len() as u64).to_le_bytes());
        buf.extend_from_slice(&(p.len as u64).to_le_bytes());
        buf.extend_from_slice(&u64::from(pad).to_le_bytes());
        buf.extend_from_slice(&(total as u64).to_le_bytes());
        for &(start, count) in &runs {
            buf.extend_from_slice(&start.to_le_bytes());
            buf.extend_from_slice(&count.to_le_bytes());
        }
        for (r, &(start, count)) in runs.iter().enumerate() {
            let (a, b) = (start as usize, (start + count) as usize);
            p.row(r)[a..b]
                .iter()
                .for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
        }
        p.labels.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
        return write_file(path, &buf);
    }
    let mut buf = Vec::with_capacity(24 + p.ids.len() * 5 + p.labels.len() * 4);
    buf.extend_from_slice(PADDED_MAGIC);
    buf.extend_from_slice(&(p.labels.len() as u64).to_le_bytes());
    buf.extend_from_slice(&(p.len as u64).to_le_bytes());
    p.ids.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
    buf.extend_from_slice(&p.mask);
    p.labels.iter().for_each(|o| buf.extend_from_slice(&o.to_le_bytes()));
    write_file(path, &buf)
}

pub fn read_padded(path: &Path) -> Result<Padded> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(SPANS_MAGIC) {
        return read_spans(&bytes, path);
    }
    let mut c = Cursor::new(&bytes, path, PADDED_MAGIC)?;
    let n = c.count()?;
    let len = c.count()?;
    let cells = n
        .checked_mul(len)
        .with_context(|| format!("{}: corrupt header", path.display()))?;
    let ids = c.u32s(cells)?;
    let mask = c.take(cells)?.to_vec();
    let labels = c.i32s(n)?;
    c.end()?;
    Ok(Padded { len, ids, mask, labels })
}

/// The spans layout, expanded to full rows; every run is checked to lie inside its row and
/// the runs to account for exactly the stored ids.
fn read_spans(bytes: &[u8], path: &Path) -> Result<Padded> {
    let mut c = Cursor::new(bytes, path, SPANS_MAGIC)?;
    let n = c.count()?;
    // Rows are not stored whole, so `len` is bounded by what the pad stage accepts, not by the
    // file's size (each row still costs 8 bytes of spans, which bounds `n`).
    let len = usize::try_from(c.u64s(1)?[0])
        .ok()
        .filter(|&l| l <= crate::artefact::MAX_LEN)
        .with_context(|| format!("{}: corrupt header", path.display()))?;
    let pad = u32::try_from(c.u64s(1)?[0]).with_context(|| format!("{}: corrupt header", path.display()))?;
    let total = c.count()?;
    let runs = c.u32s(n.checked_mul(2).context("corrupt header")?)?;
    let real = c.u32s(total)?;
    let labels = c.i32s(n)?;
    c.end()?;
    let cells = n * len;
    let mut ids = vec![pad; cells];
    let mut mask = vec![0u8; cells];
    let mut at = 0usize;
    for (r, run) in runs.chunks_exact(2).enumerate() {
        let (start, count) = (run[0] as usize, run[1] as usize);
        if start + count > len || at + count > total {
            bail!("{}: corrupt row spans", path.display());
        }
        let row = r * len + start;
        ids[row..row + count].copy_from_slice(&real[at..at + count]);
        mask[row..row + count].fill(1);
        at += count;
    }
    if at != total {
        bail!("{}: corrupt row spans", path.display());
    }
    Ok(Padded { len, ids, mask, labels })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], path: &'a Path, magic: &[u8; 8]) -> Result<Self> {
        if bytes.len() < 8 || &bytes[..8] != magic {
            bail!(
                "{}: not a warmstart sequence file of the expected format/version",
                path.display()
            );
        }
        Ok(Cursor { bytes, at: 8, path })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            bail!("{}: file is truncated", self.path.display())
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn count(&mut self) -> Result<usize> {
        let b = self.take(8)?;
        let v = u64::from_le_bytes(b.try_into().expect("8 bytes"));
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= self.bytes.len())
            .with_context(|| format!("{}: corrupt header", self.path.display()))
    }

    fn u64s(&mut self, n: usize) -> Result<Vec<u64>> {
        let b = self.take(n.checked_mul(8).context("corrupt header")?)?;
        Ok(b.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    fn u32s(&mut self, n: usize) -> Result<Vec<u32>> {
        let b = self.take(n.checked_mul(4).context("corrupt header")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    fn i32s(&mut self, n: usize) -> Result<Vec<i32>> {
        let b = self.take(n.checked_mul(4).context("corrupt header")?)?;
        Ok(b.chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect())
    }

    fn end(&self) -> Result<()> {
        if self.at != self.bytes.len() {
            bail!("{}: unexpected trailing bytes", self.path.display());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ragged_and_padded_round_trip_and_reject_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let r = Ragged {
            offsets: vec![0, 2, 2, 5],
            ids: vec![5, 6, 7, 8, 9],
            labels: vec![1, -1, 0],
        };
        let p = dir.path().join("a.seq");
        write_ragged(&p, &r).unwrap();
        assert_eq!(read_ragged(&p).unwrap(), r);
        assert_eq!(read_ragged(&p).unwrap().row(2), &[7, 8, 9]);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        assert!(read_ragged(&p).unwrap_err().to_string().contains("truncated"));

        let pd = Padded {
            len: 2,
            ids: vec![1, 2, 3, 0],
            mask: vec![1, 1, 1, 0],
            labels: vec![0, 1],
        };
        let q = dir.path().join("a.pad");
        write_padded(&q, &pd).unwrap();
        assert_eq!(read_padded(&q).unwrap(), pd);
        assert!(read_padded(&p).is_err(), "a ragged file is not a padded file");
    }

    /// What the pad stage writes (one run of real tokens per row, one padding id) is stored as
    /// spans, whose size follows the real tokens; anything else as full rows. Both read back
    /// to the same rows, and a damaged spans file is an error, never a panic.
    #[test]
    fn padded_rows_are_stored_as_spans_when_they_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let len = 1000;
        let mut pd = Padded {
            len,
            ids: vec![0; 3 * len],
            mask: vec![0; 3 * len],
            labels: vec![1, 0, -1],
        };
        // post-padded, pre-padded, empty
        for (r, start, count) in [(0usize, 0usize, 5usize), (1, 990, 10)] {
            for t in start..start + count {
                pd.ids[r * len + t] = 7 + t as u32;
                pd.mask[r * len + t] = 1;
            }
        }
        let q = dir.path().join("s.pad");
        write_padded(&q, &pd).unwrap();
        let size = std::fs::metadata(&q).unwrap().len();
        assert_eq!(
            size,
            40 + 3 * 8 + 15 * 4 + 3 * 4,
            "spans: header, runs, real ids, labels"
        );
        assert_eq!(read_padded(&q).unwrap(), pd);
        // Another padding id round-trips too.
        let mut other = pd.clone();
        other
            .ids
            .iter_mut()
            .zip(&pd.mask)
            .filter(|(_, &m)| m == 0)
            .for_each(|(i, _)| *i = 3);
        write_padded(&q, &other).unwrap();
        assert_eq!(read_padded(&q).unwrap(), other);
        // A gap inside a row, or two padding ids: full rows.
        for bend in [|p: &mut Padded| p.mask[2] = 0, |p: &mut Padded| p.ids[1500] = 9] {
            let mut odd = pd.clone();
            bend(&mut odd);
            write_padded(&q, &odd).unwrap();
            assert_eq!(std::fs::metadata(&q).unwrap().len(), 24 + 3 * 1000 * 5 + 12);
            assert_eq!(read_padded(&q).unwrap(), odd);
        }
        // Damaged spans files.
        write_padded(&q, &pd).unwrap();
        let good = std::fs::read(&q).unwrap();
        let mut bad = good.clone();
        bad[40 + 8..40 + 12].copy_from_slice(&995u32.to_le_bytes()); // row 1 starts at 995: runs past its end
        std::fs::write(&q, &bad).unwrap();
        assert!(read_padded(&q).unwrap_err().to_string().contains("corrupt row spans"));
        std::fs::write(&q, &good[..good.len() - 1]).unwrap();
        assert!(read_padded(&q).unwrap_err().to_string().contains("truncated"));
    }
}
