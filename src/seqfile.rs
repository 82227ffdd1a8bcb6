//! Compact binary files for token sequences, shared by the data and network stages.
//!
//! Both formats are little-endian, start with an 8-byte magic that includes a format version,
//! and are read with full bounds checks: a truncated or foreign file is an error, never a panic.
//!
//! * **Ragged** (`*.seq`, written by `tokenize`): `n`, `total`, `n + 1` offsets (u64), `total`
//!   token ids (u32), `n` labels (i32, `-1` = unlabelled).
//! * **Padded** (`*.pad`, written by `pad`): `n`, `len`, `n × len` ids (u32), `n × len` attention
//!   mask bytes (1 = real token), `n` labels (i32).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

const RAGGED_MAGIC: &[u8; 8] = b"WSSEQ\0\0\x01";
const PADDED_MAGIC: &[u8; 8] = b"WSPAD\0\0\x01";

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

pub fn write_padded(path: &Path, p: &Padded) -> Result<()> {
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
}
