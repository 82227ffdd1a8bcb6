//! Adam / AdamW over [`Params`](super::Params), with a learning-rate schedule.
//!
//! Written over plain slices instead of dfdx's module optimiser because our parameters are a
//! runtime list; only parameters named in `trainable` are touched.

use std::collections::BTreeMap;

use dfdx::prelude::*;

use super::{Params, Tp, T2};

pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Decoupled weight decay (AdamW); 0 = plain Adam.
    pub weight_decay: f32,
    step: i32,
    moments: BTreeMap<String, (Vec<f32>, Vec<f32>)>,
}

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

    /// One step. `lr_scale` multiplies the learning rate (schedules, discriminative rates are
    /// given per parameter through `scale_of`).
    pub fn step(
        &mut self,
        params: &mut Params,
        grads: &Gradients<f32, Cpu>,
        trainable: &[String],
        lr_scale: f32,
        scale_of: impl Fn(&str) -> f32,
    ) {
        self.step += 1;
        let b1t = 1.0 - self.beta1.powi(self.step);
        let b2t = 1.0 - self.beta2.powi(self.step);
        for name in trainable {
            let Some(p) = params.tensors.get_mut(name) else {
                continue;
            };
            let g: T2 = grads.get(&p.retaped::<Tp>());
            let g = g.as_vec();
            let mut w = p.as_vec();
            let (m, v) = self
                .moments
                .entry(name.clone())
                .or_insert_with(|| (vec![0.0; w.len()], vec![0.0; w.len()]));
            let lr = self.lr * lr_scale * scale_of(name);
            for i in 0..w.len() {
                m[i] = self.beta1 * m[i] + (1.0 - self.beta1) * g[i];
                v[i] = self.beta2 * v[i] + (1.0 - self.beta2) * g[i] * g[i];
                let mh = m[i] / b1t;
                let vh = v[i] / b2t;
                w[i] -= lr * (mh / (vh.sqrt() + self.eps) + self.weight_decay * w[i]);
            }
            p.copy_from(&w);
        }
    }
}
