//! What `validate` says about a pretrain stage's parameters: which options belong to which
//! objective (word2vec's `window`, `negatives`, `subsample`, `shards`; the language models'
//! `batch_size`, `max_len`, `candidates`, `mask_prob`), their ranges, and whether the encoder
//! can be pretrained by the objective at all (`EncoderType::supports`).

use super::{Objective, Pretrain};
use crate::model::encoder::{EncoderType, LmObjective};
use crate::problem::Problem;

pub(super) fn problems(p: &Pretrain) -> Vec<Problem> {
    let mut v = p.encoder.problems();
    let lm = p.is_lm();
    if let Some(o) = p.objective.lm().filter(|&o| !p.encoder.kind().supports(o)) {
        let name = if o == LmObjective::Masked { "mlm" } else { "lm" };
        let why = if o == LmObjective::NextToken {
            " (it must not see the token it predicts)"
        } else {
            ""
        };
        v.push(Problem::new(
            "objective".into(),
            format!(
                "objective `{name}` needs an encoder of type {}, not {}{why}; cbow and skipgram pretrain any encoder's embeddings",
                EncoderType::supporting(o).join(" or "),
                p.encoder.name()
            ),
        ));
    }
    for (f, set) in [
        ("batch_size", p.batch_size.is_some()),
        ("max_len", p.max_len.is_some()),
        ("candidates", p.candidates.is_some()),
    ] {
        if set && !lm {
            v.push(Problem::new(
                f.into(),
                format!("`{f}` applies to the lm and mlm objectives only"),
            ));
        }
    }
    for (f, set) in [
        ("window", p.window.is_some()),
        ("negatives", p.negatives.is_some()),
        ("subsample", p.subsample.is_some()),
        ("shards", p.shards.is_some()),
    ] {
        if set && lm {
            v.push(Problem::new(
                f.into(),
                format!("`{f}` applies to the cbow and skipgram objectives only (lm/mlm use `candidates`)"),
            ));
        }
    }
    if p.mask_prob.is_some() && p.objective != Objective::Mlm {
        v.push(Problem::new(
            "mask_prob".into(),
            "`mask_prob` applies to the mlm objective only".into(),
        ));
    }
    for (f, x, lo, hi) in [
        ("batch_size", p.batch_size, 1, 65536),
        ("max_len", p.max_len, 2, 8192),
        ("candidates", p.candidates, 0, 1_000_000),
    ] {
        if let Some(x) = x.filter(|x| !(lo..=hi).contains(x)) {
            v.push(Problem::new(
                f.into(),
                format!("{f} {x} is out of range: expected {lo}..={hi}"),
            ));
        }
    }
    if let Some(p) = p.mask_prob.filter(|p| !(*p > 0.0 && *p < 1.0)) {
        v.push(Problem::new(
            "mask_prob".into(),
            format!("mask_prob {p} is out of range: expected (0, 1)"),
        ));
    }
    if p.data.is_empty() {
        v.push(Problem::new(
            "data".into(),
            "expected at least one dataset to pretrain on".into(),
        ));
    }
    for (f, ok, want) in [
        ("epochs", (1..=1000).contains(&p.epochs), "1..=1000"),
        ("window", (1..=32).contains(&p.window()), "1..=32"),
        ("negatives", (1..=100).contains(&p.negatives()), "1..=100"),
        ("shards", (1..=2).contains(&p.shards()), "1..=2"),
    ] {
        if !ok {
            v.push(Problem::new(f.into(), format!("{f} is out of range: expected {want}")));
        }
    }
    if !(0.0..1.0).contains(&p.subsample()) {
        v.push(Problem::new(
            "subsample".into(),
            "subsample must be in [0, 1): a share of the corpus, 0 = off".into(),
        ));
    }
    if p.lr.is_some_and(|lr| !(lr > 0.0 && lr.is_finite())) {
        v.push(Problem::new("lr".into(), "lr must be a positive number".into()));
    }
    if !(0.0..0.5).contains(&p.held_out) {
        v.push(Problem::new("held_out".into(), "held_out must be in [0, 0.5)".into()));
    }
    v
}
