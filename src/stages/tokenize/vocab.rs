//! Training the vocabulary on every core, with exactly the bytes `Tokenizer::train` writes.
//!
//! Why not call `Tokenizer::train`: its trainers count words in `ahash` maps and break ties
//! between equally frequent merges by those maps' iteration order. With the crate's own
//! parallelism on, the maps are filled in an order that depends on how rayon split the texts, so
//! the vocabulary would depend on the thread count; with it off (see [`crate::determinism`]),
//! the counting — normalising and pre-tokenising every text, most of the time spent — runs on one
//! core.
//!
//! What every trainer's `feed` does with parallelism off: for each text in order, count its words
//! in a fresh map; add that map's entries, in its iteration order, to one total map. Besides the
//! counts, the total's iteration order is all the training depends on, and it follows from the
//! order in which its keys were first inserted (same hasher, no removals). So this module:
//!
//! | step | runs | what |
//! |---|---|---|
//! | 1 | parallel, chunks of [`CHUNK`] texts | each text's words counted in a fresh `AHashMap` (the trainer's hasher, so the trainer's iteration order), added in that order to the chunk's insertion-ordered map |
//! | 2 | serial, chunk order | chunk maps merged into an insertion-ordered total: the trainer's first-insertion order |
//! | 3 | serial | the trainer fed each distinct word once, in that order, as a "text" of `count` copies of it, so its total receives the same keys in the same order with the same counts |
//!
//! Chunks are fixed by the data, never by the pool size, so the result is the same on any thread
//! count. `same_bytes_as_tokenizer_train` checks the equivalence for all four algorithms.

use ahash::AHashMap;
use anyhow::{anyhow, Result};
use indexmap::IndexMap;
use rayon::prelude::*;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::unigram::{Unigram, UnigramTrainerBuilder};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{
    AddedToken, Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, Tokenizer, Trainer,
};

use super::{Algorithm, SPECIALS};

/// Longest word (after normalisation and pre-tokenisation), in characters, that the tokenizer
/// is trained on: WordPiece's own limit, beyond which a word encodes as `[UNK]` anyway.
///
/// Longer "words" are blobs (base64, hashes, a pasted line with no spaces); they teach a
/// vocabulary nothing, and the trainers handle them badly: BPE/WordPiece merging is quadratic in
/// a word's length (one 2 MB blob took five minutes) and the Unigram trainer overflowed the
/// stack on a 100 kB one, which aborts the whole process.
pub const MAX_TRAIN_WORD: usize = 100;

/// Texts per counting task. Fixed (not derived from the pool size) so the merge order, and with
/// it the vocabulary, is the same on any thread count.
const CHUNK: usize = 256;
/// Chunks counted before their maps are merged: bounds the memory held by unmerged maps.
const WINDOW: usize = 64;

/// What a vocabulary is trained with (the tokenize stage's parameters that matter here).
pub struct VocabSpec {
    pub algorithm: Algorithm,
    pub vocab_size: usize,
    pub lowercase: bool,
    pub min_frequency: u64,
}

/// The normaliser every warmstart tokenizer uses: BERT's (control characters removed, CJK
/// characters split out, accents stripped and lower-cased when `lowercase`).
pub fn normalizer(lowercase: bool) -> BertNormalizer {
    BertNormalizer::new(true, true, Some(lowercase), lowercase)
}

fn trainer_and_model(spec: &VocabSpec) -> Result<(ModelWrapper, TrainerWrapper)> {
    let specials: Vec<AddedToken> = SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect();
    Ok(match spec.algorithm {
        Algorithm::Wordpiece => (
            WordPiece::builder()
                .unk_token("[UNK]".into())
                .build()
                .map_err(|e| anyhow!("{e}"))?
                .into(),
            WordPieceTrainer::builder()
                .vocab_size(spec.vocab_size)
                .min_frequency(spec.min_frequency)
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
                .vocab_size(spec.vocab_size)
                .min_frequency(spec.min_frequency)
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
                .vocab_size(spec.vocab_size)
                .min_frequency(spec.min_frequency)
                .special_tokens(specials)
                .show_progress(false)
                .build()
                .map_err(|e| anyhow!("{e}"))?
                .into(),
        ),
        Algorithm::Unigram => (
            Unigram::default().into(),
            UnigramTrainerBuilder::default()
                .vocab_size(spec.vocab_size as u32)
                .special_tokens(specials)
                .unk_token(Some("[UNK]".into()))
                .show_progress(false)
                .build()
                .map_err(|e| anyhow!("{e}"))?
                .into(),
        ),
    })
}

