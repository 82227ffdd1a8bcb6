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
    /// Per parameter: first and second moments and the number of updates it has had. The step
    /// count is per parameter, not global, because bias correction (`1 − βᵗ`) must count the
    /// updates *these* moments have seen: a group released late by gradual unfreezing starts
    /// with zero moments, and correcting them with a large global `t` would make its first
    /// updates several times larger than a fresh Adam's.
    moments: BTreeMap<String, State>,
}

struct State {
    m: Moment,
    v: Moment,
    t: i32,
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
        for name in trainable {
            let Some(p) = params.tensors.get_mut(name) else {
                continue;
            };
            let g = grads.get_or_alloc_mut(&*p).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let n = p.shape().0 * p.shape().1;
            let dev = p.device().clone();
            if !self.moments.contains_key(name) {
                let zeros = || dev.try_alloc_len(n).map_err(|e| anyhow::anyhow!("{e:?}"));
                let (m, v) = (zeros()?, zeros()?);
                self.moments.insert(name.clone(), State { m, v, t: 0 });
            }
            let st = self.moments.get_mut(name).expect("inserted above");
            st.t += 1;
            let cfg = AdamConfig {
                lr: (self.lr * lr_scale * scale_of(name)) as f64,
                betas: [self.beta1 as f64, self.beta2 as f64],
                eps: self.eps as f64,
                weight_decay: (self.weight_decay > 0.0).then_some(WeightDecay::Decoupled(self.weight_decay as f64)),
            };
            cfg.try_update(st.t, p, &mut st.m, &mut st.v, &*g)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        }
        Ok(())
    }

    /// The moments as tensors `m.<name>` / `v.<name>` (1 × n) added to `into`, and each
    /// tensor's step count: everything a resumed run needs to take the same next step.
    pub fn save_state(&self, into: &mut Params) -> BTreeMap<String, i32> {
        let dev = Cpu::default();
        let mut steps = BTreeMap::new();
        for (name, st) in &self.moments {
            for (prefix, m) in [("m.", &st.m), ("v.", &st.v)] {
                let t = dev.tensor_from_vec(m.to_vec(), (1, m.len()));
                into.tensors.insert(format!("{prefix}{name}"), t);
            }
            steps.insert(name.clone(), st.t);
        }
        steps
    }

    /// Restores what [`Adam::save_state`] wrote.
    pub fn load_state(&mut self, from: &Params, steps: &BTreeMap<String, i32>) -> anyhow::Result<()> {
        let dev = Cpu::default();
        self.moments.clear();
        for (name, &t) in steps {
            let moment = |prefix: &str| -> anyhow::Result<Moment> {
                let src = from.get(&format!("{prefix}{name}"))?.as_vec();
                let mut m = dev.try_alloc_len(src.len()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                m.copy_from_slice(&src);
                Ok(m)
            };
            let (m, v) = (moment("m.")?, moment("v.")?);
            self.moments.insert(name.clone(), State { m, v, t });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(dev: &Cpu) -> Params {
        let mut p = Params::default();
        p.tensors
            .insert("a".into(), dev.tensor_from_vec(vec![1.0, -2.0], (1, 2)));
        p.tensors
            .insert("b".into(), dev.tensor_from_vec(vec![0.5, 3.0], (1, 2)));
        p
    }

    fn step_with(adam: &mut Adam, p: &mut Params, trainable: &[&str], g: [f32; 2]) {
        let mut grads: Gradients<f32, Cpu> = Gradients::leaky();
        for name in trainable {
            let t = p.tensors.get(*name).unwrap();
            grads.get_or_alloc_mut(t).unwrap().copy_from_slice(&g);
        }
        let names: Vec<String> = trainable.iter().map(|s| s.to_string()).collect();
        adam.step(p, &mut grads, &names, 1.0, |_| 1.0).unwrap();
    }

    /// A group released after 50 steps (gradual unfreezing) takes exactly the first step a
    /// fresh Adam would take: its bias correction counts its own updates.
    #[test]
    fn late_group_takes_a_fresh_first_step() {
        let dev = Cpu::default();
        let mut p = params(&dev);
        let mut adam = Adam::new(0.01, 0.0);
        for _ in 0..50 {
            step_with(&mut adam, &mut p, &["a"], [0.3, -0.1]);
        }
        step_with(&mut adam, &mut p, &["a", "b"], [0.2, 0.4]);
        let late = p.tensors["b"].as_vec();

        let mut fresh_p = params(&dev);
        let mut fresh = Adam::new(0.01, 0.0);
        step_with(&mut fresh, &mut fresh_p, &["b"], [0.2, 0.4]);
        assert_eq!(late, fresh_p.tensors["b"].as_vec());
        // Adam's first step moves each coordinate by ~lr against its gradient's sign.
        assert!((late[0] - (0.5 - 0.01)).abs() < 1e-5 && (late[1] - (3.0 - 0.01)).abs() < 1e-5);
    }
}
