#!/usr/bin/env python3
"""Checks that an adapter folder written by `nf4kit convert` is what PEFT loads, against the adapter it came from.

    peft_adapter_folder_check.py ORIGINAL_FOLDER CONVERTED_FOLDER DTYPE

PEFT's `PeftModel.from_pretrained` reads `adapter_config.json` (json) and `adapter_model.safetensors`
(`safetensors.torch.load_file`, falling back to `adapter_model.bin` only when there is no safetensors file), and
matches the state-dict keys to its modules. So the converted folder must hold those two files and no
`model.safetensors`, its `adapter_config.json` must be the original's bytes, and `adapter_model.safetensors` must
hold the original's tensor names and shapes, `{"format": "pt"}` metadata, and every value the original's float32
value rounded to DTYPE (F16 with numpy, BF16 with ml_dtypes, F32 unchanged; round to nearest even, as torch's
`.to(dtype)`). The original must be an adapter_model.safetensors of float32 factors.
Prints {"files": [...], "tensors": N}; exits 1 on any mismatch.
"""
import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors import deserialize, safe_open

original, converted, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
target = {"F16": np.float16, "BF16": ml_dtypes.bfloat16, "F32": np.float32}[dtype]
errors = []

files = sorted(os.listdir(converted))
for required in ("adapter_config.json", "adapter_model.safetensors"):
    if required not in files:
        errors.append("the folder has no %s (files: %s)" % (required, files))
if "model.safetensors" in files:
    errors.append("the folder holds model.safetensors, which PEFT does not load")

with open(os.path.join(original, "adapter_config.json"), "rb") as f:
    original_config = f.read()
with open(os.path.join(converted, "adapter_config.json"), "rb") as f:
    converted_config = f.read()
if converted_config != original_config:
    errors.append("adapter_config.json differs from the original")
if json.loads(converted_config).get("peft_type") != "LORA":
    errors.append("adapter_config.json has no peft_type LORA")


def read(path):
    with open(path, "rb") as f:
        return {name: info for name, info in deserialize(f.read())}


def values(info):
    kind = {"F16": np.float16, "BF16": ml_dtypes.bfloat16, "F32": np.float32}[info["dtype"]]
    return np.frombuffer(bytes(info["data"]), dtype=kind).reshape(info["shape"])


source = read(os.path.join(original, "adapter_model.safetensors"))
written_path = os.path.join(converted, "adapter_model.safetensors")
written = read(written_path)
with safe_open(written_path, framework="np") as f:
    if f.metadata() != {"format": "pt"}:
        errors.append("metadata %r, expected {'format': 'pt'}" % (f.metadata(),))
if sorted(source) != sorted(written):
    errors.append("tensor names differ: %s" % sorted(set(source) ^ set(written)))
for name in sorted(set(source) & set(written)):
    a, b = source[name], written[name]
    if a["dtype"] != "F32":
        errors.append("%s: the original is %s, this check needs F32" % (name, a["dtype"]))
        continue
    if b["dtype"] != dtype or list(b["shape"]) != list(a["shape"]):
        errors.append("%s: %s %s, expected %s %s" % (name, b["dtype"], b["shape"], dtype, a["shape"]))
        continue
    expected = values(a).astype(target)
    if expected.tobytes() != values(b).tobytes():
        errors.append("%s: values differ from the original rounded to %s" % (name, dtype))

for error in errors:
    print(error, file=sys.stderr)
print(json.dumps({"files": files, "tensors": len(written)}))
sys.exit(1 if errors else 0)
