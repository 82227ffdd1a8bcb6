use super::*;
use dfdx::tensor_ops::Backward;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Tp = OwnedTape<f32, Dev>;
type Op = dyn Fn(&Dev, Vec<Tensor<(usize, usize), f32, Dev, Tp>>) -> Tensor<(usize, usize), f32, Dev, Tp>;

/// Checks the op's gradients against central differences of `Σ out ⊙ R` (R fixed random).
fn check(name: &str, shapes: &[(usize, usize)], op: &Op) {
    let dev = Dev::default();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut vals: Vec<Vec<f32>> = shapes
        .iter()
        .map(|&(r, c)| (0..r * c).map(|_| rng.gen_range(-1.0..1.0)).collect())
        .collect();
    let loss = |vals: &[Vec<f32>]| -> (f32, Vec<Vec<f32>>) {
        let ts: Vec<T2> = vals
            .iter()
            .zip(shapes)
            .map(|(v, &s)| dev.tensor_from_vec(v.clone(), s))
            .collect();
        let out = op(&dev, ts.iter().map(|t| t.retaped::<Tp>()).collect());
        let shape = *out.shape();
        let mut r2 = ChaCha8Rng::seed_from_u64(2);
        let r: T2 = dev.tensor_from_vec((0..shape.0 * shape.1).map(|_| r2.gen_range(-1.0..1.0)).collect(), shape);
        let l = (out * r).sum::<Rank0, _>();
        let lv = l.array();
        let g = l.backward();
        (lv, ts.iter().map(|t| g.get(t).as_vec()).collect())
    };
    let (_, grads) = loss(&vals);
    for (k, g) in grads.iter().enumerate() {
        for i in 0..vals[k].len() {
            let eps = 1e-2f32;
            let w = vals[k][i];
            vals[k][i] = w + eps;
            let up = loss(&vals).0;
            vals[k][i] = w - eps;
            let down = loss(&vals).0;
            vals[k][i] = w;
            let numeric = (up - down) / (2.0 * eps);
            assert!(
                (numeric - g[i]).abs() < 5e-3 + 2e-2 * numeric.abs(),
                "{name}: input {k}[{i}]: autodiff {} vs numeric {numeric}",
                g[i]
            );
        }
    }
}

const MASK: [u8; 8] = [1, 1, 1, 0, 0, 1, 1, 1];

#[test]
fn lstm_gradients() {
    // b = 2 rows of l = 4 (post- and pre-padded), hidden 3.
    check("lstm", &[(8, 12), (3, 12)], &|dev, mut v| {
        let w = v.pop().unwrap();
        let x = v.pop().unwrap();
        lstm(dev, x, w, &MASK, 2, 4)
    });
}

#[test]
fn conv_gradients() {
    check("conv", &[(8, 3), (9, 2), (1, 2)], &|dev, mut v| {
        let b = v.pop().unwrap();
        let w = v.pop().unwrap();
        let x = v.pop().unwrap();
        conv1d_relu(dev, x, w, b, &MASK, 2, 4)
    });
}

#[test]
fn attention_gradients() {
    for causal in [false, true] {
        check("attention", &[(8, 12)], &move |dev, mut v| {
            attention(dev, v.pop().unwrap(), 2, &MASK, 2, 4, causal)
        });
    }
}

#[test]
fn linear_and_gelu_gradients() {
    check("linear", &[(5, 4), (4, 3), (1, 3)], &|dev, mut v| {
        let b = v.pop().unwrap();
        let w = v.pop().unwrap();
        linear(dev, v.pop().unwrap(), w, b)
    });
    check("gelu", &[(5, 4)], &|dev, mut v| gelu(dev, v.pop().unwrap()));
}

#[test]
fn add_gradients() {
    check("add", &[(3, 4), (3, 4)], &|dev, mut v| {
        let b = v.pop().unwrap();
        add(dev, v.pop().unwrap(), b)
    });
}

#[test]
fn embedding_gradients() {
    check("embedding", &[(4, 3)], &|dev, mut v| {
        embedding(dev, v.pop().unwrap(), &[2, 0, 2, 3, 2])
    });
}

#[test]
fn reductions_match_plain_loops() {
    for n in [0usize, 1, 7, 8, 9, 64, 67] {
        let x: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.25).collect();
        let y: Vec<f32> = (0..n).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
        assert!((sum(&x) - x.iter().sum::<f32>()).abs() < 1e-5);
        assert!((dot(&x, &y) - x.iter().zip(&y).map(|(a, b)| a * b).sum::<f32>()).abs() < 1e-5);
        assert_eq!(max(&x), x.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    }
}

