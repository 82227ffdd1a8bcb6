//! Bad specs and bad usage: every case exits 2 with a located, helpful message and no panic.

use crate::common::{line_of, Project, SPEC};

/// Runs `args` and checks: exit code 2, no panic, and every `needles` string in stderr.
fn fails_with(p: &Project, args: &[&str], needles: &[&str]) -> String {
    let (code, out, err) = p.run(args);
    assert_eq!(
        code,
        2,
        "`warmstart {}` should exit 2\nstdout:\n{out}\nstderr:\n{err}",
        args.join(" ")
    );
    assert!(!err.contains("panicked"), "panic in `{}`:\n{err}", args.join(" "));
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    for n in needles {
        assert!(
            err.contains(n),
            "`warmstart {}`: stderr should contain {n:?}\nstderr:\n{err}",
            args.join(" ")
        );
    }
    err
}

/// Writes `spec` as `bad.yaml` and checks that `validate`, `status` and `run` all reject it
/// with the field path, the line (as `bad.yaml:LINE:`) and the given phrases.
fn bad_spec(p: &Project, spec: &str, field: &str, line_needle: Option<&str>, phrases: &[&str]) -> String {
    p.write("bad.yaml", spec);
    let mut needles: Vec<String> = vec![format!("field `{field}`")];
    if let Some(l) = line_needle {
        needles.push(format!("bad.yaml:{}:", line_of(spec, l)));
    }
    needles.extend(phrases.iter().map(|s| s.to_string()));
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let mut first = None;
    for cmd in ["validate", "status", "run"] {
        let err = fails_with(p, &[cmd, "bad.yaml"], &needles);
        assert!(err.starts_with("error: "), "{err}");
        first.get_or_insert(err);
    }
    // Nothing ran.
    assert!(!p.ws().join("state").exists(), "a bad spec must not record a run");
    first.unwrap()
}

