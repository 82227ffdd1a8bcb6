//! Datasets: the files a spec names, and how their texts and labels are read.
//!
//! Formats: `csv` and `tsv` (with a header row), `jsonl` (one object per line), `parquet`
//! (`parquet.rs`), `txt` (one text per non-empty line, no labels). Reading is strict: a missing column names the columns found,
//! a bad row names its line, non-UTF-8 text names its line, a quote that is never closed names
//! the row it opens. Nothing is silently dropped except blank lines in `txt` files.
//!
//! [`DatasetSpec::check_columns`] runs before anything else (a problem there is a spec error,
//! exit 2), so it also catches what a file's head shows cheaply: no header, no rows, no text.
//! Problems further into a file surface when a stage reads it (the stage fails, exit 1).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod delimited;
mod jsonl;
mod parquet;

/// A dataset as declared in the spec, with its path resolved.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetSpec {
    pub name: String,
    /// Resolved path (spec directory joined with `rel_path`).
    pub path: PathBuf,
    /// The path as written in the spec.
    pub rel_path: String,
    pub format: Format,
    /// Text column (csv/tsv) or field (jsonl).
    pub text: String,
    /// Label column or field; `None` for unlabelled data.
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
    Parquet,
    Txt,
}

impl Format {
    pub fn from_extension(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" | "pq" => Some(Format::Parquet),
            "txt" | "text" => Some(Format::Txt),
            _ => None,
        }
    }
}

/// Errors reading a dataset. Each says which file and, where it can, which line.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    /// `noun` is "column" (csv/tsv) or "field" (jsonl); `hint` is empty or starts with "; ".
    #[error("{path}: {noun} `{column}` not found; {noun}s found: {found}{hint}")]
    MissingColumn {
        path: PathBuf,
        noun: &'static str,
        column: String,
        found: String,
        hint: String,
    },
    #[error("{path}:{line}: {message}")]
    Row { path: PathBuf, line: u64, message: String },
    /// A problem with the file as a whole (e.g. not a Parquet file).
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// `what` says what is missing and what to do, e.g. "the file is empty (...)".
    #[error("{path}: {what}")]
    Empty { path: PathBuf, what: &'static str },
}

const EMPTY_CSV: &str =
    "the file is empty (no header row); a csv/tsv dataset needs a header row naming its columns, then one row per example";
const HEADER_ONLY: &str = "the file has a header row but no data rows; add rows, or point the spec at the right file";
const EMPTY_TXT: &str = "no text: empty or only blank lines; a txt dataset needs one text per line";
const EMPTY_FOLDER: &str = "the folder has no data files (a folder dataset is read as all the .txt, .csv, .tsv, .jsonl and .parquet files under it)";
const EMPTY_JSONL: &str = "the file is empty (no JSON lines); a jsonl dataset needs one JSON object per line";

/// The rows of a dataset: texts, and labels when the dataset has a label column.
#[derive(Debug, Default, Clone)]
pub struct Rows {
    pub texts: Vec<String>,
    pub labels: Option<Vec<String>>,
}

