#!/usr/bin/env bash
# Skip-gram pretraining against fastText's, on the same machine in the same run:
# english_unlabelled_corpus, the template's settings (benches/specs/skipgram_corpus.yaml).
#
#   BLENV=/path/to/venv benches/skipgram_bench.sh     # a venv with fasttext (../shared/bench)
#
# warmstart's skip-gram is single-threaded by design (sequential updates: the same bytes for
# a seed on any thread count), so fastText runs with one thread for the ratio, and with two
# for reference. fastText gets the text as warmstart's tokenizer splits it (lowercased, words
# and punctuation apart), no subword n-grams (`-minn 0 -maxn 0`: the same objective), and the
# same dim, window, negatives, subsampling, minimum count (2), epochs and learning rate.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=$ROOT/../shared
cd "$ROOT"
[ -d "$SHARED/datasets/english_unlabelled_corpus" ] || { echo "skipped: $SHARED/datasets is absent" >&2; exit 0; }
PY=${BLENV:?set BLENV to a venv with fasttext}/bin/python
BIN=${BIN:-}
if [ -z "$BIN" ]; then cargo build --release -q; BIN=$ROOT/target/release/warmstart; fi
WS=$(mktemp -d -t ws_sg.XXXXXX); trap 'rm -rf "$WS"' EXIT
SPEC=benches/specs/skipgram_corpus.yaml
"$BIN" --workspace "$WS" -q run "$SPEC" --json > "$WS/run.json"
"$PY" - "$WS/run.json" "$SHARED/datasets/english_unlabelled_corpus" "$WS/corpus.txt" <<'PY'
import json, os, re, sys, time
import fasttext
r = json.load(open(sys.argv[1]))
st = {s["stage"]: s for s in r["stages"]}
ws_secs = st["vectors"]["seconds"]
# The same text, split as BertPreTokenizer does (after lowercasing): words and punctuation.
split = re.compile(r"\w+|[^\w\s]", re.UNICODE)
words = 0
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for d, _, fs in sorted(os.walk(sys.argv[2])):
        for f in sorted(fs):
            if f.endswith(".md"):
                continue
            for line in open(os.path.join(d, f), encoding="utf-8", errors="replace"):
                toks = split.findall(line.lower())
                if toks:
                    words += len(toks)
                    out.write(" ".join(toks) + "\n")
def ft(threads):
    t = time.perf_counter()
    fasttext.train_unsupervised(sys.argv[3], model="skipgram", dim=128, ws=5, neg=5, t=1e-4, minCount=2,
                                epoch=5, lr=0.05, minn=0, maxn=0, thread=threads, verbose=0)
    return time.perf_counter() - t
ft1, ft2 = ft(1), ft(2)
print(f"corpus: {words / 1e6:.2f} M tokens; 5 epochs, dim 128, window 5, 5 negatives, t 1e-4")
print("| what | wall clock | ratio fastText (1 thread) / warmstart |\n|---|---|---|")
print(f"| warmstart `pretrain` skipgram (1 thread, by design) | {ws_secs:.1f} s | **{ft1 / ws_secs:.2f}×** |")
print(f"| fastText skipgram, 1 thread | {ft1:.1f} s | |")
print(f"| fastText skipgram, 2 threads (Hogwild, not reproducible) | {ft2:.1f} s | |")
PY
