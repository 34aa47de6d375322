/* gemm_avx512.c — gemm.c's AVX-512 kernels (the design, the summation order and the tests are described there).
 *
 * A file of its own because its intrinsics need <immintrin.h>, whose parse alone takes 0.9 s of clang: on a CPU
 * that -march=native says has AVX2 but no AVX-512 (so these kernels could never run) the file compiles to the
 * stubs at its end, and a cold `nncc compile` does not pay for the header. Without -march (the runtime's own
 * tests) the kernels are always built and gemm.c asks the CPU at run time. */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__)) && !(defined(__AVX2__) && !defined(__AVX512F__))
#include <immintrin.h>
#define TGT __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define INL static inline __attribute__((always_inline))

const int nnrt_gemm512_built = 1;

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
TGT void nnrt_gemm512_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
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
TGT void nnrt_gemm512_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
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
#else
const int nnrt_gemm512_built = 0;

void nnrt_gemm512_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C, (void)ldc;
    nnrt_die("internal error: the AVX-512 GEMM kernels were not built for this CPU");
}

void nnrt_gemm512_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc) {
    (void)M, (void)N, (void)K, (void)A, (void)sai, (void)sak, (void)B, (void)ldb, (void)C, (void)ldc;
    nnrt_die("internal error: the AVX-512 GEMM kernels were not built for this CPU");
}
#endif
