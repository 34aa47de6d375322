#!/usr/bin/env bash
# variant.sh V OUT.o [GEMM_C [GEMM512_C]] [-- CFLAGS...]: one build of the GEMM (runtime/gemm.c and gemm_avx512.c,
# or changed copies of them) as a single object whose entry points carry the suffix _V (sg_V for nnrt_sgemm, and
# so on), so that bench/gemm_ab.c and gemm_sparse.c can link two builds, A and B, into one process.
#   bench/variant.sh A a.o && bench/variant.sh B b.o my_gemm.c -- -DSOME_SWITCH=1
#   cc -O2 bench/gemm_sparse.c bench/gemm_stub.c a.o b.o -o gemm_sparse -lopenblas -lpthread && ./gemm_sparse
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: variant.sh V OUT.o [GEMM_C [GEMM512_C]] [-- CFLAGS...]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) rt=$(dirname "$here")/runtime
v=$1 out=$2
shift 2
src=$rt/gemm.c src512=$rt/gemm_avx512.c
if [ $# -gt 0 ] && [ "$1" != -- ]; then src=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" != -- ]; then src512=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = -- ] && shift
cc=${CC:-cc}
names=(-Dnnrt_sgemm=sg_$v -Dnnrt_gemm_own_kernels=own_$v -Dnnrt_gemm_reset=reset_$v -Dnnrt_gemm_describe=describe_$v
       -Dnnrt_gemm_bc_plan=plan_$v -Dnnrt_gemm512_nt=nt512_$v -Dnnrt_gemm512_bc=bc512_$v -Dnnrt_gemm512_built=built512_$v)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$cc -O2 -march=native -I"$rt" "${names[@]}" "$@" -c "$src" -o "$tmp/g.o"
$cc -O2 -march=native -I"$rt" "${names[@]}" "$@" -c "$src512" -o "$tmp/k.o"
ld -r "$tmp/g.o" "$tmp/k.o" -o "$out"
