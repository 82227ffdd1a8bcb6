//! How the training loops write their state into a [`Checkpoint`] and read it back.
//!
//! A loop's state is a serde struct (`state.json`: counters, the shuffled order, the logs, the
//! generator's position) plus named tensors (`tensors.safetensors`: parameters under `p.`,
//! optimiser moments under `m.`/`v.`, best-so-far parameters under `best.`). Floats in the JSON
//! read back bit-exact (serde_json's `float_roundtrip`), and the generator is restored by its
//! word position, so a resumed loop is the uninterrupted one.

use std::path::Path;

use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Dev, Params};
use crate::checkpoint::Checkpoint;

const STATE: &str = "state.json";
const TENSORS: &str = "tensors.safetensors";

/// Saves `state` and `tensors` as the checkpoint after `epoch` completed epochs.
pub fn save<S: Serialize>(ckpt: &Checkpoint, epoch: usize, state: &S, tensors: &Params) {
    ckpt.save(epoch, |dir| {
        std::fs::write(dir.join(STATE), serde_json::to_vec(state)?)?;
        tensors.save(&dir.join(TENSORS))
    });
}

/// The newest usable checkpoint: (completed epochs, state, tensors). One that cannot be read
/// as this loop's state is reported and ignored, so training starts over rather than fails.
pub fn load<S: DeserializeOwned>(dev: &Dev, ckpt: &Checkpoint) -> Option<(usize, S, Params)> {
    let (epoch, (state, tensors)) = load_with(ckpt, |dir| {
        Ok((read_state(dir)?, Params::load(dev, &dir.join(TENSORS))?))
    })?;
    Some((epoch, state, tensors))
}

/// Saves `state` alone (a loop without tensors, e.g. the logistic head's self-training).
pub fn save_state<S: Serialize>(ckpt: &Checkpoint, epoch: usize, state: &S) {
    ckpt.save(epoch, |dir| {
        Ok(std::fs::write(dir.join(STATE), serde_json::to_vec(state)?)?)
    });
}

/// The newest usable checkpoint [`save_state`] wrote: (completed epochs, state).
pub fn load_state<S: DeserializeOwned>(ckpt: &Checkpoint) -> Option<(usize, S)> {
    load_with(ckpt, read_state)
}

/// The newest complete checkpoint, read by `read`; marked as resumed if it reads, reported and
/// ignored if not.
fn load_with<T>(ckpt: &Checkpoint, read: impl FnOnce(&Path) -> Result<T>) -> Option<(usize, T)> {
    let (epoch, dir) = ckpt.latest()?;
    match read(&dir) {
        Ok(t) => {
            ckpt.mark_resumed(epoch);
            Some((epoch, t))
        }
        Err(e) => {
            eprintln!("warning: ignoring checkpoint {}: {e:#}", dir.display());
            None
        }
    }
}

fn read_state<S: DeserializeOwned>(dir: &Path) -> Result<S> {
    let text = std::fs::read(dir.join(STATE)).context("no state.json")?;
    serde_json::from_slice(&text).context("state.json does not fit this training loop")
}

/// `from`'s tensors under `prefix` added to `into`.
pub fn put(into: &mut Params, prefix: &str, from: &Params) {
    for (k, t) in &from.tensors {
        into.tensors.insert(format!("{prefix}{k}"), t.clone());
    }
}

/// The tensors of `from` under `prefix`, with the prefix removed.
pub fn take(from: &Params, prefix: &str) -> Params {
    let mut p = Params::default();
    for (k, t) in &from.tensors {
        if let Some(name) = k.strip_prefix(prefix) {
            p.tensors.insert(name.to_string(), t.clone());
        }
    }
    p
}

/// The generator's position as text (a u128 does not fit JSON numbers).
pub fn rng_pos(rng: &ChaCha8Rng) -> String {
    rng.get_word_pos().to_string()
}

/// Moves `rng` (seeded as at the start) to a position [`rng_pos`] recorded.
pub fn set_rng_pos(rng: &mut ChaCha8Rng, pos: &str) -> Result<()> {
    rng.set_word_pos(pos.parse().context("bad generator position in checkpoint")?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    /// A generator restored from its recorded position continues with the same draws, also
    /// after draws of mixed widths (which leave half-used words in its buffer).
    #[test]
    fn a_restored_generator_continues_the_same_sequence() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let _: f64 = a.gen();
        let _: u32 = a.gen();
        let _ = a.gen_bool(0.3);
        let pos = rng_pos(&a);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        set_rng_pos(&mut b, &pos).unwrap();
        let (x, y): (Vec<u64>, Vec<u64>) = ((0..5).map(|_| a.gen()).collect(), (0..5).map(|_| b.gen()).collect());
        assert_eq!(x, y);
    }
}
