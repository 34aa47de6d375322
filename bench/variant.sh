#!/usr/bin/env bash
# variant.sh V OUT.o [FILE.c ...] [-- CFLAGS...]: one build of the GEMM (runtime/gemm*.c: the dispatcher gemm.c,
# the kernels gemm_avx2.c and gemm_avx512.c, the plan gemm_plan.c, or changed copies of them) as a single object
# whose entry points carry the suffix _V (sg_V for nnrt_sgemm, and so on), so that bench/gemm_ab.c and
# gemm_sparse.c can link two builds, A and B, into one process. Each FILE.c replaces the runtime file its name
# ends with (my_gemm_avx2.c replaces gemm_avx2.c).
#   bench/variant.sh A a.o && bench/variant.sh B b.o my_gemm_avx2.c -- -DSOME_SWITCH=1
#   cc -O2 bench/gemm_sparse.c bench/gemm_stub.c a.o b.o -o gemm_sparse -lopenblas -lpthread && ./gemm_sparse
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: variant.sh V OUT.o [FILE.c ...] [-- CFLAGS...]" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) rt=$(dirname "$here")/runtime
v=$1 out=$2
shift 2
srcs=("$rt"/gemm*.c)
bases=("${srcs[@]##*/}")
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    best=-1 len=0
    for i in "${!bases[@]}"; do  # the longest runtime name the file's name ends with
        b=${bases[$i]}
        if [[ ${1##*/} == *"$b" ]] && [ ${#b} -gt $len ]; then best=$i len=${#b}; fi
    done
    [ $best -ge 0 ] || { echo "variant.sh: $1 names none of runtime/gemm*.c (its name must end with one)" >&2; exit 2; }
    srcs[$best]=$1
    shift
done
[ $# -gt 0 ] && [ "$1" = -- ] && shift
cc=${CC:-cc}
names=(-Dnnrt_sgemm=sg_$v -Dnnrt_gemm_own_kernels=own_$v -Dnnrt_gemm_reset=reset_$v -Dnnrt_gemm_describe=describe_$v
       -Dnnrt_gemm_bc_plan=plan_$v -Dnnrt_gemm512_nt=nt512_$v -Dnnrt_gemm512_bc=bc512_$v -Dnnrt_gemm512_built=built512_$v
       -Dnnrt_gemm256_nt=nt256_$v -Dnnrt_gemm256_bc=bc256_$v)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
objs=()
for i in "${!srcs[@]}"; do
    $cc -O2 -march=native -I"$rt" "${names[@]}" "$@" -c "${srcs[$i]}" -o "$tmp/$i.o"
    objs+=("$tmp/$i.o")
done
ld -r "${objs[@]}" -o "$out"
