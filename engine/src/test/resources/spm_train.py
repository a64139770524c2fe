#!/usr/bin/python3
"""Trains a small SentencePiece BPE model with the sentencepiece library, so tests can check
normalizer and trainer settings that no shared tokenizer has (an NFKC precompiled charsmap,
pieces spanning whitespace, whitespace as suffix).

usage: spm_train.py CORPUS_TXT MODEL_PREFIX OPTIONS_JSON
"""
import json
import sys

import sentencepiece

options = json.loads(sys.argv[3])
sentencepiece.SentencePieceTrainer.train(
    input=sys.argv[1], model_prefix=sys.argv[2], model_type="bpe", minloglevel=2, **options)
