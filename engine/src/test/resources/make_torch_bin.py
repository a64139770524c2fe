#!/usr/bin/python3
"""Rewrites a model directory's model.safetensors as pytorch_model.bin in torch.save's zip format
(protocol-2 pickle of an OrderedDict of tensors, storages stored uncompressed under data/), using
only the standard pickle and zipfile modules: stand-ins named like torch's classes make pickle
emit the same globals torch.save does.

usage: make_torch_bin.py SRC_DIR OUT_DIR [--evil MARKER | --like-torch | --cut-storage NAME | --corrupt KIND]
  --evil adds a call of os.system.
  --cut-storage stores half of tensor NAME's bytes (a corrupt checkpoint).
  --corrupt damages model.layers.1.mlp.up_proj.weight's record, KIND one of: wrong-type (its
  storage declared with another element type than its bytes), huge-offset (storage offset 2^62),
  huge-numel (storage of 2^62 elements), short-stride (one stride fewer than dimensions); or, for
  big-endian, the archive's byteorder record says "big".
  --like-torch writes what torch.save adds beyond that: the state dict's _metadata attribute (a
  BUILD opcode), one shared storage per dtype with each tensor at its own offset (as views and
  tied weights are), data records aligned to 64 bytes by padding in the local header's extra
  field, ZIP64 extra fields on every record, and the "archive/" prefix.
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
like_torch = len(sys.argv) > 3 and sys.argv[3] == "--like-torch"
cut = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--cut-storage" else None
corrupt = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--corrupt" else None
DAMAGED = "model.layers.1.mlp.up_proj.weight"

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
        if getattr(self, "short_stride", False):
            stride = stride[1:]
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
tensors = [x for x in header.items() if x[0] != "__metadata__"]
if like_torch:
    # One storage per dtype holding all its tensors, each at its own element offset.
    shared = {}
    for dtype in sorted({t["dtype"] for _, t in tensors}):
        parts = [raw[8 + n + t["data_offsets"][0]: 8 + n + t["data_offsets"][1]] for _, t in tensors if t["dtype"] == dtype]
        key = str(len(blobs))
        blobs[key] = b"".join(parts)
        shared[dtype] = [Storage(dtype, key, len(blobs[key]) // SIZE[dtype]), 0]
    for name, t in tensors:
        storage, offset = shared[t["dtype"]]
        state[name] = Tensor(storage, offset, t["shape"])
        shared[t["dtype"]][1] += (t["data_offsets"][1] - t["data_offsets"][0]) // SIZE[t["dtype"]]
    state._metadata = collections.OrderedDict((name.rsplit(".", 1)[0], {"version": 1}) for name, _ in tensors)
else:
    for i, (name, t) in enumerate(tensors):
        a, b = t["data_offsets"]
        key = str(i)
        blobs[key] = raw[8 + n + a: 8 + n + (b if name != cut else (a + b) // 2)]
        storage = Storage(t["dtype"], key, len(blobs[key]) // SIZE[t["dtype"]])
        state[name] = Tensor(storage, 0, t["shape"])
        if name == DAMAGED and corrupt == "wrong-type":
            storage.dtype = "F32" if t["dtype"] != "F32" else "F16"
        elif name == DAMAGED and corrupt == "huge-offset":
            state[name].offset = 2 ** 62
        elif name == DAMAGED and corrupt == "huge-numel":
            storage.numel = 2 ** 62
        elif name == DAMAGED and corrupt == "short-stride":
            state[name].short_stride = True
if evil:
    state["model.norm.weight"] = Evil()

os.makedirs(out, exist_ok=True)
shutil.copy(os.path.join(src, "config.json"), out)

def write(z, name, data):
    if not like_torch:
        z.writestr(name, data)
        return
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    # Local header: 30 bytes + name + extra (ZIP64's 20 bytes, added by force_zip64, then ours);
    # padding in an extra field of ours puts the data on a 64-byte boundary, as torch's writer does.
    start = z.fp.tell() + 30 + len(name.encode()) + 20 + 4
    info.extra = b"FB" + struct.pack("<H", (-start) % 64) + b"Z" * ((-start) % 64)
    with z.open(info, "w", force_zip64=True) as f:
        f.write(data.encode() if isinstance(data, str) else data)


prefix = "archive/" if like_torch else "pytorch_model/"
with zipfile.ZipFile(os.path.join(out, "pytorch_model.bin"), "w", zipfile.ZIP_STORED) as z:
    import io
    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    write(z, prefix + "data.pkl", buf.getvalue())
    write(z, prefix + "byteorder", "big" if corrupt == "big-endian" else "little")
    for key, blob in blobs.items():
        write(z, prefix + "data/" + key, blob)
    write(z, prefix + "version", "3\n")
