#!/usr/bin/python3
"""Copies a model directory, adding one F32 tensor of zeros to its model.safetensors.

usage: add_tensor.py SRC_DIR OUT_DIR NAME ROWS COLS
"""
import json
import os
import shutil
import struct
import sys

src, out, name, rows, cols = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
header[name] = {"dtype": "F32", "shape": [rows, cols], "data_offsets": [len(data), len(data) + 4 * rows * cols]}
data += bytes(4 * rows * cols)
hj = json.dumps(header).encode()
hj += b" " * ((-len(hj)) % 8)
os.makedirs(out, exist_ok=True)
for f in os.listdir(src):
    if f != "model.safetensors":
        shutil.copy(os.path.join(src, f), out)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hj)) + hj + data)