#[test]
fn validate_accepts_the_good_spec() {
    let p = Project::new();
    let (code, out, err) = p.run(&["validate", "spec.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"), "{out}");
    assert!(out.contains("spec.yaml"), "{out}");
    assert!(out.contains("2 datasets, 2 stages"), "{out}");
    // validate with a good override too
    let (code, out, err) = p.run(&["validate", "spec.yaml", "--set", "tok.vocab_size=500"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok"), "{out}");
}

#[test]
fn dag_prints_the_graph() {
    let p = Project::new();
    let (code, out, err) = p.run(&["dag", "spec.yaml"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("flowchart LR"), "{out}");
    assert!(out.contains("tok --> seqs"), "{out}");
    assert!(out.contains("corpus --> tok") && out.contains("train --> tok"), "{out}");
    let (code, out, err) = p.run(&["dag", "spec.yaml", "--format", "dot"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("digraph"), "{out}");
    assert!(out.contains("\"tok\" -> \"seqs\""), "{out}");
}

#[test]
fn unknown_top_level_key() {
    let p = Project::new();
    let spec = format!("{SPEC}colour: red\n");
    bad_spec(
        &p,
        &spec,
        "colour",
        Some("colour"),
        &["unknown field `colour`", "`stages`"],
    );
}

#[test]
fn unknown_stage_param_is_named() {
    let p = Project::new();
    let spec = SPEC.replace("vocab_size: 200", "vocab_sise: 200");
    bad_spec(
        &p,
        &spec,
        "stages.tok.vocab_sise",
        Some("vocab_sise"),
        &["unknown field `vocab_sise`", "`vocab_size`"],
    );
}

#[test]
fn wrong_type_for_vocab_size() {
    let p = Project::new();
    let spec = SPEC.replace("vocab_size: 200", "vocab_size: \"big\"");
    bad_spec(
        &p,
        &spec,
        "stages.tok.vocab_size",
        Some("vocab_size"),
        &["big", "expected a non-negative integer"],
    );
}

#[test]
fn enum_value_not_allowed_lists_allowed_values() {
    let p = Project::new();
    let spec = SPEC.replace("algorithm: wordpiece", "algorithm: sentencepiece");
    bad_spec(
        &p,
        &spec,
        "stages.tok.algorithm",
        Some("sentencepiece"),
        &["sentencepiece", "wordpiece", "bpe", "unigram"],
    );
}

#[test]
fn pad_enum_value_not_allowed() {
    let p = Project::new();
    let spec = SPEC.replace("max_len: 16", "max_len: 16\n    padding: middle");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.padding",
        Some("middle"),
        &["middle", "pre", "post"],
    );
}

#[test]
fn unknown_stage_kind() {
    let p = Project::new();
    let spec = SPEC.replace("kind: tokenize", "kind: tokenise");
    bad_spec(
        &p,
        &spec,
        "stages.tok.kind",
        Some("tokenise"),
        &["unknown stage kind `tokenise`", "expected one of", "tokenize", "pad"],
    );
}

#[test]
fn missing_kind() {
    let p = Project::new();
    let spec = SPEC.replace("    kind: pad\n", "");
    bad_spec(
        &p,
        &spec,
        "stages.seqs",
        Some("seqs:"),
        &["missing `kind`", "tokenize", "pad"],
    );
}

#[test]
fn unknown_dataset_in_fit_on() {
    let p = Project::new();
    let spec = SPEC.replace("fit_on: [corpus, train]", "fit_on: [corpus, trian]");
    bad_spec(
        &p,
        &spec,
        "stages.tok.fit_on[1]",
        Some("trian"),
        &["unknown dataset `trian`", "`corpus`", "`train`"],
    );
}

#[test]
fn unknown_stage_in_pad_from() {
    let p = Project::new();
    let spec = SPEC.replace("from: tok", "from: tokk");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.from",
        Some("from: tokk"),
        &["unknown stage `tokk`", "`tok`"],
    );
}

#[test]
fn pad_from_a_dataset() {
    let p = Project::new();
    let spec = SPEC.replace("from: tok", "from: corpus");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.from",
        Some("from: corpus"),
        &["`corpus` is a dataset", "tokenize"],
    );
}

#[test]
fn pad_from_itself_is_rejected() {
    // The nearest thing to a cycle that the current stage kinds allow: a self-reference, which
    // the kind check catches before the cycle check.
    let p = Project::new();
    let spec = SPEC.replace("from: tok", "from: seqs");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.from",
        Some("from: seqs"),
        &["`seqs` is a `pad` stage", "tokenize"],
    );
}

#[test]
fn fit_on_a_stage_instead_of_a_dataset() {
    let p = Project::new();
    let spec = format!("{SPEC}  tok2:\n    kind: tokenize\n    fit_on: [seqs]\n    vocab_size: 100\n");
    bad_spec(
        &p,
        &spec,
        "stages.tok2.fit_on[0]",
        Some("fit_on: [seqs]"),
        &["`seqs` is a stage", "dataset is expected"],
    );
}

