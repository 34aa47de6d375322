#!/usr/bin/env python3
"""nncc's CNN benchmark: examples/fashion_mnist_cnn.swiftnn's trainer beside PyTorch eager and JAX jit.

The workload is BENCHMARKS.md's CNN (two 3×3 convolutions with ReLU and 2×2 max pooling, Linear 3136→128→10,
Adam, batch 128). One invocation measures, in --rounds rounds so that every ratio compares runs of the same
minutes (the machine is shared and drifts):
  nncc (E epochs) → PyTorch eager, 2 threads, NCHW → PyTorch eager, 2 threads, channels_last → JAX jit → nncc …
Each figure is a median of seconds per epoch (training only; the first epoch of a run is warm-up when there are
three or more). The ratio of a round divides nncc's median over the two runs around it by the anchor's median
in that round; the table shows the median over rounds, and the fastest PyTorch configuration is the one the
target (≤ 0.5×) is measured against. Then: GFLOP/s of the epoch as dense-equivalent work (1.5 TFLOP per epoch if
every convolution were a dense GEMM; nncc skips the zeros of the backward's dy) against the machine's 2-thread
sgemm peak (bench/sgemm_peak.c through OpenBLAS), and the trainer's --profile split (conv forward, conv
backward, pooling, the rest). Nothing here is used by the tests.

usage: python3 bench/cnn.py --anchors /tmp/anchors/bin/python [--epochs 3] [--rounds 2] [--json out.json]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
ANCHORS = os.path.join(BENCH, "anchors")
EXAMPLE = os.path.join(REPO, "examples", "fashion_mnist_cnn.swiftnn")
DENSE_TFLOP_PER_EPOCH = 1.5   # BENCHMARKS.md: every convolution as a dense GEMM, forward and backward
TARGET_VS_TORCH, TARGET_VS_JAX = 0.5, 0.5


def log(msg):
    print(f"[cnn-bench] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"cnn-bench: error: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return p.stdout


def steady(xs):
    return xs[1:] if len(xs) >= 3 else xs


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def nncc_epochs(trainer, data, epochs, work):
    log_path = os.path.join(work, "cnn.jsonl")
    if os.path.exists(log_path):
        os.remove(log_path)
    run([trainer, "train", "--data", data, "--epochs", str(epochs), "--val-split", "0", "--report-test", "--quiet", "--log", log_path, "--log-every", "1000000"])
    rows = [json.loads(l) for l in open(log_path) if '"train_loss"' in l]
    secs = [r["seconds"] for r in rows]
    log(f"nncc: {', '.join(f'{s:.2f}' for s in secs)} s/epoch (load {loadavg()}), test_acc {rows[-1].get('test_acc')}")
    return secs, rows[-1].get("test_acc")


def anchor(python, script, epochs, extra=()):
    out = run([python, os.path.join(ANCHORS, script), "--epochs", str(epochs), *extra], cwd=ANCHORS)
    rows = [re.match(r"epoch (\d+) seconds ([\d.]+) loss ([\d.naif]+) test_acc ([\d.]+)", l) for l in out.splitlines()]
    secs = [float(m.group(2)) for m in rows if m]
    acc = [float(m.group(4)) for m in rows if m]
    log(f"{script} {' '.join(extra)}: {', '.join(f'{s:.2f}' for s in secs)} s/epoch (load {loadavg()})")
    return secs, acc[-1] if acc else None


def sgemm_peak(work):
    exe = os.path.join(work, "sgemm_peak")
    run(["cc", "-O2", os.path.join(BENCH, "sgemm_peak.c"), "-o", exe, "-lopenblas"])
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    if not env.get("OPENBLAS_CORETYPE"):
        env["OPENBLAS_CORETYPE"] = "SkylakeX" if "avx512f" in open("/proc/cpuinfo").read() else "Haswell"
    outs = [run([exe], env=env) for _ in range(3)]
    return max(float(re.search(r"([\d.]+) GFLOP/s", o).group(1)) for o in outs)


def profile(trainer, data, work):
    path = os.path.join(work, "profile.jsonl")
    run([trainer, "train", "--data", data, "--epochs", "1", "--val-split", "0", "--quiet", "--profile", "--log", path, "--log-every", "1000000"])
    p = [json.loads(l)["profile"] for l in open(path) if '"profile"' in l][-1]
    step = p["step_s"] / p["steps"] * 1e3
    parts = {k: p.get(f"{k}_s", 0) / p["steps"] * 1e3 for k in ("conv", "conv_backward", "pool", "gemm", "elementwise", "rowwise", "optimizer")}
    return step, parts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--anchors", help="a Python with torch and jax (e.g. /tmp/anchors/bin/python)")
    ap.add_argument("--nncc", default=os.path.join(REPO, ".build", "release", "nncc"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=3, help="nncc epochs per run")
    ap.add_argument("--anchor-epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="nncc-cnn-bench-")
    trainer = os.path.join(work, "cnn")
    run([a.nncc, "compile", EXAMPLE, "-o", trainer])
    res = {"load_before": loadavg(), "rounds": []}
    before, acc = nncc_epochs(trainer, a.data, a.epochs, work)
    res["nncc_first_run"] = before
    for i in range(a.rounds if a.anchors else 0):
        rnd = {}
        for name, script, extra in [("torch_nchw", "torch_cnn.py", ("--threads", "2")),
                                    ("torch_channels_last", "torch_cnn.py", ("--threads", "2", "--channels-last")),
                                    ("jax", "jax_cnn.py", ())]:
            secs, aacc = anchor(a.anchors, script, a.anchor_epochs, extra)
            rnd[name] = {"per_epoch": secs, "median_s": statistics.median(steady(secs)), "test_acc": aacc}
        after, acc = nncc_epochs(trainer, a.data, a.epochs, work)
        nncc_s = statistics.median(steady(before) + steady(after))
        torch_best = min(rnd["torch_nchw"]["median_s"], rnd["torch_channels_last"]["median_s"])
        rnd.update(nncc_s=nncc_s, nncc_after=after, vs_torch=nncc_s / torch_best, vs_jax=nncc_s / rnd["jax"]["median_s"])
        res["rounds"].append(rnd)
        before = after
    res["nncc_s"] = statistics.median(steady(res["nncc_first_run"]) + [s for r in res["rounds"] for s in steady(r["nncc_after"])])
    res["nncc_test_acc"] = acc
    res["sgemm_peak_2t"] = sgemm_peak(work)
    res["profile_step_ms"], res["profile_ms"] = profile(trainer, a.data, work)
    res["load_after"] = loadavg()
    gflops = DENSE_TFLOP_PER_EPOCH * 1e3 / res["nncc_s"]
    print(f"\nCNN benchmark (batch 128; load {res['load_before']} before, {res['load_after']} after)")
    print(f"| | s/epoch | ratio nncc/it | target |\n|---|---|---|---|")
    print(f"| nncc | {res['nncc_s']:.2f} (test acc {acc}) | | |")
    for name in ("torch_nchw", "torch_channels_last", "jax"):
        if not res["rounds"]:
            break
        s = statistics.median(r[name]["median_s"] for r in res["rounds"])
        ratio = statistics.median(res["nncc_s"] / r[name]["median_s"] for r in res["rounds"])
        print(f"| {name} | {s:.2f} | {ratio:.3f} | |")
    if res["rounds"]:
        vt = statistics.median(r["vs_torch"] for r in res["rounds"])
        vj = statistics.median(r["vs_jax"] for r in res["rounds"])
        print(f"| vs fastest PyTorch | | {vt:.3f} | ≤ {TARGET_VS_TORCH} {'met' if vt <= TARGET_VS_TORCH else 'NOT met'} |")
        print(f"| vs JAX jit | | {vj:.3f} | ≤ {TARGET_VS_JAX} {'met' if vj <= TARGET_VS_JAX else 'NOT met'} |")
    print(f"\ndense-equivalent {gflops:.0f} GFLOP/s = {gflops / res['sgemm_peak_2t']:.2f} of the 2-thread sgemm peak "
          f"({res['sgemm_peak_2t']:.0f} GFLOP/s); the dense floor is {DENSE_TFLOP_PER_EPOCH * 1e3 / res['sgemm_peak_2t']:.1f} s/epoch")
    p = res["profile_ms"]
    rest = res["profile_step_ms"] - p["conv"] - p["conv_backward"] - p["pool"]
    print(f"profile (ms/step): step {res['profile_step_ms']:.2f} = conv forward {p['conv']:.2f} + conv backward "
          f"{p['conv_backward']:.2f} + pooling {p['pool']:.2f} + the rest {rest:.2f} (gemm {p['gemm']:.2f}, "
          f"elementwise {p['elementwise']:.2f}, optimizer {p['optimizer']:.2f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
