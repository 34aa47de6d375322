#!/usr/bin/env python3
"""NumPy reference of `train --monitor` (runtime/monitor.c), written to Tests/Fixtures/monitor.json.

Run from the repository root:  python3 Tests/Reference/reference_monitor.py

Model CLS of ref_mlp.py (Linear(20,16) ReLU Linear(16,12) Tanh Linear(12,4), cross-entropy) from
trajectory/cls_init.safetensors, one SGD step (lr 0.1) on the first 16 samples of trajectory/cls_x.npy/cls_y.npy, in
float64. Expected, keyed as the trainer's JSONL line:
  w_norm/P, g_norm/P, update_ratio/P   ‖W after‖₂, ‖∂L/∂W‖₂, ‖W after − W before‖₂ / ‖W before‖₂ per parameter;
  activations h1 (ReLU), h3 (tanh), h4 (logits): mean, population std, the fraction exactly 0, the ReLU's fraction
  of units (columns) 0 on every sample, tanh's fraction with |v| ≥ 0.99, and the 30-bucket histogram of monitor.c
  (bucket i = ceil((v − min) / w) − 1 clamped, w = (max − min) / 30, limits min + (i+1)·w, the last max).
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_files import FIXTURES, TRAJ, read_safetensors  # noqa: E402
from ref_mlp import CLS  # noqa: E402

BATCH, LR, BINS = 16, 0.1, 30


def histogram(v):
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return {"bucket_limit": [hi], "bucket": [int(v.size)]}
    w = (hi - lo) / BINS
    k = np.clip(np.ceil((v - lo) / w) - 1, 0, BINS - 1).astype(int)
    limits = [lo + (i + 1) * w for i in range(BINS - 1)] + [hi]
    return {"bucket_limit": limits, "bucket": np.bincount(k.ravel(), minlength=BINS).tolist()}


def act_stats(v, kind):
    v = v.reshape(v.shape[0], -1)
    out = {"mean": float(v.mean()), "std": float(v.std()), "zero": float(np.mean(v == 0)),
           "min": float(v.min()), "max": float(v.max()), "num": int(v.size), "sum": float(v.sum()),
           "sum_squares": float((v * v).sum())}
    if kind == "relu":
        out["dead"] = float(np.mean(np.all(v == 0, axis=0)))
    if kind == "tanh":
        out["saturated"] = float(np.mean(np.abs(v) >= 0.99))
    out.update(histogram(v))
    return out


def main():
    init = read_safetensors(os.path.join(TRAJ, "cls_init.safetensors"))
    P = {k: np.array(v, dtype=np.float64) for k, v in init.items()}
    x = np.load(os.path.join(TRAJ, "cls_x.npy"))[:BATCH].astype(np.float64)
    y = np.load(os.path.join(TRAJ, "cls_y.npy"))[:BATCH]
    acts = CLS.forward(P, x)
    loss, G = CLS.loss_and_grad(P, x, y)
    params = {}
    for k in CLS.param_keys():
        new = P[k] - LR * G[k]
        params[k] = {"w_norm": float(np.linalg.norm(new)), "g_norm": float(np.linalg.norm(G[k])),
                     "update_ratio": float(np.linalg.norm(new - P[k]) / np.linalg.norm(P[k]))}
    kinds = {1: "relu", 3: "tanh", 4: ""}
    out = {"batch": BATCH, "lr": LR, "loss": loss, "params": params,
           "acts": {f"h{i}": dict(kind=k, **act_stats(acts[i + 1], k)) for i, k in kinds.items()}}
    path = os.path.join(FIXTURES, "monitor.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
