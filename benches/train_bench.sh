#!/usr/bin/env bash
# Training throughput, warmstart vs PyTorch, same machine, same run, same thread count.
#   BLENV=/path/to/venv-with-torch benches/train_bench.sh
# Prints both tools' lines for 1 and 2 threads and the ratio for the models warmstart has.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo bench --bench train_throughput --no-run -q 2>/dev/null
PY=${BLENV:?set BLENV to a venv with torch}/bin/python
for T in 1 2; do
  W=$(RAYON_NUM_THREADS=$T cargo bench -q --bench train_throughput 2>/dev/null)
  P=$("$PY" "$ROOT/../shared/bench/torch_throughput.py" "$T" 2>/dev/null)
  echo "== $T thread(s)"; echo "warmstart:"; echo "$W"; echo "pytorch:"; echo "$P"
  python3 - "$W" "$P" <<'PYX'
import re, sys
w, p = sys.argv[1], sys.argv[2]
def tps(text, name):
    m = re.search(re.escape(name) + r".*?([0-9]+) tokens/s", text)
    return float(m.group(1)) if m else None
for name in ["emb+meanpool+linear cls", "seed LSTM(64) cls"]:
    a, b = tps(w, name), tps(p, name)
    if a and b:
        print(f"ratio warmstart / pytorch, {name}: {a/b:.2f}")
PYX
done
