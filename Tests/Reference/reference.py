#!/usr/bin/env python3
"""Independent NumPy reference for nncc.

Run from the repository root:

    python3 Tests/Reference/reference.py

It rewrites everything under Tests/Fixtures/:

  ops.json                         per-op forward values and vector-Jacobian products
  trajectory/cls_x.npy, cls_y.npy  classification data (float32 (70,20), int64 (70,))
  trajectory/reg_x.npy, reg_y.npy  regression data (float32 (70,6), float32 (70,2))
  trajectory/cls_x.csv, cls_y.csv  the classification data as CSV (no header)
  trajectory/reg_x.csv, reg_y.csv  the regression data as CSV (no header)
  trajectory/cls_init.safetensors  initial weights of model CLS (F32)
  trajectory/reg_init.safetensors  initial weights of model REG (F32)
  trajectory/expected.json         per-step losses and final parameters for four optimizers

Semantics follow PyTorch (nn.Linear, F.cross_entropy, F.mse_loss, torch.optim.SGD,
torch.optim.Adam). All arithmetic is float64. Only numpy is needed. Random numbers come
from numpy.random.RandomState, whose streams are frozen, so the outputs are reproducible
across numpy versions.

Every VJP written here is checked against central finite differences (float64) before
anything is written; the script aborts if any check fails.
"""

import json
import math
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optim  # noqa: E402  (optimizers and schedules of issue 3)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(ROOT, "Tests", "Fixtures")
TRAJ = os.path.join(FIXTURES, "trajectory")

FD_H = 1e-6
FD_TOL = 1e-6


# ---------------------------------------------------------------------------
# Primitive ops: forward(inputs, attrs) -> output ; vjp(inputs, attrs, out, g) -> grads
# ---------------------------------------------------------------------------

def _log_softmax(x):
    m = np.max(x, axis=-1, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def _sigmoid(x):
    # numerically stable logistic
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _reduce_count(reduction, n):
    if reduction == "mean":
        return float(n)
    if reduction == "sum":
        return 1.0
    raise ValueError(reduction)


def f_linear(ins, a):
    y = ins[0] @ ins[1].T
    if len(ins) == 3:
        y = y + ins[2]
    return y


def b_linear(ins, a, out, g):
    x, w = ins[0], ins[1]
    grads = [g @ w, g.T @ x]
    if len(ins) == 3:
        grads.append(g.sum(axis=0))
    return grads


def _unbroadcast(g, shape):
    # sum g down to `shape` (numpy/PyTorch broadcasting rules)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, s in enumerate(shape):
        if s == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g.reshape(shape)


OPS = {
    "linear": (f_linear, b_linear),
    "matmul": (lambda ins, a: ins[0] @ ins[1],
               lambda ins, a, o, g: [g @ ins[1].T, ins[0].T @ g]),
    "add": (lambda ins, a: ins[0] + ins[1],
            lambda ins, a, o, g: [_unbroadcast(g, ins[0].shape), _unbroadcast(g, ins[1].shape)]),
    "sub": (lambda ins, a: ins[0] - ins[1],
            lambda ins, a, o, g: [_unbroadcast(g, ins[0].shape), _unbroadcast(-g, ins[1].shape)]),
    "mul": (lambda ins, a: ins[0] * ins[1],
            lambda ins, a, o, g: [_unbroadcast(g * ins[1], ins[0].shape),
                                  _unbroadcast(g * ins[0], ins[1].shape)]),
    "div": (lambda ins, a: ins[0] / ins[1],
            lambda ins, a, o, g: [_unbroadcast(g / ins[1], ins[0].shape),
                                  _unbroadcast(-g * ins[0] / ins[1] ** 2, ins[1].shape)]),
    "relu": (lambda ins, a: np.maximum(ins[0], 0.0),
             lambda ins, a, o, g: [g * (ins[0] > 0)]),
    "sigmoid": (lambda ins, a: _sigmoid(ins[0]),
                lambda ins, a, o, g: [g * o * (1.0 - o)]),
    "tanh": (lambda ins, a: np.tanh(ins[0]),
             lambda ins, a, o, g: [g * (1.0 - o * o)]),
    "exp": (lambda ins, a: np.exp(ins[0]),
            lambda ins, a, o, g: [g * o]),
    "log": (lambda ins, a: np.log(ins[0]),
            lambda ins, a, o, g: [g / ins[0]]),
    "neg": (lambda ins, a: -ins[0],
            lambda ins, a, o, g: [-g]),
    "sqrt": (lambda ins, a: np.sqrt(ins[0]),
             lambda ins, a, o, g: [g / (2.0 * o)]),
    # d/dx log_softmax: g - softmax * sum(g)
    "log_softmax": (lambda ins, a: _log_softmax(ins[0]),
                    lambda ins, a, o, g: [g - np.exp(o) * g.sum(axis=-1, keepdims=True)]),
    # d/dx softmax: s * (g - sum(g * s))
    "softmax": (lambda ins, a: np.exp(_log_softmax(ins[0])),
                lambda ins, a, o, g: [o * (g - (g * o).sum(axis=-1, keepdims=True))]),
    "sum": (lambda ins, a: np.sum(ins[0]),
            lambda ins, a, o, g: [np.full_like(ins[0], g)]),
    "mean": (lambda ins, a: np.mean(ins[0]),
             lambda ins, a, o, g: [np.full_like(ins[0], g / ins[0].size)]),
    "sum_batch": (lambda ins, a: ins[0].sum(axis=0),
                  lambda ins, a, o, g: [np.broadcast_to(g, ins[0].shape).copy()]),
}


def f_cross_entropy(ins, a):
    logits, y = ins
    n = logits.shape[0]
    lp = _log_softmax(logits)
    return -lp[np.arange(n), y].sum() / _reduce_count(a["reduction"], n)


def b_cross_entropy(ins, a, out, g):
    logits, y = ins
    n = logits.shape[0]
    p = np.exp(_log_softmax(logits))
    p[np.arange(n), y] -= 1.0
    return [g * p / _reduce_count(a["reduction"], n), None]


def f_mse(ins, a):
    d = ins[0] - ins[1]
    return (d * d).sum() / _reduce_count(a["reduction"], d.size)


def b_mse(ins, a, out, g):
    d = ins[0] - ins[1]
    gp = g * 2.0 * d / _reduce_count(a["reduction"], d.size)
    return [gp, -gp]


OPS["cross_entropy"] = (f_cross_entropy, b_cross_entropy)
OPS["mse"] = (f_mse, b_mse)


# --- Issue 3: activations, losses and penalties (PyTorch semantics) --------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _softplus(x):
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _gelu(x, approximate):
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _gelu_grad(x, approximate):
    if approximate == "tanh":
        c = math.sqrt(2.0 / math.pi)
        u = c * (x + 0.044715 * x ** 3)
        t = np.tanh(u)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * x * x)
    cdf = 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


