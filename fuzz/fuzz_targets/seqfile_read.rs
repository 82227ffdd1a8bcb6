//! File bytes → `read_ragged` and `read_padded`: bounds-checked by design, so they must return
//! Ok or Err, never panic; and what they accept must be safe to index row by row.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use warmstart::seqfile;

fuzz_target!(|data: &[u8]| {
    warmstart::determinism::init();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write temp file");
    file.flush().expect("flush temp file");
    if let Ok(r) = seqfile::read_ragged(file.path()) {
        for i in 0..r.len() {
            let _ = r.row(i);
        }
    }
    if let Ok(p) = seqfile::read_padded(file.path()) {
        for i in 0..p.rows() {
            let _ = p.row(i);
            let _ = p.mask_row(i);
        }
    }
});
