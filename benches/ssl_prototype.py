"""Semi-supervised prototypes on the transfer suite's stored artefacts, in scikit-learn: do
pseudo-labels from label spreading over the pretrained vectors beat the recipe's own
self-training (pseudo-labels from the head itself)?

    ARMS=base,st,lsp OMP_NUM_THREADS=1 $BLENV/bin/python benches/ssl_prototype.py OUT SET...

OUT is a finished `benches/transfer_suite.sh` output folder. The unlabelled rows are the set's
training texts (the template's `domain`), never dev or test. Every arm fits the recipe's head
(mean-pooled vectors + word uni+bigram TF-IDF, a C per block by dev log-loss: the joint decade
grid, then a coordinate pass with "off"), on:
  base  the labelled rows only;
  st    + class-balanced self-training, 2 rounds (20 %, then 50 % of the unlabelled rows, quotas
        by the labelled class shares, the surest rows), each round kept only if the dev
        log-loss does not rise — the template's `rounds: 2`;
  st_acc, st_cal, st_all  the same rounds judged by dev accuracy (kept unless it falls), by
        dev log-loss at the best single temperature (calibration factored out), or all kept;
  lsp   + the same quotas of rows pseudo-labelled by label spreading (Zhou et al. 2004) over a
        kNN graph (K neighbours, cosine on the mean vectors) of labelled + unlabelled rows, the
        surest first, kept only if the dev log-loss does not rise;
  lsp1  label spreading alone, as a classifier (test rows take their K nearest training rows).
Prints one JSON line per set, budget (100 / 500), seed and arm."""
import json, os, sys, time
import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file
from tokenizers import Tokenizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.semi_supervised import LabelSpreading

from suite_store import rows, store_files, design, fit, dev_loss, select

OUT, SETS = sys.argv[1], sys.argv[2:]
ARMS = os.environ.get("ARMS", "base,st,lsp,lsp1").split(",")
K = int(os.environ.get("K", "10"))
ALPHA = float(os.environ.get("ALPHA", "0.2"))






def quotas(prior, nu, portion):
    return {c: int(round(portion * nu * p)) for c, p in prior.items()}


def pick(conf, lab, q):
    """Per class, the surest rows up to its quota (ties by row index)."""
    out = []
    for c, n in q.items():
        idx = np.where(lab == c)[0]
        idx = idx[np.lexsort((idx, -conf[idx]))][:n]
        out.extend(idx.tolist())
    return sorted(out)


