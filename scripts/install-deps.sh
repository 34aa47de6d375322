#!/usr/bin/env bash
# Installs the system packages nncc needs, if they are missing: OpenBLAS, libpng and zlib headers for the trainers,
# Debian's Fashion-MNIST for the example, gcc for the runtime tests under ThreadSanitizer, and bubblewrap, the
# sandbox nncc runs model files in (docs/nncc.md), Open MPI for data-parallel training (docs/distributed.md), Chromium to render `trainer report`'s page headless in its test; then, from PyPI, onnx and onnxruntime for the ONNX export's
# test (Tests/Reference/onnx_check.py) and tensorboard for the event reader `nncc plot --tensorboard`'s test reads
# its files back with (Tests/Reference/tensorboard_check.py). Needs root (or sudo). Safe to run again.
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
dpkg -s libpng-dev >/dev/null 2>&1 || need+=(libpng-dev)  # the trainers' pictures (trainer filters)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
command -v gcc >/dev/null 2>&1 || need+=(gcc)  # the runtime tests' ThreadSanitizer build (its libtsan)
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)  # nncc compile's sandbox for the model file
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)  # mpirun, for nncc compile --mpi trainers
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)  # mpi.h and libmpi
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the headless browser the HTML report's test renders it in
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "installing ${need[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The ONNX export's test runs the exported model in onnxruntime, the TensorBoard test reads its event files with
# tensorboard's reader; without these they are skipped, with the reason.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import numpy, onnx, onnxruntime, tensorboard' >/dev/null 2>&1; then
    echo "installing onnx onnxruntime tensorboard (pip)" >&2
    python3 -m pip install -q --disable-pip-version-check onnx==1.23.2 onnxruntime==1.32.0 tensorboard==2.21.0 >/dev/null 2>&1 \
        || echo "install-deps.sh: pip could not install onnx, onnxruntime and tensorboard; their tests will be skipped" >&2
fi
