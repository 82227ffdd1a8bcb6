//! Word2vec-style CBOW pretraining with negative sampling: predict each token from the mean of
//! the embeddings around it. It learns the encoder's input embeddings — the part of a `bag`
//! classifier that transfers — at a tiny fraction of a language model's cost (no vocabulary-wide
//! softmax: one true and `negatives` sampled output vectors per position).

use anyhow::{bail, Result};
use dfdx::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::adam::Adam;
use super::{check_finite, uniform, zeros, Dev, Params, Tp};
use crate::seqfile::Padded;

#[derive(Debug, Clone)]
pub struct CbowSettings {
    pub dim: usize,
    pub window: usize,
    pub negatives: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f32,
    pub seed: u64,
    /// Share of rows held out to report the held-out loss.
    pub held_out: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainLog {
    pub epoch: usize,
    pub train_loss: f64,
    pub held_out_loss: f64,
}

/// A training example: the centre token and its context (padded with `None`).
struct Window {
    centre: u32,
    context: Vec<u32>,
}

fn windows(data: &Padded, rows: std::ops::Range<usize>, w: usize, skip: &[bool]) -> Vec<Window> {
    let mut out = Vec::new();
    for r in rows {
        let ids: Vec<u32> = data
            .row(r)
            .iter()
            .zip(data.mask_row(r))
            .filter(|(_, &m)| m != 0)
            .map(|(&i, _)| i)
            .filter(|&i| !skip[i as usize])
            .collect();
        for t in 0..ids.len() {
            let lo = t.saturating_sub(w);
            let hi = (t + w + 1).min(ids.len());
            let context: Vec<u32> = (lo..hi).filter(|&j| j != t).map(|j| ids[j]).collect();
            if !context.is_empty() {
                out.push(Window {
                    centre: ids[t],
                    context,
                });
            }
        }
    }
    out
}

/// Trains input embeddings (`encoder.embedding`, vocab × dim) on `data`; returns them and the
/// per-epoch losses.
pub fn train(
    dev: &Dev,
    data: &Padded,
    vocab: usize,
    specials: usize,
    s: &CbowSettings,
    progress: &crate::progress::Progress,
) -> Result<(Params, Vec<PretrainLog>)> {
    let n = data.rows();
    let held = ((n as f64 * s.held_out).round() as usize).min(n.saturating_sub(1));
    let skip: Vec<bool> = (0..vocab).map(|i| i < specials).collect();
    let train_w = windows(data, 0..n - held, s.window, &skip);
    let held_w = windows(data, n - held..n, s.window, &skip);
    if train_w.is_empty() {
        bail!("the pretraining text has no token with a neighbour; it needs sentences of at least two tokens");
    }
    // Negative-sampling distribution: unigram counts ^ 0.75, as word2vec.
    let mut counts = vec![0f64; vocab];
    for w in &train_w {
        counts[w.centre as usize] += 1.0;
    }
    let weights: Vec<f64> = counts.iter().map(|c| c.powf(0.75)).collect();
    let table = rand::distributions::WeightedIndex::new(&weights)
        .map_err(|e| anyhow::anyhow!("sampling table: {e}"))?;

    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut params = Params::default();
    params.tensors.insert(
        "encoder.embedding".into(),
        uniform(dev, &mut rng, vocab, s.dim, 0.5 / s.dim as f32),
    );
    params
        .tensors
        .insert("cbow.output".into(), zeros(dev, vocab, s.dim));
    let trainable = vec!["encoder.embedding".to_string(), "cbow.output".to_string()];
    let mut opt = Adam::new(s.lr, 0.0);
    let mut order: Vec<usize> = (0..train_w.len()).collect();
    let mut log = Vec::new();
    progress.set_length((s.epochs * order.len().div_ceil(s.batch_size)) as u64);
    for epoch in 0..s.epochs {
        use rand::seq::SliceRandom;
        order.shuffle(&mut rng);
        let mut sum = 0.0f64;
        let mut batches = 0usize;
        for chunk in order.chunks(s.batch_size) {
            let batch: Vec<&Window> = chunk.iter().map(|&i| &train_w[i]).collect();
            let loss = batch_loss(dev, &params, &batch, s, &table, &mut rng, true)?;
            let lv = loss.array();
            check_finite(lv, "pretraining", epoch)?;
            sum += lv as f64;
            batches += 1;
            let grads = loss.backward();
            opt.step(&mut params, &grads, &trainable, 1.0, |_| 1.0);
            progress.inc(1);
        }
        // Held-out loss with a fixed sampler seed, so epochs are comparable.
        let mut hr = ChaCha8Rng::seed_from_u64(s.seed ^ 0xbeef);
        let mut hsum = 0.0f64;
        let mut hb = 0usize;
        for chunk in held_w.chunks(s.batch_size) {
            let batch: Vec<&Window> = chunk.iter().collect();
            hsum += batch_loss(dev, &params, &batch, s, &table, &mut hr, false)?.array() as f64;
            hb += 1;
        }
        log.push(PretrainLog {
            epoch: epoch + 1,
            train_loss: sum / batches.max(1) as f64,
            held_out_loss: if hb == 0 { f64::NAN } else { hsum / hb as f64 },
        });
    }
    params.tensors.remove("cbow.output");
    Ok((params, log))
}

/// Mean negative-sampling loss of a batch: -log σ(h·u_true) - Σ log σ(-h·u_neg).
fn batch_loss(
    dev: &Dev,
    params: &Params,
    batch: &[&Window],
    s: &CbowSettings,
    table: &rand::distributions::WeightedIndex<f64>,
    rng: &mut ChaCha8Rng,
    taped: bool,
) -> Result<Tensor<Rank0, f32, Dev, Tp>> {
    let b = batch.len();
    let c = 2 * s.window;
    let k = s.negatives + 1;
    let d = s.dim;
    // Context ids padded to 2·window with weights 1/len (0 for padding).
    let mut ctx = vec![0usize; b * c];
    let mut wts = vec![0f32; b * c];
    let mut out_ids = vec![0usize; b * k];
    let mut target = vec![0f32; b * k];
    for (r, w) in batch.iter().enumerate() {
        let n = w.context.len().min(c);
        for j in 0..n {
            ctx[r * c + j] = w.context[j] as usize;
            wts[r * c + j] = 1.0 / n as f32;
        }
        out_ids[r * k] = w.centre as usize;
        target[r * k] = 1.0;
        for j in 1..k {
            out_ids[r * k + j] = rng.sample(table);
        }
    }
    let emb = params.get("encoder.embedding")?;
    let out = params.get("cbow.output")?;
    let (emb, out) = if taped {
        (emb.retaped::<Tp>(), out.retaped::<Tp>())
    } else {
        (emb.clone().retaped::<Tp>(), out.clone().retaped::<Tp>())
    };
    let x = emb
        .gather(dev.tensor_from_vec(ctx, (b * c,)))
        .reshape_like(&(b, c, d));
    let w: Tensor<(usize, usize, usize), f32, Dev> = dev
        .tensor_from_vec(wts, (b, c))
        .broadcast_like::<_, Axis<2>>(&(b, c, d));
    let h = (x * w).sum::<(usize, usize), Axis<1>>();
    let u = out
        .gather(dev.tensor_from_vec(out_ids, (b * k,)))
        .reshape_like(&(b, k, d));
    let scores = (u * h.broadcast_like::<_, Axis<1>>(&(b, k, d))).sum::<(usize, usize), Axis<2>>();
    // Sum over the k outputs, mean over the batch.
    let t = dev.tensor_from_vec(target, (b, k));
    Ok(binary_cross_entropy_with_logits_loss(scores, t) * k as f32)
}
