"""NumPy reference for nncc's optimizers and learning-rate schedules (imported by reference.py).

Optimizers follow torch.optim's algorithms (SGD, Adam, AdamW, Adagrad, RMSprop) step by step, plus the
lectures' velocity form of momentum. Schedules are written the way torch.optim.lr_scheduler computes them,
mostly as state machines stepped once per t (CosineAnnealingWarmRestarts keeps T_cur and T_i, MultiStepLR
counts milestones passed), so they are independent of nncc's closed forms.

Writes Tests/Fixtures/optimizers.json:
  quadratic: f(w) = sum(c * (w - a)^2), N steps of every optimizer from w0, the iterates after each step;
  schedules: the learning rate for t = 0 .. T-1 of every schedule.
"""

import math

import numpy as np


class Optim:
    """One optimizer over a dict of float64 parameters; hp uses torch's argument names."""

    def __init__(self, kind, hp):
        self.kind, self.hp, self.state, self.t = kind, hp, {}, 0

    def step(self, P, G, lr=None):
        self.t += 1
        hp = self.hp
        lr = hp["lr"] if lr is None else lr
        for k in P:
            g = G[k].copy()
            st = self.state.setdefault(k, {})
            wd = hp.get("weight_decay", 0.0)
            if self.kind == "adamw":
                P[k] = P[k] * (1.0 - lr * wd)          # decoupled: decay the weights, not the gradient
            else:
                g = g + wd * P[k]
            if self.kind == "sgd":
                mu = hp.get("momentum", 0.0)
                if mu == 0:
                    P[k] = P[k] - lr * g
                elif hp.get("velocity"):
                    v = mu * st.get("v", 0.0) - lr * g
                    st["v"] = v
                    P[k] = P[k] + (mu * v - lr * g if hp.get("nesterov") else v)
                else:
                    buf = g.copy() if "buf" not in st else mu * st["buf"] + g
                    st["buf"] = buf
                    P[k] = P[k] - lr * (g + mu * buf if hp.get("nesterov") else buf)
            elif self.kind in ("adam", "adamw"):
                b1, b2 = hp["betas"]
                m = b1 * st.get("m", 0.0) + (1 - b1) * g
                v = b2 * st.get("v", 0.0) + (1 - b2) * g * g
                st["m"], st["v"] = m, v
                if hp.get("amsgrad"):                   # torch: max_exp_avg_sq = max(max_exp_avg_sq, v)
                    v = np.maximum(st.get("v_max", 0.0), v)
                    st["v_max"] = v
                denom = np.sqrt(v) / math.sqrt(1 - b2 ** self.t) + hp["eps"]
                P[k] = P[k] - (lr / (1 - b1 ** self.t)) * m / denom
            elif self.kind == "adagrad":
                clr = lr / (1 + (self.t - 1) * hp.get("lr_decay", 0.0))
                s = st.get("sum", hp.get("initial_accumulator_value", 0.0)) + g * g
                st["sum"] = s
                P[k] = P[k] - clr * g / (np.sqrt(s) + hp["eps"])
            elif self.kind == "rmsprop":
                a = hp["alpha"]
                sq = a * st.get("sq", 0.0) + (1 - a) * g * g
                st["sq"] = sq
                if hp.get("centered"):
                    ga = a * st.get("ga", 0.0) + (1 - a) * g
                    st["ga"] = ga
                    avg = np.sqrt(sq - ga * ga) + hp["eps"]
                else:
                    avg = np.sqrt(sq) + hp["eps"]
                mu = hp.get("momentum", 0.0)
                if mu > 0:
                    buf = mu * st.get("buf", 0.0) + g / avg
                    st["buf"] = buf
                    P[k] = P[k] - lr * buf
                else:
                    P[k] = P[k] - lr * g / avg
            else:
                raise ValueError(self.kind)


