//! What a stage asks of a cluster scheduler: the spec's optional `executor:` block.
//!
//! ```yaml
//! executor:
//!   time: "00:30:00"          # every stage
//!   mem: 2G
//!   kinds:
//!     pretrain: { time: "04:00:00", cpus: 8 }
//!   stages:
//!     vectors: { mem: 16G, sbatch_args: ["--qos=long"] }
//! ```
//!
//! | field         | sbatch                 |
//! |---------------|------------------------|
//! | `partition`   | `--partition=…`        |
//! | `time`        | `--time=…`             |
//! | `mem`         | `--mem=…`              |
//! | `cpus`        | `--cpus-per-task=…`    |
//! | `sbatch_args` | passed as written      |
//!
//! A stage gets the top level, then its kind's entry, then its own entry, each field replacing
//! the one before (`sbatch_args` add up, in that order); `--slurm-arg` comes last, so the command
//! line wins (sbatch keeps the last value of a repeated option). Resources are not in any key:
//! where a stage runs does not change what it writes. The local executor ignores the block.

use crate::problem::Problem;
use std::collections::BTreeMap;

use serde::Deserialize;

/// The `executor:` block, and each of its `kinds` and `stages` entries (which have no entries
/// of their own): scheduler requests, any of them unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Slurm partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// Wall-clock limit, in any form sbatch accepts ("30", "01:00:00", "1-00:00:00").
    #[serde(default)]
    pub time: Option<String>,
    /// Memory per node, as sbatch's `--mem` ("4G", "500M").
    #[serde(default)]
    pub mem: Option<String>,
    /// CPUs for the stage's process (`--cpus-per-task`).
    #[serde(default)]
    pub cpus: Option<u32>,
    /// Further sbatch arguments, e.g. `["--qos=long", "--account=nlp"]`.
    #[serde(default)]
    pub sbatch_args: Vec<String>,
    /// Top level only: by stage kind (`tokenize`, `pretrain`, …).
    #[serde(default)]
    pub kinds: BTreeMap<String, Resources>,
    /// Top level only: by stage name.
    #[serde(default)]
    pub stages: BTreeMap<String, Resources>,
}

/// The spec's `executor:` block.
pub type ExecutorSpec = Resources;

impl Resources {
    /// What stage `stage` of kind `kind` asks for (module docs: the order of precedence).
    pub fn for_stage(&self, stage: &str, kind: &str) -> Resources {
        let mut r = Resources {
            kinds: BTreeMap::new(),
            stages: BTreeMap::new(),
            ..self.clone()
        };
        for layer in [self.kinds.get(kind), self.stages.get(stage)].into_iter().flatten() {
            r.partition = layer.partition.clone().or(r.partition);
            r.time = layer.time.clone().or(r.time);
            r.mem = layer.mem.clone().or(r.mem);
            r.cpus = layer.cpus.or(r.cpus);
            r.sbatch_args.extend(layer.sbatch_args.iter().cloned());
        }
        r
    }

    /// Problems a type cannot catch, as (field path, message): names that match no stage kind
    /// or no stage, and values sbatch would refuse.
    pub fn problems(&self, kinds: &[&str], stages: &[&str]) -> Vec<Problem> {
        let mut v = Vec::new();
        for k in self.kinds.keys() {
            if !kinds.contains(&k.as_str()) {
                v.push(Problem::new(
                    format!("executor.kinds.{k}"),
                    format!("unknown stage kind `{k}`; kinds: {}", kinds.join(", ")),
                ));
            }
        }
        for s in self.stages.keys() {
            if !stages.contains(&s.as_str()) {
                v.push(Problem::new(
                    format!("executor.stages.{s}"),
                    format!("no stage `{s}` in this spec; stages: {}", stages.join(", ")),
                ));
            }
        }
        let layers = std::iter::once(("executor".to_string(), self.cpus))
            .chain(self.kinds.iter().map(|(k, r)| (format!("executor.kinds.{k}"), r.cpus)))
            .chain(
                self.stages
                    .iter()
                    .map(|(s, r)| (format!("executor.stages.{s}"), r.cpus)),
            );
        for (at, cpus) in layers {
            if cpus == Some(0) {
                v.push(Problem::new(format!("{at}.cpus"), "cpus must be at least 1".into()));
            }
        }
        v
    }

    /// The sbatch arguments these requests become.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if let Some(p) = &self.partition {
            v.push(format!("--partition={p}"));
        }
        if let Some(t) = &self.time {
            v.push(format!("--time={t}"));
        }
        if let Some(m) = &self.mem {
            v.push(format!("--mem={m}"));
        }
        if let Some(c) = self.cpus {
            v.push(format!("--cpus-per-task={c}"));
        }
        v.extend(self.sbatch_args.iter().cloned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_over_kind_over_defaults_and_arguments_add_up() {
        let e: ExecutorSpec = serde_json::from_value(serde_json::json!({
            "time": "10", "mem": "1G", "sbatch_args": ["--qos=a"],
            "kinds": { "pretrain": { "time": "60", "cpus": 4, "sbatch_args": ["--qos=b"] } },
            "stages": { "vectors": { "mem": "8G" } }
        }))
        .unwrap();
        assert_eq!(
            e.for_stage("vectors", "pretrain").sbatch_args(),
            ["--time=60", "--mem=8G", "--cpus-per-task=4", "--qos=a", "--qos=b"]
        );
        assert_eq!(
            e.for_stage("tok", "tokenize").sbatch_args(),
            ["--time=10", "--mem=1G", "--qos=a"]
        );
        let bad = e.problems(&["tokenize"], &["tok"]);
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].field == "executor.kinds.pretrain" && bad[1].field == "executor.stages.vectors");
    }
}
