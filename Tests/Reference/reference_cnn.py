#!/usr/bin/env python3
"""NumPy reference for nncc's N-d tensor and convolutional ops (DESIGN.md §10), PyTorch semantics, NCHW.

Run from the repository root:

    python3 Tests/Reference/reference_cnn.py

It writes, and touches nothing else:

  Tests/Fixtures/cnn_ops.json                        per-op forward values and vector-Jacobian products
  Tests/Fixtures/cnn_trajectory.json                 5 Adam steps of a small CNN, with and without BatchNorm2d
  Tests/Fixtures/trajectory/cnn_x.npy, cnn_y.npy     that CNN's data (float32 (20,1,8,8), int64 (20,))
  Tests/Fixtures/trajectory/cnn_init.safetensors     its initial weights (F32)
  Tests/Fixtures/trajectory/cnn_bn_init.safetensors  the BatchNorm variant's (F32, num_batches_tracked I64)

All arithmetic is float64; random numbers come from numpy.random.RandomState with fixed seeds, so reruns are
byte-identical. Before writing anything, every VJP and both models' backward passes are checked against central
finite differences (reference.numeric_grad, h = 1e-6); the script aborts if a check fails.
"""

import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optim  # noqa: E402
import reference as ref  # noqa: E402  (finite differences, JSON helpers, cross-entropy, safetensors reader)

FIXTURES = ref.FIXTURES
TRAJ = ref.TRAJ

SEED_OPS = 5151        # op case inputs
SEED_UPSTREAM = 5152   # op case upstream cotangents
SEED_DATA = 6060       # CNN data set
SEED_INIT = 6161       # CNN initial weights


# ---------------------------------------------------------------------------
# Attribute parsing (attrs are strings, as in ops.json)
# ---------------------------------------------------------------------------

def _pair(a, key, default):
    v = a.get(key, default)
    if v is None:
        return None
    p = [int(s) for s in str(v).split(",")]
    return (p[0], p[0]) if len(p) == 1 else (p[0], p[1])


def _flag(a, key, default):
    v = a.get(key, default)
    assert v in ("true", "false"), (key, v)
    return v == "true"


def _out_len(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _window(xp, i, j, so, st):
    """The (n, C, Ho, Wo) view of padded xp at kernel offset (i, j) (already multiplied by the dilation)."""
    (Ho, Wo), (sh, sw) = so, st
    return xp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]


# ---------------------------------------------------------------------------
# conv2d: y[n,k,oh,ow] = b[k] + Σ_{c,i,j} xpad[n, g·C/G + c, oh·sh + i·dh, ow·sw + j·dw] · w[k,c,i,j], k in group g
# ---------------------------------------------------------------------------

def _conv_geom(x, w, a):
    n, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    st, pd, dl = _pair(a, "stride", "1"), _pair(a, "padding", "0"), _pair(a, "dilation", "1")
    G = int(a.get("groups", "1"))
    assert C == Cg * G and K % G == 0, "conv2d: channels do not match groups"
    Ho, Wo = _out_len(H, kh, st[0], pd[0], dl[0]), _out_len(W, kw, st[1], pd[1], dl[1])
    assert Ho > 0 and Wo > 0
    return st, pd, dl, G, (Ho, Wo)


def f_conv2d(ins, a):
    x, w = ins[0], ins[1]
    st, pd, dl, G, so = _conv_geom(x, w, a)
    K, Cg, kh, kw = w.shape
    Kg = K // G
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])))
    y = np.zeros((x.shape[0], K) + so)
    for g in range(G):
        xs, ks = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
        for i in range(kh):
            for j in range(kw):
                patch = _window(xp[:, xs], i * dl[0], j * dl[1], so, st)
                y[:, ks] += np.einsum("nchw,kc->nkhw", patch, w[ks, :, i, j])
    if _flag(a, "bias", "true"):
        y += ins[2][None, :, None, None]
    return y


def b_conv2d(ins, a, out, gy):
    x, w = ins[0], ins[1]
    st, pd, dl, G, so = _conv_geom(x, w, a)
    K, Cg, kh, kw = w.shape
    Kg = K // G
    H, W = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(G):
        xs, ks = slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg)
        for i in range(kh):
            for j in range(kw):
                patch = _window(xp[:, xs], i * dl[0], j * dl[1], so, st)
                _window(gxp[:, xs], i * dl[0], j * dl[1], so, st)[...] += np.einsum("nkhw,kc->nchw", gy[:, ks], w[ks, :, i, j])
                gw[ks, :, i, j] = np.einsum("nkhw,nchw->kc", gy[:, ks], patch)
    grads = [gxp[:, :, pd[0]:pd[0] + H, pd[1]:pd[1] + W], gw]
    if _flag(a, "bias", "true"):
        grads.append(gy.sum(axis=(0, 2, 3)))
    return grads


# ---------------------------------------------------------------------------
# Pooling (no dilation, ceil_mode false)
# ---------------------------------------------------------------------------

def _pool_geom(x, a):
    k = _pair(a, "kernel", None)
    st = _pair(a, "stride", a["kernel"])          # PyTorch: stride defaults to the kernel
    pd = _pair(a, "padding", "0")
    assert 2 * pd[0] <= k[0] and 2 * pd[1] <= k[1], "pad should be at most half of the kernel"
    so = (_out_len(x.shape[2], k[0], st[0], pd[0], 1), _out_len(x.shape[3], k[1], st[1], pd[1], 1))
    return k, st, pd, so


