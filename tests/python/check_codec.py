#!/usr/bin/env python3
"""Interop check of Bittensor.Protocol's TensorCodec against Python msgpack + msgpack-numpy.

Usage: check_codec.py OUT_DIR CASE...   where each CASE is a prefix P with files
    P.msgpack   a buffer our C# codec wrote
    P.json      {"dtype": "<f4", "shape": [..]}
    P.raw       the expected elements, raw little-endian
Each buffer must decode with msgpack.unpackb(buf, object_hook=msgpack_numpy.decode) (what a 2021
peer does) to exactly the expected array, and re-packing that array with msgpack_numpy.encode must
give the same bytes. Then two tensors are packed by Python into OUT_DIR for the C# side to decode:
    py_f32.msgpack  float32 [2, 3, 4] = arange(24) * 0.5 - 3
    py_i64.msgpack  int64 [1, 5] = [0, 1, 50256, 2**40, -7]
Exit 0 on success, 1 on a mismatch, 2 when msgpack / msgpack_numpy / numpy are missing.
"""
import json
import sys

try:
    import msgpack
    import msgpack_numpy
    import numpy as np
except ImportError as e:  # the C# test reports this text
    print(f"missing Python module: {e.name} (install python3-msgpack-numpy python3-numpy)", file=sys.stderr)
    sys.exit(2)


def check_case(prefix):
    with open(prefix + ".msgpack", "rb") as f:
        buf = f.read()
    with open(prefix + ".json") as f:
        meta = json.load(f)
    with open(prefix + ".raw", "rb") as f:
        raw = f.read()
    expected = np.frombuffer(raw, dtype=np.dtype(meta["dtype"])).reshape(meta["shape"])
    got = msgpack.unpackb(buf, object_hook=msgpack_numpy.decode)
    if not isinstance(got, np.ndarray):
        return f"{prefix}: decoded to {type(got).__name__}, not ndarray"
    if got.dtype.str != meta["dtype"]:
        return f"{prefix}: dtype {got.dtype.str} != {meta['dtype']}"
    if list(got.shape) != list(meta["shape"]):
        return f"{prefix}: shape {list(got.shape)} != {meta['shape']}"
    if got.tobytes() != expected.tobytes():
        return f"{prefix}: values differ"
    repacked = msgpack.packb(got, default=msgpack_numpy.encode)
    if repacked != buf:
        return f"{prefix}: Python packs the same array differently:\n  ours   {buf[:80].hex()}\n  python {repacked[:80].hex()}"
    return None


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 1
    out_dir, cases = argv[1], argv[2:]
    errors = [e for e in (check_case(c) for c in cases) if e]
    f32 = (np.arange(24, dtype=np.float32) * np.float32(0.5) - np.float32(3)).reshape(2, 3, 4)
    i64 = np.array([[0, 1, 50256, 2**40, -7]], dtype=np.int64)
    for name, arr in (("py_f32", f32), ("py_i64", i64)):
        with open(f"{out_dir}/{name}.msgpack", "wb") as f:
            f.write(msgpack.packb(arr, default=msgpack_numpy.encode))
    for e in errors:
        print(e, file=sys.stderr)
    print(f"checked {len(cases)} C# buffers with msgpack {msgpack.version} msgpack-numpy; wrote 2 Python buffers")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
