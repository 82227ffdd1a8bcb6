#!/usr/bin/env bash
# How the transfer recipe was chosen: the recipe's options one at a time, on one set, at 100
# and 500 labels, 3 seeds (BENCHMARKS.md, "How the recipe was chosen"). Every arm is a stage of
# one generated spec, so shared stages (tokenizers, pretraining) run once.
#
#   benches/recipe_ablation.sh SET_DIR [OUT]     # SET_DIR has train.csv, dev.csv, test.csv
#
# e.g. benches/recipe_ablation.sh ../shared/datasets/cr_customer_reviews
#      benches/recipe_ablation.sh target/transfer-suite/data/trec6   (dev carved by the suite)
set -euo pipefail
cd "$(dirname "$0")/.."
SET=$(cd "$1" && pwd)
NAME=$(basename "$SET")
OUT=${2:-target/recipe-ablation}
GENERAL=${GENERAL:-$PWD/../shared/datasets/english_unlabelled_corpus}
mkdir -p "$OUT"
cargo build --release --quiet
spec=$OUT/$NAME.yaml
cat >"$spec" <<EOF
name: ablation-$NAME
seed: 1
datasets:
  general: { path: $GENERAL }
  domain:  { path: $SET/train.csv }
  train:   { path: $SET/train.csv, label: label }
  dev:     { path: $SET/dev.csv,   label: label }
  test:    { path: $SET/test.csv,  label: label }
stages:
  # The template of 2026-12-01: WordPiece 16 k, 3 skip-gram epochs.
  tokp: { kind: tokenize, fit_on: [general, domain], encode: [general, domain, train, dev, test], vocab_size: 16000 }
  seqp: { kind: pad, from: tokp, max_len: 256 }
  vecp: { kind: pretrain, from: tokp, data: [general, domain], objective: skipgram, encoder: { type: bag, dim: 128 }, epochs: 3, seed: 1 }
  wp_vectors_ngrams: { kind: feature-extract, from: seqp, encoder: vecp, train: train, dev: dev, ngrams: 2, unlabelled: [domain] }
  wp_vectors: { kind: feature-extract, from: seqp, encoder: vecp, train: train, dev: dev }
  # Word-level vocabulary, fastText's skip-gram settings (5 epochs, window 5).
  tokw: { kind: tokenize, fit_on: [general, domain], encode: [general, domain, train, dev, test], vocab_size: 50000, algorithm: wordlevel }
  seqw: { kind: pad, from: tokw, max_len: 256 }
  vecw: { kind: pretrain, from: tokw, data: [general, domain], objective: skipgram, encoder: { type: bag, dim: 128 }, epochs: 5, window: 5, seed: 1 }
  w_vectors: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev }
  w_vectors_ngrams: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev, ngrams: 2, unlabelled: [domain] }
  w_vectors_selftrain: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev, unlabelled: [domain], rounds: 2 }
  w_recipe: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev, ngrams: 2, unlabelled: [domain], rounds: 2 }
  w_recipe_cv: { kind: feature-extract, from: seqw, encoder: vecw, train: train, ngrams: 2, unlabelled: [domain], rounds: 2 }
  w_recipe_concat: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev, ngrams: 2, unlabelled: [domain], rounds: 2, pooling: concat }
  w_recipe_max: { kind: feature-extract, from: seqw, encoder: vecw, train: train, dev: dev, ngrams: 2, unlabelled: [domain], rounds: 2, pooling: max }
  w_finetuned: { kind: finetune, from: seqw, train: train, dev: dev, init: vecw, encoder: { type: bag, dim: 128 }, pooling: mean, epochs: 30, patience: 5 }
  w_scratch: { kind: finetune, from: seqw, train: train, dev: dev, init: random, encoder: { type: bag, dim: 128 }, pooling: mean, epochs: 30, patience: 5 }
EOF
for arm in wp_vectors_ngrams wp_vectors w_vectors w_vectors_ngrams w_vectors_selftrain w_recipe w_recipe_cv w_recipe_concat w_recipe_max w_finetuned w_scratch; do
  seq=seqw; case $arm in wp_*) seq=seqp ;; esac
  echo "  e_$arm: { kind: evaluate, model: $arm, from: $seq, data: test }" >>"$spec"
done
printf 'matrix:\n  "*.train_size": [100, 500]\nrepeats: 3\n' >>"$spec"
target/release/warmstart --workspace "$OUT/ws" run "$spec" --json >"$OUT/$NAME.json"
python3 - "$OUT/$NAME.json" "$NAME" <<'PY'
import json, statistics as st, sys, collections
r = json.load(open(sys.argv[1]))
acc = collections.defaultdict(list)
for s in r["stages"]:
    name, _, variant = s["name"].partition("@")
    if name.startswith("e_"):
        size = dict(p.split("=") for p in variant.split(","))["train_size"]
        acc[(name[2:], size)].append(100 * s["metrics"]["accuracy"])
print(f"| arm ({sys.argv[2]}) | 100 labels | 500 labels |\n|---|---|---|")
for arm in dict.fromkeys(a for a, _ in acc):
    cell = lambda n: f"{st.mean(acc[(arm, n)]):.1f} ± {st.pstdev(acc[(arm, n)]):.1f}"
    print(f"| {arm} | {cell('100')} | {cell('500')} |")
PY