def _maxpool_argmax(x, a):
    """Max of every window and the row-major offset i·kw + j of its FIRST maximum (PyTorch's CPU rule: a later
    element replaces the running maximum only when strictly greater). Padding never wins (it is −∞)."""
    k, st, pd, so = _pool_geom(x, a)
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])), constant_values=-np.inf)
    best = np.full(x.shape[:2] + so, -np.inf)
    arg = np.full(best.shape, -1)
    for i in range(k[0]):
        for j in range(k[1]):
            v = _window(xp, i, j, so, st)
            take = v > best
            best = np.where(take, v, best)
            arg = np.where(take, i * k[1] + j, arg)
    assert np.all(arg >= 0)
    return best, arg


def f_max_pool2d(ins, a):
    return _maxpool_argmax(ins[0], a)[0]


def b_max_pool2d(ins, a, out, gy):
    x = ins[0]
    k, st, pd, so = _pool_geom(x, a)
    _, arg = _maxpool_argmax(x, a)
    gxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * pd[0], x.shape[3] + 2 * pd[1]))
    for i in range(k[0]):
        for j in range(k[1]):
            _window(gxp, i, j, so, st)[...] += np.where(arg == i * k[1] + j, gy, 0.0)   # overlaps accumulate
    return [gxp[:, :, pd[0]:pd[0] + x.shape[2], pd[1]:pd[1] + x.shape[3]]]


def _avg_divisor(x, a):
    k, st, pd, so = _pool_geom(x, a)
    if _flag(a, "count_include_pad", "true"):
        return np.full(so, float(k[0] * k[1]))   # ceil_mode false: every window lies inside the padded input
    ones = np.pad(np.ones((1, 1) + x.shape[2:]), ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])))
    return sum(_window(ones, i, j, so, st) for i in range(k[0]) for j in range(k[1]))[0, 0]


def f_avg_pool2d(ins, a):
    x = ins[0]
    k, st, pd, so = _pool_geom(x, a)
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])))
    s = np.zeros(x.shape[:2] + so)
    for i in range(k[0]):
        for j in range(k[1]):
            s += _window(xp, i, j, so, st)
    return s / _avg_divisor(x, a)


def b_avg_pool2d(ins, a, out, gy):
    x = ins[0]
    k, st, pd, so = _pool_geom(x, a)
    gs = gy / _avg_divisor(x, a)
    gxp = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * pd[0], x.shape[3] + 2 * pd[1]))
    for i in range(k[0]):
        for j in range(k[1]):
            _window(gxp, i, j, so, st)[...] += gs
    return [gxp[:, :, pd[0]:pd[0] + x.shape[2], pd[1]:pd[1] + x.shape[3]]]


def f_adaptive_avg_pool2d(ins, a):
    assert _pair(a, "output_size", "1") == (1, 1), "only global average pooling"
    return ins[0].mean(axis=(2, 3), keepdims=True)


def b_adaptive_avg_pool2d(ins, a, out, gy):
    x = ins[0]
    return [np.broadcast_to(gy / (x.shape[2] * x.shape[3]), x.shape).copy()]


# ---------------------------------------------------------------------------
# BatchNorm2d: statistics per channel over (n, H, W)
# ---------------------------------------------------------------------------

def _bn_stats(x):
    return x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))     # biased variance, for normalizing


def _c(v):
    return v[None, :, None, None]


def f_batch_norm2d(ins, a):
    x, gamma, beta = ins[:3]
    eps = float(a.get("eps", "1e-5"))
    if a["mode"] == "train":
        mu, var = _bn_stats(x)
    else:
        mu, var = ins[3], ins[4]
    return (x - _c(mu)) / np.sqrt(_c(var) + eps) * _c(gamma) + _c(beta)


def b_batch_norm2d(ins, a, out, gy):
    x, gamma = ins[0], ins[1]
    eps = float(a.get("eps", "1e-5"))
    ax = (0, 2, 3)
    if a["mode"] == "train":
        mu, var = _bn_stats(x)
    else:
        mu, var = ins[3], ins[4]
    inv = 1.0 / np.sqrt(_c(var) + eps)
    xh = (x - _c(mu)) * inv
    dxh = gy * _c(gamma)
    if a["mode"] == "train":
        m = x.shape[0] * x.shape[2] * x.shape[3]
        dx = inv / m * (m * dxh - dxh.sum(axis=ax, keepdims=True) - xh * (dxh * xh).sum(axis=ax, keepdims=True))
        extra = []
    else:
        dx = dxh * inv
        extra = [None, None]     # running statistics: buffers, no gradient
    return [dx, (gy * xh).sum(axis=ax), gy.sum(axis=ax)] + extra


# ---------------------------------------------------------------------------
# Shape ops
# ---------------------------------------------------------------------------

