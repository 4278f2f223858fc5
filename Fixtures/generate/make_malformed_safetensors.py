#!/usr/bin/env python3
"""Writes Fixtures/files/malformed/*.safetensors: one file per crafted input of shared/spec/safetensors.md §5.1.

Each file is built byte by byte here (no safetensors writer involved). If the `safetensors` package is importable
(made with safetensors 0.8.0, numpy 2.4.6, Python 3.11), every file is also opened with `safe_open` and the
reference outcome is checked against the `ref` column below, so the corpus documents measured behaviour.

For each failing case the script prints where the problem starts (`byteOffset`, a file offset computed here from
the bytes, independently of nf4kit) and the tensor involved; SafetensorsMalformedTests.swift asserts those values.

    python3 Fixtures/generate/make_malformed_safetensors.py [output-folder]
"""
import json
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "files", "malformed")

CASES = []  # (file name, bytes, reference outcome, byteOffset or None, tensor or None, note)


def member(name, dtype, shape, offsets, extra=""):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":%s%s}' % (
        name, dtype, json.dumps(shape, separators=(",", ":")), json.dumps(offsets, separators=(",", ":")), extra)


def padded(text):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return raw + b" " * (-len(raw) % 8)


def file_bytes(header, data=b"", n=None, pad=True):
    h = padded(header) if pad else (header.encode("utf-8") if isinstance(header, str) else header)
    return struct.pack("<Q", len(h) if n is None else n) + h + data


def at(content, needle, nth=1):
    """File offset of the nth occurrence of `needle` (str or bytes) in `content`."""
    needle = needle.encode("utf-8") if isinstance(needle, str) else needle
    pos = -1
    for _ in range(nth):
        pos = content.index(needle, pos + 1)
    return pos


def case(name, content, ref, offset=None, tensor=None, note=""):
    CASES.append((name, content, ref, offset, tensor, note))


def fail(name, content, ref, offset, tensor=None, note=""):
    case(name, content, ref, offset, tensor, note)


# --- outer framing ---------------------------------------------------------------------------------------------
fail("header-too-small-empty.safetensors", b"", "HeaderTooSmall", 0)
fail("header-too-small-7-bytes.safetensors", b"\x08\x00\x00\x00\x00\x00\x00", "HeaderTooSmall", 0)
fail("header-too-large-100000001.safetensors", file_bytes("{}", n=100_000_001), "HeaderTooLarge", 0)
fail("header-length-2-pow-63.safetensors", file_bytes("{}", n=1 << 63), "HeaderTooLarge", 0)
fail("header-length-past-eof.safetensors", struct.pack("<Q", 60), "InvalidHeaderLength", 0, note="8 bytes, N = 60")
fail("header-length-100000000-in-16-bytes.safetensors", file_bytes("{}", n=100_000_000), "InvalidHeaderLength", 0,
     note="N at the limit but past EOF: must fail before allocating N bytes")

# --- header JSON text ------------------------------------------------------------------------------------------
fail("header-empty.safetensors", struct.pack("<Q", 0), "InvalidHeaderDeserialization", 8, note="N = 0: EOF")
c = file_bytes("[]")
fail("header-is-array.safetensors", c, "InvalidHeaderDeserialization", 8)
c = file_bytes(b"{}" + b"\x00" * 6, pad=False)
fail("header-nul-padded.safetensors", c, "InvalidHeaderDeserialization", 10, note="trailing characters")
c = file_bytes(b"\xef\xbb\xbf{}" + b" " * 3, pad=False)
fail("header-utf8-bom.safetensors", c, "InvalidHeaderDeserialization", 8)
c = file_bytes("{}x")
fail("header-trailing-x.safetensors", c, "InvalidHeaderDeserialization", 10)
c = file_bytes("{}{}")
fail("header-two-objects.safetensors", c, "InvalidHeaderDeserialization", 10)
c = file_bytes(b'{"a\xffb":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}')
fail("header-invalid-utf8.safetensors", c, "InvalidHeader", at(c, b"\xff"), note="byte 0xFF inside a name")
c = file_bytes('{' + member("a\\ud800b", "U8", [0], [0, 0]) + '}')
fail("name-lone-surrogate.safetensors", c, "InvalidHeaderDeserialization", at(c, "\\ud800"))


