//! What the classifier stages (`finetune`, `feature-extract`, `evaluate`) share: reading a pad
//! artefact's datasets, the label budget, and the model artefact's layout.
//!
//! Model artefact (written by finetune and feature-extract, read by evaluate, `predict` and
//! `export`): `model.safetensors`, `model.json` ([`ModelConfig`]), `tokenizer.json`,
//! `history.json` (per-epoch training loss and dev metrics).

use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::pad::{read_pad_meta, PadMeta};
use crate::model::classifier::{Classifier, ModelConfig};
use crate::model::train::EpochLog;
use crate::model::{Dev, Params};
use crate::seqfile::{read_padded, Padded};

/// Reads dataset `name` of a pad artefact, which must be labelled.
pub fn labelled(src: &Path, meta: &PadMeta, stage: &str, name: &str) -> Result<Padded> {
    let Some(stats) = meta.tok.datasets.get(name) else {
        bail!(
            "stage `{stage}` has no dataset `{name}`; it has: {}",
            meta.tok.datasets.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    if !stats.labelled {
        bail!("dataset `{name}` has no labels (declare its `label` column in the spec)");
    }
    read_padded(&src.join(format!("{name}.pad")))
}

pub fn pad_meta(src: &Path) -> Result<PadMeta> {
    read_pad_meta(src)
}

/// The given rows of `data`, in the given order.
pub(super) fn take_rows(data: &Padded, rows: &[usize]) -> Padded {
    let l = data.len;
    let mut out = Padded {
        len: l,
        ids: Vec::new(),
        mask: Vec::new(),
        labels: Vec::new(),
    };
    for &r in rows {
        out.ids.extend_from_slice(data.row(r));
        out.mask.extend_from_slice(data.mask_row(r));
        out.labels.push(data.labels[r]);
    }
    out
}

/// The rows (ascending indices) of a deterministic stratified subset of `n` rows (the label
/// budget): each class keeps its share (at least one row where possible), rows drawn with a
/// seeded shuffle.
///
/// Fails when `n` cannot hold one row of every class the data has: a model that never sees a
/// class cannot predict it, and a dev set with that class would fail later with a message about
/// labels the training data never shows, far from the `train_size` that caused it.
pub fn subset_rows(data: &Padded, n: usize, labels: &[String], seed: u64) -> Result<Vec<usize>> {
    let classes = labels.len();
    let total = data.rows();
    if n > total {
        bail!("train_size {n} is larger than the training set ({total} rows); use a smaller train_size or omit it to use all rows");
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for (i, &l) in data.labels.iter().enumerate() {
        by_class[l as usize].push(i);
    }
    let present: Vec<&str> = by_class
        .iter()
        .zip(labels)
        .filter(|(c, _)| !c.is_empty())
        .map(|(_, l)| l.as_str())
        .collect();
    if n < present.len() {
        bail!(
            "train_size {n} is smaller than the number of classes in the training set ({}: {}); the subset needs at least one row per class, so use train_size ≥ {}",
            present.len(),
            present.join(", "),
            present.len()
        );
    }
    if n == total {
        return Ok((0..total).collect());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ab5e7);
    for c in by_class.iter_mut() {
        c.shuffle(&mut rng);
    }
    // Largest-remainder allocation of n over classes by their share.
    let mut take: Vec<usize> = by_class.iter().map(|c| c.len() * n / total).collect();
    for (t, c) in take.iter_mut().zip(&by_class) {
        if *t == 0 && !c.is_empty() {
            *t = 1;
        }
    }
    let mut rem: Vec<(usize, usize)> = by_class
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.len() * n) % total, i))
        .collect();
    rem.sort_by(|a, b| b.cmp(a));
    let mut k = 0;
    while take.iter().sum::<usize>() < n {
        let i = rem[k % rem.len()].1;
        if take[i] < by_class[i].len() {
            take[i] += 1;
        }
        k += 1;
    }
    while take.iter().sum::<usize>() > n {
        let i = (0..classes).max_by_key(|&i| take[i]).unwrap_or(0);
        take[i] -= 1;
    }
    let mut rows: Vec<usize> = by_class
        .iter()
        .zip(&take)
        .flat_map(|(c, &t)| c[..t].iter().copied())
        .collect();
    rows.sort_unstable();
    Ok(rows)
}

