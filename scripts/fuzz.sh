#!/usr/bin/env bash
# scripts/fuzz.sh SECONDS [TARGET...] — fuzzes the runtime's loaders (IDX/.gz, npy, CSV, safetensors, checkpoint;
# runtime/fuzz/) for SECONDS each under ASan + UBSan (FUZZ_RUNS=N stops a target after N inputs instead). The corpus grows in build/fuzz/corpus/ across runs; crashes
# land in build/fuzz/crashes/<target>/ (reproduce one with build/fuzz/<target> FILE). Record the executions
# reached in docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/fuzz.sh SECONDS [idx npy csv safetensors checkpoint]" >&2; exit 2; }
mkdir -p build
secs=$1
shift
exec bash runtime/fuzz/run.sh "$secs" "$PWD/build/fuzz" "$@"
