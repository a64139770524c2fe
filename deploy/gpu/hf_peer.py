#!/usr/bin/env python3
"""The side-by-side peer of LongDoc's GPU benchmark: Hugging Face transformers on the same GPU,
LlamaForCausalLM with the Index-1.9B-32K shape (random BF16 weights, sdpa attention), the same
shapes as io.longdoc.engine.cuda.GpuBench. Writes one JSON object.

    python3 deploy/gpu/hf_peer.py --out hf.json [--layers 36]
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def sync():
    torch.cuda.synchronize()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="hf-peer.json")
    ap.add_argument("--layers", type=int, default=36)
    ap.add_argument("--peak-tflops", type=float, default=989.0)
    ap.add_argument("--hbm-tbps", type=float, default=4.8)
    a = ap.parse_args()

    cfg = LlamaConfig(hidden_size=2048, intermediate_size=5888, num_hidden_layers=a.layers, num_attention_heads=16,
                      num_key_value_heads=16, vocab_size=65029, max_position_embeddings=32768, rope_theta=320000.0,
                      rms_norm_eps=1e-6, tie_word_embeddings=False, torch_dtype="bfloat16")
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    params = sum(p.numel() for p in model.parameters())
    result = {"peer": "transformers %s, torch %s, LlamaForCausalLM (Index shape), bf16, sdpa" % (
        __import__("transformers").__version__, torch.__version__), "device": torch.cuda.get_device_name(0),
        "parameters": params, "prefill": [], "decode": []}

    def forward_last(ids, **kw):
        try:
            return model(input_ids=ids, logits_to_keep=1, **kw)
        except TypeError:
            return model(input_ids=ids, num_logits_to_keep=1, **kw)

    with torch.inference_mode():
        prefill32k = None
        for tokens in (4096, 16384, 32768):
            ids = torch.randint(3, cfg.vocab_size, (1, tokens), device="cuda")
            forward_last(ids[:, :2048], use_cache=False)
            sync()
            t = time.perf_counter()
            forward_last(ids, use_cache=False)
            sync()
            s = time.perf_counter() - t
            flops = 2.0 * (params - 2 * cfg.vocab_size * cfg.hidden_size) * tokens + 2.0 * tokens * tokens * cfg.hidden_size * cfg.num_hidden_layers
            result["prefill"].append({"tokens": tokens, "seconds": s, "tokens_per_second": tokens / s,
                                      "mfu": flops / s / (a.peak_tflops * 1e12)})
            if tokens == 32768:
                prefill32k = s
            del ids
            torch.cuda.empty_cache()

        step12 = None
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        weight_bytes = 2 * params
        for batch, context in ((1, 32768), (4, 32768), (12, 32768), (32, 8192)):
            entry = {"sequences": batch, "context": context}
            try:
                from transformers import DynamicCache
                cache = DynamicCache()
                for layer in range(cfg.num_hidden_layers):
                    k = torch.randn(batch, cfg.num_key_value_heads, context - 1, head_dim, device="cuda", dtype=torch.bfloat16)
                    cache.update(k, torch.randn_like(k), layer)
                ids = torch.randint(3, cfg.vocab_size, (batch, 1), device="cuda")
                pos = torch.full((batch, 1), context - 1, device="cuda")
                # The cache grows by one token per step; a few steps keep it at about `context`.
                for _ in range(2):
                    model(input_ids=ids, past_key_values=cache, position_ids=pos, use_cache=True)
                sync()
                steps = 5
                t = time.perf_counter()
                for _ in range(steps):
                    model(input_ids=ids, past_key_values=cache, position_ids=pos, use_cache=True)
                sync()
                s = (time.perf_counter() - t) / steps
                kv_bytes = batch * context * 2 * cfg.num_hidden_layers * cfg.hidden_size * 2
                entry.update({"step_ms": s * 1e3, "tokens_per_second": batch / s,
                              "effective_hbm_tbps": (weight_bytes + kv_bytes) / s / 1e12,
                              "hbm_share": (weight_bytes + kv_bytes) / s / (a.hbm_tbps * 1e12)})
                if batch == 12:
                    step12 = s
                del cache
            except torch.cuda.OutOfMemoryError as e:
                entry["skipped"] = "out of GPU memory: " + str(e).splitlines()[0]
            torch.cuda.empty_cache()
            result["decode"].append(entry)
        if prefill32k and step12:
            result["documents_per_hour_32k_256"] = 12 * 3600 / (12 * prefill32k + 256 * step12)

    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
