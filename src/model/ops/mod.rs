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
//! Determinism: rows are split into one chunk per pool thread, but no sum crosses a chunk:
//! each row's outputs depend on that row alone, and weight gradients summed over rows are one
//! gemm over all rows; gemm splits outputs, not inner sums, among threads. So every thread
//! count gives the same bits (tested in tests.rs, and end to end in tests/it/quickstart.rs).
//! Every op has a finite-difference test below.
//!
//! Layout: this file holds the shared machinery (gemm on strided views, [`attach`], fast math,
//! the AVX2 dispatch macro); `lstm.rs`, `conv.rs`, `attention.rs` and `dense.rs` the ops.

use dfdx::prelude::*;

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

/// The batch rows of the row-wise ops (LSTM recurrence, attention), one chunk per pool thread
/// but never a one-row chunk cut from a larger batch.
///
/// The chunking fixes no float addition order, so it may follow the pool size: every output
/// row is computed from that row alone, and the one sum over rows — the LSTM's `d W_hh` — is a
/// single gemm over all rows, which splits outputs, never inner sums, among threads. A gemm
/// row's bits do not depend on how many rows the call has, except that a one-row product is
/// computed another way (tests.rs): hence at least two rows per chunk, so that a 3-row batch on
/// 2 threads is one chunk, as on 1. An earlier version summed per-chunk partial gradients, so
/// chunks had to be fixed by the data (16 rows), which cost the LSTM 9–22 % on one thread
/// (BENCHMARKS "Reproducibility across thread counts").
fn chunks_for(rows: usize) -> Vec<std::ops::Range<usize>> {
    ranges(rows, rayon::current_num_threads().min(rows / 2).max(1))
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

mod attention;
mod conv;
mod dense;
mod lstm;
mod pool;

pub use attention::attention;
pub use conv::conv1d_relu;
pub use dense::{add, embedding, gelu, layer_norm, linear, softmax_xent};
pub use lstm::lstm;
pub use pool::{max_pool, mean_pool};

#[cfg(test)]
mod tests;
