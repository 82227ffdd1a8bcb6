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
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainerBuilder};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{AddedToken, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer};

use super::{params_of, InputRef, Kind, Outcome, Stage, StageCtx, Want};
use crate::seqfile::{write_ragged, Ragged};

pub const KIND: Kind = Kind {
    name: "tokenize",
    produces: super::Product::Tokens,
    // 2: words longer than MAX_TRAIN_WORD are left out of tokenizer training.
    version: 2,
    summary: "train a WordPiece/BPE/Unigram tokenizer and encode datasets to ids",
    parse: super::parse_as::<Tokenize>,
    schema: super::schema_of::<Tokenize>,
};

pub use crate::artefact::{CLS_ID, MASK_ID, PAD_ID, SPECIALS, UNK_ID};
/// Smallest vocabulary we accept: the specials plus room for characters.
const MIN_VOCAB: usize = 32;
/// Longest word (after normalisation and pre-tokenisation), in characters, that the tokenizer
/// is trained on: WordPiece's own limit, beyond which a word encodes as `[UNK]` anyway.
const MAX_TRAIN_WORD: usize = 100;

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
        let specials: Vec<AddedToken> = SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect();
        let (model, mut trainer): (tokenizers::ModelWrapper, TrainerWrapper) = match self.algorithm {
            Algorithm::Wordpiece => (
                WordPiece::builder()
                    .unk_token("[UNK]".into())
                    .build()
                    .map_err(|e| anyhow!("{e}"))?
                    .into(),
                WordPieceTrainer::builder()
                    .vocab_size(self.vocab_size)
                    .min_frequency(self.min_frequency())
                    .special_tokens(specials)
                    .show_progress(false)
                    .build()
                    .into(),
            ),
            Algorithm::Bpe => (
                BPE::builder()
                    .unk_token("[UNK]".into())
                    .continuing_subword_prefix("##".into())
                    .build()
                    .map_err(|e| anyhow!("{e}"))?
                    .into(),
                BpeTrainer::builder()
                    .vocab_size(self.vocab_size)
                    .min_frequency(self.min_frequency())
                    .special_tokens(specials)
                    .continuing_subword_prefix("##".into())
                    .show_progress(false)
                    .build()
                    .into(),
            ),
            Algorithm::Wordlevel => (
                WordLevel::builder()
                    .unk_token("[UNK]".into())
                    .build()
                    .map_err(|e| anyhow!("{e}"))?
                    .into(),
                WordLevelTrainer::builder()
                    .vocab_size(self.vocab_size)
                    .min_frequency(self.min_frequency())
                    .special_tokens(specials)
                    .show_progress(false)
                    .build()
                    .map_err(|e| anyhow!("{e}"))?
                    .into(),
            ),
            Algorithm::Unigram => (
                Unigram::default().into(),
                UnigramTrainerBuilder::default()
                    .vocab_size(self.vocab_size as u32)
                    .special_tokens(specials)
                    .unk_token(Some("[UNK]".into()))
                    .show_progress(false)
                    .build()
                    .map_err(|e| anyhow!("{e}"))?
                    .into(),
            ),
        };
        // Reproducible vocabularies: see crate::determinism.
        crate::determinism::init();
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut tok = Tokenizer::new(model);
        tok.with_normalizer(Some(BertNormalizer::new(
            true,
            true,
            Some(self.lowercase),
            self.lowercase,
        )));
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        let texts: Vec<Cow<str>> = texts
            .iter()
            .map(|t| without_long_words(&tok, t))
            .collect::<Result<_>>()?;
        tok.train(&mut trainer, texts.iter())
            .map_err(|e| anyhow!("training the tokenizer failed: {e}"))?;
        for (id, s) in SPECIALS.iter().enumerate() {
            let got = tok.token_to_id(s);
            if got != Some(id as u32) {
                return Err(anyhow!("internal: special token {s} got id {got:?}, expected {id}"));
            }
        }
        Ok(tok)
    }
}

