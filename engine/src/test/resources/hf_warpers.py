#!/usr/bin/python3
"""Hugging Face generate's sampling warpers in numpy, step for step as transformers writes them
(TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper with min_tokens_to_keep=1, then
softmax), in float64. Reads a JSON list of {"logits", "temperature", "top_k", "top_p"} on stdin and
prints the JSON list of probability vectors.
"""
import json
import sys

import numpy as np


def softmax(x):
    e = np.exp(x - np.max(x))
    return e / e.sum()


out = []
for case in json.load(sys.stdin):
    scores = np.array(case["logits"], dtype=np.float64) / case["temperature"]
    k = case["top_k"]
    if k > 0:
        k = min(k, scores.size)
        kth = np.sort(scores)[-k]                       # torch.topk(scores, k)[0][..., -1]
        scores = np.where(scores < kth, -np.inf, scores)
    p = case["top_p"]
    if p < 1.0:
        order = np.argsort(scores, kind="stable")       # ascending, as torch.sort(descending=False)
        cumulative = np.cumsum(softmax(scores[order]))
        remove = cumulative <= (1 - p)
        remove[-1:] = False                             # min_tokens_to_keep = 1
        scores[order[remove]] = -np.inf
    out.append(softmax(scores).tolist())
print(json.dumps(out))
