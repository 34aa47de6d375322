"""Part 1: the per-op cases of ops.json, each op's forward and VJP checked by finite differences."""

import numpy as np

import optim
from ref_fd import check, numeric_grad
from ref_files import plain_json, tensor_json
from ref_ops import OPS


def away_from_zero(rng, shape, margin=0.05):
    x = rng.randn(*shape)
    small = np.abs(x) < margin
    x[small] = np.sign(x[small] + 1e-300) * margin + x[small]
    return x


def positive(rng, shape, lo=0.3, hi=3.0):
    return rng.uniform(lo, hi, size=shape)


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
