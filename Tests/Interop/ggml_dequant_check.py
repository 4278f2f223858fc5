#!/usr/bin/env python3
"""Reference values for nf4kit's ggml dequantizers, run by GGMLDequantizerInteropTests through NF4KIT_PYTHON.

  ggml_dequant_check.py make REAL_DIR OUT_DIR
      For every type gguf-py's quants.dequantize handles, writes OUT_DIR/<TYPE>.blocks (raw blocks) and
      OUT_DIR/<TYPE>.f32 (gguf-py's dequantized values, raw little-endian f32) and lists the types in
      OUT_DIR/types.txt. The blocks are: the real blocks of REAL_DIR/<TYPE>.blocks when there (cut from
      llama.cpp-written files, see extract), blocks made by gguf-py's own quantizer where it has one, and seeded
      random bytes whose f16 scale fields hold sane values (normal, subnormal, zero, negative).
  ggml_dequant_check.py extract OUT_DIR GGUF...
      Copies up to 48 blocks (the first 32 and 16 from the middle) of the first tensor of each block type in the
      given files to OUT_DIR/<TYPE>.blocks (how Fixtures/files/ggml-blocks was made from the golden llama-g files).
"""
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFReader
from gguf import quants
from gguf.constants import GGML_QUANT_SIZES

# Byte offsets of the f16 scale fields in one block (random bytes there could be NaN or infinity).
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.TQ1_0: [52], T.TQ2_0: [64], T.MXFP4: [], T.NVFP4: [],
    T.IQ2_XXS: [0], T.IQ2_XS: [0], T.IQ2_S: [0], T.IQ3_XXS: [0], T.IQ3_S: [0], T.IQ1_S: [0],
    T.IQ1_M: [], T.IQ4_NL: [0], T.IQ4_XS: [0],
}
# Types with a gguf-py quantizer: blocks made from random values as well.
QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.TQ1_0, T.TQ2_0, T.MXFP4]


def sane_halves(rng, count):
    magnitudes = np.concatenate([
        rng.uniform(1e-4, 2.0, count).astype(np.float16),
        np.array([0.0, 6e-8, 3e-5, 65504.0, 1.0, -0.0], dtype=np.float16),
    ])[:count]
    signs = np.where(rng.integers(0, 2, count) == 1, -1, 1).astype(np.float16)
    return (magnitudes * signs).astype(np.float16)


def random_blocks(qtype, rng, count=64):
    _, type_size = GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(count, type_size), dtype=np.uint8)
    for offset in HALF_FIELDS[qtype]:
        blocks[:, offset:offset + 2] = sane_halves(rng, count).view(np.uint8).reshape(count, 2)
    if qtype == T.IQ1_M:
        # The f16 d lives in the top nibbles of the four u16 scale words (bytes 48..56).
        d = sane_halves(rng, count).view(np.uint16)
        words = blocks[:, 48:56].copy().view(np.uint16).reshape(count, 4) & np.uint16(0x0FFF)
        for i, shift in enumerate([0, 4, 8, 12]):
            words[:, i] |= ((d >> np.uint16(shift)) & np.uint16(0xF)) << np.uint16(12)
        blocks[:, 48:56] = words.view(np.uint8).reshape(count, 8)
    return blocks


def make(real_dir, out_dir):
    rng = np.random.default_rng(20261204)
    names = []
    for qtype in HALF_FIELDS:
        block_size, type_size = GGML_QUANT_SIZES[qtype]
        parts = []
        real = os.path.join(real_dir, qtype.name + ".blocks")
        if os.path.exists(real):
            parts.append(np.fromfile(real, dtype=np.uint8).reshape(-1, type_size))
        if qtype in QUANTIZABLE:
            values = (rng.standard_normal((16, block_size)) * rng.uniform(0.01, 3.0, (16, 1))).astype(np.float32)
            parts.append(quants.quantize(values, qtype).reshape(-1, type_size))
        parts.append(random_blocks(qtype, rng))
        blocks = np.ascontiguousarray(np.concatenate(parts, axis=0))
        with np.errstate(over="ignore"):  # MXFP4 and NVFP4 scales reach f32 infinity on purpose
            values = quants.dequantize(blocks.reshape(-1), qtype)
        assert values.dtype == np.float32 and values.size == blocks.shape[0] * block_size, qtype.name
        if np.isnan(values).any():
            raise SystemExit(f"{qtype.name}: gguf-py produced NaN from the test blocks")
        blocks.tofile(os.path.join(out_dir, qtype.name + ".blocks"))
        values.astype("<f4").tofile(os.path.join(out_dir, qtype.name + ".f32"))
        names.append(qtype.name)
    with open(os.path.join(out_dir, "types.txt"), "w") as f:
        f.write("\n".join(names) + "\n")


def extract(out_dir, paths):
    seen = set()
    for path in paths:
        for tensor in GGUFReader(path).tensors:
            qtype = tensor.tensor_type
            if qtype in seen or qtype not in HALF_FIELDS:
                continue
            seen.add(qtype)
            _, type_size = GGML_QUANT_SIZES[qtype]
            blocks = np.asarray(tensor.data).view(np.uint8).reshape(-1, type_size)
            middle = blocks.shape[0] // 2
            picked = np.concatenate([blocks[:32], blocks[middle:middle + 16]])
            picked.tofile(os.path.join(out_dir, qtype.name + ".blocks"))
            print(f"{qtype.name}: {picked.shape[0]} blocks of {tensor.name} from {os.path.basename(path)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 4 and sys.argv[1] == "extract":
        extract(sys.argv[2], sys.argv[3:])
    else:
        raise SystemExit(__doc__)
