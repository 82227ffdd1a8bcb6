//! Parquet datasets: the format Hugging Face datasets and many other public NLP corpora ship
//! in. Read with the `parquet` crate's record API (no Arrow), only the text and label columns.
//!
//! Labels may be strings or integers (a `ClassLabel` column is stored as int64); both become
//! the label's text, so `0`/`1` labels work as in a csv. A null text or label is an error that
//! names its row (1-based, like a line), never a silently dropped example.

use std::fs::File;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use parquet::schema::types::Type;

use super::{DataError, DatasetSpec, Rows};

const EMPTY_PARQUET: &str = "the file has no rows; point the spec at the right file";

impl DatasetSpec {
    fn parquet_reader(&self) -> Result<SerializedFileReader<File>, DataError> {
        let f = File::open(&self.path).map_err(|source| DataError::Open {
            path: self.path.clone(),
            source,
        })?;
        SerializedFileReader::new(f).map_err(|e| DataError::File {
            path: self.path.clone(),
            message: format!("not a readable Parquet file: {e}"),
        })
    }

    /// The top-level columns of the file, checked for the text and label columns; the schema
    /// with only those two (in that order) for the row reader.
    fn parquet_projection(&self, reader: &SerializedFileReader<File>) -> Result<Type, DataError> {
        let root = reader.metadata().file_metadata().schema();
        let fields = root.get_fields();
        let find = |col: &str| {
            fields
                .iter()
                .find(|f| f.name() == col)
                .cloned()
                .ok_or_else(|| DataError::MissingColumn {
                    path: self.path.clone(),
                    noun: "column",
                    column: col.to_string(),
                    found: fields
                        .iter()
                        .map(|f| format!("`{}`", f.name()))
                        .collect::<Vec<_>>()
                        .join(", "),
                    hint: String::new(),
                })
        };
        let mut keep = vec![find(&self.text)?];
        if let Some(l) = &self.label {
            if l != &self.text {
                keep.push(find(l)?);
            }
        }
        Type::group_type_builder(root.name())
            .with_fields(keep)
            .build()
            .map_err(|e| DataError::File {
                path: self.path.clone(),
                message: format!("cannot select the columns: {e}"),
            })
    }

    pub(super) fn check_parquet(&self) -> Result<(), DataError> {
        let reader = self.parquet_reader()?;
        self.parquet_projection(&reader)?;
        if reader.metadata().file_metadata().num_rows() <= 0 {
            return Err(self.empty(EMPTY_PARQUET));
        }
        Ok(())
    }

    pub(super) fn read_parquet(&self) -> Result<Rows, DataError> {
        let reader = self.parquet_reader()?;
        let projection = self.parquet_projection(&reader)?;
        let mut rows = Rows {
            texts: Vec::new(),
            labels: self.label.as_ref().map(|_| Vec::new()),
        };
        let iter = reader.get_row_iter(Some(projection)).map_err(|e| DataError::File {
            path: self.path.clone(),
            message: format!("cannot read rows: {e}"),
        })?;
        for (i, row) in iter.enumerate() {
            let line = i as u64 + 1;
            let row = row.map_err(|e| self.row_error(line, format!("cannot read row: {e}")))?;
            let mut text = None;
            let mut label = None;
            for (name, field) in row.get_column_iter() {
                if name == &self.text {
                    text = Some(field);
                }
                if Some(name) == self.label.as_ref() {
                    label = Some(field);
                }
            }
            let text = match text.map(scalar) {
                Some(Some(t)) => t,
                _ => {
                    return Err(self.row_error(
                        line,
                        format!("row {line}: the text in column `{}` is null or not a string", self.text),
                    ))
                }
            };
            rows.texts.push(text);
            if let (Some(col), Some(labels)) = (&self.label, rows.labels.as_mut()) {
                match label.map(scalar) {
                    Some(Some(l)) if !l.trim().is_empty() => labels.push(l.trim().to_string()),
                    _ => {
                        return Err(self.row_error(
                            line,
                            format!("row {line}: empty or null label in column `{col}`; fill it in or remove the row"),
                        ))
                    }
                }
            }
        }
        Ok(rows)
    }
}

/// A text or label cell as text: strings as they are, integers and booleans printed, anything
/// else (null, lists, structs, floats, binary that is not UTF-8) `None`.
fn scalar(f: &Field) -> Option<String> {
    match f {
        Field::Str(s) => Some(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data()).ok().map(str::to_string),
        Field::Bool(b) => Some(b.to_string()),
        Field::Byte(v) => Some(v.to_string()),
        Field::Short(v) => Some(v.to_string()),
        Field::Int(v) => Some(v.to_string()),
        Field::Long(v) => Some(v.to_string()),
        Field::UByte(v) => Some(v.to_string()),
        Field::UShort(v) => Some(v.to_string()),
        Field::UInt(v) => Some(v.to_string()),
        Field::ULong(v) => Some(v.to_string()),
        _ => None,
    }
}
