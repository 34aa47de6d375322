/* unit_gemm.c — unit tests of nnrt_sgemm: every kernel set the CPU runs against a float64 reference. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* nnrt_sgemm against a float64 reference, for each kernel set the CPU runs (AVX-512, AVX2; chosen with
 * NNRT_GEMM): every form (NN, NT, TN, and TT, which always goes to OpenBLAS), tails in M, N and K around the
 * kernels' tile sizes (4×4 and 3×4 dot tiles, 6×64 and 6×16 broadcast tiles, K blocks of 256), row
 * strides wider than the matrices (a split GEMM works on a window), and a guard band around C that must stay
 * untouched. Then: the best set is the default, NNRT_GEMM=blas switches to OpenBLAS with the same results within
 * rounding, and a GEMM computed in two column or row halves (as the two threads do) is bit-identical to the
 * whole, split at a tile boundary or not. */
static float gemm_a(int i, int k) { return (float)(((i * 37 + k * 11) % 23) - 11) / 8.0f; }
static float gemm_b(int k, int j) { return (float)(((k * 13 + j * 29) % 19) - 9) / 4.0f; }

/* Runs one GEMM of op(A) M×K times op(B) K×N with strides `pad` wider than needed; returns 1 when every
 * element is within 1e-5·Σ|a·b| of the float64 sum and nothing outside C's M×N window changed. */
static int gemm_case(int ta, int tb, int M, int N, int K, int pad) {
    int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc + 64;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc);
    for (size_t q = 0; q < na; q++) A[q] = NAN;  // padding must never be read into a result
    for (size_t q = 0; q < nb; q++) B[q] = NAN;
    for (size_t q = 0; q < nc; q++) C[q] = -777.0f;
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] = gemm_a(i, k);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) B[tb ? (size_t)j * ldb + k : (size_t)k * ldb + j] = gemm_b(k, j);
    nnrt_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    int ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double want = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                want += (double)gemm_a(i, k) * gemm_b(k, j);
                mag += fabs((double)gemm_a(i, k) * gemm_b(k, j));
            }
            ok &= fabs(C[(size_t)i * ldc + j] - want) <= 1e-5 * mag + 1e-30;
        }
        for (int j = N; j < ldc && (size_t)i * ldc + j < nc; j++) ok &= C[(size_t)i * ldc + j] == -777.0f;
    }
    for (size_t q = (size_t)M * ldc; q < nc; q++) ok &= C[q] == -777.0f;
    free(A);
    free(B);
    free(C);
    return ok;
}

/* The broadcast form (NN and TN) skips the zeros of op(A), or takes dense tiles when a group of rows has few:
 * either way each element of C must be bit-identical to the in-order sum that form promises, an fmaf chain over
 * k from 0 in blocks of 256, each block's sum added to C. Elements of A are zero at random with the given density
 * of non-zeros, and whole rows are all zero (every 5th) or all non-zero (every 7th), as dead and always-active
 * ReLU units make them. N a multiple of 128 gets no padding, so that B's rows are a multiple of 512 bytes apart
 * (the kernel copies them then). Returns 1 when every case is bit-identical and nothing outside C changed. */
static int gemm_skip_case(int ta, int M, int N, int K, double density, unsigned seed) {
    int pad = N % 128 ? (M + N + K) % 3 * 3 : 0, lda = (ta ? M : K) + pad, ldb = N + pad, ldc = N + pad;
    size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)K * ldb, nc = (size_t)M * ldc + 64;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb), *C = malloc(sizeof(float) * nc);
    float *a = malloc(sizeof(float) * (size_t)M * K);  // op(A), dense, row-major
    unsigned h = seed;
    for (size_t q = 0; q < na; q++) A[q] = NAN;  // padding must never be read into a result
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) {
            h = h * 1103515245u + 12345u;
            int keep = i % 5 == 4 ? 0 : i % 7 == 6 ? 1 : (double)(h >> 8) / 16777216.0 < density;
            float x = keep ? (float)((h >> 4) % 2001) / 1000.0f - 1.0f : 0.0f;
            a[(size_t)i * K + k] = x;
            A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] = a[(size_t)i * K + k];
        }
    for (size_t q = 0; q < nb; q++) {
        h = h * 1103515245u + 12345u;
        B[q] = (float)((h >> 4) % 4001) / 1000.0f - 2.0f;
    }
    for (size_t q = 0; q < nc; q++) C[q] = -777.0f;
    nnrt_sgemm(ta, 0, M, N, K, A, lda, B, ldb, C, ldc);
    int ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            float c = 0.0f;
            for (int k0 = 0; k0 < K; k0 += 256) {
                float s = 0.0f;
                for (int k = k0; k < K && k < k0 + 256; k++) s = fmaf(a[(size_t)i * K + k], B[(size_t)k * ldb + j], s);
                c = k0 == 0 ? s : c + s;
            }
            ok &= memcmp(&c, C + (size_t)i * ldc + j, sizeof c) == 0;
        }
        for (int j = N; j < ldc && (size_t)i * ldc + j < nc; j++) ok &= C[(size_t)i * ldc + j] == -777.0f;
    }
    for (size_t q = (size_t)M * ldc; q < nc; q++) ok &= C[q] == -777.0f;
    free(A);
    free(B);
    free(C);
    free(a);
    return ok;
}

