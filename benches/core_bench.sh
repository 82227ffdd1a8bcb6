#!/usr/bin/env bash
# Core benchmarks (issue: core pipeline). Prints a markdown table for BENCHMARKS.md.
#
#   benches/core_bench.sh            # warmstart figures only
#   BLENV=/path/to/venv benches/core_bench.sh   # also runs DVC's 4-stage no-op repro in the same run
#
# 1. No-op rerun of pipelines/quickstart.yaml (every stage cached): median of REPS runs,
#    wall clock of the whole process, against `dvc repro` with nothing to do on
#    ../shared/bench/dvc_pipeline (same machine, same run).
# 2. tokenize + pad throughput on the IMDB training texts (33 MB), 1 and 2 threads:
#    input bytes / (tokenize seconds + pad seconds) as reported by `run --json`; with BLENV
#    (tokenizers installed), HF tokenizers from Python on the same texts and settings
#    (../shared/bench/tokenize_peers.py: WordPiece 8k train + encode + pad 256), same threads,
#    right after, and the ratio; then benches/tokenize_same_ids.py checks that warmstart's ids
#    are what HF tokenizers encodes with warmstart's tokenizer.json. With TensorFlow in BLENV,
#    Keras' word-level Tokenizer + pad_sequences on the same texts too (one Python thread).
#    SKIP_NOOP=1 runs only this part.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared
REPS=${REPS:-10}
cd "$ROOT"
cargo build --release -q
WS=$(mktemp -d -t ws_bench.XXXXXX)
trap 'rm -rf "$WS"' EXIT
BIN=$ROOT/target/release/warmstart

median_run() { # median wall seconds of REPS runs of "$@"
  python3 - "$REPS" "$@" <<'PY'
import statistics, subprocess, sys, time
reps = int(sys.argv[1]); cmd = sys.argv[2:]
ts = []
for _ in range(reps):
    t = time.perf_counter(); subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); ts.append(time.perf_counter() - t)
print(f"{statistics.median(ts):.4f}")
PY
}

if [ -z "${SKIP_NOOP:-}" ]; then
"$BIN" --workspace "$WS/q" run pipelines/quickstart.yaml >/dev/null 2>&1
NOOP=$(median_run "$BIN" --workspace "$WS/q" run pipelines/quickstart.yaml)
STAGES=$("$BIN" --workspace "$WS/q" run pipelines/quickstart.yaml --json 2>/dev/null | python3 -c "import json,sys; r=json.load(sys.stdin); s=r['stages']; print(f\"{sum(x['status']=='cached' for x in s)}/{len(s)}\")")
echo "| no-op \`warmstart run\`, quickstart ($STAGES stages cached) | median of $REPS | ${NOOP} s |"

if [ -n "${BLENV:-}" ] && [ -x "$BLENV/bin/dvc" ] && [ -d "$SHARED/bench/dvc_pipeline" ]; then
  DVCJ=$(REPS=$REPS "$SHARED/bench/dvc_pipeline/dvc_bench.sh" "$ROOT/datasets/quickstart" "$ROOT/datasets/quickstart/unlabelled.txt" 2>/dev/null | tail -n 1)
  DVC_NOOP=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['noop_repro_s_median'])" "$DVCJ" 2>/dev/null || echo "?")
  echo "| no-op \`dvc repro\`, 4 stages (same machine, same run) | median of $REPS | ${DVC_NOOP} s |"
  python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'| ratio dvc / warmstart | | {b/a:.0f}x |')" "$NOOP" "$DVC_NOOP" || true
  echo "<!-- dvc_bench.sh: $DVCJ -->"
fi
fi

if [ -f "$SHARED/datasets/imdb/train.csv" ]; then
  BYTES=$(stat -c %s "$SHARED/datasets/imdb/train.csv")
  for T in 1 2; do
    J=$("$BIN" --workspace "$WS/t$T" run benches/specs/tokenize_imdb.yaml --jobs "$T" --json 2>/dev/null)
    python3 - "$BYTES" "$T" "$J" <<'PY'
import json, sys
b, t, r = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
s = {x["name"]: x for x in r["stages"]}
tok, pad = s["tok"]["seconds"], s["seqs"]["seconds"]
print(f"| tokenize (train WordPiece 8k + encode) + pad 256, IMDB train 33 MB, {t} thread(s) | {tok:.1f} s + {pad:.2f} s | {b/1e6/(tok+pad):.2f} MB/s |")
open(f"/dev/shm/ws_tok_{t}", "w").write(str(tok + pad))
PY
    if [ -n "${BLENV:-}" ] && "$BLENV/bin/python" -c "import tokenizers" 2>/dev/null; then
      P=$(RAYON_RS_NUM_CPUS=$T "$BLENV/bin/python" "$SHARED/bench/tokenize_peers.py" "$SHARED/datasets/imdb/train.csv" 8000 256 hf 2>/dev/null | tail -n 1)
      python3 - "$BYTES" "$T" "$P" "$(cat /dev/shm/ws_tok_$T)" <<'PY'
import json, sys
b, t, p, ours = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
print(f"| HF tokenizers (Python), same texts and settings, {t} thread(s) | {p['train_s']:.1f} s train + {p['encode_pad_s']:.1f} s encode+pad | {b/1e6/p['total_s']:.2f} MB/s; **warmstart / HF {p['total_s']/ours:.2f}x** |")
PY
    fi
    if [ -n "${BLENV:-}" ] && TF_CPP_MIN_LOG_LEVEL=3 "$BLENV/bin/python" -c "from tensorflow.keras.preprocessing.text import Tokenizer" 2>/dev/null; then
      # Keras' word-level Tokenizer + pad_sequences runs in one Python thread whatever T is.
      K=$(TF_CPP_MIN_LOG_LEVEL=3 "$BLENV/bin/python" "$SHARED/bench/tokenize_peers.py" "$SHARED/datasets/imdb/train.csv" 8000 256 keras 2>/dev/null | tail -n 1)
      python3 - "$BYTES" "$T" "$K" "$(cat /dev/shm/ws_tok_$T)" <<'PY'
import json, sys
b, t, p, ours = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
print(f"| Keras Tokenizer (word level, num_words 8000) + pad_sequences 256, same texts, beside warmstart's {t} thread(s) | {p['train_s']:.1f} s fit + {p['encode_pad_s']:.1f} s encode+pad | {b/1e6/p['total_s']:.2f} MB/s; **warmstart / Keras {p['total_s']/ours:.2f}x** |")
PY
    fi
    rm -f "/dev/shm/ws_tok_$T"
  done
  if [ -n "${BLENV:-}" ] && "$BLENV/bin/python" -c "import tokenizers, numpy" 2>/dev/null; then
    ART=$(dirname "$(find "$WS/t2/store" -name imdb.seq | head -n 1)")
    echo "<!-- same ids: $("$BLENV/bin/python" benches/tokenize_same_ids.py "$ART" "$SHARED/datasets/imdb/train.csv" imdb) -->"
  fi
else
  echo "(skipped tokenize throughput: $SHARED/datasets/imdb/train.csv not found)"
fi
