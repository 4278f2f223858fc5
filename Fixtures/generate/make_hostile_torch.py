#!/usr/bin/env python3
"""Writes the crafted and hostile PyTorch checkpoint fixtures in Fixtures/files/torch/.

Run from the repository root:  python3 Fixtures/generate/make_hostile_torch.py
Needs only the Python standard library (written with CPython 3.11); torch is NOT used or needed.

* crafted/*.bin  valid checkpoints. Their data.pkl is written by Python's own pickle.Pickler (protocol 2) with a
  persistent_id hook and stand-in modules named `torch`, `torch._utils`, so the opcodes are the ones torch.save
  writes (spec torch-checkpoint.md §2, §5): GLOBAL `torch._utils _rebuild_tensor_v2`, MARK/TUPLE persistent ids,
  BINPERSID, memoized BINGETs, SETITEMS, the OrderedDict `_metadata` BUILD.
  The zip container is written by `torch_zip` below in the layout torch's miniz writer uses (stored entries,
  flags 0x0808, 'FB' padding to 64-byte data, data descriptors, ZIP64 end records).
* hostile/*.bin  files a safe reader must refuse. Pickles are assembled from raw opcodes. Payloads that would
  run code write a marker file /tmp/nf4kit-pwned-<name>; the Swift tests check the marker never appears.
  This script never unpickles anything; it only disassembles with pickletools (which does not execute).

The outputs are committed; rerunning produces identical bytes (no timestamps, no randomness).
"""

import collections
import io
import os
import pickle
import pickletools
import struct
import sys
import types
import zipfile
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "files", "torch")

# ---------------------------------------------------------------------------------------------------------------
# Zip writer in torch's layout


def torch_zip(records, prefix="archive", zip64=False):
    """records: list of dicts with keys
    name (relative to prefix unless raw=True), data (bytes), method (0/8), flags (default 0x0808),
    local_name (bytes override), central_csize / central_usize (overrides), crc (override),
    local_sizes (write real sizes+crc in the local header, needs flags without bit 3),
    local_csize / local_usize (overrides for the local header)."""
    out = bytearray()
    central = []
    for rec in records:
        name = (rec["name"] if rec.get("raw") else prefix + "/" + rec["name"]).encode()
        data = rec["data"]
        method = rec.get("method", 0)
        flags = rec.get("flags", 0x0808)
        if method == 8:
            comp = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = comp.compress(data) + comp.flush()
        else:
            payload = data
        crc = rec.get("crc", zlib.crc32(data))
        offset = len(out)
        local_name = rec.get("local_name", name)
        # 'FB' extra so that the data starts on a multiple of 64, as torch writes it.
        base = offset + 30 + len(local_name) + 4
        pad = (-base) % 64
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        if flags & 0x0008:
            lcrc, lcs, lus = 0, 0, 0
        else:
            lcrc, lcs, lus = crc, rec.get("local_csize", len(payload)), rec.get("local_usize", len(data))
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, flags, method, 0, 0, lcrc, lcs, lus, len(local_name),
                           len(extra))
        out += local_name + extra
        data_start = len(out)
        assert data_start % 64 == 0
        out += payload
        if flags & 0x0008:
            out += struct.pack("<IIII", 0x08074B50, crc, len(payload), len(data))
        central.append((name, method, flags, crc, rec.get("central_csize", len(payload)),
                        rec.get("central_usize", len(data)), offset))
    cd_offset = len(out)
    for name, method, flags, crc, csize, usize, offset in central:
        if zip64:
            extra = struct.pack("<HHQQQ", 0x0001, 24, usize, csize, offset)
            csize32 = usize32 = offset32 = 0xFFFFFFFF
        else:
            extra = b""
            csize32, usize32, offset32 = csize, usize, offset
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, flags, method, 0, 0, crc, csize32, usize32,
                           len(name), len(extra), 0, 0, 0, 0, offset32)
        out += name + extra
    cd_size = len(out) - cd_offset
    eocd64 = len(out)
    count = len(central)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 0x031E, 45, 0, 0, count, count, cd_size, cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, eocd64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size,
                       0xFFFFFFFF if zip64 else cd_offset, 0)
    return bytes(out)


