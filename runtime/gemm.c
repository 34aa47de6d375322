/* gemm.c — the trainer's single-precision GEMM: C = op(A) · op(B), row-major, no alpha/beta.
 *
 * Every sgemm of a generated trainer goes through nnrt_sgemm. It runs one of two sets of the kernels below:
 * AVX-512 on CPUs that have it (Intel Skylake-SP and later), AVX2 with FMA on the others (AMD Zen 2, Intel
 * Haswell); on a CPU with neither, and with NNRT_GEMM=blas in the environment, it calls OpenBLAS's cblas_sgemm.
 * NNRT_GEMM=nnrt insists on a set of the kernels, avx512 or avx2 on that set; any other value is a usage error
 * (exit 2), reported when the trainer starts.
 *
 * Why our own: at the trainer's shapes (batch 128, layers of 10–784) OpenBLAS 0.3.21's sgemm loses much of its
 * time to packing both operands into its blocked layout on every call, which both halves of a GEMM split over
 * two threads then repeat (SkylakeX kernels: about 120 GFLOP/s of one core's 160). The kernels here read the
 * operands in place, in the order the training step leaves them; only the AVX2 NT form packs, one 16 KB panel
 * of B at a time.
 *
 *   - NT, op(B) = Bᵀ (every forward layer: X · Wᵀ with W in PyTorch's (out, in) layout). AVX-512: the dot
 *     form: both operands are contiguous along K, so a 4×4 tile of C keeps one 16-lane accumulator of partial
 *     sums over K per element and reduces them at the end. AVX2: the broadcast form below over panels of Bᵀ
 *     that it packs itself (its 3×4 dot tile ran at 60–70 % of the FMA peak on Zen 2, streaming three rows of
 *     A from L2 for every 12 FMAs; the packed broadcast form runs at about 80 %);
 *   - broadcast form, for op(B) = B ("NN": dY · W, and "TN": dYᵀ · X, the backward GEMMs): each step over K
 *     broadcasts 6 elements of op(A) and loads a row segment of B (AVX-512: 6×64 tiles; AVX2: 6×16).
 * Measured (bench/gemm_floor.c runs the epoch's GEMMs both ways): see the README.
 *
 * Results differ from OpenBLAS's only by summation order: the broadcast form adds over K in order, in blocks of
 * 256 (each block's sum is then added to C); the dot form adds 16 interleaved partial sums. Both are
 * deterministic and do not depend on how a GEMM is split between threads (splits are whole rows or whole
 * columns of C, and each element's sum is the same wherever its tile falls). The two sets differ from each
 * other in the NT form's order only.
 *
 * The AVX-512 kernels are in gemm_avx512.c; the AVX2 ones are here, in GCC/clang vector extensions rather than
 * <immintrin.h> intrinsics, so that this file compiles in 0.3 s rather than 1.2 s (a cold `nncc compile`
 * builds the whole runtime). */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

/* The blocking, as in gemm_avx512.c: rows per broadcast tile, and the K block of the broadcast form (which
 * sets the summation order). */
enum { BC_MR = 6, BC_KC = 256 };

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define NNRT_HAVE_OWN_KERNELS 1
#define INL static inline __attribute__((always_inline))

// ----------------------------------------------------------------------------
// AVX2 + FMA (for CPUs without AVX-512, such as AMD Zen 2): the broadcast form with 8-lane vectors, for all
// three forms. These CPUs have 16 vector registers, not 32, and a 5-cycle FMA that issues twice per cycle, so
// the tile keeps 12 accumulators (10 hide the latency): 6×16 (12 + 2 vectors of B + 1 broadcast), the register
// budget BLIS uses on Haswell.

#define TGT2 __attribute__((target("avx2,fma")))
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