/// The current stage kinds cannot form a cycle that passes the kind checks (tokenize reads only
/// datasets, pad only tokenize, and every other kind reads only pad/pretrain/model stages, none
/// of which feed tokenize or pad). So the cycle check is exercised through the library, with a
/// stage type that is allowed to read `pad` stages.
#[test]
fn cycle_is_rejected_library_level() {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use warmstart::spec::{SpanIndex, Spec, StageSpec};
    use warmstart::stages::{find_kind, InputRef, Outcome, Stage, StageCtx, Want};

    #[derive(Debug)]
    struct Reads(String);
    impl Stage for Reads {
        fn inputs(&self) -> Vec<InputRef> {
            vec![InputRef {
                field: "from".into(),
                name: self.0.clone(),
                want: Want::Stage(&[warmstart::stages::Product::Padded]),
            }]
        }
        fn params(&self) -> serde_json::Value {
            serde_json::json!({ "from": self.0 })
        }
        fn run(&self, _: &StageCtx) -> anyhow::Result<Outcome> {
            anyhow::bail!("never runs")
        }
    }
    let pad = find_kind("pad").expect("pad kind");
    let mk = |name: &str, from: &str| StageSpec {
        name: name.into(),
        kind: pad,
        stage: Box::new(Reads(from.into())),
    };
    let spec = Spec {
        file: PathBuf::from("cycle.yaml"),
        name: "cycle".into(),
        seed: 0,
        datasets: BTreeMap::new(),
        stages: vec![mk("a", "c"), mk("b", "a"), mk("c", "b"), mk("d", "a")],
        spans: SpanIndex::default(),
        overrides: Vec::new(),
        variant: String::new(),
        executor: Default::default(),
    };
    let err = warmstart::graph::check(&spec)
        .expect_err("a cycle must be rejected")
        .to_string();
    assert!(err.contains("cycle"), "{err}");
    assert!(err.contains("a → c → b → a"), "{err}");
    assert!(err.contains("field `stages.a.from`"), "{err}");
    assert!(!err.contains("`d`"), "d is downstream of the cycle, not in it: {err}");
    assert!(warmstart::graph::Dag::build(&spec).is_err());

    // A self-loop is a cycle too.
    let spec = Spec {
        stages: vec![mk("a", "a")],
        ..spec
    };
    let err = warmstart::graph::check(&spec)
        .expect_err("a self-loop must be rejected")
        .to_string();
    assert!(err.contains("a → a"), "{err}");
}

#[test]
fn missing_dataset_file_names_the_path() {
    let p = Project::new();
    let spec = SPEC.replace("path: corpus.txt", "path: data/missing.txt");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus.path",
        Some("missing.txt"),
        &["missing.txt", "does not exist"],
    );
}

#[test]
fn missing_text_column_lists_the_columns_found() {
    let p = Project::new();
    let spec = SPEC.replace("label: label }", "label: label, text: body }");
    bad_spec(
        &p,
        &spec,
        "datasets.train.text",
        Some("text: body"),
        &["column `body` not found", "`text`", "`label`"],
    );
}

#[test]
fn missing_label_column_lists_the_columns_found() {
    let p = Project::new();
    let spec = SPEC.replace("label: label }", "label: sentiment }");
    bad_spec(
        &p,
        &spec,
        "datasets.train.label",
        Some("sentiment"),
        &["column `sentiment` not found", "`text`", "`label`"],
    );
}

#[test]
fn set_without_equals() {
    let p = Project::new();
    for cmd in ["run", "validate", "status"] {
        fails_with(
            &p,
            &[cmd, "spec.yaml", "--set", "tok.vocab_size"],
            &["--set tok.vocab_size", "expected `path.to.param=value`"],
        );
    }
}

#[test]
fn set_on_unknown_stage() {
    let p = Project::new();
    fails_with(
        &p,
        &["run", "spec.yaml", "--set", "nope.max_len=3"],
        &["--set nope.max_len=3", "has no `nope`", "tok", "seqs"],
    );
}

#[test]
fn set_unknown_param_of_a_stage() {
    let p = Project::new();
    let spec = SPEC;
    fails_with(
        &p,
        &["run", "spec.yaml", "--set", "seqs.max_lenn=3"],
        &[
            "field `stages.seqs.max_lenn`",
            &format!("spec.yaml:{}:", line_of(spec, "seqs:")),
            "unknown field `max_lenn`",
            "--set seqs.max_lenn=3",
        ],
    );
}

#[test]
fn set_wrong_type() {
    let p = Project::new();
    fails_with(
        &p,
        &["run", "spec.yaml", "--set", "tok.vocab_size=abc"],
        &[
            "field `stages.tok.vocab_size`",
            &format!("spec.yaml:{}:", line_of(SPEC, "vocab_size")),
            "abc",
            "expected a non-negative integer",
            "--set tok.vocab_size=abc",
        ],
    );
}

#[test]
fn set_out_of_range_names_the_override() {
    let p = Project::new();
    fails_with(
        &p,
        &["validate", "spec.yaml", "--set", "seqs.max_len=0"],
        &["field `stages.seqs.max_len`", "out of range", "--set seqs.max_len=0"],
    );
}

