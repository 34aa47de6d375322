#!/usr/bin/env python3
"""Data-parallel scaling over MPI: 2 ranks on one core each against 1 process on one core (docs/distributed.md).

For each model (the Fashion-MNIST MLP and CNN) it builds the plain trainer and the `--mpi` one, then runs rounds
of interleaved runs in the same minutes, since the machine is shared and drifts by tens of percent:
  A  TRAINER train --threads 1, pinned to CPU 0 (taskset)
  B  mpirun -np 2 --bind-to core TRAINER_MPI train --threads 1    (overlapped buckets, the default)
  C  the same with NNRT_DIST_OVERLAP=0                             (blocking allreduce after backward)
all at the same global batch and number of steps on Debian's Fashion-MNIST. It reports the training seconds (the
JSONL epoch line's "seconds": the steps alone, not the load or the test evaluation), the process's CPU seconds
(user + system of the whole run, from getrusage; MPI ranks spin while they wait, so B and C burn CPU in the
allreduce), and the scaling efficiency T_A / (2 · T_B) per round, with the median over rounds. Numbers are noisy:
read the spread. Not a test.

usage: python3 bench/mpi_scaling.py [--nncc .build/debug/nncc] [--rounds 3] [--steps-mlp 200] [--steps-cnn 30]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def run(cmd, env=None):
    """(seconds of training from the JSONL, wall seconds, CPU seconds of the process tree)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def train_seconds(log):
    with open(log) as f:
        lines = [json.loads(l) for l in f if '"train_loss"' in l]
    return sum(l["seconds"] for l in lines), lines[-1]["train_loss"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nncc", default=os.path.join(REPO, ".build/debug/nncc"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps-mlp", type=int, default=200)
    ap.add_argument("--steps-cnn", type=int, default=30)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nncc-mpi-bench-")
    root = ["--allow-run-as-root"] if os.getuid() == 0 else []
    print(f"load average before: {os.getloadavg()}")
    for model, steps in (("fashion_mnist_mlp", a.steps_mlp), ("fashion_mnist_cnn", a.steps_cnn)):
        src = os.path.join(REPO, "examples", model + ".swiftnn")
        plain, mpi = os.path.join(work, model), os.path.join(work, model + "-mpi")
        subprocess.run([a.nncc, "compile", src, "-o", plain], check=True)
        subprocess.run([a.nncc, "compile", src, "--mpi", "-o", mpi], check=True)
        common = ["train", "--data", DATA, "--batch", str(a.batch), "--steps", str(steps), "--threads", "1", "--quiet"]
        variants = {
            "A 1 process": (lambda log: ["taskset", "-c", "0", plain] + common + ["--log", log], None),
            "B 2 ranks, overlap": (lambda log: ["mpirun", "-np", "2", "--bind-to", "core"] + root + [mpi] + common + ["--log", log], None),
            "C 2 ranks, blocking": (lambda log: ["mpirun", "-np", "2", "--bind-to", "core"] + root + [mpi] + common + ["--log", log],
                                    {"NNRT_DIST_OVERLAP": "0"}),
        }
        results = {k: [] for k in variants}
        for r in range(a.rounds):
            for name, (cmd, env) in variants.items():
                log = os.path.join(work, f"{model}-{r}-{name[0]}.jsonl")
                wall, cpu = run(cmd(log), env)
                secs, loss = train_seconds(log)
                results[name].append((secs, wall, cpu, loss))
        print(f"\n{model}: global batch {a.batch}, {steps} steps, {a.rounds} interleaved rounds (per round: train s / wall s / CPU s)")
        base = results["A 1 process"]
        for name, rows in results.items():
            per = "  ".join(f"{s:.2f}/{w:.2f}/{c:.2f}" for s, w, c, _ in rows)
            eff = [b[0] / (2 * s) for b, (s, _, _, _) in zip(base, rows)]
            med = statistics.median(s for s, _, _, _ in rows)
            extra = "" if name.startswith("A") else f"  efficiency T_A/(2·T) per round {', '.join(f'{e:.2f}' for e in eff)}, median {statistics.median(eff):.2f}"
            print(f"  {name:<22} median train {med:.2f} s ({1000 * med / steps:.2f} ms/step)  [{per}]  last loss {rows[-1][3]:.4f}{extra}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
