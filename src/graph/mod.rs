//! The stage graph: which stage reads which, checked for unknown references and cycles.
//!
//! Nodes are stages (datasets are leaves and not nodes); an edge `a → b` means `b` reads `a`'s
//! artefact. The executor walks the graph in topological order and runs independent stages at
//! the same time. Drawings of a study's graph (mermaid, SVG, dot) are in `draw.rs`.

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use crate::spec::{Spec, SpecError, SpecErrors};
use crate::stages::{kinds_making, Want};

mod draw;
#[cfg(test)]
use draw::nodes;
pub use draw::{dot, mermaid, svg};

/// The checked DAG of a spec. Indices are positions in `spec.stages`.
#[derive(Debug)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
    /// Stage indices, each after all the stages it reads.
    pub order: Vec<usize>,
}

impl Dag {
    /// Builds the DAG of a spec that [`check`] accepted.
    pub fn build(spec: &Spec) -> Result<Dag, SpecErrors> {
        let mut graph = DiGraph::new();
        let nodes: Vec<NodeIndex> = (0..spec.stages.len()).map(|i| graph.add_node(i)).collect();
        for (i, s) in spec.stages.iter().enumerate() {
            for input in s.stage.inputs() {
                if let Some(j) = spec.stages.iter().position(|t| t.name == input.name) {
                    graph.update_edge(nodes[j], nodes[i], ());
                }
            }
        }
        let order = match toposort(&graph, None) {
            Ok(o) => o.into_iter().map(|n| graph[n]).collect(),
            Err(_) => return Err(SpecErrors(cycle_errors(spec, &graph))),
        };
        Ok(Dag { graph, order })
    }

    /// Stages that `i` reads directly.
    pub fn upstream(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
            .map(|n| self.graph[n])
            .collect();
        v.sort_unstable();
        v
    }

    /// Stages that read `i` directly.
    pub fn downstream(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .graph
            .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Outgoing)
            .map(|n| self.graph[n])
            .collect();
        v.sort_unstable();
        v
    }
}

/// Checks that every input names an existing dataset or stage of the right kind, and that the
/// stages form no cycle.
pub fn check(spec: &Spec) -> Result<(), SpecErrors> {
    let mut errors = Vec::new();
    for s in &spec.stages {
        for input in s.stage.inputs() {
            let field = format!("stages.{}.{}", s.name, input.field);
            let is_dataset = spec.datasets.contains_key(&input.name);
            let stage = spec.stage(&input.name);
            let problem = match (input.want, is_dataset, stage) {
                (Want::Dataset, true, _) => None,
                (Want::Dataset, false, Some(_)) => Some(format!(
                    "`{}` is a stage, but a dataset is expected here (datasets: {})",
                    input.name,
                    names(spec.datasets.keys())
                )),
                (Want::Dataset, false, None) => Some(format!(
                    "unknown dataset `{}`; datasets defined: {}",
                    input.name,
                    names(spec.datasets.keys())
                )),
                (Want::Stage(products), _, Some(t)) if products.contains(&t.kind.produces) => None,
                (Want::Stage(products), _, Some(t)) => Some(format!(
                    "`{}` is a `{}` stage, but a stage of kind {} is expected here",
                    input.name,
                    t.kind.name,
                    kinds_making(products).join(" or ")
                )),
                (Want::Stage(products), true, None) => Some(format!(
                    "`{}` is a dataset, but a stage of kind {} is expected here",
                    input.name,
                    kinds_making(products).join(" or ")
                )),
                (Want::Stage(products), false, None) => {
                    let candidates: Vec<&String> = spec
                        .stages
                        .iter()
                        .filter(|t| products.contains(&t.kind.produces))
                        .map(|t| &t.name)
                        .collect();
                    Some(format!(
                        "unknown stage `{}`; stages of kind {} defined: {}",
                        input.name,
                        kinds_making(products).join(" or "),
                        names(candidates.into_iter())
                    ))
                }
            };
            if let Some(p) = problem {
                errors.push(spec.error_at(&field, p));
            }
        }
    }
    for s in &spec.stages {
        for held in s.stage.held_refs() {
            let Some((holder, field, held_names)) = holds(spec, &held.via, 0) else {
                continue; // unknown `via` is reported above
            };
            if !held_names.contains(&held.name) {
                let what = if spec.datasets.contains_key(&held.name) {
                    format!("dataset `{}` is not in `{holder}.{field}`", held.name)
                } else {
                    format!("unknown dataset `{}`", held.name)
                };
                errors.push(spec.error_at(
                    &format!("stages.{}.{}", s.name, held.field),
                    format!(
                        "{what}, so `{}` will not hold it; `{holder}` holds: {} (add it to `{holder}.{field}`)",
                        held.via,
                        names(held_names.iter())
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(SpecErrors(errors));
    }
    Dag::build(spec).map(|_| ())
}

/// The datasets held by stage `name`'s artefact and the stage that decided them, following
/// stages that pass their input's datasets through (pad) up to the one that names them.
fn holds<'a>(spec: &'a Spec, name: &'a str, depth: usize) -> Option<(&'a str, &'static str, Vec<String>)> {
    let s = spec.stage(name)?;
    if let Some((field, v)) = s.stage.holds() {
        return Some((&s.name, field, v));
    }
    if depth > spec.stages.len() {
        return None; // a cycle, reported by Dag::build
    }
    let up = s
        .stage
        .inputs()
        .into_iter()
        .find(|i| matches!(i.want, Want::Stage(_)) && spec.stage(&i.name).is_some())?;
    let up_name = &spec.stage(&up.name)?.name;
    holds(spec, up_name, depth + 1)
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<String> = it.map(|s| format!("`{s}`")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

fn cycle_errors(spec: &Spec, graph: &DiGraph<usize, ()>) -> Vec<SpecError> {
    let mut out = Vec::new();
    for scc in tarjan_scc(graph) {
        let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        let mut members: Vec<usize> = scc.iter().map(|n| graph[*n]).collect();
        members.sort_unstable();
        let first = &spec.stages[members[0]];
        // Walk the cycle from the first member so the message shows it in order.
        let mut path = vec![members[0]];
        let mut cur = members[0];
        while path.len() <= members.len() {
            let next = spec.stages[cur]
                .stage
                .inputs()
                .iter()
                .filter_map(|inp| spec.stages.iter().position(|t| t.name == inp.name))
                .find(|j| members.contains(j));
            match next {
                Some(j) => {
                    path.push(j);
                    if j == members[0] {
                        break;
                    }
                    cur = j;
                }
                None => break,
            }
        }
        let shown: Vec<&str> = path.iter().map(|&i| spec.stages[i].name.as_str()).collect();
        let field = first
            .stage
            .inputs()
            .into_iter()
            .find(|inp| path.get(1).is_some_and(|&j| spec.stages[j].name == inp.name))
            .map(|inp| format!("stages.{}.{}", first.name, inp.field))
            .unwrap_or_else(|| format!("stages.{}", first.name));
        out.push(spec.error_at(
            &field,
            format!(
                "the stages form a cycle: {} (each reads the next); a pipeline must be acyclic",
                shown.join(" → ")
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
