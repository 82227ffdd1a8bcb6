//! The model card `export` writes beside the weights (`README.md` in the export folder): what
//! the model is, what it was trained and pretrained on, how well it did, where it came from,
//! and how to load it without warmstart.
//!
//! Why here and not in the stage: the card reads across stages — the pretrain stage upstream,
//! the evaluate stages downstream, the spec's dataset paths — which a stage never sees (it is a
//! pure function of its own inputs). Every figure comes from a verified store entry; nothing is
//! recomputed, and an evaluate stage that has not run yet is listed as such.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use crate::plan::{Plan, Planned};
use crate::spec::Study;
use crate::stages::Product;
use crate::workspace::Workspace;

/// Renders the card of the model stage `p`, whose verified files are in `files`.
pub fn render(
    study: &Study,
    plan: &Plan,
    ws: &Workspace,
    p: &Planned,
    files: &Path,
    spec_path: &Path,
) -> Result<String> {
    let spec = &study.variants[p.variant];
    let cfg: Value = serde_json::from_slice(&std::fs::read(files.join("model.json"))?)?;
    let rows: Option<Value> = std::fs::read(files.join("train_rows.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let params = &p.fingerprint.params;
    let mut s = String::new();
    let labels: Vec<String> = cfg["labels"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l.as_str().map(|x| format!("`{x}`"))).collect())
        .unwrap_or_default();
    let encoder = &cfg["encoder"];
    let _ = writeln!(s, "# `{}`: a text classifier exported by warmstart\n", p.name);
    let how = crate::stages::find_kind(&p.fingerprint.kind).map_or("", |k| k.summary);
    let _ = writeln!(s, "A `{}` stage: {how}.\n", p.fingerprint.kind);
    let _ = writeln!(s, "## Model\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| labels | {} |", labels.join(", "));
    let _ = writeln!(s, "| encoder | `{}` |", serde_json::to_string(encoder)?);
    let _ = writeln!(s, "| vocabulary | {} tokens (`tokenizer.json`) |", cfg["vocab_size"]);
    let _ = writeln!(s, "| pooling | {} |", cfg["pooling"].as_str().unwrap_or("?"));
    if let Some(layers) = cfg["layers"].as_array() {
        let named: Vec<String> = layers.iter().map(|l| l.to_string()).collect();
        let _ = writeln!(
            s,
            "| layers | {} (0 = token embeddings; each pooled, side by side) |",
            named.join(", ")
        );
    }
    let head = match cfg["hidden"].as_u64() {
        Some(0) | None => "logistic regression".to_string(),
        Some(h) => format!("MLP, {h} hidden units (ReLU)"),
    };
    let _ = writeln!(s, "| head | {head} |");
    if let Some(n) = cfg["ngrams"]["n"].as_u64() {
        let _ = writeln!(
            s,
            "| n-gram features | TF-IDF token 1–{n}-grams hashed into {} slots, beside the pooled vectors |",
            cfg["ngrams"]["buckets"]
        );
    }
    let _ = writeln!(
        s,
        "| input | at most {} tokens (longer texts cut at the {}){} |",
        cfg["shape"]["max_len"],
        if cfg["shape"]["truncating"] == "pre" {
            "start"
        } else {
            "end"
        },
        if cfg["shape"]["add_cls"] == true {
            ", `[CLS]` first"
        } else {
            ""
        }
    );

    let _ = writeln!(s, "\n## Training data\n");
    let dataset_line = |name: &str| -> String {
        match spec.datasets.get(name) {
            Some(d) => format!("`{name}` (`{}`)", d.rel_path),
            None => format!("`{name}`"),
        }
    };
    if let Some(train) = params["train"].as_str() {
        let used = rows.as_ref().and_then(|r| r["rows"].as_array()).map(|a| a.len());
        let full = rows.as_ref().and_then(|r| r["dataset_rows"].as_u64());
        let budget = match params["train_size"].as_u64() {
            Some(n) => format!("label budget {n} (drawn with seed {})", spec.seed),
            None => "every labelled row".to_string(),
        };
        let _ = writeln!(
            s,
            "- labelled rows: {}{} from {}; {budget}",
            used.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            full.map(|n| format!(" of {n}")).unwrap_or_default(),
            dataset_line(train)
        );
    }
    if let Some(d) = params["dev"].as_str() {
        let _ = writeln!(s, "- dev set (model selection / early stopping): {}", dataset_line(d));
    }
    if let Some(u) = params["unlabelled"].as_array() {
        let names: Vec<String> = u.iter().filter_map(|x| x.as_str()).map(dataset_line).collect();
        let _ = writeln!(
            s,
            "- unlabelled texts (self-training, n-gram statistics): {}",
            names.join(", ")
        );
    }
    // The pretrain stage this model's encoder came from, if any.
    let pretrain = p
        .fingerprint
        .inputs
        .values()
        .filter(|i| i.kind == "stage")
        .find_map(|i| {
            plan.all()
                .find(|q| q.key == i.key && q.produces() == Some(Product::Encoder))
        });
    if let Some(q) = pretrain {
        let pp = &q.fingerprint.params;
        let data: Vec<String> = pp["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(dataset_line).collect())
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "- pretraining: stage `{}`, objective `{}`, {} epochs on {}",
            q.name,
            pp["objective"].as_str().unwrap_or("?"),
            pp["epochs"],
            data.join(", ")
        );
    } else {
        let _ = writeln!(s, "- pretraining: none (initialised at random)");
    }

    let _ = writeln!(s, "\n## Evaluation\n");
    let evals: Vec<&Planned> = plan
        .all()
        .filter(|q| q.variant == p.variant && q.produces() == Some(Product::Metrics))
        .filter(|q| q.fingerprint.inputs.values().any(|i| i.key == p.key))
        .collect();
    if evals.is_empty() {
        let _ = writeln!(s, "No evaluate stage of the spec reads this model.");
    } else {
        let _ = writeln!(
            s,
            "| evaluate stage | dataset | rows | accuracy | macro-F1 |\n|---|---|---|---|---|"
        );
        for q in evals {
            let data = q.fingerprint.params["data"].as_str().unwrap_or("?").to_string();
            let m = ws
                .store
                .verified_files(&q.key)
                .ok()
                .and_then(|f| std::fs::read(f.join("metrics.json")).ok())
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            match m {
                Some(m) => {
                    let pct = |v: &Value| {
                        v.as_f64()
                            .map(|x| format!("{:.1} %", 100.0 * x))
                            .unwrap_or_else(|| "?".into())
                    };
                    let _ = writeln!(
                        s,
                        "| `{}` | {} | {} | {} | {} |",
                        q.name,
                        dataset_line(&data),
                        m["rows"],
                        pct(&m["accuracy"]),
                        pct(&m["macro_f1"])
                    );
                }
                None => {
                    let _ = writeln!(s, "| `{}` | {} | not run yet | | |", q.name, dataset_line(&data));
                }
            }
        }
    }

    let _ = writeln!(s, "\n## Provenance\n");
    let _ = writeln!(
        s,
        "- spec: `{}` (pipeline `{}`, seed {})",
        spec_path.display(),
        spec.name,
        spec.seed
    );
    let _ = writeln!(s, "- stage key: `{}`", p.key);
    for (name, i) in &p.fingerprint.inputs {
        let _ = writeln!(s, "- input `{name}` ({}): `{}`", i.kind, i.key);
    }
    let _ = writeln!(s, "- warmstart {}", env!("CARGO_PKG_VERSION"));

    let _ = writeln!(s, "\n## Use\n");
    let _ = writeln!(s, "```sh\nwarmstart predict --model . \"some text\"\n```\n");
    let _ = writeln!(
        s,
        "Without warmstart (Python, `pip install safetensors tokenizers numpy`): `model.json` is the \
         configuration, `model.safetensors` the weights (`encoder.*`, `head.*`), `tokenizer.json` a \
         Hugging Face tokenizer whose ids index `encoder.embedding`."
    );
    let bag_mean = encoder["type"] == "bag" && cfg["pooling"] == "mean" && cfg["ngrams"].is_null();
    let _ = writeln!(s, "\n```python\n{}```", python_snippet(bag_mean));
    if !bag_mean {
        let _ = writeln!(
            s,
            "\nThis model's encoder, pooling or n-gram features are not reproduced by the snippet; \
             use `warmstart predict --model`."
        );
    }
    Ok(s)
}

/// Loading code; for a bag encoder with mean pooling, the whole forward pass.
/// tests/it/python_interop.rs runs it and compares with `warmstart predict`.
fn python_snippet(forward: bool) -> String {
    let mut s = String::from(
        "import json\nimport numpy as np\nfrom safetensors.numpy import load_file\nfrom tokenizers import Tokenizer\n\n\
         cfg = json.load(open(\"model.json\"))\nw = load_file(\"model.safetensors\")\n\
         tok = Tokenizer.from_file(\"tokenizer.json\")\n",
    );
    if forward {
        s.push_str(
            "\ndef predict_proba(text):\n\
             \x20   ids = tok.encode(text, add_special_tokens=False).ids\n\
             \x20   shape = cfg[\"shape\"]\n\
             \x20   room = shape[\"max_len\"] - (1 if shape[\"add_cls\"] else 0)\n\
             \x20   ids = ids[-room:] if shape[\"truncating\"] == \"pre\" else ids[:room]\n\
             \x20   if shape[\"add_cls\"]:\n\
             \x20       ids = [tok.token_to_id(\"[CLS]\")] + ids\n\
             \x20   x = w[\"encoder.embedding\"][ids].mean(axis=0) if ids else np.zeros(cfg[\"encoder\"][\"dim\"])\n\
             \x20   if cfg[\"hidden\"]:\n\
             \x20       x = np.maximum(x @ w[\"head.w1\"] + w[\"head.b1\"].reshape(-1), 0)\n\
             \x20   z = x @ w[\"head.w\"] + w[\"head.b\"].reshape(-1)\n\
             \x20   p = np.exp(z - z.max())\n\
             \x20   return dict(zip(cfg[\"labels\"], p / p.sum()))\n",
        );
    }
    s
}
