"""Anchor: JAX jit (XLA CPU) training of the benchmark MLP on Fashion-MNIST, Adam.

Same workload as nncc's trainer: PyTorch's default init (U(±1/√fan_in) for weights and biases), ReLU,
softmax cross-entropy, Adam with PyTorch's update rule, shuffled every epoch, the partial last batch
trained (XLA compiles that shape once, in the first epoch). The whole step (forward, backward, update) is
one jitted function. Prints one JSON line per epoch, {"epoch", "seconds", "loss", "test_acc"}, where
seconds is training only (batch indexing included, test evaluation excluded)."""
import json
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from fmnist_data import arguments, batches, load

args = arguments("JAX jit anchor").parse_args()

x_train, y_train, x_test, y_test = load(args.data)
y_train, y_test = y_train.astype(np.int32), y_test.astype(np.int32)
dims = [int(d) for d in args.dims.split(",")]
key = jax.random.PRNGKey(args.seed)
params = []
for fan_in, fan_out in zip(dims[:-1], dims[1:]):
    key, kw, kb = jax.random.split(key, 3)
    bound = 1.0 / np.sqrt(fan_in)
    params.append({"w": jax.random.uniform(kw, (fan_out, fan_in), minval=-bound, maxval=bound),
                   "b": jax.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)})


def logits(params, x):
    for i, layer in enumerate(params):
        x = x @ layer["w"].T + layer["b"]
        if i + 1 < len(params):
            x = jax.nn.relu(x)
    return x


def loss_fn(params, x, y):
    logp = jax.nn.log_softmax(logits(params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


@partial(jax.jit, donate_argnums=(0, 1, 2))
def train_step(params, m, v, t, x, y, lr=args.lr, b1=0.9, b2=0.999, eps=1e-8):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    step = lr / (1 - b1 ** t)
    corr = 1 / jnp.sqrt(1 - b2 ** t)
    params = jax.tree_util.tree_map(lambda p, m, v: p - step * m / (jnp.sqrt(v) * corr + eps), params, m, v)
    return params, m, v, loss


predict = jax.jit(lambda params, x: jnp.argmax(logits(params, x), axis=1))
m = jax.tree_util.tree_map(jnp.zeros_like, params)
v = jax.tree_util.tree_map(jnp.zeros_like, params)
rng = np.random.default_rng(args.seed)
t = 0
for epoch in range(1, args.epochs + 1):
    plan = batches(len(x_train), args.batch, rng)
    start = time.perf_counter()
    for idx in plan:
        t += 1
        params, m, v, loss = train_step(params, m, v, jnp.float32(t), x_train[idx], y_train[idx])
    loss.block_until_ready()
    seconds = time.perf_counter() - start
    acc = float(jnp.mean(predict(params, x_test) == y_test))
    print(json.dumps({"epoch": epoch, "seconds": seconds, "loss": float(loss), "test_acc": acc}), flush=True)
