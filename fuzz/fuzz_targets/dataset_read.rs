//! File bytes → every dataset reader (csv, tsv, jsonl, txt), `check_columns` and `read`: each
//! must return Ok or Err, never panic.
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use warmstart::dataset::{DatasetSpec, Format};

fuzz_target!(|data: &[u8]| {
    warmstart::determinism::init();
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(data).expect("write temp file");
    file.flush().expect("flush temp file");
    for format in [Format::Csv, Format::Tsv, Format::Jsonl, Format::Txt] {
        // txt datasets have no labels (the spec rejects `label` on them).
        let labels: &[Option<&str>] = if format == Format::Txt {
            &[None]
        } else {
            &[Some("label"), None]
        };
        for label in labels {
            let ds = DatasetSpec {
                name: "fuzz".into(),
                path: file.path().to_path_buf(),
                rel_path: "fuzz".into(),
                format,
                text: "text".into(),
                label: label.map(str::to_string),
            };
            if let Err(e) = ds.check_columns() {
                let _ = e.to_string();
            }
            match ds.read() {
                Ok(rows) => {
                    if let Some(labels) = &rows.labels {
                        assert_eq!(labels.len(), rows.texts.len(), "one label per text");
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                }
            }
        }
    }
});
