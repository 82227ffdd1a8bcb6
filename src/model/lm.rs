//! Language-model pretraining of a whole encoder: `lm` (next token, as in ULMFiT; an LSTM, or
//! a transformer with causal attention) and `mlm` (masked tokens, as in BERT; a transformer).
//!
//! The output layer is where CPU budgets go (the seed's Keras LM spent ~80 % of its time in an
//! 8000-way softmax), so it is made cheap three ways: the output embeddings are the input
//! embeddings (tied, no extra parameters); `mlm` computes logits only at the masked positions;
//! and training uses a sampled softmax — the batch's targets plus `candidates` ids drawn from
//! the unigram distribution raised to 0.75 — computed by one fused op. The held-out loss and
//! perplexity use the full softmax over the vocabulary, so they are comparable across settings.

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::adam::Adam;
use super::cbow::PretrainLog;
use super::encoder::{EncoderSpec, Tokens};
use super::{check_finite, ops, resume, Dev, Params, Tp};
use crate::artefact::MASK_ID;

#[derive(Debug, Clone)]
pub struct LmSettings {
    /// Masked (`true`) or next-token (`false`) objective.
    pub masked: bool,
    pub epochs: usize,
    pub batch_size: usize,
    /// Pieces of text are at most this many tokens.
    pub max_len: usize,
    pub lr: f32,
    /// Sampled negatives per batch; 0 = full softmax.
    pub candidates: usize,
    /// mlm: share of tokens to predict.
    pub mask_prob: f64,
    pub seed: u64,
    pub held_out: f64,
}

/// One batch: inputs (ids, mask), and the positions (row-major index) to predict with targets.
/// Public so that `benches/train_throughput.rs` times the same step [`train`] takes.
pub struct Batch {
    /// Positions per row (`ids.len() / len` rows).
    pub len: usize,
    pub ids: Vec<u32>,
    pub mask: Vec<u8>,
    pub at: Vec<usize>,
    pub targets: Vec<u32>,
}

fn make_batch(pieces: &[&[u32]], l: usize, s: &LmSettings, vocab: usize, specials: u32, rng: &mut ChaCha8Rng) -> Batch {
    let b = pieces.len();
    let mut ids = vec![0u32; b * l];
    let mut mask = vec![0u8; b * l];
    let (mut at, mut targets) = (Vec::new(), Vec::new());
    for (r, p) in pieces.iter().enumerate() {
        for (t, &id) in p.iter().enumerate() {
            ids[r * l + t] = id;
            mask[r * l + t] = 1;
        }
        if s.masked {
            let mut chosen: Vec<usize> = (0..p.len()).filter(|_| rng.gen_bool(s.mask_prob)).collect();
            if chosen.is_empty() {
                chosen.push(rng.gen_range(0..p.len()));
            }
            for t in chosen {
                at.push(r * l + t);
                targets.push(p[t]);
                // BERT's 80/10/10: [MASK], a random token, or the token itself.
                let u: f64 = rng.gen();
                if u < 0.8 {
                    ids[r * l + t] = MASK_ID;
                } else if u < 0.9 {
                    ids[r * l + t] = rng.gen_range(specials..vocab as u32);
                }
            }
        } else {
            for t in 0..p.len() - 1 {
                at.push(r * l + t);
                targets.push(p[t + 1]);
            }
        }
    }
    Batch {
        len: l,
        ids,
        mask,
        at,
        targets,
    }
}

