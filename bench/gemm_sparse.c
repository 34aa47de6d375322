/* gemm_sparse.c — A/B of two builds of runtime/gemm.c on the backward GEMMs whose op(A) is a ReLU-masked
 * gradient, at a range of densities (the fraction of op(A) that is non-zero), on one thread, in one process.
 *
 * The shapes are the Fashion-MNIST MLP's at batch 128, with the trainer's strides:
 *   dW1  dH1ᵀ · X,  one chunk of 36 of the 256 rows   (TN, B's rows 784 floats apart)
 *   dW2  dH2ᵀ · A1                                     (TN, 256 floats apart: the copy to `pack` runs)
 *   dX2  dH2 · W2                                      (NN, 256 floats apart)
 * op(A) is masked the way training masks it: a quarter of the units (rows of op(A) for TN, columns for NN) are dead
 * (below density 0.75), a quarter are non-zero with probability min(1, 1.6 d) and the rest with the probability
 * that makes the overall density d. Subnormals are flushed, as the trainer does. Each line prints both medians,
 * B/A, and whether the two results are bit-identical (they must be: skipping zeros does not change the sums).
 *
 * Build (A = the committed runtime/gemm*.c, B = with changed copies; variant.sh renames each build's symbols):
 *   bench/variant.sh A a.o
 *   bench/variant.sh B b.o my_gemm_avx2.c my_gemm_avx512.c   (the GEMM renamed: sg_A, sg_B, …)
 *   cc -O2 bench/gemm_sparse.c bench/gemm_stub.c a.o b.o -o gemm_sparse -lopenblas -lpthread && ./gemm_sparse
 * To see the dense tiles against the sparse path, build B from copies with SP_DENSE set to 1.1 (always
 * sparse) and A from ones with it set to 0 (always dense). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_AB
#include "bench.h"

enum { ITERS = 400 };

static float *buffer(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    if (!p) { fprintf(stderr, "gemm_sparse: out of memory\n"); exit(1); }
    return p;
}

static unsigned h = 12345;
static double uniform(void) {
    h = h * 1103515245u + 12345u;
    return (double)(h >> 8) / 16777216.0;
}

int main(void) {
#if defined(__x86_64__)
    __builtin_ia32_ldmxcsr(__builtin_ia32_stmxcsr() | 0x8040);  // flush-to-zero and denormals-are-zero
#endif
    static const struct { const char *name; int ta, M, N, K, lda, ldb; } shapes[] = {
        {"dW1", 1, 36, 784, 128, 256, 784}, {"dW2", 1, 128, 256, 128, 128, 256}, {"dX2", 0, 128, 256, 128, 128, 256}};
    static const double densities[] = {1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3};
    static double t[2][ITERS];
    for (unsigned s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int ta = shapes[s].ta, M = shapes[s].M, N = shapes[s].N, K = shapes[s].K, lda = shapes[s].lda, ldb = shapes[s].ldb;
        long na = ta ? (long)K * lda : (long)M * lda;
        float *A = buffer(na), *B = buffer((long)K * ldb), *C[2] = {buffer((long)M * N), buffer((long)M * N)};
        for (long q = 0; q < (long)K * ldb; q++) B[q] = (float)uniform() - 0.5f;
        for (unsigned d = 0; d < sizeof densities / sizeof *densities; d++) {
            // ¼ of the units dead (up to density 0.75), ¼ busy, ½ the rest, with the overall density dens
            double dens = densities[d], dead = dens > 0.75 ? 4 * dens - 3 : 0, busy = dens * 1.6 < 1 ? dens * 1.6 : 1;
            double rest = (4 * dens - dead - busy) / 2;
            for (long q = 0; q < na; q++) A[q] = 0.0f;
            for (int i = 0; i < M; i++)
                for (int k = 0; k < K; k++) {
                    int unit = ta ? i : k;  // the ReLU units: rows of op(A) for TN, its columns for NN
                    double p = unit % 4 == 0 ? dead : unit % 4 == 1 ? busy : rest;
                    float x = uniform() < p ? (float)(uniform() * 2e-4 - 1e-4) : 0.0f;
                    A[ta ? (long)k * lda + i : (long)i * lda + k] = x;
                }
            for (int it = 0; it < ITERS; it++)
                for (int v = 0; v < 2; v++) {
                    int w = (it & 1) ? v : 1 - v;
                    double t0 = bench_now();
                    variant[w](ta, 0, M, N, K, A, lda, B, ldb, C[w], N);
                    t[w][it] = bench_now() - t0;
                }
            qsort(t[0], ITERS, sizeof(double), bench_cmp_double);
            qsort(t[1], ITERS, sizeof(double), bench_cmp_double);
            int same = memcmp(C[0], C[1], sizeof(float) * (size_t)M * N) == 0;
            printf("%s density %.1f: A %7.1f µs  B %7.1f µs  B/A %.2f  %s\n", shapes[s].name, dens,
                   t[0][ITERS / 2] * 1e6, t[1][ITERS / 2] * 1e6, t[1][ITERS / 2] / t[0][ITERS / 2],
                   same ? "bit-identical" : "RESULTS DIFFER");
        }
        free(A);
        free(B);
        free(C[0]);
        free(C[1]);
    }
    return 0;
}
