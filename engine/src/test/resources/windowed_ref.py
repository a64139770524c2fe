"""../shared/tools/hf_llama_ref.py with Mistral's sliding window added to its causal mask.

usage: windowed_ref.py HF_LLAMA_REF.py MODEL_DIR logits ID ...

Position t attends to positions s with t - window < s <= t (Hugging Face's Mistral semantics for
config.json "sliding_window"). The reference builds its causal mask with np.triu; this wrapper hands
it a numpy whose triu also masks the positions that fell out of the window, and changes nothing else.
"""
import importlib.util
import json
import sys

import numpy as np

ref_path, model_dir = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("hf_llama_ref", ref_path)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
window = json.load(open(model_dir + "/config.json"))["sliding_window"]


class WindowedNumpy:
    def __getattr__(self, name):
        return getattr(np, name)

    def triu(self, m, k=0):
        causal = np.triu(m, k)
        t = np.arange(m.shape[0])[:, None]
        s = np.arange(m.shape[1])[None, :]
        return np.where(t - s >= window, -np.inf, causal)


ref.np = WindowedNumpy()
sys.argv = [ref_path] + sys.argv[2:]
ref.main()
