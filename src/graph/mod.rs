//! The stage graph: which stage reads which, checked for unknown references and cycles.
//!
//! Nodes are stages (datasets are leaves and not nodes); an edge `a → b` means `b` reads `a`'s
//! artefact. The executor walks the graph in topological order and runs independent stages at
//! the same time.

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::BTreeSet;

use crate::spec::{Spec, SpecError, SpecErrors, Study};
use crate::stages::{kinds_making, Want};

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

/// The distinct stages of a study: one node per key-independent (variant, stage) whose
/// parameters differ; with variants, nodes are `stage@variant` and a stage whose definition is
/// the same in every variant (same parameters, same inputs) is drawn once.
fn nodes(study: &Study) -> Vec<(String, String, Vec<String>)> {
    // (node id, label, input node ids)
    let mut seen: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    // Who uses each node: (kind, stage names, variant indices). Two identical stages of one
    // variant are one node too, which is not "shared by 2 variants".
    type Uses<'a> = (&'a str, BTreeSet<String>, BTreeSet<usize>);
    let mut uses: std::collections::BTreeMap<String, Uses> = std::collections::BTreeMap::new();
    for (vi, v) in study.variants.iter().enumerate() {
        let mut id_of: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
        for st in &v.stages {
            let inputs: Vec<String> = st
                .stage
                .inputs()
                .iter()
                .map(|i| id_of.get(&i.name).cloned().unwrap_or_else(|| i.name.clone()))
                .collect();
            // Identity: kind, parameters, seed use and the ids of the inputs.
            let ident = format!(
                "{}|{}|{:?}|{:?}",
                st.kind.name,
                st.stage.params(),
                st.stage.uses_seed().then_some(v.seed),
                inputs
            );
            let id = match seen.get(&ident) {
                Some(id) => id.clone(),
                None => {
                    let display = Study::display(v, &st.name);
                    // Readable ids: the stage name, numbered when variants make several nodes of it.
                    let taken = seen
                        .values()
                        .filter(|i| *i == &st.name || i.starts_with(&format!("{}_", st.name)))
                        .count();
                    let id = if taken == 0 {
                        st.name.clone()
                    } else {
                        format!("{}_{taken}", st.name)
                    };
                    seen.insert(ident, id.clone());
                    let mut uniq = inputs.clone();
                    uniq.dedup();
                    out.push((id.clone(), format!("{display} ({})", st.kind.name), uniq));
                    id
                }
            };
            let u = uses
                .entry(id.clone())
                .or_insert((st.kind.name, BTreeSet::new(), BTreeSet::new()));
            u.1.insert(st.name.clone());
            u.2.insert(vi);
            id_of.insert(st.name.clone(), id);
        }
    }
    // A node of several variants is labelled with the plain stage name(s); a node standing
    // for several identical stages names them all.
    for n in out.iter_mut() {
        let Some((kind, names, variants)) = uses.get(&n.0) else {
            continue;
        };
        let joined = names.iter().cloned().collect::<Vec<_>>().join(", ");
        if variants.len() > 1 {
            n.1 = format!("{joined} ({kind}, shared by {} variants)", variants.len());
        } else if names.len() > 1 {
            n.1 = format!("{joined} ({kind}, identical)");
        }
    }
    out
}

/// Renders the pipeline as a Mermaid flowchart (datasets as stadium shapes).
pub fn mermaid(study: &Study) -> String {
    let mut s = String::from("flowchart LR\n");
    for name in study.variants[0].datasets.keys() {
        s.push_str(&format!("  {name}([{name}])\n"));
    }
    let nodes = nodes(study);
    for (id, label, _) in &nodes {
        s.push_str(&format!("  {id}[\"{label}\"]\n"));
    }
    for (id, _, inputs) in &nodes {
        let mut seen = std::collections::BTreeSet::new();
        for i in inputs {
            if seen.insert(i) {
                s.push_str(&format!("  {i} --> {id}\n"));
            }
        }
    }
    s
}

