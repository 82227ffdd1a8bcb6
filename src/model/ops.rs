//! Fused ops with hand-written backward passes: the LSTM recurrence, 1-D convolution and
//! masked multi-head attention.
//!
//! Why: dfdx 0.13 runs matmul on all threads (gemm) but every elementwise op on one thread, one
//! op at a time, each allocating its output and recording a closure on the tape. An LSTM built
//! from those ops spends its time in ~20 tiny ops per time step (≈45 k tokens/s against
//! PyTorch's ≈120 k on one thread, see ../shared/design/engine-notes.md). Here each op is one
//! pass over plain `f32` slices with gemm for the products, split over batch rows with rayon.
//!
//! How an op joins dfdx's autodiff ([`attach`]): the forward pass computes the output and
//! whatever the backward pass needs into plain vectors; one closure on the tape reads the
//! output's gradient and *adds* each input's gradient into that input's gradient buffer (an
//! input used elsewhere too thus receives the sum of both uses). Inputs must be contiguous
//! row-major tensors (results of matmul/gather/add, or parameters) so that a gradient buffer
//! has the same layout as the values.
//!
//! Determinism: rows are split into a number of chunks fixed by the thread count, and partial
//! weight gradients are summed in chunk order, so the same thread count gives the same bits.
//! Every op has a finite-difference test below.

use dfdx::prelude::*;
use rayon::prelude::*;

use super::Dev;

type T2 = Tensor<(usize, usize), f32, Dev>;

