use super::*;
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
