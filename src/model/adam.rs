//! Adam / AdamW over [`Params`](super::Params), with a learning-rate schedule.
//!
//! Written over plain slices instead of dfdx's module optimiser because our parameters are a
//! runtime list; only parameters named in `trainable` are touched.

use std::collections::BTreeMap;

use dfdx::prelude::*;

use dfdx::tensor_ops::{AdamConfig, WeightDecay};

use super::Params;

pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW); 0 = plain Adam.
    pub weight_decay: f32,
    step: i32,
    moments: BTreeMap<String, (Moment, Moment)>,
}

type Moment = <Cpu as Storage<f32>>::Vec;

impl Adam {
    pub fn new(lr: f32, weight_decay: f32) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            step: 0,
            moments: BTreeMap::new(),
        }
    }

    /// One step over the parameters named in `trainable`. `lr_scale` multiplies the learning
    /// rate (schedules); `scale_of` gives a per-parameter factor (discriminative rates).
    ///
    /// Uses dfdx's Adam kernel in place on the parameter's and the gradient's buffers: copying
    /// them out (`as_vec`, which walks strides element by element) and back cost more than the
    /// forward and backward passes of a bag classifier.
    pub fn step(
        &mut self,
        params: &mut Params,
        grads: &mut Gradients<f32, Cpu>,
        trainable: &[String],
        lr_scale: f32,
        scale_of: impl Fn(&str) -> f32,
    ) -> anyhow::Result<()> {
        self.step += 1;
        for name in trainable {
            let Some(p) = params.tensors.get_mut(name) else {
                continue;
            };
            let g = grads.get_or_alloc_mut(&*p).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let n = p.shape().0 * p.shape().1;
            let dev = p.device().clone();
            if !self.moments.contains_key(name) {
                let zeros = || dev.try_alloc_len(n).map_err(|e| anyhow::anyhow!("{e:?}"));
                self.moments.insert(name.clone(), (zeros()?, zeros()?));
            }
            let (m, v) = self.moments.get_mut(name).expect("inserted above");
            let cfg = AdamConfig {
                lr: (self.lr * lr_scale * scale_of(name)) as f64,
                betas: [self.beta1 as f64, self.beta2 as f64],
                eps: self.eps as f64,
                weight_decay: (self.weight_decay > 0.0).then_some(WeightDecay::Decoupled(self.weight_decay as f64)),
            };
            cfg.try_update(self.step, p, m, v, &*g)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(())
    }
}
