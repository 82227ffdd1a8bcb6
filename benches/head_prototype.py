"""Head prototypes on the transfer suite's stored artefacts, in scikit-learn: which feature
blocks beside the pooled vectors are worth building (no self-training; a C per block by dev
log-loss: the joint decade grid, then one coordinate pass with "off").

    ARMS=base,max,idfmean,nb,char OMP_NUM_THREADS=1 $BLENV/bin/python benches/head_prototype.py OUT SET...

OUT is a finished `benches/transfer_suite.sh` output folder (its workspaces hold the tokenizer
and the pretrained vectors; its subsets.json the label draws). Prints one JSON line per set,
budget (100 / 500), seed and arm. Arms: base = mean vectors + word uni+bigram TF-IDF; max = a
max-pooled block beside them; idfmean = idf-weighted mean instead of the mean; nb = NB-weighted
binary uni+bigrams (NBSVM's log-count ratios; multi-class: the largest one-vs-rest |r|)
instead of TF-IDF; char = char_wb 2-5-gram TF-IDF as a third block; linear / nbonly = the
sparse block alone; lsa = a third block of LSA_K (default 100) LSA dimensions fitted on every
training text (unlabelled, as `domain`); lsa_words = LSA instead of the vectors; nbr = a third block of token counts spread to each
token's NBR_K (default 10) nearest tokens by vector cosine, TF-IDF weighted (a convex stand-in
for fine-tuning the embeddings); nbr_lsa = both; rff = a third block of RFF_D random Fourier
features of the mean vector (an RBF kernel on it); base_conv = base with coordinate passes
repeated until one changes nothing (at most 5), not one. VECTORS=path/{ds}.npy puts other
vectors for the same token ids in place of the pretrained ones (benches/subword_prototype.py)."""
import json, sys, time
import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from sklearn.feature_extraction.text import TfidfVectorizer

from suite_store import rows, store_files, design, fit, select
OUT = sys.argv[1]
SETS = sys.argv[2:]
ARMS = [a for a in (__import__("os").environ.get("ARMS", "base,char,max,charmax,idfmean,base_char").split(","))]