#[test]
fn vocab_size_too_small() {
    let p = Project::new();
    let spec = SPEC.replace("vocab_size: 200", "vocab_size: 10");
    bad_spec(
        &p,
        &spec,
        "stages.tok.vocab_size",
        Some("vocab_size"),
        &["vocab_size 10 is out of range", "32..=1000000"],
    );
}

#[test]
fn vocab_size_too_large() {
    let p = Project::new();
    let spec = SPEC.replace("vocab_size: 200", "vocab_size: 2000000");
    bad_spec(
        &p,
        &spec,
        "stages.tok.vocab_size",
        Some("vocab_size"),
        &["32..=1000000"],
    );
}

#[test]
fn max_len_zero() {
    let p = Project::new();
    let spec = SPEC.replace("max_len: 16", "max_len: 0");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.max_len",
        Some("max_len"),
        &["max_len 0 is out of range", "1..=8192"],
    );
}

#[test]
fn max_len_one_with_cls() {
    let p = Project::new();
    let spec = SPEC.replace("max_len: 16", "max_len: 1\n    add_cls: true");
    bad_spec(&p, &spec, "stages.seqs.max_len", Some("max_len"), &["2..=8192"]);
}

#[test]
fn negative_max_len() {
    let p = Project::new();
    let spec = SPEC.replace("max_len: 16", "max_len: -4");
    bad_spec(
        &p,
        &spec,
        "stages.seqs.max_len",
        Some("max_len"),
        &["-4", "expected a non-negative integer"],
    );
}

#[test]
fn invalid_yaml_tab_indent() {
    let p = Project::new();
    let spec = SPEC.replace("    max_len: 16", "\tmax_len: 16");
    p.write("bad.yaml", &spec);
    let line = line_of(&spec, "\tmax_len");
    for cmd in ["validate", "run", "dag"] {
        fails_with(&p, &[cmd, "bad.yaml"], &["invalid YAML", &format!("bad.yaml:{line}:")]);
    }
}

#[test]
fn invalid_yaml_bad_indentation() {
    let p = Project::new();
    let spec = SPEC.replace("    from: tok", "   from: tok");
    p.write("bad.yaml", &spec);
    let err = fails_with(&p, &["validate", "bad.yaml"], &["invalid YAML"]);
    // The location is the offending line or the one after it (where the parser notices).
    let line = line_of(&spec, "   from: tok");
    assert!(
        err.contains(&format!("bad.yaml:{line}:")) || err.contains(&format!("bad.yaml:{}:", line + 1)),
        "{err}"
    );
}

#[test]
fn invalid_yaml_unclosed_flow_sequence() {
    let p = Project::new();
    let spec = SPEC.replace("fit_on: [corpus, train]", "fit_on: [corpus, train");
    p.write("bad.yaml", &spec);
    let err = fails_with(&p, &["validate", "bad.yaml"], &["invalid YAML", "bad.yaml:"]);
    assert!(
        err.lines()
            .next()
            .unwrap()
            .split(':')
            .nth(2)
            .is_some_and(|l| l.trim().parse::<usize>().is_ok()),
        "the error should carry a line number: {err}"
    );
}

#[test]
fn empty_spec_file() {
    let p = Project::new();
    for text in ["", "\n\n", "# only a comment\n"] {
        p.write("empty.yaml", text);
        for cmd in ["validate", "run", "status", "dag"] {
            fails_with(
                &p,
                &[cmd, "empty.yaml"],
                &["empty.yaml", "the spec is empty", "`stages`"],
            );
        }
    }
}

#[test]
fn spec_that_is_not_a_mapping_is_rejected() {
    let p = Project::new();
    p.write("list.yaml", "- a\n- b\n");
    fails_with(&p, &["validate", "list.yaml"], &["list.yaml", "expected"]);
}