def _sum_to(g, shape):
    """Sum g down to `shape` under NumPy's right-aligned broadcasting."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)


def _axes(a):
    return tuple(int(s) for s in a["axes"].split(","))


def f_sum_axes(ins, a):
    return ins[0].sum(axis=_axes(a), keepdims=_flag(a, "keepdims", "false"))


def b_sum_axes(ins, a, out, gy):
    x = ins[0]
    keep = tuple(1 if i in _axes(a) else s for i, s in enumerate(x.shape))
    return [np.broadcast_to(gy.reshape(keep), x.shape).copy()]


def _flat_shape(x, a):
    s, e = int(a.get("start_dim", "1")), int(a.get("end_dim", "-1")) % x.ndim
    return x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]


def _frac_starts(size, out, k, u):
    """PyTorch's generate_intervals (FractionalMaxPool2d.cpp), in float64: window i starts at
    floor((i + u)·α) − floor(u·α) with α = (size − k)/(out − 1); the last starts at size − k."""
    if out == 1:
        return [size - k]
    alpha = (size - k) / (out - 1)
    return [int(np.floor((i + u) * alpha)) - int(np.floor(u * alpha)) for i in range(out - 1)] + [size - k]


def _frac_argmax(x, u, a):
    """For each output (b, c, i, j): the flat index in x's plane of its region's first maximum (u[b, c, 0]
    places the columns, u[b, c, 1] the rows, as PyTorch)."""
    k, out = _pair(a, "kernel", None), _pair(a, "output", None)
    n, C, H, W = x.shape
    arg = np.zeros((n, C) + out, dtype=np.int64)
    for b in range(n):
        for c in range(C):
            rows, cols = _frac_starts(H, out[0], k[0], u[b, c, 1]), _frac_starts(W, out[1], k[1], u[b, c, 0])
            for i, r in enumerate(rows):
                for j, q in enumerate(cols):
                    win = x[b, c, r:r + k[0], q:q + k[1]]
                    m = int(np.argmax(win))          # NumPy's argmax is the first maximum
                    arg[b, c, i, j] = (r + m // k[1]) * W + q + m % k[1]
    return arg


def f_fractional_max_pool2d(ins, a):
    x, u = ins
    arg = _frac_argmax(x, u, a)
    planes = x.reshape(x.shape[0], x.shape[1], -1)
    return np.take_along_axis(planes, arg.reshape(arg.shape[0], arg.shape[1], -1), axis=2).reshape(arg.shape)


def b_fractional_max_pool2d(ins, a, out, gy):
    x, u = ins
    arg = _frac_argmax(x, u, a)
    gx = np.zeros((x.shape[0], x.shape[1], x.shape[2] * x.shape[3]))
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            np.add.at(gx[b, c], arg[b, c].reshape(-1), gy[b, c].reshape(-1))   # overlapping regions add
    return [gx.reshape(x.shape), None]


def f_drop_connect(ins, a):
    """DropConnect's training forward given its mask: x (W ⊙ M)ᵀ + b."""
    x, w, b, m = ins
    return x @ (w * m).T + b


def b_drop_connect(ins, a, out, gy):
    x, w, b, m = ins
    return [gy @ (w * m), (gy.T @ x) * m, gy.sum(axis=0), None]


def f_stochastic_depth(ins, a):
    """Stochastic depth's training forward given its per-sample mask m (n): x scaled per sample."""
    x, m = ins
    return x * m.reshape((-1,) + (1,) * (x.ndim - 1))


def b_stochastic_depth(ins, a, out, gy):
    return [gy * ins[1].reshape((-1,) + (1,) * (gy.ndim - 1)), None]


OPS = {
    "fractional_max_pool2d": (f_fractional_max_pool2d, b_fractional_max_pool2d),
    "drop_connect": (f_drop_connect, b_drop_connect),
    "stochastic_depth": (f_stochastic_depth, b_stochastic_depth),
    "conv2d": (f_conv2d, b_conv2d),
    "max_pool2d": (f_max_pool2d, b_max_pool2d),
    "avg_pool2d": (f_avg_pool2d, b_avg_pool2d),
    "adaptive_avg_pool2d": (f_adaptive_avg_pool2d, b_adaptive_avg_pool2d),
    "flatten": (lambda ins, a: ins[0].reshape(_flat_shape(ins[0], a)),
                lambda ins, a, o, g: [g.reshape(ins[0].shape)]),
    "batch_norm2d": (f_batch_norm2d, b_batch_norm2d),
    "add_broadcast": (lambda ins, a: ins[0] + ins[1],
                      lambda ins, a, o, g: [_sum_to(g, ins[0].shape), _sum_to(g, ins[1].shape)]),
    "sum_axes": (f_sum_axes, b_sum_axes),
    "relu": ref.OPS["relu"],
}


# ---------------------------------------------------------------------------
# Part 1: per-op cases
# ---------------------------------------------------------------------------

def conv_attrs(stride="1,1", padding="0,0", dilation="1,1", groups="1", bias="true"):
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "bias": bias}


def pool_attrs(kernel, stride=None, padding="0,0"):
    return {"kernel": kernel, "stride": stride or kernel, "padding": padding}


