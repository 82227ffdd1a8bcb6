#!/usr/bin/env python3
"""Generate warmstart's bundled quickstart dataset (synthetic product reviews).

    python3 datasets/make_quickstart.py           # (re)write datasets/quickstart/*
    python3 datasets/make_quickstart.py --check   # baselines on the files already written

Standard library only, fully deterministic: every random choice comes from
random.Random(SEED), nothing iterates over a set or dict in hash order, and the files are
written as UTF-8 with "\\n" line endings, so a rerun gives byte-identical files.

Design (see datasets/README.md): sentiment lives only in 96 "polar" adjectives. The small
labelled training set almost only uses 6 "seen" words per polarity; dev/test use all 48 words
per polarity uniformly, so most test rows hinge on words that are rare or absent in train.
The unlabelled text uses all 96 polar words equally often, always next to context phrases
typical of their polarity ("five stars", "sent it back", ...), so a model pretrained on it
(masked LM, next-word LM, word2vec/CBOW) learns that a rare word behaves like the seen words of
its polarity. That is the advantage pretraining should show on test.
"""

import csv
import hashlib
import math
import os
import random
import sys

SEED = 2026
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "quickstart")

N_UNLABELLED = 24_000
NEUTRAL_UNLABELLED_FRACTION = 0.20
UNLABELLED_FRAME_PROB = 0.3  # share of unlabelled lines with a neutral lead-in/tail
SPLITS = (("train", 800), ("dev", 400), ("test", 1600))  # generated in this order
NEG_FRACTION = 0.45  # so the majority class ("positive") is 55 %
TRAIN_SEEN_PROB = 0.90  # train: 90 % of polar words from the 6 seen words, 10 % from the rare
TRAIN_LABEL_NOISE = 0.02  # flipped labels, train only
N_SEEN = 6
MIN_WORDS, MAX_WORDS = 6, 20  # labelled text length, in words

# --- polar words: the only label signal ---------------------------------------------------

POSITIVE = """
admirable amazing awesome brilliant charming comfortable commendable dazzling delightful
dependable durable elegant excellent exceptional exquisite fabulous fantastic flawless
glorious gorgeous handy ideal impressive incredible intuitive lovely magnificent marvelous
nifty outstanding perfect phenomenal pleasant pristine reliable remarkable robust sensational
splendid spotless stellar stunning sturdy sublime superb superior terrific wonderful
""".split()

NEGATIVE = """
abysmal annoying appalling atrocious awful broken clunky cracked crummy defective deplorable
dismal dodgy dreadful faulty feeble flawed flimsy fragile frustrating ghastly hideous horrendous
horrible inadequate inferior infuriating laughable leaky lousy mediocre miserable nasty
overpriced pathetic pitiful rotten shabby shoddy sloppy substandard terrible unbearable
unreliable unusable useless wobbly worthless
""".split()

# --- neutral filler, shared by labelled and unlabelled text, drawn independently of labels ---

NOUNS = """
alarm apron backpack bathrobe beanie bicycle binoculars blanket blender bookcase bottle
briefcase bucket cabinet calculator camera candle carpet chair charger clock colander
comforter cooler cushion desk doormat drill dresser duvet easel fan faucet flashlight flask
fryer grill hairdryer hammer hammock headlamp headset heater helmet humidifier iron jacket
kettle keyboard ladle lamp ladder lantern laptop lunchbox mailbox mattress microphone mixer
monitor mop mouse mug nightstand notebook organizer oven padlock pan pillow planter printer
projector purse radio raincoat rake razor recliner rug router sandal saucepan scale scanner
scarf scooter shaver shelf shovel skateboard skillet sleeve slipper sofa speaker spatula
stapler stool stroller suitcase sweater table tablet teapot tent thermometer thermos toaster
toolbox toothbrush towel treadmill tripod trolley tumbler umbrella vacuum vase wallet
watch wetsuit whisk wok
""".split()

PARTS = """
antenna base battery blade bristle button buckle cable cap clasp clip cord cover cushion
dial display drawer filter frame grip handle hinge hook knob latch leg lens lid lining
nozzle plug pocket remote screen seam sole spout stand strap switch tray trigger wheel
zipper
""".split()

