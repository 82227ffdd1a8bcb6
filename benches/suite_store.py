"""Reading a finished `benches/transfer_suite.sh` output folder, and the scaled-block design the
head prototypes share (`head_prototype.py`, `ssl_prototype.py`)."""
import csv, glob
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

csv.field_size_limit(1 << 30)
GRID = [10.0 ** k for k in range(-3, 4)]  # C: 0.001 .. 1000, decades
OFF = 1e-9  # a C that switches a block off


def rows(p):
    """(text, label) of a csv's rows."""
    with open(p, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


def store_files(ws, stage, report):
    """The files folder of `stage`'s (first) store entry in workspace `ws`."""
    for s in report["stages"]:
        if s["name"].split("@")[0] == stage:
            return glob.glob(f"{ws}/store/{s['key']}/files")[0]


def design(blocks, scales):
    """Feature blocks side by side, each scaled by √C: one C = 1 fit then acts as a C per block."""
    return sp.hstack([b * np.sqrt(c) for b, c in zip(blocks, scales)]).tocsr()


def fit(blocks, scales, y):
    return LogisticRegression(C=1.0, max_iter=3000).fit(design(blocks, scales), y)


def dev_loss(m, dv, sc, ydv):
    return log_loss(ydv, m.predict_proba(design(dv, sc)), labels=m.classes_)


def select(tr, ytr, dv, ydv, passes=1):
    """A C per block by dev log-loss: the joint grid, then `passes` coordinate passes (each
    block also off; more passes stop early when one changes nothing). Returns (scales, dev
    log-loss)."""
    nb = len(tr)
    loss = lambda sc: dev_loss(fit(tr, sc, ytr), dv, sc, ydv)
    best = min(((loss([c] * nb), [c] * nb) for c in GRID), key=lambda t: t[0])
    for _ in range(passes):
        start = list(best[1])
        for b in range(nb):
            for c in GRID + [OFF]:
                sc = list(best[1]); sc[b] = c
                l = loss(sc)
                if l < best[0] - 1e-9:
                    best = (l, sc)
        if best[1] == start:
            break
    return best[1], best[0]