def op_specs():
    """(name, op, attrs, [(input name, array, dtype, has_grad)], options). Every attr is written explicitly."""
    rng = np.random.RandomState(SEED_OPS)
    R = lambda *s: rng.randn(*s)
    specs = []

    def add(name, op, attrs, inputs, **opt):
        specs.append((name, op, attrs, [(n, arr, "f64", g) for n, arr, g in inputs], opt))

    def conv(name, xs, ws, **attrs):
        a = conv_attrs(**attrs)
        ins = [("x", R(*xs), True), ("weight", R(*ws), True)]
        if a["bias"] == "true":
            ins.append(("bias", R(ws[0]), True))
        add(name, "conv2d", a, ins)

    conv("conv2d_3x3_pad1", (2, 3, 5, 5), (4, 3, 3, 3), padding="1,1")
    conv("conv2d_stride2", (2, 3, 7, 7), (4, 3, 3, 3), stride="2,2", padding="1,1")
    conv("conv2d_pad0", (2, 2, 6, 5), (3, 2, 3, 3))
    conv("conv2d_dilation2", (2, 2, 7, 7), (3, 2, 3, 3), padding="1,1", dilation="2,2")
    conv("conv2d_groups2", (2, 4, 5, 5), (6, 2, 3, 3), padding="1,1", groups="2")
    conv("conv2d_depthwise", (2, 4, 5, 5), (4, 1, 3, 3), padding="1,1", groups="4")
    conv("conv2d_depthwise_mult2", (2, 3, 5, 5), (6, 1, 3, 3), padding="1,1", groups="3")
    conv("conv2d_kernel2x3_stride2_1", (2, 3, 6, 7), (4, 3, 2, 3), stride="2,1", padding="0,1")
    conv("conv2d_1x1", (2, 5, 4, 4), (3, 5, 1, 1))
    conv("conv2d_nobias", (2, 3, 5, 5), (4, 3, 3, 3), padding="1,1", bias="false")
    conv("conv2d_batch1", (1, 3, 6, 6), (5, 3, 3, 3), padding="1,1")
    # every attribute different in H and W, so that a swapped axis shows
    conv("conv2d_mixed", (3, 4, 7, 6), (6, 2, 3, 2), stride="2,1", padding="2,1", dilation="2,1", groups="2")

    add("max_pool2d_2x2", "max_pool2d", pool_attrs("2,2"), [("x", R(2, 3, 6, 6), True)])
    add("max_pool2d_3x3_stride2", "max_pool2d", pool_attrs("3,3", "2,2"), [("x", R(2, 2, 7, 7), True)])
    # all inputs negative: padding is −∞ for max pooling, not 0
    add("max_pool2d_3x3_stride2_pad1_negative", "max_pool2d", pool_attrs("3,3", "2,2", "1,1"),
        [("x", -np.abs(R(2, 2, 6, 6)) - 0.1, True)])
    add("max_pool2d_kernel2x3_stride1_2", "max_pool2d", pool_attrs("2,3", "1,2"), [("x", R(1, 2, 4, 7), True)])
    # integer values in {0, 1, 2}: many windows hold their maximum more than once (see check_tie_case)
    add("max_pool2d_ties", "max_pool2d", pool_attrs("3,3", "2,2", "1,1"),
        [("x", rng.randint(0, 3, size=(2, 2, 6, 6)).astype(np.float64), True)], ties=True)

    add("avg_pool2d_2x2", "avg_pool2d", dict(pool_attrs("2,2"), count_include_pad="true"), [("x", R(2, 3, 6, 6), True)])
    add("avg_pool2d_3x3_stride2_pad1", "avg_pool2d", dict(pool_attrs("3,3", "2,2", "1,1"), count_include_pad="true"),
        [("x", R(2, 2, 7, 7), True)])
    add("avg_pool2d_3x3_stride2_pad1_exclude_pad", "avg_pool2d",
        dict(pool_attrs("3,3", "2,2", "1,1"), count_include_pad="false"), [("x", R(2, 2, 7, 7), True)])
    add("avg_pool2d_kernel3x2_stride1", "avg_pool2d", dict(pool_attrs("3,2", "1,1"), count_include_pad="true"),
        [("x", R(2, 2, 5, 5), True)])

    add("adaptive_avg_pool2d_global", "adaptive_avg_pool2d", {"output_size": "1,1"}, [("x", R(2, 3, 5, 5), True)])
    add("adaptive_avg_pool2d_global_2", "adaptive_avg_pool2d", {"output_size": "1,1"}, [("x", R(3, 4, 4, 6), True)])

    add("flatten_basic", "flatten", {"start_dim": "1", "end_dim": "-1"}, [("x", R(2, 3, 4, 4), True)])
    add("flatten_2", "flatten", {"start_dim": "1", "end_dim": "-1"}, [("x", R(3, 6, 2, 2), True)])

    bn = lambda C: [("weight", rng.uniform(0.5, 1.5, C), True), ("bias", 0.1 * R(C), True)]
    add("batch_norm2d_train", "batch_norm2d", {"mode": "train", "eps": "1e-5"},
        [("x", 2.0 * R(3, 4, 5, 5) + 0.5, True)] + bn(4))
    add("batch_norm2d_train_batch1", "batch_norm2d", {"mode": "train", "eps": "1e-5"},
        [("x", R(1, 3, 4, 4) - 0.3, True)] + bn(3))
    add("batch_norm2d_eval", "batch_norm2d", {"mode": "eval", "eps": "1e-5"},
        [("x", 2.0 * R(3, 4, 5, 5) + 0.5, True)] + bn(4)
        + [("running_mean", 0.3 * R(4), False), ("running_var", rng.uniform(0.5, 2.0, 4), False)])

    add("add_broadcast_channel", "add_broadcast", {}, [("a", R(2, 3, 4, 5), True), ("b", R(3, 1, 1), True)])
    add("add_broadcast_per_sample", "add_broadcast", {}, [("a", R(2, 3, 4, 5), True), ("b", R(2, 3, 1, 1), True)])

    add("sum_axes_0_2_3_keepdims", "sum_axes", {"axes": "0,2,3", "keepdims": "true"}, [("x", R(2, 3, 4, 5), True)])
    add("sum_axes_2_3", "sum_axes", {"axes": "2,3", "keepdims": "false"}, [("x", R(2, 3, 4, 5), True)])
    stochastic_specs(add)
    return specs


