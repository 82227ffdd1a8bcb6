//! Reading csv and tsv datasets (header row required): the text and label columns by name,
//! a missing column naming the columns found, and csv errors turned into a line and a reason
//! (an unclosed quote names the row it opens).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::{DataError, DatasetSpec, Format, Rows};

impl DatasetSpec {
    pub(super) fn csv_reader(&self) -> Result<csv::Reader<File>, DataError> {
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

    pub(super) fn column_indices(&self, headers: &csv::StringRecord) -> Result<(usize, Option<usize>), DataError> {
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

    pub(super) fn read_csv(&self) -> Result<Rows, DataError> {
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
    pub(super) fn unclosed_quote(&self, line: u64, byte: u64) -> Option<DataError> {
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

    pub(super) fn csv_error(&self, e: csv::Error) -> DataError {
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
}