#[test]
fn missing_name_field() {
    let p = Project::new();
    let spec = SPEC.replace("name: t1\n", "");
    p.write("bad.yaml", &spec);
    fails_with(&p, &["validate", "bad.yaml"], &["missing required field `name`"]);
}

#[test]
fn no_stages() {
    let p = Project::new();
    let spec = "name: t\ndatasets:\n  corpus: { path: corpus.txt }\nstages: {}\n";
    p.write("bad.yaml", spec);
    fails_with(
        &p,
        &["validate", "bad.yaml"],
        &[
            "field `stages`",
            &format!("bad.yaml:{}:", line_of(spec, "stages")),
            "no stages",
        ],
    );
}

#[test]
fn duplicate_dataset_in_fit_on() {
    let p = Project::new();
    let spec = SPEC.replace("fit_on: [corpus, train]", "fit_on: [corpus, corpus]");
    bad_spec(
        &p,
        &spec,
        "stages.tok.fit_on",
        Some("fit_on"),
        &["dataset `corpus` is listed twice"],
    );
}

#[test]
fn empty_fit_on() {
    let p = Project::new();
    let spec = SPEC.replace("fit_on: [corpus, train]", "fit_on: []");
    bad_spec(
        &p,
        &spec,
        "stages.tok.fit_on",
        Some("fit_on"),
        &["at least one dataset"],
    );
}

#[test]
fn stage_named_like_a_dataset() {
    let p = Project::new();
    let spec = SPEC.replace("  seqs:\n", "  corpus:\n");
    bad_spec(
        &p,
        &spec,
        "stages.corpus",
        Some("  corpus:\n"),
        &["same name as a dataset"],
    );
}

#[test]
fn invalid_stage_name() {
    let p = Project::new();
    let spec = SPEC.replace("  seqs:\n", "  1seqs:\n");
    bad_spec(
        &p,
        &spec,
        "stages.1seqs",
        Some("1seqs"),
        &["invalid name `1seqs`", "letter"],
    );
}

#[test]
fn stage_that_is_not_a_mapping() {
    let p = Project::new();
    let spec = format!("{SPEC}  extra: 3\n");
    bad_spec(
        &p,
        &spec,
        "stages.extra",
        Some("extra"),
        &["expected a mapping", "`kind`"],
    );
}

#[test]
fn dataset_without_extension_or_format() {
    let p = Project::new();
    p.write("corpus", &crate::common::gen_corpus(20, 9));
    let spec = SPEC.replace("path: corpus.txt", "path: corpus");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus.path",
        Some("path: corpus }"),
        &["cannot tell the format of `corpus`", "format:", "csv", "txt"],
    );
    // With `format:` it is fine.
    let fixed = SPEC.replace("path: corpus.txt", "path: corpus, format: txt");
    p.write("fixed.yaml", &fixed);
    let (code, out, err) = p.run(&["validate", "fixed.yaml"]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn unknown_dataset_format() {
    let p = Project::new();
    let spec = SPEC.replace("path: corpus.txt", "path: corpus.txt, format: xlsx");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus.format",
        Some("xlsx"),
        &["parquet", "csv", "jsonl"],
    );
}

#[test]
fn txt_dataset_with_label() {
    let p = Project::new();
    let spec = SPEC.replace("path: corpus.txt", "path: corpus.txt, label: label");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus.label",
        Some("corpus:"),
        &["`txt` dataset", "no labels"],
    );
}

#[test]
fn unknown_dataset_field() {
    let p = Project::new();
    let spec = SPEC.replace("path: corpus.txt", "path: corpus.txt, lable: x");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus.lable",
        Some("lable"),
        &["unknown field `lable`", "`label`"],
    );
}

#[test]
fn several_errors_are_all_reported() {
    let p = Project::new();
    let spec = SPEC
        .replace("vocab_size: 200", "vocab_size: 10")
        .replace("max_len: 16", "max_len: 0");
    p.write("bad.yaml", &spec);
    let err = fails_with(
        &p,
        &["validate", "bad.yaml"],
        &["field `stages.tok.vocab_size`", "field `stages.seqs.max_len`"],
    );
    assert_eq!(err.lines().filter(|l| l.starts_with("error: ")).count(), 2, "{err}");
}