/// A row-major or transposed view of a matrix stored in a slice.
#[derive(Clone, Copy)]
pub struct View<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> View<'a> {
    /// `rows × cols`, row `i` starting at `i * rs`.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize, rs: usize) -> View<'a> {
        View {
            data,
            rows,
            cols,
            rs,
            cs: 1,
        }
    }
    pub fn t(self) -> View<'a> {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
    fn in_bounds(&self) -> bool {
        self.rows == 0 || self.cols == 0 || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// Products smaller than this many multiply-adds run on one thread: splitting tiny ones (the
/// per-step and per-head products) costs more than it saves. At 2 threads, splitting from 4 M
/// up gave the transformer ~5 % and left the others within this machine's run-to-run noise.
const PARALLEL_MIN_MACS: usize = 4 << 20;

/// `dst (rows × cols, row stride dst_rs) (+)= a · b` with gemm; `threads` > 1 lets gemm split
/// large products.
pub fn gemm(dst: &mut [f32], dst_rs: usize, a: View, b: View, accumulate: bool, threads: usize) {
    // SAFETY: `dst` is a valid, initialised, exclusively borrowed buffer of `dst.len()` floats.
    unsafe { gemm_raw(dst.as_mut_ptr(), dst.len(), dst_rs, a, b, accumulate, threads) }
}

/// [`gemm`] into `dst_len` floats at `dst`, which need not be initialised when `accumulate`
/// is false (gemm then only writes them).
///
/// # Safety
/// `dst` must be valid for writes of `dst_len` floats (and reads, if `accumulate`), and must
/// not overlap `a` or `b`.
unsafe fn gemm_raw(dst: *mut f32, dst_len: usize, dst_rs: usize, a: View, b: View, accumulate: bool, threads: usize) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "gemm: inner sizes differ");
    assert!(a.in_bounds() && b.in_bounds(), "gemm: operand out of bounds");
    assert!(
        m == 0 || n == 0 || (m - 1) * dst_rs + n <= dst_len,
        "gemm: destination out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i lies inside the destination (checked above).
                unsafe { std::ptr::write_bytes(dst.add(i * dst_rs), 0, n) };
            }
        }
        return;
    }
    let par = if threads > 1 && m * n * k >= PARALLEL_MIN_MACS {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index gemm touches inside the three buffers; the
    // caller guarantees `dst` is writable and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// `a · b` as a new row-major vector. The buffer is not zeroed first: gemm with
/// `accumulate = false` writes every element (zero-filling these buffers was ~10 % of a
/// transformer step).
pub fn product(a: View, b: View, threads: usize) -> Vec<f32> {
    let (m, n) = (a.rows, b.cols);
    if a.cols == 0 || m == 0 || n == 0 {
        return vec![0.0; m * n];
    }
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    // SAFETY: the capacity holds m × n floats, freshly allocated (no aliasing); without
    // `accumulate` gemm writes all of them (rows of n) and reads none, so `set_len` after it
    // exposes only written values.
    unsafe {
        gemm_raw(out.as_mut_ptr(), m * n, n, a, b, false, threads);
        out.set_len(m * n);
    }
    out
}

/// The values of a contiguous tensor, copied with one `memcpy` (dfdx's `as_vec` walks the
/// strides one element at a time, which cost more than some of the ops themselves).
pub fn values<T>(t: &Tensor<(usize, usize), f32, Dev, T>) -> Vec<f32> {
    let mut v = vec![0.0f32; t.shape().0 * t.shape().1];
    t.copy_into(&mut v);
    v
}

/// Splits `0..n` into `parts` contiguous ranges of near-equal size.
fn ranges(n: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.clamp(1, n.max(1));
    (0..parts).map(|p| (p * n / parts)..((p + 1) * n / parts)).collect()
}

fn chunks_for(rows: usize) -> Vec<std::ops::Range<usize>> {
    ranges(rows, rayon::current_num_threads())
}

/// Wraps `out` (already computed) as the result of an op over `inputs`; `backward` runs when
/// the tape is executed and returns each input's gradient (in the order of the inputs), or
/// `None` for an input that gets none. Tapes of all inputs are merged into the output's.
pub fn attach<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    inputs: Vec<Tensor<(usize, usize), f32, Dev, T>>,
    out: Vec<f32>,
    shape: (usize, usize),
    backward: impl FnOnce(&[f32]) -> Vec<Option<Vec<f32>>> + 'static,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let mut tape = T::default();
    let mut plain: Vec<T2> = Vec::with_capacity(inputs.len());
    for x in inputs {
        let (x, t) = x.split_tape();
        tape = tape.merge(t);
        plain.push(x);
    }
    let out: T2 = dev.tensor_from_vec(out, shape);
    let ghost = out.clone();
    tape.add_backward_op(move |grads| {
        // The output's gradient is complete when this runs (ops run in reverse order) and
        // nothing reads it afterwards, so it is moved out rather than copied.
        let g_out: Vec<f32> = std::mem::take(&mut **grads.get_or_alloc_mut(&ghost)?);
        for (x, g) in plain.iter().zip(backward(&g_out)) {
            if let Some(g) = g {
                let dst = grads.get_or_alloc_mut(x)?;
                // A broadcast view would have a shorter buffer: inputs must be contiguous.
                assert_eq!(dst.len(), g.len(), "fused op input must be a contiguous tensor");
                dst.iter_mut().zip(&g).for_each(|(d, s)| *d += s);
            }
        }
        Ok(())
    });
    out.put_tape(tape)
}

/// `e^x` to about 2 ulp (Cephes' `expf` polynomial), branch-free so that loops over slices
/// vectorise; libm's `expf`/`tanhf` were a fifth of the LSTM's and transformer's time.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer without a branch.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.7);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    y * f32::from_bits(((k as i32 + 127) << 23) as u32)
}

/// Reductions with 8 independent accumulators: IEEE order forbids the compiler to vectorise
/// `sum += x`, and these loops (softmax, layer norm) were a sixth of a transformer step.
#[inline]
pub fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + rest
}

#[inline]
pub fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder().iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for c in chunks {
        for k in 0..8 {
            acc[k] = if c[k] > acc[k] { c[k] } else { acc[k] };
        }
    }
    acc.iter().copied().fold(rest, f32::max)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

