"""The fixtures' files: where they go, tensors as JSON, the JSON layout (one line per case), safetensors
and CSV writers and the safetensors reader."""

import json
import os
import struct

import numpy as np


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
TRAJ = os.path.join(FIXTURES, "trajectory")


def tensor_json(name, arr, dtype="f64"):
    arr = np.asarray(arr)
    if dtype == "i32":
        data = [int(v) for v in arr.reshape(-1)]
    else:
        data = [float(v) for v in arr.reshape(-1)]
    return {"name": name, "dtype": dtype, "shape": list(arr.shape), "data": data}


def plain_json(arr):
    arr = np.asarray(arr, dtype=np.float64)
    return {"shape": list(arr.shape), "data": [float(v) for v in arr.reshape(-1)]}


def dump_json(path, obj):
    # Compact numbers, but one line per op case / per optimizer run so diffs stay readable.
    with open(path, "w") as f:
        if "cases" in obj:
            lines = [json.dumps(c, separators=(",", ":"), allow_nan=False) for c in obj["cases"]]
            f.write('{"cases": [\n' + ",\n".join(lines) + "\n]}\n")
        else:
            f.write("{\n")
            models = list(obj.items())
            for mi, (tag, entry) in enumerate(models):
                f.write(json.dumps(tag) + ": {\n")
                items = list(entry.items())
                for i, (k, v) in enumerate(items):
                    sep = "," if i + 1 < len(items) else ""
                    f.write("  " + json.dumps(k) + ": " + json.dumps(v, separators=(",", ":"), allow_nan=False) + sep + "\n")
                f.write("}" + ("," if mi + 1 < len(models) else "") + "\n")
            f.write("}\n")
    with open(path) as f:
        assert json.load(f) == obj, f"JSON round trip failed for {path}"


def write_safetensors(path, tensors):
    """tensors: list of (name, float32 ndarray), written in that order."""
    header = {}
    blobs = []
    off = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        b = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    pad = (-(8 + len(hjson))) % 8
    hjson += b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns an ordered dict name -> ndarray (ordered by data offset)."""
    with open(path, "rb") as f:
        raw = f.read()
    (hlen,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + hlen].decode("utf-8"))
    data = raw[8 + hlen:]
    assert (8 + hlen) % 8 == 0, "data section not 8-aligned"
    header.pop("__metadata__", None)
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    out = {}
    expected = 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, e = info["data_offsets"]
        assert b == expected, f"gap/overlap in safetensors at {name}"
        dt = np.dtype(dtypes[info["dtype"]])
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert e - b == count * dt.itemsize, f"size mismatch for {name}"
        out[name] = np.frombuffer(data[b:e], dtype=dt).reshape(info["shape"]).copy()
        expected = e
    assert expected == len(data), "trailing bytes in safetensors"
    return out


def write_csv(path, arr, is_int=False):
    arr = np.asarray(arr)
    if arr.ndim == 1:
        arr = arr[:, None]
    with open(path, "w") as f:
        for row in arr:
            if is_int:
                f.write(",".join(str(int(v)) for v in row) + "\n")
            else:
                # repr of the float32 value widened to float64: exact, parses back to the same float32
                f.write(",".join(repr(float(v)) for v in row) + "\n")
