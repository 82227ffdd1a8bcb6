//! Word2vec-style CBOW pretraining with negative sampling: predict each token from the mean of
//! the embeddings around it. It learns the encoder's input embeddings — the part of a `bag`
//! classifier that transfers — at a tiny fraction of a language model's cost.
//!
//! This is a hand-written kernel, not dfdx autodiff: each example touches only `2·window`
//! input rows and `negatives + 1` output rows, and the update is sparse. Through dfdx the same
//! objective materialises dense vocabulary-sized gradients and optimiser state every step and
//! ran at ~37 k tokens/s; this loop runs at several hundred thousand per second on one core
//! (BENCHMARKS.md). The gradients are word2vec's (Mikolov et al. 2013), with its linearly
//! decaying learning rate.
//!
//! **Parallel, yet the same bytes on any thread count.** word2vec and fastText run threads
//! that update shared tables without locks (Hogwild), so their vectors depend on timing. Here
//! each epoch's shuffled rows are cut into rounds of `shards` consecutive slices (~16 k tokens
//! each); the slices of a round train in parallel, each sequentially on its own copy of the
//! tables with its own generator (seeded from seed, epoch, round and slice), and after the
//! round the copies are merged in slice order ([`merge`]: base plus the sum of the changes)
//! and agree again. Nothing depends on
//! which thread ran which slice, so `--jobs 1` and `--jobs 4` write the same vectors; `shards`
//! (a parameter in the key, 1 or 2: more diverged, see [`merge`]) is the most cores it uses. Each copy sees the others' updates
//! one round late — the staleness Hogwild also has, bounded and deterministic here.

use anyhow::{bail, Result};
use dfdx::prelude::TensorFromVec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::WeightedAliasIndex;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod shards;

use super::{resume, Dev, Params};
use shards::{merge, slices, Job, Tables, ROUND_TOKENS};

#[derive(Debug, Clone)]
pub struct CbowSettings {
    /// Skip-gram (each context word predicts the centre on its own) instead of CBOW (their
    /// mean does). Slower by the window size; better vectors for rare words.
    pub skipgram: bool,
    pub dim: usize,
    pub window: usize,
    pub negatives: usize,
    pub epochs: usize,
    /// Starting learning rate (word2vec's `alpha`), decayed linearly to 1e-4 of it.
    pub lr: f32,
    pub seed: u64,
    /// Share of rows held out to report the held-out loss.
    pub held_out: f64,
    /// Frequent-token subsampling threshold `t` (word2vec's `sample`; 0 = off). Each epoch an
    /// occurrence of a token with corpus share `f > t` is dropped with probability
    /// `1 - (sqrt(f/t) + 1)·t/f`, before windows are formed. Words like "the" then stop
    /// dominating the updates and the windows reach further, which is what gives content
    /// words their topical neighbours.
    pub subsample: f64,
    /// Slices of each round trained in parallel on private copies of the tables and merged
    /// after it (see [`merge`]); results depend on this number, never on the thread count.
    /// 1 = word2vec's sequential loop.
    pub shards: usize,
}

/// Keep probability of each token id under word2vec's subsampling with threshold `t`.
pub fn keep_probabilities(counts: &[f64], t: f64) -> Vec<f64> {
    let total: f64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if t <= 0.0 || c == 0.0 {
                return 1.0;
            }
            let f = c / total;
            ((f / t).sqrt() + 1.0) * t / f
        })
        .map(|p| p.min(1.0))
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainLog {
    pub epoch: usize,
    /// Mean negative-sampling loss per token: -log σ(h·u₊) - Σ log σ(-h·u₋).
    pub train_loss: f64,
    pub held_out_loss: f64,
    /// Language-model objectives: `exp(held_out_loss)` under the full softmax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out_perplexity: Option<f64>,
}

/// Rows without special tokens, keeping those with context (two or more tokens).
fn usable(rows: &[Vec<u32>], specials: u32) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|r| r.iter().copied().filter(|&i| i >= specials).collect::<Vec<u32>>())
        .filter(|r| r.len() >= 2)
        .collect()
}

/// What [`train`] needs to continue after an epoch (see `resume.rs`); the input and output
/// tables travel as tensors `emb` and `out`.
#[derive(Serialize, Deserialize)]
struct CbowState {
    rng: String,
    order: Vec<usize>,
    log: Vec<PretrainLog>,
    speed: Vec<f64>,
    seen: usize,
}

