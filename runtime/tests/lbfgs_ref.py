#!/usr/bin/env python3
"""lbfgs_ref.py — the float64 references e2e_lbfgs.sh and e2e_insight.sh compare the toy trainers with
(runtime/tests/toy_model.c: softmax regression, D = 5 features, C = 3 classes; TOY_LBFGS adds (l2/2)·‖θ‖²).

    lbfgs_ref.py init OUT.safetensors SEED
        writes initial weights: weight (3, 5) ~ U(-0.4, 0.4), bias 0, seen 0 (the toy's table: seen is F32, not a counter).
    lbfgs_ref.py trajectory X.npy Y.npy INIT LOG.jsonl SAVED [--fixed-step] [name=value ...]
        runs Tests/Reference/reference_lbfgs.py's LBFGS (torch.optim.LBFGS transcribed, float64) from INIT for as
        many epochs as LOG has, with torch's keyword arguments (lr, max_iter, history_size, ...) and l2; compares
        every iteration's loss and every epoch's train_loss (1e-4 relative) and the final weights (1e-4 absolute
        + 1e-3 relative) with the trainer's LOG and SAVED.
    lbfgs_ref.py minimum X.npy Y.npy SAVED L2
        the unique minimum of the strictly convex loss by Newton's method (float64, to machine precision); the
        trainer's SAVED weights must give a loss within 1e-6 relative of it and lie within 2e-3 of the minimizer
        (what a float32 loss resolves: its rounding, 6e-8 relative, at curvature ≥ l2), and its loss at least 0.1
        above it from INIT (so the check is not vacuous; only with INIT given).
    lbfgs_ref.py saliency X.npy WEIGHTS INDEX CLASS SCORE
        the class score (logit) of sample INDEX, w_c·x + b_c, against the trainer's printed SCORE (1e-5 relative).
    lbfgs_ref.py maximize WEIGHTS CLASS LR LOG.jsonl
        a linear unit's ascent without regularizers: each step adds lr·w/rms(w), so the value after t steps is
        v₀ + t·lr·‖w‖²/rms(w); every logged value within 1e-4 relative (of the total rise) of that line.
Each prints one line and exits 0 when the comparison holds, 1 when it does not.
"""

import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "Tests", "Reference"))
from reference_lbfgs import LBFGS  # noqa: E402

C, D = 3, 5


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    types = {"F32": "<f4", "I64": "<i8"}
    out = {}
    for k, v in header.items():
        if v["dtype"] not in types:
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name, arr, dtype in tensors:
        b = np.ascontiguousarray(arr, dtype={"F32": "<f4", "I64": "<i8"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-(8 + len(h))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def theta(path):
    w = read_st(path)
    return np.concatenate([w["weight"].reshape(-1), w["bias"].reshape(-1)]).astype(np.float64)


def closure_for(x, y, l2):
    """The toy's full-batch loss: mean cross-entropy of x·Wᵀ + b, plus (l2/2)·‖θ‖²; and its gradient."""
    n = len(y)

    def f(v):
        W, b = v[:C * D].reshape(C, D), v[C * D:]
        z = x @ W.T + b
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(n), y])) + 0.5 * l2 * (v @ v)
        dz = p.copy()
        dz[np.arange(n), y] -= 1
        dz /= n
        g = np.concatenate([(dz.T @ x).reshape(-1), dz.sum(axis=0)]) + l2 * v
        return loss, g
    return f


def hessian(x, v, l2):
    n = len(x)
    W, b = v[:C * D].reshape(C, D), v[C * D:]
    z = x @ W.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    xa = np.hstack([x, np.ones((n, 1))])   # (n, D + 1): the weight row's inputs and the bias's 1
    H = np.zeros((C * (D + 1), C * (D + 1)))
    for i in range(n):
        S = np.diag(p[i]) - np.outer(p[i], p[i])
        H += np.kron(S, np.outer(xa[i], xa[i])) / n
    # H is ordered (class, [features, 1]); θ is [W (class, feature) ..., b (class)]: permute
    perm = [c * (D + 1) + k for c in range(C) for k in range(D)] + [c * (D + 1) + D for c in range(C)]
    return H[np.ix_(perm, perm)] + l2 * np.eye(C * (D + 1))


def data(xp, yp):
    return np.load(xp).astype(np.float32).astype(np.float64), np.load(yp).astype(np.int64)