/// Trains a tokenizer on `texts`; the special tokens get ids 0..SPECIALS.len().
pub fn train(spec: &VocabSpec, texts: &[String]) -> Result<Tokenizer> {
    // Reproducible maps: see crate::determinism.
    crate::determinism::init();
    tokenizers::utils::parallelism::set_parallelism(false);
    let (mut model, mut trainer) = trainer_and_model(spec)?;
    let norm = normalizer(spec.lowercase);
    let counts = count_words(&norm, texts)?;
    trainer
        .feed(counts.keys(), |w| Ok(vec![w.to_owned(); counts[w] as usize]))
        .map_err(|e| anyhow!("training the tokenizer failed: {e}"))?;
    drop(counts);
    let specials = trainer
        .train(&mut model)
        .map_err(|e| anyhow!("training the tokenizer failed: {e}"))?;
    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(norm));
    tok.with_pre_tokenizer(Some(BertPreTokenizer));
    tok.add_special_tokens(&specials);
    for (id, s) in SPECIALS.iter().enumerate() {
        let got = tok.token_to_id(s);
        if got != Some(id as u32) {
            return Err(anyhow!("internal: special token {s} got id {got:?}, expected {id}"));
        }
    }
    Ok(tok)
}

type Ordered = IndexMap<String, u64, ahash::RandomState>;

/// Word counts over `texts`, keys in the order the trainers' own counting first inserts them
/// (module docs, steps 1 and 2).
fn count_words(norm: &BertNormalizer, texts: &[String]) -> Result<Ordered> {
    let mut total = Ordered::default();
    for window in texts.chunks(CHUNK * WINDOW) {
        let chunks: Vec<Ordered> = window
            .par_chunks(CHUNK)
            .map(|chunk| {
                let mut ordered = Ordered::default();
                for text in chunk {
                    // A fresh map per text, built as the trainer builds it: its iteration order
                    // is what the trainer merges by.
                    let mut per_text: AHashMap<String, u64> = AHashMap::new();
                    // `get_mut` then `insert` inserts new keys in the order `entry` would.
                    for_each_train_word(norm, text, |w| match per_text.get_mut(w) {
                        Some(n) => *n += 1,
                        None => {
                            per_text.insert(w.to_owned(), 1);
                        }
                    })?;
                    merge(&mut ordered, per_text);
                }
                Ok(ordered)
            })
            .collect::<Result<_>>()?;
        for c in chunks {
            merge(&mut total, c);
        }
    }
    Ok(total)
}

fn merge(into: &mut Ordered, from: impl IntoIterator<Item = (String, u64)>) {
    for (w, n) in from {
        *into.entry(w).or_default() += n;
    }
}

/// Calls `f` with each word of `text` the trainer learns from, in order: normalised and
/// pre-tokenised as the tokenizer will encode (one pass on ASCII, see [`super::ascii`]), without
/// the words longer than [`MAX_TRAIN_WORD`] characters. The length check runs only on texts
/// with a long whitespace-free run (nearly none).
pub fn for_each_train_word(norm: &BertNormalizer, text: &str, mut f: impl FnMut(&str)) -> Result<()> {
    let long = text.split_whitespace().any(|w| w.len() > MAX_TRAIN_WORD);
    let mut keep = |w: &str| {
        if !long || w.chars().count() <= MAX_TRAIN_WORD {
            f(w)
        }
    };
    if super::ascii::for_each_word(text, norm.lowercase, &mut keep) {
        return Ok(());
    }
    let mut pts = PreTokenizedString::from(text);
    pts.normalize(|s| norm.normalize(s)).map_err(|e| anyhow!("{e}"))?;
    BertPreTokenizer.pre_tokenize(&mut pts).map_err(|e| anyhow!("{e}"))?;
    for (w, _, _) in pts.get_splits(OffsetReferential::Original, OffsetType::Byte) {
        keep(w);
    }
    Ok(())
}

