#!/usr/bin/python3
"""Writes a random-weight LLaMA-family model directory (config.json + model.safetensors) with numpy,
for comparing the engine with tools/hf_llama_ref.py.

usage: make_random_model.py OUT_DIR CONFIG_JSON DTYPE SEED     (DTYPE: F32 | F16 | BF16)
"""
import json
import os
import struct
import sys

import numpy as np

out, cfg, dtype, seed = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
rng = np.random.default_rng(seed)
D, F, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
H = cfg["num_attention_heads"]
KV = cfg.get("num_key_value_heads", H)
hd = cfg.get("head_dim") or D // H
V = cfg["vocab_size"]

shapes = {"model.embed_tokens.weight": (V, D), "model.norm.weight": (D,)}
if not cfg.get("tie_word_embeddings"):
    shapes["lm_head.weight"] = (V, D)
for i in range(L):
    p = f"model.layers.{i}."
    shapes.update({p + "input_layernorm.weight": (D,), p + "post_attention_layernorm.weight": (D,),
                   p + "self_attn.q_proj.weight": (H * hd, D), p + "self_attn.k_proj.weight": (KV * hd, D),
                   p + "self_attn.v_proj.weight": (KV * hd, D), p + "self_attn.o_proj.weight": (D, H * hd),
                   p + "mlp.gate_proj.weight": (F, D), p + "mlp.up_proj.weight": (F, D), p + "mlp.down_proj.weight": (D, F)})

def encode(x):
    if dtype == "F32":
        return x.astype("<f4").tobytes()
    if dtype == "F16":
        return x.astype("<f2").tobytes()
    bits = x.astype("<f4").view("<u4")
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()  # round to nearest even

header, blobs, offset = {}, [], 0
for name, shape in shapes.items():
    if name.endswith("norm.weight"):
        x = 1.0 + 0.1 * rng.standard_normal(shape)
    else:
        x = rng.standard_normal(shape) / np.sqrt(shape[-1])
    b = encode(x)
    header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(b)]}
    blobs.append(b)
    offset += len(b)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(cfg, f)
