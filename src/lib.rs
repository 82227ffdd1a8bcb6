//! warmstart: declarative, cached transfer-learning pipelines for text classifiers.
//!
//! See ARCHITECTURE.md for the map. In one line: [`spec`] reads the YAML, [`graph`] checks the
//! DAG, [`plan`] computes content keys and freshness, [`executor`] runs what is stale through
//! the [`stages`] registry, and [`store`] keeps every artefact, complete or not at all.

pub mod alloc;
pub mod artefact;
pub mod checkpoint;
pub mod cli;
pub mod compare;
pub mod dataset;
pub mod determinism;
pub mod executor;
pub mod fingerprint;
pub mod graph;
pub mod metrics;
pub mod model;
pub mod model_card;
pub mod pipeline;
pub mod plan;
pub mod predict;
pub mod problem;
pub mod progress;
pub mod report;
pub mod resources;
pub mod schema;
pub mod seqfile;
pub mod slurm;
pub mod spec;
pub mod stages;
pub mod store;
pub mod typed;
pub mod verbosity;
pub mod workspace;

/// Architecture invariants that a reader would otherwise have to trust (ARCHITECTURE.md).
#[cfg(test)]
mod layering {
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push((p.display().to_string(), std::fs::read_to_string(&p).unwrap()));
            }
        }
    }

    #[test]
    fn model_never_imports_stages_only_spec_knows_yaml_and_spec_knows_no_graph() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        for (path, text) in &files {
            let rel = path.strip_prefix(src.to_str().unwrap()).unwrap_or(path);
            if rel.starts_with("/model/") {
                assert!(
                    !text.contains("crate::stages"),
                    "{rel} imports stages/: model/ must not"
                );
                assert!(!text.contains("crate::spec"), "{rel} imports spec: model/ must not");
            }
            // YAML is read only inside spec/ (stage kinds get a JSON tree).
            // (The needles are split so that this file does not match itself.)
            if text.contains(concat!("serde", "_yaml")) || text.contains(concat!("yaml", "_rust2")) {
                assert!(rel.starts_with("/spec/"), "{rel} uses a YAML crate: only spec/ may");
            }
            // No cycles through the loader: spec/ builds specs and knows nothing of the graph
            // (pipeline.rs runs graph checks); stage kinds are typed by `typed`, not by spec/.
            if rel.starts_with("/spec/") {
                assert!(!text.contains("crate::graph"), "{rel} imports graph: spec/ must not");
                assert!(!text.contains("crate::plan"), "{rel} imports plan: spec/ must not");
            }
            if rel.starts_with("/stages/") {
                assert!(!text.contains("crate::spec"), "{rel} imports spec: stages/ must not");
            }
            // Checkpoints are a folder of files with a manifest: the training loops in model/
            // and the executor both use them, so they depend on neither.
            if rel == "/checkpoint.rs" {
                assert!(
                    !text.contains("crate::"),
                    "{rel} imports the crate: it must stay a leaf"
                );
            }
        }
    }

    /// The module each `crate::…` / `super::…` path in `text` names (the longest prefix that
    /// is a file of `mods`), for a file whose module path is `me` (e.g. `model/encoder`).
    fn uses(me: &str, text: &str, mods: &std::collections::BTreeSet<String>) -> Vec<String> {
        let resolve = |segs: &[String]| -> Option<String> {
            (1..=segs.len())
                .rev()
                .map(|n| segs[..n].join("/"))
                .find(|m| mods.contains(m))
        };
        let parent: Vec<String> = me.split('/').map(str::to_string).collect::<Vec<_>>();
        let parent = &parent[..parent.len() - 1];
        let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect() };
        let mut out = Vec::new();
        for root in ["crate::", "super::"] {
            for (at, _) in text.match_indices(root) {
                let before = text[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let mut base: Vec<String> = if root == "crate::" { Vec::new() } else { parent.to_vec() };
                let mut rest = &text[at + root.len()..];
                loop {
                    if let Some(group) = rest.strip_prefix('{') {
                        let group = &group[..group.find('}').unwrap_or(group.len())];
                        for item in group.split(',') {
                            let mut p = base.clone();
                            p.extend(item.trim().split("::").map(ident).filter(|s| !s.is_empty()));
                            out.extend(resolve(&p));
                        }
                        break;
                    }
                    let seg = ident(rest);
                    if seg.is_empty() {
                        out.extend(resolve(&base));
                        break;
                    }
                    base.push(seg.clone());
                    rest = &rest[seg.len()..];
                    match rest.strip_prefix("::") {
                        Some(r) => rest = r,
                        None => {
                            out.extend(resolve(&base));
                            break;
                        }
                    }
                }
            }
        }
        // A module may use its ancestors (a file's own `mod.rs`); only other branches count.
        out.retain(|m| m != me && !me.starts_with(&format!("{m}/")));
        out
    }

    /// No import cycle among src/ files: the `crate::`/`super::` graph (code only, unit tests
    /// left out) must be acyclic, so every file can be read knowing only what it imports.
    #[test]
    fn no_import_cycle_among_source_files() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let module = |path: &str| -> String {
            let rel = path
                .strip_prefix(src.to_str().unwrap())
                .unwrap_or(path)
                .trim_start_matches('/');
            let rel = rel.strip_suffix(".rs").unwrap_or(rel);
            rel.strip_suffix("/mod").unwrap_or(rel).to_string()
        };
        let mods: std::collections::BTreeSet<String> = files.iter().map(|(p, _)| module(p)).collect();
        let mut graph: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (path, text) in &files {
            let me = module(path);
            if me == "lib" || me == "main" {
                continue;
            }
            let code: String = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or("")
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            graph.insert(me.clone(), uses(&me, &code, &mods));
        }
        // Depth-first search with colours; a grey node reached again closes a cycle.
        fn visit(
            n: &str,
            g: &std::collections::BTreeMap<String, Vec<String>>,
            colour: &mut std::collections::BTreeMap<String, u8>,
            stack: &mut Vec<String>,
        ) {
            colour.insert(n.to_string(), 1);
            stack.push(n.to_string());
            for m in g.get(n).into_iter().flatten() {
                match colour.get(m.as_str()).copied().unwrap_or(0) {
                    0 => visit(m, g, colour, stack),
                    1 => {
                        let from = stack.iter().position(|s| s == m).unwrap_or(0);
                        panic!("import cycle: {} → {m}", stack[from..].join(" → "));
                    }
                    _ => {}
                }
            }
            stack.pop();
            colour.insert(n.to_string(), 2);
        }
        let mut colour = std::collections::BTreeMap::new();
        for n in graph.keys() {
            if !colour.contains_key(n.as_str()) {
                visit(n, &graph, &mut colour, &mut Vec::new());
            }
        }
        // The checker sees real edges (so it would see a cycle): encoder dispatches to the
        // transformer file, whose config the spec enum holds; the file reads only the trait.
        assert!(graph["model/encoder"].contains(&"model/transformer".to_string()));
        assert!(graph["model/encoder_config"].contains(&"model/transformer".to_string()));
        assert!(graph["model/transformer"].contains(&"model/encoder_kind".to_string()));
    }
}
