//! `--set path=value` overrides: reading one, and placing a value at a dotted path of the tree
//! (relative to `stages` unless the path starts with a top-level key).

use serde_yaml::Value;

use crate::typed::strip_location;

pub(super) const TOP_LEVEL_KEYS: [&str; 4] = ["name", "seed", "datasets", "stages"];

/// Keys that describe variants; they are read (and removed) before the spec is typed.
pub(super) const VARIANT_KEYS: [&str; 3] = ["variants", "matrix", "repeats"];

/// Reads one `--set path=value`. The value is read as YAML, so numbers, booleans and `[a, b]`
/// lists get their natural types.
pub(super) fn parse_set(set: &str) -> Result<(String, Value), String> {
    let Some((path, raw)) = set.split_once('=') else {
        return Err("expected `path.to.param=value`".into());
    };
    let value: Value = serde_yaml::from_str(raw)
        .map_err(|e| format!("cannot read value `{raw}`: {}", strip_location(&e.to_string())))?;
    Ok((path.trim().to_string(), value))
}

/// Puts `value` at a dotted `path` of the tree and returns the normalised path. A path whose
/// first segment is not a top-level key is taken relative to `stages`. Only existing mappings
/// are entered, and a mapping is never replaced wholesale, so a typo cannot silently add a
/// stage.
pub(super) fn apply_value(root: &mut Value, path: &str, value: Value) -> Result<String, String> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Err(format!("`{path}` is not a dotted path like `stage.param`"));
    }
    let mut segs: Vec<&str> = path.split('.').collect();
    if !TOP_LEVEL_KEYS.contains(&segs[0]) {
        segs.insert(0, "stages");
    }
    let full = segs.join(".");
    let mut node = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let Value::Mapping(map) = node else {
            return Err(format!(
                "`{}` is not a mapping, so it has no field `{seg}`",
                segs[..i].join(".")
            ));
        };
        if last {
            if let Some(Value::Mapping(_)) = map.get(*seg) {
                return Err(format!(
                    "`{full}` is a mapping; an override replaces single values, name a field inside it"
                ));
            }
            map.insert(Value::String((*seg).to_string()), value);
            break;
        }
        if !map.contains_key(*seg) {
            let here = if i == 0 {
                "the spec".to_string()
            } else {
                format!("`{}`", segs[..i].join("."))
            };
            let known: Vec<String> = map.keys().filter_map(|k| k.as_str().map(str::to_string)).collect();
            return Err(format!("{here} has no `{seg}` (found: {})", known.join(", ")));
        }
        node = map.get_mut(*seg).expect("checked above");
    }
    Ok(full)
}
