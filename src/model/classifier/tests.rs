use super::*;
use std::borrow::Cow;

use crate::artefact::{Shape, Side};
use crate::model::encoder_config::TransformerConfig;

fn tiny(pooling: Pooling, hidden: usize, kind: EncoderType) -> (Dev, Classifier, Padded) {
    let dev = Dev::default();
    let cfg = ModelConfig {
        encoder: match kind.with_dim(4) {
            EncoderSpec::Transformer(t) => EncoderSpec::Transformer(TransformerConfig { heads: Some(2), ..t }),
            other => other,
        },
        vocab_size: 7,
        pooling,
        hidden,
        labels: vec!["a".into(), "b".into(), "c".into()],
        ngrams: None,
        shape: Shape {
            max_len: 3,
            add_cls: false,
            padding: Side::Post,
            truncating: Side::Post,
        },
    };
    let model = Classifier::new(&dev, cfg, None, 7).unwrap();
    let data = Padded {
        len: 3,
        ids: vec![5, 6, 0, 1, 2, 3, 4, 0, 0],
        mask: vec![1, 1, 0, 1, 1, 1, 1, 0, 0],
        labels: vec![0, 2, 1],
    };
    (dev, model, data)
}

/// Ids beyond the embedding table (sequences from another tokenizer) are an error on every
/// encoder, not an out-of-bounds panic inside the embedding op.
#[test]
fn token_ids_beyond_the_embedding_are_an_error() {
    for kind in [
        EncoderType::Bag,
        EncoderType::Lstm,
        EncoderType::Cnn,
        EncoderType::Transformer,
    ] {
        let (dev, model, mut data) = tiny(Pooling::Mean, 0, kind);
        data.ids[1] = 7; // vocab_size is 7: ids 0..=6
        let err = model.predict_proba(&dev, &data).expect_err("must fail");
        assert!(
            err.to_string().contains("outside the embedding table"),
            "{kind:?}: {err}"
        );
    }
}

/// Autodiff gradients of every parameter match central finite differences — the check that
/// no gradient is cut silently on the tape (pooling, bias broadcasts, the MLP head).
#[test]
fn gradients_match_finite_differences() {
    let cases = [
        (Pooling::Mean, 0, EncoderType::Bag),
        (Pooling::Max, 5, EncoderType::Bag),
        (Pooling::Concat, 0, EncoderType::Bag),
        (Pooling::Meanmax, 0, EncoderType::Bag),
        (Pooling::Mean, 0, EncoderType::Lstm),
        (Pooling::Last, 3, EncoderType::Lstm),
        (Pooling::First, 0, EncoderType::Lstm),
        (Pooling::Max, 0, EncoderType::Cnn),
        (Pooling::Mean, 0, EncoderType::Transformer),
        (Pooling::Concat, 0, EncoderType::Transformer),
    ];
    for (pooling, hidden, kind) in cases {
        let (dev, mut model, data) = tiny(pooling, hidden, kind);
        let kind = model.cfg.encoder.name();
        let batch = [0usize, 1, 2];
        let grads = model.batch_loss(&dev, &data, &batch, None).unwrap().backward();
        let names: Vec<String> = model.params.tensors.keys().cloned().collect();
        for name in names {
            let g: Vec<f32> = grads.get(&model.params.tensors[&name].retaped::<Tp>()).as_vec();
            let w = model.params.tensors[&name].as_vec();
            for i in (0..w.len()).step_by(3) {
                let eps = 2e-3f32;
                let mut at = |delta: f32| {
                    let mut v = w.clone();
                    v[i] += delta;
                    model.params.tensors.get_mut(&name).unwrap().copy_from(&v);
                    let l = model.batch_loss(&dev, &data, &batch, None).unwrap().array();
                    model.params.tensors.get_mut(&name).unwrap().copy_from(&w);
                    l
                };
                let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
                assert!(
                    (numeric - g[i]).abs() < 2e-3 + 2e-2 * numeric.abs(),
                    "{kind:?}/{pooling:?}/{hidden}: d loss / d {name}[{i}]: autodiff {} vs numeric {numeric}",
                    g[i]
                );
            }
        }
    }
}

/// Batches are cut to their real columns: a row's pooled features are the same whether it
/// sits in a batch with longer texts (more columns kept) or alone, on both padding sides and
/// every encoder — the cut changes the cost, not the result.
#[test]
fn a_rows_features_do_not_depend_on_the_batchs_padding() {
    for side in [Side::Post, Side::Pre] {
        for kind in EncoderType::all() {
            let (dev, mut model, _) = tiny(Pooling::Mean, 0, kind);
            model.cfg.shape.max_len = 6;
            model.cfg.shape.padding = side;
            // Texts of 2, 5 and 1 tokens padded to 6 on `side`.
            let texts: [&[u32]; 3] = [&[5, 6], &[1, 2, 3, 4, 5], &[6]];
            let mut data = Padded {
                len: 6,
                ids: Vec::new(),
                mask: Vec::new(),
                labels: vec![0, 1, 2],
            };
            for t in texts {
                let pad = 6 - t.len();
                let (ids, mask): (Vec<u32>, Vec<u8>) = match side {
                    Side::Post => (
                        t.iter().copied().chain(std::iter::repeat_n(0, pad)).collect(),
                        (0..6).map(|i| (i < t.len()) as u8).collect(),
                    ),
                    Side::Pre => (
                        std::iter::repeat_n(0, pad).chain(t.iter().copied()).collect(),
                        (0..6).map(|i| (i >= pad) as u8).collect(),
                    ),
                };
                data.ids.extend(ids);
                data.mask.extend(mask);
            }
            let together = model.features_of(&dev, &data).unwrap();
            let w = model.cfg.feature_width();
            for r in 0..3 {
                let alone = model.features(&dev, data.row(r), data.mask_row(r), 1).unwrap().as_vec();
                for (a, b) in alone.iter().zip(&together[r * w..(r + 1) * w]) {
                    assert!((a - b).abs() < 1e-5, "{kind:?} {side:?} row {r}: {a} vs {b}");
                }
            }
        }
    }
}

#[test]
fn real_columns_keep_the_span_of_real_tokens_and_at_least_one_column() {
    // Post-padded rows of 4: real spans 0..2 and 0..3 → 3 columns.
    let (ids, mask, l) = real_columns(&[1, 2, 0, 0, 3, 4, 5, 0], &[1, 1, 0, 0, 1, 1, 1, 0], 2, 4);
    assert_eq!(
        (l, &ids[..], &mask[..]),
        (3, &[1, 2, 0, 3, 4, 5][..], &[1, 1, 0, 1, 1, 1][..])
    );
    // Pre-padded: spans 2..4 and 3..4 → the last 2 columns.
    let (ids, _, l) = real_columns(&[0, 0, 1, 2, 0, 0, 0, 3], &[0, 0, 1, 1, 0, 0, 0, 1], 2, 4);
    assert_eq!((l, &ids[..]), (2, &[1, 2, 0, 3][..]));
    // Nothing real: one column stays, so encoders see a non-empty batch.
    let (_, _, l) = real_columns(&[0, 0, 0], &[0, 0, 0], 1, 3);
    assert_eq!(l, 1);
    // Already full: borrowed, not copied.
    let (ids, _, _) = real_columns(&[1, 2], &[1, 1], 1, 2);
    assert!(matches!(ids, Cow::Borrowed(_)));
}
