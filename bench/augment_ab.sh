#!/usr/bin/env bash
# augment_ab.sh — the cost of train --augment: one trainer, epochs with and without the flag, interleaved in pairs
# (the order alternating within pairs), the medians and the median of the per-pair ratios.
# usage: bench/augment_ab.sh TRAINER [PAIRS [AUGMENT [DATA]]]
#   TRAINER  a trainer of an image model, e.g. nncc compile examples/fashion_mnist_cnn.swiftnn -o /tmp/cnn
#   PAIRS    pairs of one-epoch runs (default 4); AUGMENT the list (default crop:4,flip,cutout:8,jitter:0.2);
#   DATA     an MNIST-layout directory (default /usr/share/datasets/fashion-mnist)
set -eu
T=$1 PAIRS=${2:-4} AUG=${3:-crop:4,flip,cutout:8,jitter:0.2} DATA=${4:-/usr/share/datasets/fashion-mnist}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
epoch_s() {  # the epoch's training seconds from the JSONL epoch line
    "$T" train --data "$DATA" --epochs 1 --val-split 0 --quiet --log "$W/log.jsonl" "$@" >/dev/null
    sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' "$W/log.jsonl" | tail -1
    rm -f "$W/log.jsonl"
}
plain=() aug=() ratio=()
for p in $(seq 1 "$PAIRS"); do
    if [ $((p % 2)) = 1 ]; then a=$(epoch_s); b=$(epoch_s --augment "$AUG"); else b=$(epoch_s --augment "$AUG"); a=$(epoch_s); fi
    plain+=("$a") aug+=("$b") ratio+=("$(python3 -c "print($b / $a)")")
    echo "pair $p: plain $a s, --augment $b s, ratio $(python3 -c "print(f'{$b / $a:.3f}')")  (load $(cut -d' ' -f1 /proc/loadavg))"
done
python3 - "${plain[*]}" "${aug[*]}" "${ratio[*]}" <<'PY'
import statistics, sys
p, a, r = ([float(x) for x in s.split()] for s in sys.argv[1:4])
print(f"median plain {statistics.median(p):.2f} s, --augment {statistics.median(a):.2f} s; "
      f"median ratio {statistics.median(r):.3f} (range {min(r):.3f}-{max(r):.3f})")
PY
