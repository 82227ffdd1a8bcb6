//! The DAG of a small spec: order, neighbours, the cycle report, and the drawings.

use super::*;
use crate::spec::Study;
use std::path::Path;

/// Two classifier branches on one tokenizer: tok → seqs → {a, b}, each evaluated.
const BRANCHES: &str = "name: t
datasets:
  d: { path: d.csv }
stages:
  ev_b: { kind: evaluate, model: b, from: seqs, data: d }
  b: { kind: finetune, from: seqs, train: d, epochs: 3 }
  seqs: { kind: pad, from: tok }
  a: { kind: finetune, from: seqs, train: d, epochs: 1 }
  tok: { kind: tokenize, fit_on: [d], vocab_size: 100 }
  ev_a: { kind: evaluate, model: a, from: seqs, data: d }
";

/// Every edge of `BRANCHES` (reader after what it reads).
const EDGES: [(&str, &str); 5] = [
    ("tok", "seqs"),
    ("seqs", "a"),
    ("seqs", "b"),
    ("a", "ev_a"),
    ("b", "ev_b"),
];

fn spec(text: &str) -> Spec {
    Study::parse(Path::new("t.yaml"), text, &[]).unwrap().variants.remove(0)
}

fn index(spec: &Spec, name: &str) -> usize {
    spec.stages.iter().position(|s| s.name == name).unwrap()
}

#[test]
fn order_puts_every_stage_after_what_it_reads() {
    let spec = spec(BRANCHES);
    check(&spec).unwrap();
    let dag = Dag::build(&spec).unwrap();
    assert_eq!(dag.order.len(), spec.stages.len());
    let at = |name: &str| dag.order.iter().position(|&i| i == index(&spec, name)).unwrap();
    for (before, after) in EDGES {
        assert!(
            at(before) < at(after),
            "{before} must come before {after}: {:?}",
            dag.order
        );
    }
    let names = |v: Vec<usize>| -> Vec<String> {
        let mut n: Vec<String> = v.into_iter().map(|i| spec.stages[i].name.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(dag.upstream(index(&spec, "a"))), ["seqs"]);
    assert_eq!(names(dag.downstream(index(&spec, "seqs"))), ["a", "b", "ev_a", "ev_b"]);
    assert!(dag.downstream(index(&spec, "ev_a")).is_empty());
}

#[test]
fn a_cycle_is_reported_in_order_with_its_field() {
    // pad stages reading each other: the kind check (in `check`) would refuse them first, so
    // the cycle is built directly.
    let spec = spec(
        "name: t\ndatasets:\n  d: { path: d.csv }\nstages:\n  x: { kind: pad, from: y }\n  y: { kind: pad, from: x }\n",
    );
    let err = Dag::build(&spec).unwrap_err().to_string();
    assert!(err.contains("the stages form a cycle: x → y → x"), "{err}");
    assert!(err.contains("stages.x.from"), "{err}");
}

#[test]
fn an_unknown_reference_names_the_stage_and_what_exists() {
    let spec = spec(&BRANCHES.replace("model: b,", "model: bb,"));
    let err = check(&spec).unwrap_err().to_string();
    assert!(err.contains("bb"), "{err}");
    assert!(err.contains("stages.ev_b.model"), "{err}");
}

#[test]
fn drawings_show_every_edge() {
    let st = Study::parse(Path::new("t.yaml"), BRANCHES, &[]).unwrap();
    let (mermaid, dot) = (mermaid(&st), dot(&st));
    for (from, to) in EDGES {
        assert!(
            mermaid.contains(&format!("{from} --> {to}")) || mermaid.contains(&format!("{from}-->{to}")),
            "mermaid lacks {from} → {to}:\n{mermaid}"
        );
        assert!(
            dot.contains(&format!("\"{from}\" -> \"{to}\"")),
            "dot lacks {from} → {to}:\n{dot}"
        );
    }
    assert!(svg(&st).starts_with("<svg"));
}

/// A node stands for identical stages: across variants it says by how many variants it is
/// shared; two identical stages of one variant are named together, not "shared by 2 variants".
#[test]
fn shared_nodes_count_variants_not_stages() {
    let twins = BRANCHES.replace("epochs: 3", "epochs: 1");
    let st = Study::parse(Path::new("t.yaml"), &twins, &[]).unwrap();
    let labels: Vec<String> = nodes(&st).into_iter().map(|n| n.1).collect();
    assert!(labels.contains(&"a, b (finetune, identical)".to_string()), "{labels:?}");
    assert!(!labels.iter().any(|l| l.contains("shared by")), "{labels:?}");
    let varied = format!("{BRANCHES}matrix:\n  a.epochs: [1, 2]\n");
    let st = Study::parse(Path::new("t.yaml"), &varied, &[]).unwrap();
    let labels: Vec<String> = nodes(&st).into_iter().map(|n| n.1).collect();
    assert!(
        labels.contains(&"tok (tokenize, shared by 2 variants)".to_string()),
        "{labels:?}"
    );
    assert!(
        labels.contains(&"b (finetune, shared by 2 variants)".to_string()),
        "{labels:?}"
    );
}
