//! `warmstart compare`: metric differences between two groups of variants.

use super::*;

pub(super) fn compare(workspace: &Path, spec_path: &Path, a: &str, b: &str, sets: &[String]) -> Result<i32, Failure> {
    let study = crate::pipeline::load(spec_path, sets)?;
    let names: Vec<&str> = study.variants.iter().map(|v| v.variant.as_str()).collect();
    let (ga, gb) = (crate::compare::select(a, &names), crate::compare::select(b, &names));
    for (sel, g) in [(a, &ga), (b, &gb)] {
        if g.is_empty() {
            return Err(Failure::Usage(format!(
                "`{sel}` selects no variant; give `key=value` parts of a name (e.g. `train_size=100`) or a whole name; variants: {}",
                names.join(" | ")
            )));
        }
    }
    let ws = Workspace::open(workspace)?;
    let plan = plan::plan(&study, &ws)?;
    let rows = crate::report::rows(&study, &plan, &ws);
    print!("{}", crate::compare::render(&rows, (a, &ga), (b, &gb)));
    Ok(0)
}
