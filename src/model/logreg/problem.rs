//! The problem as the solver sees it: standardised dense columns, sparse columns renumbered
//! to the slots the rows use, and how a setting of C is judged (folds or a dev set).

/// The problem as the solver sees it: dense columns standardised (and, beside other blocks,
/// each part scaled by 1/√width so that every block has rows of about unit length and one grid
/// of C suits all); sparse columns renumbered to the slots that occur in these rows. A slot
/// that no training row has gets weight exactly 0 at an L2 optimum, so leaving it out changes
/// nothing and keeps the solver's dimension at the n-grams seen, not the 2^18 slots.
pub(super) struct Z {
    pub(super) dense: Vec<f32>,
    pub(super) d: usize,
    /// Widths of the dense parts, in column order (sum `d`), each with its own C.
    pub(super) parts: Vec<usize>,
    pub(super) sparse: Vec<Vec<(u32, f32)>>,
    /// Compact column → bucket.
    pub(super) slots: Vec<u32>,
    pub(super) k: usize,
}

impl Z {
    pub(super) fn dim(&self) -> usize {
        (self.d + self.slots.len()) * self.k + self.k
    }

    /// Whether the problem has a sparse block (with at least one slot).
    pub(super) fn has_sparse(&self) -> bool {
        !self.slots.is_empty()
    }

    /// Blocks the selection tunes: the dense parts, then the sparse block if any.
    pub(super) fn blocks(&self) -> usize {
        self.parts.len() + usize::from(self.has_sparse())
    }

    /// The dense part each dense column belongs to.
    pub(super) fn part_of_column(&self) -> Vec<usize> {
        self.parts
            .iter()
            .enumerate()
            .flat_map(|(p, &w)| std::iter::repeat_n(p, w))
            .collect()
    }

    /// The problem with only the dense parts in `keep` and, if `sparse`, the sparse block:
    /// switched-off blocks are left out rather than given a vanishing C, which would make the
    /// problem too ill-conditioned for L-BFGS.
    pub(super) fn restrict(&self, keep: &[bool], sparse: bool) -> Z {
        let cols: Vec<bool> = self.part_of_column().iter().map(|&p| keep[p]).collect();
        let d = cols.iter().filter(|&&c| c).count();
        let dense = if d == 0 {
            Vec::new()
        } else {
            self.dense
                .chunks(self.d)
                .flat_map(|row| row.iter().zip(&cols).filter(|(_, &c)| c).map(|(&v, _)| v))
                .collect()
        };
        Z {
            dense,
            d,
            parts: self
                .parts
                .iter()
                .zip(keep)
                .filter(|(_, &k)| k)
                .map(|(&w, _)| w)
                .collect(),
            sparse: if sparse { self.sparse.clone() } else { Vec::new() },
            slots: if sparse { self.slots.clone() } else { Vec::new() },
            k: self.k,
        }
    }
}

/// How a setting of C is judged: stratified folds of the training rows, or a dev set.
pub(super) enum Holdout<'a> {
    Folds(u64),
    Dev(&'a Z, &'a [u32]),
}

pub(super) fn column_stats(x: &[f32], n: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0f64; d];
    for row in x.chunks(d.max(1)) {
        mean.iter_mut().zip(row).for_each(|(m, &v)| *m += v as f64);
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mut var = vec![0.0f64; d];
    for row in x.chunks(d.max(1)) {
        var.iter_mut()
            .zip(row)
            .zip(&mean)
            .for_each(|((s, &v), m)| *s += (v as f64 - m).powi(2));
    }
    // A constant column gets σ = 1: it carries no information and stays at weight 0.
    let sd = var
        .iter()
        .map(|s| {
            let sd = (s / n.max(1) as f64).sqrt();
            if sd > 1e-12 {
                sd
            } else {
                1.0
            }
        })
        .collect();
    (mean, sd)
}

/// `alpha[j] · (x − μ_j) / σ_j` per column.
pub(super) fn standardise(x: &[f32], d: usize, mean: &[f64], sd: &[f64], alpha: &[f64]) -> Vec<f32> {
    let mut z = x.to_vec();
    for row in z.chunks_mut(d.max(1)) {
        for (((v, m), s), a) in row.iter_mut().zip(mean).zip(sd).zip(alpha) {
            *v = (a * (*v as f64 - m) / s) as f32;
        }
    }
    z
}