/// Every algorithm, lowercased and not: the cases the tokenizer tests sweep.
#[cfg(test)]
pub(super) fn every_spec(vocab_size: usize) -> Vec<VocabSpec> {
    let algorithms = [
        Algorithm::Wordpiece,
        Algorithm::Bpe,
        Algorithm::Unigram,
        Algorithm::Wordlevel,
    ];
    algorithms
        .into_iter()
        .flat_map(|algorithm| {
            [true, false].map(|lowercase| VocabSpec {
                algorithm,
                vocab_size,
                lowercase,
                min_frequency: 2,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// The reference this module must match: `Tokenizer::train` (parallelism off) on the texts
    /// with their long words removed, as the tokenize stage did before counting in parallel.
    fn reference(spec: &VocabSpec, texts: &[String]) -> Tokenizer {
        crate::determinism::init();
        tokenizers::utils::parallelism::set_parallelism(false);
        let (model, mut trainer) = trainer_and_model(spec).unwrap();
        let mut tok = Tokenizer::new(model);
        tok.with_normalizer(Some(normalizer(spec.lowercase)));
        tok.with_pre_tokenizer(Some(BertPreTokenizer));
        let kept: Vec<Cow<str>> = texts.iter().map(|t| without_long_words(&tok, t)).collect();
        tok.train(&mut trainer, kept.iter()).unwrap();
        tok
    }

    /// `text` rebuilt from its words of at most MAX_TRAIN_WORD characters, joined by spaces
    /// (which normalise and pre-tokenise to the same words again).
    fn without_long_words<'a>(tok: &Tokenizer, text: &'a str) -> Cow<'a, str> {
        if text.split_whitespace().all(|w| w.len() <= MAX_TRAIN_WORD) {
            return Cow::Borrowed(text);
        }
        let mut pts = PreTokenizedString::from(text);
        pts.normalize(|s| tok.get_normalizer().unwrap().normalize(s)).unwrap();
        tok.get_pre_tokenizer().unwrap().pre_tokenize(&mut pts).unwrap();
        let kept: Vec<&str> = pts
            .get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(w, _, _)| w)
            .filter(|w| w.chars().count() <= MAX_TRAIN_WORD)
            .collect();
        Cow::Owned(kept.join(" "))
    }

    /// A corpus with what trips tokenizers up: ties between equally frequent pairs, accents, CJK
    /// without spaces, control characters, punctuation runs, long blobs, empty texts; more texts
    /// than one window so the cross-window merge is exercised.
    fn corpus() -> Vec<String> {
        let base = [
            "The film was unbelievably good, and the plot -- twisty!",
            "Crème brûlée? Naïve café-owners don't stop... (really)",
            "这家酒店的服务很好，房间非常干净，早餐也不错。",
            "tab\there\u{0}nul\u{7f}del\r\nnew line ÀÉÎ ß",
            "",
            "   ",
            "a b c d e f g ab bc cd de ef fg abc bcd cde",
            "!!!??? ... ,,, [MASK] [CLS] ##ing",
        ];
        let blob = "Zq9".repeat(40);
        (0..CHUNK * WINDOW + 700)
            .map(|i| {
                let mut t = format!("{} w{} x{}", base[i % base.len()], i % 97, (i * 7) % 13);
                if i % 501 == 0 {
                    t.push(' ');
                    t.push_str(&blob);
                }
                if i % 777 == 0 {
                    t.push_str(&"这很好".repeat(50));
                }
                t
            })
            .collect()
    }

    #[test]
    fn same_bytes_as_tokenizer_train() {
        let texts = corpus();
        for spec in every_spec(300) {
            let ours = train(&spec, &texts).unwrap().to_string(false).unwrap();
            let theirs = reference(&spec, &texts).to_string(false).unwrap();
            assert!(
                ours == theirs,
                "{:?} lowercase={}: vocabularies differ",
                spec.algorithm,
                spec.lowercase
            );
        }
    }

    #[test]
    fn same_vocabulary_on_any_thread_count() {
        let texts = corpus();
        let spec = VocabSpec {
            algorithm: Algorithm::Wordpiece,
            vocab_size: 300,
            lowercase: true,
            min_frequency: 2,
        };
        let on = |n: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
            pool.install(|| train(&spec, &texts).unwrap().to_string(false).unwrap())
        };
        assert!(on(1) == on(3));
    }

    fn train_words(norm: &BertNormalizer, text: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_train_word(norm, text, |w| v.push(w.to_owned())).unwrap();
        v
    }

    #[test]
    fn only_long_words_are_left_out_of_training() {
        let norm = normalizer(true);
        let blob = "x".repeat(MAX_TRAIN_WORD + 1);
        let text = format!("A great film {blob} with {}", "y".repeat(MAX_TRAIN_WORD));
        let words = train_words(&norm, &text);
        assert!(!words.contains(&blob));
        assert!(words.contains(&"y".repeat(MAX_TRAIN_WORD)));
        // Chinese without spaces: one long whitespace-free run, but one word per character.
        let chinese = "这家酒店的服务很好，房间非常干净。".repeat(10);
        assert_eq!(train_words(&norm, &chinese).len(), chinese.chars().count());
    }
}
