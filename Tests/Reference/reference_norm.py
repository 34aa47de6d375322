"""NumPy reference for BatchNorm and LayerNorm (PyTorch semantics), written to Tests/Fixtures/norm.json.

Each case is the model Sequential { Norm(k) } trained with MSE (mean) against targets t:
  - BatchNorm1d, train mode: y = (x − μ_B)/√(σ²_B + eps)·γ + β with the batch mean and biased variance;
    running ← (1 − m)·running + m·stat with the unbiased variance; eval mode: running statistics.
  - LayerNorm: each row normalized by its own mean and biased variance, then ·γ + β (same in both modes).
Gradients of the loss for x, γ and β are analytic and checked here against central differences.
Run from the repository root: python3 Tests/Reference/reference_norm.py"""
import json, os
import numpy as np

rng = np.random.RandomState(77)
EPS, MOM = 1e-5, 0.1

def bn_train(x, g, b):
    mu = x.mean(0); var = x.var(0); inv = 1 / np.sqrt(var + EPS)
    return (x - mu) * inv * g + b, mu, var

def ln(x, g, b):
    mu = x.mean(1, keepdims=True); var = x.var(1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b

def mse(y, t): return ((y - t) ** 2).mean()

def bn_backward(x, g, dy):
    n = x.shape[0]; mu = x.mean(0); var = x.var(0); inv = 1 / np.sqrt(var + EPS); xh = (x - mu) * inv
    dxh = dy * g
    dx = inv / n * (n * dxh - dxh.sum(0) - xh * (dxh * xh).sum(0))
    return dx, (dy * xh).sum(0), dy.sum(0)

def ln_backward(x, g, dy):
    k = x.shape[1]; mu = x.mean(1, keepdims=True); var = x.var(1, keepdims=True); inv = 1 / np.sqrt(var + EPS)
    xh = (x - mu) * inv; dxh = dy * g
    dx = inv / k * (k * dxh - dxh.sum(1, keepdims=True) - xh * (dxh * xh).sum(1, keepdims=True))
    return dx, (dy * xh).sum(0), dy.sum(0)

def fd(f, a, h=1e-6):
    out = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        p = a.copy(); p[i] += h; m = a.copy(); m[i] -= h
        out[i] = (f(p) - f(m)) / (2 * h)
    return out

def check(name, analytic, f, a):
    num = fd(f, a)
    err = np.max(np.abs(analytic - num) / np.maximum(np.abs(num), 1e-8))
    assert err < 1e-6, f"{name}: analytic gradient differs from central differences by {err}"

def t(a): return {"shape": list(a.shape), "data": [float(v) for v in np.ravel(a)]}

cases = []
n, k = 6, 4
for kind in ["batchnorm", "layernorm"]:
    x = rng.randn(n, k) * 2 + 0.5; tgt = rng.randn(n, k)
    g = rng.uniform(0.5, 1.5, k); b = rng.randn(k) * 0.1
    rm = rng.randn(k) * 0.3; rv = rng.uniform(0.5, 2, k)
    if kind == "batchnorm":
        y, mu, var = bn_train(x, g, b)
        fwd = lambda x_, g_=g, b_=b: bn_train(x_, g_, b_)[0]
        back = bn_backward
    else:
        y = ln(x, g, b); fwd = lambda x_, g_=g, b_=b: ln(x_, g_, b_); back = ln_backward
    loss = mse(y, tgt); dy = 2 * (y - tgt) / y.size
    dx, dg, db = back(x, g, dy)
    check(f"{kind} dx", dx, lambda x_: mse(fwd(x_), tgt), x)
    check(f"{kind} dgamma", dg, lambda g_: mse(fwd(x, g_), tgt), g)
    check(f"{kind} dbeta", db, lambda b_: mse(fwd(x, g, b_), tgt), b)
    case = {"name": kind, "x": t(x), "target": t(tgt), "weight": t(g), "bias": t(b), "train_output": t(y),
            "loss": float(loss), "grad_x": t(dx), "grad_weight": t(dg), "grad_bias": t(db)}
    if kind == "batchnorm":
        case.update({"running_mean": t(rm), "running_var": t(rv),
                     "new_running_mean": t((1 - MOM) * rm + MOM * mu),
                     "new_running_var": t((1 - MOM) * rv + MOM * var * n / (n - 1)),
                     "eval_output": t((x - rm) / np.sqrt(rv + EPS) * g + b)})
    else:
        case["eval_output"] = t(y)
    cases.append(case)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "norm.json")
with open(out, "w") as f:
    json.dump({"eps": EPS, "momentum": MOM, "cases": cases}, f, indent=0)
print("wrote", os.path.normpath(out))
