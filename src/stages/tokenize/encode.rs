//! Encoding texts to ids with a trained tokenizer: `Tokenizer::encode_fast`, made cheap for the
//! common case.
//!
//! `encode_fast` builds a `NormalizedString` per text (alignment-tracking, rebuilt by each
//! normalisation step), splits it twice and runs the model on every word, even the thousandth
//! "the". On IMDB that was ~9 s of one core for 33 MB. Two facts make most of that work
//! unnecessary, without changing a single id:
//!
//! | step of `encode_fast` | on an ASCII text without `[` | here |
//! |---|---|---|
//! | split on added (special) tokens, matched on the raw text | no match: every special token starts with `[` | skipped |
//! | BertNormalizer + BertPreTokenizer | four byte rules | [`super::ascii::for_each_word`] |
//! | model on each word (WordPiece/BPE/Unigram/WordLevel) | a pure function of the word | `Model::tokenize`, cached per worker |
//!
//! Every other text takes `encode_fast` itself. The ids are the same either way;
//! `same_ids_as_encode_fast` checks it for every algorithm on a corpus with special tokens,
//! non-ASCII text, control characters and over-long words.

use ahash::AHashMap;
use anyhow::{anyhow, Result};
use rayon::prelude::*;
use tokenizers::{Model, Tokenizer};

/// Texts per parallel work item: large enough that a worker's word cache pays off, small enough
/// to keep both cores busy on the smallest datasets that matter.
const CHUNK: usize = 512;

/// Encodes `texts` (ids only, no special tokens added), calling `done(n)` after each `n` texts.
/// `lowercase` must be the setting `tok`'s normaliser was built with.
pub fn encode_all(
    tok: &Tokenizer,
    lowercase: bool,
    texts: &[String],
    done: impl Fn(u64) + Sync,
) -> Result<Vec<Vec<u32>>> {
    let chunks: Vec<Vec<Vec<u32>>> = texts
        .par_chunks(CHUNK)
        .map_init(AHashMap::<String, Vec<u32>>::new, |cache, chunk| {
            let out = chunk
                .iter()
                .map(|t| encode_one(tok, lowercase, t, cache))
                .collect::<Result<Vec<_>>>();
            done(chunk.len() as u64);
            out
        })
        .collect::<Result<_>>()?;
    Ok(chunks.into_iter().flatten().collect())
}

fn encode_one(
    tok: &Tokenizer,
    lowercase: bool,
    text: &str,
    cache: &mut AHashMap<String, Vec<u32>>,
) -> Result<Vec<u32>> {
    if !text.contains('[') {
        let mut ids = Vec::new();
        let mut failed = None;
        let ascii = super::ascii::for_each_word(text, lowercase, |w| {
            if let Some(hit) = cache.get(w) {
                ids.extend_from_slice(hit);
                return;
            }
            match tok.get_model().tokenize(w) {
                Ok(tokens) => {
                    let word_ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
                    ids.extend_from_slice(&word_ids);
                    cache.insert(w.to_owned(), word_ids);
                }
                Err(e) => failed = Some(e.to_string()),
            }
        });
        if let Some(e) = failed {
            return Err(anyhow!("tokenizer model failed: {e}"));
        }
        if ascii {
            return Ok(ids);
        }
    }
    tok.encode_fast(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| anyhow!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::super::vocab::{every_spec, train};
    use super::*;

    fn corpus() -> Vec<String> {
        let mut v: Vec<String> = [
            "The film was UNBELIEVABLY good, wasn't it? 10/10!!",
            "a [MASK] token and [CLS] and [PAD] [UNK] [SEP] in raw text",
            "brackets [ alone ] and [mask] lower-cased",
            "Café naïve résumé — non-ASCII goes the slow way",
            "中文文本没有空格",
            "tabs\tand\nnewlines\r\nand \u{7}bell\u{1f}controls\u{7f}here",
            "",
            "   ",
            "!!!???",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!("long {} word", "x".repeat(150)));
        v.push(format!("long {} word", "ab".repeat(60)));
        for i in 0..300 {
            v.push(format!(
                "review {i}: the plot of movie{} was {} and the acting was fine",
                i % 17,
                ["great", "bad", "slow"][i % 3]
            ));
        }
        v
    }

    /// The fast path gives exactly `encode_fast`'s ids, for every algorithm and both cases.
    #[test]
    fn same_ids_as_encode_fast() {
        let texts = corpus();
        for spec in every_spec(120) {
            let tok = train(&spec, &texts).unwrap();
            let fast = encode_all(&tok, spec.lowercase, &texts, |_| {}).unwrap();
            let slow: Vec<Vec<u32>> = texts
                .iter()
                .map(|t| tok.encode_fast(t.as_str(), false).unwrap().get_ids().to_vec())
                .collect();
            assert_eq!(fast, slow, "{:?}, lowercase {}", spec.algorithm, spec.lowercase);
        }
    }
}
