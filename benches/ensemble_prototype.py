#!/usr/bin/env python3
"""Prototype (tenth round, BENCHMARKS.md): would averaging the recipe's class probabilities with
those of a fine-tuned word-vector classifier beat both? The fine-tuned model is fastText
supervised initialised with the suite's skip-gram vectors — the suite's own peer, with the
peer's settings — trained on exactly the recipe's label subset.

    BIN=target/release/warmstart OMP_NUM_THREADS=1 $BLENV/bin/python benches/ensemble_prototype.py OUT SET [SET ...]

OUT is a transfer-suite folder (benches/transfer_suite.sh). Prints, per set and budget, the
test accuracy (mean of the seeds) of the recipe, fastText + vectors, their average, and their
weighted average with the weight chosen by dev log-loss from {0, .25, .5, .75, 1}.
"""
import csv, json, os, subprocess, sys, tempfile, io
import numpy as np
import fasttext

sys.path.insert(0, os.path.dirname(__file__))
out = sys.argv[1]
BIN = os.environ.get("BIN", "target/release/warmstart")
csv.field_size_limit(1 << 30)
import re

TOK = re.compile(r"[a-z0-9']+|[^\sa-z0-9]")


def norm(t, chinese):
    t = t.lower().replace("<br />", " ")
    if chinese:
        return " ".join(ch for ch in t if not ch.isspace())
    return " ".join(TOK.findall(t))


def load(p):
    with open(p, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def recipe_probs(ds, stage, path):
    r = subprocess.run([BIN, "-q", "--workspace", f"{out}/ws/{ds}", "predict", f"{out}/specs/{ds}.yaml", stage,
                        "--input", path], capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    cols = [c for c in rows[0] if c.startswith("p_")]
    return [c[2:] for c in cols], np.array([[float(x[c]) for c in cols] for x in rows])


def ft_probs(rows, vec, texts, labels, chinese):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for t, l in rows:
            f.write(f"__label__{l} {norm(t, chinese)}\n")
    m = None
    for lr, ep in [(0.1, 25), (0.05, 10), (0.02, 5)]:
        try:
            m = fasttext.train_supervised(f.name, dim=100, epoch=ep, lr=lr, wordNgrams=1, thread=1, verbose=0,
                                          pretrainedVectors=vec)
            break
        except RuntimeError:
            pass
    os.unlink(f.name)
    p = np.zeros((len(texts), len(labels)))
    for i, t in enumerate(texts):
        for prob, lab in m.f.predict(norm(t, chinese) + "\n", -1, 0.0, "strict"):
            lab = lab.replace("__label__", "")
            if lab in labels:
                p[i, labels.index(lab)] = prob
    return p / np.maximum(p.sum(1, keepdims=True), 1e-12)


for ds in sys.argv[2:]:
    chinese = ds.startswith("cn_")
    data = f"{out}/data/{ds}"
    train, dev, test = (load(f"{data}/{s}.csv") for s in ("train", "dev", "test"))
    subsets = json.load(open(f"{out}/{ds}.subsets.json"))
    res = {}
    for key, idx in sorted(subsets.items()):
        budget, seed = key.split("/")
        if budget == "all":
            continue
        stage = f"recipe@train_size={budget},seed={seed}"
        labels, pr_test = recipe_probs(ds, stage, f"{data}/test.csv")
        _, pr_dev = recipe_probs(ds, stage, f"{data}/dev.csv")
        rows = [train[i] for i in idx]
        pf_test = ft_probs(rows, f"{out}/vec/{ds}.vec", [t for t, _ in test], labels, chinese)
        pf_dev = ft_probs(rows, f"{out}/vec/{ds}.vec", [t for t, _ in dev], labels, chinese)
        yt = np.array([labels.index(l) for _, l in test])
        yd = np.array([labels.index(l) for _, l in dev])
        acc = lambda p: float(np.mean(p.argmax(1) == yt)) * 100
        ll = lambda p: -float(np.mean(np.log(np.maximum(p[np.arange(len(yd)), yd], 1e-12))))
        w = min((0.0, 0.25, 0.5, 0.75, 1.0), key=lambda w: ll(w * pr_dev + (1 - w) * pf_dev))
        row = {"recipe": acc(pr_test), "fasttext": acc(pf_test), "avg": acc(0.5 * pr_test + 0.5 * pf_test),
               "dev_w": acc(w * pr_test + (1 - w) * pf_test), "w": w}
        res.setdefault(budget, []).append(row)
        print(ds, key, {k: round(v, 1) for k, v in row.items()}, flush=True)
    for budget, rs in sorted(res.items(), key=lambda kv: int(kv[0])):
        print(f"| {ds} | {budget} | " + " | ".join(f"{np.mean([r[k] for r in rs]):.1f}" for k in ("recipe", "fasttext", "avg", "dev_w"))
              + f" | {[r['w'] for r in rs]} |", flush=True)