def stochastic_specs(add):
    """#19's layers, from their own generator so that the cases above keep their values: fractional max pooling
    given its samples u (n, C, 2), DropConnect and stochastic depth given their masks (values 0 or 1/(1 − p))."""
    rng = np.random.RandomState(SEED_OPS + 19)
    R = lambda *s: rng.randn(*s)
    frac = lambda k, o: {"kernel": k, "output": o}
    add("fractional_max_pool2d_2x2_to_5x5", "fractional_max_pool2d", frac("2,2", "5,5"),
        [("x", R(2, 3, 8, 8), True), ("u", rng.uniform(0, 1, (2, 3, 2)), False)])
    # overlapping windows (3×3 over 7 → 4, α = 4/3), a ratio different per axis, and u at its ends
    add("fractional_max_pool2d_3x3_overlap", "fractional_max_pool2d", frac("3,3", "4,3"),
        [("x", R(2, 2, 9, 7), True), ("u", np.array([[[0.0, 0.999], [0.5, 0.25]], [[0.75, 0.1], [0.3, 0.0]]]), False)])
    add("fractional_max_pool2d_kernel2x1_one_row", "fractional_max_pool2d", frac("2,1", "1,4"),
        [("x", R(1, 2, 5, 6), True), ("u", rng.uniform(0, 1, (1, 2, 2)), False)])
    p = 0.4
    keep = lambda *s: (rng.uniform(0, 1, s) >= p) / (1 - p)
    add("drop_connect_p0.4", "drop_connect", {"p": "0.4"},
        [("x", R(3, 5), True), ("weight", R(4, 5), True), ("bias", R(4), True), ("mask", keep(4, 5), False)])
    add("stochastic_depth_rows", "stochastic_depth", {"p": "0.4"}, [("x", R(4, 3), True), ("mask", keep(4), False)])
    add("stochastic_depth_images", "stochastic_depth", {"p": "0.4"},
        [("x", R(4, 2, 3, 3), True), ("mask", keep(4), False)])


def check_tie_case(name, op, attrs, x, grad, upstream):
    """Finite differences are meaningless at a tie, so the tie rule is checked by construction: subtract
    0.1·(flat index)/size from the integer-valued x. Ties break in favour of the element that comes first in
    row-major order (a window's row-major order is the input's flat order), and no other comparison changes
    (distinct values differ by ≥ 1). The routing of x′, which is tie-free and away from any kink by ≥ 0.1/size
    ≫ h, must be the first-maximum routing of x, and the gradient at x′ is checked by finite differences."""
    fwd, vjp = OPS[op]
    _, arg = _maxpool_argmax(x, attrs)
    # the rule must matter: some window holds its maximum at least twice
    k, st, pd, so = _pool_geom(x, attrs)
    xp = np.pad(x, ((0, 0), (0, 0), (pd[0], pd[0]), (pd[1], pd[1])), constant_values=-np.inf)
    count = sum((_window(xp, i, j, so, st) == fwd([x], attrs)).astype(int) for i in range(k[0]) for j in range(k[1]))
    assert np.sum(count > 1) >= 4, f"{name}: too few tied windows"
    xt = x - 0.1 * np.arange(x.size).reshape(x.shape) / x.size
    assert np.array_equal(_maxpool_argmax(xt, attrs)[1], arg), f"{name}: tie-broken routing differs"
    gt = vjp([xt], attrs, None, upstream)[0]
    assert np.array_equal(gt, grad), f"{name}: first-maximum gradient differs from the tie-broken one"
    num = ref.numeric_grad(lambda: float(np.sum(upstream * fwd([xt], attrs))), xt)
    return ref.check(f"op {name} (tie-broken) input x", gt, num)


def build_op_cases():
    urng = np.random.RandomState(SEED_UPSTREAM)
    cases, worst, worst_case = [], 0.0, ""
    for name, op, attrs, inputs, opt in op_specs():
        fwd, vjp = OPS[op]
        arrays = [np.array(arr, dtype=np.float64) for _, arr, _, _ in inputs]
        out = np.asarray(fwd(arrays, attrs), dtype=np.float64)
        upstream = urng.randn(*out.shape)
        grads = vjp(arrays, attrs, out, upstream)
        assert len(grads) == len(inputs), name
        gjson = []
        for (iname, _, _, has_grad), arr, gr in zip(inputs, arrays, grads):
            if not has_grad:
                assert gr is None, (name, iname)
                gjson.append(None)
                continue
            gr = np.asarray(gr, dtype=np.float64)
            assert gr.shape == arr.shape, (name, iname, gr.shape, arr.shape)
            if opt.get("ties"):
                e = check_tie_case(name, op, attrs, arr, gr, upstream)
            else:
                num = ref.numeric_grad(lambda: float(np.sum(upstream * fwd(arrays, attrs))), arr)
                e = ref.check(f"op {name} input {iname}", gr, num)
            if e > worst:
                worst, worst_case = e, f"{name}/{iname}"
            gjson.append({"name": iname, "shape": list(arr.shape), "data": [float(v) for v in gr.reshape(-1)]})
        cases.append({
            "name": name, "op": op, "attrs": attrs,
            "inputs": [ref.tensor_json(iname, arr) for (iname, _, _, _), arr in zip(inputs, arrays)],
            "output": ref.plain_json(out),
            "upstream": ref.plain_json(upstream),
            "grads": gjson,
        })
    assert len({c["name"] for c in cases}) == len(cases)
    print(f"cnn ops: {len(cases)} cases, worst finite-difference rel err {worst:.2e} ({worst_case})")
    return {"cases": cases}


# ---------------------------------------------------------------------------
# Forward self-checks: finite differences only tie a VJP to its forward, so the vectorized forwards above are
# compared with scalar loops written straight from PyTorch's definitions (cross-correlation; windows clipped
# to the input; max pooling keeps the first strict maximum).
# ---------------------------------------------------------------------------

