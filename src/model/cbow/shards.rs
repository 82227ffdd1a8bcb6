//! The parallel machinery of word2vec training (see the parent module's docs): the tables a
//! shard trains on its own copy of, the sequential per-slice loop (word2vec's), how an epoch's
//! rows are cut into slices, and the merge that brings the shards back to one state.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::WeightedAliasIndex;
use rayon::prelude::*;

use super::CbowSettings;
use crate::model::ops::dot;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-30.0, 30.0)).exp())
}

/// Tokens (before subsampling) in one shard's slice of a round. Small enough that the shards'
/// copies stay close (each sees the others' updates after at most this much text; word2vec's
/// own Hogwild threads drift apart by less), large enough that merging — a pass over the rows
/// touched — is a few percent of the round's work.
pub(super) const ROUND_TOKENS: usize = 16_384;

/// The input (`emb`) and output (`out`) tables, and which rows changed since the last merge.
#[derive(Clone)]
pub(super) struct Tables {
    pub(super) emb: Vec<f32>,
    pub(super) out: Vec<f32>,
    pub(super) d: usize,
    touched_emb: Vec<bool>,
    touched_out: Vec<bool>,
}

/// One example's working buffers, allocated once per training loop: the sampled negatives
/// and two `d`-wide rows (the hidden vector and its gradient).
pub(super) struct Scratch {
    negs: Vec<u32>,
    h: Vec<f32>,
    grad: Vec<f32>,
}

impl Scratch {
    pub(super) fn new(negatives: usize, d: usize) -> Scratch {
        Scratch {
            negs: vec![0; negatives],
            h: vec![0.0; d],
            grad: vec![0.0; d],
        }
    }
}

impl Tables {
    pub(super) fn new(emb: Vec<f32>, out: Vec<f32>, d: usize) -> Tables {
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
    /// word), each with negatives freshly drawn from `negatives` (the unigram table and the
    /// random stream). Returns the mean loss.
    pub(super) fn example(
        &mut self,
        ctx: &[u32],
        centre: u32,
        skipgram: bool,
        negatives: (&WeightedAliasIndex<f64>, &mut ChaCha8Rng),
        lr: f32,
        buf: &mut Scratch,
    ) -> f32 {
        let (table, rng) = negatives;
        let Scratch { negs, h, grad } = buf;
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
pub(super) struct Job<'a> {
    pub(super) rows: &'a [Vec<u32>],
    pub(super) keep: &'a [f64],
    pub(super) table: &'a WeightedAliasIndex<f64>,
    pub(super) s: &'a CbowSettings,
    /// Tokens of all epochs, for the learning-rate decay.
    pub(super) total: f64,
    pub(super) n_shards: usize,
}

impl Job<'_> {
    /// Trains `t` on rows `part` (sequentially: word2vec's loop), the epoch having seen `at`
    /// tokens before this round. Returns (summed loss, examples, tokens read).
    pub(super) fn train_slice(
        &self,
        t: &mut Tables,
        part: &[usize],
        at: usize,
        rng: &mut ChaCha8Rng,
    ) -> (f64, usize, usize) {
        let (s, d) = (self.s, t.d);
        let mut buf = Scratch::new(s.negatives, d);
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
                sum += t.example(&ctx, row[i], s.skipgram, (self.table, &mut *rng), lr, &mut buf) as f64;
            }
            local += full.len();
        }
        (sum, examples, local)
    }
}

/// `order` cut into consecutive slices of at least `per` tokens each (the last: the rest).
pub(super) fn slices<'a>(order: &'a [usize], rows: &[Vec<u32>], per: usize) -> Vec<&'a [usize]> {
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
pub(super) fn merge(base: &mut Tables, shards: &mut [Tables]) {
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