/// Draws the pipeline as a self-contained SVG (the HTML report's DAG): datasets in the first
/// column, each stage one column right of its deepest input, edges as arrows. Node ids are the
/// same as in [`mermaid`], so variants' shared stages are one node.
pub fn svg(study: &Study) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let nodes = nodes(study);
    let mut layer: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut label: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    for name in study.variants[0].datasets.keys() {
        layer.insert(name.clone(), 0);
        label.insert(name.clone(), name.clone());
    }
    // `nodes` lists stages after their inputs (file order within each variant).
    for (id, l, inputs) in &nodes {
        let depth = inputs.iter().filter_map(|i| layer.get(i)).max().map_or(0, |d| d + 1);
        layer.insert(id.clone(), depth.max(1));
        label.insert(id.clone(), l.clone());
    }
    let columns = layer.values().max().map_or(1, |m| m + 1);
    let mut rows = vec![0usize; columns];
    let mut at: std::collections::BTreeMap<String, (f64, f64)> = std::collections::BTreeMap::new();
    let (cw, rh, nw, nh) = (190.0, 34.0, 170.0, 24.0);
    let order: Vec<String> = study.variants[0]
        .datasets
        .keys()
        .cloned()
        .chain(nodes.iter().map(|n| n.0.clone()))
        .collect();
    for id in &order {
        let c = layer[id];
        at.insert(id.clone(), (10.0 + c as f64 * cw, 10.0 + rows[c] as f64 * rh));
        rows[c] += 1;
    }
    let w = 20.0 + columns as f64 * cw;
    let h = 20.0 + rows.iter().max().copied().unwrap_or(1) as f64 * rh;
    let mut s = format!(
        r##"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" class="dag"><title>pipeline</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>"##
    );
    for (id, _, inputs) in &nodes {
        let (x2, y2) = at[id];
        let mut seen = std::collections::BTreeSet::new();
        for i in inputs.iter().filter(|i| seen.insert(*i)) {
            if let Some(&(x1, y1)) = at.get(i) {
                s.push_str(&format!(
                    r##"<line x1="{:.0}" y1="{:.0}" x2="{:.0}" y2="{:.0}" stroke="#555" marker-end="url(#arrow)"/>"##,
                    x1 + nw,
                    y1 + nh / 2.0,
                    x2,
                    y2 + nh / 2.0
                ));
            }
        }
    }
    for id in &order {
        let (x, y) = at[id];
        let dataset = layer[id] == 0;
        let text: String = label[id].chars().take(26).collect();
        s.push_str(&format!(
            r##"<rect x="{x}" y="{y}" width="{nw}" height="{nh}" rx="{}" fill="{}" stroke="#333"/><text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
            if dataset { 12 } else { 3 },
            if dataset { "#eef5ff" } else { "#fff8e6" },
            x + nw / 2.0,
            y + 16.0,
            esc(&text)
        ));
    }
    s.push_str("</svg>\n");
    s
}

/// Renders the pipeline in Graphviz dot.
pub fn dot(study: &Study) -> String {
    let mut s = format!("digraph \"{}\" {{\n  rankdir=LR;\n", study.name.replace('"', "'"));
    for name in study.variants[0].datasets.keys() {
        s.push_str(&format!("  \"{name}\" [shape=cylinder];\n"));
    }
    let nodes = nodes(study);
    for (id, label, _) in &nodes {
        s.push_str(&format!(
            "  \"{id}\" [shape=box, label=\"{}\"];\n",
            label.replace('"', "'")
        ));
    }
    for (id, _, inputs) in &nodes {
        let mut seen = std::collections::BTreeSet::new();
        for i in inputs {
            if seen.insert(i) {
                s.push_str(&format!("  \"{i}\" -> \"{id}\";\n"));
            }
        }
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests;
