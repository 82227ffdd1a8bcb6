//! Typing a tree of values into a parameter struct, with the failing field's dotted path and a
//! message that reads as an instruction. Format-neutral on purpose: `spec/` uses it on YAML
//! values, stage kinds (`stages::parse_as`) on the JSON tree that `spec/` hands them, so
//! neither imports the other for it.

/// Deserialises a tree (any serde deserializer: a YAML or JSON value) into `T`, returning the failing field path (prefixed by `at`) and a
/// message on error. Stage kinds use this for their parameter structs.
pub fn typed<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
    value: D,
    at: &str,
) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = String::new();
        for seg in e.path().iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => path.push_str(&format!("[{index}]")),
                Segment::Map { key } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                }
                Segment::Enum { variant } => {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(variant);
                }
                Segment::Unknown => {}
            }
        }
        let mut msg = e.inner().to_string();
        // A deserialiser that buffered a mapping names the field it failed on (`field_error`).
        if let Some((field, rest)) = msg
            .strip_prefix(FIELD_MARK)
            .and_then(|r| r.split_once("`: "))
            .map(|(f, r)| (f.to_string(), r.to_string()))
        {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(&field);
            msg = rest;
        }
        // For `unknown field`, serde reports the path of the enclosing mapping; point at the key.
        let unknown = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next());
        if let Some(field) = unknown.filter(|f| path != *f && !path.ends_with(&format!(".{f}"))) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(field);
        }
        let full = match (at.is_empty(), path.is_empty()) {
            (true, _) => path,
            (false, true) => at.to_string(),
            (false, false) => format!("{at}.{path}"),
        };
        (full, friendly(&msg))
    })
}

const FIELD_MARK: &str = "in field `";

/// An error about `field` of the mapping being deserialised, for deserialisers that read a
/// mapping whole before typing its fields (serde's path tracking then sees only the mapping):
/// [`typed`] moves the field into the error's path, so the spec error still points at its line.
pub fn field_error<E: serde::de::Error>(field: &str, msg: impl std::fmt::Display) -> E {
    E::custom(format!("{FIELD_MARK}{field}`: {msg}"))
}

/// Makes serde's messages read as instructions ("expected one of …").
fn friendly(msg: &str) -> String {
    let m = strip_location(msg);
    if let Some(rest) = m.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        return format!("missing required field `{field}`");
    }
    m.replace("invalid type: ", "wrong type: found ")
        .replace(
            "expected struct RawSpec",
            "expected a mapping with `name`, `datasets` and `stages`",
        )
        .replace(
            "expected struct RawDataset",
            "expected a mapping with `path` (and optionally `format`, `text`, `label`)",
        )
        .replace("found sequence", "found a list")
        .replace("found map,", "found a mapping,")
        .replace("u32", "a non-negative integer")
        .replace("u64", "a non-negative integer")
        .replace("usize", "a non-negative integer")
        .replace("f64", "a number")
        .replace("f32", "a number")
        .replace("expected struct ", "expected a mapping for ")
}

/// A deserializer's message without its " at line N column M" (YAML's appends one where it knows
/// it): callers locate problems themselves, by field path.
pub fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
