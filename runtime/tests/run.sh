#!/usr/bin/env bash
# run.sh — builds libnnrt and the runtime tests (test_unit from unit*.c, test_window, test_conv_pool, the toy trainers) three
# times (plain -O2, with ASan+UBSan, and with TSan), runs them all (and the e2e_*.sh and hostile.sh scripts on the toy trainers),
# and ends with one line "N passed, M failed" (exit status 1 if anything failed).
# Works from any directory; all build output goes to a temp dir that is removed afterwards.
# Environment: CC (default: clang from the Swift toolchain, else clang, else gcc), KEEP=1 keeps the temp dir.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RT=$(dirname "$HERE")
if [ -z "${CC:-}" ]; then
    for c in /opt/swift/usr/bin/clang clang gcc; do command -v $c >/dev/null && { CC=$c; break; }; done
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/nnrt-tests.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$TMP"' EXIT
LIBS="-lopenblas -lpng -lz -lm -lpthread"
# ld.gold (the default linker here) warns about every ASan symbol; bfd is quiet.
LD=$($CC -fuse-ld=bfd -x c -o /dev/null - <<<'int main(void){return 0;}' 2>/dev/null && echo -fuse-ld=bfd)
pass=0 fail=0

build() {  # build NAME CFLAGS...: libnnrt.a, the toy trainers, mkdata and the unit tests into $TMP/NAME
    local out=$TMP/$1
    shift
    mkdir -p "$out/obj"
    for f in "$RT"/*.c; do
        $CC -std=c11 -O2 -Wall -Wextra -Wmissing-prototypes -Wno-unused-parameter -Werror "$@" -c "$f" -o "$out/obj/$(basename "${f%.c}").o" || return 1
    done
    ar rcs "$out/libnnrt.a" "$out"/obj/*.o || return 1
    local cc="$CC -std=c11 -O2 -Wall $* -I$RT $LD"
    $cc "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy" &&
    $cc -DTOY_WRONG_GRAD "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy_wrong" &&
    $cc -DTOY_DENSE "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy_dense" &&
    $cc -DTOY_MNIST "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy_mnist" &&
    $cc -DTOY_DROPOUT "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy_dropout" &&
    $cc -DTOY_LBFGS "$HERE/toy_model.c" "$out/libnnrt.a" $LIBS -o "$out/toy_lbfgs" &&
    $cc "$HERE"/unit*.c "$out/libnnrt.a" $LIBS -o "$out/test_unit" &&
    $cc "$HERE/test_window.c" "$out/libnnrt.a" $LIBS -o "$out/test_window" &&
    $cc "$HERE/test_conv_pool.c" "$out/libnnrt.a" $LIBS -o "$out/test_conv_pool" &&
    $cc "$HERE/mkdata.c" -lz -o "$out/mkdata"
}

# Runs one test program, echoes its lines, and adds its "...: P passed, F failed" line to the totals.
run() {
    local label=$1 log=$TMP/$1.log
    shift
    "$@" >"$log" 2>&1
    local rc=$? summary
    sed "s/^/[$label] /" "$log" | grep -v "^\[$label\] ok "
    summary=$(grep -E "[0-9]+ passed, [0-9]+ failed$" "$log" | tail -1)
    if [ -z "$summary" ]; then
        echo "[$label] FAIL: no summary (exit $rc)"; fail=$((fail + 1)); return
    fi
    local p f
    p=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$summary")
    f=$(sed -E 's/.* ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$summary")
    pass=$((pass + p)); fail=$((fail + f))
    if [ "$f" -eq 0 ] && [ "$rc" -ne 0 ]; then echo "[$label] FAIL: exit $rc"; fail=$((fail + 1)); fi
}

# NNRT_FIELD_OFFSET (cli.c's flag table) compiles for a field of the named type and refuses any other.
field_check() {
    printf '#include "nnrt.h"\ntypedef struct { int a; int64_t b; } S;\nsize_t x = NNRT_FIELD_OFFSET(S, %s, int64_t);\n' "$1" |
        $CC -std=c11 -Wall -Werror -I"$RT" -fsyntax-only -x c - 2>/dev/null
}
if field_check b && ! field_check a; then pass=$((pass + 1)); else echo "[static] FAIL: NNRT_FIELD_OFFSET type check"; fail=$((fail + 1)); fi

# The benchmark's C programs link runtime/gemm*.c: they must keep building (and gemm_floor must
# run); bench/gemm_sparse.c and pingpong.c (which run for seconds) must build.
BENCH=$(dirname "$RT")/bench
bench_ok() {
    local o=$TMP/bench
    mkdir -p "$o" &&
    $CC -O2 -march=native -std=c11 -Wall -Werror -I"$RT" "$BENCH/gemm_floor.c" "$BENCH/gemm_stub.c" "$RT"/gemm*.c -o "$o/gemm_floor" -lopenblas &&
    "$o/gemm_floor" --samples 512 --epochs 1 --kernel nnrt | grep -q '"kernel":"nnrt"' &&
    CC=$CC "$BENCH/variant.sh" A "$o/A.o" && CC=$CC "$BENCH/variant.sh" B "$o/B.o" &&
    $CC -O2 -march=native -std=c11 -Wall -Werror "$BENCH/gemm_ab.c" "$BENCH/gemm_stub.c" "$o/A.o" "$o/B.o" -o "$o/gemm_ab" -lopenblas -lpthread &&
    $CC -O2 -std=c11 -Wall -Wextra -Werror "$BENCH/gemm_sparse.c" "$BENCH/gemm_stub.c" "$o/A.o" "$o/B.o" -o "$o/gemm_sparse" -lopenblas -lpthread &&
    $CC -O2 -std=c11 -Wall -Wextra -Werror "$BENCH/pingpong.c" -o "$o/pingpong" -lpthread
}
if bench_ok; then pass=$((pass + 1)); else echo "[bench] FAIL: bench/gemm_floor.c, gemm_ab.c, gemm_sparse.c or pingpong.c does not build, or gemm_floor does not run"; fail=$((fail + 1)); fi

# ThreadSanitizer checks the worker thread's hand-offs and background pieces (parallel.c). The TSan runtime of
# the Swift toolchain's clang needs libdispatch, so that configuration builds with gcc (its libtsan).
TSAN_CC=$(command -v gcc || true)
for cfg in plain asan tsan; do
    cc=$CC
    case $cfg in
        plain) flags="" ;;
        asan) flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" ;;
        tsan) flags="-fsanitize=thread" cc=$TSAN_CC ;;
    esac
    if [ -z "$cc" ]; then echo "[$cfg] FAIL: no gcc to build it with"; fail=$((fail + 1)); continue; fi
    if ! CC=$cc build $cfg $flags; then echo "[$cfg] FAIL: build"; fail=$((fail + 1)); continue; fi
    mkdir -p "$TMP/$cfg/data"
    "$TMP/$cfg/mkdata" "$TMP/$cfg/data" || { echo "[$cfg] FAIL: mkdata"; fail=$((fail + 1)); continue; }
    # Sanitizer reports exit 86, unlike any status the trainer uses on purpose (0, 1, 2).
    export ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86 \
           TSAN_OPTIONS=halt_on_error=1:exitcode=86:atexit_sleep_ms=0
    run "$cfg-unit" "$TMP/$cfg/test_unit" "$TMP/$cfg/work-unit"
    run "$cfg-window" "$TMP/$cfg/test_window"
    run "$cfg-conv-pool" "$TMP/$cfg/test_conv_pool"
    for t in "$HERE"/e2e_*.sh; do
        theme=$(basename "$t" .sh)
        run "$cfg-${theme//_/-}" bash "$t" "$TMP/$cfg" "$TMP/$cfg/data" "$TMP/$cfg/work-$theme"
    done
    run "$cfg-hostile" bash "$HERE/hostile.sh" "$TMP/$cfg" "$TMP/$cfg/data" "$TMP/$cfg/work-hostile"
done

# The call graph between runtime/'s files (from the plain build's objects) has no cycle, and the check can fail.
run layers bash "$HERE/test_layers.sh" "$TMP/plain/obj"

# The fuzz targets of ../fuzz (one per loader) for 2 s each under ASan + UBSan: a loader crash fails the suite.
run fuzz bash "$RT/fuzz/run.sh" "${FUZZ_SECONDS:-2}" "$TMP/fuzz"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
