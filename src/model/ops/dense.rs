//! Row-wise and dense ops: linear, GELU, layer norm, residual add, embedding lookup and
//! the (sampled) softmax cross-entropy of language-model heads.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::{attach, dot, exp, gemm, max, product, sum, tanh, values, View, T2};
use crate::model::Dev;

simd_kernel! {
    /// GELU's tanh term for a slice: `t = tanh(√(2/π)·(x + 0.044715·x³))`.
    fn gelu_tanh(x: &[f32], t: &mut [f32]) {
        t.iter_mut()
            .zip(x)
            .for_each(|(t, &x)| *t = tanh(GELU_A * (x + GELU_B * x * x * x)));
    }
}

const GELU_A: f32 = 0.797_884_6; // √(2/π)
const GELU_B: f32 = 0.044_715;

/// Layer normalisation over each row of `x` (`n × d`) with gain and bias (`1 × d`).
pub fn layer_norm<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    gain: Tensor<(usize, usize), f32, Dev, T>,
    bias: Tensor<(usize, usize), f32, Dev, T>,
) -> Tensor<(usize, usize), f32, Dev, T> {
    const EPS: f32 = 1e-5;
    let (n, d) = *x.shape();
    let xv = values(&x);
    let g = values(&gain);
    let bv = values(&bias);
    let mut xhat = vec![0.0f32; n * d];
    let mut inv = vec![0.0f32; n];
    xhat.par_chunks_mut(d)
        .zip(inv.par_iter_mut())
        .zip(xv.par_chunks(d))
        .for_each(|((xh, iv), row)| {
            let mean = sum(row) / d as f32;
            xh.iter_mut().zip(row).for_each(|(o, v)| *o = v - mean);
            let var = dot(xh, xh) / d as f32;
            *iv = 1.0 / (var + EPS).sqrt();
            xh.iter_mut().for_each(|o| *o *= *iv);
        });
    let out: Vec<f32> = xhat
        .chunks(d)
        .flat_map(|r| r.iter().zip(&g).zip(&bv).map(|((x, g), b)| x * g + b))
        .collect();
    attach(dev, vec![x, gain, bias], out, (n, d), move |g_out: &[f32]| {
        let mut d_g = vec![0.0f32; d];
        let mut d_b = vec![0.0f32; d];
        for (go, xh) in g_out.chunks(d).zip(xhat.chunks(d)) {
            for j in 0..d {
                d_g[j] += go[j] * xh[j];
                d_b[j] += go[j];
            }
        }
        let mut d_x = vec![0.0f32; n * d];
        d_x.par_chunks_mut(d)
            .zip(g_out.par_chunks(d))
            .zip(xhat.par_chunks(d))
            .zip(inv.par_iter())
            .for_each(|(((dx, go), xh), iv)| {
                // dx = inv · (dxh − mean(dxh) − xh · mean(dxh ⊙ xh)), dxh = go ⊙ g
                for j in 0..d {
                    dx[j] = go[j] * g[j];
                }
                let m1 = sum(dx) / d as f32;
                let m2 = dot(dx, xh) / d as f32;
                for j in 0..d {
                    dx[j] = iv * (dx[j] - m1 - xh[j] * m2);
                }
            });
        vec![Some(d_x), Some(d_g), Some(d_b)]
    })
}

/// Mean cross-entropy of `targets` under a softmax over the rows of `emb` listed in
/// `candidates` (tied output embeddings): logits are `h · emb[candidates]ᵀ`. With every id as a
/// candidate this is the full softmax; with the batch's targets plus sampled negatives it is
/// the cheap "sampled softmax" that keeps language-model pretraining affordable on a CPU.
/// `targets[i]` is an index into `candidates`. Returns a `1 × 1` tensor.
pub fn softmax_xent<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    h: Tensor<(usize, usize), f32, Dev, T>,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    candidates: &[usize],
    targets: &[usize],
) -> Tensor<(usize, usize), f32, Dev, T> {
    let (n, d) = *h.shape();
    let c = candidates.len();
    assert_eq!(targets.len(), n);
    let hv = values(&h);
    let ev = values(&emb);
    let mut ec = vec![0.0f32; c * d];
    for (k, &id) in candidates.iter().enumerate() {
        ec[k * d..(k + 1) * d].copy_from_slice(&ev[id * d..(id + 1) * d]);
    }
    let threads = rayon::current_num_threads();
    let mut logits = product(View::rows(&hv, n, d, d), View::rows(&ec, c, d, d).t(), threads);
    // Softmax in place; the loss is −log p(target).
    let losses: Vec<f32> = logits
        .par_chunks_mut(c)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let mx = max(row);
            row.iter_mut().for_each(|v| *v = exp(*v - mx));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|v| *v *= inv);
            -(row[t].max(f32::MIN_POSITIVE)).ln()
        })
        .collect();
    let loss = losses.iter().map(|&v| v as f64).sum::<f64>() / n.max(1) as f64;
    let vocab = emb.shape().0;
    let candidates = candidates.to_vec();
    let targets = targets.to_vec();
    attach(dev, vec![h, emb], vec![loss as f32], (1, 1), move |g_out: &[f32]| {
        let scale = g_out[0] / n.max(1) as f32;
        let mut dl = logits;
        for (row, &t) in dl.chunks_mut(c).zip(&targets) {
            row[t] -= 1.0;
            row.iter_mut().for_each(|v| *v *= scale);
        }
        let d_h = product(View::rows(&dl, n, c, c), View::rows(&ec, c, d, d), threads);
        let d_ec = product(View::rows(&dl, n, c, c).t(), View::rows(&hv, n, d, d), threads);
        let mut d_e = vec![0.0f32; vocab * d];
        for (k, &id) in candidates.iter().enumerate() {
            d_e[id * d..(id + 1) * d]
                .iter_mut()
                .zip(&d_ec[k * d..(k + 1) * d])
                .for_each(|(a, b)| *a += b);
        }
        vec![Some(d_h), Some(d_e)]
    })
}

