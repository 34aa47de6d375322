# e2e_lib.sh — what e2e.sh, e2e_data.sh and hostile.sh share (sourced): pass/fail counting and the two kinds of check.

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1: $2"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

# expect NAME CODE SUBSTRING CMD... — exit code CODE, SUBSTRING in stdout+stderr, and no sanitizer report.
expect() {
    local name=$1 code=$2 sub=$3 out rc
    shift 3
    # A fatal error exits with its buffers allocated on purpose: check leaks only on success.
    if [ "$code" -eq 0 ]; then out=$("$@" 2>&1); else out=$(ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 "$@" 2>&1); fi
    rc=$?
    if grep -qE "Sanitizer|runtime error:" <<<"$out"; then bad "$name" "sanitizer report: $out"
    elif [ "$rc" -ne "$code" ]; then bad "$name" "exit $rc, expected $code; output: $out"
    elif ! grep -qF -- "$sub" <<<"$out"; then bad "$name" "no '$sub' in: $out"
    else ok "$name"; fi
}