def naive_conv2d(x, w, b, a):
    n, C, H, W = x.shape
    K, Cg, kh, kw = w.shape
    st, pd, dl, G, (Ho, Wo) = _conv_geom(x, w, a)
    y = np.zeros((n, K, Ho, Wo))
    for s in range(n):
        for k in range(K):
            g = k // (K // G)
            for oh in range(Ho):
                for ow in range(Wo):
                    acc = 0.0 if b is None else b[k]
                    for c in range(Cg):
                        for i in range(kh):
                            for j in range(kw):
                                h, v = oh * st[0] - pd[0] + i * dl[0], ow * st[1] - pd[1] + j * dl[1]
                                if 0 <= h < H and 0 <= v < W:
                                    acc += x[s, g * Cg + c, h, v] * w[k, c, i, j]
                    y[s, k, oh, ow] = acc
    return y


def naive_pool(x, a, kind, gy=None):
    """kind "max" (also returns the gradient routed to each window's first maximum) or "avg"."""
    k, st, pd, (Ho, Wo) = _pool_geom(x, a)
    n, C, H, W = x.shape
    y, gx = np.zeros((n, C, Ho, Wo)), np.zeros_like(x)
    for s in range(n):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    cells = [(h, v) for h in range(oh * st[0] - pd[0], oh * st[0] - pd[0] + k[0])
                             for v in range(ow * st[1] - pd[1], ow * st[1] - pd[1] + k[1]) if 0 <= h < H and 0 <= v < W]
                    if kind == "max":
                        bh, bv = cells[0]
                        for h, v in cells[1:]:
                            if x[s, c, h, v] > x[s, c, bh, bv]:
                                bh, bv = h, v
                        y[s, c, oh, ow] = x[s, c, bh, bv]
                        if gy is not None:
                            gx[s, c, bh, bv] += gy[s, c, oh, ow]
                    else:
                        div = k[0] * k[1] if _flag(a, "count_include_pad", "true") else len(cells)
                        y[s, c, oh, ow] = sum(x[s, c, h, v] for h, v in cells) / div
    return y, gx


def check_forwards(cases):
    worst = 0.0
    # PyTorch's sequence worked by hand: α = (8 − 2)/(5 − 1) = 1.5, u = 0.3 → ⌊(i + 0.3)·1.5⌋ − ⌊0.45⌋, last 8 − 2
    assert _frac_starts(8, 5, 2, 0.3) == [0, 1, 3, 4, 6]
    assert _frac_starts(7, 1, 3, 0.9) == [4]
    for c in cases:
        ins = [np.array(t["data"]).reshape(t["shape"]) for t in c["inputs"]]
        out = np.array(c["output"]["data"]).reshape(c["output"]["shape"])
        op, a = c["op"], c["attrs"]
        if op == "conv2d":
            want = naive_conv2d(ins[0], ins[1], ins[2] if len(ins) == 3 else None, a)
        elif op == "max_pool2d":
            want, gx = naive_pool(ins[0], a, "max", np.array(c["upstream"]["data"]).reshape(out.shape))
            got = np.array(c["grads"][0]["data"]).reshape(ins[0].shape)   # overlaps add in another order
            worst = max(worst, ref.check(f"max-pool routing of {c['name']} against its scalar loop", got, gx, tol=1e-12))
        elif op == "avg_pool2d":
            want = naive_pool(ins[0], a, "avg")[0]
        elif op == "batch_norm2d":
            x, g, b = ins[:3]
            want = np.zeros_like(x)
            for ch in range(x.shape[1]):
                v = x[:, ch].reshape(-1)
                mu, var = (v.mean(), ((v - v.mean()) ** 2).mean()) if a["mode"] == "train" else (ins[3][ch], ins[4][ch])
                want[:, ch] = (x[:, ch] - mu) / np.sqrt(var + float(a["eps"])) * g[ch] + b[ch]
        else:
            continue
        assert want.shape == out.shape, c["name"]
        worst = max(worst, ref.check(f"forward of {c['name']} against its scalar loop", out, want, tol=1e-12))
    return worst



# ---------------------------------------------------------------------------
# Part 2: a small CNN trained for 5 Adam steps, with and without BatchNorm2d
# ---------------------------------------------------------------------------

N_SAMPLES, BATCH, STEPS, CLASSES = 20, 4, 5, 10
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
ADAM = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8}
CONV_PAD1 = conv_attrs(padding="1,1")
POOL2 = pool_attrs("2,2")
AVG2 = dict(POOL2, count_include_pad="true")

# (kind, ...): ("conv2d", in, out, k, attrs) | ("batch_norm2d", C) | ("linear", in, out) | (op, attrs)
CNN_LAYERS = [("conv2d", 1, 4, 3, CONV_PAD1), ("relu", {}), ("max_pool2d", POOL2),
              ("conv2d", 4, 6, 3, CONV_PAD1), ("relu", {}), ("avg_pool2d", AVG2), ("flatten", {}), ("linear", 24, 10)]
CNN_BN_LAYERS = CNN_LAYERS[:1] + [("batch_norm2d", 4)] + CNN_LAYERS[1:]


