//! Loading a pipeline: the spec file read and expanded ([`crate::spec`]), then every variant's
//! references and cycles checked ([`crate::graph`]). Every command loads through here, so a
//! spec that reaches planning has passed both; `spec/` itself knows nothing of the graph, and
//! the graph nothing of YAML.

use std::path::Path;

use crate::spec::{SpecError, SpecErrors, Study};

/// Reads, expands and checks a spec file, applying `--set` overrides.
pub fn load(file: &Path, sets: &[String]) -> Result<Study, SpecErrors> {
    checked(Study::load(file, sets)?)
}

/// As [`load`], from spec text (`file` names it in messages and anchors dataset paths).
pub fn parse(file: &Path, text: &str, sets: &[String]) -> Result<Study, SpecErrors> {
    checked(Study::parse(file, text, sets)?)
}

/// The graph checks of every variant; a problem shared by several variants is reported once.
fn checked(study: Study) -> Result<Study, SpecErrors> {
    let mut errors: Vec<SpecError> = Vec::new();
    for spec in &study.variants {
        if let Err(SpecErrors(es)) = crate::graph::check(spec) {
            for e in es {
                if !errors.contains(&e) {
                    errors.push(e);
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(study)
    } else {
        Err(SpecErrors(errors))
    }
}