/// Loss of one batch on tape type `T`; `cands` = None for the full softmax. `causal`: attention
/// sees only earlier positions (the `lm` objective; an LSTM is causal anyway).
pub fn batch_loss<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T> + Default>(
    dev: &Dev,
    spec: &EncoderSpec,
    params: &Params,
    batch: &Batch,
    cands: Option<&[usize]>,
    vocab: usize,
    causal: bool,
) -> Result<Tensor<(usize, usize), f32, Dev, T>> {
    let l = batch.len;
    let b = batch.ids.len() / l;
    let p = |n: &str| Ok(params.get(n)?.retaped::<T>());
    let x = Tokens {
        ids: &batch.ids,
        mask: &batch.mask,
        rows: b,
        len: l,
    };
    let h = spec.states(dev, &p, x, causal)?;
    let idx: Tensor<(usize,), usize, Dev> = dev.tensor_from_vec(batch.at.clone(), (batch.at.len(),));
    let h = h.gather(idx);
    let all: Vec<usize>;
    let cands = match cands {
        Some(c) => c,
        None => {
            all = (0..vocab).collect();
            &all
        }
    };
    let pos: std::collections::HashMap<usize, usize> = cands.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let targets: Vec<usize> = batch.targets.iter().map(|&t| pos[&(t as usize)]).collect();
    Ok(ops::softmax_xent(dev, h, p("encoder.embedding")?, cands, &targets))
}

/// What [`train`] needs to continue after an epoch (see `resume.rs`).
#[derive(serde::Serialize, serde::Deserialize)]
struct LmState {
    adam_steps: std::collections::BTreeMap<String, i32>,
    rng: String,
    order: Vec<usize>,
    log: Vec<PretrainLog>,
    step: usize,
    tokens: usize,
    seconds: f64,
}

/// Trains the encoder; returns its parameters (`encoder.*`), the per-epoch log and the
/// training speed in tokens per second.
/// The token rows a language model trains on, the vocabulary size, and how many ids at the
/// start of the vocabulary are special tokens (never predicted).
#[derive(Clone, Copy)]
pub struct Corpus<'a> {
    pub rows: &'a [Vec<u32>],
    pub vocab: usize,
    pub specials: u32,
}