def _slope(a):
    return float(a.get("negative_slope", "0.01"))


def _alpha(a):
    return float(a.get("alpha", "1.0"))


OPS.update({
    "abs": (lambda ins, a: np.abs(ins[0]), lambda ins, a, o, g: [g * np.sign(ins[0])]),
    "erf": (lambda ins, a: _erf(ins[0]),
            lambda ins, a, o, g: [g * 2.0 / math.sqrt(math.pi) * np.exp(-ins[0] ** 2)]),
    "softplus": (lambda ins, a: _softplus(ins[0]), lambda ins, a, o, g: [g * _sigmoid(ins[0])]),
    # torch.nn.LeakyReLU(negative_slope)
    "leaky_relu": (lambda ins, a: np.where(ins[0] > 0, ins[0], _slope(a) * ins[0]),
                   lambda ins, a, o, g: [g * np.where(ins[0] > 0, 1.0, _slope(a))]),
    # torch.nn.ELU(alpha): x > 0 ? x : alpha*(exp(x) - 1)
    "elu": (lambda ins, a: np.where(ins[0] > 0, ins[0], _alpha(a) * np.expm1(np.minimum(ins[0], 0.0))),
            lambda ins, a, o, g: [g * np.where(ins[0] > 0, 1.0, _alpha(a) * np.exp(np.minimum(ins[0], 0.0)))]),
    # torch.nn.GELU(approximate="none" | "tanh")
    "gelu": (lambda ins, a: _gelu(ins[0], a.get("approximate", "none")),
             lambda ins, a, o, g: [g * _gelu_grad(ins[0], a.get("approximate", "none"))]),
})


def f_gather_label(ins, a):
    z, y = ins
    return np.repeat(z[np.arange(z.shape[0]), y][:, None], z.shape[1], axis=1)


def b_gather_label(ins, a, out, g):
    z, y = ins
    gz = np.zeros_like(z)
    gz[np.arange(z.shape[0]), y] = g.sum(axis=1)
    return [gz, None]


def f_cross_entropy_ls(ins, a):
    """torch.nn.CrossEntropyLoss(label_smoothing=eps): (1-eps)*nll + eps*mean_j(-log p_j) per sample."""
    logits, y = ins
    n, k = logits.shape
    eps = float(a["label_smoothing"])
    lp = _log_softmax(logits)
    per = -(1.0 - eps) * lp[np.arange(n), y] - eps * lp.mean(axis=1)
    return per.sum() / _reduce_count(a["reduction"], n)


def b_cross_entropy_ls(ins, a, out, g):
    logits, y = ins
    n, k = logits.shape
    eps = float(a["label_smoothing"])
    q = np.full(logits.shape, eps / k)
    q[np.arange(n), y] += 1.0 - eps
    return [g * (np.exp(_log_softmax(logits)) - q) / _reduce_count(a["reduction"], n), None]


def f_multi_margin(ins, a):
    """torch.nn.MultiMarginLoss(margin): sum_{j != y} max(0, margin - z_y + z_j) / k per sample
    (divide_by_classes "false" gives the lectures' plain sum)."""
    z, y = ins
    n, k = z.shape
    m = float(a.get("margin", "1"))
    h = np.maximum(0.0, m - z[np.arange(n), y][:, None] + z)
    h[np.arange(n), y] = 0.0
    per = h.sum(axis=1) / (k if a.get("divide_by_classes", "true") == "true" else 1.0)
    return per.sum() / _reduce_count(a["reduction"], n)


