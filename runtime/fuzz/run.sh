#!/usr/bin/env bash
# run.sh SECONDS OUT_DIR [TARGET...] — builds the fuzz targets (build.sh) into OUT_DIR and runs each for SECONDS (or
# FUZZ_RUNS inputs, whichever comes first) on
# its seed corpus (corpus/<target>/, read only; new inputs go to OUT_DIR/corpus/<target>, crashes to
# OUT_DIR/crashes/<target>/). Two at a time (two cores; FUZZ_JOBS=N for N). Prints "ok   fuzz-<target>: N executions, 0 crashes" or
# "FAIL ..." per target and ends with "fuzz: P passed, F failed"; exit status 1 on any crash.
# runtime/tests/run.sh runs it for a few seconds per target (the CI smoke); scripts/fuzz.sh runs it long.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SECONDS_EACH=$1 OUT=$2
shift 2
TARGETS=${*:-idx npy csv safetensors checkpoint}
if ! bash "$HERE/build.sh" "$OUT" >"$OUT.build.log" 2>&1; then
    cat "$OUT.build.log"; echo "FAIL fuzz-build"; echo "fuzz: 0 passed, 1 failed"; exit 1
fi
ENGINE=$(cat "$OUT/ENGINE")
# A loader's error exits through longjmp with its buffers freed by fz_run; the leak checker is off because
# libFuzzer's own bookkeeping is not freed at exit. Allocation limits (ASan's for replay.c, libFuzzer's too) turn a
# size trusted from a header into a crash.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:allocator_may_return_null=0:max_allocation_size_mb=1024 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
one() {
    local t=$1 work=$OUT/corpus/$1 crashes=$OUT/crashes/$1/
    mkdir -p "$work" "$crashes"
    "$OUT/$t" -max_total_time="$SECONDS_EACH" -runs="${FUZZ_RUNS:--1}" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -print_final_stats=1 \
        -artifact_prefix="$crashes" "$work" "$HERE/corpus/$t" >"$OUT/$t.log" 2>&1
    echo $? >"$OUT/$t.rc"
}
running=0
for t in $TARGETS; do
    one "$t" &
    running=$((running + 1))
    if [ $running -ge "${FUZZ_JOBS:-2}" ]; then wait -n; running=$((running - 1)); fi
done
wait
pass=0 fail=0
for t in $TARGETS; do
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$OUT/$t.log" | tail -1)
    crashes=$(find "$OUT/crashes/$t" -type f | wc -l)
    if [ "$(cat "$OUT/$t.rc")" = 0 ] && [ "$crashes" = 0 ] && [ -n "$execs" ]; then
        pass=$((pass + 1)); echo "ok   fuzz-$t: $execs executions, 0 crashes ($ENGINE, ${SECONDS_EACH}s)"
    else
        fail=$((fail + 1)); echo "FAIL fuzz-$t: exit $(cat "$OUT/$t.rc"), $crashes crash files in $OUT/crashes/$t"
        grep -E "ERROR|SUMMARY|runtime error|error without|deadly signal" "$OUT/$t.log" | head -5
    fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
