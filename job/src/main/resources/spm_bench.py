#!/usr/bin/python3
"""The peer for `longdoc bench-tokenizer`: sentencepiece's C++ encoder through its Python
binding, one thread, over the same texts.

usage: spm_bench.py TOKENIZER_MODEL TEXTS_JSONL ROUNDS IDS_OUT
Prints one JSON object: {"seconds": best round, "tokens": ids per round, "version": ...}.
"""
import json
import sys
import time

import sentencepiece

sp = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    texts = [json.loads(line) for line in f]
rounds = int(sys.argv[3])
encode = sp.encode
best = None
for _ in range(rounds):
    start = time.perf_counter()
    ids = [encode(t) for t in texts]
    elapsed = time.perf_counter() - start
    best = elapsed if best is None else min(best, elapsed)
with open(sys.argv[4], "w") as out:
    for row in ids:
        out.write(json.dumps(row) + "\n")
print(json.dumps({"seconds": best, "tokens": sum(len(r) for r in ids), "version": sentencepiece.__version__}))