def b_multi_margin(ins, a, out, g):
    z, y = ins
    n, k = z.shape
    m = float(a.get("margin", "1"))
    act = (m - z[np.arange(n), y][:, None] + z > 0).astype(np.float64)
    act[np.arange(n), y] = 0.0
    gz = act.copy()
    gz[np.arange(n), y] = -act.sum(axis=1)
    scale = (k if a.get("divide_by_classes", "true") == "true" else 1.0) * _reduce_count(a["reduction"], n)
    return [g * gz / scale, None]


def f_bce_with_logits(ins, a):
    """torch.nn.BCEWithLogitsLoss: max(z,0) - z*y + log(1 + exp(-|z|)), over every element."""
    z, y = ins
    return (_softplus(z) - z * y).sum() / _reduce_count(a["reduction"], z.size)


def b_bce_with_logits(ins, a, out, g):
    z, y = ins
    c = _reduce_count(a["reduction"], z.size)
    return [g * (_sigmoid(z) - y) / c, -g * z / c]


def f_penalty(ins, a):
    """l1 * sum|w| + l2 * sum w^2 over every input tensor."""
    l1, l2 = float(a.get("l1", "0")), float(a.get("l2", "0"))
    return sum(l1 * np.abs(w).sum() + l2 * (w * w).sum() for w in ins)


def b_penalty(ins, a, out, g):
    l1, l2 = float(a.get("l1", "0")), float(a.get("l2", "0"))
    return [g * (l1 * np.sign(w) + 2.0 * l2 * w) for w in ins]


OPS["gather_label"] = (f_gather_label, b_gather_label)
OPS["cross_entropy_ls"] = (f_cross_entropy_ls, b_cross_entropy_ls)
OPS["multi_margin"] = (f_multi_margin, b_multi_margin)
OPS["bce_with_logits"] = (f_bce_with_logits, b_bce_with_logits)
OPS["penalty"] = (f_penalty, b_penalty)


# ---------------------------------------------------------------------------
# Finite differences
# ---------------------------------------------------------------------------

def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0), 1e-8)
    return float(np.max(np.abs(a - b), initial=0.0) / denom)


def numeric_grad(fn, x):
    """Central differences of scalar fn() w.r.t. array x (modified in place, restored)."""
    gr = np.zeros_like(x)
    flat = x.reshape(-1)
    gflat = gr.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + FD_H
        fp = fn()
        flat[i] = old - FD_H
        fm = fn()
        flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * FD_H)
    return gr


def check(label, analytic, numeric, tol=FD_TOL):
    e = rel_err(analytic, numeric)
    assert e < tol, f"finite-difference check failed for {label}: rel err {e:.3e}"
    return e


# ---------------------------------------------------------------------------
# Part 1: per-op cases
# ---------------------------------------------------------------------------

def away_from_zero(rng, shape, margin=0.05):
    x = rng.randn(*shape)
    small = np.abs(x) < margin
    x[small] = np.sign(x[small] + 1e-300) * margin + x[small]
    return x


def positive(rng, shape, lo=0.3, hi=3.0):
    return rng.uniform(lo, hi, size=shape)


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