TGT2 INL v8f load8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
TGT2 INL void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
TGT2 INL v8f splat8(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
TGT2 INL v8f fma8(v8f a, v8f b, v8f c) {  // a·b + c, one rounding (vfmadd231ps)
#if defined(__clang__)
    return __builtin_elementwise_fma(a, b, c);
#else
    return __builtin_ia32_vfmaddps256(a, b, c);
#endif
}

static const int32_t lane_masks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first `lanes` (0–8) lanes on; masked-off lanes load as zero and are neither read nor written. */
TGT2 INL v8i first_lanes(int lanes) { v8i m; memcpy(&m, lane_masks + 8 - lanes, sizeof m); return m; }
TGT2 INL v8f maskload8(const float *p, v8i m) { return __builtin_ia32_maskloadps256((const v8f *)p, m); }
TGT2 INL void maskstore8(float *p, v8i m, v8f v) { __builtin_ia32_maskstoreps256((v8f *)p, m, v); }

enum { BC8_NV = 2 };

/* A broadcast tile of mr ≤ 6 rows and nv ≤ 2 vectors of 8 columns, the last one `last` lanes wide (1–8):
 * C[r][c] (+)= Σk A[r·sai + k·sak] · B[k·ldb + c]. `masked` 0 promises full vectors (plain loads and stores);
 * `accumulate` adds to C (K blocks after the first). */
TGT2 INL void bc_tile8(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc, int mr,
                       int nv, int last, int masked, int accumulate) {
    v8i m = first_lanes(last);
    v8f acc[BC_MR][BC8_NV] = {{{0}}};
    for (int k = 0; k < K; k++) {
        const float *brow = B + (long)k * ldb;
        v8f y[BC8_NV] = {{0}};
        for (int v = 0; v < BC8_NV; v++)
            if (v < nv) y[v] = masked && v == nv - 1 ? maskload8(brow + 8 * v, m) : load8(brow + 8 * v);
        for (int r = 0; r < BC_MR && r < mr; r++) {
            v8f x = splat8(A[r * sai + k * sak]);
            for (int v = 0; v < BC8_NV; v++)
                if (v < nv) acc[r][v] = fma8(x, y[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *c = C + (long)r * ldc + 8 * v;
            if (masked && v == nv - 1) maskstore8(c, m, accumulate ? acc[r][v] + maskload8(c, m) : acc[r][v]);
            else store8(c, accumulate ? acc[r][v] + load8(c) : acc[r][v]);
        }
}

/* The full tile with constant sizes, so that the compiler keeps all 12 accumulators in registers. */
TGT2 static void bc_full8(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc,
                          int accumulate) {
    bc_tile8(K, A, sai, sak, B, ldb, C, ldc, BC_MR, BC8_NV, 8, 0, accumulate);
}

/* Fewer than 6 rows at full width (the last 2 rows of a batch of 128), with the row count a compile-time
 * constant in each case, as bc_full8 has it, rather than the generic tile's run-time count. The forward GEMM
 * got 5 % faster with it (bench/gemm_ab.c CHUNKED=1, two runs). Only gemm_nt8 calls it: the same branch in
 * gemm_bc8 made dW1's full tiles 5 % slower, which can only be the code's layout. */
TGT2 __attribute__((noinline)) static void bc_rows8(int K, const float *A, long sai, long sak, const float *B, int ldb,
                                                    float *C, int ldc, int mr, int accumulate) {
    switch (mr) {
    case 1: bc_tile8(K, A, sai, sak, B, ldb, C, ldc, 1, BC8_NV, 8, 0, accumulate); break;
    case 2: bc_tile8(K, A, sai, sak, B, ldb, C, ldc, 2, BC8_NV, 8, 0, accumulate); break;
    case 3: bc_tile8(K, A, sai, sak, B, ldb, C, ldc, 3, BC8_NV, 8, 0, accumulate); break;
    case 4: bc_tile8(K, A, sai, sak, B, ldb, C, ldc, 4, BC8_NV, 8, 0, accumulate); break;
    default: bc_tile8(K, A, sai, sak, B, ldb, C, ldc, 5, BC8_NV, 8, 0, accumulate); break;
    }
}

/* Blocks of BC_KC along K, panels of 16 columns of B (256 × 16 floats, 16 KB, stay in L1), tiles of 6 rows. */
TGT2 static void gemm_bc8(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                          int ldc) {
    for (int k0 = 0; k0 < K; k0 += BC_KC) {
        int kc = K - k0 < BC_KC ? K - k0 : BC_KC;
        for (int j = 0; j < N; j += 8 * BC8_NV) {
            int nj = N - j < 8 * BC8_NV ? N - j : 8 * BC8_NV, nv = (nj + 7) / 8, last = nj - 8 * (nv - 1);
            const float *b = B + (long)k0 * ldb + j;
            for (int i = 0; i < M; i += BC_MR) {
                int mr = M - i < BC_MR ? M - i : BC_MR;
                const float *a = A + i * sai + k0 * sak;
                float *c = C + (long)i * ldc + j;
                if (mr == BC_MR && nj == 8 * BC8_NV) bc_full8(kc, a, sai, sak, b, ldb, c, ldc, k0 > 0);
                else bc_tile8(kc, a, sai, sak, b, ldb, c, ldc, mr, nv, last, last < 8, k0 > 0);
            }
        }
    }
}

/* Rows 0–7 of `rows`, 8 floats each from k, transposed into 8 rows of a panel 16 floats wide: bp[i·16 + r] =
 * rows[r][k + i]. Three rounds of shuffles, as _MM_TRANSPOSE8_PS does: pairs of rows, pairs of pairs, halves. */
TGT2 INL void transpose8x8(const float *const *rows, int k, float *bp) {
    v8f r[8], a[8], b[8];
    for (int q = 0; q < 8; q++) r[q] = load8(rows[q] + k);
    for (int q = 0; q < 8; q += 2) {
        a[q] = __builtin_shufflevector(r[q], r[q + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        a[q + 1] = __builtin_shufflevector(r[q], r[q + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int q = 0; q < 8; q += 4)
        for (int h = 0; h < 2; h++) {
            b[q + 2 * h] = __builtin_shufflevector(a[q + h], a[q + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            b[q + 2 * h + 1] = __builtin_shufflevector(a[q + h], a[q + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int q = 0; q < 4; q++) {
        store8(bp + q * 16, __builtin_shufflevector(b[q], b[q + 4], 0, 1, 2, 3, 8, 9, 10, 11));
        store8(bp + (q + 4) * 16, __builtin_shufflevector(b[q], b[q + 4], 4, 5, 6, 7, 12, 13, 14, 15));
    }
}

/* Columns j..j+15 of op(B) = Bᵀ over kc values of K, that is rows j..j+nj−1 of B, into the panel bp[k·16 + c]
 * that the broadcast tile reads. Columns past nj repeat the last valid one (they are computed, never stored). */
TGT2 INL void pack_bt16(int kc, int nj, const float *B, int ldb, float *bp) {
    const float *rows[16];
    for (int c = 0; c < 16; c++) rows[c] = B + (long)(c < nj ? c : nj - 1) * ldb;
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        transpose8x8(rows, k, bp + k * 16);
        transpose8x8(rows + 8, k, bp + k * 16 + 8);
    }
    for (; k < kc; k++)
        for (int c = 0; c < 16; c++) bp[k * 16 + c] = rows[c][k];
}

/* NT (X · Wᵀ) through the broadcast tile: for each 16 columns of C and each K block of 256, pack that 256 × 16
 * panel of Bᵀ (16 KB, in L1; 8×8 register transposes, about 4 % as many instructions as the FMAs that read the
 * panel at M = 128), then run every 6-row tile of A over it. Each element is summed exactly as gemm_bc8 sums
 * it, whichever tile or split it falls in: an edge panel (fewer than 16 columns) is computed 16 wide into a
 * local tile and its valid columns added to C the way a full tile would add them. */
TGT2 static void gemm_nt8(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    float bp[BC_KC * 16] __attribute__((aligned(64)));
    for (int j = 0; j < N; j += 16) {
        int nj = N - j < 16 ? N - j : 16, nv = (nj + 7) / 8, last = nj - 8 * (nv - 1);
        for (int k0 = 0; k0 < K; k0 += BC_KC) {
            int kc = K - k0 < BC_KC ? K - k0 : BC_KC;
            pack_bt16(kc, nj, B + (long)j * ldb + k0, ldb, bp);
            for (int i = 0; i < M; i += BC_MR) {
                int mr = M - i < BC_MR ? M - i : BC_MR;
                const float *a = A + (long)i * lda + k0;
                float *c = C + (long)i * ldc + j;
                if (mr == BC_MR && nj == 16) {
                    bc_full8(kc, a, lda, 1, bp, 16, c, ldc, k0 > 0);
                } else if (mr == BC_MR) {
                    float t[BC_MR * 16] __attribute__((aligned(64)));
                    bc_full8(kc, a, lda, 1, bp, 16, t, 16, 0);
                    for (int r = 0; r < BC_MR; r++)
                        for (int q = 0; q < nj; q++) c[(long)r * ldc + q] = k0 > 0 ? t[r * 16 + q] + c[(long)r * ldc + q] : t[r * 16 + q];
                } else if (nj == 16) {
                    bc_rows8(kc, a, lda, 1, bp, 16, c, ldc, mr, k0 > 0);
                } else {
                    bc_tile8(kc, a, lda, 1, bp, 16, c, ldc, mr, nv, last, last < 8, k0 > 0);
                }
            }
        }
    }
}
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
            if (transB) gemm_nt8(M, N, K, A, lda, B, ldb, C, ldc);
            else gemm_bc8(M, N, K, A, sai, sak, B, ldb, C, ldc);
        }
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f,
                A, lda, B, ldb, 0.0f, C, ldc);
}