def cmd_init(out, seed):
    rng = np.random.default_rng(int(seed))
    write_st(out, [("weight", rng.uniform(-0.4, 0.4, (C, D)), "F32"), ("bias", np.zeros(C), "F32"),
                   ("seen", np.zeros(1), "F32")])
    print(f"wrote {out}")
    return 0


def cmd_trajectory(xp, yp, init, log, saved, *opts):
    kw = {"history_size": 10}
    l2, line_search = 0.05, "strong_wolfe"
    for o in opts:
        if o == "--fixed-step":
            line_search = None
            continue
        k, v = o.split("=")
        if k == "l2":
            l2 = float(v)
        else:
            kw[k] = int(v) if k in ("max_iter", "history_size", "max_eval") else float(v)
    lines = [json.loads(s) for s in open(log)]
    got_iters = [r["loss"] for r in lines if "step" in r]
    got_epochs = [r["train_loss"] for r in lines if "train_loss" in r]
    x, y = data(xp, yp)
    v = theta(init)
    opt = LBFGS(line_search=line_search, **kw)
    f = closure_for(x, y, l2)
    iters, epochs = [], []
    for _ in range(len(got_epochs)):
        epochs.append(opt.step(v, f, iters))
    want = theta(saved)
    worst_loss = max(abs(a - b) / abs(b) for a, b in zip(got_iters + got_epochs, iters + epochs))
    werr = np.max(np.abs(want - v) / (1e-4 + 1e-3 * np.abs(v)))
    ok = len(got_iters) == len(iters) and worst_loss <= 1e-4 and werr <= 1
    print(f"{len(got_iters)} iterations (reference {len(iters)}), {len(got_epochs)} epochs: losses within "
          f"{worst_loss:.2e} relative (1e-4), weights {werr:.3f} of the tolerance 1e-4 + 1e-3·|w|")
    return 0 if ok else 1


def cmd_minimum(xp, yp, saved, l2, init=None):
    x, y = data(xp, yp)
    l2 = float(l2)
    f = closure_for(x, y, l2)
    v = np.zeros(C * (D + 1))
    for _ in range(50):
        _, g = f(v)
        v -= np.linalg.solve(hessian(x, v, l2), g)
    fmin, gmin = f(v)
    got = theta(saved)
    fgot, _ = f(got)
    dw = float(np.max(np.abs(got - v)))
    rel = (fgot - fmin) / fmin
    ok = np.max(np.abs(gmin)) < 1e-12 and 0 <= rel <= 1e-6 and dw <= 2e-3
    msg = (f"Newton's minimum {fmin:.12g} (max |g| {np.max(np.abs(gmin)):.1e}); the trainer's weights: loss "
           f"{rel:.2e} relative above it (1e-6), {dw:.2e} from the minimizer (2e-3)")
    if init:
        f0, _ = f(theta(init))
        ok = ok and f0 - fmin >= 0.1
        msg += f"; from {f0:.4g} at the start"
    print(msg)
    return 0 if ok else 1


def cmd_saliency(xp, weights, index, c, score):
    x = np.load(xp).astype(np.float64)[int(index)]
    w = read_st(weights)
    want = float(w["weight"][int(c)].astype(np.float64) @ x + w["bias"][int(c)])
    rel = abs(float(score) - want) / max(abs(want), 1e-6)
    print(f"printed score {score}, w_c·x + b_c = {want:.9g}: {rel:.1e} relative (1e-5)")
    return 0 if rel <= 1e-5 else 1


def cmd_maximize(weights, c, lr, log):
    w = read_st(weights)["weight"][int(c)].astype(np.float64)
    rise = float(lr) * (w @ w) / np.sqrt(np.mean(w * w))
    values = [json.loads(s)["value"] for s in open(log)]
    want = [values[0] + t * rise for t in range(len(values))]
    worst = max(abs(a - b) for a, b in zip(values, want)) / (rise * (len(values) - 1))
    print(f"{len(values) - 1} steps of {rise:.6g} each: the logged values within {worst:.1e} of the line (1e-4 of the rise)")
    return 0 if len(values) > 1 and worst <= 1e-4 else 1


def main(argv):
    cmds = {"init": cmd_init, "trajectory": cmd_trajectory, "minimum": cmd_minimum, "saliency": cmd_saliency,
            "maximize": cmd_maximize}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
