#!/usr/bin/env python3
"""Reads a safetensors file written by nf4kit with Python's `safetensors` and checks it against a manifest.

    safetensors_python_reads.py FILE MANIFEST PYTHON_COPY

MANIFEST (JSON, written by the Swift test): {"metadata": {...} or null, "tensors": {name: {"dtype", "shape", "hex"}}}.
Checks, for every tensor: `safetensors.deserialize` gives the dtype, shape and exact bytes; for dtypes numpy has,
`safetensors.numpy.load_file` and `safe_open(..., framework="np").get_tensor` give arrays with the numpy dtype,
shape and bytes; `safe_open(...).metadata()` equals the manifest's metadata.
Then writes the same tensors and metadata with Python's writer to PYTHON_COPY (`safetensors.numpy.save_file`
when every dtype is a numpy one, else `safetensors.serialize_file` with raw buffers) for a byte comparison.
Prints {"checked": [names], "numpy_checked": [names], "metadata": ...} on stdout; exits 1 on any mismatch.
"""
import json
import sys

import numpy as np
from safetensors import TensorSpec, deserialize, safe_open, serialize_file
from safetensors.numpy import load_file, save_file

NUMPY = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "U64": np.uint64,
         "I32": np.int32, "U32": np.uint32, "I16": np.int16, "U16": np.uint16, "I8": np.int8, "U8": np.uint8,
         "BOOL": np.bool_, "C64": np.complex64}
WRITER_NAMES = {"BF16": "bfloat16", "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
                "F8_E8M0": "float8_e8m0fnu", "F8_E4M3FNUZ": "float8_e4m3fnuz", "F8_E5M2FNUZ": "float8_e5m2fnuz",
                "F4": "float4_e2m1fn_x2", "F64": "float64", "F32": "float32", "F16": "float16", "I64": "int64",
                "U64": "uint64", "I32": "int32", "U32": "uint32", "I16": "int16", "U16": "uint16", "I8": "int8",
                "U8": "uint8", "BOOL": "bool", "C64": "complex64"}

path, manifest_path, copy_path = sys.argv[1:4]
with open(manifest_path, encoding="utf-8") as f:
    manifest = json.load(f)
expected = manifest["tensors"]
errors = []

with open(path, "rb") as f:
    raw = f.read()
found = dict(deserialize(raw))
if set(found) != set(expected):
    errors.append("names differ: file %s, manifest %s" % (sorted(found), sorted(expected)))
for name, want in expected.items():
    got = found.get(name)
    if got is None:
        continue
    if got["dtype"] != want["dtype"] or list(got["shape"]) != want["shape"] or bytes(got["data"]).hex() != want["hex"]:
        errors.append("%r: deserialize gave %s %s %s..., expected %s %s %s..." % (
            name, got["dtype"], got["shape"], bytes(got["data"]).hex()[:32], want["dtype"], want["shape"],
            want["hex"][:32]))

numpy_checked = []
with safe_open(path, framework="np") as f:
    metadata = f.metadata()
    for name, want in expected.items():
        if want["dtype"] not in NUMPY:
            continue
        array = f.get_tensor(name)
        if array.dtype != np.dtype(NUMPY[want["dtype"]]) or list(array.shape) != want["shape"] \
                or array.tobytes().hex() != want["hex"]:
            errors.append("%r: safe_open gave %s %s" % (name, array.dtype, list(array.shape)))
        numpy_checked.append(name)
if metadata != manifest["metadata"]:
    errors.append("metadata: file %r, manifest %r" % (metadata, manifest["metadata"]))

all_numpy = all(want["dtype"] in NUMPY for want in expected.values())
if all_numpy:
    loaded = load_file(path)
    for name, want in expected.items():
        if loaded[name].tobytes().hex() != want["hex"] or list(loaded[name].shape) != want["shape"]:
            errors.append("%r: load_file differs" % name)
    save_file({name: np.frombuffer(bytes.fromhex(want["hex"]), dtype=NUMPY[want["dtype"]]).reshape(want["shape"])
               for name, want in expected.items()}, copy_path, metadata=manifest["metadata"])
else:
    buffers, specs = {}, {}
    for name, want in expected.items():
        data = np.frombuffer(bytes.fromhex(want["hex"]), dtype=np.uint8).copy()
        shape = list(want["shape"])
        if want["dtype"] == "F4":  # the writer takes torch's packed shape
            shape[-1] //= 2
        buffers[name] = data
        specs[name] = TensorSpec(dtype=WRITER_NAMES[want["dtype"]], shape=tuple(shape), data_ptr=data.ctypes.data,
                                 data_len=data.nbytes)
    serialize_file(specs, copy_path, metadata=manifest["metadata"])

for error in errors:
    print(error, file=sys.stderr)
print(json.dumps({"checked": sorted(found), "numpy_checked": sorted(numpy_checked), "metadata": metadata}))
sys.exit(1 if errors else 0)