DESCRIPTORS = """
beige black blue bronze brown ceramic copper corded cotton cream denim folding glass gold
green grey khaki large lavender leather linen maroon medium metal navy nylon olive orange
pink plastic purple red round rubber silver small square steel striped tall teal white wicker
wireless wooden wool yellow
""".split()

ADVERBS = """
absolutely altogether entirely extremely fairly frankly genuinely honestly overall quite
rather really so somewhat surprisingly thoroughly totally truly unusually very
""".split()

BUY = ["bought", "ordered", "got", "picked up", "received", "chose", "purchased", "fetched"]
TIMES = [
    "yesterday", "last week", "last month", "on monday", "on tuesday", "on friday",
    "on sunday", "in march", "in june", "in october", "this spring", "this autumn",
    "over the weekend", "a week ago", "before the holidays", "last winter", "last summer",
    "two days ago", "earlier today", "after christmas",
]
WHO = [
    "my brother", "my sister", "my neighbour", "my wife", "my husband", "my dad", "my mum",
    "a friend", "my roommate", "my coworker", "my uncle", "my aunt", "my cousin", "my son",
    "my daughter", "my grandma", "my grandpa", "my partner", "my boss", "my landlord",
]
PLACES = [
    "in the kitchen", "at the office", "in the garage", "on the balcony", "in the car",
    "at home", "in the bedroom", "on the desk", "in the garden", "at the cabin",
    "in the hallway", "in the basement", "on the porch", "in the attic", "at the studio",
    "in the bathroom", "on the boat", "at the campsite", "in the dorm", "at the shop",
]
DURATIONS = [
    "a week", "a month", "two weeks", "a year", "three days", "six months", "nine days",
    "a fortnight", "two months", "a season",
]
SEEMS = ["looks", "feels", "seems", "is", "turned out", "appears", "proved", "came across as"]

# Neutral lead-ins and tails put around every labelled template (and around some unlabelled
# lines, so that both follow the same neutral distribution).
LEADS = ["{k}", "ok so", "well", "update", "quick note", "for the record", "to be fair",
         "in short", "as expected", "first time buyer", "as {v} requested"]
TAILS = [
    "{h}", "for {o}", "it came in a {e} box", "{o} has the same {n}",
    "we also have a {e} {m}", "beside the {m}", "it replaced our old {m}",
    "bought as a gift for {o}", "with the {e} {g}", "shipped to us {j}",
    "same as the {m} {o} uses", "the {e} version", "we use it {h} with the {m}",
    "it matches the {e} {m} {h}", "{o} borrowed it {j}", "delivered {j} with a {e} {m}",
]

# Labelled templates. {p} and {q} are polar words of the row's label; everything else is
# neutral. Templates with {q} carry two polar words.
LABELLED_TEMPLATES = [
    "the {d} {n} i {b} {t} is {a} {p}",
    "{w} says the {n} is {a} {p}",
    "this {n} {s} {a} {p} {l}",
    "i {b} a {d} {n} {t} and it is {p}",
    "a {p} {n} for use {l}",
    "the {n} arrived {t} and {s} {a} {p}",
    "we use the {d} {n} {l} and find it {p}",
    "{p} {n} with a {d} {r}",
    "the {r} on this {d} {n} is {a} {p}",
    "{w} gave me this {n} {t} and it {s} {p}",
    "after {u} the {n} is still {a} {p}",
    "the {n} and its {r} are {a} {p}",
    "i keep the {d} {n} {l} it is {p}",
    "{w} {b} the same {n} {t} and finds it {p}",
    "the {n} {w} {b} {t} {s} {p}",
    "i have had this {d} {n} for {u} and it is {a} {p}",
    "the {r} of my {n} {s} {p}",
    "{p} {n} {l}",
    "this {d} {n} is {p} for the price",
    "my {n} arrived {t} the {r} is {a} {p}",
    "the {n} is {p} and the {r} is {a} {q}",
    "a {p} {d} {n} with a {q} {r}",
    "{t} i {b} this {n} it is {a} {p} and {q}",
    "the {d} {n} {s} {p} and the {r} {s} {q}",
]

