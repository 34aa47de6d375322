#!/usr/bin/env python3
"""A cost model of data-parallel training over a network (docs/distributed.md): ring allreduce of the gradients,
projected to 8-64 nodes, for the Fashion-MNIST MLP and CNN.

The gradient bytes come from the compiled layout (PARAMS_NUMEL of `nncc compile --emit c`, float32). A ring
allreduce of S bytes over P nodes sends 2(P-1)/P·S bytes per node in 2(P-1) messages, so it takes
    T_comm = 2(P-1)/P · S / BW + 2(P-1) · alpha
(bandwidth BW, per-message latency alpha). A step of global batch B on P nodes computes B/P samples per node:
    T_step = T1 / P + T_comm                      (no overlap)
    T_step = T1 / P + max(0, T_comm - h · T1 / P)  (overlap: h is the fraction of the step that still computes once
                                                    most gradient bytes are ready: ~0 for the MLP, whose largest
                                                    gradient, 0.weight, is backward's last kernel; ~0.5 for the CNN,
                                                    whose Linear 7.weight is ready before the conv and pooling
                                                    backward, 0.6 of the step in docs/performance.md's profile)
where T1 is the measured step time of one node at batch B. Efficiency = (T1 / P) / T_step. Strong scaling keeps
B fixed (the global batch of a recipe); weak scaling keeps B/P fixed (T1 of the per-node batch, unchanged).

usage: python3 bench/mpi_costmodel.py [--nncc .build/debug/nncc] [--gbps 25] [--alpha-us 10]
                                      [--t1-mlp-ms 1.3] [--t1-cnn-ms 16] [--hide-mlp 0] [--hide-cnn 0.5] [--batch 128]
"""
import argparse
import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def params_bytes(nncc, model):
    c = subprocess.run([nncc, "compile", os.path.join(REPO, "examples", model + ".swiftnn"), "--emit", "c"],
                       check=True, capture_output=True, text=True).stdout
    return 4 * int(re.search(r"PARAMS_NUMEL = (\d+)", c).group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nncc", default=os.path.join(REPO, ".build/debug/nncc"))
    ap.add_argument("--gbps", type=float, default=25.0, help="link bandwidth, Gb/s")
    ap.add_argument("--alpha-us", type=float, default=10.0, help="per-message latency, µs (TCP; ~2 with RDMA)")
    ap.add_argument("--t1-mlp-ms", type=float, default=1.3, help="one node's step at --batch, ms")
    ap.add_argument("--t1-cnn-ms", type=float, default=16.0)
    ap.add_argument("--hide-mlp", type=float, default=0.0, help="fraction of the step after most gradient bytes are ready")
    ap.add_argument("--hide-cnn", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=128)
    a = ap.parse_args()
    bw, alpha = a.gbps * 1e9 / 8, a.alpha_us * 1e-6
    for model, t1, h in (("fashion_mnist_mlp", a.t1_mlp_ms * 1e-3, a.hide_mlp), ("fashion_mnist_cnn", a.t1_cnn_ms * 1e-3, a.hide_cnn)):
        s = params_bytes(a.nncc, model)
        print(f"\n{model}: {s} gradient bytes, T1 = {t1 * 1e3:.2f} ms per step of {a.batch} on one node, "
              f"{a.gbps:g} Gb/s, alpha {a.alpha_us:g} µs, overlap h = {h:g}")
        print("| P | allreduce ms | strong: compute ms | efficiency (no overlap / overlap) | weak: efficiency (no overlap / overlap) |")
        print("|---|---|---|---|---|")
        for p in (2, 8, 16, 32, 64):
            comm = 2 * (p - 1) / p * s / bw + 2 * (p - 1) * alpha
            c = t1 / p
            strong = (c / (c + comm), c / (c + max(0.0, comm - h * c)))
            weak = (t1 / (t1 + comm), t1 / (t1 + max(0.0, comm - h * t1)))
            print(f"| {p} | {comm * 1e3:.3f} | {c * 1e3:.3f} | {strong[0]:.2f} / {strong[1]:.2f} | {weak[0]:.2f} / {weak[1]:.2f} |")


if __name__ == "__main__":
    main()
