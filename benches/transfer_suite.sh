#!/usr/bin/env bash
# The transfer suite: pipelines/transfer.yaml, with only its five dataset paths changed, on
# public sets from ../shared/datasets, beside the two cheap peers (TF-IDF+LR, fastText with
# skip-gram vectors) on exactly the same label subsets. Prints a markdown table
# (benches/transfer_table.py) and leaves every raw figure under $OUT.
#
#   BLENV=/path/to/venv benches/transfer_suite.sh [SET ...]     # default: all seven sets
#
# BLENV: a venv with scikit-learn, fasttext (or fasttext-wheel) and numpy (../shared/bench/README.md).
# TEMPLATE (default pipelines/transfer.yaml): a variant of the template, to measure a change.
# OUT (default target/transfer-suite) keeps workspaces, so a rerun recomputes only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SHARED:-$ROOT/../shared/datasets}
OUT=${OUT:-$ROOT/target/transfer-suite}
PY=${BLENV:?set BLENV to a venv with scikit-learn and fasttext}/bin/python
# BIN: a warmstart binary to use instead of building this checkout (e.g. a copy, so that
# rebuilding the checkout during a long suite run does not change the binary half-way).
BIN=${BIN:-}
TEMPLATE=${TEMPLATE:-pipelines/transfer.yaml}
SETS=("$@")
[ ${#SETS[@]} -gt 0 ] || SETS=(mpqa_polarity cr_customer_reviews trec6 sms_spam ag_news_test7600 imdb cn_waimai_10k)
[ -d "$SHARED" ] || { echo "skipped: $SHARED is absent" >&2; exit 0; }
if [ -z "$BIN" ]; then cargo build --release --quiet; BIN=$ROOT/target/release/warmstart; fi
mkdir -p "$OUT"/{data,specs,ws,vec}

# Chinese general text: the other Chinese sets' training texts.
if [ ! -s "$OUT/data/cn_general.txt" ]; then
  "$PY" - "$SHARED" "$OUT/data/cn_general.txt" <<'PY'
import csv, sys
csv.field_size_limit(1 << 30)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for ds in ("cn_chnsenticorp_htl", "cn_online_shopping_10_cats"):
        with open(f"{sys.argv[1]}/{ds}/train.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                t = " ".join(r["text"].split())
                if t:
                    out.write(t + "\n")
PY
fi

for ds in "${SETS[@]}"; do
  src=$SHARED/$ds
  data=$OUT/data/$ds
  mkdir -p "$data"
  if [ -f "$src/dev.csv" ]; then
    for s in train dev test; do ln -sf "$src/$s.csv" "$data/$s.csv"; done
  elif [ ! -s "$data/dev.csv" ]; then
    # No dev split: carve 10 % of train, stratified, seed 42 — the same files for every arm.
    "$PY" - "$src" "$data" <<'PY'
import csv, random, sys, shutil
csv.field_size_limit(1 << 30)
src, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(f"{src}/train.csv", newline="", encoding="utf-8")))
by = {}
for i, r in enumerate(rows):
    by.setdefault(r["label"], []).append(i)
rng = random.Random(42)
dev = set()
for lab in sorted(by):
    idx = by[lab][:]
    rng.shuffle(idx)
    dev.update(idx[: max(1, round(len(idx) * 0.1))])
for name, keep in (("train", lambda i: i not in dev), ("dev", lambda i: i in dev)):
    with open(f"{out}/{name}.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["text", "label"])
        w.writeheader()
        for i, r in enumerate(rows):
            if keep(i):
                w.writerow({"text": r["text"], "label": r["label"]})
shutil.copy(f"{src}/test.csv", f"{out}/test.csv")
PY
  fi
  case $ds in
    cn_*) general=$OUT/data/cn_general.txt; chinese=--chinese ;;
    *)    general=$SHARED/english_unlabelled_corpus; chinese= ;;
  esac
  # The template with its five paths changed, nothing else.
  spec=$OUT/specs/$ds.yaml
  sed -e "s|^  general: { path: [^,}]*|  general: { path: $general |" \
      -e "s|^  domain:  { path: [^,}]*|  domain:  { path: $data/train.csv |" \
      -e "s|^  train:   { path: [^,}]*|  train:   { path: $data/train.csv|" \
      -e "s|^  dev:     { path: [^,}]*|  dev:     { path: $data/dev.csv|" \
      -e "s|^  test:    { path: [^,}]*|  test:    { path: $data/test.csv|" \
      "$TEMPLATE" > "$spec"
  echo "== $ds: warmstart" >&2
  start=$(date +%s)
  "$BIN" --workspace "$OUT/ws/$ds" run "$spec" --json > "$OUT/$ds.warmstart.json"
  echo "$(( $(date +%s) - start ))" > "$OUT/$ds.seconds"
  # The label subsets warmstart drew, for the peers.
  "$PY" - "$OUT/$ds.warmstart.json" "$OUT/ws/$ds" "$OUT/$ds.subsets.new.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
subsets = {}
for s in r["stages"]:
    name, _, variant = s["name"].partition("@")
    if name != "recipe":
        continue
    parts = dict(p.split("=") for p in variant.split(","))
    budget = "all" if parts["train_size"] == "null" else parts["train_size"]
    rows = json.load(open(f"{sys.argv[2]}/store/{s['key']}/files/train_rows.json"))["rows"]
    subsets[f"{budget}/{parts['seed']}"] = rows
json.dump(subsets, open(sys.argv[3], "w"))
PY
  # The peers depend only on the data and the subsets: rerun them only when those changed.
  if cmp -s "$OUT/$ds.subsets.new.json" "$OUT/$ds.subsets.json" && [ "$(grep -c '"budget"' "$OUT/$ds.peers.jsonl" 2>/dev/null)" -ge 18 ]; then
    echo "== $ds: peers unchanged (same subsets)" >&2
  else
    mv "$OUT/$ds.subsets.new.json" "$OUT/$ds.subsets.json"
    echo "== $ds: peers" >&2
    "$PY" benches/transfer_peers.py "$data" "$OUT/$ds.subsets.json" "$OUT/vec/$ds.vec" "$general,$data/train.csv" $chinese > "$OUT/$ds.peers.jsonl.tmp"
    mv "$OUT/$ds.peers.jsonl.tmp" "$OUT/$ds.peers.jsonl"
  fi
  rm -f "$OUT/$ds.subsets.new.json"
done
"$PY" benches/transfer_table.py "$OUT" "${SETS[@]}"
