#!/usr/bin/env python3
"""Prints `json.dumps(x)` for doubles given as hex bit patterns, one per line (for the JSON side files
nf4kit writes next to safetensors checkpoints: config.json, quant_state blobs, index files).

    safetensors_json_floats.py INPUT      (INPUT: one 16-digit hex IEEE-754 bit pattern per line)
"""
import json
import struct
import sys

with open(sys.argv[1]) as f:
    for line in f:
        bits = int(line.strip(), 16)
        print(json.dumps(struct.unpack("<d", struct.pack("<Q", bits))[0]))
