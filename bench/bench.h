/* bench.h — what the standalone C benchmark programs share: a monotonic clock, the comparator for sorting
 * timings (medians), and the two renamed builds of runtime/gemm.c that the A/B programs compare (their build
 * lines rename nnrt_sgemm to sg_A and sg_B). Header-only, so each program still builds with one command. */
#ifndef NNCC_BENCH_H
#define NNCC_BENCH_H
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double bench_now(void) {
    struct timespec s;
    clock_gettime(CLOCK_MONOTONIC, &s);
    return (double)s.tv_sec + 1e-9 * (double)s.tv_nsec;
}

/* qsort comparator for doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#ifdef BENCH_AB
typedef void (*sgemm_fn)(int, int, int, int, int, const float *, int, const float *, int, float *, int);
void sg_A(int, int, int, int, int, const float *, int, const float *, int, float *, int);
void sg_B(int, int, int, int, int, const float *, int, const float *, int, float *, int);
static const sgemm_fn variant[2] = {sg_A, sg_B};
#endif
#endif
