#!/usr/bin/env python3
"""Interop checks for nf4kit's GGUF writer, run by GGUFInteropTests through NF4KIT_PYTHON (numpy, safetensors, gguf).

  gguf_check.py check MANIFEST.json
      For every file in the manifest, gguf-py's GGUFReader must read it, and its header, metadata (keys in order,
      types, values), tensor infos (names, types, ne, offsets following ggml's contiguous rule, final padding) and
      tensor bytes must match what the Swift test wrote down. For Q8_0/Q4_0 tensors, gguf-py's dequantizer must
      return exactly the f32 values nf4kit computed, and gguf-py's quantizer applied to the source values must give
      the bytes nf4kit wrote. For the NF4 companion layout, the companion tensors must hold the bitsandbytes bytes
      of the source safetensors file unchanged.
  gguf_check.py make-q41 DIR
      Writes DIR/q4_1.gguf with gguf-py's GGUFWriter and Q4_1 quantizer, DIR/q4_1.dequant.f32 (gguf-py's
      dequantized values, raw little-endian f32) for the Swift side to compare its Q4_1 decoder with.

Prints one line per failed check and exits 1 if any failed.
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter
from gguf import quants

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def field_value(field):
    types = field.types
    if types[0] == GGUFValueType.ARRAY:
        return [v for v in field.contents()]
    return field.contents()


def same_value(expected, actual, type_name):
    if type_name in ("FLOAT32",):
        return np.float32(expected) == np.float32(actual) and np.signbit(np.float32(expected)) == np.signbit(np.float32(actual))
    if type_name == "FLOAT64":
        return float(expected) == float(actual)
    if type_name == "BOOL":
        return bool(expected) == bool(actual)
    return expected == actual


def check_file(entry):
    path = entry["path"]
    name = os.path.basename(path)
    reader = GGUFReader(path)
    check(reader.endianess.name == "LITTLE", f"{name}: endianness {reader.endianess}")
    check(int(reader.fields["GGUF.version"].contents()) == 3, f"{name}: version")
    check(int(reader.fields["GGUF.tensor_count"].contents()) == len(entry["tensors"]), f"{name}: tensor_count")
    check(int(reader.fields["GGUF.kv_count"].contents()) == len(entry["metadata"]), f"{name}: kv_count")
    check(reader.data_offset == entry["dataStart"], f"{name}: data_start {reader.data_offset} != {entry['dataStart']}")
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    check(keys == [m["key"] for m in entry["metadata"]], f"{name}: metadata keys/order {keys}")
    for m in entry["metadata"]:
        field = reader.fields.get(m["key"])
        if field is None:
            continue
        types = [t.name for t in field.types]
        want = [m["type"]] + ([m["elementType"]] if "elementType" in m else [])
        check(types == want, f"{name}: {m['key']} types {types} != {want}")
        actual = field_value(field)
        if "elementType" in m:
            ok = len(actual) == len(m["value"]) and all(same_value(e, a, m["elementType"]) for e, a in zip(m["value"], actual))
        else:
            ok = same_value(m["value"], actual, m["type"])
        check(ok, f"{name}: {m['key']} = {actual!r}, expected {m['value']!r}")

    tensors = {t.name: t for t in reader.tensors}
    check([t.name for t in reader.tensors] == [t["name"] for t in entry["tensors"]], f"{name}: tensor order")
    alignment = reader.alignment
    expected_offset = reader.data_offset
    for t in entry["tensors"]:
        info = tensors.get(t["name"])
        if info is None:
            failures.append(f"{name}: tensor {t['name']} missing")
            continue
        check(info.tensor_type.name == t["type"], f"{name}: {t['name']} type {info.tensor_type.name} != {t['type']}")
        check([int(d) for d in info.shape] == t["ne"], f"{name}: {t['name']} ne {list(info.shape)} != {t['ne']}")
        check(info.data_offset == expected_offset, f"{name}: {t['name']} at {info.data_offset}, ggml expects {expected_offset}")
        expected_offset += (info.n_bytes + alignment - 1) // alignment * alignment
        raw = np.frombuffer(open(t["data"], "rb").read(), dtype=np.uint8)
        stored = np.asarray(info.data).view(np.uint8).reshape(-1)
        check(stored.size == raw.size and np.array_equal(stored, raw), f"{name}: {t['name']} bytes differ")
        if "dequantF32" in t:
            ours = np.fromfile(t["dequantF32"], dtype="<f4")
            theirs = quants.dequantize(np.asarray(info.data), info.tensor_type).reshape(-1).astype(np.float32)
            check(np.array_equal(ours.view(np.uint32), theirs.view(np.uint32)),
                  f"{name}: {t['name']} gguf-py dequantize differs from nf4kit in "
                  f"{int(np.sum(ours.view(np.uint32) != theirs.view(np.uint32)))} values")
        if "sourceF32" in t:
            source = np.fromfile(t["sourceF32"], dtype="<f4").reshape(list(reversed(t["ne"])))
            theirs = quants.quantize(source, info.tensor_type).reshape(-1)
            check(np.array_equal(theirs.view(np.uint8), raw), f"{name}: {t['name']} gguf-py quantize differs from nf4kit")
    size = os.path.getsize(path)
    check(size == expected_offset, f"{name}: file size {size}, ggml expects {expected_offset} (final padding)")

    if "bnbSource" in entry:
        check_companions(name, reader, entry["bnbSource"])


def check_companions(name, reader, source_path):
    from safetensors.numpy import load_file
    source = load_file(source_path)
    tensors = {t.name: t for t in reader.tensors}
    version = reader.fields["nf4kit.bnb.version"].contents()
    check(int(version) == 1, f"{name}: nf4kit.bnb.version {version}")
    weights = reader.fields["nf4kit.bnb.weights"].contents()
    check(len(weights) > 0, f"{name}: no weights listed")
    for w in weights:
        def data(suffix):
            return np.asarray(tensors[w + suffix].data).view(np.uint8).reshape(-1)
        check(w not in tensors, f"{name}: logical name {w} is present")
        check(tensors[w + ".nf4"].tensor_type == GGMLQuantizationType.I8, f"{name}: {w}.nf4 not I8")
        check(np.array_equal(data(".nf4"), source[w].view(np.uint8).reshape(-1)), f"{name}: {w}.nf4 bytes")
        check(np.array_equal(data(".absmax"), source[w + ".absmax"].view(np.uint8).reshape(-1)), f"{name}: {w}.absmax bytes")
        state_key = next(k for k in source if k.startswith(w + ".quant_state.bitsandbytes__"))
        state_blob = bytes(source[state_key])
        check(reader.fields["nf4kit.bnb.quant_state." + w].contents() == state_blob.decode(), f"{name}: {w} quant state")
        state = json.loads(state_blob)
        quant_map = np.array(reader.fields["bnb.quant_map"].contents(), dtype=np.float32)
        check(np.array_equal(quant_map.view(np.uint32), source[w + ".quant_map"].view(np.uint32)), f"{name}: quant_map")
        if w + ".nested_absmax" in source:
            check(np.array_equal(data(".absmax2"), source[w + ".nested_absmax"].view(np.uint8)), f"{name}: {w}.absmax2")
            offset = np.asarray(tensors[w + ".absmax_offset"].data).reshape(-1)
            check(offset.dtype == np.float32 and offset[0] == np.float32(state["nested_offset"]), f"{name}: offset {offset}")
            nested = np.array(reader.fields["bnb.nested_quant_map"].contents(), dtype=np.float32)
            check(np.array_equal(nested.view(np.uint32), source[w + ".nested_quant_map"].view(np.uint32)),
                  f"{name}: nested_quant_map")
            check(reader.fields["bnb.double_quant"].contents() is True, f"{name}: double_quant")
        check(reader.fields["bnb.blocksize"].contents() == state["blocksize"], f"{name}: blocksize")


def make_q41(directory):
    rng = np.random.default_rng(41)
    values = (rng.standard_normal((4, 64)) * 3).astype(np.float32)
    values[1, :32] = 0  # one all-zero block
    packed = quants.quantize(values, GGMLQuantizationType.Q4_1)
    writer = GGUFWriter(os.path.join(directory, "q4_1.gguf"), "llama")
    writer.add_tensor("t.q4_1", packed, raw_dtype=GGMLQuantizationType.Q4_1)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    dequant = quants.dequantize(packed, GGMLQuantizationType.Q4_1).astype("<f4")
    dequant.tofile(os.path.join(directory, "q4_1.dequant.f32"))


if __name__ == "__main__":
    if sys.argv[1] == "make-q41":
        make_q41(sys.argv[2])
        print("wrote q4_1.gguf")
        sys.exit(0)
    manifest = json.load(open(sys.argv[2]))
    for entry in manifest["files"]:
        try:
            check_file(entry)
        except Exception as error:  # a reader exception is a failed check, reported with the file
            failures.append(f"{os.path.basename(entry['path'])}: {type(error).__name__}: {error}")
    for failure in failures:
        print("FAIL", failure)
    print(f"checked {len(manifest['files'])} files, {len(failures)} failures")
    sys.exit(1 if failures else 0)
