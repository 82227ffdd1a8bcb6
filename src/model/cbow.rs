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

use super::ops::dot;
use super::{resume, Dev, Params};

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

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

/// Tokens (before subsampling) in one shard's slice of a round. Small enough that the shards'
/// copies stay close (each sees the others' updates after at most this much text; word2vec's
/// own Hogwild threads drift apart by less), large enough that merging — a pass over the rows
/// touched — is a few percent of the round's work.
const ROUND_TOKENS: usize = 16_384;

/// The input (`emb`) and output (`out`) tables, and which rows changed since the last merge.
#[derive(Clone)]
struct Tables {
    emb: Vec<f32>,
    out: Vec<f32>,
    d: usize,
    touched_emb: Vec<bool>,
    touched_out: Vec<bool>,
}

impl Tables {
    fn new(emb: Vec<f32>, out: Vec<f32>, d: usize) -> Tables {
        let rows = emb.len() / d.max(1);
        Tables {
            emb,
            out,
            d,
            touched_emb: vec![false; rows],
            touched_out: vec![false; rows],
        }
    }

    /// One position: CBOW (one step from the context mean) or skip-gram (one step per context
    /// word), each with freshly sampled negatives. Returns the mean loss.
    #[allow(clippy::too_many_arguments)]
    fn example(
        &mut self,
        ctx: &[u32],
        centre: u32,
        skipgram: bool,
        negs: &mut [u32],
        table: &WeightedAliasIndex<f64>,
        rng: &mut ChaCha8Rng,
        lr: f32,
        h: &mut [f32],
        grad: &mut [f32],
    ) -> f32 {
        if !skipgram {
            negs.iter_mut().for_each(|x| *x = rng.sample(table) as u32);
            return self.step(ctx, centre, negs, lr, h, grad);
        }
        let mut loss = 0.0;
        for &c in ctx {
            negs.iter_mut().for_each(|x| *x = rng.sample(table) as u32);
            loss += self.step(&[c], centre, negs, lr, h, grad);
        }
        loss / ctx.len() as f32
    }

    /// One CBOW example; updates the tables when `lr > 0`. Returns its loss.
    fn step(&mut self, ctx: &[u32], centre: u32, negs: &[u32], lr: f32, h: &mut [f32], grad: &mut [f32]) -> f32 {
        let d = self.d;
        h.fill(0.0);
        for &c in ctx {
            let row = &self.emb[c as usize * d..(c as usize + 1) * d];
            h.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let inv = 1.0 / ctx.len() as f32;
        h.iter_mut().for_each(|a| *a *= inv);
        grad.fill(0.0);
        let mut loss = 0.0f32;
        for (k, &o) in std::iter::once(&centre).chain(negs).enumerate() {
            if k > 0 && o == centre {
                continue;
            }
            let label = if k == 0 { 1.0 } else { 0.0 };
            let u = &mut self.out[o as usize * d..(o as usize + 1) * d];
            // Eight running sums (ops::dot), not one serial chain: most of skip-gram's time.
            let s = sigmoid(dot(u, h));
            loss -= if k == 0 {
                s.max(1e-7).ln()
            } else {
                (1.0 - s).max(1e-7).ln()
            };
            if lr > 0.0 {
                let g = (label - s) * lr;
                grad.iter_mut().zip(u.iter()).for_each(|(a, b)| *a += g * b);
                u.iter_mut().zip(h.iter()).for_each(|(a, b)| *a += g * b);
                self.touched_out[o as usize] = true;
            }
        }
        if lr > 0.0 {
            for &c in ctx {
                let row = &mut self.emb[c as usize * d..(c as usize + 1) * d];
                row.iter_mut().zip(grad.iter()).for_each(|(a, b)| *a += b);
                self.touched_emb[c as usize] = true;
            }
        }
        loss
    }
}

/// What every shard of every round reads.
struct Job<'a> {
    rows: &'a [Vec<u32>],
    keep: &'a [f64],
    table: &'a WeightedAliasIndex<f64>,
    s: &'a CbowSettings,
    /// Tokens of all epochs, for the learning-rate decay.
    total: f64,
    n_shards: usize,
}