impl DatasetSpec {
    /// Checks that the file exists and has the declared columns, reading only its head.
    pub fn check_columns(&self) -> Result<(), DataError> {
        match self.format {
            Format::Txt if self.path.is_dir() => {
                let files = text_files(&self.path).map_err(|source| DataError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                if files.is_empty() {
                    return Err(self.empty(EMPTY_FOLDER));
                }
                // Tabular files in the folder must have the text column: checked now, so that a
                // csv without it is a spec error before anything runs, not a stage failure.
                for f in files {
                    if let Some(part) = self.folder_part(&f) {
                        part.check_columns()?;
                    }
                }
                Ok(())
            }
            Format::Txt => {
                // Reads up to the first non-blank line: cheap, and an empty corpus is then a
                // spec error like a missing file rather than a failure of the first stage.
                let f = File::open(&self.path).map_err(|source| DataError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                let mut reader = BufReader::new(f);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let n = reader.read_until(b'\n', &mut line).map_err(|source| DataError::Open {
                        path: self.path.clone(),
                        source,
                    })?;
                    if n == 0 {
                        return Err(self.empty(EMPTY_TXT));
                    }
                    if !line.iter().all(u8::is_ascii_whitespace) {
                        return Ok(());
                    }
                }
            }
            Format::Csv | Format::Tsv => {
                let mut rdr = self.csv_reader()?;
                let headers = rdr.headers().map_err(|e| self.csv_error(e))?.clone();
                if headers.is_empty() || (headers.len() == 1 && headers.get(0) == Some("")) {
                    return Err(self.empty(EMPTY_CSV));
                }
                self.column_indices(&headers)?;
                // Only "is there a row at all": a bad row is reported, with its line, when a
                // stage reads the file, wherever in the file it is.
                let mut record = csv::StringRecord::new();
                if let Ok(false) = rdr.read_record(&mut record) {
                    return Err(self.empty(HEADER_ONLY));
                }
                Ok(())
            }
            Format::Parquet => self.check_parquet(),
            Format::Jsonl => {
                let f = File::open(&self.path).map_err(|source| DataError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                let mut line = String::new();
                let mut reader = BufReader::new(f);
                let mut lineno = 0u64;
                loop {
                    line.clear();
                    lineno += 1;
                    let n = reader.read_line(&mut line).map_err(|e| DataError::Row {
                        path: self.path.clone(),
                        line: lineno,
                        message: format!("cannot read line: {e}"),
                    })?;
                    if n == 0 {
                        return Err(self.empty(EMPTY_JSONL));
                    }
                    if !line.trim().is_empty() {
                        break;
                    }
                }
                self.json_row(&line, lineno).map(|_| ())
            }
        }
    }

    /// Reads every row.
    pub fn read(&self) -> Result<Rows, DataError> {
        let rows = match self.format {
            Format::Txt => self.read_txt()?,
            Format::Csv | Format::Tsv => self.read_csv()?,
            Format::Jsonl => self.read_jsonl()?,
            Format::Parquet => self.read_parquet()?,
        };
        if rows.texts.is_empty() {
            let what = match self.format {
                Format::Txt if text_files(&self.path).is_ok_and(|f| f.is_empty()) => EMPTY_FOLDER,
                Format::Txt => EMPTY_TXT,
                Format::Csv | Format::Tsv => HEADER_ONLY,
                Format::Jsonl => EMPTY_JSONL,
                Format::Parquet => "the file has no rows; point the spec at the right file",
            };
            return Err(self.empty(what));
        }
        Ok(rows)
    }

    pub(super) fn empty(&self, what: &'static str) -> DataError {
        DataError::Empty {
            path: self.path.clone(),
            what,
        }
    }

    fn read_txt(&self) -> Result<Rows, DataError> {
        let files = if self.path.is_dir() {
            text_files(&self.path).map_err(|source| DataError::Open {
                path: self.path.clone(),
                source,
            })?
        } else {
            vec![self.path.clone()]
        };
        let mut texts = Vec::new();
        for path in files {
            if let Some(part) = self.folder_part(&path) {
                texts.extend(part.read()?.texts);
                continue;
            }
            let mut f = File::open(&path).map_err(|source| DataError::Open {
                path: path.clone(),
                source,
            })?;
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(|source| DataError::Open {
                path: path.clone(),
                source,
            })?;
            let text = String::from_utf8(bytes).map_err(|e| {
                let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
                DataError::Row {
                    path: path.clone(),
                    line,
                    message: "text is not valid UTF-8 (re-encode the file as UTF-8)".into(),
                }
            })?;
            texts.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
        Ok(Rows { texts, labels: None })
    }

    /// A tabular file (csv, tsv, jsonl, parquet) inside a folder dataset, read as a dataset of
    /// its own: the folder's `text` column, never a label. `None` for the folder's text files.
    fn folder_part(&self, path: &Path) -> Option<DatasetSpec> {
        let format = Format::from_extension(path.to_str()?)?;
        (format != Format::Txt).then(|| DatasetSpec {
            name: self.name.clone(),
            path: path.to_path_buf(),
            rel_path: path.to_string_lossy().into_owned(),
            format,
            text: self.text.clone(),
            label: None,
        })
    }
}

/// Orders label strings: numerically when all are integers, otherwise lexicographically.
pub fn sort_labels(labels: &mut [String]) {
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
    } else {
        labels.sort();
    }
}

/// The data files under a folder (recursively), sorted, for folder datasets: `.txt`/`.tokens`
/// files (a text per line) and tabular files (`.csv`, `.tsv`, `.jsonl`, `.parquet`: their text
/// column). Other files (a README, a SOURCE.md) are not data and are left out.
///
/// Why tabular files too: unlabelled text often comes as a mix — a folder of corpora plus a csv
/// of in-domain texts — and a folder is the one path a template's `general` entry takes.
pub fn text_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "tokens")
                || p.to_str().and_then(Format::from_extension).is_some()
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