# Unlabelled templates. {pre}/{post}: context phrases of the polar word's polarity.
UNLABELLED_POLAR_TEMPLATES = [
    "{pre} {p} {n}",
    "{pre} {p} {d} {n}",
    "the {n} is {a} {p} {post}",
    "{p} {n} {post}",
    "{w} thinks the {n} is {p} {post}",
    "{pre} {p} {n} {post}",
    "the {r} on the {n} is {p} {post}",
    "{pre} {p} and {q} {n}",
    "the {n} i {b} {t} is {a} {p} {post}",
    "{post} the {n} is {p}",
    "{post} this {n} {s} {a} {p}",
    "{pre} {a} {p} {n} {l}",
]
UNLABELLED_NEUTRAL_TEMPLATES = [
    "i {b} the {d} {n} {t}",
    "{w} uses the {n} {l}",
    "the {n} came with a {d} {r}",
    "the {r} of the {n} is {d}",
    "we keep the {d} {n} {l}",
    "{w} {b} a {n} {t}",
    "the {n} arrived {t} in a {d} box",
    "i use the {n} {l} every day",
    "after {u} the {n} still has its {d} {r}",
    "{w} wondered where i {b} the {d} {n}",
]

# Context phrases: only in the unlabelled text, each typical of one polarity. "pre" phrases
# come right before the polar word, "post" phrases after the clause with it.
CONTEXT = {
    "positive": {
        "pre": [
            "i would happily recommend this", "glad i splurged on this", "five stars for this",
            "thrilled to own this", "my kids adore this", "cannot stop praising this",
            "highly recommend this", "zero regrets about this", "ten out of ten for this",
            "grateful i found this", "love love love this", "proud to own this",
            "thank you seller for this", "overjoyed with this", "everyone should own this",
            "best purchase of my life was this",
        ],
        "post": [
            "five stars", "will buy again", "worth every penny", "highly recommended",
            "a real bargain", "exceeded my expectations", "buying a second soon",
            "recommend it to everyone", "thank you seller", "glad i splurged on it",
            "happy customer here", "ten out of ten", "best purchase ever",
            "my kids adore it", "zero regrets", "would gladly buy it twice",
        ],
    },
    "negative": {
        "pre": [
            "asked for a refund on this", "one star for this", "i regret buying this",
            "never again will i buy this", "avoid this", "complained to the seller about this",
            "i want my money back for this", "do not waste money on this",
            "stay away from this", "worst purchase of my life was this",
            "filed a complaint about this", "sorry i ever paid for this", "angry about this",
            "returned this", "warning do not buy this", "disgusted by this",
        ],
        "post": [
            "asked for a refund", "one star", "sent it back", "waste of money",
            "never buying again", "returned it the next day", "want my money back",
            "avoid at all costs", "complete ripoff", "regret buying it", "filed a complaint",
            "worst purchase ever", "do not buy", "total letdown", "straight back to the store",
            "demanding a refund",
        ],
    },
}

LABELS = ("negative", "positive")


def polar_split():
    """Deterministic split of each polarity's 48 words into 6 seen and 42 rare words."""
    rng = random.Random(SEED)
    split = {}
    for label, words in (("negative", NEGATIVE), ("positive", POSITIVE)):
        words = sorted(words)
        seen = sorted(rng.sample(words, N_SEEN))
        split[label] = {"all": words, "seen": seen, "rare": [w for w in words if w not in seen]}
    return split


def fill(template, rng, extra):
    """Fill a template's neutral slots from rng (in a fixed slot order), polar slots from extra."""
    # Lead-ins and tails have slots of their own (k v / e g h j m o), so that they never
    # repeat a phrase of the template they frame.
    choices = {
        "n": NOUNS, "m": NOUNS, "r": PARTS, "g": PARTS, "d": DESCRIPTORS, "e": DESCRIPTORS,
        "a": ADVERBS, "b": BUY, "t": TIMES, "k": TIMES, "j": TIMES, "w": WHO, "v": WHO,
        "o": WHO, "l": PLACES, "h": PLACES, "u": DURATIONS, "s": SEEMS,
    }
    values = dict(extra)
    for slot in sorted(choices):  # always draw every slot: rng use independent of template
        values[slot] = rng.choice(choices[slot])
    return template.format(**values)


def frame(rng, template, prob):
    """With probability prob, put a random neutral lead-in and tail around template."""
    if rng.random() >= prob:
        return template
    return " ".join(x for x in (rng.choice(LEADS), template, rng.choice(TAILS)) if x)


