# lib.sh — what the trainer-level test scripts (e2e_*.sh, hostile.sh) share; each sources it first:
#     . "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
# usage of such a script: SCRIPT BIN_DIR DATA_DIR WORK_DIR     (run.sh builds BIN_DIR, named for its
# configuration, and DATA_DIR; the script runs in WORK_DIR). Each prints "ok   <name>" or "FAIL <name>: <why>" per
# test and finally, through `finish`, "<label>: P passed, F failed" (the line run.sh counts).
set -u
BIN=$1 D=$2 W=$3
TOY=$BIN/toy WRONG=$BIN/toy_wrong DENSE=$BIN/toy_dense MNIST=$BIN/toy_mnist DROP=$BIN/toy_dropout LBFGS=$BIN/toy_lbfgs
pass=0 fail=0
# The float64 references (lbfgs_ref.py) run with python3 and NumPy; without them pyref says it skips.
PY_REF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lbfgs_ref.py
NUMPY=$(python3 -c 'import numpy' >/dev/null 2>&1 && echo 1)
mkdir -p "$W"
cd "$W" || exit 1

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

# expect NAME CODE SUBSTRING CMD... — exit code CODE, SUBSTRING in stdout+stderr, and no sanitizer report. A fatal
# error exits with its buffers allocated on purpose: leaks are checked only on success, and not at all with
# LEAKS_ON_SUCCESS=0.
LEAKS_ON_SUCCESS=1
expect() {
    local name=$1 code=$2 sub=$3 out rc
    shift 3
    if [ "$code" -eq 0 ] && [ "$LEAKS_ON_SUCCESS" = 1 ]; then out=$("$@" 2>&1); else out=$(ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 "$@" 2>&1); fi
    rc=$?
    if grep -qE "Sanitizer|runtime error:" <<<"$out"; then bad "$name" "sanitizer report: $out"
    elif [ "$rc" -ne "$code" ]; then bad "$name" "exit $rc, expected $code; output: $out"
    elif ! grep -qF -- "$sub" <<<"$out"; then bad "$name" "no '$sub' in: $out"
    else ok "$name"; fi
}

# pyref NAME ARGS... — `lbfgs_ref.py ARGS` exits 0 (its one line says what it compared); without python3 and NumPy
# a "skip" line instead, counted neither way.
pyref() {
    local name=$1 out
    shift
    if [ -z "$NUMPY" ]; then echo "skip $name: no python3 with numpy for lbfgs_ref.py"; return; fi
    if out=$(python3 "$PY_REF" "$@" 2>&1); then ok "$name ($out)"; else bad "$name" "$out"; fi
}

# A JSONL log without its wall-clock fields (runs that must match differ only there).
nosecs() { sed 's/,"seconds":[^}]*}/}/' "$1"; }
# Two weights files equal but for the I64 counter "seen" (their last 8 bytes), which moves on with every epoch.
same_but_counter() { cmp -s -n $(($(stat -c %s "$1") - 8)) "$1" "$2" && [ "$(stat -c %s "$1")" = "$(stat -c %s "$2")" ] && ! cmp -s "$1" "$2"; }

# finish LABEL: the summary line; the script's exit status is 1 if anything failed.
finish() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
