//! `tokenize`: trains a subword tokenizer on the texts it is given and encodes datasets to ids.
//!
//! The tokenizer is a Hugging Face `tokenizers` model (WordPiece, BPE or Unigram) behind a BERT
//! normaliser (which also splits CJK text into single characters, so Chinese works without a
//! word segmenter) and a BERT pre-tokeniser (whitespace and punctuation). The special tokens
//! always have the same ids: `[PAD]`=0, `[UNK]`=1, `[CLS]`=2, `[SEP]`=3, `[MASK]`=4.
//!
//! Artefact: `tokenizer.json` (the standard format, loadable by Python's `tokenizers`),
//! `meta.json` ([`TokMeta`]), and one `<dataset>.seq` per encoded dataset (ragged ids + label
//! indices, see [`crate::seqfile`]).

use crate::problem::Problem;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use super::{params_of, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::seqfile::{write_ragged, Ragged};

mod ascii;
mod encode;
mod vocab;

pub const KIND: Kind = Kind {
    name: "tokenize",
    produces: super::Product::Tokens,
    // 2: words longer than vocab::MAX_TRAIN_WORD are left out of tokenizer training.
    version: 2,
    summary: "train a WordPiece/BPE/Unigram tokenizer and encode datasets to ids",
    parse: super::parse_as::<Tokenize>,
    schema: super::schema_of::<Tokenize>,
};

pub use crate::artefact::{CLS_ID, MASK_ID, PAD_ID, SPECIALS, UNK_ID};
/// Smallest vocabulary we accept: the specials plus room for characters.
const MIN_VOCAB: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Wordpiece,
    Bpe,
    Unigram,
    /// Whole words (after the BERT normaliser and pre-tokeniser): the `vocab_size` - 5 most
    /// frequent, the rest `[UNK]`. The vocabulary word2vec and fastText learn vectors for;
    /// for CJK text it is one token per character.
    Wordlevel,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tokenize {
    /// Datasets whose texts train the tokenizer.
    pub fit_on: Vec<String>,
    /// Datasets to encode (default: the `fit_on` datasets).
    #[serde(default)]
    pub encode: Vec<String>,
    #[serde(default)]
    pub algorithm: Algorithm,
    #[serde(default = "default_vocab")]
    pub vocab_size: usize,
    #[serde(default = "default_true")]
    pub lowercase: bool,
    /// wordpiece/bpe: a pair must occur this often to be merged; wordlevel: a word must occur
    /// this often to be in the vocabulary [2]. Unigram has no such
    /// knob, so it is rejected there and left out of the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_frequency: Option<u64>,
}

fn default_vocab() -> usize {
    8000
}
fn default_true() -> bool {
    true
}
fn default_min_frequency() -> u64 {
    2
}

/// `meta.json` of a tokenize artefact (and, extended, of a pad artefact).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokMeta {
    /// Size of the trained vocabulary (may be below the requested size on small corpora).
    pub vocab_size: usize,
    pub pad_id: u32,
    pub unk_id: u32,
    pub cls_id: u32,
    pub mask_id: u32,
    /// Label names; a row's label is an index into this list.
    pub labels: Vec<String>,
    pub datasets: BTreeMap<String, DatasetStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetStats {
    pub rows: usize,
    pub tokens: usize,
    pub labelled: bool,
    /// Share of tokens that are `[UNK]`.
    pub unk_rate: f64,
    /// Rows that encode to no tokens at all.
    pub empty_rows: usize,
}

impl Tokenize {
    fn min_frequency(&self) -> u64 {
        self.min_frequency.unwrap_or_else(default_min_frequency)
    }

    fn encode_list(&self) -> &[String] {
        if self.encode.is_empty() {
            &self.fit_on
        } else {
            &self.encode
        }
    }

    fn build(&self, texts: &[String]) -> Result<Tokenizer> {
        vocab::train(
            &vocab::VocabSpec {
                algorithm: self.algorithm,
                vocab_size: self.vocab_size,
                lowercase: self.lowercase,
                min_frequency: self.min_frequency(),
            },
            texts,
        )
    }
}

impl Stage for Tokenize {
    fn inputs(&self) -> Vec<InputRef> {
        let mut v: Vec<InputRef> = self
            .fit_on
            .iter()
            .enumerate()
            .map(|(i, n)| InputRef {
                field: format!("fit_on[{i}]"),
                name: n.clone(),
                want: Want::Dataset,
            })
            .collect();
        v.extend(self.encode.iter().enumerate().map(|(i, n)| InputRef {
            field: format!("encode[{i}]"),
            name: n.clone(),
            want: Want::Dataset,
        }));
        v
    }

    fn holds(&self) -> Option<(&'static str, Vec<String>)> {
        Some(("encode", self.encode_list().to_vec()))
    }

    fn params(&self) -> serde_json::Value {
        let mut p = params_of(self);
        p["encode"] = serde_json::json!(self.encode_list());
        if self.algorithm != Algorithm::Unigram {
            p["min_frequency"] = self.min_frequency().into();
        }
        p
    }

    fn check(&self) -> Vec<Problem> {
        let mut v = Vec::new();
        if self.min_frequency.is_some() && self.algorithm == Algorithm::Unigram {
            v.push(Problem::new(
                "min_frequency".into(),
                "`min_frequency` applies to wordpiece, bpe and wordlevel only; the unigram trainer has no minimum frequency"
                    .into(),
            ));
        }
        if self.fit_on.is_empty() {
            v.push(Problem::new(
                "fit_on".into(),
                "expected at least one dataset to train the tokenizer on".into(),
            ));
        }
        if self.vocab_size < MIN_VOCAB || self.vocab_size > 1_000_000 {
            v.push(Problem::new(
                "vocab_size".into(),
                format!(
                    "vocab_size {} is out of range: expected {MIN_VOCAB}..=1000000 ({} special tokens plus room for characters)",
                    self.vocab_size,
                    SPECIALS.len()
                ),
            ));
        }
        for (field, list) in [("fit_on", &self.fit_on), ("encode", &self.encode)] {
            let mut seen = BTreeSet::new();
            for n in list.iter() {
                if !seen.insert(n) {
                    v.push(Problem::new(field.into(), format!("dataset `{n}` is listed twice")));
                }
            }
        }
        v
    }

    fn run(&self, ctx: &StageCtx) -> Result<Outcome> {
        // Read every dataset once, in parallel.
        let mut names: Vec<&String> = self.fit_on.iter().chain(self.encode_list()).collect();
        names.sort();
        names.dedup();
        let read: Vec<(String, crate::dataset::Rows)> = names
            .par_iter()
            .map(|n| Ok(((*n).clone(), ctx.dataset(n)?.read()?)))
            .collect::<Result<_>>()?;
        let rows: BTreeMap<String, crate::dataset::Rows> = read.into_iter().collect();

        let fit_texts: Vec<String> = self.fit_on.iter().flat_map(|n| rows[n].texts.iter().cloned()).collect();
        ctx.progress.message("training tokenizer");
        let tok = self.build(&fit_texts)?;
        drop(fit_texts);
        tok.save(ctx.out.join("tokenizer.json"), false)
            .map_err(|e| anyhow!("cannot save tokenizer.json: {e}"))?;

        // Labels: the union over encoded labelled datasets, in a stable order.
        let mut labels: Vec<String> = self
            .encode_list()
            .iter()
            .filter_map(|n| rows[n].labels.as_ref())
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        crate::dataset::sort_labels(&mut labels);
        let label_index: BTreeMap<&str, i32> = labels.iter().enumerate().map(|(i, l)| (l.as_str(), i as i32)).collect();

        let total_rows: usize = self.encode_list().iter().map(|n| rows[n].texts.len()).sum();
        ctx.progress.message("encoding");
        ctx.progress.set_length(total_rows as u64);
        let mut stats = BTreeMap::new();
        let mut total_tokens = 0usize;
        for name in self.encode_list() {
            let data = &rows[name];
            let encoded = encode::encode_all(&tok, self.lowercase, &data.texts, |n| ctx.progress.inc(n))
                .with_context(|| format!("encoding `{name}` failed"))?;
            let mut r = Ragged {
                offsets: Vec::with_capacity(encoded.len() + 1),
                ids: Vec::new(),
                labels: Vec::new(),
            };
            r.offsets.push(0);
            let mut unk = 0usize;
            let mut empty = 0usize;
            for (i, ids) in encoded.iter().enumerate() {
                unk += ids.iter().filter(|&&t| t == UNK_ID).count();
                empty += usize::from(ids.is_empty());
                r.ids.extend_from_slice(ids);
                r.offsets.push(r.ids.len() as u64);
                r.labels.push(match &data.labels {
                    Some(ls) => label_index[ls[i].as_str()],
                    None => -1,
                });
            }
            write_ragged(&ctx.out.join(format!("{name}.seq")), &r).with_context(|| format!("writing `{name}`"))?;
            total_tokens += r.ids.len();
            stats.insert(
                name.clone(),
                DatasetStats {
                    rows: r.len(),
                    tokens: r.ids.len(),
                    labelled: data.labels.is_some(),
                    unk_rate: if r.ids.is_empty() {
                        0.0
                    } else {
                        unk as f64 / r.ids.len() as f64
                    },
                    empty_rows: empty,
                },
            );
        }
        let meta = TokMeta {
            vocab_size: tok.get_vocab_size(true),
            pad_id: PAD_ID,
            unk_id: UNK_ID,
            cls_id: CLS_ID,
            mask_id: MASK_ID,
            labels,
            datasets: stats,
        };
        std::fs::write(ctx.out.join("meta.json"), serde_json::to_vec_pretty(&meta)?)?;
        Ok(Outcome {
            summary: format!(
                "vocab {}, {} datasets, {} rows, {} tokens",
                meta.vocab_size,
                meta.datasets.len(),
                total_rows,
                total_tokens
            ),
            metrics: None,
        })
    }
}

/// Reads the `meta.json` of a tokenize or pad artefact.
pub fn read_meta(dir: &std::path::Path) -> Result<TokMeta> {
    let p = dir.join("meta.json");
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not a valid tokenizer meta file", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wordlevel` keeps whole words, most frequent first, and sends words below
    /// `min_frequency` to `[UNK]`; the special tokens keep their fixed ids.
    #[test]
    fn wordlevel_keeps_whole_frequent_words() {
        let t = Tokenize {
            fit_on: vec!["a".into()],
            encode: vec![],
            algorithm: Algorithm::Wordlevel,
            vocab_size: 100,
            lowercase: true,
            min_frequency: Some(2),
        };
        let texts: Vec<String> = ["The unbelievable film", "the UNBELIEVABLE plot", "the rare word"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tok = t.build(&texts).unwrap();
        assert_eq!(
            tok.get_vocab_size(false),
            SPECIALS.len() + 2,
            "{:?}",
            tok.get_vocab(false)
        );
        let ids = tok.encode("The unbelievable rare", false).unwrap().get_ids().to_vec();
        let the = tok.token_to_id("the").unwrap();
        let unb = tok.token_to_id("unbelievable").unwrap();
        assert_eq!(ids, vec![the, unb, UNK_ID]);
        assert_eq!(the as usize, SPECIALS.len(), "most frequent word first");
    }
}