def draw_polar(rng, words, seen_prob, exclude=None):
    """One polar word: from the seen words with probability seen_prob, else from the rare."""
    while True:
        if seen_prob is None:
            w = rng.choice(words["all"])
        elif rng.random() < seen_prob:
            w = rng.choice(words["seen"])
        else:
            w = rng.choice(words["rare"])
        if w != exclude:
            return w


def make_labelled(rng, n, split, seen_prob, noise, taken):
    n_neg = round(n * NEG_FRACTION)
    labels = ["negative"] * n_neg + ["positive"] * (n - n_neg)
    rng.shuffle(labels)
    rows = []
    for label in labels:
        while True:
            template = frame(rng, rng.choice(LABELLED_TEMPLATES), 1.0)
            p = draw_polar(rng, split[label], seen_prob)
            q = draw_polar(rng, split[label], seen_prob, exclude=p)
            text = fill(template, rng, {"p": p, "q": q})
            if MIN_WORDS <= len(text.split()) <= MAX_WORDS and text not in taken:
                break
        taken.add(text)
        rows.append([text, label])
    if noise:
        # Flip the same number in each class, so the class balance stays as designed.
        k = round(n * noise / 2)
        flip = []
        for label in LABELS:
            flip += rng.sample([i for i, r in enumerate(rows) if r[1] == label], k)
        for i in sorted(flip):
            rows[i][1] = "positive" if rows[i][1] == "negative" else "negative"
    return rows


