//! Unit tests of spec reading: spans, override paths, variant expansion.

use super::overrides::parse_set;
use super::*;

#[test]
fn span_index_finds_nested_fields() {
    let text = "name: x\nstages:\n  tok:\n    kind: tokenize\n    fit_on: [a, b]\n";
    let s = SpanIndex::build(text);
    assert_eq!(s.find("name"), Some((1, 1)));
    assert_eq!(s.find("stages.tok.kind"), Some((4, 5)));
    assert_eq!(s.find("stages.tok.fit_on"), Some((5, 5)));
    assert_eq!(s.find("stages.tok.fit_on[1]").map(|p| p.0), Some(5));
    // A field absent from the file falls back to its parent.
    assert_eq!(s.find("stages.tok.vocab_size"), Some((3, 3)));
}

#[test]
fn override_paths_default_to_stages() {
    let mut v: Value = serde_yaml::from_str("name: x\nstages:\n  tok: {kind: tokenize, vocab_size: 10}\n").unwrap();
    let set = |v: &mut Value, s: &str| parse_set(s).and_then(|(p, val)| apply_value(v, &p, val));
    assert_eq!(set(&mut v, "tok.vocab_size=20").unwrap(), "stages.tok.vocab_size");
    assert_eq!(v["stages"]["tok"]["vocab_size"], Value::from(20));
    set(&mut v, "seed=3").unwrap();
    assert_eq!(v["seed"], Value::from(3));
    assert!(set(&mut v, "nope.x=1").unwrap_err().contains("has no `nope`"));
    assert!(set(&mut v, "tok").is_err());
    assert!(set(&mut v, "stages.tok=1").unwrap_err().contains("mapping"));
}

#[test]
fn variants_matrix_and_repeats_expand_with_located_errors() {
    let text = "name: x\nseed: 5\ndatasets:\n  d: { path: d.txt }\nstages:\n  tok: { kind: tokenize, fit_on: [d], vocab_size: 100 }\n  seqs: { kind: pad, from: tok }\nvariants:\n  short: { seqs.max_len: 8 }\nmatrix:\n  tok.vocab_size: [100, 200, 300]\nrepeats: 2\n";
    let st = Study::parse(Path::new("x.yaml"), text, &[]).unwrap();
    assert_eq!(st.variants.len(), 2 * 3 * 2);
    let names: Vec<&str> = st.variants.iter().map(|v| v.variant.as_str()).collect();
    assert_eq!(names[0], "base,vocab_size=100,seed=5");
    assert!(names.contains(&"short,vocab_size=300,seed=6"));
    assert_eq!(st.variants[1].seed, 6);
    let bad = text.replace("seqs.max_len: 8", "seqs.max_len: eight");
    let e = Study::parse(Path::new("x.yaml"), &bad, &[]).unwrap_err().0;
    assert_eq!(e[0].field, "stages.seqs.max_len");
    assert_eq!(e[0].line, Some(9), "points at the variant's line: {e:?}");
    assert_eq!(e[0].from_override.as_deref(), Some("variant `short`"));
    let bad = text.replace("seqs.max_len: 8", "seqz.max_len: 8");
    let e = Study::parse(Path::new("x.yaml"), &bad, &[]).unwrap_err().0;
    assert!(e[0].message.contains("has no `seqz`"), "{e:?}");
    assert_eq!(e[0].line, Some(9));
}
