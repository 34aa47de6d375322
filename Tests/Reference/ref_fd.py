"""Finite differences: every VJP of the reference is checked against them before anything is written."""

import numpy as np


FD_H = 1e-6
FD_TOL = 1e-6


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
