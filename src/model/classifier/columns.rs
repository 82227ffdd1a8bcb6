//! Which rows and columns a classifier computes at once. Padding that every row of a batch
//! shares is cut off (`real_columns`), and inference takes rows in chunks of similar length
//! (`by_length`), so a batch costs its own texts' length, not the pad stage's `max_len`.

use std::borrow::Cow;

use crate::seqfile::Padded;

/// The rows of `data` in chunks of at most 512 for inference, shortest texts first (ties in
/// row order), so that each chunk's cut to its real columns ([`real_columns`]) is close to its
/// own texts' length: a chunk of long reviews no longer makes 511 short ones pay for its
/// longest. Results go back to their rows, and a row's result does not depend on its chunk.
pub(super) fn by_length(data: &Padded) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..data.rows()).collect();
    order.sort_by_key(|&i| data.mask_row(i).iter().filter(|&&m| m != 0).count());
    order.chunks(512).map(|c| c.to_vec()).collect()
}

/// The ids and masks of rows `rows` of `data`, concatenated and already cut to their real
/// columns ([`real_columns`]), with the row length after the cut: one copy, not a copy of
/// whole rows and then another of the cut.
pub(super) fn gather(data: &Padded, rows: &[usize]) -> (Vec<u32>, Vec<u8>, usize) {
    let (lo, hi) = span(rows.iter().map(|&i| data.mask_row(i)), data.len);
    let ids = rows.iter().flat_map(|&i| data.row(i)[lo..hi].iter().copied()).collect();
    let mask = rows
        .iter()
        .flat_map(|&i| data.mask_row(i)[lo..hi].iter().copied())
        .collect();
    (ids, mask, hi - lo)
}

/// The columns of `b` rows of `l` positions that hold a real token in at least one row: the
/// span from the earliest first token to the latest last one, so a batch costs its longest
/// text, not the pad stage's `max_len` (sentences padded to 512 were ~90 % padding). Dropping
/// columns that are padding in every row changes no encoder's result: padding is masked out of
/// pooling and attention, carries the LSTM state over unchanged, and counts as zero in the
/// convolution (as the cut-off edge does); transformer positions count from each row's first
/// real token. Sums whose length follows the columns (attention over keys, the LSTM's `dW_hh`)
/// add the same terms in another grouping, so bits may differ from the untrimmed batch; the cut
/// depends only on the rows, so the same batch gives the same bits on any thread count. At
/// least one column is kept.
pub(super) fn real_columns<'a>(
    ids: &'a [u32],
    mask: &'a [u8],
    b: usize,
    l: usize,
) -> (Cow<'a, [u32]>, Cow<'a, [u8]>, usize) {
    let (lo, hi) = span(mask.chunks(l.max(1)).take(b), l);
    if (lo, hi) == (0, l) {
        return (Cow::Borrowed(ids), Cow::Borrowed(mask), l);
    }
    let cut = |r: usize| r * l + lo..r * l + hi;
    let ids: Vec<u32> = (0..b).flat_map(|r| ids[cut(r)].iter().copied()).collect();
    let mask: Vec<u8> = (0..b).flat_map(|r| mask[cut(r)].iter().copied()).collect();
    (Cow::Owned(ids), Cow::Owned(mask), hi - lo)
}

/// The columns `lo..hi` from the earliest first real token of `rows` (masks of `l` positions)
/// to the latest last one; `0..1` when no row has a real token (at least one column is kept).
fn span<'a>(rows: impl Iterator<Item = &'a [u8]>, l: usize) -> (usize, usize) {
    let (mut lo, mut hi) = (l, 0);
    for m in rows {
        if let (Some(f), Some(e)) = (m.iter().position(|&v| v != 0), m.iter().rposition(|&v| v != 0)) {
            lo = lo.min(f);
            hi = hi.max(e + 1);
        }
    }
    if hi <= lo {
        (0, 1.min(l))
    } else {
        (lo, hi)
    }
}
