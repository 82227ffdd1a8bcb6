#!/usr/bin/env bash
# The quickstart with every encoder and pretraining objective (the table "Quickstart with every
# encoder and objective" in BENCHMARKS.md): `--set` overrides of pipelines/quickstart.yaml, one
# fresh workspace per row, test accuracy of the three recipes and the run's wall time.
#
#   benches/quickstart_encoders.sh        # ~3 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
BIN=target/release/warmstart
Q=pipelines/quickstart.yaml
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
row() {
  local label=$1; shift
  local start end
  start=$(date +%s.%N)
  "$BIN" --workspace "$TMP/$label" run "$Q" --json --jobs 2 "$@" > "$TMP/$label.json" 2>/dev/null
  end=$(date +%s.%N)
  python3 - "$TMP/$label.json" "$label" "$(echo "$end - $start" | bc)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
acc = {s["name"]: s["metrics"]["accuracy"] for s in r["stages"] if s.get("metrics") and "accuracy" in s["metrics"]}
print(f"| {sys.argv[2]} | {100*acc['test_scratch']:.1f} | {100*acc['test_tuned']:.1f} | {100*acc['test_frozen']:.1f} | {float(sys.argv[3]):.1f} s |")
PY
}
enc() { echo --set scratch.encoder.type=$1 --set tuned.encoder.type=$1 --set scratch.epochs=8 --set tuned.epochs=8; }
echo "| encoder, pretraining | scratch | tuned | frozen | run |"
echo "|---|---|---|---|---|"
row "bag, skip-gram (default spec)"
row "bag, cbow" --set embed.objective=cbow
row "cnn, skip-gram" $(enc cnn)
row "transformer, skip-gram" $(enc transformer)
row "lstm, skip-gram" $(enc lstm)
row "lstm, lm + ULMFiT fine-tuning" $(enc lstm) --set embed.objective=lm --set embed.encoder.type=lstm --set embed.epochs=3 \
  --set tuned.pooling=concat --set tuned.gradual_unfreeze=true --set tuned.layer_lr_decay=2.6 --set tuned.encoder_lr_scale=1
row "transformer, mlm" $(enc transformer) --set embed.objective=mlm --set embed.encoder.type=transformer --set embed.epochs=3
