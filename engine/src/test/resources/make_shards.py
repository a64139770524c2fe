#!/usr/bin/python3
"""Splits a model directory's model.safetensors into N shards named as Hugging Face names them
(model-0000k-of-0000N.safetensors) with model.safetensors.index.json, using only the standard library.

usage: make_shards.py SRC_DIR OUT_DIR N
"""
import json
import os
import shutil
import struct
import sys

src, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
names = [k for k in header if k != "__metadata__"]
os.makedirs(out, exist_ok=True)
for f in ("config.json", "tokenizer.model"):
    if os.path.exists(os.path.join(src, f)):
        shutil.copy(os.path.join(src, f), out)
weight_map = {}
for k in range(count):
    mine = names[k::count]   # interleaved, so every shard holds tensors of several layers
    shard = "model-%05d-of-%05d.safetensors" % (k + 1, count)
    h, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name in mine:
        t = header[name]
        a, b = t["data_offsets"]
        blobs.append(raw[8 + n + a: 8 + n + b])
        h[name] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [at, at + b - a]}
        at += b - a
        weight_map[name] = shard
    hj = json.dumps(h).encode()
    hj += b" " * ((-len(hj)) % 8)
    with open(os.path.join(out, shard), "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": len(raw) - 8 - n}, "weight_map": weight_map}, f, indent=2)
