#!/usr/bin/env bash
# No-op rerun against artefact bytes: a study whose store holds several hundred MB
# (benches/specs/noop_study.yaml), computed once, then rerun with nothing to do.
#
#   benches/noop_bench.sh            # REPS (default 10) no-op runs; prints a markdown table
#
# Rows: the artefact bytes the study's entries hold; the median wall clock of a no-op
# `warmstart run` (every entry verified through its stat stamps); `warmstart verify`, which
# re-hashes every byte — what each no-op rerun cost before the stamps.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared
REPS=${REPS:-10}
cd "$ROOT"
[ -d "$SHARED/datasets/imdb" ] || { echo "skipped: $SHARED/datasets/imdb is absent" >&2; exit 0; }
cargo build --release -q
BIN=$ROOT/target/release/warmstart
if [ -z "${WS:-}" ]; then WS=$(mktemp -d -t ws_noop.XXXXXX); trap 'rm -rf "$WS"' EXIT; fi
SPEC=benches/specs/noop_study.yaml
"$BIN" --workspace "$WS" run "$SPEC" >/dev/null 2>&1
python3 - "$REPS" "$BIN" "$WS" "$SPEC" <<'PY'
import json, os, statistics, subprocess, sys, time
reps, bin_, ws, spec = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = json.loads(subprocess.run([bin_, "--workspace", ws, "run", spec, "--json"], check=True, capture_output=True).stdout)
keys = {s["key"] for s in r["stages"]}
assert all(s["status"] == "cached" for s in r["stages"]), "not a no-op"
size = 0
for k in keys:
    for d, _, fs in os.walk(f"{ws}/store/{k}/files"):
        size += sum(os.path.getsize(os.path.join(d, f)) for f in fs)
def med(cmd):
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
noop = med([bin_, "--workspace", ws, "run", spec])
full = med([bin_, "--workspace", ws, "verify"])
print("| what | figure |\n|---|---|")
print(f"| study: {len(r['stages'])} stages, artefacts | {size / 1e6:.0f} MB |")
print(f"| no-op `warmstart run` (stamps checked), median of {reps} | {noop * 1000:.0f} ms |")
print(f"| `warmstart verify` (every byte re-hashed), median of {reps} | {full * 1000:.0f} ms |")
PY
