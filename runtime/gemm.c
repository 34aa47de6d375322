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
 * two threads then repeat (SkylakeX kernels: about 120 GFLOP/s of one core's 160). Neither kernel here packs
 * anything: each reads the operands in place, in the order the training step leaves them.
 *
 *   - dot form, for op(B) = Bᵀ ("NT", every forward layer: X · Wᵀ with W in PyTorch's (out, in) layout):
 *     both operands are contiguous along K, so a tile of C keeps one vector accumulator of partial sums over K
 *     per element (AVX-512: 4×4 tiles of 16 lanes; AVX2: 3×4 tiles of 8 lanes) and reduces them at the end;
 *   - broadcast form, for op(B) = B ("NN": dY · W, and "TN": dYᵀ · X, the backward GEMMs): each step over K
 *     broadcasts 6 elements of op(A) and loads a row segment of B (AVX-512: 6×64 tiles; AVX2: 6×16).
 * Measured (bench/gemm_floor.c runs the epoch's GEMMs both ways): see the README.
 *
 * Results differ from OpenBLAS's only by summation order: the broadcast form adds over K in order, in blocks of
 * 256 (each block's sum is then added to C); the dot form adds 16 (AVX2: 8) interleaved partial sums. Both are
 * deterministic and do not depend on how a GEMM is split between threads (splits are whole rows or whole
 * columns of C, and each element's sum is the same wherever its tile falls). The two sets differ from each
 * other in the dot form's order only. */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define NNRT_HAVE_OWN_KERNELS 1
#include <immintrin.h>
#define TGT __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define INL static inline __attribute__((always_inline))

// ----------------------------------------------------------------------------
// AVX-512: dot form (NT)

/* One vector whose lane t is the horizontal sum of v[t]: 45 shuffles and adds for 16 sums. */
TGT INL __m512 hsum16(const __m512 *v) {
    __m512 s[8], u[4], w[2];
    for (int p = 0; p < 8; p++)  // lanes of each 128-bit quarter: (a0+a2, b0+b2, a1+a3, b1+b3)
        s[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
    for (int q = 0; q < 4; q++) {  // each quarter: (Σa, Σb, Σc, Σd) over that quarter
        __m512d a = _mm512_castps_pd(s[2 * q]), b = _mm512_castps_pd(s[2 * q + 1]);
        u[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int r = 0; r < 2; r++)  // add quarters pairwise across two groups of four
        w[r] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * r], u[2 * r + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(u[2 * r], u[2 * r + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* A 4×4 tile: C[r][c] = Σk A[r·lda + k] · B[c·ldb + k] for r < mi, c < nj. Rows past mi or nj re-read the last
 * valid row (so every load stays inside the operands) and are not stored. */
TGT INL void nt_tile(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int mi, int nj) {
    const float *a[4], *b[4];
    for (int r = 0; r < 4; r++) a[r] = A + (long)(r < mi ? r : mi - 1) * lda;
    for (int c = 0; c < 4; c++) b[c] = B + (long)(c < nj ? c : nj - 1) * ldb;
    __m512 acc[16];
    for (int t = 0; t < 16; t++) acc[t] = _mm512_setzero_ps();
    int k = 0;
    for (; k + 16 <= K; k += 16) {
        __m512 x[4];
        for (int r = 0; r < 4; r++) x[r] = _mm512_loadu_ps(a[r] + k);
        for (int c = 0; c < 4; c++) {
            __m512 y = _mm512_loadu_ps(b[c] + k);
            for (int r = 0; r < 4; r++) acc[4 * r + c] = _mm512_fmadd_ps(x[r], y, acc[4 * r + c]);
        }
    }
    if (k < K) {  // the last K % 16 elements, masked (masked-off lanes load as zero and are not read)
        __mmask16 m = (__mmask16)((1u << (K - k)) - 1);
        __m512 x[4];
        for (int r = 0; r < 4; r++) x[r] = _mm512_maskz_loadu_ps(m, a[r] + k);
        for (int c = 0; c < 4; c++) {
            __m512 y = _mm512_maskz_loadu_ps(m, b[c] + k);
            for (int r = 0; r < 4; r++) acc[4 * r + c] = _mm512_fmadd_ps(x[r], y, acc[4 * r + c]);
        }
    }
    __m512 z = hsum16(acc);  // lane 4r + c holds C[r][c]
    __m128 rows[4] = {_mm512_castps512_ps128(z), _mm512_extractf32x4_ps(z, 1), _mm512_extractf32x4_ps(z, 2),
                      _mm512_extractf32x4_ps(z, 3)};
    __mmask8 cm = (__mmask8)((1u << nj) - 1);
    for (int r = 0; r < mi; r++) {
        if (nj == 4) _mm_storeu_ps(C + (long)r * ldc, rows[r]);
        else _mm_mask_storeu_ps(C + (long)r * ldc, cm, rows[r]);
    }
}

/* Blocks of NT_MB rows of A (128 × 784 floats is 400 KB, which stays in L2), and in each, column blocks of 4
 * rows of B (they stay in L1 while the block of A streams past them). Without the row blocks, a batch of 1024
 * streamed all of A (3.2 MB) from L3 for every 4 columns: evaluation ran at a third of the speed. */
enum { NT_MB = 128 };
TGT static void gemm_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    for (int i0 = 0; i0 < M; i0 += NT_MB) {
        int i1 = M - i0 < NT_MB ? M : i0 + NT_MB;
        for (int j = 0; j < N; j += 4) {
            int nj = N - j < 4 ? N - j : 4;
            for (int i = i0; i < i1; i += 4) {
                int mi = i1 - i < 4 ? i1 - i : 4;
                nt_tile(K, A + (long)i * lda, lda, B + (long)j * ldb, ldb, C + (long)i * ldc + j, ldc, mi, nj);
            }
        }
    }
}

// ----------------------------------------------------------------------------
// AVX-512: broadcast form (NN, TN)

enum { BC_MR = 6, BC_NV = 4, BC_KC = 256 };

/* A tile of mr ≤ 6 rows and nv ≤ 4 vectors of 16 columns (the last one masked by `last`):
 * C[r][c] (+)= Σk A[r·sai + k·sak] · B[k·ldb + c]. `accumulate` adds to C (K blocks after the first). */
TGT INL void bc_tile(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc, int mr,
                     int nv, __mmask16 last, int accumulate) {
    __m512 acc[BC_MR][BC_NV];
    for (int r = 0; r < BC_MR; r++)
        for (int v = 0; v < BC_NV; v++) acc[r][v] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *brow = B + (long)k * ldb;
        __m512 y[BC_NV];
        for (int v = 0; v < BC_NV; v++)
            if (v < nv) y[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, brow + 16 * v) : _mm512_loadu_ps(brow + 16 * v);
        for (int r = 0; r < BC_MR && r < mr; r++) {
            __m512 x = _mm512_set1_ps(A[r * sai + k * sak]);
            for (int v = 0; v < BC_NV; v++)
                if (v < nv) acc[r][v] = _mm512_fmadd_ps(x, y[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *c = C + (long)r * ldc + 16 * v;
            __mmask16 m = v == nv - 1 ? last : 0xFFFF;
            __m512 val = acc[r][v];
            if (accumulate) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(m, c));
            _mm512_mask_storeu_ps(c, m, val);
        }
}

/* The full tile with constant sizes, so that the compiler keeps all 24 accumulators in registers. */
TGT static void bc_full(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc,
                        int accumulate) {
    bc_tile(K, A, sai, sak, B, ldb, C, ldc, BC_MR, BC_NV, 0xFFFF, accumulate);
}

/* Blocks of BC_KC along K (a 256 × 64 panel of B is 64 KB), panels of 64 columns of B, tiles of 6 rows. */
TGT static void gemm_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                        int ldc) {
    for (int k0 = 0; k0 < K; k0 += BC_KC) {
        int kc = K - k0 < BC_KC ? K - k0 : BC_KC;
        for (int j = 0; j < N; j += 16 * BC_NV) {
            int nj = N - j < 16 * BC_NV ? N - j : 16 * BC_NV, nv = (nj + 15) / 16;
            __mmask16 last = (__mmask16)(nj % 16 ? (1u << (nj % 16)) - 1 : 0xFFFF);
            const float *b = B + (long)k0 * ldb + j;
            for (int i = 0; i < M; i += BC_MR) {
                int mr = M - i < BC_MR ? M - i : BC_MR;
                const float *a = A + i * sai + k0 * sak;
                float *c = C + (long)i * ldc + j;
                if (mr == BC_MR && nv == BC_NV && last == 0xFFFF) bc_full(kc, a, sai, sak, b, ldb, c, ldc, k0 > 0);
                else bc_tile(kc, a, sai, sak, b, ldb, c, ldc, mr, nv, last, k0 > 0);
            }
        }
    }
}
// ----------------------------------------------------------------------------
// AVX2 + FMA (for CPUs without AVX-512, such as AMD Zen 2): the same two forms with 8-lane vectors. These
// CPUs have 16 vector registers, not 32, and a 5-cycle FMA that issues twice per cycle, so each tile keeps 12
// accumulators (10 hide the latency): a 3×4 dot tile (12 + 3 rows of A + 1 row of B in flight = 16 registers)
// and a 6×16 broadcast tile (12 + 2 vectors of B + 1 broadcast), the register budget BLIS uses on Haswell.

#define TGT2 __attribute__((target("avx2,fma")))

static const int32_t lane_masks[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* The first `lanes` (0–8) lanes on, for _mm256_maskload_ps / _mm256_maskstore_ps. */
TGT2 INL __m256i first_lanes(int lanes) { return _mm256_loadu_si256((const __m256i *)(lane_masks + 8 - lanes)); }

/* (Σa, Σb, Σc, Σd) of four 8-lane vectors, each summed in the same order: ((0+1)+(2+3)) + ((4+5)+(6+7)). */
TGT2 INL __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 abcd = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* A 3×4 dot tile: C[r][c] = Σk A[r·lda + k] · B[c·ldb + k] for r < mi, c < nj; as nt_tile, rows past mi or nj
 * re-read the last valid row and are not stored. */
TGT2 INL void nt_tile8(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int mi, int nj) {
    const float *a[3], *b[4];
    for (int r = 0; r < 3; r++) a[r] = A + (long)(r < mi ? r : mi - 1) * lda;
    for (int c = 0; c < 4; c++) b[c] = B + (long)(c < nj ? c : nj - 1) * ldb;
    __m256 acc[3][4];
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 x[3];
        for (int r = 0; r < 3; r++) x[r] = _mm256_loadu_ps(a[r] + k);
        for (int c = 0; c < 4; c++) {
            __m256 y = _mm256_loadu_ps(b[c] + k);
            for (int r = 0; r < 3; r++) acc[r][c] = _mm256_fmadd_ps(x[r], y, acc[r][c]);
        }
    }
    if (k < K) {  // the last K % 8 elements, masked (masked-off lanes load as zero and touch no memory)
        __m256i m = first_lanes(K - k);
        __m256 x[3];
        for (int r = 0; r < 3; r++) x[r] = _mm256_maskload_ps(a[r] + k, m);
        for (int c = 0; c < 4; c++) {
            __m256 y = _mm256_maskload_ps(b[c] + k, m);
            for (int r = 0; r < 3; r++) acc[r][c] = _mm256_fmadd_ps(x[r], y, acc[r][c]);
        }
    }
    for (int r = 0; r < mi; r++) {
        __m128 s = hsum4x8(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        if (nj == 4) _mm_storeu_ps(C + (long)r * ldc, s);
        else {
            float t[4];
            _mm_storeu_ps(t, s);
            for (int c = 0; c < nj; c++) C[(long)r * ldc + c] = t[c];
        }
    }
}

/* As gemm_nt: blocks of NT_MB rows of A, columns in groups of 4 rows of B, tiles of 3 rows. */
TGT2 static void gemm_nt8(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    for (int i0 = 0; i0 < M; i0 += NT_MB) {
        int i1 = M - i0 < NT_MB ? M : i0 + NT_MB;
        for (int j = 0; j < N; j += 4) {
            int nj = N - j < 4 ? N - j : 4;
            for (int i = i0; i < i1; i += 3) {
                int mi = i1 - i < 3 ? i1 - i : 3;
                nt_tile8(K, A + (long)i * lda, lda, B + (long)j * ldb, ldb, C + (long)i * ldc + j, ldc, mi, nj);
            }
        }
    }
}

enum { BC8_MR = 6, BC8_NV = 2 };

/* A broadcast tile of mr ≤ 6 rows and nv ≤ 2 vectors of 8 columns, the last one `last` lanes wide (1–8);
 * `masked` 0 promises full vectors (plain loads and stores). Otherwise as bc_tile. */
TGT2 INL void bc_tile8(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc, int mr,
                       int nv, int last, int masked, int accumulate) {
    __m256i m = first_lanes(last);
    __m256 acc[BC8_MR][BC8_NV];
    for (int r = 0; r < BC8_MR; r++)
        for (int v = 0; v < BC8_NV; v++) acc[r][v] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *brow = B + (long)k * ldb;
        __m256 y[BC8_NV];
        for (int v = 0; v < BC8_NV; v++)
            if (v < nv) y[v] = masked && v == nv - 1 ? _mm256_maskload_ps(brow + 8 * v, m) : _mm256_loadu_ps(brow + 8 * v);
        for (int r = 0; r < BC8_MR && r < mr; r++) {
            __m256 x = _mm256_broadcast_ss(A + r * sai + k * sak);
            for (int v = 0; v < BC8_NV; v++)
                if (v < nv) acc[r][v] = _mm256_fmadd_ps(x, y[v], acc[r][v]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            float *c = C + (long)r * ldc + 8 * v;
            if (masked && v == nv - 1) {
                __m256 val = acc[r][v];
                if (accumulate) val = _mm256_add_ps(val, _mm256_maskload_ps(c, m));
                _mm256_maskstore_ps(c, m, val);
            } else {
                _mm256_storeu_ps(c, accumulate ? _mm256_add_ps(acc[r][v], _mm256_loadu_ps(c)) : acc[r][v]);
            }
        }
}

TGT2 static void bc_full8(int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc,
                          int accumulate) {
    bc_tile8(K, A, sai, sak, B, ldb, C, ldc, BC8_MR, BC8_NV, 8, 0, accumulate);
}

/* As gemm_bc: blocks of BC_KC along K, panels of 16 columns of B (256 × 16 floats, 16 KB, stay in L1), tiles of
 * 6 rows. */
TGT2 static void gemm_bc8(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                          int ldc) {
    for (int k0 = 0; k0 < K; k0 += BC_KC) {
        int kc = K - k0 < BC_KC ? K - k0 : BC_KC;
        for (int j = 0; j < N; j += 8 * BC8_NV) {
            int nj = N - j < 8 * BC8_NV ? N - j : 8 * BC8_NV, nv = (nj + 7) / 8, last = nj - 8 * (nv - 1);
            const float *b = B + (long)k0 * ldb + j;
            for (int i = 0; i < M; i += BC8_MR) {
                int mr = M - i < BC8_MR ? M - i : BC8_MR;
                const float *a = A + i * sai + k0 * sak;
                float *c = C + (long)i * ldc + j;
                if (mr == BC8_MR && nj == 8 * BC8_NV) bc_full8(kc, a, sai, sak, b, ldb, c, ldc, k0 > 0);
                else bc_tile8(kc, a, sai, sak, b, ldb, c, ldc, mr, nv, last, last < 8, k0 > 0);
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
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
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
            if (transB) gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
            else gemm_bc(M, N, K, A, sai, sak, B, ldb, C, ldc);
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