def build_op_cases():
    rng = np.random.RandomState(1234)
    specs = []  # (name, op, attrs, [(input name, array, dtype)])

    def add(name, op, inputs, attrs=None):
        specs.append((name, op, attrs or {}, inputs))

    R = lambda *s: rng.randn(*s)

    add("linear_basic", "linear", [("x", R(4, 5), "f64"), ("weight", R(3, 5), "f64"), ("bias", R(3), "f64")])
    add("linear_wide", "linear", [("x", R(3, 7), "f64"), ("weight", R(6, 7), "f64"), ("bias", R(6), "f64")])
    add("linear_nobias", "linear", [("x", R(5, 4), "f64"), ("weight", R(6, 4), "f64")])

    add("matmul_basic", "matmul", [("a", R(4, 5), "f64"), ("b", R(5, 6), "f64")])
    add("matmul_2", "matmul", [("a", R(3, 7), "f64"), ("b", R(7, 4), "f64")])

    add("add_basic", "add", [("a", R(4, 5), "f64"), ("b", R(4, 5), "f64")])
    add("add_bias_broadcast", "add", [("x", R(5, 6), "f64"), ("b", R(6), "f64")])
    add("sub_basic", "sub", [("a", R(4, 5), "f64"), ("b", R(4, 5), "f64")])
    add("mul_basic", "mul", [("a", R(4, 5), "f64"), ("b", R(4, 5), "f64")])
    add("mul_scalar", "mul", [("x", R(3, 6), "f64"), ("s", np.array(rng.randn()), "f64")])
    div_b = np.where(rng.rand(4, 5) < 0.5, -1.0, 1.0) * positive(rng, (4, 5), 0.5, 2.0)
    add("div_basic", "div", [("a", R(4, 5), "f64"), ("b", div_b, "f64")])

    add("relu_basic", "relu", [("x", away_from_zero(rng, (3, 4), 1e-2), "f64")])
    add("relu_2", "relu", [("x", away_from_zero(rng, (5, 7), 1e-2), "f64")])
    add("sigmoid_basic", "sigmoid", [("x", 2.0 * R(4, 5), "f64")])
    add("sigmoid_2", "sigmoid", [("x", 4.0 * R(3, 6), "f64")])
    add("tanh_basic", "tanh", [("x", 1.5 * R(4, 5), "f64")])
    add("tanh_2", "tanh", [("x", 2.5 * R(3, 6), "f64")])
    add("exp_basic", "exp", [("x", R(4, 5), "f64")])
    add("log_basic", "log", [("x", positive(rng, (4, 5)), "f64")])
    add("neg_basic", "neg", [("x", R(4, 5), "f64")])
    add("sqrt_basic", "sqrt", [("x", positive(rng, (4, 5)), "f64")])

    add("log_softmax_basic", "log_softmax", [("x", R(4, 5), "f64")])
    add("log_softmax_large", "log_softmax", [("x", 30.0 + 10.0 * R(3, 7), "f64")])
    add("softmax_basic", "softmax", [("x", R(4, 5), "f64")])
    add("softmax_large", "softmax", [("x", -40.0 + 5.0 * R(3, 6), "f64")])

    add("cross_entropy_mean", "cross_entropy",
        [("logits", R(4, 5), "f64"), ("labels", rng.randint(0, 5, size=4).astype(np.int32), "i32")],
        {"reduction": "mean"})
    add("cross_entropy_mean_2", "cross_entropy",
        [("logits", 3.0 * R(5, 7), "f64"), ("labels", rng.randint(0, 7, size=5).astype(np.int32), "i32")],
        {"reduction": "mean"})
    add("cross_entropy_sum", "cross_entropy",
        [("logits", R(3, 4), "f64"), ("labels", rng.randint(0, 4, size=3).astype(np.int32), "i32")],
        {"reduction": "sum"})

    add("mse_mean", "mse", [("pred", R(4, 5), "f64"), ("target", R(4, 5), "f64")], {"reduction": "mean"})
    add("mse_mean_2", "mse", [("pred", R(3, 2), "f64"), ("target", R(3, 2), "f64")], {"reduction": "mean"})
    add("mse_sum", "mse", [("pred", R(5, 4), "f64"), ("target", R(5, 4), "f64")], {"reduction": "sum"})

    add("sum_basic", "sum", [("x", R(4, 5), "f64")])
    add("mean_basic", "mean", [("x", R(4, 5), "f64")])
    add("sum_batch_basic", "sum_batch", [("x", R(5, 6), "f64")])

    cases, worst = emit_op_cases(specs, rng)
    more, worst2 = emit_op_cases(catalog_op_specs(), np.random.RandomState(4322))
    OPS.update(optim.SCALAR_OPS)
    sched, worst3 = emit_op_cases(optim.scalar_op_specs(np.random.RandomState(4331)), np.random.RandomState(4332))
    more, worst2 = more + sched, max(worst2, worst3)
    print(f"ops: {len(cases) + len(more)} cases, worst finite-difference rel err {max(worst, worst2):.2e}")
    return {"cases": cases + more}


def catalog_op_specs():
    """Activations, losses and penalties of issue 3, from their own random stream so that the cases above keep
    their values."""
    rng = np.random.RandomState(4321)
    R = lambda *s: rng.randn(*s)
    labels = lambda n, k: ("labels", rng.randint(0, k, size=n).astype(np.int32), "i32")
    specs = []

    def add(name, op, inputs, attrs=None):
        specs.append((name, op, attrs or {}, inputs))

    add("abs_basic", "abs", [("x", away_from_zero(rng, (4, 5), 1e-2), "f64")])
    add("erf_basic", "erf", [("x", 1.5 * R(4, 5), "f64")])
    add("softplus_wide", "softplus", [("x", 10.0 * R(4, 5), "f64")])
    add("gather_label_basic", "gather_label", [("z", R(4, 5), "f64"), labels(4, 5)])
    add("leaky_relu_default", "leaky_relu", [("x", away_from_zero(rng, (4, 5), 1e-2), "f64")])
    add("leaky_relu_0.2", "leaky_relu", [("x", away_from_zero(rng, (3, 6), 1e-2), "f64")], {"negative_slope": "0.2"})
    add("elu_default", "elu", [("x", 3.0 * away_from_zero(rng, (4, 5), 1e-2), "f64")])
    add("elu_alpha_0.5_large", "elu", [("x", 40.0 * away_from_zero(rng, (3, 6), 1e-2), "f64")], {"alpha": "0.5"})
    add("gelu_exact", "gelu", [("x", 2.0 * R(4, 5), "f64")])
    add("gelu_tanh", "gelu", [("x", 2.0 * R(4, 5), "f64")], {"approximate": "tanh"})
    add("cross_entropy_ls_mean", "cross_entropy_ls", [("logits", R(4, 5), "f64"), labels(4, 5)],
        {"reduction": "mean", "label_smoothing": "0.1"})
    add("cross_entropy_ls_sum", "cross_entropy_ls", [("logits", 3.0 * R(5, 7), "f64"), labels(5, 7)],
        {"reduction": "sum", "label_smoothing": "0.25"})
    add("multi_margin_mean", "multi_margin", [("scores", R(4, 5), "f64"), labels(4, 5)],
        {"reduction": "mean", "margin": "1", "divide_by_classes": "true"})
    add("multi_margin_sum", "multi_margin", [("scores", R(5, 3), "f64"), labels(5, 3)],
        {"reduction": "sum", "margin": "1", "divide_by_classes": "true"})
    add("multi_margin_lecture", "multi_margin", [("scores", 2.0 * R(4, 6), "f64"), labels(4, 6)],
        {"reduction": "mean", "margin": "0.5", "divide_by_classes": "false"})
    add("bce_with_logits_mean", "bce_with_logits", [("logits", 3.0 * R(4, 3), "f64"), ("target", rng.rand(4, 3), "f64")],
        {"reduction": "mean"})
    add("bce_with_logits_sum", "bce_with_logits", [("logits", 20.0 * R(3, 1), "f64"), ("target", rng.rand(3, 1), "f64")],
        {"reduction": "sum"})
    w0, w1 = away_from_zero(rng, (3, 4), 1e-2), away_from_zero(rng, (2, 3), 1e-2)
    add("penalty_l1", "penalty", [("w0", w0, "f64"), ("w1", w1, "f64")], {"l1": "0.01"})
    add("penalty_l2", "penalty", [("w0", w0, "f64"), ("w1", w1, "f64")], {"l2": "0.001"})
    add("penalty_elastic_net", "penalty", [("w0", w0, "f64"), ("w1", w1, "f64")], {"l1": "0.3", "l2": "0.7"})
    return specs


