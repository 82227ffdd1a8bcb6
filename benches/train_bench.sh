#!/usr/bin/env bash
# Training throughput, warmstart vs PyTorch vs Keras (TensorFlow CPU): same machine, same run,
# same thread count, same shapes (batch 32 x seq 64, vocab 8000, dim 64, Adam).
#   BLENV=/path/to/venv-with-torch-and-tensorflow benches/train_bench.sh [STEPS]
# Prints every tool's figures for 1 and 2 threads and a markdown table of ratios.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STEPS=${1:-30}
cargo bench --bench train_throughput --no-run -q 2>/dev/null
PY=${BLENV:?set BLENV to a venv with torch and tensorflow-cpu}/bin/python
OUT=$(mktemp -d)
for T in 1 2; do
  RAYON_NUM_THREADS=$T cargo bench -q --bench train_throughput 2>/dev/null > "$OUT/ws_$T.txt"
  "$PY" benches/peer_throughput.py --framework torch --threads "$T" --steps "$STEPS" 2>/dev/null > "$OUT/torch_$T.jsonl"
  "$PY" benches/peer_throughput.py --framework keras --threads "$T" --steps "$STEPS" 2>/dev/null > "$OUT/keras_$T.jsonl"
  echo "== $T thread(s)"; cat "$OUT/ws_$T.txt" "$OUT/torch_$T.jsonl" "$OUT/keras_$T.jsonl"
done
python3 - "$OUT" <<'PYX'
import json, re, sys
out = sys.argv[1]
names = {
    "bag": "emb+meanpool+linear cls",
    "lstm": "seed LSTM(64) cls",
    "cnn": "emb+conv1d(k3)+maxpool cls",
    "transformer": "emb+2L transformer cls",
    "mlm": "MLM masked positions, full",
}
print("\n| model | threads | warmstart | PyTorch | Keras | vs PyTorch | vs Keras |")
print("|---|---|---|---|---|---|---|")
for model, wname in names.items():
    for t in (1, 2):
        w = open(f"{out}/ws_{t}.txt").read()
        m = re.search(re.escape(wname) + r".*?([0-9]+) tokens/s", w)
        peers = {}
        for fw in ("torch", "keras"):
            for line in open(f"{out}/{fw}_{t}.jsonl"):
                r = json.loads(line)
                if r["model"] == model:
                    peers[fw] = r["tokens_per_s"]
        if not m:
            continue
        ws = float(m.group(1))
        cell = lambda v: f"{v:,.0f}" if v else "–"
        ratio = lambda v: f"{ws / v:.2f}×" if v else "–"
        print(f"| {model} | {t} | {ws:,.0f} | {cell(peers.get('torch'))} | {cell(peers.get('keras'))} "
              f"| {ratio(peers.get('torch'))} | {ratio(peers.get('keras'))} |")
PYX
