//! Datasets: the files a spec names, and how their texts and labels are read.
//!
//! Formats: `csv` and `tsv` (with a header row), `jsonl` (one object per line), `txt` (one text
//! per non-empty line, no labels). Reading is strict: a missing column names the columns found,
//! a bad row names its line, non-UTF-8 text names its line. Nothing is silently dropped except
//! blank lines in `txt` files.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
    Txt,
}

impl Format {
    pub fn from_extension(path: &str) -> Option<Format> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "tsv" => Some(Format::Tsv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
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
    #[error("{path}: column `{column}` not found; columns found: {found}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: String,
    },
    #[error("{path}:{line}: {message}")]
    Row { path: PathBuf, line: u64, message: String },
    #[error("{path}: the file is empty (no {what})")]
    Empty { path: PathBuf, what: &'static str },
}

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
            Format::Txt => {
                File::open(&self.path).map_err(|source| DataError::Open {
                    path: self.path.clone(),
                    source,
                })?;
                Ok(())
            }
            Format::Csv | Format::Tsv => {
                let mut rdr = self.csv_reader()?;
                let headers = rdr.headers().map_err(|e| csv_error(&self.path, e))?.clone();
                if headers.is_empty() || (headers.len() == 1 && headers.get(0) == Some("")) {
                    return Err(DataError::Empty {
                        path: self.path.clone(),
                        what: "header row",
                    });
                }
                self.column_indices(&headers).map(|_| ())
            }
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
                        return Err(DataError::Empty {
                            path: self.path.clone(),
                            what: "JSON lines",
                        });
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
        };
        if rows.texts.is_empty() {
            return Err(DataError::Empty {
                path: self.path.clone(),
                what: "rows",
            });
        }
        Ok(rows)
    }

    fn csv_reader(&self) -> Result<csv::Reader<File>, DataError> {
        let f = File::open(&self.path).map_err(|source| DataError::Open {
            path: self.path.clone(),
            source,
        })?;
        let delim = if self.format == Format::Tsv { b'\t' } else { b',' };
        Ok(csv::ReaderBuilder::new()
            .delimiter(delim)
            .flexible(false)
            .from_reader(f))
    }

    fn column_indices(&self, headers: &csv::StringRecord) -> Result<(usize, Option<usize>), DataError> {
        let find = |col: &str| -> Result<usize, DataError> {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == col)
                .ok_or_else(|| DataError::MissingColumn {
                    path: self.path.clone(),
                    column: col.to_string(),
                    found: headers.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", "),
                })
        };
        let t = find(&self.text)?;
        let l = match &self.label {
            Some(l) => Some(find(l)?),
            None => None,
        };
        Ok((t, l))
    }

    fn read_csv(&self) -> Result<Rows, DataError> {
        let mut rdr = self.csv_reader()?;
        let headers = rdr.headers().map_err(|e| csv_error(&self.path, e))?.clone();
        let (ti, li) = self.column_indices(&headers)?;
        let mut rows = Rows {
            texts: Vec::new(),
            labels: li.map(|_| Vec::new()),
        };
        let mut record = csv::StringRecord::new();
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(&self.path, e)),
            }
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            rows.texts.push(record.get(ti).unwrap_or_default().to_string());
            if let (Some(li), Some(labels)) = (li, rows.labels.as_mut()) {
                let label = record.get(li).unwrap_or_default().trim();
                if label.is_empty() {
                    return Err(DataError::Row {
                        path: self.path.clone(),
                        line,
                        message: format!("empty label in column `{}`", self.label.as_deref().unwrap_or_default()),
                    });
                }
                labels.push(label.to_string());
            }
        }
        Ok(rows)
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

    fn read_jsonl(&self) -> Result<Rows, DataError> {
        let f = File::open(&self.path).map_err(|source| DataError::Open {
            path: self.path.clone(),
            source,
        })?;
        let mut rows = Rows {
            texts: Vec::new(),
            labels: self.label.as_ref().map(|_| Vec::new()),
        };
        for (i, line) in BufReader::new(f).split(b'\n').enumerate() {
            let lineno = i as u64 + 1;
            let bytes = line.map_err(|e| DataError::Row {
                path: self.path.clone(),
                line: lineno,
                message: e.to_string(),
            })?;
            let line = String::from_utf8(bytes).map_err(|_| DataError::Row {
                path: self.path.clone(),
                line: lineno,
                message: "line is not valid UTF-8".into(),
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let (text, label) = self.json_row(&line, lineno)?;
            rows.texts.push(text);
            if let (Some(l), Some(labels)) = (label, rows.labels.as_mut()) {
                labels.push(l);
            }
        }
        Ok(rows)
    }

    fn json_row(&self, line: &str, lineno: u64) -> Result<(String, Option<String>), DataError> {
        let row_err = |message: String| DataError::Row {
            path: self.path.clone(),
            line: lineno,
            message,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| row_err(format!("invalid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| row_err("expected a JSON object per line".into()))?;
        let field = |name: &str| -> Result<String, DataError> {
            match obj.get(name) {
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                Some(serde_json::Value::Bool(b)) => Ok(b.to_string()),
                Some(other) => Err(row_err(format!(
                    "field `{name}` must be a string or number, found {other}"
                ))),
                None => Err(DataError::MissingColumn {
                    path: self.path.clone(),
                    column: name.to_string(),
                    found: obj.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                }),
            }
        };
        let text = field(&self.text)?;
        let label = match &self.label {
            Some(l) => Some(field(l)?),
            None => None,
        };
        Ok((text, label))
    }
}

fn csv_error(path: &Path, e: csv::Error) -> DataError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "text is not valid UTF-8 (re-encode the file as UTF-8)".to_string(),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("row has {len} fields but the header has {expected_len} (a ragged row; check quoting)")
        }
        _ => e.to_string(),
    };
    DataError::Row {
        path: path.to_path_buf(),
        line,
        message,
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

/// The `.txt`/`.tokens` files under a folder (recursively), sorted, for folder datasets.
pub fn text_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("txt" | "tokens")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
