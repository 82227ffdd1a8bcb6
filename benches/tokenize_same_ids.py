"""Checks that warmstart's encoded ids are the ids HF tokenizers gives with warmstart's own
tokenizer.json, so the tokenize throughput row compares equal work with equal output.

    python benches/tokenize_same_ids.py ARTEFACT_DIR TEXTS.csv DATASET

ARTEFACT_DIR is a tokenize entry's files/ folder (tokenizer.json + DATASET.seq). Prints one
line: rows, tokens, rows whose ids differ; exits 1 if any differ. Used by core_bench.sh.
"""
import csv
import sys

import numpy as np
from tokenizers import Tokenizer

MAGIC = 8  # b"WSSEQ\0\0\x01", see src/seqfile.rs


def main():
    art, texts_csv, name = sys.argv[1:4]
    tok = Tokenizer.from_file(f"{art}/tokenizer.json")
    with open(texts_csv, newline="", encoding="utf-8") as f:
        texts = [row["text"] for row in csv.DictReader(f)]
    b = open(f"{art}/{name}.seq", "rb").read()
    n = int.from_bytes(b[MAGIC : MAGIC + 8], "little")
    total = int.from_bytes(b[MAGIC + 8 : MAGIC + 16], "little")
    at = MAGIC + 16
    offsets = np.frombuffer(b, dtype="<u8", count=n + 1, offset=at)
    ids = np.frombuffer(b, dtype="<u4", count=total, offset=at + 8 * (n + 1))
    assert n == len(texts), f"{n} encoded rows, {len(texts)} texts"
    enc = tok.encode_batch(texts, add_special_tokens=False)
    bad = sum(ids[offsets[i] : offsets[i + 1]].tolist() != e.ids for i, e in enumerate(enc))
    print(f"{n} rows, {total} tokens, {bad} rows with ids other than HF tokenizers' encode")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