class CNN:
    def __init__(self, layers):
        self.layers = layers

    def param_keys(self):
        return [f"{i}.{p}" for i, l in enumerate(self.layers) if l[0] in ("conv2d", "linear", "batch_norm2d")
                for p in ("weight", "bias")]

    def buffer_keys(self):
        return [f"{i}.{b}" for i, l in enumerate(self.layers) if l[0] == "batch_norm2d"
                for b in ("running_mean", "running_var", "num_batches_tracked")]

    def state_keys(self):
        """PyTorch's state_dict order: per module, parameters then buffers."""
        out = []
        for i, l in enumerate(self.layers):
            if l[0] in ("conv2d", "linear", "batch_norm2d"):
                out += [f"{i}.weight", f"{i}.bias"]
            if l[0] == "batch_norm2d":
                out += [f"{i}.running_mean", f"{i}.running_var", f"{i}.num_batches_tracked"]
        return out

    def describe(self):
        names = []
        for l in self.layers:
            if l[0] == "conv2d":
                a = l[4]
                names.append(f"conv2d({l[1]},{l[2]},{l[3]},stride={a['stride'].split(',')[0]},padding={a['padding'].split(',')[0]})")
            elif l[0] in ("linear", "batch_norm2d"):
                names.append(f"{l[0]}({','.join(str(v) for v in l[1:])})")
            elif l[0] in ("max_pool2d", "avg_pool2d"):
                names.append(f"{l[0]}({l[1]['kernel'].split(',')[0]})")
            else:
                names.append(l[0])
        return {"layers": names, "input": [1, 8, 8], "loss": "cross_entropy(mean)"}

    def forward(self, P, B, x, train):
        """Activations of every layer and, in train mode, each BatchNorm's batch mean, biased variance and count."""
        acts, stats = [x], {}
        for i, l in enumerate(self.layers):
            h = acts[-1]
            if l[0] == "conv2d":
                h = f_conv2d([h, P[f"{i}.weight"], P[f"{i}.bias"]], l[4])
            elif l[0] == "linear":
                h = ref.f_linear([h, P[f"{i}.weight"], P[f"{i}.bias"]], {})
            elif l[0] == "batch_norm2d":
                ins = [h, P[f"{i}.weight"], P[f"{i}.bias"], B[f"{i}.running_mean"], B[f"{i}.running_var"]]
                if train:
                    stats[i] = _bn_stats(h) + (h.shape[0] * h.shape[2] * h.shape[3],)
                h = f_batch_norm2d(ins, {"mode": "train" if train else "eval", "eps": str(BN_EPS)})
            else:
                h = OPS[l[0]][0]([h], l[1])
            acts.append(h)
        return acts, stats

    def loss(self, P, B, x, y, train=True):
        return ref.f_cross_entropy([self.forward(P, B, x, train)[0][-1], y], {"reduction": "mean"})

    def loss_and_grad(self, P, B, x, y):
        """Train mode: the loss, the gradient of every parameter, and the batch statistics of each BatchNorm."""
        acts, stats = self.forward(P, B, x, True)
        ce = {"reduction": "mean"}
        L = ref.f_cross_entropy([acts[-1], y], ce)
        g = ref.b_cross_entropy([acts[-1], y], ce, L, 1.0)[0]
        G = {}
        for i in range(len(self.layers) - 1, -1, -1):
            l, h = self.layers[i], acts[i]
            if l[0] in ("conv2d", "linear", "batch_norm2d"):
                ins = [h, P[f"{i}.weight"], P[f"{i}.bias"]]
                if l[0] == "conv2d":
                    g, G[f"{i}.weight"], G[f"{i}.bias"] = b_conv2d(ins, l[4], acts[i + 1], g)
                elif l[0] == "linear":
                    g, G[f"{i}.weight"], G[f"{i}.bias"] = ref.b_linear(ins, {}, acts[i + 1], g)
                else:
                    g, G[f"{i}.weight"], G[f"{i}.bias"] = b_batch_norm2d(ins, {"mode": "train", "eps": str(BN_EPS)},
                                                                         acts[i + 1], g)
            else:
                g = OPS[l[0]][1]([h], l[1], acts[i + 1], g)[0]
        assert g.shape == x.shape
        return float(L), G, stats

    def update_buffers(self, B, stats):
        """nn.BatchNorm2d in train mode: running ← (1 − m)·running + m·stat, with the unbiased variance."""
        for i, (mu, var, n) in stats.items():     # n: elements per channel, batch × H × W
            B[f"{i}.running_mean"] = (1 - BN_MOMENTUM) * B[f"{i}.running_mean"] + BN_MOMENTUM * mu
            B[f"{i}.running_var"] = (1 - BN_MOMENTUM) * B[f"{i}.running_var"] + BN_MOMENTUM * var * n / (n - 1)
            B[f"{i}.num_batches_tracked"] = B[f"{i}.num_batches_tracked"] + 1


def init_cnn_weights():
    """float32 weights drawn in layer order (weight, then bias) from RandomState(SEED_INIT) with PyTorch's default
    init: kaiming_uniform_(a=√5) is U(±1/√fan_in), the bias U(±1/√fan_in) too; fan_in = in/groups·kh·kw."""
    rng = np.random.RandomState(SEED_INIT)
    w = []
    for l in CNN_LAYERS:
        if l[0] == "conv2d":
            shape = (l[2], l[1], l[3], l[3])
        elif l[0] == "linear":
            shape = (l[2], l[1])
        else:
            continue
        bound = 1.0 / np.sqrt(np.prod(shape[1:]))
        w.append((rng.uniform(-bound, bound, size=shape).astype(np.float32),
                  rng.uniform(-bound, bound, size=shape[:1]).astype(np.float32)))
    return w


def initial_state(model, weights):
    """The state_dict (float32 parameters and running stats, int64 counters) in PyTorch's order: the weighted layers
    take `weights` in order, BatchNorm starts at γ = 1, β = 0, running mean 0, running variance 1, no batches."""
    it = iter(weights)
    state = []
    for i, l in enumerate(model.layers):
        if l[0] in ("conv2d", "linear"):
            wt, b = next(it)
            state += [(f"{i}.weight", wt), (f"{i}.bias", b)]
        elif l[0] == "batch_norm2d":
            C = l[1]
            state += [(f"{i}.weight", np.ones(C, np.float32)), (f"{i}.bias", np.zeros(C, np.float32)),
                      (f"{i}.running_mean", np.zeros(C, np.float32)), (f"{i}.running_var", np.ones(C, np.float32)),
                      (f"{i}.num_batches_tracked", np.array(0, dtype=np.int64))]
    assert [k for k, _ in state] == model.state_keys()
    return state


