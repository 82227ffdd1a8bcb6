//! A problem with one field of a spec, found by a check the types alone cannot make (a value
//! out of range, an option that does not apply): which field, relative to the stage (or the
//! block) that checked it, and what is wrong. The spec loader adds the stage's path and the
//! file's line and column.

/// One field's problem, e.g. `encoder.heads`: "dim 60 is not divisible by heads 8".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path below the checked stage or block; empty for the stage itself.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: String, message: String) -> Problem {
        Problem { field, message }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}
