#!/usr/bin/env bash
# swa_experiment.sh — issue #19's experiment: examples/fashion_mnist_resnet.swiftnn trained plain against the same
# model trained with augmentation and SWA, on the full training set, for several seeds; each run's weights are
# evaluated once, at the end, on the 10,000 test images. Two runs at a time, one thread each (the machine has two
# cores; two single-threaded trainers get more done than one two-threaded one at this model's sizes).
# usage: bench/swa_experiment.sh TRAINER OUTDIR [SEEDS [EPOCHS [EXTRA]]]
#   TRAINER  nncc compile examples/fashion_mnist_resnet.swiftnn -o /tmp/resnet
#   OUTDIR   where the weights, logs and evals go (kept: a finished run is not run again, and the table is rebuilt)
#   SEEDS    default "0 1 2"; EPOCHS default 30; EXTRA the second arm's flags (default below)
# The plain arm is the example as written (Adam 2e-3, cosine over the epochs, batch 128). The second arm adds
# EXTRA, by default --augment crop:2,flip,cutout:8 --swa-start S --swa-lr 5e-4 with S = EPOCHS·3/4 + 1 (23 of 30:
# SWA over the last quarter). Both train on all 60,000 images (--val-split 0): nothing is selected on the test
# set, which is read only by the final eval. docs/perf-log/2026-12-07-swa-full-data.md has the runs: at 10 epochs
# (EXTRA "--augment crop:2,flip --swa-start 7 --swa-lr 5e-4") the second arm loses, at 30 it wins.
set -eu
T=$1 OUT=$2 SEEDS=${3:-0 1 2} EPOCHS=${4:-30}
EXTRA=${5:---augment crop:2,flip,cutout:8 --swa-start $((EPOCHS * 3 / 4 + 1)) --swa-lr 5e-4}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p "$OUT"
run() {  # arm seed flags...
    local arm=$1 seed=$2; shift 2
    local w="$OUT/$arm.seed$seed"
    if [ ! -s "$w.eval" ]; then
        "$T" train --data "$DATA" --val-split 0 --epochs "$EPOCHS" --t-max "$EPOCHS" --seed "$seed" --threads 1 \
            --quiet --log "$w.jsonl" --save "$w.safetensors" "$@" > "$w.out" 2>&1
        "$T" eval --weights "$w.safetensors" --data "$DATA" --threads 1 > "$w.eval" 2>&1
    fi
    echo "$arm seed $seed: $(tail -1 "$w.eval")"
}
start=$(date -u +%H:%M)
for s in $SEEDS; do
    run plain "$s" &
    # shellcheck disable=SC2086
    run augswa "$s" $EXTRA &
    wait
done
echo "runs from $start to $(date -u +%H:%M) UTC; load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT" $SEEDS <<'PY'
import re, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
def acc(arm, s):
    text = open(f"{out}/{arm}.seed{s}.eval").read()
    m = re.search(r"test_acc[ =:]*([0-9.]+)", text)
    l = re.search(r"test_loss[ =:]*([0-9.]+)", text)
    return float(m.group(1)), float(l.group(1))
rows = []
print("| seed | plain test_acc | plain test_loss | aug+SWA test_acc | aug+SWA test_loss | difference (points) |")
print("|---|---|---|---|---|---|")
for s in seeds:
    (pa, pl), (sa, sl) = acc("plain", s), acc("augswa", s)
    rows.append((pa, sa))
    print(f"| {s} | {pa:.4f} | {pl:.4f} | {sa:.4f} | {sl:.4f} | {100 * (sa - pa):+.2f} |")
p = [r[0] for r in rows]; a = [r[1] for r in rows]; d = [100 * (y - x) for x, y in rows]
sd = (lambda v: statistics.stdev(v) if len(v) > 1 else 0.0)
print(f"| mean ± sd | {statistics.mean(p):.4f} ± {sd(p):.4f} | | {statistics.mean(a):.4f} ± {sd(a):.4f} | | "
      f"{statistics.mean(d):+.2f} ± {sd(d):.2f} |")
PY