def make_cnn_data():
    """x ~ N(0,1) as float32 (20,1,8,8); y = argmax of a fixed random linear map of the pixels (int64)."""
    rng = np.random.RandomState(SEED_DATA)
    x = rng.randn(N_SAMPLES, 1, 8, 8).astype(np.float32)
    teacher = rng.randn(64, CLASSES)
    y = np.argmax(x.reshape(N_SAMPLES, -1).astype(np.float64) @ teacher, axis=1).astype(np.int64)
    return x, y


def write_safetensors_typed(path, tensors):
    """As reference.write_safetensors, but float32 tensors are F32 and int64 ones I64 (num_batches_tracked)."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors:
        code, dt = ("I64", "<i8") if arr.dtype == np.int64 else ("F32", "<f4")
        assert arr.dtype in (np.int64, np.float32), name
        b = np.ascontiguousarray(arr, dtype=dt).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-(8 + len(hjson))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs))
    back = ref.read_safetensors(path)
    assert list(back) == [k for k, _ in tensors], path
    for k, v in tensors:
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and np.array_equal(back[k], v), (path, k)


def tensor_plain(arr):
    """{"shape", "data"}: floats for float tensors, integers for int64 counters."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "i":
        return {"shape": list(arr.shape), "data": [int(v) for v in arr.reshape(-1)]}
    return ref.plain_json(arr)


def evaluate(model, P, B, x, y):
    """Eval mode (BatchNorm uses its running statistics) over all samples."""
    logits = model.forward(P, B, x, False)[0][-1]
    L = ref.f_cross_entropy([logits, y], {"reduction": "mean"})
    return {"loss": float(L), "accuracy": float(np.mean(np.argmax(logits, axis=1) == y))}, ref.plain_json(logits[:4])


def check_cnn_grad(model, P, B, x, y, label):
    _, G, _ = model.loss_and_grad(P, B, x, y)
    worst = 0.0
    for k in model.param_keys():
        num = ref.numeric_grad(lambda: model.loss(P, B, x, y), P[k])
        worst = max(worst, ref.check(f"model {label} param {k}", G[k], num))
    return worst


def build_cnn_trajectories():
    x32, y = make_cnn_data()
    x = x32.astype(np.float64)
    weights = init_cnn_weights()
    np.save(os.path.join(TRAJ, "cnn_x.npy"), x32)
    np.save(os.path.join(TRAJ, "cnn_y.npy"), y)
    assert np.array_equal(np.load(os.path.join(TRAJ, "cnn_x.npy")), x32)
    assert np.array_equal(np.load(os.path.join(TRAJ, "cnn_y.npy")), y)
    result = {"data": {"x": ref.plain_json(x), "y": tensor_plain(y)}}
    for tag, layers in (("cnn", CNN_LAYERS), ("cnn_bn", CNN_BN_LAYERS)):
        model = CNN(layers)
        state = initial_state(model, weights)
        write_safetensors_typed(os.path.join(TRAJ, f"{tag}_init.safetensors"), state)
        P = {k: v.astype(np.float64) for k, v in state if k in model.param_keys()}
        B = {k: (v.copy() if v.dtype == np.int64 else v.astype(np.float64)) for k, v in state if k in model.buffer_keys()}
        worst = max(check_cnn_grad(model, P, B, x[:BATCH], y[:BATCH], f"{tag}/first batch"),
                    check_cnn_grad(model, P, B, x[-BATCH:], y[-BATCH:], f"{tag}/last batch"))
        entry = {"model": model.describe(),
                 "init_params": {k: ref.plain_json(P[k]) for k in model.param_keys()}}
        if B:
            entry["init_buffers"] = {k: tensor_plain(B[k]) for k in model.buffer_keys()}
        entry["eval_initial"], entry["logits_initial_first4"] = evaluate(model, P, B, x, y)

        opt = optim.Optim("adam", ADAM)
        losses = []
        for t in range(STEPS):
            xb, yb = x[t * BATCH:(t + 1) * BATCH], y[t * BATCH:(t + 1) * BATCH]
            L, G, stats = model.loss_and_grad(P, B, xb, yb)
            losses.append(L)
            model.update_buffers(B, stats)
            opt.step(P, G)
        assert np.all(np.isfinite(losses))
        run = {"hparams": ADAM, "batch": BATCH, "steps": STEPS, "losses": losses,
               "final_params": {k: ref.plain_json(P[k]) for k in model.param_keys()}}
        if B:
            run["final_buffers"] = {k: tensor_plain(B[k]) for k in model.buffer_keys()}
        run["eval_final"], run["logits_final_first4"] = evaluate(model, P, B, x, y)
        entry["adam"] = run
        result[tag] = entry
        print(f"{tag}: model backward finite-difference worst rel err {worst:.2e}; losses {losses}")
    return result


def main():
    ops = build_op_cases()
    print(f"cnn ops: forwards match their scalar loops, worst rel err {check_forwards(ops['cases']):.2e}")
    traj = build_cnn_trajectories()
    ref.dump_json(os.path.join(FIXTURES, "cnn_ops.json"), ops)
    ref.dump_json(os.path.join(FIXTURES, "cnn_trajectory.json"), traj)
    print("wrote", os.path.relpath(FIXTURES, ref.ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
