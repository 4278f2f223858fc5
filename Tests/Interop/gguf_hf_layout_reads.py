#!/usr/bin/env python3
"""Reads a GGUF file that nf4kit wrote with Hugging Face tensor names (`convert ... -o NAME.gguf`) with gguf-py.

    gguf_hf_layout_reads.py FILE.gguf SOURCE.safetensors

Checks with gguf-py's GGUFReader that the file holds exactly the tensors of SOURCE (read with safetensors), under
the same names, with the ggml dimensions reversed from the PyTorch shape and the same bytes, and that the metadata
says general.architecture and nf4kit.layout = "hf". Prints "ok N" (N tensors); exits 1 on any mismatch.
"""
import sys

from gguf import GGUFReader
from safetensors import deserialize

gguf_path, source_path = sys.argv[1], sys.argv[2]
reader = GGUFReader(gguf_path)
errors = []


def text(field):
    return bytes(field.parts[field.data[0]]).decode("utf-8")


if "general.architecture" not in reader.fields:
    errors.append("no general.architecture")
if "nf4kit.layout" not in reader.fields or text(reader.fields["nf4kit.layout"]) != "hf":
    errors.append("nf4kit.layout is not 'hf'")

with open(source_path, "rb") as f:
    source = {name: info for name, info in deserialize(f.read())}
found = {t.name: t for t in reader.tensors}
if set(found) != set(source):
    errors.append("tensor names differ: %s" % sorted(set(found) ^ set(source)))
for name, info in source.items():
    tensor = found.get(name)
    if tensor is None:
        continue
    if [int(d) for d in tensor.shape] != list(reversed(info["shape"])):
        errors.append("%s: ggml dimensions %s for shape %s" % (name, list(tensor.shape), info["shape"]))
    if bytes(tensor.data.tobytes()) != bytes(info["data"]):
        errors.append("%s: bytes differ" % name)
for error in errors:
    print(error, file=sys.stderr)
if errors:
    sys.exit(1)
print("ok %d" % len(found))
