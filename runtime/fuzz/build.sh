#!/usr/bin/env bash
# build.sh OUT_DIR — builds the fuzz targets of runtime/fuzz/ (fuzz_<name>.c) into OUT_DIR/<name>, with ASan and
# UBSan (every UB report aborts). With libFuzzer (clang's -fsanitize=fuzzer, which the Swift toolchain's clang
# ships) they are libFuzzer binaries; where that does not link, with replay.c, a plain driver that runs the corpus
# and then random mutations of it (OUT_DIR/ENGINE says which; FUZZ_ENGINE=replay forces it). The runtime is compiled with the allocation
# functions renamed to fuzz_common.c's (see fuzz.h). Environment: CC (default: the Swift toolchain's clang).
set -eu
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RT=$(dirname "$HERE")
OUT=$1
if [ -z "${CC:-}" ]; then
    for c in /opt/swift/usr/bin/clang clang; do command -v $c >/dev/null && { CC=$c; break; }; done
fi
mkdir -p "$OUT/obj"
LD=$($CC -fuse-ld=bfd -x c -o /dev/null - <<<'int main(void){return 0;}' 2>/dev/null && echo -fuse-ld=bfd || true)
# nnrt_try's longjmp makes ASan collect its fake stacks (use-after-return detection) on every error: 2/3 of the time
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fsanitize-address-use-after-return=never -fno-omit-frame-pointer -g -O1"
if [ "${FUZZ_ENGINE:-}" != replay ] && $CC -fsanitize=fuzzer $LD -x c -o "$OUT/probe" - <<<'#include <stdint.h>
#include <stddef.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' 2>/dev/null; then
    ENGINE=libfuzzer; LIB="-fsanitize=fuzzer-no-link" MAIN="-fsanitize=fuzzer"
else
    ENGINE=replay; LIB="" MAIN="$HERE/replay.c"
fi
RENAME="-Dmalloc=fz_malloc -Dcalloc=fz_calloc -Drealloc=fz_realloc -Dfree=fz_free -Daligned_alloc=fz_aligned_alloc
        -Dstrdup=fz_strdup -Dgzopen=fz_gzopen -Dgzclose=fz_gzclose -DNNRT_GZ_BUFFER=4096"
pids=()
for f in "$RT"/*.c; do
    # shellcheck disable=SC2086
    $CC -std=c11 $SAN $LIB $RENAME -w -c "$f" -o "$OUT/obj/$(basename "${f%.c}").o" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
$CC -std=c11 $SAN $LIB -Wall -Werror -I"$RT" -c "$HERE/fuzz_common.c" -o "$OUT/obj/fuzz_common.o"
for t in "$HERE"/fuzz_*.c; do
    name=$(basename "${t%.c}"); name=${name#fuzz_}
    [ "$name" = common ] && continue
    # shellcheck disable=SC2086
    $CC -std=c11 $SAN $LIB -Wall -Werror -I"$RT" "$t" $MAIN "$OUT"/obj/*.o $LD -lopenblas -lpng -lz -lm -lpthread -o "$OUT/$name"
done
rm -f "$OUT/probe"
echo $ENGINE >"$OUT/ENGINE"
