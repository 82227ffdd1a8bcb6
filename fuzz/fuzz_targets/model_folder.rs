//! Bytes → a model folder (`model.json`, `model.safetensors`, `tokenizer.json`) → `Predictor`
//! and a prediction: a folder whose files are broken or do not belong together must be
//! rejected with an error, never panic (issue: predict --model exited 101 on such folders).
//!
//! Framing: `u32 LE` length of model.json, `u32 LE` length of model.safetensors, then
//! model.json, model.safetensors and the rest as tokenizer.json (safetensors files contain
//! NUL bytes, so no separator can be used).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warmstart::predict::Predictor;

fuzz_target!(|data: &[u8]| {
    warmstart::determinism::init();
    if data.len() < 8 {
        return;
    }
    let a = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let b = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let rest = &data[8..];
    if a > rest.len() || b > rest.len() - a {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("model.json"), &rest[..a]).expect("write");
    std::fs::write(dir.path().join("model.safetensors"), &rest[a..a + b]).expect("write");
    std::fs::write(dir.path().join("tokenizer.json"), &rest[a + b..]).expect("write");
    if let Ok(p) = Predictor::from_dir(dir.path()) {
        let _ = p.predict(&["a fine day".to_string(), String::new()]);
    }
});
