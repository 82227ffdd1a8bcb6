#!/usr/bin/env bash
# Per-stage overhead of `--executor slurm` and the quickstart end to end, local vs Slurm, on the
# same machine in the same run. Needs a Slurm (e.g. `eval "$(.ci/slurm/up.sh)"`).
#
#   benches/slurm_overhead.sh [ROUNDS]      # default 3 rounds of each
#
# Overhead of one stage = what the driver measured (submit → entry committed and verified)
# minus what the stage itself took on the node (`seconds` in its entry.json). Prints a
# markdown table (BENCHMARKS.md, "Slurm executor").
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
command -v sbatch >/dev/null || { echo "sbatch not found: start a Slurm first (.ci/slurm/up.sh)" >&2; exit 1; }
cargo build --release --quiet
BIN=$PWD/target/release/warmstart
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for r in $(seq 1 "$ROUNDS"); do
  for ex in local slurm; do
    ws=$TMP/$ex-$r
    start=$(date +%s%N)
    "$BIN" --workspace "$ws" run pipelines/quickstart.yaml --json --jobs 2 --executor "$ex" >"$TMP/$ex-$r.json" 2>/dev/null
    end=$(date +%s%N)
    echo "$ex $r $(( (end - start) / 1000000 ))" >>"$TMP/totals"
  done
done
python3 - "$TMP" "$ROUNDS" <<'PY'
import json, statistics as st, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
totals = {"local": [], "slurm": []}
for line in open(f"{tmp}/totals"):
    ex, _, t = line.split()
    totals[ex].append(float(t) / 1000)
over, n = [], 0
for r in range(1, rounds + 1):
    rep = json.load(open(f"{tmp}/slurm-{r}.json"))
    n = len(rep["stages"])
    for s in rep["stages"]:
        entry = json.load(open(f"{tmp}/slurm-{r}/store/{s['key']}/entry.json"))
        over.append(s["seconds"] - entry["seconds"])
f = lambda xs: f"{st.mean(xs):.2f} ± {st.pstdev(xs):.2f}"
print("| measure | local | Slurm |\n|---|---|---|")
print(f"| quickstart end to end, s ({rounds} runs, {n} stages, --jobs 2) | {f(totals['local'])} | {f(totals['slurm'])} |")
print(f"| per-stage overhead, s (driver's time − the stage's own, {len(over)} stages) | — | {st.mean(over):.2f} mean, {max(over):.2f} max |")
PY
