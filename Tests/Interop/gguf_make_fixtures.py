#!/usr/bin/env python3
"""Makes Fixtures/files/gguf/: the malformed GGUF corpus and a small bitsandbytes subset of the golden checkpoints.

Run from the repository root:  python Tests/Interop/gguf_make_fixtures.py ../shared/golden
Needs numpy + safetensors (0.8.0 used) only for the bitsandbytes subset. The malformed files are built byte by byte
with `struct` from one valid base file; manifest.json lists, per file, the error code and byte offset the reader must
report (offsets are the positions of the fields each case breaks, recorded while building the bytes).
"""
import json
import os
import shutil
import struct
import sys

OUT = os.path.join("Fixtures", "files", "gguf")
MAL = os.path.join(OUT, "malformed")


class G:
    """A GGUF v3 byte builder that remembers where each field starts."""

    def __init__(self):
        self.b = bytearray()
        self.at = {}

    def mark(self, name):
        self.at[name] = len(self.b)

    def u8(self, v): self.b += struct.pack("<B", v)
    def u32(self, v): self.b += struct.pack("<I", v)
    def u64(self, v): self.b += struct.pack("<Q", v)

    def s(self, text, name=None):
        raw = text.encode() if isinstance(text, str) else text
        if name: self.mark(name)
        self.u64(len(raw))
        self.b += raw


def base(**o):
    """The valid base file; keyword overrides break one field each."""
    g = G()
    g.b += o.get("magic", b"GGUF")
    g.mark("version"); g.b += o.get("version_bytes", struct.pack("<I", o.get("version", 3)))
    g.mark("tensor_count"); g.u64(o.get("tensor_count", 2))
    g.mark("kv_count"); g.u64(o.get("kv_count", 4))
    # KV 0
    g.mark("kv0"); g.s(o.get("key0", "general.architecture")); g.mark("kv0.type"); g.u32(o.get("kv0_type", 8)); g.s("llama")
    # KV 1: a long string, so cuts inside it leave enough bytes for the record-count check
    g.mark("kv1"); g.s("general.name"); g.u32(8); g.s("n" * 200, "kv1.value")
    # KV 2: ARRAY of UINT32 [1, 2, 3]
    g.mark("kv2"); g.s(o.get("key2", "x.arr")); g.u32(9)
    g.mark("kv2.elem_type"); g.u32(o.get("arr_type", 4))
    g.mark("kv2.count"); g.u64(o.get("arr_count", 3))
    g.mark("kv2.elements")
    for v in (1, 2, 3): g.u32(v)
    # KV 3: general.alignment
    g.mark("kv3"); g.s("general.alignment"); g.u32(o.get("align_type", 4))
    if o.get("align_type", 4) == 10: g.u64(o.get("alignment", 32))
    else: g.u32(o.get("alignment", 32))
    # tensor 0: "a", F32, ne [4, 2], offset 0 (32 bytes)
    g.mark("t0"); g.s(o.get("name0", "a")); g.mark("t0.n_dims"); g.u32(o.get("t0_ndims", 2))
    dims0 = o.get("t0_dims", [4, 2])
    g.mark("t0.dims")
    for d in dims0: g.u64(d)
    g.mark("t0.type"); g.u32(o.get("t0_type", 0)); g.mark("t0.offset"); g.u64(o.get("t0_offset", 0))
    # tensor 1: "b", Q8_0, ne [32], offset 32 (34 bytes)
    g.mark("t1"); g.s(o.get("name1", "b")); g.mark("t1.n_dims"); g.u32(1)
    g.mark("t1.dims"); g.u64(o.get("t1_ne0", 32))
    g.mark("t1.type"); g.u32(o.get("t1_type", 8)); g.mark("t1.offset"); g.u64(o.get("t1_offset", 32))
    g.mark("header_end")
    while len(g.b) % 32: g.u8(0)
    g.mark("data")
    for i in range(8): g.b += struct.pack("<f", float(i))
    g.mark("t1.data")
    g.b += bytes.fromhex("0830") + bytes(range(32))
    while len(g.b) % 32: g.u8(0)
    return g