def checkpoint(pkl, storages, prefix="archive", zip64=False, deflate=False, byteorder=b"little", extra=()):
    """A torch-style archive: data.pkl, .format_version, .storage_alignment, byteorder, data/<key>..., version."""
    method = 8 if deflate else 0
    records = [dict(name="data.pkl", data=pkl, method=method),
               dict(name=".format_version", data=b"1", method=method),
               dict(name=".storage_alignment", data=b"64", method=method),
               dict(name="byteorder", data=byteorder, method=method)]
    for key, data in storages:
        records.append(dict(name="data/" + key, data=data, method=method))
    records.append(dict(name="version", data=b"3\n", method=method))
    records.extend(extra)
    return torch_zip(records, prefix=prefix, zip64=zip64)


# ---------------------------------------------------------------------------------------------------------------
# Pickles with torch's opcodes, written by Python's pickler through stand-in torch modules


def install_fake_torch():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    torch._utils = utils

    def make(module, name):
        f = lambda *a: None
        f.__module__, f.__name__, f.__qualname__ = module.__name__, name, name
        setattr(module, name, f)
        return f

    for n in ["_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter"]:
        make(utils, n)
    for n in ["FloatStorage", "HalfStorage", "BFloat16Storage", "LongStorage"]:
        cls = type(n, (), {})
        cls.__module__ = "torch"
        setattr(torch, n, cls)
    storage_mod = types.ModuleType("torch.storage")
    untyped = type("UntypedStorage", (), {})
    untyped.__module__ = "torch.storage"
    storage_mod.UntypedStorage = untyped
    torch.storage = storage_mod

    class DType:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return self.name  # pickles as GLOBAL torch <name>, as torch.dtype does

    DType.__module__ = "torch"
    for n in ["float8_e4m3fn", "float16"]:
        setattr(torch, n, DType(n))
    sys.modules.update({"torch": torch, "torch._utils": utils, "torch.storage": storage_mod})
    return torch


TORCH = install_fake_torch()


class Storage:
    """A storage record: key, storage class, element count, bytes."""

    def __init__(self, key, cls, numel, data):
        self.key, self.cls, self.numel, self.data = key, cls, numel, data


class Tensor:
    def __init__(self, storage, offset, size, stride, v3_dtype=None, parameter=False):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride
        self.v3_dtype, self.parameter = v3_dtype, parameter

    def __reduce_ex__(self, protocol):
        hooks = collections.OrderedDict()
        if self.v3_dtype is not None:
            call = (TORCH._utils._rebuild_tensor_v3,
                    (self.storage, self.offset, self.size, self.stride, False, hooks, self.v3_dtype))
        else:
            call = (TORCH._utils._rebuild_tensor_v2, (self.storage, self.offset, self.size, self.stride, False, hooks))
        if self.parameter:
            return (TORCH._utils._rebuild_parameter, (_Rebuilt(call), False, collections.OrderedDict()))
        return call


class _Rebuilt:
    def __init__(self, call):
        self.call = call

    def __reduce_ex__(self, protocol):
        return self.call


class TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel)
        return None


class LegacyPickler(pickle.Pickler):
    """torch's _legacy_save persistent id: ("storage", type, key, location, numel, view_metadata=None)."""

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.cls, obj.key, "cpu", obj.numel, None)
        return None


