"""Would subword-aware vectors (fastText's character n-grams) lift the recipe? A prototype on
the transfer suite's stored artefacts, before building it into warmstart's word2vec kernel.

    OMP_NUM_THREADS=1 $BLENV/bin/python benches/subword_prototype.py OUT SET...
    VECTORS=OUT/vec/{ds}.sub.npy ARMS=base ... benches/head_prototype.py OUT SET...   # then the head

For each set it trains fastText skip-gram twice on the template's pretraining text (`general` =
english_unlabelled_corpus, `domain` = the set's training texts), split as warmstart's word-level
tokenizer splits it (lowercased; words and punctuation apart), with the template's settings
(dim 256, window 5, 5 negatives, subsampling 1e-4, minimum count 2, 5 epochs, lr 0.05): once
without subwords (`minn 0 maxn 0`: the objective warmstart trains) and once with character 3-6
grams (fastText's default). Each model's vector of every word of the set's warmstart tokenizer
vocabulary (a word's vector with n-grams is its own plus its n-grams', so rare words borrow from
frequent ones) is saved as OUT/vec/{ds}.{plain,sub}.npy, rows in token-id order.

MORE=a.csv,b.csv adds those files' `text` column to the general text and trains only the plain
model, saved as OUT/vec/{ds}.more.npy: does more general text lift the recipe?"""
import json, os, re, sys, tempfile, time
import numpy as np
import fasttext
from suite_store import rows, store_files

OUT, SETS = sys.argv[1], sys.argv[2:]
GENERAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets", "english_unlabelled_corpus")
split = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def lines_of_general():
    for d, _, fs in sorted(os.walk(GENERAL)):
        for f in sorted(fs):
            if f.endswith(".md"):
                continue
            for line in open(os.path.join(d, f), encoding="utf-8", errors="replace"):
                yield line


for ds in SETS:
    t0 = time.time()
    rep = json.load(open(f"{OUT}/{ds}.warmstart.json"))
    vocab = json.load(open(store_files(f"{OUT}/ws/{ds}", "tok", rep) + "/tokenizer.json"))["model"]["vocab"]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        more = [t + "\n" for p in os.environ.get("MORE", "").split(",") if p for t, _ in rows(p)]
        for line in list(lines_of_general()) + more + [t + "\n" for t, _ in rows(f"{OUT}/data/{ds}/train.csv")]:
            toks = split.findall(line.lower())
            if toks:
                f.write(" ".join(toks) + "\n")
        corpus = f.name
    models = (("more", (0, 0)),) if os.environ.get("MORE") else (("plain", (0, 0)), ("sub", (3, 6)))
    for name, (minn, maxn) in models:
        m = fasttext.train_unsupervised(corpus, model="skipgram", dim=256, ws=5, neg=5, t=1e-4, minCount=2,
                                        epoch=5, lr=0.05, minn=minn, maxn=maxn, thread=2, verbose=0)
        E = np.zeros((max(vocab.values()) + 1, 256), dtype=np.float32)
        for word, i in vocab.items():
            if not word.startswith("["):
                E[i] = m.get_word_vector(word)
        np.save(f"{OUT}/vec/{ds}.{name}.npy", E)
        print(json.dumps({"set": ds, "vectors": name, "seconds": round(time.time() - t0)}), flush=True)
    os.unlink(corpus)
