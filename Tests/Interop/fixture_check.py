"""An independent implementation of nf4kit's fixture generator (FixtureGenerator.swift), in Python + numpy.

Regenerates every tensor of a `nf4kit fixture` folder from the seed and the tensor's name and compares the bytes
with the file (read with the reference safetensors package). Exits 1 on the first difference.

usage: fixture_check.py FOLDER SEED [ADAPTER_FOLDER]
"""
import json
import math
import sys

import numpy as np
from safetensors.numpy import load_file

MASK = (1 << 64) - 1


def splitmix(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def stream_seed(seed, name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h ^= b
        h = (h * 0x100000001B3) & MASK
    _, out = splitmix(h ^ seed)
    return out


def normal_like(stream, std, count):
    # Vectorised SplitMix64: state_i = stream + i * gamma; 2 draws per value.
    gamma = np.uint64(0x9E3779B97F4A7C15)
    idx = np.arange(1, 2 * count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(stream) + idx * gamma
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    parts = [(z >> np.uint64(s)) & np.uint64(0xFFFF) for s in (0, 16, 32, 48)]
    per_draw = sum(p.astype(np.int64) for p in parts)
    sums = per_draw[0::2] + per_draw[1::2]
    mean = 8 * 32767.5
    scale = std / math.sqrt(8 * (65536.0 * 65536.0 - 1) / 12)
    return ((sums.astype(np.float64) - mean) * scale).astype(np.float32)


def uniform(stream, bound, count):
    gamma = np.uint64(0x9E3779B97F4A7C15)
    idx = np.arange(1, count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(stream) + idx * gamma
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    unit = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return ((unit * 2 - 1) * bound).astype(np.float32)


def check(folder, seed, adapter=None):
    config = json.load(open(folder + "/config.json"))
    dtype = {"float16": np.float16, "float32": np.float32}.get(config["dtype"])
    tensors = load_file(folder + "/model.safetensors")
    compared = 0
    for name, actual in tensors.items():
        count = actual.size
        if name.endswith("norm.weight"):
            expected = np.ones(count, dtype=np.float32)
        else:
            expected = normal_like(stream_seed(seed, name), config["initializer_range"], count)
        if dtype is not None:
            expected = expected.astype(dtype)
            if expected.tobytes() != actual.tobytes():
                print(f"{name}: bytes differ", file=sys.stderr)
                return 1
        compared += 1
    if adapter:
        for name, actual in load_file(adapter + "/adapter_model.safetensors").items():
            stream = stream_seed(seed ^ 0x10AA, name)
            if name.endswith("lora_A.weight"):
                expected = uniform(stream, 1 / math.sqrt(actual.shape[1]), actual.size)
            else:
                expected = normal_like(stream, 0.02, actual.size)
            if expected.tobytes() != actual.tobytes():
                print(f"{name}: bytes differ", file=sys.stderr)
                return 1
            compared += 1
    print(f"{compared} tensors identical")
    return 0


if __name__ == "__main__":
    sys.exit(check(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
