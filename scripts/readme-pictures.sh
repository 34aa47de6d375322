#!/usr/bin/env bash
# readme-pictures.sh — makes the README's pictures (docs/images/) from scratch: compiles the Fashion-MNIST MLP and
# CNN examples with --monitor, trains them (the MLP 10 epochs, the CNN 2), and runs the trainer's insight commands
# on them: filters, doctor's LR range test, saliency, maximize, show-batch, report; `nncc plot` draws the monitored
# log. Chromium (headless) turns the plot's SVG and the report's page into PNGs. Seeds are fixed; the pictures
# change with the code that draws them and with the float summation order of the machine's kernels.
# usage: scripts/readme-pictures.sh [OUTDIR]   (default docs/images; needs nncc built, chromium, the data set)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$repo/docs/images}" && cd "${1:-$repo/docs/images}" && pwd)
nncc=${NNCC:-$repo/.build/release/nncc}
F=${DATA:-/usr/share/datasets/fashion-mnist}
T10K=$F/t10k-images-idx3-ubyte.gz
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cd "$w"
shot() {  # shot FILE WIDTH HEIGHT OUT.png: a headless Chromium screenshot of a local SVG or HTML file
    chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$2,$3" \
        --screenshot="$4" "file://$w/$1" >/dev/null 2>&1
    [ -s "$4" ] || { echo "readme-pictures.sh: chromium wrote no $4" >&2; exit 1; }
}
"$nncc" compile --monitor "$repo/examples/fashion_mnist_mlp.swiftnn" -o mlp
"$nncc" compile --monitor "$repo/examples/fashion_mnist_cnn.swiftnn" -o cnn

# The MLP: 10 epochs with the per-layer monitor, its first layer's rows, the doctor, the report, the plot.
./mlp train --data "$F" --epochs 10 --monitor every:200 --log mlp.jsonl --save mlp.safetensors --quiet
./mlp filters --weights mlp.safetensors -o "$out/filters.png"
./mlp doctor --data "$F" --lr-curve lr.svg | tee doctor.txt
./mlp report --log mlp.jsonl --weights mlp.safetensors --doctor doctor.txt -o report.html
shot report.html 1240 1000 "$out/report.png"
"$nncc" plot mlp.jsonl --title "fashion_mnist_mlp, train --monitor every:200" -o plot.svg
shot plot.svg 1000 1320 "$out/monitor.png"

# The CNN: 2 epochs; what the network sees under --augment, a saliency map, a class's maximizing input.
./cnn train --data "$F" --epochs 2 --save cnn.safetensors --quiet
./cnn show-batch --data "$F" --augment crop:4,flip,cutout:8,jitter:0.2 --batch 36 --seed 3 -o "$out/show-batch.png"
./cnn saliency --weights cnn.safetensors --input "$T10K" --index 0 -o "$out/saliency.png"   # an ankle boot
./cnn maximize --weights cnn.safetensors --unit 1 -o "$out/maximize.png"                      # class 1, trouser
ls -l "$out"