/* The checks of one kernel set (or OpenBLAS), named "<label>: …". OpenBLAS's halves may round differently from
 * its whole (it picks its blocking by size), so that check, and the comparison with OpenBLAS itself, are only
 * for nnrt's own kernels. */
static void test_gemm_kind(const char *label, int own_kernels) {
    char name[128];
    static const int Ms[] = {1, 2, 3, 4, 5, 6, 7, 13, 64}, Ns[] = {1, 2, 4, 5, 8, 9, 15, 16, 17, 63, 64, 65, 130},
                     Ks[] = {1, 7, 8, 9, 15, 16, 17, 100, 257, 300};
    const char *forms[4] = {"NN", "NT", "TN", "TT"};
    for (int form = 0; form < 4; form++) {
        int ta = form >= 2, tb = form & 1, ok = 1;
        for (unsigned a = 0; a < sizeof Ms / sizeof *Ms; a++)
            for (unsigned b = 0; b < sizeof Ns / sizeof *Ns; b++)
                for (unsigned c = 0; c < sizeof Ks / sizeof *Ks; c++) ok &= gemm_case(ta, tb, Ms[a], Ns[b], Ks[c], (a + b + c) % 3 * 5);
        snprintf(name, sizeof name, "%s: gemm %s matches float64", label, forms[form]);
        CHECK(name, ok);
    }
    // The trainer's shapes (Fashion-MNIST MLP, batch 128), the forward ones with a partial last batch of 96.
    snprintf(name, sizeof name, "%s: gemm trainer shapes", label);
    CHECK(name, gemm_case(0, 1, 128, 256, 784, 0) && gemm_case(0, 1, 96, 128, 256, 0) &&
                    gemm_case(1, 0, 256, 784, 128, 0) && gemm_case(0, 0, 128, 256, 128, 0) &&
                    gemm_case(1, 0, 10, 128, 96, 0) && gemm_case(0, 1, 128, 10, 128, 0));
    // More rows than one block of the dot kernel (128), and an evaluation batch of 1024.
    snprintf(name, sizeof name, "%s: gemm NT over several row blocks", label);
    CHECK(name, gemm_case(0, 1, 300, 37, 100, 3) && gemm_case(0, 1, 1024, 20, 50, 0) && gemm_case(0, 1, 129, 9, 33, 1));
    float c6[6] = {1, 1, 1, 1, 1, 1}, x0 = 0;
    nnrt_sgemm(0, 0, 2, 3, 0, &x0, 1, &x0, 3, c6, 3);
    snprintf(name, sizeof name, "%s: gemm with K = 0 writes zeros", label);
    CHECK(name, c6[0] == 0 && c6[5] == 0);

    // The broadcast form's exact order, through both its paths (skipping zeros, or dense tiles).
    if (own_kernels) {
        static const int Ms[] = {1, 7, 36, 129}, Ns[] = {1, 13, 112, 113, 250, 256}, Ks[] = {1, 64, 65, 128, 300};
        static const double densities[] = {0.0, 0.2, 0.5, 0.7, 1.0};
        int exact = 1;
        unsigned seed = 1;
        for (int ta = 0; ta < 2; ta++)
            for (unsigned a = 0; a < sizeof Ms / sizeof *Ms; a++)
                for (unsigned b = 0; b < sizeof Ns / sizeof *Ns; b++)
                    for (unsigned c = 0; c < sizeof Ks / sizeof *Ks; c++)
                        for (unsigned d = 0; d < sizeof densities / sizeof *densities; d++)
                            exact &= gemm_skip_case(ta, Ms[a], Ns[b], Ks[c], densities[d], seed++);
        snprintf(name, sizeof name, "%s: gemm NN and TN are the in-order fmaf sums, with zeros in op(A) or not", label);
        CHECK(name, exact);
    }

    // Halves, as a split kernel computes them, are bit-identical to the whole.
    enum { M = 128, N = 272, K = 200 };
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N), *W = malloc(sizeof(float) * M * N),
          *H = malloc(sizeof(float) * M * N), *Bt = malloc(sizeof(float) * N * K), *At = malloc(sizeof(float) * K * M);
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) At[k * M + i] = A[i * K + k] = gemm_a(i, k) * 0.37f + 0.01f * (float)k;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) Bt[j * K + k] = B[k * N + j] = gemm_b(k, j) * 0.71f - 0.003f * (float)j;
    int same = 1;
    nnrt_sgemm(0, 1, M, N, K, A, K, Bt, K, W, N);  // NT by columns (the forward split)
    for (int split = 102; split <= 144; split += 42) {  // inside a 4-column dot tile, and at the edge of one
        nnrt_sgemm(0, 1, M, split, K, A, K, Bt, K, H, N);
        nnrt_sgemm(0, 1, M, N - split, K, A, K, Bt + split * K, K, H + split, N);
        same &= memcmp(W, H, sizeof(float) * M * N) == 0;
    }
    nnrt_sgemm(1, 0, M, N, K, At, M, B, N, W, N);  // TN by rows (the weight-gradient split)
    nnrt_sgemm(1, 0, 64, N, K, At, M, B, N, H, N);
    nnrt_sgemm(1, 0, M - 64, N, K, At + 64, M, B, N, H + 64 * N, N);
    same &= memcmp(W, H, sizeof(float) * M * N) == 0;
    nnrt_sgemm(0, 0, M, N, K, A, K, B, N, W, N);  // NN by columns
    nnrt_sgemm(0, 0, M, 144, K, A, K, B, N, H, N);
    nnrt_sgemm(0, 0, M, N - 144, K, A, K, B + 144, N, H + 144, N);
    same &= memcmp(W, H, sizeof(float) * M * N) == 0;
    snprintf(name, sizeof name, "%s: gemm halves are bit-identical to the whole", label);
    if (own_kernels) CHECK(name, same);

    // The same product through OpenBLAS: equal within rounding.
    int kind = nnrt_gemm_own_kernels();
    const char *env = getenv("NNRT_GEMM");
    char saved[16];
    snprintf(saved, sizeof saved, "%s", env ? env : "");
    nnrt_sgemm(0, 1, M, N, K, A, K, Bt, K, W, N);
    setenv("NNRT_GEMM", "blas", 1);
    nnrt_gemm_reset();
    nnrt_sgemm(0, 1, M, N, K, A, K, Bt, K, H, N);
    if (*saved) setenv("NNRT_GEMM", saved, 1);
    else unsetenv("NNRT_GEMM");
    nnrt_gemm_reset();
    int close = 1;
    for (int q = 0; q < M * N; q++) close &= fabsf(W[q] - H[q]) <= 1e-4f * (1 + fabsf(H[q]));
    snprintf(name, sizeof name, "%s: gemm agrees with OpenBLAS", label);
    if (own_kernels) CHECK(name, close);
    snprintf(name, sizeof name, "%s: the comparison with OpenBLAS leaves the choice as it was", label);
    CHECK(name, nnrt_gemm_own_kernels() == kind);
    free(A);
    free(B);
    free(W);
    free(H);
    free(Bt);
    free(At);
}

