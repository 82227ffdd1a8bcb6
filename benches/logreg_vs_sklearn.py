#!/usr/bin/env python3
"""Checks warmstart's logistic head (src/model/logreg.rs) against scikit-learn on the same stored
features: the same C must reach the same optimum (objective within 1e-4 relative), and
LogisticRegressionCV's choice of C is shown beside warmstart's.

    benches/logreg_vs_sklearn.py STORE_ENTRY_FILES_DIR [STORE_ENTRY_FILES_DIR ...]

Each argument is the `files/` folder of a feature-extract entry with `head: logistic`
(features.safetensors, model.safetensors, logistic.json). Needs numpy, safetensors, scikit-learn.
"""
import json, sys, warnings
warnings.filterwarnings("ignore", category=FutureWarning)
import numpy as np
from safetensors.numpy import load_file
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

worst = 0.0
for d in sys.argv[1:]:
    f = load_file(f"{d}/features.safetensors")
    x, y = f["features"].astype(np.float64), f["labels"][:, 0].astype(int)
    rec = json.load(open(f"{d}/logistic.json"))
    # "c": one C per block by name; only heads of one pooled block are compared (n-gram
    # features are not stored, and several blocks are not one scikit-learn C).
    if len(rec["c"]) != 1 or "head.ngram_w" in load_file(f"{d}/model.safetensors"):
        continue
    (block, c), = rec["c"].items()
    ours = rec["objective"]
    mu, sd = x.mean(0), x.std(0)
    sd[sd < 1e-12] = 1.0
    z = (x - mu) / sd
    n = len(y)
    k = len(np.unique(y))
    # Binary: scikit-learn fits one vector w with ½‖w‖²; warmstart's 2-class softmax at its
    # optimum is (−w/2, w/2), penalised ½(2‖w/2‖²) = ¼‖w‖², i.e. scikit-learn with C·2.
    m = LogisticRegression(C=c * 2 if k == 2 else c, tol=1e-10, max_iter=100000).fit(z, y)
    # scikit-learn's multinomial objective (C·ΣCE + ½‖W‖²), in warmstart's scaling (÷ C·n).
    p = m.predict_proba(z)
    ce = -np.log(np.clip(p[np.arange(n), np.searchsorted(m.classes_, y)], 1e-300, None)).mean()
    coef = m.coef_
    if coef.shape[0] == 1:  # binary: sklearn fits one vector; as a 2-class softmax it is ±w/2
        coef = np.vstack([-coef / 2, coef / 2])
    theirs = ce + (coef ** 2).sum() / (2 * c * n)
    head = load_file(f"{d}/model.safetensors")
    w = head["head.w"].astype(np.float64)
    b = head["head.b"].astype(np.float64)[0]
    agree = ((x @ w + b).argmax(1) == m.predict(z)).mean()
    cv = LogisticRegressionCV(Cs=[r["c"][block] for r in rec["cv_log_loss"]] or [c], cv=5, scoring="neg_log_loss", max_iter=10000).fit(z, y)
    rel = (ours - theirs) / abs(theirs)
    worst = max(worst, rel)
    print(json.dumps({"entry": d, "rows": n, "c": c, "sklearn_cv_c": float(cv.C_[0]), "objective": ours,
                      "sklearn_objective": theirs, "relative_gap": rel, "prediction_agreement": agree}))
sys.exit(0 if worst < 1e-4 else 1)
