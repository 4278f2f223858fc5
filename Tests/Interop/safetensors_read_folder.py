#!/usr/bin/env python3
"""Reads a sharded Hugging Face folder written by nf4kit with Python's json and safetensors.

    safetensors_read_folder.py FOLDER

Checks that model.safetensors.index.json loads with `json.load`, is formatted exactly as
`json.dumps(index, indent=2, sort_keys=True) + "\\n"` (transformers 5), that every shard opens with `safe_open`
and holds exactly the tensors the weight_map assigns to it, and that metadata.total_size is the sum of the
tensors' byte sizes. Prints {"files": [...], "total_size": N, "total_parameters": N, "tensors": {name: hex}}.
Exits 1 on any mismatch.
"""
import json
import os
import sys

from safetensors import deserialize, safe_open

folder = sys.argv[1]
errors = []
index_path = os.path.join(folder, "model.safetensors.index.json")
with open(index_path, encoding="utf-8") as f:
    text = f.read()
index = json.loads(text)
if text != json.dumps(index, indent=2, sort_keys=True) + "\n":
    errors.append("the index is not formatted as json.dumps(indent=2, sort_keys=True) + newline")

by_file = {}
for name, file in index["weight_map"].items():
    by_file.setdefault(file, set()).add(name)
tensors = {}
total = 0
for file, names in sorted(by_file.items()):
    path = os.path.join(folder, file)
    with safe_open(path, framework="np") as f:
        keys = set(f.keys())
        if f.metadata() != {"format": "pt"}:
            errors.append("%s: metadata %r" % (file, f.metadata()))
    if keys != names:
        errors.append("%s holds %s, the index says %s" % (file, sorted(keys), sorted(names)))
    with open(path, "rb") as f:
        for name, info in deserialize(f.read()):
            tensors[name] = bytes(info["data"]).hex()
            total += len(info["data"])
if index["metadata"].get("total_size") != total:
    errors.append("total_size %r, tensors hold %d bytes" % (index["metadata"].get("total_size"), total))

for error in errors:
    print(error, file=sys.stderr)
print(json.dumps({"files": sorted(by_file), "total_size": index["metadata"].get("total_size"),
                  "total_parameters": index["metadata"].get("total_parameters"), "tensors": tensors}))
sys.exit(1 if errors else 0)