void test_gemm(void) {
    int own = nnrt_gemm_own_kernels(), avx512 = 0, avx2 = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    avx512 = nnrt_gemm512_built && avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
#endif
    CHECK("gemm runs the best kernels the CPU has", own == (avx512 ? NNRT_GEMM_AVX512 : avx2 ? NNRT_GEMM_AVX2 : NNRT_GEMM_BLAS));
    const struct { const char *env; int kind, present; } sets[3] = {
        {"avx512", NNRT_GEMM_AVX512, avx512}, {"avx2", NNRT_GEMM_AVX2, avx2}, {"blas", NNRT_GEMM_BLAS, 1}};
    for (int s = 0; s < 3; s++) {
        setenv("NNRT_GEMM", sets[s].env, 1);
        nnrt_gemm_reset();
        if (!sets[s].present) {
            printf("skip %s: this CPU lacks it\n", sets[s].env);
            continue;
        }
        char name[64];
        snprintf(name, sizeof name, "NNRT_GEMM=%s selects it", sets[s].env);
        CHECK(name, nnrt_gemm_own_kernels() == sets[s].kind);
        test_gemm_kind(sets[s].env, sets[s].kind != NNRT_GEMM_BLAS);
    }
    unsetenv("NNRT_GEMM");
    nnrt_gemm_reset();
    CHECK("gemm is back to its default", nnrt_gemm_own_kernels() == own);
}