/// `x · w + b` (`b` is `1 × m`, added to every row) in one op: dfdx would run a matmul, a
/// broadcast and an add, and its broadcast backward walks strides one element at a time.
pub fn linear<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    w: Tensor<(usize, usize), f32, Dev, T>,
    b: Tensor<(usize, usize), f32, Dev, T>,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let (n, k) = *x.shape();
    let m = w.shape().1;
    assert_eq!(w.shape().0, k);
    assert_eq!(b.shape(), &(1, m));
    let xv = values(&x);
    let wv = values(&w);
    let bv = values(&b);
    let threads = rayon::current_num_threads();
    let mut y = vec![0.0f32; n * m];
    y.chunks_mut(m).for_each(|r| r.copy_from_slice(&bv));
    gemm(
        &mut y,
        m,
        View::rows(&xv, n, k, k),
        View::rows(&wv, k, m, m),
        true,
        threads,
    );
    attach(dev, vec![x, w, b], y, (n, m), move |dy: &[f32]| {
        let dx = product(View::rows(dy, n, m, m), View::rows(&wv, k, m, m).t(), threads);
        let dw = product(View::rows(&xv, n, k, k).t(), View::rows(dy, n, m, m), threads);
        let mut db = vec![0.0f32; m];
        for r in dy.chunks(m) {
            db.iter_mut().zip(r).for_each(|(a, b)| *a += b);
        }
        vec![Some(dx), Some(dw), Some(db)]
    })
}

/// GELU, tanh approximation (BERT's): `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
) -> Tensor<(usize, usize), f32, Dev, T> {
    const A: f32 = GELU_A;
    const B: f32 = GELU_B;
    let shape = *x.shape();
    let xv = values(&x);
    let mut th = vec![0.0f32; xv.len()];
    th.par_chunks_mut(4096)
        .zip(xv.par_chunks(4096))
        .for_each(|(t, x)| gelu_tanh(x, t));
    let y: Vec<f32> = xv.iter().zip(&th).map(|(&x, &t)| 0.5 * x * (1.0 + t)).collect();
    attach(dev, vec![x], y, shape, move |dy: &[f32]| {
        let dx: Vec<f32> = xv
            .iter()
            .zip(&th)
            .zip(dy)
            .map(|((&x, &t), &g)| g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * A * (1.0 + 3.0 * B * x * x)))
            .collect();
        vec![Some(dx)]
    })
}

/// Embedding lookup: rows `ids` of `emb` (`V × d`) → `n × d`. The backward pass adds each
/// row's gradient straight into its token's row of the gradient buffer (a token used twice
/// gets both), touching `n × d` values rather than a dense `V × d` temporary.
pub fn embedding<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
) -> Tensor<(usize, usize), f32, Dev, T> {
    let (v, d) = *emb.shape();
    let ev = values(&emb);
    let mut x = vec![0.0f32; ids.len() * d];
    for (row, &id) in x.chunks_mut(d).zip(ids) {
        let id = id as usize;
        assert!(id < v, "token id {id} outside the embedding table ({v} rows)");
        row.copy_from_slice(&ev[id * d..(id + 1) * d]);
    }
    let (emb, mut tape) = emb.split_tape();
    let out: T2 = dev.tensor_from_vec(x, (ids.len(), d));
    if T::OWNS_TAPE {
        let ghost = out.clone();
        let ids = ids.to_vec();
        tape.add_backward_op(move |grads| {
            let dx: Vec<f32> = std::mem::take(&mut **grads.get_or_alloc_mut(&ghost)?);
            let de = grads.get_or_alloc_mut(&emb)?;
            assert_eq!(de.len(), v * d, "embedding table must be a contiguous tensor");
            for (row, &id) in dx.chunks(d).zip(&ids) {
                let id = id as usize;
                de[id * d..(id + 1) * d].iter_mut().zip(row).for_each(|(a, b)| *a += b);
            }
            Ok(())
        });
    }
    out.put_tape(tape)
}

/// `a + b` for two tensors of one shape (residual connections): one pass, and a backward that
/// hands the same gradient to both.
pub fn add<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    a: Tensor<(usize, usize), f32, Dev, T>,
    b: Tensor<(usize, usize), f32, Dev, T>,
) -> Tensor<(usize, usize), f32, Dev, T> {
    assert_eq!(a.shape(), b.shape());
    let shape = *a.shape();
    let mut y = values(&a);
    let bv = values(&b);
    y.iter_mut().zip(&bv).for_each(|(y, b)| *y += b);
    attach(dev, vec![a, b], y, shape, |g: &[f32]| {
        vec![Some(g.to_vec()), Some(g.to_vec())]
    })
}