def emit_op_cases(specs, rng):
    cases = []
    worst = 0.0
    for name, op, attrs, inputs in specs:
        fwd, vjp = OPS[op]
        arrays = [np.array(a, dtype=(np.int32 if d == "i32" else np.float64)) for _, a, d in inputs]
        out = np.asarray(fwd(arrays, attrs), dtype=np.float64)
        upstream = rng.randn(*out.shape) if out.shape else np.array(rng.randn())
        grads = vjp(arrays, attrs, out, upstream)
        assert len(grads) == len(inputs), name
        gjson = []
        for (iname, _, dtype), arr, gr in zip(inputs, arrays, grads):
            if dtype == "i32":
                assert gr is None
                gjson.append(None)
                continue
            gr = np.asarray(gr, dtype=np.float64)
            assert gr.shape == arr.shape, (name, iname, gr.shape, arr.shape)
            num = numeric_grad(lambda: float(np.sum(upstream * fwd(arrays, attrs))), arr)
            worst = max(worst, check(f"op {name} input {iname}", gr, num))
            gjson.append({"name": iname, "shape": list(arr.shape), "data": [float(v) for v in gr.reshape(-1)]})
        cases.append({
            "name": name, "op": op, "attrs": attrs,
            "inputs": [tensor_json(iname, arr, dtype) for (iname, _, dtype), arr in zip(inputs, arrays)],
            "output": plain_json(out),
            "upstream": plain_json(upstream),
            "grads": gjson,
        })
    return cases, worst


# ---------------------------------------------------------------------------
# safetensors writer / reader
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Part 2: models and training
# ---------------------------------------------------------------------------

class MLP:
    """layers: list of ("linear", in, out) or activation names; keys follow nn.Sequential indices."""

    def __init__(self, layers, loss):
        self.layers = layers
        self.loss = loss

    def param_keys(self):
        keys = []
        for i, l in enumerate(self.layers):
            if isinstance(l, tuple):
                keys += [f"{i}.weight", f"{i}.bias"]
        return keys

    def init_params(self, rng):
        params = []
        for i, l in enumerate(self.layers):
            if isinstance(l, tuple):
                _, fin, fout = l
                bound = 1.0 / np.sqrt(fin)
                # PyTorch default: kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in)); bias the same
                w = rng.uniform(-bound, bound, size=(fout, fin)).astype(np.float32)
                b = rng.uniform(-bound, bound, size=(fout,)).astype(np.float32)
                params += [(f"{i}.weight", w), (f"{i}.bias", b)]
        return params

    def forward(self, P, x):
        acts = [x]
        h = x
        for i, l in enumerate(self.layers):
            if isinstance(l, tuple):
                h = f_linear([h, P[f"{i}.weight"], P[f"{i}.bias"]], {})
            else:
                h = OPS[l][0]([h], {})
            acts.append(h)
        return acts

    def loss_fn(self, out, y):
        if self.loss == "cross_entropy":
            return f_cross_entropy([out, y], {"reduction": "mean"})
        return f_mse([out, y], {"reduction": "mean"})

    def loss_and_grad(self, P, x, y):
        acts = self.forward(P, x)
        out = acts[-1]
        if self.loss == "cross_entropy":
            L = f_cross_entropy([out, y], {"reduction": "mean"})
            g = b_cross_entropy([out, y], {"reduction": "mean"}, L, 1.0)[0]
        else:
            L = f_mse([out, y], {"reduction": "mean"})
            g = b_mse([out, y], {"reduction": "mean"}, L, 1.0)[0]
        grads = {}
        for i in range(len(self.layers) - 1, -1, -1):
            l = self.layers[i]
            hin, hout = acts[i], acts[i + 1]
            if isinstance(l, tuple):
                gx, gw, gb = b_linear([hin, P[f"{i}.weight"], P[f"{i}.bias"]], {}, hout, g)
                grads[f"{i}.weight"] = gw
                grads[f"{i}.bias"] = gb
                g = gx
            else:
                g = OPS[l][1]([hin], {}, hout, g)[0]
        return float(L), grads


CLS = MLP([("linear", 20, 16), "relu", ("linear", 16, 12), "tanh", ("linear", 12, 4)], "cross_entropy")
REG = MLP([("linear", 6, 8), "sigmoid", ("linear", 8, 2)], "mse")


