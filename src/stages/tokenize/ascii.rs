//! BERT's normaliser and pre-tokeniser, as warmstart configures them, in one pass over ASCII.
//!
//! Most texts are ASCII. For them the `tokenizers` pipeline — a normalised string that tracks
//! alignments, rebuilt by each normalisation step, then split twice — costs far more than the
//! words it finds: on the IMDB reviews it ran at ~4 MB/s per core and was most of tokenize's time.
//! On ASCII, warmstart's configuration (`BertNormalizer` with clean_text, CJK splitting, accents
//! stripped and lower-cased together; `BertPreTokenizer`) comes down to four byte rules:
//!
//! | byte | BertNormalizer | BertPreTokenizer | here |
//! |---|---|---|---|
//! | 0x00–0x08, 0x0B, 0x0C, 0x0E–0x1F, 0x7F | removed (control; its neighbours join) | — | skipped |
//! | `\t` `\n` `\r` space | become a space | split on, removed | end the word |
//! | ASCII punctuation and symbols | kept | isolated | end the word and are one |
//! | `A`–`Z` | lower-cased when `lowercase` | — | lower-cased when `lowercase` |
//!
//! CJK splitting and accent stripping change nothing in ASCII. Non-ASCII texts take the
//! `tokenizers` path. `same_words_as_the_pipeline` checks every byte and random strings.

/// Calls `word` with each word of `text`, normalised and pre-tokenised, in order; returns
/// `false` without calling it when `text` is not ASCII.
pub fn for_each_word(text: &str, lowercase: bool, mut word: impl FnMut(&str)) -> bool {
    if !text.is_ascii() {
        return false;
    }
    let mut buf = String::with_capacity(32);
    for b in text.bytes() {
        match b {
            b'\t' | b'\n' | b'\r' | b' ' => flush(&mut buf, &mut word),
            0..=0x1f | 0x7f => {}
            _ if b.is_ascii_punctuation() => {
                flush(&mut buf, &mut word);
                let p = [b];
                // One ASCII byte is always valid UTF-8.
                if let Ok(s) = std::str::from_utf8(&p) {
                    word(s);
                }
            }
            _ if lowercase => buf.push(b.to_ascii_lowercase() as char),
            _ => buf.push(b as char),
        }
    }
    flush(&mut buf, &mut word);
    true
}

fn flush(buf: &mut String, word: &mut impl FnMut(&str)) {
    if !buf.is_empty() {
        word(buf);
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
    use tokenizers::{Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

    fn pipeline(text: &str, lowercase: bool) -> Vec<String> {
        let norm = super::super::vocab::normalizer(lowercase);
        let mut pts = PreTokenizedString::from(text);
        pts.normalize(|s| norm.normalize(s)).unwrap();
        BertPreTokenizer.pre_tokenize(&mut pts).unwrap();
        pts.get_splits(OffsetReferential::Original, OffsetType::Byte)
            .into_iter()
            .map(|(w, _, _)| w.to_owned())
            .collect()
    }

    fn ours(text: &str, lowercase: bool) -> Vec<String> {
        let mut v = Vec::new();
        assert!(for_each_word(text, lowercase, |w| v.push(w.to_owned())));
        v
    }

    #[test]
    fn same_words_as_the_pipeline() {
        for lowercase in [true, false] {
            // Every ASCII byte between two words, alone, and doubled.
            for b in 0u8..128 {
                let c = b as char;
                for text in [format!("Ab{c}Cd"), c.to_string(), format!("{c}{c}x")] {
                    assert_eq!(ours(&text, lowercase), pipeline(&text, lowercase), "byte {b:#04x}");
                }
            }
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            for _ in 0..2000 {
                let len = rng.gen_range(0..40);
                let text: String = (0..len)
                    .map(|_| match rng.gen_range(0..4) {
                        0 => rng.gen_range(0u8..128) as char,
                        1 => ' ',
                        _ => rng.gen_range(b'A'..=b'z') as char,
                    })
                    .collect();
                assert_eq!(ours(&text, lowercase), pipeline(&text, lowercase), "{text:?}");
            }
        }
        assert!(!for_each_word("café", true, |_| {}), "non-ASCII takes the pipeline");
    }
}
