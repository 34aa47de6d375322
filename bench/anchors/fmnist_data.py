"""Fashion-MNIST for the anchors: reads the IDX files (raw or .gz) of the MNIST layout that nncc's trainer
reads with --data, keeps the images as uint8 and returns them as float32 in [0, 1] (x / 255), labels int64."""
import gzip
import os

import numpy as np


def _open(directory, stem):
    for name, opener in ((stem, open), (stem + ".gz", gzip.open)):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with opener(path, "rb") as f:
                return f.read()
    raise FileNotFoundError(f"{directory}: no {stem} or {stem}.gz")


def _idx(raw, want_magic):
    magic = int.from_bytes(raw[:4], "big")
    if magic != want_magic:
        raise ValueError(f"IDX magic {magic}, expected {want_magic}")
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    return data.reshape(shape[0], -1) if ndim > 1 else data


def load(directory):
    """(x_train, y_train, x_test, y_test): x float32 (n, 784) in [0, 1], y int64 (n,)."""
    out = []
    for split in ("train", "t10k"):
        x = _idx(_open(directory, f"{split}-images-idx3-ubyte"), 2051)
        y = _idx(_open(directory, f"{split}-labels-idx1-ubyte"), 2049)
        out += [x.astype(np.float32) / np.float32(255), y.astype(np.int64)]
    return tuple(out)


def batches(n, batch, rng):
    """One epoch's batches of sample indices: a fresh permutation, the partial last batch kept (as nncc does)."""
    order = rng.permutation(n)
    return [order[i:i + batch] for i in range(0, n, batch)]


def arguments(description):
    """The command line both anchors share; each adds its own flags before parsing."""
    import argparse
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--dims", default="784,256,128,10")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    return ap