#[test]
fn fast_math_is_accurate() {
    for i in -2000..2000 {
        let x = i as f32 * 0.01;
        assert!((exp(x) - x.exp()).abs() <= 2e-6 * x.exp(), "exp({x})");
        assert!((tanh(x) - x.tanh()).abs() <= 2e-6, "tanh({x})");
        assert!((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() <= 2e-6, "sigmoid({x})");
    }
}

#[test]
fn layer_norm_gradients() {
    check("layer_norm", &[(5, 4), (1, 4), (1, 4)], &|dev, mut v| {
        let b = v.pop().unwrap();
        let g = v.pop().unwrap();
        layer_norm(dev, v.pop().unwrap(), g, b)
    });
}

#[test]
fn softmax_xent_gradients() {
    check("softmax_xent", &[(4, 3), (6, 3)], &|dev, mut v| {
        let e = v.pop().unwrap();
        softmax_xent(dev, v.pop().unwrap(), e, &[5, 1, 2], &[0, 2, 1, 1])
    });
}

/// Padding carries the LSTM state: a post-padded row ends in the same state as the row
/// without padding, and attention ignores padded keys.
#[test]
fn padding_changes_nothing() {
    let dev = Dev::default();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
    let (x, w) = (r(3 * 8), r(2 * 8));
    let mut xp = x.clone();
    xp.extend(r(8)); // one padding step with arbitrary input
    let a = lstm::<NoneTape>(
        &dev,
        dev.tensor_from_vec(x, (3, 8)),
        dev.tensor_from_vec(w.clone(), (2, 8)),
        &[1, 1, 1],
        1,
        3,
    )
    .as_vec();
    let b = lstm::<NoneTape>(
        &dev,
        dev.tensor_from_vec(xp, (4, 8)),
        dev.tensor_from_vec(w, (2, 8)),
        &[1, 1, 1, 0],
        1,
        4,
    )
    .as_vec();
    assert_eq!(&a[4..6], &b[6..8]);
    let q = r(2 * 6);
    let mut qp = q.clone();
    qp.extend(r(6));
    let a = attention::<NoneTape>(&dev, dev.tensor_from_vec(q, (2, 6)), 1, &[1, 1], 1, 2, false).as_vec();
    let b = attention::<NoneTape>(&dev, dev.tensor_from_vec(qp, (3, 6)), 1, &[1, 1, 0], 1, 3, false).as_vec();
    for (x, y) in a.iter().zip(&b[..4]) {
        assert!((x - y).abs() < 1e-6);
    }
}

/// The reproducibility contract rests on this: gemm splits the output among threads but
/// never the inner (k) sum, so every thread count gives the same bits. Shapes straddle the
/// parallel threshold and the kernels' edge tiles.
#[test]
fn gemm_bits_do_not_depend_on_the_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for &(m, k, n) in &[(257, 129, 131), (1024, 64, 256), (33, 2000, 70), (512, 300, 8000)] {
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let one = product(View::rows(&a, m, k, k), View::rows(&b, k, n, n), 1);
        for threads in [2, 3, 5, 16] {
            let many = product(View::rows(&a, m, k, k), View::rows(&b, k, n, n), threads);
            assert!(one == many, "{m}x{k}x{n} on {threads} threads differs from 1 thread");
        }
    }
}

/// The LSTM's outputs and both gradients have the same bits on any pool size, although its
/// rows are chunked by the pool size (odd batch and widths straddle gemm's edge tiles; 3 and
/// 5 rows on 2–5 threads would make one-row chunks if `chunks_for` allowed them).
#[test]
fn lstm_bits_do_not_depend_on_the_pool_size() {
    for b in [29, 3, 5] {
        lstm_bits_on_every_pool_size(b);
    }
}

fn lstm_bits_on_every_pool_size(b: usize) {
    let (l, hd) = (7, 20);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut r = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect() };
    let (x, w, up) = (r(b * l * 4 * hd), r(hd * 4 * hd), r(b * l * hd));
    let mask: Vec<u8> = (0..b * l).map(|i| u8::from(i % l < l - (i / l) % 3)).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| {
            let dev = Dev::default();
            let xt = dev.tensor_from_vec(x.clone(), (b * l, 4 * hd));
            let wt = dev.tensor_from_vec(w.clone(), (hd, 4 * hd));
            let out = lstm(&dev, xt.retaped::<Tp>(), wt.retaped::<Tp>(), &mask, b, l);
            let upt: T2 = dev.tensor_from_vec(up.clone(), (b * l, hd));
            let values = out.as_vec();
            let g = (out * upt).sum::<Rank0, _>().backward();
            (values, g.get(&xt).as_vec(), g.get(&wt).as_vec())
        })
    };
    let one = run(1);
    for threads in [2, 3, 5] {
        assert!(
            run(threads) == one,
            "LSTM, batch {b}, on {threads} threads differs from 1 thread"
        );
    }
}