/// `text` without the words the tokenizer trainer must not see: those longer than
/// [`MAX_TRAIN_WORD`] characters once normalised and pre-tokenised, the way the trainer splits.
///
/// Such "words" are blobs (base64, hashes, a pasted line with no spaces); they teach a
/// vocabulary nothing, and the trainers handle them badly: BPE/WordPiece merging is quadratic in
/// a word's length (one 2 MB blob took five minutes) and the Unigram trainer overflowed the
/// stack on a 100 kB one, which aborts the whole process. Texts without a long whitespace-free
/// run (nearly all) are returned unchanged; the others are rebuilt from their kept words joined
/// by spaces, which normalise and pre-tokenise to the same words again.
fn without_long_words<'a>(tok: &Tokenizer, text: &'a str) -> Result<Cow<'a, str>> {
    if text.split_whitespace().all(|w| w.len() <= MAX_TRAIN_WORD) {
        return Ok(Cow::Borrowed(text));
    }
    let mut pts = PreTokenizedString::from(text);
    if let Some(n) = tok.get_normalizer() {
        pts.normalize(|s| n.normalize(s)).map_err(|e| anyhow!("{e}"))?;
    }
    if let Some(p) = tok.get_pre_tokenizer() {
        p.pre_tokenize(&mut pts).map_err(|e| anyhow!("{e}"))?;
    }
    let kept: Vec<&str> = pts
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(w, _, _)| w)
        .filter(|w| w.chars().count() <= MAX_TRAIN_WORD)
        .collect();
    Ok(Cow::Owned(kept.join(" ")))
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
            let encoded: Vec<Vec<u32>> = data
                .texts
                .par_chunks(512)
                .map(|chunk| {
                    let out = chunk
                        .iter()
                        .map(|t| tok.encode_fast(t.as_str(), false).map(|e| e.get_ids().to_vec()))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| anyhow!("encoding `{name}` failed: {e}"));
                    ctx.progress.inc(chunk.len() as u64);
                    out
                })
                .collect::<Result<Vec<Vec<Vec<u32>>>>>()?
                .into_iter()
                .flatten()
                .collect();
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

    /// The words the trainer is fed for `text` (normalised, pre-tokenised), as `build` sets up.
    fn words(tok: &Tokenizer, text: &str) -> Vec<String> {
        let mut pts = PreTokenizedString::from(text);
        pts.normalize(|s| tok.get_normalizer().unwrap().normalize(s)).unwrap();
        tok.get_pre_tokenizer().unwrap().pre_tokenize(&mut pts).unwrap();
        pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(w, _, _)| w.to_string())
            .collect()
    }

    #[test]
    fn only_long_words_are_left_out_of_training() {
        let mut tok = Tokenizer::new(WordPiece::default());
        tok.with_normalizer(Some(BertNormalizer::new(true, true, Some(true), true)));
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        // Chinese without spaces (one long whitespace-free run, but one word per character),
        // accents, punctuation: the rebuilt text must give the trainer the same words.
        let chinese =
            "这家酒店的服务很好，房间非常干净，早餐也不错，前台热情，位置方便，价格便宜，下次还来。".repeat(3);
        let mixed = "Crème-brûlée,don't-stop!example.com/a_very/long/path?with=params&and=more".repeat(4);
        for text in [chinese.as_str(), mixed.as_str()] {
            let kept = without_long_words(&tok, text).unwrap();
            assert!(matches!(kept, Cow::Owned(_)), "the check should have run on {text}");
            assert_eq!(words(&tok, &kept), words(&tok, text), "{text}");
        }
        let blob = "x".repeat(MAX_TRAIN_WORD + 1);
        let text = format!("A great film {blob} with {}", "y".repeat(MAX_TRAIN_WORD));
        let kept = without_long_words(&tok, &text).unwrap();
        let mut expected = words(&tok, &text);
        expected.retain(|w| w != &blob);
        assert_eq!(words(&tok, &kept), expected);
        assert!(!kept.contains(&blob));
    }

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