def cases():
    g = base()
    at = g.at
    b = bytes(g.b)
    yield "valid_base", b, None, None, None
    yield "valid_without_final_padding", b[: at["t1.data"] + 34], None, None, None
    # truncated at every section
    yield "truncated_magic", b[:2], "truncated", 0, None
    yield "truncated_version", b[:6], "truncated", 4, None
    yield "truncated_counts", b[:20], "truncated", 16, None
    yield "truncated_in_string_value", b[: at["kv1.value"] + 8 + 50], "truncated", at["kv1.value"], None
    yield "truncated_in_array", b[: at["kv2.elements"] + 6], "truncated", at["kv2.count"], None
    yield "truncated_in_tensor_info", b[: at["t1.dims"] + 3], "truncated", at["t1.dims"], None
    yield "truncated_before_data", b[: at["header_end"] + 4], "truncated", at["header_end"], None
    yield "truncated_in_tensor_data", b[: at["t1.data"] + 20], "truncated", at["t1.offset"], "b"
    # counts larger than the file
    yield "tensor_count_huge", bytes(base(tensor_count=1 << 40).b), "truncated", 8, None
    yield "kv_count_overflows", bytes(base(kv_count=(1 << 62) + 1).b), "truncated", 8, None
    yield "kv_count_above_int64", bytes(base(kv_count=(1 << 64) - 1).b), "limitExceeded", 16, None
    yield "array_count_huge", bytes(base(arr_count=1 << 40).b), "truncated", at["kv2.count"], None
    # string length past the end
    g2 = base(); g2.b[at["kv0"]:at["kv0"] + 8] = struct.pack("<Q", (1 << 64) - 1)
    yield "key_length_past_end", bytes(g2.b), "truncated", at["kv0"], None
    # nested arrays
    yield "nested_array", bytes(base(arr_type=9).b), "malformedHeader", at["kv2.elem_type"], None
    # alignment
    yield "alignment_not_power_of_two", bytes(base(alignment=24).b), "malformedHeader", at["kv3"], None
    yield "alignment_zero", bytes(base(alignment=0).b), "malformedHeader", at["kv3"], None
    g3 = base(align_type=10)
    yield "alignment_not_uint32", bytes(g3.b), "malformedHeader", g3.at["kv3"], None
    # unknown type ids
    yield "unknown_value_type", bytes(base(kv0_type=13).b), "malformedHeader", at["kv0.type"], None
    yield "unknown_tensor_type", bytes(base(t1_type=99).b), "unsupportedDType", at["t1.type"], "b"
    yield "removed_tensor_type", bytes(base(t1_type=4).b), "unsupportedDType", at["t1.type"], "b"
    # offsets
    yield "offsets_overlap", bytes(base(t1_offset=0).b), "malformedHeader", at["t1.offset"], "b"
    yield "offsets_out_of_order", bytes(base(t0_offset=64, t1_offset=0).b), "malformedHeader", at["t1.offset"], "b"
    yield "offset_misaligned", bytes(base(t1_offset=40).b), "malformedHeader", at["t1.offset"], "b"
    yield "offset_past_end", bytes(base(t1_offset=1 << 40).b), "truncated", at["t1.offset"], "b"
    # dimension products
    yield "dimension_product_overflows", bytes(base(t0_dims=[1 << 62, 4]).b), "limitExceeded", at["t0.n_dims"], "a"
    yield "byte_size_overflows", bytes(base(t0_dims=[1 << 61, 2]).b), "limitExceeded", at["t0.n_dims"], "a"
    yield "dimension_above_int64", bytes(base(t0_dims=[1 << 63, 1]).b), "limitExceeded", at["t0.dims"], "a"
    yield "too_many_dimensions", bytes(base(t0_ndims=5, t0_dims=[4, 2, 1, 1, 1]).b), "limitExceeded", at["t0.n_dims"], "a"
    yield "block_type_row_not_multiple", bytes(base(t1_ne0=16).b), "malformedHeader", at["t1.n_dims"], "b"
    # endianness, magic, version
    yield "big_endian", bytes(base(version_bytes=struct.pack(">I", 3)).b), "unsupported", 4, None
    yield "bad_magic", bytes(base(magic=b"GGML").b), "malformedHeader", 0, None
    yield "version_1", bytes(base(version=1).b), "unsupported", 4, None
    # names and keys
    yield "duplicate_key", bytes(base(key2="general.architecture").b), "malformedHeader", at["kv2"], None
    yield "duplicate_tensor_name", bytes(base(name1="a").b), "malformedHeader", at["t1"], "a"
    g4 = base(name0="n" * 64)
    yield "tensor_name_64_bytes", bytes(g4.b), "limitExceeded", g4.at["t0"], "n" * 64
    g5 = base(key0=b"general.\xff\xfe")
    yield "key_not_utf8", bytes(g5.b), "malformedHeader", g5.at["kv0"] + 8, None
    g6 = base(key0="")
    yield "empty_key", bytes(g6.b), "malformedHeader", g6.at["kv0"], None


def make_malformed():
    os.makedirs(MAL, exist_ok=True)
    manifest = {}
    for name, data, code, offset, tensor in cases():
        with open(os.path.join(MAL, name + ".gguf"), "wb") as f:
            f.write(data)
        manifest[name] = {"code": code, "byteOffset": offset, "tensor": tensor}
    with open(os.path.join(MAL, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def make_bnb_subset(golden):
    """Layer-0 q_proj bitsandbytes tensors (bytes unchanged) plus one F16 norm, from the nf4 and nf4-dq checkpoints."""
    from safetensors.numpy import load_file, save_file
    for variant in ("nf4-dq", "nf4"):
        tensors = load_file(os.path.join(golden, "llama-tiny", variant, "model.safetensors"))
        keep = {k: v for k, v in tensors.items()
                if k.startswith("model.layers.0.self_attn.q_proj.weight") or k == "model.layers.0.input_layernorm.weight"}
        save_file(keep, os.path.join(OUT, f"bnb-{variant}-q_proj.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    golden = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "golden")
    os.makedirs(OUT, exist_ok=True)
    for name in ("sample.gguf", "sample.expected.safetensors"):
        shutil.copyfile(os.path.join(golden, "gguf", name), os.path.join(OUT, name))
    make_malformed()
    make_bnb_subset(golden)
