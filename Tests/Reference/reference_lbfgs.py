#!/usr/bin/env python3
"""Full-batch L-BFGS (torch.optim.LBFGS) in NumPy, float64, and its trajectories on the trajectory fixtures'
models: Tests/Fixtures/lbfgs.json.

    python3 Tests/Reference/reference_lbfgs.py [--torch]

A line-by-line transcription of torch/optim/lbfgs.py (LBFGS.step, _strong_wolfe, _cubic_interpolate): the same
tests in the same order, the same constants (c1 = 1e-4, c2 = 0.9, max_ls = 25, yᵀs > 1e-10, the first step
min(1, 1/‖g‖₁)·lr, max_eval = max_iter·5//4). The objective is a closure over the flat vector of trainable
parameters, the whole training set per call (what nncc's trainer computes in chunks of --batch). One optimizer
step is one epoch; each case records the loss at the start of every iteration (what the trainer logs as a step),
the loss each step returns (the epoch's train_loss), and the final weights.

--torch (needs torch, never a test dependency) runs torch.optim.LBFGS in float64 on the same problems and prints
the largest difference from this reference.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_files import FIXTURES, TRAJ, plain_json, read_safetensors  # noqa: E402
from ref_mlp import CLS, REG, to_f64  # noqa: E402


def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, lo), hi)
    return (lo + hi) / 2.0


def strong_wolfe(obj, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """Returns (f, g, t, evaluations) at the accepted step length."""
    d_norm = np.max(np.abs(d))
    f_new, g_new = obj(x, t, d)
    evals = 1
    gtd_new = g_new @ d
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            br, br_f, br_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:
            br, br_f, br_g, br_gtd = [t_prev, t], [f_prev, f_new], [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step, max_step = t + 0.01 * (t - t_prev), t * 10
        tmp = t
        t = cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new, gtd_new
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = g_new @ d
        ls_iter += 1
    if ls_iter == max_ls:
        br, br_f, br_g = [0, t], [f, f_new], [g, g_new]

    insuf_progress = False
    low, high = (0, 1) if br_f[0] <= br_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(br[1] - br[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(br[0], br_f[0], br_gtd[0], br[1], br_f[1], br_gtd[1])
        eps = 0.1 * (max(br) - min(br))
        if min(max(br) - t, t - min(br)) < eps:
            if insuf_progress or t >= max(br) or t <= min(br):
                t = max(br) - eps if abs(t - max(br)) < abs(t - min(br)) else min(br) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = obj(x, t, d)
        evals += 1
        gtd_new = g_new @ d
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= br_f[low]:
            br[high], br_f[high], br_g[high], br_gtd[high] = t, f_new, g_new, gtd_new
            low, high = (0, 1) if br_f[0] <= br_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (br[high] - br[low]) >= 0:
                br[high], br_f[high], br_g[high], br_gtd[high] = br[low], br_f[low], br_g[low], br_gtd[low]
            br[low], br_f[low], br_g[low], br_gtd[low] = t, f_new, g_new, gtd_new
    return br_f[low], br_g[low], br[low], evals


class LBFGS:
    def __init__(self, lr=1.0, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search=None):
        self.lr, self.max_iter = lr, max_iter
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.tol_grad, self.tol_change, self.history_size = tolerance_grad, tolerance_change, history_size
        self.line_search = line_search
        self.n_iter = 0                      # over the run, as torch's state["n_iter"]
        self.d = self.t = self.H_diag = self.prev_grad = None
        self.dirs, self.stps, self.ro = [], [], []

    def step(self, x, closure, iter_losses):
        """One optimizer step from x (updated in place); closure(x) -> (loss, grad). Returns the starting loss."""
        orig_loss, g = closure(x)
        loss, evals = orig_loss, 1
        if np.max(np.abs(g)) <= self.tol_grad:
            return orig_loss
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self.n_iter += 1
            iter_losses.append(loss)
            self.direction(g)
            self.prev_grad, prev_loss = g.copy(), loss
            self.t = min(1.0, 1.0 / np.sum(np.abs(g))) * self.lr if self.n_iter == 1 else self.lr
            gtd = g @ self.d
            if gtd > -self.tol_change:
                break
            if self.line_search == "strong_wolfe":
                x0 = x.copy()
                loss, g, self.t, ls_evals = strong_wolfe(lambda xx, t, d: closure(xx + t * d), x0, self.t, self.d,
                                                         loss, g, gtd, tolerance_change=self.tol_change)
                x += self.t * self.d
            else:
                x += self.t * self.d
                ls_evals = 0
                if n_iter != self.max_iter:
                    loss, g = closure(x)
                    ls_evals = 1
            evals += ls_evals
            if n_iter == self.max_iter or evals >= self.max_eval:
                break
            if np.max(np.abs(g)) <= self.tol_grad:
                break
            if np.max(np.abs(self.d * self.t)) <= self.tol_change:
                break
            if abs(loss - prev_loss) < self.tol_change:
                break
        return orig_loss

    def direction(self, g):
        if self.n_iter == 1:
            self.d, self.dirs, self.stps, self.ro, self.H_diag = -g, [], [], [], 1.0
            return
        y, s = g - self.prev_grad, self.d * self.t
        ys = y @ s
        if ys > 1e-10:
            if len(self.dirs) == self.history_size:
                self.dirs.pop(0), self.stps.pop(0), self.ro.pop(0)
            self.dirs.append(y), self.stps.append(s), self.ro.append(1.0 / ys)
            self.H_diag = ys / (y @ y)
        al = [0.0] * len(self.dirs)
        q = -g
        for i in range(len(self.dirs) - 1, -1, -1):
            al[i] = (self.stps[i] @ q) * self.ro[i]
            q = q - al[i] * self.dirs[i]
        r = q * self.H_diag
        for i in range(len(self.dirs)):
            be = (self.dirs[i] @ r) * self.ro[i]
            r = r + (al[i] - be) * self.stps[i]
        self.d = r


# ----------------------------------------------------------------------------
# the problems

def flat_problem(model, tag):
    """(x0, closure, unflatten) for a model of ref_mlp on its trajectory data, from its initial weights."""
    x = np.load(os.path.join(TRAJ, f"{tag}_x.npy")).astype(np.float64)
    y = np.load(os.path.join(TRAJ, f"{tag}_y.npy"))
    y = y if model.loss == "cross_entropy" else y.astype(np.float64)
    init = to_f64(read_safetensors(os.path.join(TRAJ, f"{tag}_init.safetensors")))
    keys = model.param_keys()
    shapes = [init[k].shape for k in keys]

    def unflatten(v):
        P, o = {}, 0
        for k, s in zip(keys, shapes):
            n = int(np.prod(s))
            P[k] = v[o:o + n].reshape(s)
            o += n
        return P

    def closure(v):
        L, G = model.loss_and_grad(unflatten(v), x, y)
        return L, np.concatenate([G[k].reshape(-1) for k in keys])

    return np.concatenate([init[k].reshape(-1) for k in keys]), closure, unflatten


# (key, model tag, the DSL's LBFGS arguments, torch's keyword arguments, epochs)
CASES = [
    ("reg_strong_wolfe", "reg", "LBFGS(maxIter: 3, historySize: 3, lineSearch: .strongWolfe)",
     dict(max_iter=3, history_size=3, line_search="strong_wolfe"), 3),
    ("reg_fixed_step", "reg", "LBFGS(learningRate: 0.5, maxIter: 6, historySize: 3)",
     dict(lr=0.5, max_iter=6, history_size=3), 3),
    ("cls_strong_wolfe", "cls", "LBFGS(maxIter: 5, historySize: 10, lineSearch: .strongWolfe)",
     dict(max_iter=5, history_size=10, line_search="strong_wolfe"), 4),
]
# Small on purpose: longer runs of the regressor (sigmoid, MSE) fall into float32 rounding, where torch's own
# float32 run leaves the float64 one by more than 1e-4 (maxIter 5 for 4 epochs: 2.5e-3 in the weights). These
# three stay within 2e-5 of torch float32 (Tests/Reference/README.md).
MODELS = {"reg": REG, "cls": CLS}


def run_case(tag, kwargs, epochs):
    model = MODELS[tag]
    x, closure, unflatten = flat_problem(model, tag)
    opt = LBFGS(**kwargs)
    iter_losses, step_losses = [], []
    for _ in range(epochs):
        step_losses.append(opt.step(x, closure, iter_losses))
    return iter_losses, step_losses, unflatten(x)


def torch_crosscheck():
    import torch
    worst = 0.0
    for key, tag, _, kw, epochs in CASES:
        _, step_ref, P_ref = run_case(tag, kw, epochs)
        model = MODELS[tag]
        x0, closure, unflatten = flat_problem(model, tag)
        v = torch.tensor(x0, dtype=torch.float64, requires_grad=True)

        class Fn(torch.autograd.Function):
            @staticmethod
            def forward(ctx, w):
                L, G = closure(w.detach().numpy().copy())
                ctx.save_for_backward(torch.tensor(G))
                return torch.tensor(L, dtype=torch.float64)

            @staticmethod
            def backward(ctx, gout):
                return gout * ctx.saved_tensors[0]

        kwt = {k: v_ for k, v_ in kw.items() if k != "line_search"}
        opt = torch.optim.LBFGS([v], line_search_fn=kw.get("line_search"), **kwt)

        def tclosure():
            opt.zero_grad()
            L = Fn.apply(v)
            L.backward()
            return L
        steps = [float(opt.step(tclosure)) for _ in range(epochs)]
        dl = max(abs(a - b) / abs(b) for a, b in zip(steps, step_ref))
        dw = float(np.max(np.abs(v.detach().numpy() - np.concatenate([P_ref[k].reshape(-1) for k in model.param_keys()]))))
        print(f"{key}: torch {torch.__version__} float64 vs this reference: step losses {dl:.2e} relative, weights {dw:.2e}")
        worst = max(worst, dl, dw)
    print(f"worst {worst:.2e}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch", action="store_true", help="compare with torch.optim.LBFGS instead of writing")
    if ap.parse_args().torch:
        return torch_crosscheck()
    out = {}
    for key, tag, dsl, kw, epochs in CASES:
        iters, steps, P = run_case(tag, kw, epochs)
        assert all(np.isfinite(iters)) and steps[-1] < steps[0], key
        out[key] = {"model": tag, "dsl": dsl, "torch": kw, "epochs": epochs, "losses": iters, "step_losses": steps,
                    "final_params": {k: plain_json(v) for k, v in P.items()}}
        print(f"{key}: {len(iters)} iterations, step losses {[f'{s:.6g}' for s in steps]}")
    path = os.path.join(FIXTURES, "lbfgs.json")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(f'"{k}": ' + __import__("json").dumps(v) for k, v in out.items()) + "\n}\n")
    print("wrote", path)


if __name__ == "__main__":
    sys.exit(main())