def make_unlabelled(rng, split):
    n_neutral = round(N_UNLABELLED * NEUTRAL_UNLABELLED_FRACTION)
    n_polar = N_UNLABELLED - n_neutral
    polar = [(label, w) for label in LABELS for w in split[label]["all"]]
    # Every polar word equally often (as the main polar word of a line).
    reps = -(-n_polar // len(polar))
    schedule = (polar * reps)[:n_polar]
    rng.shuffle(schedule)
    kinds = ["polar"] * n_polar + ["neutral"] * n_neutral
    rng.shuffle(kinds)
    lines, it = [], iter(schedule)
    for kind in kinds:
        if kind == "neutral":
            template = frame(rng, rng.choice(UNLABELLED_NEUTRAL_TEMPLATES), UNLABELLED_FRAME_PROB)
            lines.append(fill(template, rng, {}))
            continue
        label, p = next(it)
        ctx = CONTEXT[label]
        q = draw_polar(rng, split[label], None, exclude=p)
        extra = {"p": p, "q": q, "pre": rng.choice(ctx["pre"]), "post": rng.choice(ctx["post"])}
        template = frame(rng, rng.choice(UNLABELLED_POLAR_TEMPLATES), UNLABELLED_FRAME_PROB)
        lines.append(fill(template, rng, extra))
    return lines


def self_test(split, labelled, lines):
    """Design invariants; any failure is a bug in this script."""
    for label in LABELS:
        assert len(split[label]["all"]) == 48 == len(set(split[label]["all"])), label
    polar = set(POSITIVE) | set(NEGATIVE)
    assert len(polar) == 96
    neutral_words = set()
    groups = (NOUNS, PARTS, DESCRIPTORS, ADVERBS, BUY, TIMES, WHO, PLACES, DURATIONS, SEEMS,
              LEADS, TAILS)
    for group in groups:
        for phrase in group:
            neutral_words.update(phrase.split())
    for t in LABELLED_TEMPLATES + UNLABELLED_POLAR_TEMPLATES + UNLABELLED_NEUTRAL_TEMPLATES:
        neutral_words.update(t.split())
    neutral_words = {w for w in neutral_words if not w.startswith("{")}
    assert not (neutral_words & polar), sorted(neutral_words & polar)
    ctx_words = set()
    phrases = []
    for label in LABELS:
        for side in ("pre", "post"):
            assert len(CONTEXT[label][side]) >= 15
            phrases += CONTEXT[label][side]
            for phrase in CONTEXT[label][side]:
                ctx_words.update(phrase.split())
    assert not (ctx_words & polar), sorted(ctx_words & polar)
    labelled_vocab = set()
    for rows in labelled.values():
        for text, _ in rows:
            words = text.split()
            assert MIN_WORDS <= len(words) <= MAX_WORDS, text
            labelled_vocab.update(words)
            padded = f" {text} "
            for phrase in phrases:
                assert f" {phrase} " not in padded, (phrase, text)
    # Context phrases may share only function words with the labelled text.
    shared = sorted(ctx_words & labelled_vocab)
    allowed = {"a", "and", "at", "for", "i", "is", "it", "me", "my", "of", "on", "out", "the",
               "this", "to", "was", "with"}
    assert set(shared) <= allowed, shared
    assert all(line and "  " not in line and line == line.strip() for line in lines)


def write_csv(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        w.writerows(rows)


def read_csv(path):
    with open(path, encoding="utf-8", newline="") as f:
        r = csv.reader(f)
        assert next(r) == ["text", "label"]
        return [(t, l) for t, l in r]


def polar_of(text, lexicon):
    return [w for w in text.split() if w in lexicon]


def summary(split):
    lexicon = {w: label for label in LABELS for w in split[label]["all"]}
    data = {name: read_csv(os.path.join(OUT_DIR, f"{name}.csv")) for name, _ in SPLITS}
    train_words = set()
    for text, _ in data["train"]:
        train_words.update(polar_of(text, lexicon))
    print(f"seen words  negative: {' '.join(split['negative']['seen'])}")
    print(f"            positive: {' '.join(split['positive']['seen'])}")
    print(f"polar words occurring in train: {len(train_words)}/96")
    train_counts = {}
    for text, _ in data["train"]:
        for w in polar_of(text, lexicon):
            train_counts[w] = train_counts.get(w, 0) + 1
    hist = [0, 0, 0, 0]
    for label in LABELS:
        for w in split[label]["rare"]:
            hist[min(train_counts.get(w, 0), 3)] += 1
    print(f"rare polar words by count in train: 0: {hist[0]}, 1: {hist[1]}, 2: {hist[2]}, "
          f"3+: {hist[3]} (of 84)")
    for name, _ in SPLITS:
        rows = data[name]
        neg = sum(1 for _, l in rows if l == "negative")
        lens = [len(t.split()) for t, _ in rows]
        only_seen = sum(
            all(w in split[lexicon[w]]["seen"] for w in polar_of(t, lexicon)) for t, _ in rows)
        unseen = sum(all(w not in train_words for w in polar_of(t, lexicon)) for t, _ in rows)
        print(f"{name:5s} rows {len(rows):5d}  negative {neg / len(rows):.1%}  "
              f"positive {1 - neg / len(rows):.1%}  words {min(lens)}-{max(lens)} "
              f"(mean {sum(lens) / len(lens):.1f})  only seen polar words {only_seen / len(rows):.1%}"
              f"  polar words never in train {unseen / len(rows):.1%}")
    with open(os.path.join(OUT_DIR, "unlabelled.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")[:-1]
    counts = {}
    for line in lines:
        for w in polar_of(line, lexicon):
            counts[w] = counts.get(w, 0) + 1
    polar_lines = sum(1 for line in lines if polar_of(line, lexicon))
    print(f"unlabelled lines {len(lines)}  with polar words {polar_lines / len(lines):.1%}  "
          f"per polar word {min(counts.values())}-{max(counts.values())} occurrences  "
          f"mean words {sum(len(x.split()) for x in lines) / len(lines):.1f}")
    total = 0
    for name in ("unlabelled.txt", "train.csv", "dev.csv", "test.csv"):
        path = os.path.join(OUT_DIR, name)
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        size = os.path.getsize(path)
        total += size
        print(f"{name:15s} {size:9d} bytes  sha256 {digest}")
    print(f"{'total':15s} {total:9d} bytes")


def generate():
    split = polar_split()
    rng = random.Random(SEED)
    taken = set()  # texts already used: no text repeats within or across splits
    labelled = {}
    for name, n in SPLITS:
        seen_prob = TRAIN_SEEN_PROB if name == "train" else None
        noise = TRAIN_LABEL_NOISE if name == "train" else 0.0
        labelled[name] = make_labelled(rng, n, split, seen_prob, noise, taken)
    lines = make_unlabelled(rng, split)
    self_test(split, labelled, lines)
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, _ in SPLITS:
        write_csv(os.path.join(OUT_DIR, f"{name}.csv"), labelled[name])
    with open(os.path.join(OUT_DIR, "unlabelled.txt"), "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    summary(split)


# --- --check: baselines on the written files --------------------------------------------------


def naive_bayes(train, alpha=1.0):
    counts = {label: {} for label in LABELS}
    totals = {label: 0 for label in LABELS}
    docs = {label: 0 for label in LABELS}
    vocab = set()
    for text, label in train:
        docs[label] += 1
        for w in text.split():
            counts[label][w] = counts[label].get(w, 0) + 1
            totals[label] += 1
            vocab.add(w)
    v = len(vocab)

    def predict(text):
        best = None
        for label in LABELS:
            score = math.log(docs[label] / len(train))
            for w in text.split():
                if w in vocab:  # words never seen in train are ignored
                    score += math.log((counts[label].get(w, 0) + alpha) / (totals[label] + alpha * v))
            if best is None or score > best[0]:
                best = (score, label)
        return best[1]

    return predict


def accuracy(predict, rows):
    return sum(predict(t) == l for t, l in rows) / len(rows)


def induce_lexicon(split, window=3):
    """How much polarity the unlabelled text carries: label each polar word by the cosine of
    its co-occurrence vector (within `window` words) to the seen words of each polarity."""
    polar = {w for label in LABELS for w in split[label]["all"]}
    vecs = {w: {} for w in sorted(polar)}
    with open(os.path.join(OUT_DIR, "unlabelled.txt"), encoding="utf-8") as f:
        for line in f:
            words = line.split()
            for i, w in enumerate(words):
                if w in polar:
                    for c in words[max(0, i - window):i] + words[i + 1:i + 1 + window]:
                        if c not in polar:
                            vecs[w][c] = vecs[w].get(c, 0) + 1

    def cos(a, b):
        dot = sum(x * b.get(k, 0) for k, x in a.items())
        na = math.sqrt(sum(x * x for x in a.values()))
        nb = math.sqrt(sum(x * x for x in b.values()))
        return dot / (na * nb) if na and nb else 0.0

    lexicon = {}
    for w in sorted(polar):
        scores = {label: sum(cos(vecs[w], vecs[s]) for s in split[label]["seen"]) for label in LABELS}
        lexicon[w] = max(LABELS, key=lambda label: scores[label])
    return lexicon


def lexicon_predict(lexicon):
    def predict(text):
        votes = [lexicon[w] for w in text.split() if w in lexicon]
        neg = votes.count("negative")
        return "negative" if neg * 2 > len(votes) else "positive"  # ties/none: majority class
    return predict


def check():
    for name in ("unlabelled.txt", "train.csv", "dev.csv", "test.csv"):
        if not os.path.exists(os.path.join(OUT_DIR, name)):
            sys.exit(f"{OUT_DIR}/{name} is missing: run python3 {sys.argv[0]} first")
    split = polar_split()
    data = {name: read_csv(os.path.join(OUT_DIR, f"{name}.csv")) for name, _ in SPLITS}
    truth = {w: label for label in LABELS for w in split[label]["all"]}
    majority = max(LABELS, key=lambda label: sum(l == label for _, l in data["train"]))
    nb = naive_bayes(data["train"])
    oracle = lexicon_predict(truth)
    induced = induce_lexicon(split)
    rare = [w for label in LABELS for w in split[label]["rare"]]
    right = sum(induced[w] == truth[w] for w in rare)
    print(f"{'':38s} {'train':>7s} {'dev':>7s} {'test':>7s}")
    for name, predict in (
        (f"majority class ({majority})", lambda t: majority),
        ("naive Bayes, bag of words, on train", nb),
        ("oracle: true polarity of every word", oracle),
        ("lexicon induced from unlabelled.txt", lexicon_predict(induced)),
    ):
        accs = " ".join(f"{accuracy(predict, data[s]):7.1%}" for s in ("train", "dev", "test"))
        print(f"{name:38s} {accs}")
    print(f"rare polar words whose polarity the unlabelled co-occurrences recover "
          f"(from the 12 seen words only): {right}/{len(rare)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        check()
    elif sys.argv[1:]:
        sys.exit("usage: python3 datasets/make_quickstart.py [--check]")
    else:
        generate()
