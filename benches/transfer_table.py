#!/usr/bin/env python3
"""The transfer suite's table from the raw figures benches/transfer_suite.sh left in OUT.

    transfer_table.py OUT SET [SET ...]

Test accuracy, mean ± std (population) over the 3 seeds, per set and label budget. The verdict
column applies the bar of issue 11: the recipe must beat the better peer by 3 points (where that
peer is above 94 %, by half of its remaining error) at 100 and 500 labels, and its own
from-scratch control by 5 points at 100 labels (same rule near the ceiling).
"""
import json, statistics as st, sys
from collections import defaultdict

out, sets = sys.argv[1], sys.argv[2:]


def ms(xs):
    """Mean and population std in percent over the runs that produced a figure (fastText can
    end in NaN on a run; such runs are left out and counted by `failed`)."""
    xs = [x for x in xs if x == x]
    return (100 * st.mean(xs), 100 * st.pstdev(xs)) if xs else (float("nan"), 0.0)


def failed(xs):
    return sum(1 for x in xs if x != x)


def need(base, points):
    """The margin over `base` (a percentage) that counts as a clear win."""
    return (100 - base) / 2 if base > 94 else points


print("| set | labels | recipe | from scratch | linear (TF-IDF, warmstart) | TF-IDF+LR (sklearn) | fastText + vectors | verdict |")
print("|---|---|---|---|---|---|---|---|")
for ds in sets:
    try:
        r = json.load(open(f"{out}/{ds}.warmstart.json"))
        peers = [json.loads(l) for l in open(f"{out}/{ds}.peers.jsonl") if '"budget"' in l]
    except (FileNotFoundError, json.JSONDecodeError):
        print(f"| {ds} | — | not run | | | | | |")
        continue
    acc = defaultdict(list)
    for s in r["stages"]:
        name, _, variant = s["name"].partition("@")
        m = s.get("metrics") or {}
        if name.startswith("eval_") and "accuracy" in m:
            parts = dict(p.split("=") for p in variant.split(","))
            budget = "all" if parts["train_size"] == "null" else parts["train_size"]
            acc[(name, budget)].append(m["accuracy"])
    for p in peers:
        acc[(p["peer"], p["budget"])].append(p["accuracy"])
    for budget in ("100", "500", "all"):
        cell = {k: ms(acc[(k, budget)]) for k in ("eval_recipe", "eval_scratch", "eval_linear", "tfidf", "fasttext")}
        f = lambda k: f"{cell[k][0]:.1f} ± {cell[k][1]:.1f}" + (
            f" ({failed(acc[(k, budget)])} run NaN)" if failed(acc[(k, budget)]) else "")
        rec = cell["eval_recipe"][0]
        best_peer = max(cell["tfidf"][0], cell["fasttext"][0])
        verdict = ""
        if budget in ("100", "500"):
            ok = rec - best_peer >= need(best_peer, 3)
            verdict = f"{rec - best_peer:+.1f} vs best peer {'✓' if ok else '✗'}"
            if budget == "100":
                sc = cell["eval_scratch"][0]
                ok2 = rec - sc >= need(sc, 5)
                verdict += f"; {rec - sc:+.1f} vs scratch {'✓' if ok2 else '✗'}"
        print(f"| {ds} | {budget} | {f('eval_recipe')} | {f('eval_scratch')} | {f('eval_linear')} | {f('tfidf')} | {f('fasttext')} | {verdict} |")