impl Job<'_> {
    /// Trains `t` on rows `part` (sequentially: word2vec's loop), the epoch having seen `at`
    /// tokens before this round. Returns (summed loss, examples, tokens read).
    fn train_slice(&self, t: &mut Tables, part: &[usize], at: usize, rng: &mut ChaCha8Rng) -> (f64, usize, usize) {
        let (s, d) = (self.s, t.d);
        let (mut h, mut grad) = (vec![0f32; d], vec![0f32; d]);
        let mut negs = vec![0u32; s.negatives];
        let mut ctx = Vec::with_capacity(2 * s.window);
        let mut kept: Vec<u32> = Vec::new();
        let (mut sum, mut examples, mut local) = (0.0f64, 0usize, 0usize);
        for &r in part {
            let full = &self.rows[r];
            // Where this row falls in the whole run, counting the other shards' text as read
            // at the same pace: the linear decay of word2vec.
            let pos = at as f64 + (local * self.n_shards) as f64;
            let lr = s.lr * (1.0 - pos / self.total).max(1e-4) as f32;
            kept.clear();
            kept.extend(full.iter().copied().filter(|&t| {
                let p = self.keep[t as usize];
                p >= 1.0 || rng.gen::<f64>() < p
            }));
            let row = &kept;
            // A row that subsampling left without context trains nothing.
            let positions = if row.len() >= 2 { row.len() } else { 0 };
            examples += positions;
            for i in 0..positions {
                // word2vec's dynamic window: a random effective size in 1..=window.
                let w = rng.gen_range(1..=s.window);
                ctx.clear();
                ctx.extend(
                    (i.saturating_sub(w)..(i + w + 1).min(row.len()))
                        .filter(|&j| j != i)
                        .map(|j| row[j]),
                );
                sum += t.example(
                    &ctx, row[i], s.skipgram, &mut negs, self.table, rng, lr, &mut h, &mut grad,
                ) as f64;
            }
            local += full.len();
        }
        (sum, examples, local)
    }
}

/// `order` cut into consecutive slices of at least `per` tokens each (the last: the rest).
fn slices<'a>(order: &'a [usize], rows: &[Vec<u32>], per: usize) -> Vec<&'a [usize]> {
    let mut out = Vec::new();
    let (mut start, mut n) = (0, 0);
    for (i, &r) in order.iter().enumerate() {
        n += rows[r].len();
        if n >= per {
            out.push(&order[start..=i]);
            (start, n) = (i + 1, 0);
        }
    }
    if start < order.len() {
        out.push(&order[start..]);
    }
    out
}

/// Brings the shards back to one state: a row one shard changed takes its value; a row
/// several changed takes the base plus the sum of their changes, added in shard order (so the
/// result is the same on any number of threads); then every shard gets the merged rows.
///
/// Measured on english_unlabelled_corpus (4.7 M tokens, dim 128, 5 epochs), held-out loss:
/// sequential 2.762–2.765; 2 shards summed 2.763; 4 shards summed *diverged* (96: a frequent
/// row gets thousands of updates per round in every shard, all from the same start, so four
/// stale sums overshoot); 2 shards averaged 2.769 on the corpus but on the quickstart's small
/// vocabulary, where every row is shared, averaging halves every update (fine-tuned accuracy
/// 0.71 against 0.95). Hence the sum, and at most two shards.
fn merge(base: &mut Tables, shards: &mut [Tables]) {
    let d = base.d;
    for out in [false, true] {
        let marks = |t: &Tables, r: usize| if out { t.touched_out[r] } else { t.touched_emb[r] };
        fn rows_of(t: &Tables, out: bool) -> &[f32] {
            if out {
                &t.out
            } else {
                &t.emb
            }
        }
        let vocab = base.emb.len() / d.max(1);
        let changed: Vec<usize> = (0..vocab).filter(|&r| shards.iter().any(|t| marks(t, r))).collect();
        {
            let view: &[Tables] = shards;
            let table = if out { &mut base.out } else { &mut base.emb };
            table.par_chunks_mut(d).enumerate().for_each(|(r, row)| {
                let mut by = view.iter().filter(|t| marks(t, r));
                let Some(first) = by.next() else { return };
                let src = &rows_of(first, out)[r * d..(r + 1) * d];
                if by.next().is_none() {
                    row.copy_from_slice(src);
                    return;
                }
                for (i, x) in row.iter_mut().enumerate() {
                    let b = *x;
                    let mut acc = 0.0f32;
                    for t in view.iter().filter(|t| marks(t, r)) {
                        acc += rows_of(t, out)[r * d + i] - b;
                    }
                    *x = b + acc;
                }
            });
        }
        let merged = if out { &base.out } else { &base.emb };
        shards.par_iter_mut().for_each(|t| {
            let (table, marks) = if out {
                (&mut t.out, &mut t.touched_out)
            } else {
                (&mut t.emb, &mut t.touched_emb)
            };
            for &r in &changed {
                table[r * d..(r + 1) * d].copy_from_slice(&merged[r * d..(r + 1) * d]);
                marks[r] = false;
            }
        });
    }
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
    let (mut h, mut grad) = (vec![0f32; d], vec![0f32; d]);
    let mut negs = vec![0u32; s.negatives];
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
                hsum += base.example(
                    &ctx, row[i], s.skipgram, &mut negs, &table, &mut hr, 0.0, &mut h, &mut grad,
                ) as f64;
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
