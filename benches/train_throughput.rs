//! Training throughput (tokens/s) of warmstart's `bag` classifier at the shapes of
//! ../shared/bench/torch_throughput.py (batch 32 × seq 64, vocab 8000, dim 64, Adam, 30 timed
//! steps after 5 warm-up steps), of language-model steps on the same shapes, of the word2vec
//! kernel.
//!
//! `RAYON_NUM_THREADS=N cargo bench --bench train_throughput` — benches/train_bench.sh runs it
//! beside the PyTorch script with the same thread count and prints the ratios.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use warmstart::model::adam::Adam;
use warmstart::model::classifier::{Classifier, EncoderType, ModelConfig};
use warmstart::model::pool::Pooling;
use warmstart::model::Dev;
use warmstart::progress::Reporter;
use warmstart::seqfile::Padded;
use warmstart::stages::pad::{Shape, Side};

const V: usize = 8000;
const D: usize = 64;
const B: usize = 32;
const S: usize = 64;
const STEPS: usize = 30;

/// `WS_BENCH=LSTM` runs only the benchmarks whose name contains that text.
fn wanted(name: &str) -> bool {
    std::env::var("WS_BENCH").map_or(true, |f| name.contains(&f))
}

fn main() {
    warmstart::alloc::tune();
    let dev = Dev::default();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let cfg = ModelConfig {
        encoder: EncoderType::Bag.with_dim(D),
        vocab_size: V,
        pooling: Pooling::Mean,
        hidden: 0,
        labels: vec!["0".into(), "1".into()],
        ngrams: None,
        layers: None,
        shape: Shape {
            max_len: S,
            add_cls: false,
            padding: Side::Post,
            truncating: Side::Post,
        },
    };
    let data = Padded {
        len: S,
        ids: (0..B * S).map(|_| rng.gen_range(1..V as u32)).collect(),
        mask: vec![1; B * S],
        labels: (0..B).map(|_| rng.gen_range(0..2)).collect(),
    };
    println!("threads {}", rayon::current_num_threads());
    for (kind, name) in [
        (EncoderType::Bag, "emb+meanpool+linear cls"),
        (EncoderType::Lstm, "seed LSTM(64) cls"),
        (EncoderType::Cnn, "emb+conv1d(k3)+maxpool cls"),
        (EncoderType::Transformer, "emb+2L transformer cls"),
    ] {
        if !wanted(name) {
            continue;
        }
        let dt = classifier_step(&dev, &cfg, &data, kind);
        println!(
            "{:32} {:7.1} ms/step {:10.0} tokens/s",
            name,
            dt * 1e3,
            (B * S) as f64 / dt
        );
    }

    // Word2vec kernel: skip-gram and CBOW over 200k random-ish tokens (Zipf-like ids).
    let rows: Vec<Vec<u32>> = (0..10_000)
        .map(|_| {
            (0..20)
                .map(|_| 5 + (rng.gen::<f64>().powi(3) * (V - 5) as f64) as u32)
                .collect()
        })
        .collect();
    // Language-model steps on one fixed batch, the peers' protocol (5 warm-up + STEPS timed
    // steps of forward + loss + backward + Adam; tokens/s = B·S / seconds per step, although
    // only the ~15 % masked positions get a vocabulary loss in `mlm`). The output layer is tied
    // to the input embedding without a bias, as in warmstart's pretrain stage; the peers
    // (benches/peer_throughput.py) tie theirs the same way. `full`: logits over the whole
    // vocabulary, as the peers; `sampled`: the batch's targets + 1024 drawn ids, what the
    // pretrain stage does by default (no peer row).
    let ids: Vec<u32> = (0..B * S).map(|_| rng.gen_range(5..V as u32)).collect();
    let masked_at: Vec<usize> = (0..B * S).filter(|_| rng.gen_bool(0.15)).collect();
    let masked_targets: Vec<u32> = masked_at.iter().map(|&i| ids[i]).collect();
    let mut masked_ids = ids.clone();
    masked_at
        .iter()
        .for_each(|&i| masked_ids[i] = warmstart::artefact::MASK_ID);
    let next_at: Vec<usize> = (0..B * S).filter(|i| i % S < S - 1).collect();
    let next_targets: Vec<u32> = next_at.iter().map(|&i| ids[i + 1]).collect();
    for (masked, kind, sampled, name) in [
        (true, EncoderType::Transformer, false, "MLM masked positions, full"),
        (true, EncoderType::Transformer, true, "MLM masked positions, sampled"),
        (false, EncoderType::Lstm, true, "LSTM next-token LM, sampled"),
    ] {
        if !wanted(name) {
            continue;
        }
        let batch = if masked {
            warmstart::model::lm::Batch {
                len: S,
                ids: masked_ids.clone(),
                mask: vec![1; B * S],
                at: masked_at.clone(),
                targets: masked_targets.clone(),
            }
        } else {
            warmstart::model::lm::Batch {
                len: S,
                ids: ids.clone(),
                mask: vec![1; B * S],
                at: next_at.clone(),
                targets: next_targets.clone(),
            }
        };
        let spec = kind.with_dim(D).resolved();
        let mut params = spec.init(&dev, &mut rng, V);
        let trainable: Vec<String> = params.tensors.keys().cloned().collect();
        let mut opt = Adam::new(1e-3, 0.0);
        let mut t = Instant::now();
        for i in 0..STEPS + 5 {
            if i == 5 {
                t = Instant::now();
            }
            let cands: Option<Vec<usize>> = sampled.then(|| {
                let mut c: Vec<usize> = batch.targets.iter().map(|&t| t as usize).collect();
                c.extend((0..1024).map(|_| rng.gen_range(5..V)));
                c.sort_unstable();
                c.dedup();
                c
            });
            let loss = warmstart::model::lm::batch_loss::<warmstart::model::Tp>(
                &dev,
                &spec,
                &params,
                &batch,
                cands.as_deref(),
                V,
                !masked,
            )
            .unwrap();
            let mut grads =
                dfdx::prelude::Backward::backward(dfdx::prelude::SumTo::sum::<dfdx::prelude::Rank0, _>(loss));
            opt.step(&mut params, &mut grads, &trainable, 1.0, |_| 1.0).unwrap();
        }
        let dt = t.elapsed().as_secs_f64() / STEPS as f64;
        println!(
            "{name:32} {:7.1} ms/step {:10.0} tokens/s",
            dt * 1e3,
            (B * S) as f64 / dt
        );
    }
    for skipgram in [false, true] {
        if !wanted("word2vec") {
            continue;
        }
        let s = warmstart::model::cbow::CbowSettings {
            skipgram,
            dim: D,
            window: 4,
            negatives: 5,
            epochs: 1,
            lr: 0.05,
            seed: 1,
            held_out: 0.0,
            // Raw kernel speed: every token is trained on.
            subsample: 0.0,
            shards: 1,
        };
        let reporter = Reporter::hidden();
        let (_, _, tps) = warmstart::model::cbow::train(
            &dev,
            &rows,
            V,
            5,
            &s,
            None,
            warmstart::model::LoopCtx {
                progress: &reporter.stage("w2v"),
                checkpoint: &warmstart::checkpoint::Checkpoint::off(),
            },
        )
        .unwrap();
        let name = if skipgram {
            "word2vec skip-gram (1 thread)"
        } else {
            "word2vec CBOW (1 thread)"
        };
        println!("{name:32} {:>7} {:10.0} tokens/s", "", tps);
    }
}

/// Seconds per training step (forward + backward + Adam) of a classifier with `kind`'s encoder
/// on `data` (all its rows one batch), after 5 warm-up steps.
fn classifier_step(dev: &Dev, cfg: &ModelConfig, data: &Padded, kind: EncoderType) -> f64 {
    let encoder = kind.with_dim(D);
    let cfg = ModelConfig {
        pooling: encoder.default_pooling(),
        encoder,
        ..cfg.clone()
    };
    let mut model = Classifier::new(dev, cfg, None, 0).unwrap();
    let batch: Vec<usize> = (0..data.labels.len()).collect();
    let trainable: Vec<String> = model.params.tensors.keys().cloned().collect();
    let mut opt = Adam::new(1e-3, 0.0);
    let mut t = Instant::now();
    for i in 0..STEPS + 5 {
        if i == 5 {
            t = Instant::now();
        }
        let mut grads = dfdx::prelude::Backward::backward(model.batch_loss(dev, data, &batch, None).unwrap());
        opt.step(&mut model.params, &mut grads, &trainable, 1.0, |_| 1.0)
            .unwrap();
    }
    t.elapsed().as_secs_f64() / STEPS as f64
}