/// The name of word2vec's output (context) table in the parameters [`train`] returns; the
/// pretrain stage stores it beside the encoder so that a later stage can continue training.
pub const OUTPUT: &str = "w2v.output";

/// Trains input embeddings (`encoder.embedding`, vocab × dim) on token rows `data`, starting
/// from random input and zero output tables, or from `start` = (input, output) tables of an
/// earlier run (task-adaptive pretraining continues both, as word2vec would had it not
/// stopped). Returns both tables (`encoder.embedding`, [`OUTPUT`]), the per-epoch losses, and
/// the training speed in tokens per second (kept out of the artefact: it is the one thing
/// that differs between identical runs).
pub fn train(
    dev: &Dev,
    data: &[Vec<u32>],
    vocab: usize,
    specials: usize,
    s: &CbowSettings,
    start: Option<(Vec<f32>, Vec<f32>)>,
    lc: super::LoopCtx,
) -> Result<(Params, Vec<PretrainLog>, f64)> {
    let progress = lc.progress;
    let (train_rows, held_rows) = super::split_held_out(usable(data, specials as u32), s.held_out);
    let tokens: usize = train_rows.iter().map(Vec::len).sum();
    if tokens == 0 {
        bail!("the pretraining text has no row with two or more tokens; word2vec needs context");
    }
    // Negative-sampling distribution: unigram counts ^ 0.75, as word2vec.
    let mut counts = vec![0f64; vocab];
    train_rows.iter().flatten().for_each(|&t| counts[t as usize] += 1.0);
    let weights: Vec<f64> = counts.iter().map(|c| c.powf(0.75)).collect();
    // Walker's alias table: one draw costs O(1), where a binary search over the cumulative
    // weights (rand's WeightedIndex) costs ~16 cache misses for a 50 k vocabulary — and there
    // are `negatives` draws per context word.
    let table = WeightedAliasIndex::new(weights).map_err(|e| anyhow::anyhow!("sampling table: {e}"))?;
    let keep = keep_probabilities(&counts, s.subsample);

    let d = s.dim;
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut base = match start {
        Some((emb, out)) => {
            if emb.len() != vocab * d || out.len() != vocab * d {
                bail!(
                    "the starting tables have {} and {} values, not {vocab} × {d}",
                    emb.len(),
                    out.len()
                );
            }
            Tables::new(emb, out, d)
        }
        None => {
            let emb: Vec<f32> = (0..vocab * d).map(|_| (rng.gen::<f32>() - 0.5) / d as f32).collect();
            Tables::new(emb, vec![0.0; vocab * d], d)
        }
    };
    let n_shards = s.shards.max(1);
    let mut buf = shards::Scratch::new(s.negatives, d);
    let mut ctx = Vec::with_capacity(2 * s.window);
    let total = (tokens * s.epochs) as f64;
    let mut seen = 0usize;
    let mut order: Vec<usize> = (0..train_rows.len()).collect();
    let mut log = Vec::new();
    let mut speed = Vec::new();
    let mut first = 0;
    progress.set_length((s.epochs * train_rows.len()) as u64);
    if let Some((done, st, tensors)) = resume::load::<CbowState>(dev, lc.checkpoint) {
        let table = |name: &str| -> Result<Vec<f32>> {
            let v = tensors.get(name)?.as_vec();
            if v.len() != vocab * d {
                bail!("checkpoint's `{name}` has {} values, not {}", v.len(), vocab * d);
            }
            Ok(v)
        };
        base = Tables::new(table("emb")?, table("out")?, d);
        resume::set_rng_pos(&mut rng, &st.rng)?;
        (order, log, speed, seen, first) = (st.order, st.log, st.speed, st.seen, done);
        progress.resumed(done, (done * train_rows.len()) as u64);
    }
    // Every shard trains on a private copy; after each round they agree again (`merge`).
    let mut shards: Vec<Tables> = (0..n_shards).map(|_| base.clone()).collect();
    let job = Job {
        rows: &train_rows,
        keep: &keep,
        table: &table,
        s,
        total,
        n_shards,
    };
    for epoch in first..s.epochs {
        use rand::seq::SliceRandom;
        let started = std::time::Instant::now();
        order.shuffle(&mut rng);
        let (mut sum, mut examples) = (0.0f64, 0usize);
        let slices = slices(&order, &train_rows, ROUND_TOKENS);
        for (round, group) in slices.chunks(n_shards).enumerate() {
            let at = seen;
            let done: Vec<(f64, usize, usize)> = shards
                .par_iter_mut()
                .zip(group.par_iter())
                .enumerate()
                .map(|(k, (sh, part))| {
                    let mut r = ChaCha8Rng::seed_from_u64(s.seed);
                    r.set_stream(1 + ((epoch as u64) << 40 | (round as u64) << 8 | k as u64));
                    job.train_slice(sh, part, at, &mut r)
                })
                .collect();
            for (l, e, n) in done {
                sum += l;
                examples += e;
                seen += n;
            }
            merge(&mut base, &mut shards);
            progress.inc(group.iter().map(|p| p.len() as u64).sum());
        }
        if !sum.is_finite() {
            bail!("pretraining loss became {sum} in epoch {}; lower `lr`", epoch + 1);
        }
        let secs = started.elapsed().as_secs_f64();
        // Held-out loss with a fixed sampler and full windows, so epochs are comparable.
        let mut hr = ChaCha8Rng::seed_from_u64(s.seed ^ 0xbeef);
        let (mut hsum, mut hn) = (0.0f64, 0usize);
        for row in &held_rows {
            for i in 0..row.len() {
                ctx.clear();
                ctx.extend(
                    (i.saturating_sub(s.window)..(i + s.window + 1).min(row.len()))
                        .filter(|&j| j != i)
                        .map(|j| row[j]),
                );
                hsum += base.example(&ctx, row[i], s.skipgram, (&table, &mut hr), 0.0, &mut buf) as f64;
                hn += 1;
            }
        }
        log.push(PretrainLog {
            epoch: epoch + 1,
            train_loss: sum / examples.max(1) as f64,
            held_out_loss: if hn == 0 { f64::NAN } else { hsum / hn as f64 },
            held_out_perplexity: None,
        });
        speed.push(tokens as f64 / secs.max(1e-9));
        if let Some(l) = log.last() {
            let measured = format!("train loss {:.4}, held-out loss {:.4}", l.train_loss, l.held_out_loss);
            progress.epoch(epoch + 1, s.epochs, &measured);
        }
        if epoch + 1 < s.epochs && lc.checkpoint.due() {
            let mut tensors = Params::default();
            for (name, v) in [("emb", &base.emb), ("out", &base.out)] {
                tensors
                    .tensors
                    .insert(name.into(), dev.tensor_from_vec(v.clone(), (vocab, d)));
            }
            let state = CbowState {
                rng: resume::rng_pos(&rng),
                order: order.clone(),
                log: log.clone(),
                speed: speed.clone(),
                seen,
            };
            resume::save(lc.checkpoint, epoch + 1, &state, &tensors);
        }
    }
    drop(shards);
    let t = base;
    let mut params = Params::default();
    params
        .tensors
        .insert("encoder.embedding".into(), dev.tensor_from_vec(t.emb, (vocab, d)));
    params
        .tensors
        .insert(OUTPUT.into(), dev.tensor_from_vec(t.out, (vocab, d)));
    Ok((params, log, speed.iter().sum::<f64>() / speed.len().max(1) as f64))
}

#[cfg(test)]
mod tests {
    /// word2vec's subsampling: rare tokens always kept, a token with share f > t kept with
    /// probability (sqrt(f/t) + 1)·t/f, nothing dropped when it is off.
    #[test]
    fn subsampling_drops_only_frequent_tokens() {
        // Shares 0.9, 0.0999, 0.0001 of the corpus.
        let counts = [0.0, 9000.0, 999.0, 1.0];
        let p = super::keep_probabilities(&counts, 1e-3);
        assert_eq!(p[0], 1.0);
        assert!((p[1] - ((0.9f64 / 1e-3).sqrt() + 1.0) * 1e-3 / 0.9).abs() < 1e-12);
        assert!(p[1] < 0.04 && p[2] > p[1] && p[2] < 0.2, "{p:?}");
        assert_eq!(p[3], 1.0);
        assert!(super::keep_probabilities(&counts, 0.0).iter().all(|&k| k == 1.0));
    }
}
