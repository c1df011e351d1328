#!/usr/bin/env python3
"""Read a safetensors file with nothing but the standard library (json +
struct) and check its structure, optionally against expected tensors.

    check_safetensors.py FILE [EXPECTED_JSON]

EXPECTED_JSON maps names to {"dtype": ..., "shape": [...], "values": [...]}
("values" optional); float values are compared exactly (they are written
from exact decimals). With "only": true at the top level (not a tensor),
the file must hold exactly the expected names, no others.
Exit status 0 when the file is well-formed and matches.
"""
import json
import struct
import sys

SIZES = {"F32": 4, "F64": 8, "I64": 8}
FORMATS = {"F32": "f", "F64": "d", "I64": "q"}


def main():
    path = sys.argv[1]
    expected = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert 8 + n <= len(raw), "header runs past the end of the file"
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    spans = []
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            assert all(isinstance(v, str) for v in info.values()), "metadata values must be strings"
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        assert end - begin == count * SIZES[dtype], f"{name}: size mismatch"
        assert 0 <= begin <= end <= len(data), f"{name}: offsets outside the data"
        spans.append((begin, end, name))
        tensors[name] = (dtype, shape, list(struct.unpack("<%d%s" % (count, FORMATS[dtype]), data[begin:end])))
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        assert e0 <= b1, f"{n0} and {n1} overlap"
    only = expected.pop("only", False)
    if only:
        extra = sorted(set(tensors) - set(expected))
        assert not extra, f"tensors not expected: {extra}"
    for name, want in expected.items():
        assert name in tensors, f"missing {name}"
        dtype, shape, values = tensors[name]
        assert dtype == want["dtype"] and shape == want["shape"], f"{name}: {dtype} {shape}"
        if "values" not in want:
            continue
        got = [float(v) for v in values]
        exp = [float(struct.unpack("<f", struct.pack("<f", v))[0]) if dtype == "F32" else float(v)
               for v in want["values"]]
        assert got == exp, f"{name}: {got} != {exp}"
    print(f"{path}: {len(tensors)} tensors, header {n} bytes, data {len(data)} bytes: ok")


if __name__ == "__main__":
    main()
