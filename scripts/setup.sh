#!/usr/bin/env bash
# The first command of the README: installs what is missing, builds nncc, puts it on the PATH (a symlink in
# /usr/local/bin as root, else ~/.local/bin; see scripts/install.sh), compiles the Fashion-MNIST example and
# trains it for 10 epochs. Writes build/fmnist, build/fmnist.safetensors and build/metrics.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh
swift build -c release --product nncc
swift build -c release --product NNDSL
scripts/install.sh
mkdir -p build
.build/release/nncc compile examples/fashion_mnist_mlp.swiftnn -o build/fmnist
build/fmnist train --data /usr/share/datasets/fashion-mnist --epochs "${EPOCHS:-10}" \
    --save build/fmnist.safetensors --log build/metrics.jsonl