def nested(arrays):
    return '{' + member("t", "U8", [0], [0, 0], ',"x":' + "[" * arrays + "]" * arrays) + '}'


# serde_json's recursion budget (128) fails on the 128th nested container: the header object and the tensor
# object count, so 125 arrays inside an unknown field pass and 126 fail (measured with safetensors 0.8.0).
c = file_bytes(nested(126))
fail("nesting-128-containers.safetensors", c, "InvalidHeaderDeserialization", at(c, "[" * 126) + 125, "t",
     note="recursion limit; offset of the 128th container")
c = file_bytes(nested(200))
fail("nesting-202-containers.safetensors", c, "InvalidHeaderDeserialization", at(c, "[" * 126) + 125, "t",
     note="200-deep arrays in an unknown field")
case("ok-nesting-127-containers.safetensors", file_bytes(nested(125)), "OK")

# --- duplicates (stricter than the reference where it accepts) --------------------------------------------------
c = file_bytes('{' + member("a", "U8", [1], [0, 1]) + ',' + member("a", "U8", [1], [1, 2]) + '}', b"\x01\x02")
fail("duplicate-name-different-offsets.safetensors", c, "InvalidOffset", at(c, '"a"', 2), "a")
c = file_bytes('{' + member("a", "U8", [1], [0, 1]) + ',' + member("a", "U8", [1], [0, 1]) + '}', b"\x01")
fail("duplicate-name-identical.safetensors", c, "OK", at(c, '"a"', 2), "a", note="reference keeps one; we reject")
c = file_bytes('{"__metadata__":{"format":"pt"},"__metadata__":{"format":"pt"}}')
fail("duplicate-metadata.safetensors", c, "InvalidHeaderDeserialization", at(c, '"__metadata__"', 2))
c = file_bytes('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\x01")
fail("duplicate-field-in-tensor.safetensors", c, "InvalidHeaderDeserialization", at(c, '"dtype"', 2), "a")

# --- offsets ---------------------------------------------------------------------------------------------------
c = file_bytes('{' + member("a", "F32", [1], [0, 4]) + ',' + member("b", "F32", [1], [8, 12]) + '}', bytes(12))
fail("offsets-gap.safetensors", c, "InvalidOffset", at(c, '"b"'), "b")
c = file_bytes('{' + member("a", "F32", [2], [0, 8]) + ',' + member("b", "F32", [2], [4, 12]) + '}', bytes(12))
fail("offsets-overlap.safetensors", c, "InvalidOffset", at(c, '"b"'), "b")
c = file_bytes('{' + member("a", "U8", [8], [8, 0]) + '}', bytes(8))
fail("offsets-reversed.safetensors", c, "InvalidOffset", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "U8", [1], [0, 1, 2]) + '}', bytes(1))
fail("offsets-three-numbers.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "U8", [1], [-1, 0]) + '}', bytes(1))
fail("offsets-negative.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "U8", [1], [0, 18446744073709551616]) + '}', bytes(1))
fail("offsets-beyond-u64.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "U8", [18446744073709551615], [0, 18446744073709551615]) + '}', bytes(1))
fail("offsets-u64-max.safetensors", c, "ValidationOverflow", at(c, '"a"'), "a", note="no allocation sized by them")
c = file_bytes('{' + member("a", "U8", [1099511627776], [0, 1099511627776]) + '}', bytes(4))
fail("offsets-past-eof-1-tib.safetensors", c, "MetadataIncompleteBuffer", len(c), "a",
     note="a 1 TiB tensor in a tiny file; offset = EOF")

# --- data length -----------------------------------------------------------------------------------------------
c = file_bytes('{' + member("a", "F32", [2], [0, 8]) + '}', bytes(8) + b"\x00")
fail("data-extra-byte.safetensors", c, "MetadataIncompleteBuffer", len(c) - 1, note="offset of the extra byte")
c = file_bytes('{' + member("a", "F32", [1], [0, 4]) + ',' + member("b", "F32", [2], [4, 12]) + '}', bytes(11))
fail("data-missing-byte.safetensors", c, "MetadataIncompleteBuffer", len(c), "b", note="offset = EOF")

# --- tensor info schema ----------------------------------------------------------------------------------------
for fname, dtype in (("dtype-F128.safetensors", "F128"), ("dtype-lowercase-f32.safetensors", "f32")):
    c = file_bytes('{' + member("a", dtype, [1], [0, 4]) + '}', bytes(4))
    fail(fname, c, "InvalidHeaderDeserialization", at(c, '"a"'), "a", note="unknown variant")
c = file_bytes('{"a":{"dtype":17,"shape":[1],"data_offsets":[0,1]}}', bytes(1))
fail("dtype-not-string.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{"a":{"dtype":"U8","data_offsets":[0,1]}}', bytes(1))
fail("missing-shape.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{"a":{"shape":[1],"data_offsets":[0,1]}}', bytes(1))
fail("missing-dtype.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{"a":{"dtype":"U8","shape":[1]}}', bytes(1))
fail("missing-data-offsets.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
for fname, shape in (("shape-negative.safetensors", "[-2]"), ("shape-float.safetensors", "[2.0]"),
                     ("shape-exponent.safetensors", "[1e0]"), ("shape-null.safetensors", "null"),
                     ("shape-string.safetensors", '["2"]')):
    c = file_bytes('{"a":{"dtype":"U8","shape":%s,"data_offsets":[0,2]}}' % shape, bytes(2))
    fail(fname, c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{"a":5}')
fail("tensor-info-not-object.safetensors", c, "InvalidHeaderDeserialization", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "F32", [3], [0, 8]) + '}', bytes(8))
fail("shape-size-mismatch.safetensors", c, "TensorInvalidInfo", at(c, '"a"'), "a", note="F32 [3] in 8 bytes")
c = file_bytes('{' + member("a", "F32", [0], [0, 4]) + '}', bytes(4))
fail("shape-zero-with-bytes.safetensors", c, "TensorInvalidInfo", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "F4", [3], [0, 2]) + '}', bytes(2))
fail("f4-three-elements.safetensors", c, "MisalignedSlice", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "U8", [4294967296, 4294967296, 0], [0, 0]) + '}')
fail("shape-product-overflow.safetensors", c, "ValidationOverflow", at(c, '"a"'), "a")
c = file_bytes('{' + member("a", "F64", [2305843009213693952], [0, 0]) + '}')
fail("shape-bit-count-overflow.safetensors", c, "ValidationOverflow", at(c, '"a"'), "a", note="2^61 x 64 bits")
c = file_bytes('{' + member("a", "U8", [18446744073709551615, 0], [0, 0]) + '}')
fail("shape-dimension-u64-max.safetensors", c, "OK", at(c, '"a"'), "a",
     note="reference accepts (product 0); we reject dimensions above Int64.max")

# --- metadata --------------------------------------------------------------------------------------------------
c = file_bytes('{"__metadata__":{"format":1}}')
fail("metadata-value-number.safetensors", c, "InvalidHeaderDeserialization", at(c, '"__metadata__"'))
c = file_bytes('{"__metadata__":{"format":{"x":"y"}}}')
fail("metadata-nested-map.safetensors", c, "InvalidHeaderDeserialization", at(c, '"__metadata__"'))
c = file_bytes('{"__metadata__":["pt"]}')
fail("metadata-array.safetensors", c, "InvalidHeaderDeserialization", at(c, '"__metadata__"'))
c = file_bytes('{"__metadata__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', bytes(1))
fail("metadata-shaped-like-a-tensor.safetensors", c, "InvalidHeaderDeserialization", at(c, '"__metadata__"'),
     note="the reserved name cannot hold a tensor")

# --- must pass -------------------------------------------------------------------------------------------------
c = file_bytes('{' + member("w", "F32", [2], [0, 8]) + '}', struct.pack("<2f", 1.5, -2.25), pad=False)
case("ok-unpadded-header.safetensors", c, "OK",
     note="N = %d: the F32 data starts at file offset %d, not a multiple of 4" % (len(c) - 16, len(c) - 8))
case("ok-leading-whitespace.safetensors",
     file_bytes(" \t\r\n{" + member("w", "U8", [2], [0, 2]) + "}\t\t", b"\x07\x08", pad=False), "OK")
case("ok-metadata-null.safetensors", file_bytes('{"__metadata__":null,' + member("w", "U8", [1], [0, 1]) + '}',
                                                 b"\x05"), "OK")
case("ok-metadata-empty.safetensors", file_bytes('{"__metadata__":{}}'), "OK")
case("ok-zero-size-shared-offset.safetensors",
     file_bytes('{' + member("empty", "F32", [0, 5], [0, 0]) + ',' + member("none", "U8", [0], [0, 0]) + ','
                + member("w", "U8", [2], [0, 2]) + ',' + member("tail", "I16", [3, 0], [2, 2]) + '}', b"\x01\x02"),
     "OK")
case("ok-unknown-field.safetensors",
     file_bytes('{' + member("w", "U8", [1], [0, 1], ',"stride":[1],"note":{"a":[true,null,1.5]}') + '}', b"\x09"),
     "OK")
case("ok-members-out-of-order.safetensors",
     file_bytes('{' + member("second", "U8", [2], [2, 4]) + ',' + member("first", "U8", [2], [0, 2]) + '}',
                b"\x01\x02\x03\x04"), "OK")
case("ok-empty-name.safetensors", file_bytes('{' + member("", "U8", [1], [0, 1]) + '}', b"\x2a"), "OK")
case("ok-unusual-names.safetensors",
     file_bytes('{' + member("a\\u0000b", "U8", [1], [0, 1]) + ',' + member("\u00e9t\u00e9 \U0001F600", "U8", [1], [1, 2])
                + ',' + member("F32", "U8", [1], [2, 3]) + '}', b"\x01\x02\x03"), "OK",
     note="NUL escape, raw UTF-8, a name equal to a dtype string")
case("ok-f4-four-elements.safetensors", file_bytes('{' + member("w", "F4", [4], [0, 2]) + '}', b"\x21\x43"), "OK")
case("ok-scalar-and-empty.safetensors",
     file_bytes('{' + member("s", "F64", [], [0, 8]) + ',' + member("e", "F32", [0, 5], [8, 8]) + '}',
                struct.pack("<d", 3.25)), "OK")


def reference_outcome(path):
    try:
        from safetensors import safe_open
    except ImportError:
        return None
    try:
        with safe_open(path, framework="numpy") as f:
            list(f.keys())
        return "OK"
    except Exception as e:  # noqa: BLE001 - the message is what we record
        return str(e)


REF_WORDS = {  # how safetensors 0.8.0 words each error variant
    "HeaderTooSmall": "too small", "HeaderTooLarge": "too large", "InvalidHeaderLength": "invalid header length",
    "InvalidHeader": "invalid UTF-8", "InvalidHeaderDeserialization": "deserializing header",
    "InvalidOffset": "invalid offset", "MetadataIncompleteBuffer": "incomplete metadata",
    "TensorInvalidInfo": "", "MisalignedSlice": "", "ValidationOverflow": "overflow",
}


def main():
    os.makedirs(OUT, exist_ok=True)
    mismatches = 0
    print("| file | reference 0.8.0 | byteOffset | tensor | note |")
    print("|---|---|---|---|---|")
    for name, content, ref, offset, tensor, note in CASES:
        path = os.path.join(OUT, name)
        with open(path, "wb") as f:
            f.write(content)
        got = reference_outcome(path)
        if got is not None:
            ok = (got == "OK") if ref == "OK" else (got != "OK")
            if not ok:
                mismatches += 1
                print("MISMATCH", name, "expected", ref, "got", got, file=sys.stderr)
            elif got != "OK":
                print("  %s: %s" % (name, got), file=sys.stderr)
        print("| %s | %s | %s | %s | %s |" % (name, ref, "" if offset is None else offset,
                                             "" if tensor is None else repr(tensor), note))
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
