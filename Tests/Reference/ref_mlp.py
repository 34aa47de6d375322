"""Part 2: the MLP trajectories of trajectory/expected.json (models CLS and REG, their data, four optimizers and
the schedules of optim.py)."""

import os

import numpy as np

import optim
from ref_fd import check, numeric_grad
from ref_files import TRAJ, plain_json, read_safetensors, write_csv, write_safetensors
from ref_ops import OPS, b_cross_entropy, b_linear, b_mse, f_cross_entropy, f_linear, f_mse


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


def describe(model):
    parts = []
    for l in model.layers:
        parts.append(f"linear({l[1]},{l[2]})" if isinstance(l, tuple) else l)
    return {"layers": parts, "loss": model.loss + "(mean)"}
