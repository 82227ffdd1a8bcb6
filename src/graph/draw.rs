//! Drawings of a study's stage graph — mermaid (the report's markdown), SVG (its HTML page) and
//! Graphviz dot (`warmstart dag`) — from one list of nodes, so the three always agree.

use std::collections::BTreeSet;

use crate::spec::Study;

/// The distinct stages of a study: one node per key-independent (variant, stage) whose
/// parameters differ; with variants, nodes are `stage@variant` and a stage whose definition is
/// the same in every variant (same parameters, same inputs) is drawn once.
pub(super) fn nodes(study: &Study) -> Vec<(String, String, Vec<String>)> {
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
