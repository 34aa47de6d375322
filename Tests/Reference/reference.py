#!/usr/bin/env python3
"""Independent NumPy reference for nncc.

Run from the repository root:

    python3 Tests/Reference/reference.py

It rewrites everything under Tests/Fixtures/:

  ops.json                         per-op forward values and vector-Jacobian products
  trajectory/cls_x.npy, cls_y.npy  classification data (float32 (70,20), int64 (70,))
  trajectory/reg_x.npy, reg_y.npy  regression data (float32 (70,6), float32 (70,2))
  trajectory/cls_x.csv, cls_y.csv  the classification data as CSV (no header)
  trajectory/reg_x.csv, reg_y.csv  the regression data as CSV (no header)
  trajectory/cls_init.safetensors  initial weights of model CLS (F32)
  trajectory/reg_init.safetensors  initial weights of model REG (F32)
  trajectory/expected.json         per-step losses and final parameters for four optimizers

Semantics follow PyTorch (nn.Linear, F.cross_entropy, F.mse_loss, torch.optim.SGD,
torch.optim.Adam). All arithmetic is float64. Only numpy is needed. Random numbers come
from numpy.random.RandomState, whose streams are frozen, so the outputs are reproducible
across numpy versions.

Every VJP written here is checked against central finite differences (float64) before
anything is written; the script aborts if any check fails.

The pieces: ref_ops.py (the ops and their VJPs), ref_fd.py (finite differences), ref_files.py (paths, JSON,
safetensors, CSV), ref_op_cases.py (ops.json), ref_mlp.py and ref_catalog.py (trajectory/expected.json), optim.py
(optimizers and schedules, optimizers.json). reference_cnn.py and reference_norm.py import this module as `ref`
for the names below.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optim  # noqa: E402  (optimizers and schedules of issue 3)
from ref_catalog import build_catalog_trajectories  # noqa: E402
from ref_fd import check, numeric_grad  # noqa: E402,F401  (for reference_cnn.py and reference_norm.py)
from ref_files import FIXTURES, ROOT, TRAJ, dump_json, plain_json, read_safetensors, tensor_json  # noqa: E402,F401
from ref_mlp import build_trajectories  # noqa: E402
from ref_op_cases import build_op_cases  # noqa: E402
from ref_ops import OPS, b_cross_entropy, b_linear, f_cross_entropy, f_linear  # noqa: E402,F401


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    ops = build_op_cases()
    traj = build_trajectories()
    traj.update(build_catalog_trajectories())
    dump_json(os.path.join(FIXTURES, "ops.json"), ops)
    dump_json(os.path.join(TRAJ, "expected.json"), traj)
    with open(os.path.join(FIXTURES, "optimizers.json"), "w") as f:
        json.dump({"quadratic": optim.build_quadratic(), **optim.build_schedules()}, f, indent=1)
        f.write("\n")
    print("wrote", os.path.relpath(FIXTURES, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
