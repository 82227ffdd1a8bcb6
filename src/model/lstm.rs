//! The `lstm` encoder (the seed's Embedding → LSTM): dfdx has no RNN, so the cell is built
//! from tensor ops. The input projection for all time steps is one matmul; the loop over time
//! then does one `h × W_hh` matmul and the gate arithmetic per step. Padding positions leave
//! the state unchanged (`h ← m·h' + (1−m)·h`), so the result is the state after the last real
//! token whatever the padding side. Gate order in `W_ih`, `W_hh`, `b`: input, forget, cell,
//! output (PyTorch's).
//!
//! The tape is threaded by hand: every intermediate is kept without a tape, and each op takes
//! the one tape on its left operand and hands it back (`split_tape`). A tensor used twice is
//! used through clones that share its id, so both uses add to one gradient — a tensor used
//! without the tape on its left operand would silently get no gradient. The finite-difference
//! test in `classifier.rs` covers this encoder.

use dfdx::prelude::*;

use super::Dev;

type M = Tensor<(usize, usize), f32, Dev>;

/// Final hidden state `(b, hidden)` of rows of `l` ids.
#[allow(clippy::too_many_arguments)]
pub fn encode<T: Tape<f32, Dev> + Merge<NoneTape> + Merge<T>>(
    dev: &Dev,
    emb: Tensor<(usize, usize), f32, Dev, T>,
    w_ih: Tensor<(usize, usize), f32, Dev, T>,
    w_hh: Tensor<(usize, usize), f32, Dev, T>,
    bias: Tensor<(usize, usize), f32, Dev, T>,
    ids: &[u32],
    mask: &[u8],
    b: usize,
    l: usize,
) -> Tensor<(usize, usize), f32, Dev, T> {
    let h4 = w_ih.shape().1;
    let hd = h4 / 4;
    let idx: Tensor<(usize,), usize, Dev> = dev.tensor_from_vec(ids.iter().map(|&i| i as usize).collect(), (b * l,));
    let bias = bias.reshape_like(&(h4,)).broadcast_like::<_, Axis<0>>(&(b * l, h4));
    let xw = (emb.gather(idx).matmul(w_ih) + bias).reshape_like(&(b, l, h4));
    let (xw, tape) = xw.split_tape();
    let (w_hh, t2) = w_hh.split_tape();
    let mut tape: T = tape.merge(t2);
    let mut h: M = dev.tensor_from_vec(vec![0.0; b * hd], (b, hd));
    let mut c: M = dev.tensor_from_vec(vec![0.0; b * hd], (b, hd));
    // Split off the tape after each op, so the next op can put it on its left operand.
    macro_rules! step {
        ($e:expr) => {{
            let (v, t) = $e.split_tape();
            tape = t;
            v
        }};
    }
    for t in 0..l {
        let m: Vec<f32> = (0..b)
            .flat_map(|r| std::iter::repeat_n(f32::from(mask[r * l + t]), hd))
            .collect();
        let keep: Vec<f32> = m.iter().map(|v| 1.0 - v).collect();
        let m: M = dev.tensor_from_vec(m, (b, hd));
        let keep: M = dev.tensor_from_vec(keep, (b, hd));
        let hw = step!(h.clone().put_tape(tape).matmul(w_hh.clone()));
        let xt = step!(xw
            .clone()
            .put_tape(tape)
            .slice((.., t..t + 1, ..))
            .reshape_like(&(b, h4)));
        let g = step!(xt.put_tape(tape) + hw);
        let gi = step!(g.clone().put_tape(tape).slice((.., 0..hd)).sigmoid());
        let gf = step!(g.clone().put_tape(tape).slice((.., hd..2 * hd)).sigmoid());
        let gg = step!(g.clone().put_tape(tape).slice((.., 2 * hd..3 * hd)).tanh());
        let go = step!(g.put_tape(tape).slice((.., 3 * hd..4 * hd)).sigmoid());
        let fc = step!(gf.put_tape(tape) * c.clone());
        let ig = step!(gi.put_tape(tape) * gg);
        let c_new = step!(fc.put_tape(tape) + ig);
        let th = step!(c_new.clone().put_tape(tape).tanh());
        let h_new = step!(go.put_tape(tape) * th);
        // Padding keeps the previous state.
        let a = step!(h_new.put_tape(tape) * m.clone());
        let k = step!(h.put_tape(tape) * keep.clone());
        h = step!(a.put_tape(tape) + k);
        let a = step!(c_new.put_tape(tape) * m);
        let k = step!(c.put_tape(tape) * keep);
        c = step!(a.put_tape(tape) + k);
    }
    h.put_tape(tape)
}
