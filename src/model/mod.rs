//! Networks on dfdx tensors with sizes chosen at run time.
//!
//! dfdx 0.13's built-in layers fix their sizes at compile time; a YAML file chooses sizes at
//! run time. So layers here are written directly with tensor ops over `(usize, usize)` shapes
//! (measured at the same speed as the built-in layers, see ../shared/design/engine-notes.md).
//! The price is our own parameter list ([`Params`]) for the optimiser, for saving (safetensors)
//! and for freezing.
//!
//! Gradient plumbing, the one subtle part: every parameter that should learn enters the graph
//! as `p.retaped::<Tp>()` (same tensor id, a fresh tape that the first binary op merges). A
//! parameter used without a tape gets no gradient — that is how freezing works: frozen
//! parameters are used untaped and never handed to the optimiser, so they cannot drift (not even
//! through decoupled weight decay).

pub mod adam;
pub mod bag;
pub mod cbow;
pub mod classifier;
pub mod cnn;
pub mod encoder;
pub mod encoder_config;
pub mod encoder_kind;
pub mod lm;
pub mod logreg;
pub mod lstm;
pub mod ngrams;
pub mod ops;
pub mod pool;
pub mod resume;
pub mod train;
pub mod transformer;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use dfdx::prelude::*;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub type Dev = Cpu;
pub type T2 = Tensor<(usize, usize), f32, Dev>;
pub type Tp = OwnedTape<f32, Dev>;
/// Hands out a parameter by name on tape type `T` (see the module docs on gradient plumbing).
pub type ParamFn<'a, T> = &'a dyn Fn(&str) -> Result<Tensor<(usize, usize), f32, Dev, T>>;

/// What a training loop reports to and saves into, besides its data and settings: the
/// stage's progress handle and its checkpoints (both outside the artefact).
#[derive(Clone, Copy)]
pub struct LoopCtx<'a> {
    pub progress: &'a crate::progress::Progress,
    pub checkpoint: &'a crate::checkpoint::Checkpoint,
}

/// Named 2-D parameters (vectors are stored as 1 × n).
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub tensors: BTreeMap<String, T2>,
}

impl Params {
    pub fn get(&self, name: &str) -> Result<&T2> {
        self.tensors
            .get(name)
            .ok_or_else(|| anyhow!("model has no parameter `{name}`"))
    }

    pub fn count(&self) -> usize {
        self.tensors.values().map(|t| t.shape().0 * t.shape().1).sum()
    }

    /// Saves as safetensors (f32, row-major), loadable by Python's `safetensors`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let data: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                let bytes: Vec<u8> = t.as_vec().iter().flat_map(|x| x.to_le_bytes()).collect();
                (k.clone(), bytes, vec![t.shape().0, t.shape().1])
            })
            .collect();
        let views: Vec<(String, ::safetensors::tensor::TensorView)> = data
            .iter()
            .map(|(k, b, s)| {
                Ok((
                    k.clone(),
                    ::safetensors::tensor::TensorView::new(::safetensors::Dtype::F32, s.clone(), b)?,
                ))
            })
            .collect::<Result<_, ::safetensors::SafeTensorError>>()
            .map_err(|e| anyhow!("{e:?}"))?;
        ::safetensors::serialize_to_file(views, &None, path)
            .map_err(|e| anyhow!("cannot write {}: {e:?}", path.display()))
    }

    pub fn load(dev: &Dev, path: &Path) -> Result<Params> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let st = ::safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| anyhow!("{}: not a safetensors file: {e:?}", path.display()))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != ::safetensors::Dtype::F32 || view.shape().len() != 2 {
                bail!("{}: tensor `{name}` is not a 2-D f32 tensor", path.display());
            }
            let v: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let shape = (view.shape()[0], view.shape()[1]);
            tensors.insert(name, dev.tensor_from_vec(v, shape));
        }
        Ok(Params { tensors })
    }
}

/// A tensor of `rows × cols` drawn uniformly from ±`scale` with a seeded generator (so
/// initialisation does not depend on dfdx's own RNG or on thread count).
pub fn uniform(dev: &Dev, rng: &mut ChaCha8Rng, rows: usize, cols: usize, scale: f32) -> T2 {
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.gen_range(-scale..=scale)).collect();
    dev.tensor_from_vec(v, (rows, cols))
}

pub fn zeros(dev: &Dev, rows: usize, cols: usize) -> T2 {
    dev.tensor_from_vec(vec![0.0; rows * cols], (rows, cols))
}

/// Fails with a clear message when a loss is not finite (then nothing is cached).
/// Splits `items` into (train, held out): about `share` of them held out, spread evenly over
/// the whole list (item `i` is held out when `⌊(i+1)·share⌋ > ⌊i·share⌋`), never the last.
///
/// Not the tail: pretraining data is the concatenation of its datasets in spec order, and the
/// in-domain text is usually listed last (`data: [general, domain]`) and is small — a tail
/// split held out all of it, so the encoder never trained on the text it is for.
pub fn split_held_out<T>(items: Vec<T>, share: f64) -> (Vec<T>, Vec<T>) {
    let (mut train, mut held) = (Vec::new(), Vec::new());
    let n = items.len();
    for (i, x) in items.into_iter().enumerate() {
        let out = share > 0.0 && ((i + 1) as f64 * share).floor() > (i as f64 * share).floor();
        if out && i + 1 < n {
            held.push(x);
        } else {
            train.push(x);
        }
    }
    (train, held)
}

pub fn check_finite(loss: f32, what: &str, epoch: usize) -> Result<()> {
    if !loss.is_finite() {
        bail!(
            "{what} loss became {loss} in epoch {} — training diverged; lower the learning rate (`lr`) or check the data",
            epoch + 1
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Held-out rows come from everywhere in the data, so a small dataset listed last (the
    /// in-domain text) is trained on, not held out whole.
    #[test]
    fn held_out_rows_are_spread_over_all_the_data() {
        let items: Vec<usize> = (0..1000).collect();
        let (train, held) = super::split_held_out(items.clone(), 0.05);
        assert!((49..=50).contains(&held.len()), "{}", held.len());
        assert_eq!(train.len() + held.len(), 1000);
        // Every tenth of the data gives its share, the last 2 % (a small last dataset) too.
        for tenth in 0..10 {
            let n = held.iter().filter(|&&i| i / 100 == tenth).count();
            assert!((4..=5).contains(&n), "tenth {tenth}: {n}");
        }
        assert!(train.iter().filter(|&&i| i >= 980).count() >= 19);
        // Nothing held out when asked for nothing; never everything.
        assert!(super::split_held_out(items, 0.0).1.is_empty());
        assert!(!super::split_held_out(vec![7], 0.4).0.is_empty());
    }
}