#[test]
fn jobs_zero() {
    let p = Project::new();
    fails_with(&p, &["run", "spec.yaml", "--jobs", "0"], &["--jobs", "at least 1"]);
    assert!(!p.ws().join("state").exists(), "nothing may run with --jobs 0");
}

#[test]
fn jobs_not_a_number() {
    let p = Project::new();
    fails_with(&p, &["run", "spec.yaml", "--jobs", "many"], &["--jobs", "many"]);
}

#[test]
fn nonexistent_spec_file() {
    let p = Project::new();
    for cmd in ["run", "status", "validate", "dag"] {
        fails_with(&p, &[cmd, "nope.yaml"], &["nope.yaml", "cannot read spec file"]);
    }
}

#[test]
fn spec_is_a_folder() {
    let p = Project::new();
    std::fs::create_dir(p.path().join("dir.yaml")).unwrap();
    fails_with(&p, &["validate", "dir.yaml"], &["dir.yaml", "cannot read spec file"]);
}

#[test]
fn bad_usage_is_exit_2() {
    let p = Project::new();
    fails_with(&p, &["frobnicate"], &["frobnicate"]);
    fails_with(&p, &["run"], &["SPEC"]);
    fails_with(&p, &["dag", "spec.yaml", "--format", "png"], &["png", "mermaid", "dot"]);
    fails_with(&p, &["run", "spec.yaml", "--no-such-flag"], &["--no-such-flag"]);
}

#[test]
fn help_and_version_exit_0() {
    let p = Project::new();
    let (code, out, _) = p.run(&["--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("run") && out.contains("status") && out.contains("validate"),
        "{out}"
    );
    let (code, out, _) = p.run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.contains("warmstart"), "{out}");
}

/// A spec or a dataset entry of the wrong shape must not get serde's
/// internal message, naming the Rust type (`expected struct RawSpec` / `expected struct
/// RawDataset`) instead of saying that a mapping was expected.
#[test]
fn wrong_shape_messages_say_a_mapping_is_expected() {
    let p = Project::new();
    p.write("list.yaml", "- a\n- b\n");
    let err = fails_with(&p, &["validate", "list.yaml"], &["list.yaml"]);
    assert!(!err.contains("RawSpec"), "internal type name in message: {err}");
    assert!(err.contains("mapping"), "should say a mapping is expected: {err}");

    let spec = SPEC.replace("corpus: { path: corpus.txt }", "corpus: corpus.txt");
    p.write("bad.yaml", &spec);
    let err = fails_with(
        &p,
        &["validate", "bad.yaml"],
        &[
            "field `datasets.corpus`",
            &format!("bad.yaml:{}:", line_of(&spec, "corpus: corpus.txt")),
        ],
    );
    assert!(!err.contains("RawDataset"), "internal type name in message: {err}");
    assert!(
        err.contains("mapping"),
        "should say a mapping with `path` is expected: {err}"
    );
}

#[test]
fn dataset_given_as_a_plain_string_is_rejected() {
    let p = Project::new();
    let spec = SPEC.replace("corpus: { path: corpus.txt }", "corpus: corpus.txt");
    bad_spec(
        &p,
        &spec,
        "datasets.corpus",
        Some("corpus: corpus.txt"),
        &["wrong type", "corpus.txt"],
    );
}

#[test]
fn pad_without_from() {
    let p = Project::new();
    let spec = SPEC.replace("    from: tok\n", "");
    bad_spec(
        &p,
        &spec,
        "stages.seqs",
        Some("seqs:"),
        &["missing required field `from`"],
    );
}

#[test]
fn duplicate_stage_key_is_invalid_yaml() {
    let p = Project::new();
    let spec = format!("{SPEC}  seqs:\n    kind: pad\n    from: tok\n");
    p.write("bad.yaml", &spec);
    fails_with(&p, &["validate", "bad.yaml"], &["invalid YAML", "duplicate", "seqs"]);
}