pub fn train(
    dev: &Dev,
    corpus: Corpus,
    spec: &EncoderSpec,
    s: &LmSettings,
    start: Option<Params>,
    lc: super::LoopCtx,
) -> Result<(Params, Vec<PretrainLog>, f64)> {
    let Corpus { rows, vocab, specials } = corpus;
    let progress = lc.progress;
    let spec = spec.resolved();
    let l = s.max_len;
    // Pieces of at most l tokens (specials dropped); a piece needs two tokens to predict from.
    let pieces: Vec<&[u32]> = rows.iter().flat_map(|r| r.chunks(l)).filter(|p| p.len() >= 2).collect();
    if pieces.is_empty() {
        bail!("no text to pretrain on: every row has fewer than two tokens");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut params = spec.init(dev, &mut rng, vocab);
    if let Some(start) = start {
        // Continue an earlier run (task-adaptive pretraining): the same tensors, the same shapes.
        for (name, t) in &params.tensors {
            let theirs = start.get(name).map_err(|_| {
                anyhow::anyhow!("the starting encoder has no tensor `{name}`; it was not trained with this encoder")
            })?;
            if theirs.shape() != t.shape() {
                bail!(
                    "the starting encoder's `{name}` is {:?}, this encoder's {:?}",
                    theirs.shape(),
                    t.shape()
                );
            }
        }
        params = start;
    }
    let (train, held_out) = super::split_held_out(pieces, s.held_out);
    let (train, held_out) = (&train[..], &held_out[..]);
    // Unigram^0.75 table for negatives.
    let mut counts = vec![0f64; vocab];
    train
        .iter()
        .flat_map(|p| p.iter())
        .for_each(|&t| counts[t as usize] += 1.0);
    let weights: Vec<f64> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| if (i as u32) < specials { 0.0 } else { c.powf(0.75) })
        .collect();
    let sampler = rand::distributions::WeightedIndex::new(&weights)
        .map_err(|e| anyhow::anyhow!("cannot sample negatives: {e}"))?;
    let steps_per_epoch = train.len().div_ceil(s.batch_size);
    let total = (steps_per_epoch * s.epochs).max(1) as f32;
    let warm = (0.05 * total).max(1.0);
    let mut opt = Adam::new(s.lr, 0.0);
    let trainable: Vec<String> = params.tensors.keys().cloned().collect();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut log = Vec::new();
    let mut step = 0usize;
    let mut tokens = 0usize;
    let mut seconds = 0.0f64;
    let mut first = 0;
    progress.set_length((s.epochs * steps_per_epoch) as u64);
    if let Some((done, st, t)) = resume::load::<LmState>(dev, lc.checkpoint) {
        params = resume::take(&t, "p.");
        opt.load_state(&t, &st.adam_steps)?;
        resume::set_rng_pos(&mut rng, &st.rng)?;
        (order, log, step, tokens, seconds, first) = (st.order, st.log, st.step, st.tokens, st.seconds, done);
        progress.resumed(done, (done * steps_per_epoch) as u64);
    }
    for epoch in first..s.epochs {
        order.shuffle(&mut rng);
        let (mut sum, mut n) = (0.0f64, 0usize);
        let started = std::time::Instant::now();
        for chunk in order.chunks(s.batch_size) {
            let ps: Vec<&[u32]> = chunk.iter().map(|&i| train[i]).collect();
            let bl = ps.iter().map(|p| p.len()).max().unwrap_or(1);
            let batch = make_batch(&ps, bl, s, vocab, specials, &mut rng);
            let cands: Option<Vec<usize>> = (s.candidates > 0).then(|| {
                let mut c: Vec<usize> = batch.targets.iter().map(|&t| t as usize).collect();
                c.extend((0..s.candidates).map(|_| rng.sample(&sampler)));
                c.sort_unstable();
                c.dedup();
                c
            });
            let loss = batch_loss::<Tp>(dev, &spec, &params, &batch, cands.as_deref(), vocab, !s.masked)?;
            let lv = loss.as_vec()[0];
            check_finite(lv, "pretraining", epoch)?;
            sum += lv as f64 * batch.at.len() as f64;
            n += batch.at.len();
            tokens += batch.mask.iter().filter(|&&m| m != 0).count();
            let mut grads = loss.sum::<Rank0, _>().backward();
            step += 1;
            let sched = if (step as f32) < warm {
                step as f32 / warm
            } else {
                ((total - step as f32) / (total - warm).max(1.0)).max(0.0)
            };
            opt.step(&mut params, &mut grads, &trainable, sched, |_| 1.0)?;
            progress.inc(1);
        }
        seconds += started.elapsed().as_secs_f64();
        let held_loss = held_out_loss(dev, &spec, &params, held_out, s, vocab, specials)?;
        log.push(PretrainLog {
            epoch: epoch + 1,
            train_loss: sum / n.max(1) as f64,
            held_out_loss: held_loss,
            held_out_perplexity: held_loss.is_finite().then(|| held_loss.exp()),
        });
        let measured = format!("train loss {:.4}, held-out loss {held_loss:.4}", sum / n.max(1) as f64);
        progress.epoch(epoch + 1, s.epochs, &measured);
        if epoch + 1 < s.epochs && lc.checkpoint.due() {
            let mut t = Params::default();
            resume::put(&mut t, "p.", &params);
            let state = LmState {
                adam_steps: opt.save_state(&mut t),
                rng: resume::rng_pos(&rng),
                order: order.clone(),
                log: log.clone(),
                step,
                tokens,
                seconds,
            };
            resume::save(lc.checkpoint, epoch + 1, &state, &t);
        }
    }
    Ok((params, log, tokens as f64 / seconds.max(1e-9)))
}

/// Mean cross-entropy under the full softmax on the held-out pieces (at most 512 of them, with
/// masks drawn from a fixed seed so every epoch is scored on the same task).
fn held_out_loss(
    dev: &Dev,
    spec: &EncoderSpec,
    params: &Params,
    held: &[&[u32]],
    s: &LmSettings,
    vocab: usize,
    specials: u32,
) -> Result<f64> {
    if held.is_empty() {
        return Ok(f64::NAN);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x6e1d);
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in held[..held.len().min(512)].chunks(s.batch_size) {
        let bl = chunk.iter().map(|p| p.len()).max().unwrap_or(1);
        let batch = make_batch(chunk, bl, s, vocab, specials, &mut rng);
        let loss = batch_loss::<NoneTape>(dev, spec, params, &batch, None, vocab, !s.masked)?;
        sum += loss.as_vec()[0] as f64 * batch.at.len() as f64;
        n += batch.at.len();
    }
    Ok(sum / n.max(1) as f64)
}
