#!/usr/bin/env python3
"""The two cheap peers of benches/transfer_suite.sh, on exactly warmstart's label subsets.

    transfer_peers.py DATA_DIR SUBSETS.json VECTORS.vec UNLABELLED[,UNLABELLED...] [--chinese]

DATA_DIR holds train.csv, dev.csv, test.csv (header text,label). SUBSETS.json maps
"budget/seed" to the 0-based train.csv rows that warmstart's `recipe` stage learned from (its
train_rows.json). Prints one JSON line per (peer, budget, seed).

Peers, with the settings of ../shared/bench (written independently here so that they can take
the subsets as input):
  tfidf     TF-IDF word 1-2 grams (char 1-3 grams for Chinese), sublinear tf, logistic
            regression with C from {0.25, 1, 4, 16} chosen on dev macro-F1 (sklearn_tfidf.py)
  fasttext  fastText supervised (dim 100, 25 epochs, lr 0.1, with the NaN fallbacks of
            fasttext_transfer.py) initialised with skip-gram vectors (dim 100, 5 epochs,
            minCount 3) trained on the unlabelled texts; VECTORS.vec is trained once and reused
"""
import csv, json, os, re, sys, tempfile, time, warnings

warnings.filterwarnings("ignore")
import numpy as np
import fasttext
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

data_dir, subsets_path, vec_path, unlabelled = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
chinese = "--chinese" in sys.argv
csv.field_size_limit(1 << 30)
TOK = re.compile(r"[a-z0-9']+|[^\sa-z0-9]")


def norm(t):
    t = t.lower().replace("<br />", " ")
    if chinese:  # characters as words: fastText needs spaces
        return " ".join(ch for ch in t if not ch.isspace())
    return " ".join(TOK.findall(t))


def load(p):
    with open(p, newline="", encoding="utf-8") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


train, dev, test = (load(os.path.join(data_dir, f"{s}.csv")) for s in ("train", "dev", "test"))
subsets = json.load(open(subsets_path))


def texts_of(src):
    if src.endswith(".csv"):
        with open(src, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                yield r["text"]
    elif os.path.isdir(src):
        for root, _, files in sorted(os.walk(src)):
            for fn in sorted(files):
                if fn.endswith(".txt"):
                    with open(os.path.join(root, fn), encoding="utf-8", errors="replace") as f:
                        yield from f
    else:
        with open(src, encoding="utf-8", errors="replace") as f:
            yield from f


if not os.path.exists(vec_path):
    t0 = time.time()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as w:
        for src in unlabelled:
            for t in texts_of(src):
                t = norm(t)
                if t:
                    w.write(t + "\n")
    m = fasttext.train_unsupervised(w.name, model="skipgram", dim=100, epoch=5, thread=2, minCount=3, verbose=0)
    os.unlink(w.name)
    with open(vec_path, "w", encoding="utf-8") as out:
        out.write(f"{len(m.words)} {m.get_dimension()}\n")
        for wd in m.words:
            out.write(wd + " " + " ".join(f"{x:.4f}" for x in m.get_word_vector(wd)) + "\n")
    print(json.dumps({"peer": "fasttext-vectors", "seconds": round(time.time() - t0, 1), "words": len(m.words)}), flush=True)


def score(y, p):
    return float(np.mean(np.array(y) == np.array(p))), float(f1_score(y, p, average="macro"))


def tfidf(rows):
    kw = dict(analyzer="char_wb", ngram_range=(1, 3)) if chinese else dict(ngram_range=(1, 2))
    v = TfidfVectorizer(sublinear_tf=True, lowercase=True, **kw)
    x = v.fit_transform([t for t, _ in rows])
    y = [l for _, l in rows]
    best = None
    for c in (0.25, 1.0, 4.0, 16.0):
        clf = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        f1 = score([l for _, l in dev], clf.predict(v.transform([t for t, _ in dev])))[1]
        if best is None or f1 > best[0]:
            best = (f1, clf)
    return score([l for _, l in test], best[1].predict(v.transform([t for t, _ in test])))


def ft(rows):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for t, l in rows:
            f.write(f"__label__{l} {norm(t)}\n")
    m = None
    for lr, ep in [(0.1, 25), (0.05, 10), (0.02, 5)]:  # fastText can hit NaN on tiny sets
        try:
            m = fasttext.train_supervised(f.name, dim=100, epoch=ep, lr=lr, wordNgrams=1, thread=1, verbose=0, pretrainedVectors=vec_path)
            break
        except RuntimeError:
            pass
    os.unlink(f.name)
    if m is None:
        return float("nan"), float("nan")
    # The low-level call: fastText's Python `predict` breaks with NumPy 2 (np.array(copy=False)).
    pred = [m.f.predict(norm(t) + "\n", 1, 0.0, "strict")[0][1].replace("__label__", "") for t, _ in test]
    return score([l for _, l in test], pred)


for key in sorted(subsets, key=lambda k: (int(k.split("/")[0]) if k.split("/")[0] != "all" else 1 << 60, k)):
    rows = [train[i] for i in subsets[key]]
    budget, seed = key.split("/")
    for name, fn in (("tfidf", tfidf), ("fasttext", ft)):
        acc, f1 = fn(rows)
        print(json.dumps({"peer": name, "budget": budget, "seed": int(seed), "rows": len(rows), "accuracy": acc, "macro_f1": f1}), flush=True)