/// Defines `fn $name` that runs its body compiled for AVX2 + FMA when the CPU has them
/// (checked once and cached by std), else for the baseline target. The build targets baseline
/// x86-64 (SSE2) so that the binary runs anywhere; these few elementwise kernels are where the
/// wider vectors pay. Results do not depend on the path: Rust never contracts `a * b + c` into
/// an FMA by itself, and the reductions use a fixed number of accumulators.
macro_rules! simd_kernel {
    ($(#[$m:meta])* fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$m])*
        #[inline]
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn wide($($arg: $ty),*) {
                    generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `wide` was compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

simd_kernel! {
    /// One LSTM step of one row: gate pre-activations `g` (`[i f g o]`, 4·h) become
    /// activations in place; writes the cell state `c`, `tanh(c)` and the hidden state `h`.
    fn lstm_cell(g: &mut [f32], c_prev: Option<&[f32]>, c: &mut [f32], tc: &mut [f32], h: &mut [f32]) {
        let hd = c.len();
        let (ifg, o) = g.split_at_mut(3 * hd);
        let (if_, gg) = ifg.split_at_mut(2 * hd);
        if_.iter_mut().chain(o.iter_mut()).for_each(|v| *v = sigmoid(*v));
        gg.iter_mut().for_each(|v| *v = tanh(*v));
        let (i, f) = if_.split_at(hd);
        match c_prev {
            Some(cp) => {
                for j in 0..hd {
                    c[j] = f[j] * cp[j] + i[j] * gg[j];
                }
            }
            None => {
                for j in 0..hd {
                    c[j] = i[j] * gg[j];
                }
            }
        }
        tc.iter_mut().zip(c.iter()).for_each(|(t, c)| *t = tanh(*c));
        h.iter_mut().zip(tc.iter().zip(o.iter())).for_each(|(h, (t, o))| *h = o * t);
    }
}

simd_kernel! {
    /// The backward pass of [`lstm_cell`] for one row: from `dh` and the carried cell gradient
    /// `dc` (updated in place to the previous step's), the gate pre-activation gradients `dg`.
    fn lstm_cell_backward(a: &[f32], c_prev: Option<&[f32]>, tc: &[f32], dh: &[f32], dc: &mut [f32], dg: &mut [f32]) {
        let hd = tc.len();
        let (i, rest) = a.split_at(hd);
        let (f, rest) = rest.split_at(hd);
        let (g, o) = rest.split_at(hd);
        let (dgi, rest) = dg.split_at_mut(hd);
        let (dgf, rest) = rest.split_at_mut(hd);
        let (dgg, dgo) = rest.split_at_mut(hd);
        for j in 0..hd {
            let d = dc[j] + dh[j] * o[j] * (1.0 - tc[j] * tc[j]);
            dgi[j] = d * g[j] * i[j] * (1.0 - i[j]);
            dgg[j] = d * i[j] * (1.0 - g[j] * g[j]);
            dgo[j] = dh[j] * tc[j] * o[j] * (1.0 - o[j]);
            dgf[j] = match c_prev {
                Some(cp) => d * cp[j] * f[j] * (1.0 - f[j]),
                None => 0.0,
            };
            dc[j] = d * f[j];
        }
    }
}

/// What the LSTM's forward pass keeps for its backward pass, for one chunk of rows.
struct LstmChunk {
    rows: std::ops::Range<usize>,
    /// Gate activations `[i f g o]`, `(rows·l) × 4h`.
    act: Vec<f32>,
    /// Cell states, `(rows·l) × h`.
    c: Vec<f32>,
    /// Hidden states, `(rows·l) × h`.
    h: Vec<f32>,
    /// `tanh(c)`, kept for the backward pass.
    tanh_c: Vec<f32>,
}

/// The LSTM recurrence over precomputed input projections: `xw` is `(b·l) × 4h` (row `r·l+t`
/// holds `x_t W_ih + bias` of row `r`), `w_hh` is `h × 4h`; gate order i, f, g, o (PyTorch's).
/// Returns every hidden state, `(b·l) × h`. Where `mask` is 0 the state is carried over
/// unchanged, so the state at `t = l−1` is the state after the last real token whatever the
/// padding side.
pub fn lstm<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    xw: Tensor<(usize, usize), f32, Dev, T>,
    w_hh: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let h4 = w_hh.shape().1;
    let hd = h4 / 4;
    assert_eq!(xw.shape(), &(b * l, h4));
    assert_eq!(w_hh.shape().0, hd);
    assert_eq!(mask.len(), b * l);
    let xv = values(&xw);
    let w = values(&w_hh);
    let chunks: Vec<LstmChunk> = chunks_for(b)
        .into_par_iter()
        .map(|rows| {
            let n = rows.len() * l;
            let r0 = rows.start;
            let mut act = xv[r0 * l * h4..(r0 * l + n) * h4].to_vec();
            let mut c = vec![0.0f32; n * hd];
            let mut h = vec![0.0f32; n * hd];
            let mut tanh_c = vec![0.0f32; n * hd];
            for t in 0..l {
                if t > 0 {
                    // act[·, t] += h[·, t−1] · W_hh, over all rows of the chunk at once.
                    let (h_prev, act_t) = (&h[(t - 1) * hd..], &mut act[t * h4..]);
                    gemm(
                        act_t,
                        l * h4,
                        View::rows(h_prev, rows.len(), hd, l * hd),
                        View::rows(&w, hd, h4, h4),
                        true,
                        1,
                    );
                }
                for (k, r) in rows.clone().enumerate() {
                    let at = k * l + t;
                    if mask[r * l + t] == 0 {
                        if t > 0 {
                            c.copy_within((at - 1) * hd..at * hd, at * hd);
                            h.copy_within((at - 1) * hd..at * hd, at * hd);
                        }
                        continue;
                    }
                    let (done, now) = c.split_at_mut(at * hd);
                    let c_prev = if t == 0 {
                        None
                    } else {
                        Some(&done[(at - 1) * hd..at * hd])
                    };
                    lstm_cell(
                        &mut act[at * h4..(at + 1) * h4],
                        c_prev,
                        &mut now[..hd],
                        &mut tanh_c[at * hd..(at + 1) * hd],
                        &mut h[at * hd..(at + 1) * hd],
                    );
                }
            }
            LstmChunk {
                rows,
                act,
                c,
                h,
                tanh_c,
            }
        })
        .collect();
    let mut out = Vec::with_capacity(b * l * hd);
    for ch in &chunks {
        out.extend_from_slice(&ch.h);
    }
    if !T::OWNS_TAPE {
        return attach(dev, vec![xw, w_hh], out, (b * l, hd), |_| vec![None, None]);
    }
    let mask = mask.to_vec();
    attach(dev, vec![xw, w_hh], out, (b * l, hd), move |g_out: &[f32]| {
        let parts: Vec<(Vec<f32>, Vec<f32>)> = chunks
            .par_iter()
            .map(|ch| lstm_backward(ch, g_out, &w, &mask, l, hd))
            .collect();
        let mut d_xw = Vec::with_capacity(b * l * h4);
        let mut d_w = vec![0.0f32; hd * h4];
        for (dx, dw) in parts {
            d_xw.extend_from_slice(&dx);
            d_w.iter_mut().zip(&dw).for_each(|(a, b)| *a += b);
        }
        vec![Some(d_xw), Some(d_w)]
    })
}

/// Backpropagation through time for one chunk: returns `(d xw, d W_hh)` for its rows.
fn lstm_backward(ch: &LstmChunk, g_out: &[f32], w: &[f32], mask: &[u8], l: usize, hd: usize) -> (Vec<f32>, Vec<f32>) {
    let h4 = 4 * hd;
    let nr = ch.rows.len();
    let n = nr * l;
    let r0 = ch.rows.start;
    let g_out = &g_out[r0 * l * hd..(r0 * l + n) * hd];
    let mut d_g = vec![0.0f32; n * h4];
    let mut dh_carry = vec![0.0f32; nr * hd];
    let mut dc_carry = vec![0.0f32; nr * hd];
    let mut dh_keep = vec![0.0f32; nr * hd];
    let mut dh = vec![0.0f32; hd];
    for t in (0..l).rev() {
        for (k, r) in ch.rows.clone().enumerate() {
            let at = k * l + t;
            for j in 0..hd {
                dh[j] = g_out[at * hd + j] + dh_carry[k * hd + j];
            }
            if mask[r * l + t] == 0 {
                // State carried over: its gradient passes through unchanged.
                dh_keep[k * hd..(k + 1) * hd].copy_from_slice(&dh);
                continue;
            }
            dh_keep[k * hd..(k + 1) * hd].fill(0.0);
            lstm_cell_backward(
                &ch.act[at * h4..(at + 1) * h4],
                if t == 0 {
                    None
                } else {
                    Some(&ch.c[(at - 1) * hd..at * hd])
                },
                &ch.tanh_c[at * hd..(at + 1) * hd],
                &dh,
                &mut dc_carry[k * hd..(k + 1) * hd],
                &mut d_g[at * h4..(at + 1) * h4],
            );
        }
        // dh_{t−1} = dG_t · W_hhᵀ for rows that stepped, the carried gradient for the others.
        if t > 0 {
            gemm(
                &mut dh_carry,
                hd,
                View::rows(&d_g[t * h4..], nr, h4, l * h4),
                View::rows(w, hd, h4, h4).t(),
                false,
                1,
            );
            dh_carry.iter_mut().zip(&dh_keep).for_each(|(a, b)| *a += b);
        }
    }
    // d W_hh = Σ_t h_{t−1}ᵀ dG_t: one product over all steps, with h_{−1} = 0.
    let mut h_prev = vec![0.0f32; n * hd];
    for k in 0..nr {
        let base = k * l * hd;
        h_prev[base + hd..base + l * hd].copy_from_slice(&ch.h[base..base + (l - 1) * hd]);
    }
    let d_w = product(View::rows(&h_prev, n, hd, hd).t(), View::rows(&d_g, n, h4, h4), 1);
    (d_g, d_w)
}

/// 1-D convolution over time with ReLU: `x` is `(b·l) × d`, `w` is `(k·d) × f` (offset-major:
/// rows `o·d..(o+1)·d` multiply the token at `t + o − (k−1)/2`), `bias` is `1 × f`. Tokens
/// outside the row or under a 0 in `mask` count as zero vectors ("same" padding), and outputs at
/// padding positions are 0. Returns `(b·l) × f`.
#[allow(clippy::too_many_arguments)]
pub fn conv1d_relu<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    x: Tensor<(usize, usize), f32, Dev, T>,
    w: Tensor<(usize, usize), f32, Dev, T>,
    bias: Tensor<(usize, usize), f32, Dev, T>,
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d = x.shape().1;
    let (kd, f) = *w.shape();
    let k = kd / d;
    assert_eq!(k * d, kd);
    assert_eq!(bias.shape(), &(1, f));
    let n = b * l;
    let xv = values(&x);
    let wv = values(&w);
    let bv = values(&bias);
    let left = (k - 1) / 2;
    // im2col: row (r, t) holds the k token vectors of its window.
    let mut cols = vec![0.0f32; n * kd];
    cols.par_chunks_mut(l * kd).enumerate().for_each(|(r, rc)| {
        for t in 0..l {
            for o in 0..k {
                let Some(s) = (t + o).checked_sub(left).filter(|&s| s < l) else {
                    continue;
                };
                if mask[r * l + s] != 0 {
                    rc[t * kd + o * d..t * kd + (o + 1) * d].copy_from_slice(&xv[(r * l + s) * d..(r * l + s + 1) * d]);
                }
            }
        }
    });
    let mut y = vec![0.0f32; n * f];
    for row in y.chunks_mut(f) {
        row.copy_from_slice(&bv);
    }
    let threads = rayon::current_num_threads();
    gemm(
        &mut y,
        f,
        View::rows(&cols, n, kd, kd),
        View::rows(&wv, kd, f, f),
        true,
        threads,
    );
    for (i, row) in y.chunks_mut(f).enumerate() {
        if mask[i] == 0 {
            row.fill(0.0);
        } else {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    let y_keep = if T::OWNS_TAPE { y.clone() } else { Vec::new() };
    let mask = mask.to_vec();
    attach(dev, vec![x, w, bias], y, (n, f), move |g_out: &[f32]| {
        // Through the ReLU (and the zeroed padding outputs).
        let dy: Vec<f32> = g_out
            .iter()
            .zip(&y_keep)
            .map(|(g, y)| if *y > 0.0 { *g } else { 0.0 })
            .collect();
        let mut d_bias = vec![0.0f32; f];
        for row in dy.chunks(f) {
            d_bias.iter_mut().zip(row).for_each(|(a, b)| *a += b);
        }
        let d_w = product(View::rows(&cols, n, kd, kd).t(), View::rows(&dy, n, f, f), threads);
        let d_cols = product(View::rows(&dy, n, f, f), View::rows(&wv, kd, f, f).t(), threads);
        // col2im: each window slot adds back into the token it was copied from.
        let mut d_x = vec![0.0f32; n * d];
        d_x.par_chunks_mut(l * d).enumerate().for_each(|(r, dx)| {
            for t in 0..l {
                for o in 0..k {
                    let Some(s) = (t + o).checked_sub(left).filter(|&s| s < l) else {
                        continue;
                    };
                    if mask[r * l + s] != 0 {
                        let src = &d_cols[(r * l + t) * kd + o * d..(r * l + t) * kd + (o + 1) * d];
                        dx[s * d..(s + 1) * d].iter_mut().zip(src).for_each(|(a, b)| *a += b);
                    }
                }
            }
        });
        vec![Some(d_x), Some(d_w), Some(d_bias)]
    })
}

simd_kernel! {
    /// Softmax of `row · scale` over the keys whose `keep` is 1 (the others get 0), in place.
    /// Branch-free: masked keys score −1e30 and are zeroed after the exp. A row with no key
    /// to see ends all zeros (attends to nothing).
    fn masked_softmax(row: &mut [f32], keep: &[f32], scale: f32) {
        for (v, &m) in row.iter_mut().zip(keep) {
            *v = *v * scale + (m - 1.0) * 1e30;
        }
        let mx = max(row);
        for (v, &m) in row.iter_mut().zip(keep) {
            *v = exp(*v - mx) * m;
        }
        let total = sum(row);
        if total > 0.0 {
            let inv = 1.0 / total;
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

simd_kernel! {
    /// Through a softmax row `p`: `dp ← p ⊙ (dp − ⟨dp, p⟩) · scale`.
    fn softmax_backward(p: &[f32], dp: &mut [f32], scale: f32) {
        let d = dot(p, dp);
        dp.iter_mut().zip(p).for_each(|(g, p)| *g = p * (*g - d) * scale);
    }
}

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

/// Multi-head scaled dot-product attention: `qkv` is `(b·l) × 3d` (`[q | k | v]`, heads
/// side by side within each), returns `(b·l) × d`. Keys at padding positions (`mask` 0) get no
/// weight; with `causal`, position `i` sees only keys `≤ i` (for next-token objectives).
pub fn attention<T: Tape<f32, Dev> + Merge<T>>(
    dev: &Dev,
    qkv: Tensor<(usize, usize), f32, Dev, T>,
    heads: usize,
    mask: &[u8],
    b: usize,
    l: usize,
    causal: bool,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let d3 = qkv.shape().1;
    let d = d3 / 3;
    let dh = d / heads;
    assert_eq!(dh * heads * 3, d3);
    assert_eq!(qkv.shape().0, b * l);
    let scale = 1.0 / (dh as f32).sqrt();
    let qv = values(&qkv);
    let keep: Vec<f32> = mask.iter().map(|&m| f32::from(m != 0)).collect();
    let parts = chunks_for(b);
    // Forward per chunk of rows: output rows and the attention weights (row, head, l × l).
    let fwd: Vec<(Vec<f32>, Vec<f32>)> = parts
        .par_iter()
        .map(|rows| {
            let mut out = vec![0.0f32; rows.len() * l * d];
            let mut probs = vec![0.0f32; rows.len() * heads * l * l];
            for (k, r) in rows.clone().enumerate() {
                let base = &qv[r * l * d3..(r + 1) * l * d3];
                for h in 0..heads {
                    let p = &mut probs[(k * heads + h) * l * l..(k * heads + h + 1) * l * l];
                    gemm(
                        p,
                        l,
                        View::rows(&base[h * dh..], l, dh, d3),
                        View::rows(&base[d + h * dh..], l, dh, d3).t(),
                        false,
                        1,
                    );
                    for i in 0..l {
                        // Keys this query may see: real tokens, and with `causal` only up to i.
                        let seen = if causal { i + 1 } else { l };
                        let keep = &keep[r * l..r * l + seen];
                        let (row, hidden) = p[i * l..(i + 1) * l].split_at_mut(seen);
                        hidden.fill(0.0);
                        masked_softmax(row, keep, scale);
                    }
                    gemm(
                        &mut out[k * l * d + h * dh..],
                        d,
                        View::rows(p, l, l, l),
                        View::rows(&base[2 * d + h * dh..], l, dh, d3),
                        false,
                        1,
                    );
                }
            }
            (out, probs)
        })
        .collect();
    let mut out = Vec::with_capacity(b * l * d);
    let mut probs = Vec::with_capacity(fwd.len());
    for (o, p) in fwd {
        out.extend_from_slice(&o);
        probs.push(p);
    }
    if !T::OWNS_TAPE {
        return attach(dev, vec![qkv], out, (b * l, d), |_| vec![None]);
    }
    attach(dev, vec![qkv], out, (b * l, d), move |g_out: &[f32]| {
        let grads: Vec<Vec<f32>> = parts
            .par_iter()
            .zip(&probs)
            .map(|(rows, probs)| {
                let mut dq = vec![0.0f32; rows.len() * l * d3];
                let mut dp = vec![0.0f32; l * l];
                for (k, r) in rows.clone().enumerate() {
                    let base = &qv[r * l * d3..(r + 1) * l * d3];
                    let go = &g_out[r * l * d..(r + 1) * l * d];
                    let dbase = &mut dq[k * l * d3..(k + 1) * l * d3];
                    for h in 0..heads {
                        let p = &probs[(k * heads + h) * l * l..(k * heads + h + 1) * l * l];
                        // dV = Pᵀ dO
                        gemm(
                            &mut dbase[2 * d + h * dh..],
                            d3,
                            View::rows(p, l, l, l).t(),
                            View::rows(&go[h * dh..], l, dh, d),
                            false,
                            1,
                        );
                        // dP = dO Vᵀ; dS = P ⊙ (dP − rowsum(dP ⊙ P)) · scale
                        gemm(
                            &mut dp,
                            l,
                            View::rows(&go[h * dh..], l, dh, d),
                            View::rows(&base[2 * d + h * dh..], l, dh, d3).t(),
                            false,
                            1,
                        );
                        for i in 0..l {
                            softmax_backward(&p[i * l..(i + 1) * l], &mut dp[i * l..(i + 1) * l], scale);
                        }
                        // dQ = dS K; dK = dSᵀ Q
                        gemm(
                            &mut dbase[h * dh..],
                            d3,
                            View::rows(&dp, l, l, l),
                            View::rows(&base[d + h * dh..], l, dh, d3),
                            false,
                            1,
                        );
                        gemm(
                            &mut dbase[d + h * dh..],
                            d3,
                            View::rows(&dp, l, l, l).t(),
                            View::rows(&base[h * dh..], l, dh, d3),
                            false,
                            1,
                        );
                    }
                }
                dq
            })
            .collect();
        vec![Some(grads.concat())]
    })
}

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

#[cfg(test)]
mod tests {
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
}