# name -> (kind, hp); the trainer-side spelling of each is in the Swift tests.
QUADRATIC_RUNS = [
    ("sgd", "sgd", {"lr": 0.1}),
    ("sgd_wd", "sgd", {"lr": 0.1, "weight_decay": 0.1}),
    ("sgd_momentum_wd", "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05}),
    ("sgd_nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("sgd_velocity", "sgd", {"lr": 0.05, "momentum": 0.9, "velocity": True}),
    ("sgd_velocity_nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "velocity": True, "nesterov": True}),
    ("adam", "adam", {"lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8}),
    ("adam_wd", "adam", {"lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.5}),
    ("adamw", "adamw", {"lr": 0.1, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.5}),
    # β₂ = 0.9 so that v falls below its running maximum within the 20 steps (build_quadratic checks it does)
    ("adam_amsgrad", "adam", {"lr": 0.1, "betas": [0.9, 0.9], "eps": 1e-8, "amsgrad": True}),
    ("adamw_amsgrad", "adamw", {"lr": 0.1, "betas": [0.8, 0.9], "eps": 1e-8, "weight_decay": 0.5, "amsgrad": True}),
    ("adagrad", "adagrad", {"lr": 0.5, "lr_decay": 0.0, "eps": 1e-10}),
    ("adagrad_decay_wd", "adagrad", {"lr": 0.5, "lr_decay": 0.05, "eps": 1e-10, "weight_decay": 0.1}),
    ("adagrad_initial", "adagrad", {"lr": 0.5, "lr_decay": 0.0, "eps": 1e-10, "initial_accumulator_value": 0.5}),
    ("rmsprop", "rmsprop", {"lr": 0.01, "alpha": 0.99, "eps": 1e-8}),
    ("rmsprop_centered_momentum_wd", "rmsprop",
     {"lr": 0.01, "alpha": 0.9, "eps": 1e-8, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
]

QUAD_W0 = np.array([1.0, -2.0, 0.5, 3.0])
QUAD_A = np.array([0.5, 1.0, -1.0, 2.0])
QUAD_C = np.array([1.0, 0.5, 2.0, 0.1])
QUAD_STEPS = 20


def build_quadratic():
    runs = {}
    for name, kind, hp in QUADRATIC_RUNS:
        P = {"w": QUAD_W0.copy()}
        opt = Optim(kind, hp)
        iterates = []
        for _ in range(QUAD_STEPS):
            opt.step(P, {"w": 2.0 * QUAD_C * (P["w"] - QUAD_A)})
            iterates.append([float(v) for v in P["w"]])
        assert np.all(np.isfinite(iterates)), name
        if hp.get("amsgrad"):  # the maximum must matter, or the run would not test it
            st = opt.state["w"]
            assert np.any(st["v_max"] > st["v"] * (1 + 1e-6)), name
        runs[name] = {"kind": kind, "hparams": hp, "iterates": iterates}
    return {"w0": QUAD_W0.tolist(), "a": QUAD_A.tolist(), "c": QUAD_C.tolist(), "steps": QUAD_STEPS,
            "runs": runs}


# ---------------------------------------------------------------------------
# Schedules: lr(t) for t = 0, 1, ..., as torch's schedulers report after t calls of step()
# ---------------------------------------------------------------------------

def sched_step(base, t, step_size, gamma):
    return base * gamma ** (t // step_size)


def sched_multistep(base, T, milestones, gamma):
    out, lr = [], base
    for t in range(T):
        if t in milestones:          # torch: lr *= gamma when last_epoch hits a milestone
            lr *= gamma
        out.append(lr)
    return out


def sched_cyclic(base, t, max_lr, step_size_up):
    total = 2.0 * step_size_up
    ratio = step_size_up / total
    cycle = math.floor(1 + t / total)
    x = 1.0 + t / total - cycle
    scale = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return base + (max_lr - base) * scale


def sched_warm_restarts(base, T, t0, t_mult, eta_min):
    out, t_cur, t_i = [], 0, t0
    for _ in range(T):
        out.append(eta_min + (base - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
        t_cur += 1
        if t_cur >= t_i:
            t_cur -= t_i
            t_i *= t_mult
    return out


def sched_one_cycle(max_lr, t, total, pct, div, final_div):
    initial = max_lr / div
    low = initial / final_div
    phases = [(float(pct * total) - 1, initial, max_lr), (total - 1, max_lr, low)]
    start = 0.0
    for i, (end, a, b) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            p = (t - start) / (end - start)
            return b + (a - b) / 2.0 * (math.cos(math.pi * p) + 1)
        start = end


def sched_cosine(base, t, t_max, eta_min):
    t = min(t, t_max)
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


def warmup(w, main):
    return lambda t: (t + 1) / w * main(0) if t < w else main(t - w)


BASE = 0.1
SCHED_T = 40


def schedule_cases():
    b = BASE
    return [
        ("constant", {}, lambda t: b),
        ("step", {"every": 7, "gamma": 0.5}, lambda t: sched_step(b, t, 7, 0.5)),
        ("multistep", {"milestones": [5, 12, 30], "gamma": 0.1}, None),
        ("exponential", {"gamma": 0.9}, lambda t: b * 0.9 ** t),
        ("exponential_decay", {"rate": 0.05}, lambda t: b * math.exp(-0.05 * t)),
        ("halving", {"every": 10}, lambda t: b * 0.5 ** (t // 10)),
        ("inverse_time", {"rate": 0.2}, lambda t: b / (1 + 0.2 * t)),
        ("inverse_sqrt", {}, lambda t: b / math.sqrt(t + 1)),
        ("polynomial", {"total_iters": 25, "power": 2.0}, lambda t: b * (1 - min(t, 25) / 25) ** 2),
        ("linear", {"total_iters": 30}, lambda t: b * max(0.0, 1 - t / 30)),
        ("cosine", {"t_max": 30, "eta_min": 0.001}, lambda t: sched_cosine(b, t, 30, 0.001)),
        ("cyclic", {"max_lr": 0.5, "step_size_up": 6}, lambda t: sched_cyclic(b, t, 0.5, 6)),
        ("warm_restarts", {"t0": 5, "t_mult": 1, "eta_min": 0.01}, None),
        ("warm_restarts_mult", {"t0": 3, "t_mult": 2, "eta_min": 0.0}, None),
        ("one_cycle", {"total_steps": 40, "pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4},
         lambda t: sched_one_cycle(b, t, 40, 0.3, 25.0, 1e4)),
        ("warmup_cosine", {"warmup": 5, "t_max": 30, "eta_min": 0.0},
         warmup(5, lambda t: sched_cosine(b, t, 30, 0.0))),
        ("warmup_step", {"warmup": 4, "every": 10, "gamma": 0.5}, warmup(4, lambda t: sched_step(b, t, 10, 0.5))),
    ]


def build_schedules():
    out = {}
    for name, params, f in schedule_cases():
        if name == "multistep":
            lrs = sched_multistep(BASE, SCHED_T, params["milestones"], params["gamma"])
        elif name.startswith("warm_restarts"):
            lrs = sched_warm_restarts(BASE, SCHED_T, params["t0"], params["t_mult"], params["eta_min"])
        else:
            lrs = [f(t) for t in range(SCHED_T)]
        assert all(np.isfinite(lrs)) and all(v >= 0 for v in lrs), name
        out[name] = {"params": params, "lr": [float(v) for v in lrs]}
    return {"base_lr": BASE, "schedules": out}


# ---------------------------------------------------------------------------
# The scalar ops schedules are made of, with their VJPs (min/max: the gradient goes to the chosen operand)
# ---------------------------------------------------------------------------

SCALAR_OPS = {
    "cos": (lambda ins, a: np.cos(ins[0]), lambda ins, a, o, g: [-g * np.sin(ins[0])]),
    "sin": (lambda ins, a: np.sin(ins[0]), lambda ins, a, o, g: [g * np.cos(ins[0])]),
    "floor": (lambda ins, a: np.floor(ins[0]), lambda ins, a, o, g: [np.zeros_like(ins[0])]),
    "minimum": (lambda ins, a: np.minimum(ins[0], ins[1]),
                lambda ins, a, o, g: [g * (ins[0] < ins[1]), g * (ins[0] >= ins[1])]),
    "maximum": (lambda ins, a: np.maximum(ins[0], ins[1]),
                lambda ins, a, o, g: [g * (ins[0] > ins[1]), g * (ins[0] <= ins[1])]),
}


def scalar_op_specs(rng):
    R = lambda *s: rng.randn(*s)
    # floor away from the integers, where its derivative (zero) exists
    fl = np.floor(3 * R(4, 5)) + 0.05 + 0.9 * rng.rand(4, 5)
    return [
        ("cos_basic", "cos", {}, [("x", 2.0 * R(4, 5), "f64")]),
        ("sin_basic", "sin", {}, [("x", 2.0 * R(4, 5), "f64")]),
        ("floor_basic", "floor", {}, [("x", fl, "f64")]),
        ("minimum_basic", "minimum", {}, [("a", R(4, 5), "f64"), ("b", R(4, 5), "f64")]),
        ("maximum_basic", "maximum", {}, [("a", R(4, 5), "f64"), ("b", R(4, 5), "f64")]),
    ]


# MLP trajectories (reference.py trains them on its cls and reg models): key -> (kind, hp)
MLP_RUNS = [
    ("sgd_momentum_wd", "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.05}),
    ("sgd_velocity", "sgd", {"lr": 0.05, "momentum": 0.9, "velocity": True}),
    ("sgd_velocity_nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "velocity": True, "nesterov": True}),
    ("adam_wd", "adam", {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1}),
    ("adamw", "adamw", {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1}),
    ("adam_amsgrad", "adam", {"lr": 0.01, "betas": [0.9, 0.9], "eps": 1e-8, "amsgrad": True}),
    ("adagrad", "adagrad", {"lr": 0.05, "lr_decay": 0.01, "eps": 1e-10, "weight_decay": 0.01}),
    ("adagrad_initial", "adagrad", {"lr": 0.05, "lr_decay": 0.0, "eps": 1e-10, "initial_accumulator_value": 0.1}),
    ("rmsprop", "rmsprop", {"lr": 0.001, "alpha": 0.99, "eps": 1e-8}),
    ("rmsprop_centered_momentum", "rmsprop",
     {"lr": 0.001, "alpha": 0.9, "eps": 1e-8, "momentum": 0.5, "centered": True, "weight_decay": 0.01}),
    # schedules in a real run: hp["schedule"] is the lr per step (t = step - 1) from the cases above
    ("sgd_onecycle", "sgd", {"lr": 0.05, "momentum": 0.9, "schedule": "one_cycle_15"}),
    ("adamw_warmup_cosine", "adamw", {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
                                      "schedule": "warmup_cosine_3_10"}),
]


def schedule_lr(name, base, t):
    """The per-step rates of MLP_RUNS' schedules."""
    if name == "one_cycle_15":
        return sched_one_cycle(base, t, 15, 0.3, 25.0, 1e4)
    if name == "warmup_cosine_3_10":
        return warmup(3, lambda s: sched_cosine(base, s, 10, 0.0))(t)
    raise ValueError(name)
