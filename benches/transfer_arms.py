#!/usr/bin/env python3
"""Every eval_* arm of a transfer-suite OUT folder: test accuracy, mean ± std (population) over the
seeds, per label budget. Usage: benches/transfer_arms.py OUT SET [SET ...] (used for the fifth round
in BENCHMARKS.md, whose extra arms benches/transfer_table.py does not print)."""
import json, sys, statistics as st, collections
out=sys.argv[1]
for ds in sys.argv[2:]:
    try: r=json.load(open(f"{out}/{ds}.warmstart.json"))
    except Exception as e: print(ds, "missing"); continue
    acc=collections.defaultdict(list)
    for s in r["stages"]:
        name,_,var=s["name"].partition("@")
        if not name.startswith("eval_"): continue
        parts=dict(p.split("=") for p in var.split(","))
        m=s.get("metrics") or {}
        a=m.get("accuracy")
        if a is None:
            try: a=json.load(open(f"{out}/ws/{ds}/store/{s['key']}/files/metrics.json"))["accuracy"]
            except Exception: continue
        acc[(name,parts["train_size"])].append(a*100)
    names=sorted({k[0] for k in acc})
    print(ds)
    for b in ["100","500","null"]:
        print("  %5s "%b+"  ".join("%s %.1f±%.1f"%(n[5:],st.mean(acc[(n,b)]),st.pstdev(acc[(n,b)])) for n in names if acc[(n,b)]))
