"""Part 3: issue 3's activations, losses and penalties in training (the CATALOG trajectories)."""

import os

import numpy as np

from ref_fd import check, numeric_grad
from ref_files import TRAJ, plain_json, read_safetensors, write_safetensors
from ref_mlp import BATCH, EPOCHS, OPTIMIZERS, make_data, to_f64, train
from ref_ops import OPS, b_linear, b_penalty, f_linear, f_penalty


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
