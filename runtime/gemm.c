/* gemm.c — the trainer's single-precision GEMM: C = op(A) · op(B), row-major, no alpha/beta.
 *
 * Every sgemm of a generated trainer goes through nnrt_sgemm. It runs one of two sets of the kernels below:
 * AVX-512 on CPUs that have it (Intel Skylake-SP and later, AMD Zen 4 and later), AVX2 with FMA on the others (AMD Zen 2, Intel
 * Haswell); on a CPU with neither, and with NNRT_GEMM=blas in the environment, it calls OpenBLAS's cblas_sgemm.
 * NNRT_GEMM=nnrt insists on a set of the kernels, avx512 or avx2 on that set; any other value is a usage error
 * (exit 2), reported when the trainer starts.
 *
 * Why our own: at the trainer's shapes (batch 128, layers of 10–784) OpenBLAS 0.3.21's sgemm loses much of its
 * time to packing both operands into its blocked layout on every call, which both halves of a GEMM split over
 * two threads then repeat (SkylakeX kernels: about 120 GFLOP/s of one core's 160). Neither kernel here packs
 * anything: each reads the operands in place, in the order the training step leaves them.
 *
 *   - dot form, for op(B) = Bᵀ ("NT", every forward layer: X · Wᵀ with W in PyTorch's (out, in) layout):
 *     both operands are contiguous along K, so a tile of C keeps one vector accumulator of partial sums over K
 *     per element (AVX-512: 4×4 tiles of 16 lanes; AVX2: 3×4 tiles of 8 lanes) and reduces them at the end;
 *   - broadcast form, for op(B) = B ("NN": dY · W, and "TN": dYᵀ · X, the backward GEMMs): each step over K
 *     broadcasts 6 elements of op(A) and loads a row segment of B (AVX-512: 6×64 tiles; AVX2: 6×16). Both sets
 *     skip the zeros of op(A) (a ReLU-masked gradient) where it has many, with the same result bit for bit; the
 *     plan of which rows do so (nnrt_gemm_bc_plan, gemm_plan.c) is shared, the kernels are each set's own.
 * Measured (bench/gemm_floor.c runs the epoch's GEMMs both ways): see the README.
 *
 * Results differ from OpenBLAS's only by summation order: the broadcast form adds over K in order, in blocks of
 * 256 (each block's sum is then added to C); the dot form adds 16 (AVX2: 8) interleaved partial sums. Both are
 * deterministic and do not depend on how a GEMM is split between threads (splits are whole rows or whole
 * columns of C, and each element's sum is the same wherever its tile falls). The two sets differ from each
 * other in the dot form's order only.
 *
 * This file is the dispatcher; the AVX2 kernels are in gemm_avx2.c, the AVX-512 ones in gemm_avx512.c, and the
 * broadcast form's plan both share in gemm_plan.c.
 *
 * The exported inference library (nncc compile --emit=library) compiles this file as it is, with one of two
 * switches: NNRT_NO_CBLAS (its default: no BLAS at all; where the CPU has neither kernel set, or with
 * NNRT_GEMM=blas, a plain loop stands in for cblas_sgemm) or NNRT_PREFER_CBLAS (cblas_sgemm unless NNRT_GEMM
 * chooses a kernel set). */
#define _POSIX_C_SOURCE 200809L
#ifndef NNRT_NO_CBLAS
#include <cblas.h>
#endif
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define NNRT_HAVE_OWN_KERNELS 1
#endif

// ----------------------------------------------------------------------------
// dispatch

static _Atomic int which = -1;  // -1: not decided yet; otherwise an nnrt_gemm_kind

static int cpu_has(int kind) {
#if NNRT_HAVE_OWN_KERNELS
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (kind == NNRT_GEMM_AVX2) return avx2;
    if (kind == NNRT_GEMM_AVX512)
        return nnrt_gemm512_built && avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq");
#endif
    return kind == NNRT_GEMM_BLAS;
}

