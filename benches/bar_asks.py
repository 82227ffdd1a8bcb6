#!/usr/bin/env python3
"""What issue 11's bar asks of the recipe, beside what any arm reaches with every label.

    benches/bar_asks.py [BENCHMARKS.md]

Reads the transfer-suite table (between the `transfer-suite-table` markers, as
benches/transfer_table.py printed it) and prints, per set and budget (100, 500): the accuracy
the bar asks (the better peer + 3 points, or + half its remaining error above 94 %), the
recipe's, and the best accuracy of any arm — recipe, from scratch, linear, scikit-learn,
fastText — trained on *every* labelled row. Where the bar asks more at 500 labels than every
arm reaches with all of them, no change to the recipe can be expected to meet it.
"""
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "BENCHMARKS.md"
text = open(path, encoding="utf-8").read()
m = re.search(r"<!-- transfer-suite-table -->\n(.*?)<!-- /transfer-suite-table -->", text, re.S)
if not m:
    sys.exit(f"{path}: no transfer-suite-table markers")

rows = {}
for line in m.group(1).splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 7 or not re.match(r"^(\d+|all)$", cells[1]):
        continue
    mean = lambda c: float(c.split("±")[0]) if c and c[0].isdigit() else float("nan")
    rows[(cells[0], cells[1])] = [mean(c) for c in cells[2:7]]  # recipe, scratch, linear, sklearn, fastText


def asks(best_peer):
    return best_peer + ((100 - best_peer) / 2 if best_peer > 94 else 3)


print("| set | labels | better peer | the bar asks | recipe | short by | best arm with every label |")
print("|---|---|---|---|---|---|---|")
for (ds, budget), v in rows.items():
    if budget == "all":
        continue
    peer = max(v[3], v[4])
    ask = asks(peer)
    ceiling = max(x for x in rows[(ds, "all")] if x == x)
    short = ask - v[0]
    flag = " — above every arm with all labels" if ask > ceiling else ""
    print(f"| {ds} | {budget} | {peer:.1f} | {ask:.2f} | {v[0]:.1f} | "
          f"{max(short, 0):.1f} | {ceiling:.1f}{flag} |")
