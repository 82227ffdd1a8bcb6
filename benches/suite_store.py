"""Reading a finished `benches/transfer_suite.sh` output folder, and the scaled-block design the
head prototypes share (`head_prototype.py`, `ssl_prototype.py`)."""
import csv, glob
import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

csv.field_size_limit(1 << 30)


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