static int decide(void) {
    int best = cpu_has(NNRT_GEMM_AVX512) ? NNRT_GEMM_AVX512 : cpu_has(NNRT_GEMM_AVX2) ? NNRT_GEMM_AVX2 : NNRT_GEMM_BLAS;
    const char *env = getenv("NNRT_GEMM");
#ifdef NNRT_PREFER_CBLAS
    if (!env || !*env) return NNRT_GEMM_BLAS;
#endif
    if (!env || !*env) return best;
    if (strcmp(env, "blas") == 0) return NNRT_GEMM_BLAS;
    if (strcmp(env, "nnrt") == 0) {
        if (best == NNRT_GEMM_BLAS) nnrt_usage_die("NNRT_GEMM=nnrt: this CPU has neither AVX-512 (F, VL, DQ) nor AVX2 with FMA; use blas or leave it unset");
        return best;
    }
    int kind = strcmp(env, "avx512") == 0 ? NNRT_GEMM_AVX512 : strcmp(env, "avx2") == 0 ? NNRT_GEMM_AVX2 : -1;
    if (kind < 0) nnrt_usage_die("NNRT_GEMM=%s: expected blas (OpenBLAS), nnrt (the best kernels this CPU runs), avx512 or avx2", env);
    if (!cpu_has(kind)) nnrt_usage_die("NNRT_GEMM=%s: this CPU lacks %s; use blas, nnrt or leave it unset", env,
                                       kind == NNRT_GEMM_AVX512 ? "AVX-512 (F, VL, DQ)" : "AVX2 with FMA");
    return kind;
}

int nnrt_gemm_own_kernels(void) {
    int w = atomic_load_explicit(&which, memory_order_relaxed);
    if (w < 0) atomic_store_explicit(&which, w = decide(), memory_order_relaxed);  // both threads decide alike
    return w;
}

const char *nnrt_gemm_describe(void) {
    switch (nnrt_gemm_own_kernels()) {
    case NNRT_GEMM_AVX512: return "nnrt's AVX-512 kernels (NNRT_GEMM=blas: OpenBLAS instead)";
    case NNRT_GEMM_AVX2: return "nnrt's AVX2 kernels (NNRT_GEMM=blas: OpenBLAS instead)";
    default: return "OpenBLAS cblas_sgemm";
    }
}

void nnrt_gemm_reset(void) { atomic_store(&which, -1); }

#ifdef NNRT_NO_CBLAS
/* What stands in for cblas_sgemm without a BLAS: each element's sum over K in order, in double. */
static void plain_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                        float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[transA ? (long)k * lda + i : (long)i * lda + k] * (double)B[transB ? (long)j * ldb + k : (long)k * ldb + j];
            C[(long)i * ldc + j] = (float)s;
        }
}
#endif

void nnrt_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++) memset(C + (long)i * ldc, 0, sizeof(float) * (size_t)N);
        return;
    }
#if NNRT_HAVE_OWN_KERNELS
    int kind = nnrt_gemm_own_kernels();
    if (kind != NNRT_GEMM_BLAS && !(transA && transB)) {
        long sai = transA ? 1 : lda, sak = transA ? lda : 1;
        if (kind == NNRT_GEMM_AVX512) {
            if (transB) nnrt_gemm512_nt(M, N, K, A, lda, B, ldb, C, ldc);
            else nnrt_gemm512_bc(M, N, K, A, sai, sak, B, ldb, C, ldc);
        } else {
            if (transB) nnrt_gemm256_nt(M, N, K, A, lda, B, ldb, C, ldc);
            else nnrt_gemm256_bc(M, N, K, A, sai, sak, B, ldb, C, ldc);
        }
        return;
    }
#endif
#ifdef NNRT_NO_CBLAS
    plain_sgemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                A, lda, B, ldb, 0.0f, C, ldc);
#endif
}
