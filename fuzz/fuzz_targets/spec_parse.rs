//! Spec text (and `--set` overrides) → `pipeline::parse` (the parser, the study expansion and
//! the graph checks, as every command runs them): must return Ok or Err, never panic.
//!
//! Input layout: `SPEC [\0 SET [\0 SET ...]]` — the part before the first NUL is the spec text,
//! every further NUL-separated part is one `--set` string. Non-UTF-8 parts are skipped.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    warmstart::determinism::init();
    let mut parts = data.split(|&b| b == 0);
    let Some(Ok(text)) = parts.next().map(std::str::from_utf8) else {
        return;
    };
    let sets: Vec<String> = parts
        .take(4)
        .filter_map(|p| std::str::from_utf8(p).ok())
        .map(str::to_string)
        .collect();
    if let Err(e) = warmstart::pipeline::parse(Path::new("fuzz.yaml"), text, &sets) {
        // Formatting the errors is part of what a user sees; it must not panic either.
        let _ = e.to_string();
    }
    // Without overrides too, so that a bad `--set` does not hide the rest of the parser.
    if !sets.is_empty() {
        let _ = warmstart::pipeline::parse(Path::new("fuzz.yaml"), text, &[]);
    }
});