def main():
    for ds in SETS:
        t0 = time.time()
        ws = f"{OUT}/ws/{ds}"
        rep = json.load(open(f"{OUT}/{ds}.warmstart.json"))
        tokf = store_files(ws, "tok", rep) + "/tokenizer.json"
        tok = Tokenizer.from_file(tokf)
        E = load_file(store_files(ws, "vectors", rep) + "/encoder.safetensors")["encoder.embedding"]
        if __import__("os").environ.get("VECTORS"):
            # Other vectors for the same token ids (benches/subword_prototype.py), e.g. fastText's.
            E = np.load(__import__("os").environ["VECTORS"].format(ds=ds)).astype(np.float32)
        data = {s: rows(f"{OUT}/data/{ds}/{s}.csv") for s in ("train", "dev", "test")}
        ids = {s: [e.ids[:512] for e in tok.encode_batch([t for t, _ in r])] for s, r in data.items()}
        toks = {s: [" ".join(map(str, i)) for i in v] for s, v in ids.items()}
        # idf of token ids over the domain (= train) texts
        df = np.zeros(E.shape[0])
        for i in ids["train"]:
            df[list(set(i))] += 1
        idf = np.log((1 + len(ids["train"])) / (1 + df)) + 1
        def pool(s, how):
            out = np.zeros((len(ids[s]), E.shape[1]), dtype=np.float32)
            for r, i in enumerate(ids[s]):
                if not i:
                    continue
                v = E[i]
                if how == "mean":
                    out[r] = v.mean(0)
                elif how == "max":
                    out[r] = v.max(0)
                elif how == "idfmean":
                    w = idf[i]
                    out[r] = (v * w[:, None]).sum(0) / w.sum()
            return out
        pooled = {how: {s: pool(s, how) for s in ids} for how in ("mean", "max", "idfmean")}
        if any(a.startswith("lsa") for a in ARMS):
            # LSA of the domain texts (every training text, labels unread): a TF-IDF of token
            # ids fitted on them, reduced to LSA_K dimensions by a seeded truncated SVD.
            from sklearn.decomposition import TruncatedSVD
            k = int(__import__("os").environ.get("LSA_K", "100"))
            tv = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", min_df=2)
            svd = TruncatedSVD(k, random_state=0).fit(tv.fit_transform(toks["train"]))
            pooled["lsa"] = {s: svd.transform(tv.transform(toks[s])).astype(np.float32) for s in ids}
        if any(a.startswith("nbr") for a in ARMS):
            # Neighbour expansion: each token of a text also counts, weighted by cosine, for its
            # NBR_K nearest tokens in vector space (among the tokens of this task's texts), so a
            # linear weight learned for a seen word reaches its neighbours (what fine-tuning the
            # embeddings gives fastText), while the problem stays convex.
            kn = int(__import__("os").environ.get("NBR_K", "10"))
            vocab = sorted({t for v in ids.values() for i in v for t in i})
            pos = {t: j for j, t in enumerate(vocab)}
            V = E[vocab].astype(np.float32)
            V /= np.linalg.norm(V, axis=1, keepdims=True) + 1e-9
            rr, cc, vv = [], [], []
            for a in range(0, len(vocab), 2048):
                sim = V[a:a + 2048] @ V.T
                top = np.argpartition(-sim, kn, axis=1)[:, :kn + 1]
                for r in range(sim.shape[0]):
                    for c in top[r]:
                        if sim[r, c] > 0:
                            rr.append(a + r); cc.append(c); vv.append(sim[r, c])
            S = sp.csr_matrix((vv, (rr, cc)), shape=(len(vocab), len(vocab)))
            def bow(s):
                m = sp.lil_matrix((len(ids[s]), len(vocab)), dtype=np.float32)
                for r, i in enumerate(ids[s]):
                    for t in i:
                        m[r, pos[t]] += 1
                return m.tocsr()
            nbr_raw = {s: bow(s) @ S for s in ids}
        subsets = json.load(open(f"{OUT}/{ds}.subsets.json"))
        chinese = ds.startswith("cn_")
        for key, sub in sorted(subsets.items()):
            budget, seed = key.split("/")
            if budget == "all":
                continue
            ytr = np.array([data["train"][i][1] for i in sub]); ydv = np.array([l for _, l in data["dev"]]); yte = np.array([l for _, l in data["test"]])
            def dense(how):
                tr = pooled[how]["train"][sub]; mu = tr.mean(0); sd = tr.std(0) + 1e-6
                return {s: sp.csr_matrix((pooled[how][s][sub] if s == "train" else pooled[how][s]) - mu) / sd for s in ("train", "dev", "test")}
            def words():
                v = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), token_pattern=r"\S+")
                tr = v.fit_transform([toks["train"][i] for i in sub])
                return {"train": tr, "dev": v.transform(toks["dev"]), "test": v.transform(toks["test"])}
            def chars():
                v = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(1, 3) if chinese else (2, 5), lowercase=True)
                tr = v.fit_transform([data["train"][i][0] for i in sub])
                return {"train": tr, "dev": v.transform([t for t, _ in data["dev"]]), "test": v.transform([t for t, _ in data["test"]])}
            def nb():
                v = TfidfVectorizer(use_idf=False, norm=None, binary=True, ngram_range=(1, 2), token_pattern=r"\S+")
                tr = v.fit_transform([toks["train"][i] for i in sub])
                cl = sorted(set(ytr)); rs = []
                for c in cl:
                    p = 1 + np.asarray(tr[ytr == c].sum(0)).ravel(); q = 1 + np.asarray(tr[ytr != c].sum(0)).ravel()
                    rs.append(np.log((p / p.sum()) / (q / q.sum())))
                r = np.abs(np.array(rs)).max(0)
                D = sp.diags(r)
                def f(m):
                    m = (m @ D).tocsr(); n = np.sqrt(np.asarray(m.multiply(m).sum(1)).ravel()) + 1e-9
                    return sp.diags(1 / n) @ m
                return {"train": f(tr), "dev": f(v.transform(toks["dev"])), "test": f(v.transform(toks["test"]))}
            def rff():
                # Random Fourier features of the standardised mean vector (an RBF kernel, width
                # by the median heuristic on the labelled rows): a nonlinear view of the vectors
                # that stays a convex problem. Seeded, RFF_D (default 1024) features.
                dm = dense("mean")
                X = {k: np.asarray(v.todense()) for k, v in dm.items()}
                rng = np.random.default_rng(0)
                sub_ = X["train"][:200]
                dist = np.sqrt(((sub_[:, None, :] - sub_[None, :, :]) ** 2).sum(-1))
                sigma = np.median(dist[dist > 0])
                D = int(__import__("os").environ.get("RFF_D", "1024"))
                W = rng.normal(0, 1 / sigma, (X["train"].shape[1], D)); b = rng.uniform(0, 2 * np.pi, D)
                return {k: sp.csr_matrix(np.sqrt(2 / D) * np.cos(v @ W + b)) for k, v in X.items()}
            blocks = {"nb": nb(), "mean": dense("mean"), "max": dense("max"), "idfmean": dense("idfmean"), "words": words(), "chars": chars()}
            if "lsa" in pooled:
                blocks["lsa"] = dense("lsa")
            if any(a.startswith("rff") for a in ARMS):
                blocks["rff"] = rff()
            if any(a.startswith("nbr") for a in ARMS):
                # idf over the labelled rows, sublinear tf, l2 rows: as the words block
                from sklearn.feature_extraction.text import TfidfTransformer
                tt = TfidfTransformer(sublinear_tf=True).fit(nbr_raw["train"][sub])
                blocks["nbr"] = {"train": tt.transform(nbr_raw["train"][sub]), "dev": tt.transform(nbr_raw["dev"]), "test": tt.transform(nbr_raw["test"])}
            arms = {"base": ["mean", "words"], "char": ["mean", "words", "chars"], "max": ["mean", "max", "words"],
                    "charmax": ["mean", "max", "words", "chars"], "idfmean": ["idfmean", "words"], "base_char": ["mean", "chars"], "nb": ["mean", "nb"], "nbwords": ["mean", "words", "nb"], "linear": ["words"], "nbonly": ["nb"],
                    "lsa": ["mean", "words", "lsa"], "lsa_words": ["lsa", "words"],
                    "nbr": ["mean", "words", "nbr"], "rff": ["mean", "words", "rff"], "nbr_lsa": ["mean", "words", "nbr", "lsa"],
                    "base_conv": ["mean", "words"]}
            for arm in ARMS:
                names = arms[arm]
                tr = [blocks[n]["train"] for n in names]; dv = [blocks[n]["dev"] for n in names]; te = [blocks[n]["test"] for n in names]
                sc, _ = select(tr, ytr, dv, ydv, passes=5 if arm.endswith("_conv") else 1)
                m = fit(tr, sc, ytr)
                acc = float((m.predict(design(te, sc)) == yte).mean())
                print(json.dumps({"set": ds, "budget": budget, "seed": seed, "arm": arm, "acc": round(100 * acc, 2), "c": sc}), flush=True)
        print(f"# {ds} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)


main()
