#!/usr/bin/env bash
# The second command of the README, and what CI runs: installs what is missing, then the whole test suite
# (IR and autodiff against finite differences and the NumPy reference, golden dumps, training trajectories,
# end-to-end trainers, every bad-input case, and runtime/'s C tests plain, under ASan/UBSan and under TSan).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
scripts/install-deps.sh
swift build --build-tests
swift test