def make_data():
    rng = np.random.RandomState(2024)
    cls_x = rng.randn(70, 20).astype(np.float32)
    w_true = rng.randn(20, 4)
    b_true = 0.3 * rng.randn(4)
    cls_y = np.argmax(cls_x.astype(np.float64) @ w_true + b_true, axis=1).astype(np.int64)

    reg_x = rng.randn(70, 6).astype(np.float32)
    xd = reg_x.astype(np.float64)
    y0 = np.sin(xd[:, 0]) + 0.5 * xd[:, 1] * xd[:, 2]
    y1 = np.cos(xd[:, 3]) - 0.3 * xd[:, 4] + 0.2 * xd[:, 5] ** 2
    reg_y = (np.stack([y0, y1], axis=1) + 0.05 * rng.randn(70, 2)).astype(np.float32)
    return cls_x, cls_y, reg_x, reg_y


class Optimizer:
    def __init__(self, kind, hp):
        self.kind, self.hp, self.state, self.t = kind, hp, {}, 0

    def step(self, P, G):
        self.t += 1
        hp = self.hp
        for k in P:
            g = G[k]
            if self.kind == "sgd":
                P[k] = P[k] - hp["lr"] * g
            elif self.kind in ("sgd_momentum", "sgd_nesterov"):
                mu = hp["momentum"]
                # torch.optim.SGD: buf = g on the first step, then buf = mu*buf + (1-dampening)*g, dampening 0
                buf = g.copy() if k not in self.state else mu * self.state[k] + g
                self.state[k] = buf
                d = g + mu * buf if hp.get("nesterov") else buf
                P[k] = P[k] - hp["lr"] * d
            elif self.kind == "adam":
                b1, b2 = hp["betas"]
                m, v = self.state.get(k, (np.zeros_like(g), np.zeros_like(g)))
                m = b1 * m + (1.0 - b1) * g
                v = b2 * v + (1.0 - b2) * g * g
                self.state[k] = (m, v)
                mhat = m / (1.0 - b1 ** self.t)
                vhat = v / (1.0 - b2 ** self.t)
                P[k] = P[k] - hp["lr"] * mhat / (np.sqrt(vhat) + hp["eps"])
            else:
                raise ValueError(self.kind)


