#!/usr/bin/env python3
"""Writes safetensors files with Python's `safetensors` and a manifest of what they hold, for nf4kit to read.

    safetensors_python_writes.py OUTDIR

Makes, in OUTDIR:
- numpy.safetensors: `safetensors.numpy.save_file` of numpy arrays (every dtype numpy has: F64 F32 F16 I8..I64
  U8..U64 BOOL C64), scalars, empty tensors, special floats, metadata with non-ASCII text.
- all_dtypes.safetensors: `safetensors.serialize_file` with raw buffers for the dtypes numpy lacks (BF16, the
  F8 variants, F4), so no ml_dtypes is needed, plus a few numpy ones.
- manifest.json: for each file, its metadata and each tensor's dtype, shape and bytes (hex), taken from the
  arrays/buffers handed to the writer (not from reading the file back).
Prints the safetensors and numpy versions on stdout.
"""
import json
import os
import sys

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

out = sys.argv[1]
rng = np.random.default_rng(20261123)

NUMPY_NAMES = {
    np.float64: "F64", np.float32: "F32", np.float16: "F16", np.int8: "I8", np.int16: "I16", np.int32: "I32",
    np.int64: "I64", np.uint8: "U8", np.uint16: "U16", np.uint32: "U32", np.uint64: "U64", np.bool_: "BOOL",
    np.complex64: "C64",
}


def random_array(dtype, shape):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


arrays = {}
for dtype, name in NUMPY_NAMES.items():
    arrays["t.%s.matrix" % name.lower()] = random_array(dtype, (3, 5))
arrays["t.f32.scalar"] = np.array(3.25, dtype=np.float32)
arrays["t.i64.scalar"] = np.array(-(2 ** 62), dtype=np.int64)
arrays["t.f16.empty"] = np.zeros((0, 5), dtype=np.float16)
arrays["t.u8.empty"] = np.zeros((0,), dtype=np.uint8)
arrays["t.f32.special"] = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38], dtype=np.float32)
arrays["t.f16.special"] = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 6e-08, 65504.0], dtype=np.float16)
arrays["t.f64.rank4"] = random_array(np.float64, (2, 1, 3, 2))
arrays["weird name/with.dots and ü"] = random_array(np.int16, (4,))
numpy_metadata = {"format": "pt", "note": "héllo — ünïcode ✓", "empty": ""}
save_file(arrays, os.path.join(out, "numpy.safetensors"), metadata=numpy_metadata)

manifest = {"numpy.safetensors": {"metadata": numpy_metadata, "tensors": {}}}
for key, value in arrays.items():
    manifest["numpy.safetensors"]["tensors"][key] = {
        "dtype": NUMPY_NAMES[value.dtype.type], "shape": list(value.shape), "hex": value.tobytes().hex()}

# Raw-buffer dtypes: (name, safetensors writer dtype name, header dtype, logical shape, byte count).
RAW = [
    ("r.bf16", "bfloat16", "BF16", [4, 3], 24),
    ("r.bf16.scalar", "bfloat16", "BF16", [], 2),
    ("r.bf16.empty", "bfloat16", "BF16", [0, 5], 0),
    ("r.f8_e4m3", "float8_e4m3fn", "F8_E4M3", [16], 16),
    ("r.f8_e5m2", "float8_e5m2", "F8_E5M2", [2, 8], 16),
    ("r.f8_e8m0", "float8_e8m0fnu", "F8_E8M0", [5], 5),
    ("r.f8_e4m3fnuz", "float8_e4m3fnuz", "F8_E4M3FNUZ", [3], 3),
    ("r.f8_e5m2fnuz", "float8_e5m2fnuz", "F8_E5M2FNUZ", [3], 3),
    ("r.f4", "float4_e2m1fn_x2", "F4", [2, 6], 6),  # written as torch's packed shape [2, 3]; header says [2, 6]
    ("r.f32", "float32", "F32", [2, 2], 16),
    ("r.bool", "bool", "BOOL", [3], 3),
]
buffers = {}
specs = {}
raw_manifest = {}
for name, writer_dtype, header_dtype, shape, count in RAW:
    data = rng.integers(0, 256, size=count, dtype=np.uint8)
    if header_dtype == "BOOL":
        data = data % 2
    buffers[name] = data  # keeps the memory alive while serialize_file reads it
    writer_shape = shape[:-1] + [shape[-1] // 2] if header_dtype == "F4" else shape
    specs[name] = TensorSpec(dtype=writer_dtype, shape=tuple(writer_shape), data_ptr=data.ctypes.data, data_len=count)
    raw_manifest[name] = {"dtype": header_dtype, "shape": shape, "hex": data.tobytes().hex()}
raw_metadata = {"format": "pt"}
serialize_file(specs, os.path.join(out, "all_dtypes.safetensors"), metadata=raw_metadata)
manifest["all_dtypes.safetensors"] = {"metadata": raw_metadata, "tensors": raw_manifest}

with open(os.path.join(out, "manifest.json"), "w", encoding="utf-8") as f:
    json.dump(manifest, f, ensure_ascii=False)
print(json.dumps({"safetensors": safetensors.__version__, "numpy": np.__version__}))
