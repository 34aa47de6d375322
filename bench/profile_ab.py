#!/usr/bin/env python3
"""A/B of two trainers, kernel by kernel: interleaved pairs of `--profile` runs in ABBA order.

usage: python3 bench/profile_ab.py A B [--pairs 8] [--epochs 2] [--data DIR] [-- extra trainer flags]

A and B are trainer executables (or scripts that exec one, for an environment change). Each pair runs both
with `train --profile`, the order alternating (A B, then B A, ...): the second run of a pair was 4-7 % faster
on this machine whichever it was. For the step, the epoch, the gather and every kernel it prints both medians
and the median and range of the per-pair ratios B/A. A kernel that only one side has (a pair split into two
kernels, say) is printed with its own median. Before and after, bench/pingpong.c reports where the host had the
vCPUs: a change in between (tens of ns against hundreds) makes the pairs around it compare two machines. It
also runs before and after every pair, and the step's and the epoch's ratios are printed once more for the pairs
with both vCPUs in one L3, those under two L3s, and those during which the host moved them.
Nothing here is used by the tests."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))


def die(msg):
    print(f"profile_ab: error: {msg}", file=sys.stderr)
    sys.exit(1)


def profile(exe, data, epochs, extra):
    """{name: ms per step} from one `--profile` run: "step", "epoch", "gather" and each kernel's line."""
    r = subprocess.run([exe, "train", "--data", data, "--epochs", str(epochs), "--val-split", "0", "--quiet", "--profile", *extra],
                       capture_output=True, text=True)
    if r.returncode != 0:
        die(f"{exe} exited {r.returncode}: {r.stderr.strip().splitlines()[-1:] or ''}")
    out = {}
    for line in r.stdout.splitlines() + r.stderr.splitlines():
        m = re.match(r"\s+(train_step total|epoch total|batch gather \+ uint8->float)\s+([\d.]+)", line)
        if m:
            out[{"train_step total": "step", "epoch total": "epoch"}.get(m.group(1), "gather")] = float(m.group(2))
            continue
        m = re.match(r"\s{4}(k\d+_\S+(?: \+ k\d+_\S+)?)\s+([\d.]+)\s+[\d.]+$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    if "step" not in out:
        die(f"{exe}: no --profile table in its output")
    return out


def pingpong(work):
    exe = os.path.join(work, "pingpong")
    if not os.path.exists(exe):
        cc = shutil.which("clang") or shutil.which("cc") or "/opt/swift/usr/bin/clang"
        if subprocess.run([cc, "-O2", os.path.join(BENCH, "pingpong.c"), "-o", exe, "-lpthread"]).returncode != 0:
            die("cannot build bench/pingpong.c")
    r = subprocess.run([exe], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "(pingpong needs two CPUs)"


def placement(line):
    """"one L3", "two L3s" or None from a pingpong line (a round trip of tens of ns or of hundreds)."""
    m = re.search(r"median (\d+) ns", line)
    return None if not m else "one L3" if int(m.group(1)) < 200 else "two L3s"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("extra", nargs="*", help="after --: flags for both trainers")
    args = ap.parse_args()
    for exe in (args.a, args.b):
        if not os.access(exe, os.X_OK):
            die(f"{exe}: not an executable trainer")
    if args.pairs < 1 or args.epochs < 1:
        die(f"--pairs {args.pairs} --epochs {args.epochs}: expected at least 1 of each")
    if not os.path.isdir(args.data):
        die(f"--data {args.data}: no such folder")
    work = tempfile.mkdtemp(prefix="profile-ab-")
    try:
        first = pingpong(work)
        print(f"before: {first}")
        runs = {"A": [], "B": []}
        where, last = [], placement(first)
        for i in range(args.pairs):
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                runs[side].append(profile(args.a if side == "A" else args.b, args.data, args.epochs, args.extra))
            line = pingpong(work)
            now = placement(line)
            where.append(now if now == last else "moved")
            last = now
        print(f"after:  {line}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = list(dict.fromkeys([k for r in runs["A"] + runs["B"] for k in r]))
    med = lambda side, k: statistics.median([r[k] for r in runs[side] if k in r])
    print(f"{args.pairs} pairs of {args.epochs}-epoch runs, ms per step; B/A is the median of the per-pair ratios")
    for k in sorted(names, key=lambda k: -max(med(s, k) for s in "AB" if any(k in r for r in runs[s]))):
        have = [s for s in "AB" if all(k in r for r in runs[s])]
        if have == ["A", "B"]:
            ratios = [b[k] / a[k] for a, b in zip(runs["A"], runs["B"]) if a[k] > 0]
            ratio = f"B/A {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})" if ratios else ""
            print(f"  {k:48} A {med('A', k):.3f}  B {med('B', k):.3f}  {ratio}")
        elif have:
            print(f"  {k:48} {have[0]} {med(have[0], k):.3f} (only in {have[0]})")
    print("by where the vCPUs were during the pair (bench/pingpong.c before and after it):")
    for w in ("one L3", "two L3s", "moved"):
        pairs = [(a, b) for a, b, p in zip(runs["A"], runs["B"], where) if p == w]
        if not pairs:
            continue
        cols = []
        for k in ("step", "epoch"):
            r = [b[k] / a[k] for a, b in pairs if a[k] > 0]
            cols.append(f"{k} A {statistics.median(a[k] for a, _ in pairs):.3f} B {statistics.median(b[k] for _, b in pairs):.3f}"
                        f" B/A {statistics.median(r):.3f} ({min(r):.3f}-{max(r):.3f})")
        print(f"  {w:8} {len(pairs):2} pairs: " + "; ".join(cols))


if __name__ == "__main__":
    main()
