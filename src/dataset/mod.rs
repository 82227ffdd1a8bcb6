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
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
        // A tab-separated file read as csv has one column named "text\tlabel": show the tab as
        // `\t` (a raw tab is invisible in a terminal) and say what to do.
        let hint = if self.format == Format::Csv && headers.iter().any(|h| h.contains('\t')) {
            "; the header contains tabs: if the file is tab-separated, name it .tsv or declare `format: tsv`"
                .to_string()
        } else {
            String::new()
        };
        let find = |col: &str| -> Result<usize, DataError> {
            headers
                .iter()
                .position(|h| h.trim_start_matches('\u{feff}') == col)
                .ok_or_else(|| DataError::MissingColumn {
                    path: self.path.clone(),
                    noun: "column",
                    column: col.to_string(),
                    found: headers
                        .iter()
                        .map(|h| format!("`{}`", h.trim_start_matches('\u{feff}').escape_debug()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    hint: hint.clone(),
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
        let headers = rdr.headers().map_err(|e| self.csv_error(e))?.clone();
        let (ti, li) = self.column_indices(&headers)?;
        let mut rows = Rows {
            texts: Vec::new(),
            labels: li.map(|_| Vec::new()),
        };
        let mut record = csv::StringRecord::new();
        // (line, byte) where the last record starts, if one of its fields spans lines: the
        // shape an unclosed quote leaves (see `unclosed_quote`).
        let mut last_multiline = None;
        loop {
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(self.csv_error(e)),
            }
            let (line, byte) = record.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
            last_multiline = record.iter().any(|f| f.contains(['\n', '\r'])).then_some((line, byte));
            rows.texts.push(record.get(ti).unwrap_or_default().to_string());
            if let (Some(li), Some(labels)) = (li, rows.labels.as_mut()) {
                let column = self.label.as_deref().unwrap_or_default();
                let label = record.get(li).unwrap_or_default().trim();
                if label.is_empty() {
                    return Err(self.row_error(
                        line,
                        format!("empty label in column `{column}`; fill it in or remove the row"),
                    ));
                }
                if label.contains(['\n', '\r']) {
                    return Err(self.unclosed_quote(line, byte).unwrap_or_else(|| {
                        self.row_error(line, format!("the label in column `{column}` spans several lines"))
                    }));
                }
                labels.push(label.to_string());
            }
        }
        if let Some(e) = last_multiline.and_then(|(line, byte)| self.unclosed_quote(line, byte)) {
            return Err(e);
        }
        Ok(rows)
    }

    pub(super) fn row_error(&self, line: u64, message: String) -> DataError {
        DataError::Row {
            path: self.path.clone(),
            line,
            message,
        }
    }

    /// The error for a `"` that opens in the row starting at `line`/`byte` and is never
    /// closed, if that is what happened.
    ///
    /// The csv reader does not report an unclosed quote: it reads the rest of the file into
    /// the quoted field, which shows up as a ragged last row, a label spanning lines, or — when
    /// the field counts happen to match — a silently swallowed tail of the file. An unclosed
    /// quote leaves an odd number of `"` from the row's start to the end of the file (a closed
    /// quoted field, `""` escapes included, has an even number), so this counts them; it is
    /// called only for a row that already looks wrong, and only for one row per read.
    fn unclosed_quote(&self, line: u64, byte: u64) -> Option<DataError> {
        let mut f = File::open(&self.path).ok()?;
        f.seek(SeekFrom::Start(byte)).ok()?;
        let mut quotes = 0u64;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            quotes += buf[..n].iter().filter(|&&b| b == b'"').count() as u64;
        }
        (quotes % 2 == 1).then(|| {
            self.row_error(
                line,
                "a quoted field in the row starting on this line is never closed, so the rest of the file was read into it; close the quote (inside a quoted field, write a literal quote as \"\")".into(),
            )
        })
    }

    fn csv_error(&self, e: csv::Error) -> DataError {
        let (line, byte) = e.position().map(|p| (p.line(), p.byte())).unwrap_or((0, 0));
        let message = match e.kind() {
            csv::ErrorKind::Utf8 { .. } => "text is not valid UTF-8 (re-encode the file as UTF-8)".to_string(),
            csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                if let Some(e) = self.unclosed_quote(line, byte) {
                    return e;
                }
                format!("row has {len} fields but the header has {expected_len} (a ragged row; check the separators and quoting of this line)")
            }
            _ => e.to_string(),
        };
        self.row_error(line, message)
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
            // Past the first line, a missing field is a bad row (with its line), not a missing
            // column of the file as `check_columns` reports it.
            let (text, label) = self.json_row(&line, lineno).map_err(|e| match e {
                DataError::MissingColumn { column, found, .. } => self.row_error(
                    lineno,
                    format!("field `{column}` is missing (fields found: {found}); every line needs it"),
                ),
                e => e,
            })?;
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
        // serde_json's message ends "at line 1 column C" (it sees one line): keep the column.
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            let what = e.to_string();
            let what = what.split(" at line ").next().unwrap_or_default().to_string();
            row_err(format!("invalid JSON at column {}: {what}", e.column()))
        })?;
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
                    noun: "field",
                    column: name.to_string(),
                    found: obj.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "),
                    hint: String::new(),
                }),
            }
        };
        let text = field(&self.text)?;
        let label = match &self.label {
            Some(l) => {
                let v = field(l)?;
                if v.trim().is_empty() {
                    return Err(row_err(format!(
                        "empty label in field `{l}`; fill it in or remove the line"
                    )));
                }
                Some(v)
            }
            None => None,
        };
        Ok((text, label))
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
