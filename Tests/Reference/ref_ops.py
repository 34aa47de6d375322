"""Primitive ops of the NumPy reference: forward(inputs, attrs) -> output and vjp(inputs, attrs, out, g) ->
grads, in float64 with PyTorch semantics, including issue 3's activations, losses and penalties."""

import math

import numpy as np


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
