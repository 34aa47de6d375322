#!/usr/bin/env python3
"""nncc's benchmark: the generated Fashion-MNIST trainer side by side with PyTorch eager and JAX jit.

One invocation measures, in this order:
  1. `nncc compile` of the example: cold (an empty NNCC_CACHE_DIR: swiftc, the runtime and clang all run), cold
     with the runtime already built (a cache holding only the runtime's objects, as after scripts/setup.sh) and
     warm (the same file again, everything cached); medians of a few runs each;
  2. the trainer's seconds per epoch (training only, the JSONL "seconds"); median of epochs 2..E (the first
     epoch is reported apart, as warm-up), plus the test accuracy reached and when;
  3. whole 1-epoch trainer processes (start, BLAS re-exec, load, train, evaluate, exit): wall time and max RSS
     of each child (os.wait4), medians;
  4. the GEMM floor: bench/gemm_floor.c, the sgemm calls of one epoch alone on one thread, through OpenBLAS
     (with the core the trainer reports, --verbose) and through nncc's own kernels (runtime/gemm*.c);
  5. when --anchors names a Python with torch and jax: bench/anchors/torch_mlp.py and jax_mlp.py on the same
     workload (epochs and whole 1-epoch processes, measured the same way), in --rounds rounds, each followed by
     another nncc run, so that every ratio compares runs of the same minutes (the machine drifts by tens of
     percent between minutes); the ratios are medians over rounds;
  6. the trainer's --profile breakdown (a separate run: timing every kernel is not free).
Before 1, after each round of 5 and at the end, bench/pingpong.c times a cache line's round trip between the
two CPUs: the host moves this guest's vCPUs, and whether they share an L3 (tens of ns) or not (hundreds)
changes how fast the two threads' kernels hand data to each other. The table lists each round's ratios under
where the vCPUs were before and after it (one L3, two, or moved in between).
Then one table with the targets of issue #4. The machine is shared: every number is a median, and the load
average before and after is printed so a noisy run can be recognised. Nothing here is used by the tests.

usage: python3 bench/run.py [--anchors /tmp/anchors/bin/python] [--epochs 20] [--json out.json] ...
       (python3 bench/run.py --help lists everything)
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
EXAMPLE = os.path.join(REPO, "examples", "fashion_mnist_mlp.swiftnn")

# Issue #4's targets.
TARGET_VS_JAX = 0.45
TARGET_VS_TORCH = 0.32
TARGET_WALL_S = 1.5
TARGET_RSS_MB = 100
TARGET_COLD_S = 3.0
TARGET_WARM_S = 0.3
TARGET_ACC, TARGET_ACC_WITHIN_S = 0.89, 10.0


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


def run_child(cmd, env=None, cwd=None, check=True):
    """Runs cmd; returns (wall seconds, max RSS in MB of that child, stdout, stderr)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if check and p.returncode != 0:
        die(f"{' '.join(cmd)} exited {p.returncode}:\n{stdout[-2000:]}{stderr[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, stdout, stderr  # ru_maxrss is in KiB on Linux


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def spread(xs, digits=3):
    return f"{min(xs):.{digits}f}-{max(xs):.{digits}f}" if xs else "-"


# ----------------------------------------------------------------------------
# the machine

def machine():
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cores": os.cpu_count(), "kernel": platform.release()}
    cpu = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                cpu.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    flags = cpu.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    info["cpu"] = f"{cpu.get('model name', platform.processor() or '?')} (family {cpu.get('cpu family', '?')} " \
                  f"model {cpu.get('model', '?')}, {isa}{', KVM guest' if 'hypervisor' in flags else ''})"
    try:
        with open("/proc/meminfo") as f:
            info["mem_gib"] = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        info["mem_gib"] = None
    return info


def loadavg():
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


# ----------------------------------------------------------------------------
# nncc: build, compile times, the trainer

def build_nncc(args):
    if args.nncc:
        if not os.access(args.nncc, os.X_OK):
            die(f"--nncc {args.nncc}: not an executable")
        return os.path.abspath(args.nncc)
    swift = shutil.which("swift") or "/opt/swift/usr/bin/swift"
    scratch = os.path.abspath(args.scratch_path)
    for product in ("nncc", "NNDSL"):
        log(f"swift build -c release --product {product} --scratch-path {scratch}")
        for attempt in range(3):  # others may be editing Sources/ right now: swift build then refuses, retry
            r = subprocess.run([swift, "build", "-c", "release", "--product", product, "--scratch-path", scratch],
                               cwd=REPO, capture_output=True, text=True)
            if r.returncode == 0:
                break
            if "modified during the build" not in r.stderr + r.stdout or attempt == 2:
                die(f"swift build failed:\n{(r.stdout + r.stderr)[-3000:]}")
            time.sleep(5)
    return os.path.join(scratch, "release", "nncc")


def compile_times(nncc, work, runs_cold, runs_warm):
    """Medians of cold compiles (each into a fresh, empty cache) and warm ones (the last cache, unchanged file)."""
    cold, warm = [], []
    trainer = os.path.join(work, "fmnist")
    for i in range(runs_cold):
        cache = os.path.join(work, f"cache-cold-{i}")
        env = dict(os.environ, NNCC_CACHE_DIR=cache)
        wall, _, _, _ = run_child([nncc, "compile", EXAMPLE, "-o", trainer], env=env)
        cold.append(wall)
        log(f"compile cold #{i + 1}: {wall:.2f} s")
    # A model's cold compile once the runtime is built (as after scripts/setup.sh, which compiles the example): a
    # fresh cache holding only the runtime's objects, copied from the first cold cache. The runtime is built once
    # per machine and runtime version; this is what every new model file costs.
    model_cold = []
    for i in range(runs_cold):
        cache = os.path.join(work, f"cache-model-{i}")
        shutil.copytree(os.path.join(work, "cache-cold-0", "runtime"), os.path.join(cache, "runtime"), symlinks=True)
        wall, _, _, _ = run_child([nncc, "compile", EXAMPLE, "-o", trainer], env=dict(os.environ, NNCC_CACHE_DIR=cache))
        model_cold.append(wall)
        log(f"compile cold, runtime already built #{i + 1}: {wall:.2f} s")
    env = dict(os.environ, NNCC_CACHE_DIR=os.path.join(work, f"cache-cold-{runs_cold - 1}"))
    for i in range(runs_warm):
        wall, _, _, _ = run_child([nncc, "compile", EXAMPLE, "-o", trainer], env=env)
        warm.append(wall)
    log(f"compile warm: median {median(warm):.3f} s of {runs_warm}")
    return {"cold_s": median(cold), "cold_runs": cold, "model_cold_s": median(model_cold), "model_cold_runs": model_cold,
            "warm_s": median(warm), "warm_runs": warm}, trainer


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def steady(per_epoch):
    """Epochs after the first when there are at least 3 (the first carries warm-up: page faults, JIT)."""
    return per_epoch[1:] if len(per_epoch) >= 3 else per_epoch


def trainer_epochs(trainer, data, epochs, work):
    jsonl = os.path.join(work, "epochs.jsonl")
    _, _, out, _ = run_child([trainer, "train", "--data", data, "--epochs", str(epochs), "--val-split", "0", "--report-test", "--quiet", "--verbose",
                              "--log", jsonl, "--log-every", "1000000"])
    rows = [r for r in read_jsonl(jsonl) if "train_loss" in r]
    secs = [r["seconds"] for r in rows]
    blas = next((l[len("blas: "):] for l in out.splitlines() if l.startswith("blas: ")), "?")
    # The best test accuracy of an epoch that ended within the time budget ("reaches ≥ 0.89 within 10 s").
    acc_in_time, total = None, 0.0
    for r in rows:
        total += r["seconds"]
        if total <= TARGET_ACC_WITHIN_S and r.get("test_acc") is not None:
            if acc_in_time is None or r["test_acc"] > acc_in_time[0]:
                acc_in_time = (r["test_acc"], r["epoch"], total)
    m = re.search(r"core (\w+)", blas)
    threads = re.search(r"(\d+) threads?", blas)
    log(f"nncc epochs: {', '.join(f'{s:.3f}' for s in secs)}")
    return {"per_epoch": secs, "median_s": median(steady(secs)), "first_s": secs[0] if secs else None,
            "final_acc": rows[-1].get("test_acc") if rows else None, "acc_within_10s": acc_in_time, "blas": blas,
            "core": m.group(1) if m else None, "threads": int(threads.group(1)) if threads else 1}


def whole_process(cmd, runs, env=None, cwd=None):
    walls, rss = [], []
    for _ in range(runs):
        wall, mb, _, _ = run_child(cmd, env=env, cwd=cwd)
        walls.append(wall)
        rss.append(mb)
    return {"wall_s": median(walls), "wall_runs": walls, "rss_mb": median(rss), "rss_runs": rss}


def gemm_floor(work, core, threads, epochs, batch):
    """The epoch's sgemm calls alone, one thread: OpenBLAS (with the trainer's core) and nncc's own kernels
    (runtime/gemm*.c, which the trainer uses). Returns {"blas": {...}, "nnrt": {...}}."""
    cc = shutil.which("clang") or shutil.which("cc") or "/opt/swift/usr/bin/clang"
    exe = os.path.join(work, "gemm_floor")
    runtime = os.path.join(REPO, "runtime")
    sources = [os.path.join(BENCH, "gemm_floor.c"), os.path.join(BENCH, "gemm_stub.c"),
               *sorted(glob.glob(os.path.join(runtime, "gemm*.c")))]
    r = subprocess.run([cc, "-O3", "-march=native", "-std=c11", "-I" + runtime, *sources, "-o", exe, "-lopenblas"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"cannot build gemm_floor.c:\n{r.stderr}")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    if core:
        env["OPENBLAS_CORETYPE"] = core
    res = {}
    for kernel in ("blas", "nnrt"):
        _, _, out, _ = run_child([exe, "--epochs", str(epochs), "--batch", str(batch), "--kernel", kernel], env=env)
        res[kernel] = json.loads(out.strip().splitlines()[-1])
        log(f"gemm floor ({kernel}): {res[kernel]['median_s']:.3f} s/epoch, {res[kernel]['gflops']:.0f} GFLOP/s, 1 thread")
    return res


def pingpong(work):
    """The median CPU 0 -> CPU 1 -> CPU 0 round trip of a cache line in ns (bench/pingpong.c), or None on a
    machine with one CPU."""
    exe = os.path.join(work, "pingpong")
    if not os.path.exists(exe):
        cc = shutil.which("clang") or shutil.which("cc") or "/opt/swift/usr/bin/clang"
        r = subprocess.run([cc, "-O2", os.path.join(BENCH, "pingpong.c"), "-o", exe, "-lpthread"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"cannot build pingpong.c:\n{r.stderr}")
    r = subprocess.run([exe], capture_output=True, text=True)
    m = re.search(r"median (\d+) ns", r.stdout)
    return int(m.group(1)) if r.returncode == 0 and m else None


def profile_run(trainer, data, epochs, work):
    jsonl = os.path.join(work, "profile.jsonl")
    _, _, out, _ = run_child([trainer, "train", "--data", data, "--epochs", str(epochs), "--val-split", "0", "--report-test", "--quiet", "--profile",
                              "--log", jsonl, "--log-every", "1000000"])
    lines = out.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("profile: ")), len(lines))
    prof = next((r["profile"] for r in read_jsonl(jsonl) if "profile" in r), None)
    return {"text": "\n".join(lines[start:]), "epoch_lines": [l for l in lines if l.startswith("  profile: ")],
            "json": prof}


# ----------------------------------------------------------------------------
# anchors

def anchor(python, script, data, epochs, runs_process, extra=()):
    path = os.path.join(BENCH, "anchors", script)
    cwd = os.path.join(BENCH, "anchors")
    _, _, out, _ = run_child([python, path, "--data", data, "--epochs", str(epochs), *extra], cwd=cwd)
    rows = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    secs = [r["seconds"] for r in rows]
    log(f"{script} {' '.join(extra)}: epochs {', '.join(f'{s:.3f}' for s in secs)}")
    res = {"per_epoch": secs, "median_s": median(steady(secs)), "first_s": secs[0] if secs else None,
           "final_acc": rows[-1]["test_acc"] if rows else None}
    if runs_process:
        res.update(whole_process([python, path, "--data", data, "--epochs", "1", *extra], runs_process, cwd=cwd))
    return res


def torch_anchors(args):
    """PyTorch eager at each --torch-threads count. On a loaded 2-core machine, 2 OpenMP threads can collapse
    (a descheduled thread stalls every parallel region), so both counts run and the faster one is the anchor."""
    runs = {}
    for n in [int(x) for x in args.torch_threads.split(",") if x]:
        runs[n] = anchor(args.anchors, "torch_mlp.py", args.data, args.anchor_epochs, 0, ("--threads", str(n)))
    best = min(runs, key=lambda n: runs[n]["median_s"])
    if args.anchor_process_runs:
        path = os.path.join(BENCH, "anchors", "torch_mlp.py")
        runs[best].update(whole_process([args.anchors, path, "--data", args.data, "--epochs", "1", "--threads", str(best)],
                                        args.anchor_process_runs, cwd=os.path.join(BENCH, "anchors")))
    return runs, best


def anchor_rounds(args, trainer, work, first):
    """--rounds rounds of: the anchors (JAX, then PyTorch at each thread count), then nncc again. The machine's
    speed drifts by tens of percent from one minute to the next, so a ratio of figures taken minutes apart says
    more about the minute than about the code. Each round's ratio divides nncc's median over the two nncc runs
    that bracket that round's anchors by the anchor's median in that round; the table reports the median ratio
    over rounds and their range. Round 1 also measures the anchors' whole 1-epoch processes."""
    rounds, before = [], first["per_epoch"]
    for i in range(args.rounds):
        log(f"round {i + 1} of {args.rounds}")
        rnd = {"jax": anchor(args.anchors, "jax_mlp.py", args.data, args.anchor_epochs,
                             args.anchor_process_runs if i == 0 else 0)}
        sub = argparse.Namespace(**dict(vars(args), anchor_process_runs=args.anchor_process_runs if i == 0 else 0))
        rnd["torch_by_threads"], rnd["torch_best"] = torch_anchors(sub)
        rnd["nncc_after"] = trainer_epochs(trainer, args.data, args.round_epochs, work)["per_epoch"]
        rnd["pingpong_ns"] = pingpong(work)
        nncc_s = median(steady(before) + steady(rnd["nncc_after"]))
        rnd["nncc_s"] = nncc_s
        rnd["vs_jax"] = nncc_s / rnd["jax"]["median_s"]
        rnd["vs_torch"] = nncc_s / rnd["torch_by_threads"][rnd["torch_best"]]["median_s"]
        log(f"round {i + 1}: nncc {nncc_s:.3f} s/epoch, JAX {rnd['jax']['median_s']:.3f} (ratio {rnd['vs_jax']:.2f}), "
            f"PyTorch {rnd['torch_by_threads'][rnd['torch_best']]['median_s']:.3f} (ratio {rnd['vs_torch']:.2f})")
        rounds.append(rnd)
        before = rnd["nncc_after"]
    return rounds


def pooled(runs):
    """One system's runs over the rounds: the median of all steady epochs, the first round's first epoch and
    whole-process figures, the last round's accuracy."""
    res = dict(runs[0])
    res["runs"] = [r["per_epoch"] for r in runs]
    res["steady"] = [e for r in runs for e in steady(r["per_epoch"])]
    res["median_s"] = median(res["steady"])
    res["final_acc"] = runs[-1]["final_acc"]
    return res


def anchors_available(python):
    if not python:
        return False
    if not os.access(python, os.X_OK):
        log(f"--anchors {python}: not found; skipping PyTorch and JAX")
        return False
    r = subprocess.run([python, "-c", "import torch, jax, numpy"], capture_output=True, text=True)
    if r.returncode != 0:
        log(f"--anchors {python}: cannot import torch, jax and numpy; skipping them\n{r.stderr[-500:]}")
        return False
    return True


# ----------------------------------------------------------------------------
# the table

def verdict(ok):
    return "met" if ok else "NOT met"


def table(res):
    m, c, t, p = res["machine"], res["compile"], res["trainer"], res["process"]
    g, gn = res["gemm_floor"]["blas"], res["gemm_floor"]["nnrt"]
    torch_, jax_ = res.get("torch"), res.get("jax")
    rows = []
    pooled = [e for run in t.get("runs", [t["per_epoch"]]) for e in steady(run)]
    rows.append(("nncc trainer", f"{t['median_s']:.3f}", f"{spread(pooled)} (1st {t['first_s']:.3f})",
                 f"{p['wall_s']:.2f} s, {p['rss_mb']:.0f} MB", f"{t['final_acc']:.4f}"))
    if jax_:
        rows.append(("JAX jit (XLA CPU)", f"{jax_['median_s']:.3f}", f"{spread(jax_['steady'])} (1st {jax_['first_s']:.3f})",
                     f"{jax_['wall_s']:.2f} s, {jax_['rss_mb']:.0f} MB" if "wall_s" in jax_ else "-", f"{jax_['final_acc']:.4f}"))
    for n, tr in sorted(res.get("torch_by_threads", {}).items()):
        rows.append((f"PyTorch eager, {n} thread{'s' if n > 1 else ''}{' (anchor)' if n == torch_['threads'] else ''}",
                     f"{tr['median_s']:.3f}", f"{spread(tr['steady'])} (1st {tr['first_s']:.3f})",
                     f"{tr['wall_s']:.2f} s, {tr['rss_mb']:.0f} MB" if "wall_s" in tr else "-", f"{tr['final_acc']:.4f}"))
    rows.append((f"GEMMs alone, OpenBLAS {t['core']}, 1 thread", f"{g['median_s']:.3f}",
                 f"{g['gflops']:.0f} GFLOP/s, {g['gflop_per_epoch']:.1f} GFLOP", "-", "-"))
    rows.append(("GEMMs alone, nncc's kernels, 1 thread", f"{gn['median_s']:.3f}",
                 f"{gn['gflops']:.0f} GFLOP/s, {gn['gflop_per_epoch']:.1f} GFLOP", "-", "-"))
    head = ("what", "s/epoch (median)", "range, first epoch", "whole 1-epoch process", "test acc")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(r[i]).ljust(widths[i]) for i in range(len(r))) + " |"
    out = [f"nncc benchmark, {m['date']}, {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB; "
           f"load average {res['load_before']:.2f} before, {res['load_after']:.2f} after",
           f"workload: Fashion-MNIST MLP 784-256-128-10, Adam lr 1e-3, batch 128, shuffled, partial last batch "
           f"trained; medians of the steady epochs (all but each run's first) of every run: nncc "
           f"{res['args']['epochs']} epochs" + (f", then {len(res['rounds'])} rounds of the anchors ({res['args']['anchor_epochs']} epochs each) "
           f"each followed by nncc again ({res['args']['round_epochs']} epochs); a round's ratio uses the nncc runs just "
           f"before and after its anchors" if res.get("rounds") else ""),
           f"blas: {t['blas']}",
           "cache line round trip CPU 0 -> 1 -> 0 (bench/pingpong.c): " +
           ", ".join(f"{k} {v} ns" if v else f"{k} -" for k, v in res.get("pingpong", {}).items()), "",
           line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    out.append("")
    targets = []
    rounds = res.get("rounds", [])
    for key, name, target in (("vs_jax", "nncc / JAX jit", TARGET_VS_JAX), ("vs_torch", "nncc / PyTorch eager", TARGET_VS_TORCH)):
        if rounds:
            rs = [r[key] for r in rounds]
            r = median(rs)
            targets.append((f"{name}, s/epoch, median of {len(rs)} rounds", f"{r:.3f} (rounds {spread(rs, 2)})",
                            f"<= {target}", verdict(r <= target)))
    if rounds:
        # Each round by where the vCPUs were: the round trip just before it (the previous round's, or the start's)
        # and just after it. One L3 is tens of ns, two are hundreds; a round with one of each is "mixed".
        trips = [res.get("pingpong", {}).get("start")] + [r.get("pingpong_ns") for r in rounds]
        where = lambda ns: None if ns is None else "one L3" if ns < 200 else "two L3s"
        tags = [where(a) if where(a) == where(b) else "mixed" for a, b in zip(trips, trips[1:])]
        for tag in ("one L3", "two L3s", "mixed"):
            idx = [i for i, t in enumerate(tags) if t == tag]
            if idx:
                targets.append((f"rounds with the vCPUs in {tag}" if tag != "mixed" else "rounds in which the vCPUs moved",
                                ", ".join(f"{i + 1}: JAX {rounds[i]['vs_jax']:.2f}, PyTorch {rounds[i]['vs_torch']:.2f}" for i in idx),
                                "(bench/pingpong.c)", ""))
    targets.append(("nncc (2 threads) / its GEMMs alone (1 thread)", f"{t['median_s'] / gn['median_s']:.2f}",
                    "(0.5 = perfect split, nothing else)", ""))
    targets.append(("whole 1-epoch process, wall", f"{p['wall_s']:.2f} s", f"<= {TARGET_WALL_S} s", verdict(p["wall_s"] <= TARGET_WALL_S)))
    targets.append(("whole 1-epoch process, max RSS", f"{p['rss_mb']:.0f} MB", f"<= {TARGET_RSS_MB} MB", verdict(p["rss_mb"] <= TARGET_RSS_MB)))
    targets.append(("nncc compile, cold (the runtime too)", f"{c['cold_s']:.2f} s", f"<= {TARGET_COLD_S} s", verdict(c["cold_s"] <= TARGET_COLD_S)))
    if "model_cold_s" in c:
        targets.append(("nncc compile, cold, runtime already built", f"{c['model_cold_s']:.2f} s", f"<= {TARGET_COLD_S} s",
                        verdict(c["model_cold_s"] <= TARGET_COLD_S)))
    targets.append(("nncc compile, warm", f"{c['warm_s']:.3f} s", f"<= {TARGET_WARM_S} s", verdict(c["warm_s"] <= TARGET_WARM_S)))
    a = t["acc_within_10s"]
    targets.append((f"test acc within {TARGET_ACC_WITHIN_S:.0f} s of training",
                    f"{a[0]:.4f} (epoch {a[1]}, {a[2]:.1f} s)" if a else "-", f">= {TARGET_ACC}",
                    verdict(bool(a) and a[0] >= TARGET_ACC)))
    head2 = ("target", "measured", "target", "")
    w2 = [max(len(str(r[i])) for r in targets + [head2]) for i in range(4)]
    line2 = lambda r: "| " + " | ".join(str(r[i]).ljust(w2[i]) for i in range(4)) + " |"
    out += [line2(head2), "|" + "|".join("-" * (w + 2) for w in w2) + "|"] + [line2(r) for r in targets]
    if not jax_ or not torch_:
        out.append("(anchors not run: give --anchors PYTHON with torch and jax installed for the ratios)")
    return "\n".join(out)


# ----------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--nncc", help="use this nncc instead of building one")
    ap.add_argument("--scratch-path", default=os.path.join(REPO, ".build"),
                    help="swift build's --scratch-path (use your own to not collide with other builds)")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=20,
                    help="epochs of the nncc trainer's timing run (20 ≈ 10 s, for the accuracy-within-10-s target)")
    ap.add_argument("--process-runs", type=int, default=3, help="whole 1-epoch processes per system")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--warm-runs", type=int, default=5)
    ap.add_argument("--gemm-epochs", type=int, default=5)
    ap.add_argument("--profile-epochs", type=int, default=3, help="epochs of the --profile run (0: skip it)")
    ap.add_argument("--anchors", help="a Python with torch and jax (e.g. /tmp/anchors/bin/python)")
    ap.add_argument("--anchor-epochs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of anchors, each followed by another nncc run (the ratios are medians over rounds)")
    ap.add_argument("--round-epochs", type=int, default=6, help="epochs of the nncc run after each round")
    ap.add_argument("--torch-threads", default="1,2", help="PyTorch thread counts to run; the fastest is the anchor")
    ap.add_argument("--anchor-process-runs", type=int, default=1, help="whole 1-epoch anchor processes (slow)")
    ap.add_argument("--json", help="also write every measurement here")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (caches, trainer, logs)")
    args = ap.parse_args()
    if args.rounds < 1 or args.round_epochs < 3:
        die(f"--rounds {args.rounds} --round-epochs {args.round_epochs}: expected at least 1 round of at least 3 epochs")
    if not os.path.isdir(args.data):
        die(f"--data {args.data}: no such folder (install dataset-fashion-mnist)")

    res = {"machine": machine(), "load_before": loadavg(), "args": vars(args)}
    work = tempfile.mkdtemp(prefix="nncc-bench-")
    try:
        res["pingpong"] = {"start": pingpong(work)}
        nncc = build_nncc(args)
        res["nncc"] = nncc
        res["compile"], trainer = compile_times(nncc, work, args.cold_runs, args.warm_runs)
        res["trainer"] = trainer_epochs(trainer, args.data, args.epochs, work)
        res["process"] = whole_process([trainer, "train", "--data", args.data, "--epochs", "1", "--val-split", "0", "--report-test", "--quiet"],
                                       args.process_runs)
        log(f"nncc whole process: {res['process']['wall_s']:.2f} s, {res['process']['rss_mb']:.0f} MB")
        res["gemm_floor"] = gemm_floor(work, res["trainer"]["core"], res["trainer"]["threads"], args.gemm_epochs, 128)
        if anchors_available(args.anchors):
            res["rounds"] = anchor_rounds(args, trainer, work, res["trainer"])
            rs = res["rounds"]
            res["jax"] = pooled([r["jax"] for r in rs])
            res["torch_by_threads"] = {n: pooled([r["torch_by_threads"][n] for r in rs]) for n in rs[0]["torch_by_threads"]}
            best = min(res["torch_by_threads"], key=lambda n: res["torch_by_threads"][n]["median_s"])
            res["torch"] = dict(res["torch_by_threads"][best], threads=best)
            # nncc's figure: the steady epochs of every nncc run (each round's anchors are bracketed by two).
            t = res["trainer"]
            t["runs"] = [t["per_epoch"]] + [r["nncc_after"] for r in rs]
            t["median_s"] = median([e for run in t["runs"] for e in steady(run)])
            for i, r in enumerate(rs):
                res["pingpong"][f"round {i + 1}"] = r["pingpong_ns"]
        if args.profile_epochs > 0:
            res["profile"] = profile_run(trainer, args.data, args.profile_epochs, work)
        res["pingpong"]["end"] = pingpong(work)
        res["load_after"] = loadavg()
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    text = table(res)
    print(text)
    if "profile" in res:
        print(f"\ntrainer --profile, {args.profile_epochs} epochs (a separate run):")
        print("\n".join(res["profile"]["epoch_lines"]))
        print(res["profile"]["text"])
    if args.json:
        res["table"] = text
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
