//! What a spec problem looks like ([`SpecError`]: file, line, column, field, message) and how
//! serde's messages are made to read as instructions.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::{Override, SpanIndex};

/// One problem in a spec, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The spec file (as given on the command line).
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted field path, e.g. `stages.tok.vocab_size`; empty for the whole file.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// Set when the offending value came from `--set` rather than from the file.
    pub from_override: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        if !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(o) = &self.from_override {
            write!(f, " (value given by {o})")?;
        }
        Ok(())
    }
}

/// All problems found in one spec (at least one).
#[derive(Debug, Clone)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

pub(super) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a mapping".into(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

pub(super) fn locate(
    file: &Path,
    spans: &SpanIndex,
    overrides: &[Override],
    field: &str,
    message: String,
) -> SpecError {
    let o = overrides.iter().rev().find(|o| {
        let p = &o.path;
        field == p || field.starts_with(&format!("{p}.")) || field.starts_with(&format!("{p}["))
    });
    let from_override = o.map(|o| o.origin.clone());
    let pos = match o.and_then(|o| o.at.as_deref()) {
        Some(at) => spans.find(at),
        None => spans.find(field),
    };
    SpecError {
        file: file.to_path_buf(),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        field: field.to_string(),
        message,
        from_override,
    }
}
