//! Reproducible tokenizer training.
//!
//! The `tokenizers` crate counts words and pairs in `ahash` maps and breaks ties between equally
//! frequent merges by ids that follow those maps' iteration order. ahash seeds every map from
//! OS randomness, so two runs over the same text could produce different vocabularies (about 10 %
//! of a 1.5 k vocabulary differed between two runs of the quickstart). warmstart promises the
//! same artefacts for the same spec, seed and thread count, so:
//!
//! 1. getrandom (0.3/0.4) is routed to [`__getrandom_v03_custom`], a fixed splitmix64 stream
//!    (`.cargo/config.toml` sets `getrandom_backend="custom"`); ahash draws its fixed keys from it;
//! 2. [`init`] installs a constant per-map seed source in ahash (by default it mixes in a heap
//!    address, which varies with ASLR);
//! 3. the tokenize stage trains with the crate's internal parallelism off, so maps are filled
//!    in a deterministic order.
//!
//! Nothing in warmstart uses getrandom for security; every random choice warmstart makes itself
//! comes from a ChaCha generator seeded by the spec's seed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

struct ConstantSeeds;

impl ahash::random_state::RandomSource for ConstantSeeds {
    fn gen_hasher_seed(&self) -> usize {
        0x5eed_cafe
    }
}

/// Must run before the first hash map of the tokenizers crate is created (the CLI calls it
/// first thing; the tokenize stage calls it again, harmlessly).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = ahash::random_state::set_random_source(ConstantSeeds);
    });
}

static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// getrandom's custom backend: a deterministic splitmix64 stream.
///
/// # Safety
/// Called by getrandom with a valid, writable `dest` of `len` bytes.
#[no_mangle]
unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) -> Result<(), getrandom::Error> {
    let out = std::slice::from_raw_parts_mut(dest, len);
    for chunk in out.chunks_mut(8) {
        let mut z = STATE
            .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}