/// A spec with one pretrain and one finetune stage after `seqs`, with `encoder` and
/// `extra` lines spliced into them.
fn with_model(pre_encoder: &str, pre_extra: &str, ft_encoder: &str) -> String {
    format!(
        "{SPEC}  pre:\n    kind: pretrain\n    from: seqs\n    data: [corpus]\n{pre_extra}    encoder:\n{pre_encoder}  ft:\n    kind: finetune\n    from: seqs\n    train: train\n    encoder:\n{ft_encoder}"
    )
}

#[test]
fn transformer_dim_must_divide_into_heads() {
    let p = Project::new();
    let spec = with_model(
        "      type: bag\n",
        "",
        "      type: transformer\n      dim: 30\n      heads: 4\n",
    );
    bad_spec(
        &p,
        &spec,
        "stages.ft.encoder.heads",
        Some("heads: 4"),
        &["dim 30 is not divisible by heads 4"],
    );
}

#[test]
fn encoder_options_belong_to_their_type() {
    let p = Project::new();
    let spec = with_model("      type: bag\n", "", "      type: lstm\n      heads: 2\n");
    bad_spec(
        &p,
        &spec,
        "stages.ft.encoder.heads",
        Some("heads: 2"),
        &["`heads` applies to transformer encoders only, not lstm"],
    );
    let spec = with_model("      type: bag\n", "", "      type: cnn\n      kernel: 40\n");
    bad_spec(
        &p,
        &spec,
        "stages.ft.encoder.kernel",
        Some("kernel: 40"),
        &["kernel 40 is out of range: expected 1..=15"],
    );
}

#[test]
fn objectives_need_a_fitting_encoder() {
    let p = Project::new();
    let spec = with_model("      type: lstm\n", "    objective: mlm\n", "      type: lstm\n");
    bad_spec(
        &p,
        &spec,
        "stages.pre.objective",
        Some("objective: mlm"),
        &["objective `mlm` needs an encoder of type transformer, not lstm"],
    );
    let spec = with_model("      type: cnn\n", "    objective: lm\n", "      type: cnn\n");
    bad_spec(
        &p,
        &spec,
        "stages.pre.objective",
        Some("objective: lm"),
        &["objective `lm` needs an encoder of type lstm or transformer, not cnn"],
    );
    let spec = with_model(
        "      type: bag\n",
        "    objective: skipgram\n    candidates: 10\n",
        "      type: bag\n",
    );
    bad_spec(
        &p,
        &spec,
        "stages.pre.candidates",
        Some("candidates: 10"),
        &["`candidates` applies to the lm and mlm objectives only"],
    );
}

#[test]
fn layer_rate_decay_below_one() {
    let p = Project::new();
    let spec = with_model("      type: bag\n", "", "      type: lstm\n").replace(
        "    train: train\n    encoder:",
        "    train: train\n    layer_lr_decay: 0.5\n    encoder:",
    );
    bad_spec(
        &p,
        &spec,
        "stages.ft.layer_lr_decay",
        Some("layer_lr_decay"),
        &["layer_lr_decay must be ≥ 1"],
    );
}