def legacy_file(state, storages, count_override=None, trailing=b""):
    """The five pickles torch's _legacy_save writes, then each storage as int64 count + raw elements."""
    out = io.BytesIO()
    pickle.dump(0x1950A86A20F9469CFC6C, out, protocol=2)  # MAGIC_NUMBER
    pickle.dump(1001, out, protocol=2)  # PROTOCOL_VERSION
    pickle.dump(dict(protocol_version=1001, little_endian=True, type_sizes=dict(short=2, int=4, long=4)), out,
                protocol=2)
    LegacyPickler(out, protocol=2).dump(state)
    keys = sorted(s.key for s in storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        storage = next(s for s in storages if s.key == key)
        count = storage.numel if count_override is None else count_override
        out.write(struct.pack("<q", count) + storage.data)
    data = out.getvalue() + trailing
    assert data.startswith(bytes.fromhex("80028a0a6cfc9c46f9206aa850192e") + b"\x80\x02M\xe9\x03.")
    return data


def torch_pickle(state):
    buffer = io.BytesIO()
    TorchLikePickler(buffer, protocol=2).dump(state)
    data = buffer.getvalue()
    pickletools.dis(data, out=io.StringIO())  # must parse; never executed
    return data


def floats(values, fmt="<f"):
    return b"".join(struct.pack(fmt, v) for v in values)


# ---------------------------------------------------------------------------------------------------------------
# Valid crafted checkpoints


def crafted_views():
    """Layouts a reader must get right; expected values are written out in TorchCheckpointReaderTests."""
    w = Storage("0", TORCH.FloatStorage, 2, floats([1.0, 2.0]))
    grid = Storage("1", TORCH.FloatStorage, 12, floats(range(12)))
    scalar = Storage("2", TORCH.LongStorage, 1, struct.pack("<q", 42))
    empty = Storage("3", TORCH.HalfStorage, 0, b"")
    f8 = Storage("4", TORCH.storage.UntypedStorage, 3, bytes([0x38, 0x40, 0x44]))
    tied = Storage("5", TORCH.HalfStorage, 4, floats([1.0, 2.0, 3.0, 4.0], "<e"))
    bf16 = Storage("6", TORCH.BFloat16Storage, 2, bytes([0x80, 0x3F, 0x00, 0xC0]))  # 1.0, -2.0
    state = collections.OrderedDict()
    state["w"] = Tensor(w, 0, (2,), (1,))
    state["transposed"] = Tensor(grid, 0, (4, 3), (1, 4))  # a 3x4 grid 0..11, transposed
    state["slice"] = Tensor(grid, 4, (4,), (1,))  # elements 4..7 of the same storage
    state["scalar"] = Tensor(scalar, 0, (), ())
    state["empty"] = Tensor(empty, 0, (0, 3), (3, 1))
    state["f8"] = Tensor(f8, 1, (2,), (1,), v3_dtype=TORCH.float8_e4m3fn)
    state["lm_head.weight"] = Tensor(tied, 0, (2, 2), (2, 1))
    state["embed.weight"] = Tensor(tied, 0, (2, 2), (2, 1))  # tied to lm_head.weight
    state["bf16"] = Tensor(bf16, 0, (2,), (1,), parameter=True)
    state["step"] = 7  # not a tensor: reported as skipped
    state._metadata = collections.OrderedDict([("", {"version": 1})])  # the BUILD torch writes for state_dict()
    storages = [(s.key, s.data) for s in [w, grid, scalar, empty, f8, tied, bf16]]
    return torch_pickle(state), storages


# ---------------------------------------------------------------------------------------------------------------
# Raw pickle assembly for hostile streams


def global_op(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def binunicode(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def marker(name):
    return "/tmp/nf4kit-pwned-" + name


def call_pickle(module, name, *string_args):
    """GLOBAL module.name, (args...), REDUCE, STOP: the classic payload."""
    body = global_op(module, name) + b"(" + b"".join(binunicode(a) for a in string_args) + b"tR."
    return b"\x80\x02" + body


def in_state_dict(value_ops):
    """An OrderedDict {'w': <value>} where value_ops pushes the value, as a state dict would hold it."""
    return (b"\x80\x02" + global_op("collections", "OrderedDict") + b"q\x00)Rq\x01" + binunicode("w") + value_ops
            + b"s.")


def write(relative, data):
    path = os.path.join(ROOT, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def many_views(count=4000, side=512):
    """One 1 MiB storage of zeros (deflated to about 1 KB) seen through `count` transposed views: reading the
    headers must not copy them (that would be `count` MiB), and a convert holds one copy at a time."""
    grid = Storage("0", TORCH.FloatStorage, side * side, bytes(4 * side * side))
    state = collections.OrderedDict()
    for i in range(count):
        state[f"layers.{i}.weight"] = Tensor(grid, 0, (side, side), (1, side))
    return torch_pickle(state), [(grid.key, grid.data)]


def main_many_views():
    pkl, storages = many_views()
    write("crafted/many-views.bin", checkpoint(pkl, storages, deflate=True))
    # A state-dict key safetensors reserves for its metadata object.
    w = Storage("0", TORCH.FloatStorage, 4, floats([1.0, 2.0, 3.0, 4.0]))
    state = collections.OrderedDict([("__metadata__", Tensor(w, 0, (2, 2), (2, 1)))])
    write("crafted/metadata-key.bin", checkpoint(torch_pickle(state), [(w.key, w.data)]))


def main():
    pkl, storages = crafted_views()
    write("crafted/views.bin", checkpoint(pkl, storages))
    write("crafted/views-deflated.bin", checkpoint(pkl, storages, deflate=True))
    write("crafted/views-zip64.bin", checkpoint(pkl, storages, zip64=True, prefix="renamed_prefix"))
    # Big-endian bytes of the same views, with byteorder 'big'.
    big = []
    for key, data in storages:
        size = {"0": 4, "1": 4, "2": 8, "3": 2, "4": 1, "5": 2, "6": 2}[key]
        big.append((key, b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))))
    write("crafted/views-bigendian.bin", checkpoint(pkl, big, byteorder=b"big"))
    for name in ["views.bin", "views-deflated.bin", "views-zip64.bin"]:
        with zipfile.ZipFile(os.path.join(ROOT, "crafted", name)) as z:  # our writer must satisfy Python's reader
            assert z.testzip() is None

    # data.pkl exactly as the spec's worked example (§5) quotes it from PyTorch 2.13: OrderedDict(w=[1.0, 2.0]).
    spec_pkl = bytes.fromhex(
        "80 02 63 63 6f 6c 6c 65 63 74 69 6f 6e 73 0a 4f 72 64 65 72 65 64 44 69 63 74 0a 71 00 29 52 71 01 58 01 00 00"
        " 00 77 71 02 63 74 6f 72 63 68 2e 5f 75 74 69 6c 73 0a 5f 72 65 62 75 69 6c 64 5f 74 65 6e 73 6f 72 5f 76 32"
        " 0a 71 03 28 28 58 07 00 00 00 73 74 6f 72 61 67 65 71 04 63 74 6f 72 63 68 0a 46 6c 6f 61 74 53 74 6f 72 61"
        " 67 65 0a 71 05 58 01 00 00 00 30 71 06 58 03 00 00 00 63 70 75 71 07 4b 02 74 71 08 51 4b 00 4b 02 85 71 09"
        " 4b 01 85 71 0a 89 68 00 29 52 71 0b 74 71 0c 52 71 0d 73 2e")
    assert len(spec_pkl) == 165
    write("crafted/spec-example.bin", checkpoint(spec_pkl, [("0", bytes.fromhex("0000803f00000040"))]))

    # A sharded folder: two shards plus the index transformers writes (shard prefixes follow the file names).
    a = Storage("0", TORCH.FloatStorage, 2, floats([1.0, 2.0]))
    b = Storage("0", TORCH.HalfStorage, 3, floats([0.5, 1.5, -2.0], "<e"))
    shards = [("pytorch_model-00001-of-00002.bin", collections.OrderedDict(a=Tensor(a, 0, (2,), (1,))), [a]),
              ("pytorch_model-00002-of-00002.bin", collections.OrderedDict(b=Tensor(b, 0, (3,), (1,))), [b])]
    for name, state, used in shards:
        write("crafted/sharded/" + name, checkpoint(torch_pickle(state), [(s.key, s.data) for s in used],
                                                    prefix=name[:-4]))
    index = ('{\n  "metadata": {\n    "total_size": 14\n  },\n  "weight_map": {\n'
             '    "a": "pytorch_model-00001-of-00002.bin",\n    "b": "pytorch_model-00002-of-00002.bin"\n  }\n}\n')
    write("crafted/sharded/pytorch_model.bin.index.json", index.encode())
    write("crafted/sharded-bad-index/pytorch_model.bin.index.json",
          index.replace('"b": "pytorch_model-00002', '"b": "../pytorch_model-00002').encode())

    w_storage = [("0", floats([1.0, 2.0]))]

    def w_tensor(key="0", numel=2, offset=0, size=2):
        return (global_op("torch._utils", "_rebuild_tensor_v2") + b"((" + binunicode("storage")
                + global_op("torch", "FloatStorage") + binunicode(key) + binunicode("cpu") + b"K" + bytes([numel])
                + b"tQ" + b"K" + bytes([offset]) + b"K" + bytes([size]) + b"\x85K\x01\x85\x89"
                + global_op("collections", "OrderedDict") + b")Rtq\x02R")

    # --- globals that would run code: each writes a marker if ever executed
    hostile = {
        "global-os-system": call_pickle("os", "system", "touch " + marker("os-system")),
        "global-posix-system": in_state_dict(global_op("posix", "system") + b"(" + binunicode(
            "touch " + marker("posix-system")) + b"tR"),
        "global-builtins-eval": call_pickle("builtins", "eval",
                                            "__import__('os').system('touch " + marker("eval") + "')"),
        "global-subprocess": b"\x80\x02" + global_op("subprocess", "check_call") + b"]("
        + binunicode("touch") + binunicode(marker("subprocess")) + b"e\x85R.",
        "global-functools-partial": b"\x80\x02" + global_op("functools", "partial") + b"(" + global_op("os", "system")
        + binunicode("touch " + marker("partial")) + b"tR)R.",
        # --- REDUCE / BUILD / SETITEM on things that are not allowed
        "reduce-storage-type": in_state_dict(global_op("torch", "FloatStorage") + b")R"),
        "reduce-on-string": in_state_dict(binunicode("os.system") + b")R"),
        "build-on-list": b"\x80\x02]}b.",
        "build-on-tensor": in_state_dict(w_tensor() + b"}b"),
        "setitem-on-list": b"\x80\x02]" + binunicode("k") + binunicode("v") + b"s.",
        "newobj-other-class": b"\x80\x02" + global_op("collections", "OrderedDict") + b")\x81.",
        "persid-not-storage": in_state_dict(b"(" + binunicode("module") + binunicode("x") + b"tQ"),
        # --- memo, stack and depth abuse
        "memo-unset": in_state_dict(b"h\x07"),
        "memo-flood": b"\x80\x02N" + b"".join(b"r" + struct.pack("<I", i * 7919) for i in range(5000)) + b".",
        "stack-flood": b"\x80\x02" + b"N" * 150_000 + b".",
        "mark-flood": b"\x80\x02" + b"(" * 20_000 + b"N.",
        "deep-nesting": b"\x80\x02)" + b"\x85" * 200 + b".",
        "list-cycle": b"\x80\x02]q\x00h\x00a.",
        "truncated-pickle": in_state_dict(w_tensor())[:-20],
        "unknown-opcode": b"\x80\x02" + b"(I1\n.",
        "protocol-4": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00}\x94.",
    }
    for name, data in hostile.items():
        deflate = name in ("stack-flood", "mark-flood", "memo-flood")
        write("hostile/" + name + ".bin", checkpoint(data, w_storage, deflate=deflate))

    good = in_state_dict(w_tensor())
    # --- storage record size must equal numel x element size (CVE-2026-24747)
    write("hostile/record-size-mismatch.bin", checkpoint(in_state_dict(w_tensor(numel=4)), w_storage))
    # A 1-element storage viewed with stride 0 as 2^40 elements: copying it out would need 4 TiB.
    expand = (global_op("torch._utils", "_rebuild_tensor_v2") + b"((" + binunicode("storage")
              + global_op("torch", "FloatStorage") + binunicode("0") + binunicode("cpu") + b"K\x02tQK\x00"
              + b"\x8a\x06" + (1 << 40).to_bytes(6, "little") + b"\x85K\x00\x85\x89}tR")
    write("hostile/stride-zero-expansion.bin", checkpoint(in_state_dict(expand), w_storage))
    write("hostile/view-out-of-bounds.bin", checkpoint(in_state_dict(w_tensor(offset=1, size=2)), w_storage))
    write("hostile/missing-record.bin", checkpoint(in_state_dict(w_tensor(key="9")), w_storage))

    base = [dict(name="data.pkl", data=good), dict(name="data/0", data=w_storage[0][1]),
            dict(name="version", data=b"3\n")]

    def variant(index, **changes):
        records = [dict(r) for r in base]
        records[index].update(changes)
        return records

    # --- zip-level attacks
    write("hostile/sizes-disagree-central.bin", torch_zip(variant(1, central_usize=4096)))
    write("hostile/sizes-disagree-local.bin", torch_zip(variant(1, flags=0x0800, local_sizes=True, local_usize=4096,
                                                                local_csize=4096)))
    write("hostile/path-traversal.bin", torch_zip(base + [dict(name="archive/../../x", raw=True, data=b"x")]))
    write("hostile/absolute-path.bin", torch_zip(base + [dict(name="/etc/nf4kit", raw=True, data=b"x")]))
    write("hostile/outside-prefix.bin", torch_zip(base + [dict(name="other/x", raw=True, data=b"x")]))
    write("hostile/duplicate-entry.bin", torch_zip(base + [dict(name="data/0", data=b"\0" * 8)]))
    # data/0's directory sizes cover the next entry's local header: two entries over the same bytes.
    write("hostile/overlapping-entries.bin", torch_zip(variant(1, central_usize=72, central_csize=72)))
    write("hostile/local-name-mismatch.bin", torch_zip(variant(1, local_name=b"archive/data/1")))
    crc_bad = bytearray(checkpoint(good, w_storage))
    index = crc_bad.index(floats([1.0, 2.0]))
    crc_bad[index + 3] ^= 0x01  # 1.0 -> a different float, CRC no longer matches
    write("hostile/crc-mismatch.bin", bytes(crc_bad))
    whole = checkpoint(good, w_storage)
    write("hostile/truncated.bin", whole[: len(whole) // 2])
    # A bomb by ratio: 16 MiB of zeros deflate to ~16 KiB (ratio ~1000:1).
    zeros = b"\0" * (16 << 20)
    bomb_pkl = in_state_dict(global_op("torch._utils", "_rebuild_tensor_v2") + b"((" + binunicode("storage")
                             + global_op("torch", "FloatStorage") + binunicode("0") + binunicode("cpu")
                             + b"J" + struct.pack("<i", len(zeros) // 4) + b"tQK\x00J"
                             + struct.pack("<i", len(zeros) // 4) + b"\x85K\x01\x85\x89}tR")
    write("hostile/deflate-ratio-bomb.bin", torch_zip([dict(name="data.pkl", data=bomb_pkl),
                                                       dict(name="data/0", data=zeros, method=8),
                                                       dict(name="version", data=b"3\n")]))
    # Below the ratio exemption (256 KiB) but above a lowered absolute cap in the test.
    small = b"\0" * (256 << 10)
    write("hostile/deflate-absolute-cap.bin", torch_zip([dict(name="data.pkl", data=good),
                                                         dict(name="data/0", data=small, method=8),
                                                         dict(name="version", data=b"3\n")]))
    # The directory declares 8 bytes; the stream inflates to 1 MiB.
    write("hostile/deflate-lies.bin", torch_zip([dict(name="data.pkl", data=good),
                                                 dict(name="data/0", data=b"\0" * (1 << 20), method=8,
                                                      central_usize=8, crc=zlib.crc32(b"\0" * 8)),
                                                 dict(name="version", data=b"3\n")]))
    write("hostile/torchscript.bin", torch_zip(base + [dict(name="constants.pkl", data=b"\x80\x02).")]))
    write("hostile/no-version.bin", torch_zip(base[:2]))
    # Legacy (pre-1.6) files: the spec's worked example (keys are pointer strings), then broken variants.
    lw = Storage("94058547932848", TORCH.FloatStorage, 6, floats(range(6)))
    lb = Storage("94058461467312", TORCH.HalfStorage, 2, floats([1.0, 2.0], "<e"))
    legacy_state = collections.OrderedDict(w=Tensor(lw, 0, (2, 3), (3, 1)), b=Tensor(lb, 0, (2,), (1,)))
    write("crafted/legacy.bin", legacy_file(legacy_state, [lw, lb]))
    write("hostile/legacy-count-mismatch.bin", legacy_file(legacy_state, [lw, lb], count_override=2))
    write("hostile/legacy-trailing-bytes.bin", legacy_file(legacy_state, [lw, lb], trailing=b"\0" * 4))
    write("hostile/legacy-truncated.bin", bytes.fromhex("80028a0a6cfc9c46f9206aa850192e") + b"\x80\x02M\xe9\x03.")
    write("hostile/bare-pickle.bin", call_pickle("os", "system", "touch " + marker("bare-pickle")))
    write("hostile/lfs-pointer.bin", b"version https://git-lfs.github.com/spec/v1\noid sha256:"
          + b"0" * 64 + b"\nsize 123\n")


if __name__ == "__main__":
    main()