/// What the row chunking relies on: a row of a gemm product has the same bits whatever the
/// number of rows `m` in the call — except `m = 1`, which gemm computes another way (so
/// `chunks_for` never makes a one-row chunk out of a larger batch).
#[test]
fn gemm_rows_do_not_depend_on_how_many_rows_but_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for &(k, n) in &[(64usize, 256usize), (20, 80), (128, 512)] {
        let m = 40;
        let a: Vec<f32> = (0..m * k).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let b: Vec<f32> = (0..k * n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let full = product(View::rows(&a, m, k, k), View::rows(&b, k, n, n), 1);
        for mm in 2..m {
            let part = product(View::rows(&a, mm, k, k), View::rows(&b, k, n, n), 1);
            assert!(part[..] == full[..mm * n], "{k}x{n}: the first {mm} rows differ");
        }
    }
}

#[test]
fn chunks_hold_at_least_two_rows() {
    for threads in [1, 2, 3, 5, 16] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        for rows in 1..40 {
            let c = pool.install(|| chunks_for(rows));
            assert_eq!(c.iter().map(|r| r.len()).sum::<usize>(), rows);
            assert!(
                rows == 1 || c.iter().all(|r| r.len() >= 2),
                "{rows} rows on {threads}: {c:?}"
            );
        }
    }
}

#[test]
fn pooling_gradients() {
    check("mean_pool", &[(8, 3)], &|dev, mut v| {
        mean_pool(dev, v.pop().unwrap(), &MASK, 2, 4)
    });
    check("max_pool", &[(8, 3)], &|dev, mut v| {
        max_pool(dev, v.pop().unwrap(), &MASK, 2, 4)
    });
}

/// The dfdx formulation the fused pooling ops replaced (kept as their reference): a broadcast
/// multiply by `1/n` (or add of −1e4 at padding) and a reduction over time.
fn dfdx_pool(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, Tp>,
    mask: &[u8],
    b: usize,
    l: usize,
    mean: bool,
) -> Tensor<(usize, usize), f32, Dev, Tp> {
    let d = x.shape().1;
    let mut w = vec![0.0f32; b * l];
    for r in 0..b {
        let m = &mask[r * l..(r + 1) * l];
        let n = m.iter().filter(|&&v| v != 0).count().max(1) as f32;
        let any = m.iter().any(|&v| v != 0);
        for (j, &v) in m.iter().enumerate() {
            w[r * l + j] = match (mean, v != 0) {
                (true, true) => 1.0 / n,
                (true, false) => 0.0,
                (false, true) => 0.0,
                (false, false) if any || j > 0 => -1e4,
                (false, false) => 0.0,
            };
        }
    }
    let wt: Tensor<(usize, usize, usize), f32, Dev> =
        dev.tensor_from_vec(w, (b, l)).broadcast_like::<_, Axis<2>>(&(b, l, d));
    let x3 = x.reshape_like(&(b, l, d));
    if mean {
        (x3 * wt).sum::<(usize, usize), Axis<1>>()
    } else {
        (x3 + wt).max::<(usize, usize), Axis<1>>()
    }
}

#[test]
fn fused_pooling_matches_the_dfdx_ops_bit_for_bit() {
    let dev = Dev::default();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    // Post- and pre-padded rows, a row without a real token, a full row; values with ties
    // (ReLU-like zeros) so that the max's gradient is shared.
    let (b, l, d) = (5, 7, 33);
    let mask: Vec<u8> = (0..b)
        .flat_map(|r| {
            (0..l).map(move |t| match r {
                0 => (t < 4) as u8,
                1 => (t >= 2) as u8,
                2 => 0,
                _ => 1,
            })
        })
        .collect();
    for mean in [true, false] {
        let xv: Vec<f32> = (0..b * l * d)
            .map(|_| {
                if rng.gen_bool(0.2) {
                    0.0
                } else {
                    rng.gen_range(-3.0..3.0)
                }
            })
            .collect();
        let gv: Vec<f32> = (0..b * d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let run = |fused: bool| {
            let x: T2 = dev.tensor_from_vec(xv.clone(), (b * l, d));
            let out = match (fused, mean) {
                (true, true) => mean_pool(&dev, x.retaped::<Tp>(), &mask, b, l),
                (true, false) => max_pool(&dev, x.retaped::<Tp>(), &mask, b, l),
                (false, _) => dfdx_pool(&dev, x.retaped::<Tp>(), &mask, b, l, mean),
            };
            let ov = out.as_vec();
            let g: T2 = dev.tensor_from_vec(gv.clone(), (b, d));
            let grads = (out * g).sum::<Rank0, _>().backward();
            (ov, grads.get(&x).as_vec())
        };
        let (fused, reference) = (run(true), run(false));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fused.0), bits(&reference.0), "pooled values (mean: {mean})");
        assert_eq!(bits(&fused.1), bits(&reference.1), "gradients (mean: {mean})");
    }
}
