"""Anchor: PyTorch eager training of the benchmark MLP on Fashion-MNIST, CPU, Adam.

Same workload as nncc's trainer: Linear/ReLU layers, softmax cross-entropy, Adam, shuffled every epoch,
the partial last batch trained. Prints one JSON line per epoch, {"epoch", "seconds", "loss", "test_acc"},
where seconds is training only (batch indexing included, test evaluation excluded)."""
import json
import time

import numpy as np
import torch
from torch import nn

from fmnist_data import arguments, batches, load

ap = arguments("PyTorch eager anchor")
ap.add_argument("--threads", type=int, default=2)
args = ap.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in load(args.data))
dims = [int(d) for d in args.dims.split(",")]
layers = []
for i in range(len(dims) - 1):
    layers.append(nn.Linear(dims[i], dims[i + 1]))
    if i + 2 < len(dims):
        layers.append(nn.ReLU())
model = nn.Sequential(*layers)
optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
criterion = nn.CrossEntropyLoss()
rng = np.random.default_rng(args.seed)

for epoch in range(1, args.epochs + 1):
    plan = [torch.from_numpy(b) for b in batches(len(x_train), args.batch, rng)]
    start = time.perf_counter()
    for idx in plan:
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x_train[idx]), y_train[idx])
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(json.dumps({"epoch": epoch, "seconds": seconds, "loss": loss.item(), "test_acc": acc}), flush=True)
