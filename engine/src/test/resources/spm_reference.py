#!/usr/bin/python3
"""Reference encodings from the sentencepiece library (Debian's python3-sentencepiece).

usage: spm_reference.py TOKENIZER_MODEL TEXTS_JSONL OUT_JSONL
Each input line is a JSON string; each output line is the JSON list of its ids (no BOS/EOS).
"""
import json
import sys

import sentencepiece

sp = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as src, open(sys.argv[3], "w") as out:
    for line in src:
        out.write(json.dumps(sp.encode(json.loads(line))) + "\n")