OPTIMIZERS = [
    ("sgd", {"lr": 0.1}),
    ("sgd_momentum", {"lr": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adam", {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}),
]
BATCH = 16
EPOCHS = 3


def to_f64(params):
    return {k: np.array(v, dtype=np.float64) for k, v in params.items()}


def check_model_grad(model, P, x, y, label):
    _, G = model.loss_and_grad(P, x, y)
    worst = 0.0
    for k in model.param_keys():
        num = numeric_grad(lambda: model.loss_fn(model.forward(P, x)[-1], y), P[k])
        worst = max(worst, check(f"model {label} param {k}", G[k], num))
    return worst


def train(model, init, x, y, kind, hp):
    P = to_f64(init)
    opt = Optimizer(kind, hp)
    n = x.shape[0]
    losses = []
    for _ in range(EPOCHS):
        for s in range(0, n, BATCH):
            L, G = model.loss_and_grad(P, x[s:s + BATCH], y[s:s + BATCH])
            losses.append(L)
            opt.step(P, G)
    assert all(np.isfinite(losses))
    return losses, P


def train_optim(model, init, x, y, kind, hp):
    """As train, with optim.Optim and, when hp names one, a per-step schedule."""
    P = to_f64(init)
    opt = optim.Optim(kind, hp)
    losses, lrs = [], []
    for _ in range(EPOCHS):
        for s in range(0, x.shape[0], BATCH):
            L, G = model.loss_and_grad(P, x[s:s + BATCH], y[s:s + BATCH])
            lr = optim.schedule_lr(hp["schedule"], hp["lr"], len(losses)) if "schedule" in hp else hp["lr"]
            losses.append(L)
            lrs.append(float(lr))
            opt.step(P, G, lr=lr)
    assert all(np.isfinite(losses))
    return losses, P, lrs


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


def build_trajectories():
    os.makedirs(TRAJ, exist_ok=True)
    cls_x, cls_y, reg_x, reg_y = make_data()
    np.save(os.path.join(TRAJ, "cls_x.npy"), cls_x)
    np.save(os.path.join(TRAJ, "cls_y.npy"), cls_y)
    np.save(os.path.join(TRAJ, "reg_x.npy"), reg_x)
    np.save(os.path.join(TRAJ, "reg_y.npy"), reg_y)
    write_csv(os.path.join(TRAJ, "cls_x.csv"), cls_x)
    write_csv(os.path.join(TRAJ, "cls_y.csv"), cls_y, is_int=True)
    write_csv(os.path.join(TRAJ, "reg_x.csv"), reg_x)
    write_csv(os.path.join(TRAJ, "reg_y.csv"), reg_y)

    # round-trip checks of data files
    assert np.array_equal(np.load(os.path.join(TRAJ, "cls_x.npy")), cls_x)
    assert np.array_equal(np.loadtxt(os.path.join(TRAJ, "cls_x.csv"), delimiter=",", dtype=np.float32), cls_x)
    assert np.array_equal(np.loadtxt(os.path.join(TRAJ, "cls_y.csv"), delimiter=",", dtype=np.int64), cls_y)
    assert np.array_equal(np.loadtxt(os.path.join(TRAJ, "reg_y.csv"), delimiter=",", dtype=np.float32), reg_y)

    rng = np.random.RandomState(7)
    result = {}
    for tag, model, x32, y in (("cls", CLS, cls_x, cls_y), ("reg", REG, reg_x, reg_y)):
        init_list = model.init_params(rng)
        st_path = os.path.join(TRAJ, f"{tag}_init.safetensors")
        write_safetensors(st_path, init_list)
        init = read_safetensors(st_path)
        assert list(init.keys()) == [k for k, _ in init_list] == model.param_keys()
        for k, v in init_list:
            assert init[k].dtype == np.float32 and init[k].shape == v.shape and np.array_equal(init[k], v), k

        x = x32.astype(np.float64)
        yy = y if model.loss == "cross_entropy" else y.astype(np.float64)

        # self-check of the model backward: full batch at init, and the partial last batch
        P0 = to_f64(init)
        w1 = check_model_grad(model, P0, x[:BATCH], yy[:BATCH], f"{tag}/first batch")
        w2 = check_model_grad(model, P0, x[64:], yy[64:], f"{tag}/partial batch")
        print(f"{tag}: model backward finite-difference worst rel err {max(w1, w2):.2e}")

        out_all = model.forward(P0, x)[-1]
        entry = {
            "model": describe(model),
            "eval_initial": {"loss": float(model.loss_fn(out_all, yy))},
            "logits_initial_first4": plain_json(out_all[:4]),
        }
        if model.loss == "cross_entropy":
            entry["eval_initial"]["accuracy"] = float(np.mean(np.argmax(out_all, axis=1) == y))

        for kind, hp in OPTIMIZERS:
            losses, P = train(model, init, x, yy, kind, hp)
            entry[kind] = {
                "hparams": hp, "batch": BATCH, "epochs": EPOCHS,
                "losses": [float(v) for v in losses],
                "final_params": {k: plain_json(P[k]) for k in model.param_keys()},
            }
            print(f"{tag}/{kind}: losses[0:3] = {losses[:3]}, last = {losses[-1]}")
        for key, kind, hp in optim.MLP_RUNS:
            losses, P, lrs = train_optim(model, init, x, yy, kind, hp)
            entry[key] = {
                "hparams": hp, "batch": BATCH, "epochs": EPOCHS, "lr": lrs,
                "losses": [float(v) for v in losses],
                "final_params": {k: plain_json(P[k]) for k in model.param_keys()},
            }
            print(f"{tag}/{key}: losses[0:3] = {losses[:3]}, last = {losses[-1]}")
        result[tag] = entry
    return result



# ---------------------------------------------------------------------------
# Part 3: issue 3's activations, losses and penalties in training
# ---------------------------------------------------------------------------

class CatalogMLP:
    """layers: ("linear", in, out) or (activation, attrs); loss: an OPS name with its attrs; penalty:
    {"l1": λ₁, "l2": λ₂} on the weight matrices (λ₁·Σ|W| + λ₂·ΣW²), added to the loss."""

    def __init__(self, layers, loss, loss_attrs, penalty=None):
        self.layers, self.loss, self.loss_attrs, self.penalty = layers, loss, loss_attrs, penalty or {}

    def param_keys(self):
        return [f"{i}.{p}" for i, l in enumerate(self.layers) if l[0] == "linear" for p in ("weight", "bias")]

    def init_params(self, rng):
        params = []
        for i, l in enumerate(self.layers):
            if l[0] == "linear":
                bound = 1.0 / np.sqrt(l[1])
                params += [(f"{i}.weight", rng.uniform(-bound, bound, size=(l[2], l[1])).astype(np.float32)),
                           (f"{i}.bias", rng.uniform(-bound, bound, size=(l[2],)).astype(np.float32))]
        return params

    def forward(self, P, x):
        acts = [x]
        for i, l in enumerate(self.layers):
            h = acts[-1]
            acts.append(f_linear([h, P[f"{i}.weight"], P[f"{i}.bias"]], {}) if l[0] == "linear" else OPS[l[0]][0]([h], l[1]))
        return acts

    def weights(self, P):
        return [P[k] for k in self.param_keys() if k.endswith(".weight")]

    def objective(self, P, x, y):
        L = OPS[self.loss][0]([self.forward(P, x)[-1], y], self.loss_attrs)
        return L + (f_penalty(self.weights(P), self.penalty) if self.penalty else 0.0)

    def loss_and_grad(self, P, x, y):
        acts = self.forward(P, x)
        f, b = OPS[self.loss]
        L = f([acts[-1], y], self.loss_attrs)
        g = b([acts[-1], y], self.loss_attrs, L, 1.0)[0]
        grads = {}
        for i in range(len(self.layers) - 1, -1, -1):
            l = self.layers[i]
            if l[0] == "linear":
                g, grads[f"{i}.weight"], grads[f"{i}.bias"] = b_linear([acts[i], P[f"{i}.weight"], P[f"{i}.bias"]], {}, acts[i + 1], g)
            else:
                g = OPS[l[0]][1]([acts[i]], l[1], acts[i + 1], g)[0]
        if self.penalty:
            L += f_penalty(self.weights(P), self.penalty)
            for k in self.param_keys():
                if k.endswith(".weight"):
                    grads[k] = grads[k] + b_penalty([P[k]], self.penalty, None, 1.0)[0]
        return float(L), grads


CLS_LAYERS = [("linear", 20, 16), ("relu", {}), ("linear", 16, 12), ("tanh", {}), ("linear", 12, 4)]
REG_LAYERS = [("linear", 6, 8), ("sigmoid", {}), ("linear", 8, 2)]
ACT_LAYERS = [("linear", 20, 16), ("leaky_relu", {"negative_slope": "0.1"}), ("linear", 16, 12), ("elu", {"alpha": "0.5"}),
              ("linear", 12, 12), ("gelu", {}), ("linear", 12, 8), ("gelu", {"approximate": "tanh"}),
              ("linear", 8, 6), ("softmax", {}), ("linear", 6, 4), ("log_softmax", {})]
MEAN = {"reduction": "mean"}
# tag: (model, data, initial weights, optimizer)
CATALOG = {
    "cls_hinge": (CatalogMLP(CLS_LAYERS, "multi_margin", {"reduction": "mean", "margin": "1", "divide_by_classes": "true"}),
                  "cls", "cls", "sgd"),
    "cls_hinge_lecture": (CatalogMLP(CLS_LAYERS, "multi_margin", {"reduction": "mean", "margin": "0.5", "divide_by_classes": "false"}),
                          "cls", "cls", "sgd"),
    "cls_smooth": (CatalogMLP(CLS_LAYERS, "cross_entropy_ls", {"reduction": "mean", "label_smoothing": "0.1"}),
                   "cls", "cls", "adam"),
    "cls_l2": (CatalogMLP(CLS_LAYERS, "cross_entropy", MEAN, {"l2": 0.01}), "cls", "cls", "sgd_momentum"),
    "cls_elastic": (CatalogMLP(CLS_LAYERS, "cross_entropy", MEAN, {"l1": 0.002, "l2": 0.005}), "cls", "cls", "sgd"),
    "reg_bce": (CatalogMLP(REG_LAYERS, "bce_with_logits", MEAN), "bce", "reg", "sgd"),
    "act": (CatalogMLP(ACT_LAYERS, "cross_entropy", MEAN), "cls", "act", "adam"),
}


def build_catalog_trajectories():
    """Losses and final weights for the models of CATALOG; adds bce_y.npy (soft targets σ(2·reg_y)) and
    act_init.safetensors, and leaves every other fixture as it is."""
    cls_x, cls_y, reg_x, reg_y = make_data()
    bce_y = (1.0 / (1.0 + np.exp(-2.0 * reg_y.astype(np.float64)))).astype(np.float32)
    np.save(os.path.join(TRAJ, "bce_y.npy"), bce_y)
    act_init = CATALOG["act"][0].init_params(np.random.RandomState(8))
    write_safetensors(os.path.join(TRAJ, "act_init.safetensors"), act_init)
    data = {"cls": (cls_x, cls_y), "bce": (reg_x, bce_y.astype(np.float64))}
    hparams = dict(OPTIMIZERS)
    result = {}
    for tag, (model, data_tag, init_tag, kind) in CATALOG.items():
        init = read_safetensors(os.path.join(TRAJ, f"{init_tag}_init.safetensors"))
        assert list(init.keys()) == model.param_keys(), tag
        x32, y = data[data_tag]
        x = x32.astype(np.float64)
        P0 = to_f64(init)
        worst = 0.0
        for lo, hi in ((0, BATCH), (64, 70)):
            _, G = model.loss_and_grad(P0, x[lo:hi], y[lo:hi])
            for k in model.param_keys():
                num = numeric_grad(lambda: model.objective(P0, x[lo:hi], y[lo:hi]), P0[k])
                # The six-layer "act" model's first-layer gradients are small, so its differences are noisier.
                worst = max(worst, check(f"model {tag} param {k}", G[k], num, tol=1e-5))
        losses, P = train(model, init, x, y, kind, hparams[kind])
        result[tag] = {
            "model": {"layers": [f"linear({l[1]},{l[2]})" if l[0] == "linear" else [l[0], l[1]] for l in model.layers],
                      "loss": [model.loss, model.loss_attrs], "penalty": model.penalty,
                      "data": data_tag, "init": f"{init_tag}_init.safetensors"},
            kind: {"hparams": hparams[kind], "batch": BATCH, "epochs": EPOCHS, "losses": [float(v) for v in losses],
                   "final_params": {k: plain_json(P[k]) for k in model.param_keys()}},
        }
        print(f"{tag}/{kind}: backward fd worst {worst:.2e}, losses[0:3] = {losses[:3]}, last = {losses[-1]}")
    return result

def describe(model):
    parts = []
    for l in model.layers:
        parts.append(f"linear({l[1]},{l[2]})" if isinstance(l, tuple) else l)
    return {"layers": parts, "loss": model.loss + "(mean)"}


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


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    ops = build_op_cases()
    traj = build_trajectories()
    traj.update(build_catalog_trajectories())
    dump_json(os.path.join(FIXTURES, "ops.json"), ops)
    dump_json(os.path.join(TRAJ, "expected.json"), traj)
    with open(os.path.join(FIXTURES, "optimizers.json"), "w") as f:
        json.dump({"quadratic": optim.build_quadratic(), **optim.build_schedules()}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(FIXTURES, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
