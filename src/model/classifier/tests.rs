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
        layers: None,
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

/// `layers`: layer `k` of a transformer is the top of the same weights cut to `k` layers (0:
/// the normed embeddings), the top layer is `states`; for the other encoders layer 0 is the
/// embedding lookup. A classifier on layers puts each layer's pooled block side by side in the
/// order named, so its features are the single-layer features concatenated.
#[test]
fn chosen_layers_are_the_encoders_intermediate_states() {
    for kind in [
        EncoderType::Bag,
        EncoderType::Lstm,
        EncoderType::Cnn,
        EncoderType::Transformer,
    ] {
        let (dev, model, data) = tiny(Pooling::Mean, 0, kind);
        let enc = &model.cfg.encoder;
        let top = enc.depth();
        let p = |n: &str| Ok(model.params.get(n)?.clone());
        let x = Tokens {
            ids: &data.ids,
            mask: &data.mask,
            rows: 3,
            len: 3,
        };
        let all: Vec<usize> = (0..=top).collect();
        let got: Vec<Vec<f32>> = enc
            .layer_states(&dev, &p, x, &all)
            .unwrap()
            .iter()
            .map(|t| t.as_vec())
            .collect();
        assert_eq!(got.len(), top + 1);
        assert_eq!(
            got[top],
            enc.states(&dev, &p, x, false).unwrap().as_vec(),
            "{kind:?} top"
        );
        for (k, layer) in got.iter().enumerate().take(top) {
            let want = match enc {
                EncoderSpec::Transformer(t) => {
                    let cut = EncoderSpec::Transformer(TransformerConfig {
                        layers: Some(k),
                        ..t.clone()
                    });
                    cut.states(&dev, &p, x, false).unwrap().as_vec()
                }
                _ => crate::model::ops::embedding(&dev, model.params.get("encoder.embedding").unwrap().clone(), x.ids)
                    .as_vec(),
            };
            assert_eq!(layer, &want, "{kind:?} layer {k}");
        }
        assert!(enc.layer_states(&dev, &p, x, &[top + 1]).is_err(), "{kind:?}");
        if top == 0 {
            continue; // bag: its one layer is its states
        }
        // Features on layers [top, 0] = top's features, then layer 0's.
        let mut cfg = model.cfg.clone();
        cfg.layers = Some(vec![top, 0]);
        assert_eq!(cfg.layers_problem(), None);
        let layered = Classifier::from_parts(&dev, cfg.clone(), with_head(&dev, &model, &cfg)).unwrap();
        let f = layered.features(&dev, &data.ids, &data.mask, 3).unwrap().as_vec();
        let single = |l: usize| {
            let mut c = model.cfg.clone();
            c.layers = Some(vec![l]);
            let m = Classifier::from_parts(&dev, c.clone(), with_head(&dev, &model, &c)).unwrap();
            m.features(&dev, &data.ids, &data.mask, 3).unwrap().as_vec()
        };
        let (a, b) = (single(top), single(0));
        let (wa, wb) = (a.len() / 3, b.len() / 3);
        for r in 0..3 {
            let row = [&a[r * wa..(r + 1) * wa], &b[r * wb..(r + 1) * wb]].concat();
            assert_eq!(&f[r * (wa + wb)..(r + 1) * (wa + wb)], &row[..], "{kind:?} row {r}");
        }
        assert_eq!(
            cfg.feature_blocks().iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            [format!("mean@{top}"), "mean@0".to_string()]
        );
        // Bad lists are refused by name.
        for bad in [vec![], vec![0, 0], vec![top + 1]] {
            let mut c = model.cfg.clone();
            c.layers = Some(bad.clone());
            assert!(c.layers_problem().is_some(), "{kind:?} {bad:?}");
        }
    }
}

/// `model`'s weights with a head as wide as `cfg`'s features (zeros): what `from_parts` checks.
fn with_head(dev: &Dev, model: &Classifier, cfg: &ModelConfig) -> Params {
    let mut p = model.params.clone();
    p.tensors
        .insert("head.w".into(), zeros(dev, cfg.feature_width(), cfg.labels.len()));
    p
}