/// Writes `train_rows.json`: which rows of the training dataset (0-based, in file order) a
/// classifier stage learned from, so that peers can be run on exactly the same label subset.
pub fn record_train_rows(out: &Path, full_rows: usize, train_size: Option<usize>, rows: &[usize]) -> Result<()> {
    let v = serde_json::json!({ "dataset_rows": full_rows, "train_size": train_size, "rows": rows });
    std::fs::write(out.join("train_rows.json"), serde_json::to_vec(&v)?)?;
    Ok(())
}

/// The training rows with the label budget applied, and their indices into the dataset.
pub fn training_rows(
    src: &Path,
    meta: &PadMeta,
    from: &str,
    train: &str,
    train_size: Option<usize>,
    seed: u64,
) -> Result<(Padded, Vec<usize>)> {
    let full = labelled(src, meta, from, train)?;
    match train_size {
        Some(n) => {
            let rows = subset_rows(&full, n, &meta.tok.labels, seed)?;
            Ok((take_rows(&full, &rows), rows))
        }
        None => {
            let n = full.rows();
            Ok((full, (0..n).collect()))
        }
    }
}

/// The training rows (the label budget applied) and the dev rows of a classifier stage.
pub fn training_data(
    src: &Path,
    meta: &PadMeta,
    from: &str,
    train: &str,
    dev: Option<&str>,
    train_size: Option<usize>,
    seed: u64,
) -> Result<(Padded, Option<Padded>, Vec<usize>)> {
    let (train, rows) = training_rows(src, meta, from, train, train_size, seed)?;
    let devset = match dev {
        Some(d) => {
            let p = labelled(src, meta, from, d)?;
            check_labels_seen(&train, &p, d, &meta.tok.labels)?;
            Some(p)
        }
        None => None,
    };
    Ok((train, devset, rows))
}

/// Fails when evaluation data has labels the training data never shows.
pub fn check_labels_seen(train: &Padded, other: &Padded, other_name: &str, labels: &[String]) -> Result<()> {
    let mut seen = vec![false; labels.len()];
    train.labels.iter().for_each(|&l| seen[l as usize] = true);
    let unseen: Vec<&str> = other
        .labels
        .iter()
        .filter(|&&l| !seen[l as usize])
        .map(|&l| labels[l as usize].as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unseen.is_empty() {
        bail!(
            "dataset `{other_name}` has labels that the training data never shows: {}; add training rows with them, or remove those rows from `{other_name}`",
            unseen.join(", ")
        );
    }
    Ok(())
}

pub fn config_from(
    meta: &PadMeta,
    encoder: crate::model::classifier::EncoderSpec,
    pooling: Option<crate::model::pool::Pooling>,
    hidden: usize,
) -> ModelConfig {
    let encoder = encoder.resolved();
    ModelConfig {
        pooling: pooling.unwrap_or(encoder.default_pooling()),
        encoder,
        vocab_size: meta.tok.vocab_size,
        hidden,
        labels: meta.tok.labels.clone(),
        ngrams: None,
        layers: None,
        shape: crate::stages::pad::Shape {
            max_len: meta.max_len,
            add_cls: meta.add_cls,
            padding: meta.padding,
            truncating: meta.truncating,
        },
    }
}

pub fn save_model(out: &Path, src: &Path, model: &Classifier, history: &[EpochLog]) -> Result<()> {
    model.params.save(&out.join("model.safetensors"))?;
    std::fs::write(out.join("model.json"), serde_json::to_vec_pretty(&model.cfg)?)?;
    std::fs::write(out.join("history.json"), serde_json::to_vec_pretty(history)?)?;
    std::fs::copy(src.join("tokenizer.json"), out.join("tokenizer.json")).context("copying tokenizer.json")?;
    Ok(())
}

pub fn load_model(dev: &Dev, dir: &Path) -> Result<Classifier> {
    let p = dir.join("model.json");
    let cfg: ModelConfig =
        serde_json::from_slice(&std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?)
            .with_context(|| format!("{} is not a warmstart model config", p.display()))?;
    let w = dir.join("model.safetensors");
    let params = Params::load(dev, &w)?;
    Classifier::from_parts(dev, cfg, params).with_context(|| {
        format!(
            "{} does not match {}: the folder mixes files of different models",
            w.display(),
            p.display()
        )
    })
}