/// Every accepted parameter has an effect: one that would be silently ignored (and yet change
/// the cache key) is rejected, naming the field, its line and what it needs.
#[test]
fn parameters_without_effect_are_rejected() {
    let p = Project::new();
    let clf = |extra: &str| {
        format!(
            "{SPEC}  clf: {{ kind: finetune, from: seqs, train: train, encoder: {{ type: bag, dim: 8 }}, {extra} }}\n"
        )
    };
    bad_spec(
        &p,
        &clf("weight_decay: 0.01"),
        "stages.clf.weight_decay",
        Some("weight_decay"),
        &["optimizer: adamw"],
    );
    bad_spec(
        &p,
        &clf("patience: 4"),
        "stages.clf.patience",
        Some("patience"),
        &["`dev`"],
    );
    let fx = format!(
        "{SPEC}  emb: {{ kind: pretrain, from: tok, data: [corpus] }}\n  fx: {{ kind: feature-extract, from: seqs, encoder: emb, train: train, hidden: 32 }}\n"
    );
    bad_spec(&p, &fx, "stages.fx.hidden", Some("hidden: 32"), &["head: mlp"]);
    // The logistic head is solved exactly: SGD settings would do nothing.
    let fx_epochs = fx.replace("hidden: 32", "epochs: 5");
    bad_spec(
        &p,
        &fx_epochs,
        "stages.fx.epochs",
        Some("epochs: 5"),
        &["head: mlp", "L-BFGS"],
    );
    let fx_c = fx.replace("hidden: 32", "head: mlp, c: 2.0");
    bad_spec(&p, &fx_c, "stages.fx.c", Some("c: 2.0"), &["SGD"]);
    // `layers` names one or more distinct layers.
    for bad in ["layers: []", "layers: [0, 0]"] {
        let fx_layers = fx.replace("hidden: 32", bad);
        bad_spec(&p, &fx_layers, "stages.fx.layers", Some(bad), &["distinct layers"]);
    }
    let lm = format!(
        "{SPEC}  emb: {{ kind: pretrain, from: seqs, data: [corpus], objective: lm, encoder: {{ type: lstm, dim: 8 }}, window: 3 }}\n"
    );
    bad_spec(&p, &lm, "stages.emb.window", Some("window: 3"), &["cbow and skipgram"]);
    let uni = SPEC.replace("algorithm: wordpiece", "algorithm: unigram\n    min_frequency: 3");
    bad_spec(
        &p,
        &uni,
        "stages.tok.min_frequency",
        Some("min_frequency"),
        &["unigram"],
    );
}

/// `warmstart schema` describes what the parser accepts: every shipped pipeline validates
/// against it with an independent validator (Python's `jsonschema`), and a misspelt field, a
/// stage kind that does not exist and a value of the wrong type do not.
#[test]
fn every_pipeline_validates_against_the_schema_with_an_independent_validator() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        crate::common::skip(
            "every_pipeline_validates_against_the_schema_with_an_independent_validator",
            "python3 with the jsonschema package is not available",
        );
        return;
    }
    let p = Project::empty();
    let (code, schema, err) = p.run(&["schema"]);
    assert_eq!(code, 0, "{err}");
    p.write("schema.json", &schema);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs: Vec<(String, serde_json::Value, bool)> = Vec::new();
    for e in std::fs::read_dir(root.join("pipelines")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap_or_default();
            assert!(
                first.starts_with("# yaml-language-server: $schema="),
                "{} should start with the schema line for editors, found {first:?}",
                path.display()
            );
            let v: serde_json::Value = serde_yaml::from_str(&text).unwrap();
            docs.push((path.display().to_string(), v, true));
        }
    }
    assert!(docs.len() >= 5, "pipelines/ should hold the shipped pipelines");
    let quick = docs
        .iter()
        .find(|d| d.0.ends_with("quickstart.yaml"))
        .unwrap()
        .1
        .clone();
    let first_stage = quick["stages"].as_object().unwrap().keys().next().unwrap().clone();
    let mut typo = quick.clone();
    typo["stages"][&first_stage]["vocab_sise"] = 100.into();
    let mut kind = quick.clone();
    kind["stages"][&first_stage]["kind"] = "tokenise".into();
    let mut ty = quick.clone();
    ty["repeats"] = "three".into();
    for (name, v) in [("typo", typo), ("kind", kind), ("type", ty)] {
        docs.push((name.into(), v, false));
    }
    p.write("docs.json", &serde_json::to_string(&docs).unwrap());
    let script = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
bad = []
for name, doc, valid in json.load(open(sys.argv[2])):
    errs = [e.message for e in v.iter_errors(doc)]
    if bool(errs) == valid:
        bad.append(f"{name}: expected {'valid' if valid else 'invalid'}, errors: {errs[:3]}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(p.path().join("schema.json"))
        .arg(p.path().join("docs.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
