//! Reading jsonl datasets: one JSON object per line, the text and label fields by name.

use std::fs::File;
use std::io::{BufRead, BufReader};

use super::{DataError, DatasetSpec, Rows};

impl DatasetSpec {
    pub(super) fn read_jsonl(&self) -> Result<Rows, DataError> {
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

    pub(super) fn json_row(&self, line: &str, lineno: u64) -> Result<(String, Option<String>), DataError> {
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