def main():
    for ds in SETS:
        t0 = time.time()
        ws = f"{OUT}/ws/{ds}"
        rep = json.load(open(f"{OUT}/{ds}.warmstart.json"))
        tok = Tokenizer.from_file(store_files(ws, "tok", rep) + "/tokenizer.json")
        E = load_file(store_files(ws, "vectors", rep) + "/encoder.safetensors")["encoder.embedding"]
        data = {s: rows(f"{OUT}/data/{ds}/{s}.csv") for s in ("train", "dev", "test")}
        ids = {s: [e.ids[:512] for e in tok.encode_batch([t for t, _ in r])] for s, r in data.items()}
        toks = {s: [" ".join(map(str, i)) for i in v] for s, v in ids.items()}
        mean = {s: np.stack([E[i].mean(0) if i else np.zeros(E.shape[1], np.float32) for i in v]) for s, v in ids.items()}
        unit = {s: m / (np.linalg.norm(m, axis=1, keepdims=True) + 1e-9) for s, m in mean.items()}
        ydv = np.array([l for _, l in data["dev"]]); yte = np.array([l for _, l in data["test"]])
        ytrain_all = np.array([l for _, l in data["train"]])  # only the budget's rows are read
        subsets = json.load(open(f"{OUT}/{ds}.subsets.json"))
        for key, sub in sorted(subsets.items()):
            budget, seed = key.split("/")
            if budget == "all":
                continue
            sub = sorted(sub)
            ytr = ytrain_all[sub]
            classes = sorted(set(ytr))
            prior = {c: float((ytr == c).mean()) for c in classes}
            unl = np.array(sorted(set(range(len(ids["train"]))) - set(sub)))
            mu = mean["train"][sub].mean(0); sd = mean["train"][sub].std(0) + 1e-6
            dense = lambda x: sp.csr_matrix((x - mu) / sd)
            vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), token_pattern=r"\S+")
            w_tr = vec.fit_transform([toks["train"][i] for i in sub])
            blocks_of = lambda s, idx=None: [dense(mean[s] if idx is None else mean[s][idx]),
                                             vec.transform([toks[s][i] for i in (range(len(toks[s])) if idx is None else idx)])]
            tr = [dense(mean["train"][sub]), w_tr]
            dv, te = blocks_of("dev"), blocks_of("test")
            sc, base_loss = select(tr, ytr, dv, ydv)
            base = fit(tr, sc, ytr)
            out = {}
            out["base"] = (base.predict(design(te, sc)) == yte).mean()

            def dev_score(m, guard):
                """What a round is judged by, lower is better: dev log-loss (the template's),
                dev error (`acc`: blind to the overconfidence pseudo-labels breed), or nothing."""
                if guard == "loss":
                    return dev_loss(m, dv, sc, ydv)
                if guard == "acc":
                    return -(m.predict(design(dv, sc)) == ydv).mean()
                if guard == "cal":
                    # dev log-loss at the best single temperature: ranking, not calibration
                    from scipy.optimize import minimize_scalar
                    from scipy.special import log_softmax
                    z = m.decision_function(design(dv, sc))
                    z = np.stack([-z / 2, z / 2], 1) if z.ndim == 1 else z
                    yi = np.searchsorted(m.classes_, ydv)
                    nll = lambda lt: -log_softmax(z * np.exp(lt), axis=1)[np.arange(len(yi)), yi].mean()
                    return minimize_scalar(nll, bounds=(-4, 4), method="bounded").fun
                return 0.0

            def refit(extra, ylab, sc, best, guard):
                """Labelled + pseudo-labelled rows with the base C's; kept if the guard holds."""
                xb = [sp.vstack([a, b]).tocsr() for a, b in zip(tr, blocks_of("train", unl[extra]))]
                m = fit(xb, sc, np.concatenate([ytr, ylab]))
                l = dev_score(m, guard)
                return (m, l) if l <= best else (None, l)

            def self_train(labels_of, guard="loss"):
                """Two rounds (20 %, then 50 % of the unlabelled rows), each kept only if the
                guard holds; `labels_of(model)` gives every unlabelled row's label and confidence."""
                model, best = base, dev_score(base, guard)
                for portion in (0.2, 0.5):
                    lab, conf = labels_of(model)
                    extra = pick(conf, lab, quotas(prior, len(unl), portion))
                    m, l = refit(extra, lab[extra], sc, best, guard)
                    if m is None:
                        break
                    model, best = m, l
                return (model.predict(design(te, sc)) == yte).mean()

            def own_labels(model):
                p = model.predict_proba(design(blocks_of("train", unl), sc))
                return model.classes_[p.argmax(1)], p.max(1)

            if "st" in ARMS:
                out["st"] = self_train(own_labels)
            if "st_acc" in ARMS:
                out["st_acc"] = self_train(own_labels, "acc")
            if "st_cal" in ARMS:
                out["st_cal"] = self_train(own_labels, "cal")
            if "st_all" in ARMS:
                out["st_all"] = self_train(own_labels, "none")
            if "lsp" in ARMS or "lsp1" in ARMS:
                allx = np.vstack([unit["train"][sub], unit["train"][unl]])
                cl = np.array(classes)
                yy = np.concatenate([np.searchsorted(cl, ytr), -np.ones(len(unl), int)])
                ls = LabelSpreading(kernel="knn", n_neighbors=K, alpha=ALPHA, max_iter=200).fit(allx, yy)
                F = ls.label_distributions_[len(sub):]
                F = np.nan_to_num(F)
                lab = cl[F.argmax(1)]
                if "lsp1" in ARMS:
                    out["lsp1"] = (cl[ls.predict(unit["test"])] == yte).mean()
                if "lsp" in ARMS:
                    out["lsp"] = self_train(lambda _model: (lab, F.max(1)))
            for arm in ARMS:
                print(json.dumps({"set": ds, "budget": budget, "seed": seed, "arm": arm, "acc": round(100 * float(out[arm]), 2)}), flush=True)
        print(f"# {ds} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)


main()
