#!/usr/bin/python3
"""Rewrites a model directory's model.safetensors as pytorch_model.bin in torch.save's zip format
(protocol-2 pickle of an OrderedDict of tensors, storages stored uncompressed under data/), using
only the standard pickle and zipfile modules: stand-ins named like torch's classes make pickle
emit the same globals torch.save does.

usage: make_torch_bin.py SRC_DIR OUT_DIR [--evil MARKER]   (--evil adds a call of os.system)
"""
import collections
import json
import os
import pickle
import shutil
import struct
import sys
import types
import zipfile

src, out = sys.argv[1], sys.argv[2]
evil = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--evil" else None

torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, torch_utils
torch._utils = torch_utils


def _storage_class(name):
    cls = type(name, (), {})
    cls.__module__ = "torch"
    setattr(torch, name, cls)
    return cls


STORAGE = {"F32": _storage_class("FloatStorage"), "F16": _storage_class("HalfStorage"), "BF16": _storage_class("BFloat16Storage")}
SIZE = {"F32": 4, "F16": 2, "BF16": 2}


def _rebuild_tensor_v2(*args):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2


class Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, numel


class Tensor:
    def __init__(self, storage, offset, shape):
        self.storage, self.offset, self.shape = storage, offset, shape

    def __reduce_ex__(self, protocol):
        stride, acc = [], 1
        for d in reversed(self.shape):
            stride.insert(0, acc)
            acc *= d
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + evil,))


class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", STORAGE[obj.dtype], obj.key, "cpu", obj.numel)
        return None


raw = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
state, blobs = collections.OrderedDict(), {}
for i, (name, t) in enumerate(x for x in header.items() if x[0] != "__metadata__"):
    a, b = t["data_offsets"]
    key = str(i)
    blobs[key] = raw[8 + n + a: 8 + n + b]
    storage = Storage(t["dtype"], key, (b - a) // SIZE[t["dtype"]])
    state[name] = Tensor(storage, 0, t["shape"])
if evil:
    state["model.norm.weight"] = Evil()

os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), out)
with zipfile.ZipFile(os.path.join(out, "pytorch_model.bin"), "w", zipfile.ZIP_STORED) as z:
    import io
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    z.writestr("pytorch_model/data.pkl", buf.getvalue())
    z.writestr("pytorch_model/byteorder", "little")
    for key, blob in blobs.items():
        z.writestr("pytorch_model/data/" + key, blob)
    z.writestr("pytorch_model/version", "3\n")
