//! Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, the confusion
//! matrix and mean cross-entropy.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub loss: f64,
    pub rows: usize,
    /// Accuracy of always predicting the most frequent true label (the floor to beat).
    pub majority_baseline: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

impl Metrics {
    /// `probs[i]` are row i's class probabilities; `truth[i]` its label index.
    pub fn compute(probs: &[Vec<f32>], truth: &[usize], labels: &[String]) -> Metrics {
        let c = labels.len();
        let mut confusion = vec![vec![0usize; c]; c];
        let mut loss = 0.0f64;
        for (p, &t) in probs.iter().zip(truth) {
            let pred = argmax(p);
            confusion[t][pred] += 1;
            loss -= (p[t].max(1e-12) as f64).ln();
        }
        let n = truth.len().max(1);
        let correct: usize = (0..c).map(|i| confusion[i][i]).sum();
        let per_class: Vec<ClassMetrics> = (0..c)
            .map(|i| {
                let tp = confusion[i][i] as f64;
                let predicted: usize = (0..c).map(|r| confusion[r][i]).sum();
                let support: usize = confusion[i].iter().sum();
                let precision = if predicted == 0 { 0.0 } else { tp / predicted as f64 };
                let recall = if support == 0 { 0.0 } else { tp / support as f64 };
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassMetrics {
                    label: labels[i].clone(),
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect();
        // As scikit-learn's `f1_score(average="macro")`: every class that occurs in the truth
        // *or* the predictions. A class predicted but never true has F1 0 and must pull the
        // mean down; averaging only true classes hid such mistakes.
        let present: Vec<&ClassMetrics> = per_class
            .iter()
            .enumerate()
            .filter(|(i, m)| m.support > 0 || (0..c).any(|r| confusion[r][*i] > 0))
            .map(|(_, m)| m)
            .collect();
        let macro_f1 = present.iter().map(|m| m.f1).sum::<f64>() / present.len().max(1) as f64;
        let majority = per_class.iter().map(|m| m.support).max().unwrap_or(0);
        Metrics {
            accuracy: correct as f64 / n as f64,
            macro_f1,
            loss: loss / n as f64,
            rows: truth.len(),
            majority_baseline: majority as f64 / n as f64,
            per_class,
            confusion,
            labels: labels.to_vec(),
        }
    }
}

pub fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_by_hand() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let probs = vec![vec![0.9, 0.1], vec![0.2, 0.8], vec![0.6, 0.4], vec![0.3, 0.7]];
        let m = Metrics::compute(&probs, &[0, 1, 1, 1], &labels);
        assert_eq!(m.confusion, vec![vec![1, 0], vec![1, 2]]);
        assert!((m.accuracy - 0.75).abs() < 1e-9);
        assert!((m.per_class[0].precision - 0.5).abs() < 1e-9);
        assert!((m.per_class[1].recall - 2.0 / 3.0).abs() < 1e-9);
        assert!((m.majority_baseline - 0.75).abs() < 1e-9);
    }

    /// Figures from scikit-learn 1.5 (`f1_score(y, p, average="macro")`, `accuracy_score`) for
    /// y = [0,0,1,1,2], p = [0,2,1,2,2] with three labels, and for a class that is predicted but
    /// never true: y = [0,0,0,1], p = [0,2,0,1] → macro-F1 0.6 (sklearn's labels are the union).
    #[test]
    fn macro_f1_matches_scikit_learn() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let onehot = |p: &[usize]| -> Vec<Vec<f32>> {
            p.iter()
                .map(|&k| (0..3).map(|i| if i == k { 1.0 } else { 0.0 }).collect())
                .collect()
        };
        let m = Metrics::compute(&onehot(&[0, 2, 1, 2, 2]), &[0, 0, 1, 1, 2], &labels);
        // per-class F1: a 2/3, b 2/3, c 1/2 → 0.6111…
        assert!((m.macro_f1 - 0.611_111_111).abs() < 1e-6, "{}", m.macro_f1);
        let m = Metrics::compute(&onehot(&[0, 2, 0, 1]), &[0, 0, 0, 1], &labels);
        // a: p 1, r 2/3 → 0.8; b: 1.0; c (predicted once, never true): 0 → 1.8 / 3
        assert!((m.macro_f1 - 0.6).abs() < 1e-9, "{}", m.macro_f1);
    }
}
