//! The problem as the solver sees it: standardised dense columns, sparse columns renumbered
//! to the slots the rows use, and how a setting of C is judged (folds or a dev set).

/// The problem as the solver sees it: dense columns standardised (and, next to a sparse block,
/// scaled by 1/√d so that both blocks have rows of about unit length and one C suits both);
/// sparse columns renumbered to the slots that occur in these rows. A slot that no training
/// row has gets weight exactly 0 at an L2 optimum, so leaving it out changes nothing and keeps
/// the solver's dimension at the n-grams seen, not the 2^18 slots.
pub(super) struct Z {
    pub(super) dense: Vec<f32>,
    pub(super) d: usize,
    pub(super) sparse: Vec<Vec<(u32, f32)>>,
    /// Compact column → bucket.
    pub(super) slots: Vec<u32>,
    pub(super) k: usize,
}

impl Z {
    pub(super) fn dim(&self) -> usize {
        (self.d + self.slots.len()) * self.k + self.k
    }
    pub(super) fn whole(&self) -> Z {
        Z {
            dense: self.dense.clone(),
            d: self.d,
            sparse: self.sparse.clone(),
            slots: self.slots.clone(),
            k: self.k,
        }
    }
    pub(super) fn dense_only(&self) -> Z {
        Z {
            dense: self.dense.clone(),
            d: self.d,
            sparse: Vec::new(),
            slots: Vec::new(),
            k: self.k,
        }
    }
    pub(super) fn sparse_only(&self) -> Z {
        Z {
            dense: Vec::new(),
            d: 0,
            sparse: self.sparse.clone(),
            slots: self.slots.clone(),
            k: self.k,
        }
    }
}

/// How a setting of C is judged: stratified folds of the training rows, or a dev set.
pub(super) enum Holdout<'a> {
    Folds(u64),
    Dev(Z, &'a [u32]),
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

pub(super) fn standardise(x: &[f32], d: usize, mean: &[f64], sd: &[f64], alpha: f64) -> Vec<f32> {
    let mut z = x.to_vec();
    for row in z.chunks_mut(d.max(1)) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(sd) {
            *v = (alpha * (*v as f64 - m) / s) as f32;
        }
    }
    z
}
