/* gemm_avx512.c — gemm.c's AVX-512 kernels (the design, the summation order and the tests are described there).
 *
 * A file of its own because its intrinsics need <immintrin.h>, whose parse alone takes 0.9 s of clang: on a CPU
 * that -march=native says has AVX2 but no AVX-512 (so these kernels could never run) the file compiles to the
 * stubs at its end, and a cold `nncc compile` does not pay for the header. Without -march (the runtime's own
 * tests) the kernels are always built and gemm.c asks the CPU at run time. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "nnrt_compute.h"
#include "nnrt_io.h"

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

enum { BC_MR = 6, BC_NV = 4, BC_KC = NNRT_BC_KC };

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

/* One K block (kc ≤ BC_KC elements) of the dense broadcast form for M rows: panels of 64 columns of B (a 256 × 64
 * panel is 64 KB), tiles of 6 rows. `accumulate`: C += the block's sums, else C = them. */
TGT static void bc_kblock(int M, int N, int kc, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                          int ldc, int accumulate) {
    for (int j = 0; j < N; j += 16 * BC_NV) {
        int nj = N - j < 16 * BC_NV ? N - j : 16 * BC_NV, nv = (nj + 15) / 16;
        __mmask16 last = (__mmask16)(nj % 16 ? (1u << (nj % 16)) - 1 : 0xFFFF);
        for (int i = 0; i < M; i += BC_MR) {
            int mr = M - i < BC_MR ? M - i : BC_MR;
            const float *a = A + i * sai;
            float *c = C + (long)i * ldc + j;
            if (mr == BC_MR && nv == BC_NV && last == 0xFFFF) bc_full(kc, a, sai, sak, B + j, ldb, c, ldc, accumulate);
            else bc_tile(kc, a, sai, sak, B + j, ldb, c, ldc, mr, nv, last, accumulate);
        }
    }
}

/* ----------------------------------------------------------------------------
 * The broadcast form skipping the zeros of op(A), as gemm.c's AVX2 set does (the reasoning, and why the result is
 * bit-identical to the dense tiles', is there): for each row of C, a bit mask per 64 elements of K marks the
 * non-zero elements of its row of op(A), and the row's sums run over the set bits only, one broadcast and up to
 * SP_NV vectors of 16 columns of B per non-zero element. Strips of columns as even as SP_NV allows (784 columns:
 * 7 strips of 7 vectors), in each the K block's sub-blocks of 64, in each all rows: a sub-block's rows of a strip
 * (64 × 448 bytes, 28 KB) stay in L1 while every row of C visits them. B's rows a multiple of 512 bytes apart are
 * first copied to `pack`, or they would fall into a few of L1's sets.
 *
 * One row at a time, each vector of B loaded serves one multiply-add, and at full density the rows took 1.5× the
 * dense tiles' time (AMD Zen 5, bench/gemm_sparse.c). So rows go in pairs where their non-zeros overlap: a pair
 * runs over the union of its two rows' bits, each vector of B serving both (1.4× one row's time per element of
 * the union, measured at full density), and is taken when the union has fewer than SP_PAIR times the two rows'
 * elements together. With pairs, the sparse path breaks even with the dense tiles at a density of 0.7 (the AVX2
 * set's single rows on Zen 2: 0.8–0.85), hence SP_DENSE; at full density it is 8–12 % slower, and at 0.3 it takes
 * 0.55–0.6 of the dense time. 8 vectors a strip, not 12: no faster, and the strip's rows then overflow L1. */
enum { SP_NV = 8 };
#define SP_DENSE 0.7
#define SP_PAIR 0.71
enum { SP_ROWS = NNRT_SP_ROWS, SP_NSUB = NNRT_SP_NSUB };

TGT INL __mmask16 lanes16(int n) { return (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1); }

/* Row sums over the set bits of `bits` (k = each one's position):
 *   out[16v…] (+)= from + Σk a[k·sak] · B[k·ldb + 16v…]
 * for the first nv vectors, the last one masked to `last`; `from` (partial sums of the sub-blocks before, or NULL
 * for zero) starts them; `accumulate` adds the sums to what `out` holds. */
TGT INL void sp_row(uint64_t bits, const float *a, long sak, const float *B, long ldb, const float *from, float *out,
                    int nv, __mmask16 last, int accumulate) {
    __m512 acc[SP_NV];
    for (int v = 0; v < SP_NV; v++)
        if (v < nv) acc[v] = from ? _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xFFFF, from + 16 * v) : _mm512_setzero_ps();
    for (; bits; bits &= bits - 1) {
        long k = __builtin_ctzll(bits);
        const float *brow = B + k * ldb;
        __m512 x = _mm512_set1_ps(a[k * sak]);
        for (int v = 0; v < SP_NV; v++)
            if (v < nv) {
                __m512 y = v == nv - 1 ? _mm512_maskz_loadu_ps(last, brow + 16 * v) : _mm512_loadu_ps(brow + 16 * v);
                acc[v] = _mm512_fmadd_ps(x, y, acc[v]);
            }
    }
    for (int v = 0; v < nv; v++) {
        float *c = out + 16 * v;
        __mmask16 m = v == nv - 1 ? last : 0xFFFF;
        __m512 val = acc[v];
        if (accumulate) val = _mm512_add_ps(val, _mm512_maskz_loadu_ps(m, c));
        _mm512_mask_storeu_ps(c, m, val);
    }
}

/* Two rows of C at once, over the union of their bits: each vector of B loaded serves both rows, and a row's
 * multiply-adds by its own zeros leave its sums as they were (fma(±0, b, s) is s for finite b and s ≠ −0, and the
 * sums are never −0), so each row's result is still bit-identical to the dense tiles'. */
TGT INL void sp_row2(uint64_t b0, uint64_t b1, const float *a0, const float *a1, long sak, const float *B, long ldb,
                     const float *from0, const float *from1, float *out0, float *out1, int nv, __mmask16 last,
                     int accumulate) {
    __m512 acc0[SP_NV], acc1[SP_NV];
    for (int v = 0; v < SP_NV; v++)
        if (v < nv) {
            __mmask16 m = v == nv - 1 ? last : 0xFFFF;
            acc0[v] = from0 ? _mm512_maskz_loadu_ps(m, from0 + 16 * v) : _mm512_setzero_ps();
            acc1[v] = from1 ? _mm512_maskz_loadu_ps(m, from1 + 16 * v) : _mm512_setzero_ps();
        }
    for (uint64_t bits = b0 | b1; bits; bits &= bits - 1) {
        long k = __builtin_ctzll(bits);
        const float *brow = B + k * ldb;
        __m512 x0 = _mm512_set1_ps(a0[k * sak]), x1 = _mm512_set1_ps(a1[k * sak]);
        for (int v = 0; v < SP_NV; v++)
            if (v < nv) {
                __m512 y = v == nv - 1 ? _mm512_maskz_loadu_ps(last, brow + 16 * v) : _mm512_loadu_ps(brow + 16 * v);
                acc0[v] = _mm512_fmadd_ps(x0, y, acc0[v]);
                acc1[v] = _mm512_fmadd_ps(x1, y, acc1[v]);
            }
    }
    for (int v = 0; v < nv; v++) {
        __mmask16 m = v == nv - 1 ? last : 0xFFFF;
        __m512 v0 = acc0[v], v1 = acc1[v];
        if (accumulate) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m, out0 + 16 * v));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m, out1 + 16 * v));
        }
        _mm512_mask_storeu_ps(out0 + 16 * v, m, v0);
        _mm512_mask_storeu_ps(out1 + 16 * v, m, v1);
    }
}

typedef void (*sp_pair_fn)(uint64_t, uint64_t, const float *, const float *, long, const float *, long, const float *,
                           const float *, float *, float *, int);
#define SP_PAIRFN(NV)                                                                                               \
    TGT static void sp_pair##NV(uint64_t b0, uint64_t b1, const float *a0, const float *a1, long sak, const float *B, \
                                long ldb, const float *from0, const float *from1, float *out0, float *out1,         \
                                int accumulate) {                                                                   \
        sp_row2(b0, b1, a0, a1, sak, B, ldb, from0, from1, out0, out1, NV, 0xFFFF, accumulate);                     \
    }
SP_PAIRFN(4)
SP_PAIRFN(5)
SP_PAIRFN(6)
SP_PAIRFN(7)
SP_PAIRFN(8)
static const sp_pair_fn sp_pairs[SP_NV + 1] = {[4] = sp_pair4, [5] = sp_pair5, [6] = sp_pair6, [7] = sp_pair7, [8] = sp_pair8};

/* Whole strips of 4–SP_NV vectors with constant sizes, so that the accumulators stay in registers. */
typedef void (*sp_strip_fn)(uint64_t, const float *, long, const float *, long, const float *, float *, int);
#define SP_STRIP(NV)                                                                                                \
    TGT static void sp_strip##NV(uint64_t bits, const float *a, long sak, const float *B, long ldb, const float *from, \
                                 float *out, int accumulate) {                                                       \
        sp_row(bits, a, sak, B, ldb, from, out, NV, 0xFFFF, accumulate);                                             \
    }
SP_STRIP(4)
SP_STRIP(5)
SP_STRIP(6)
SP_STRIP(7)
SP_STRIP(8)
static const sp_strip_fn sp_strips[SP_NV + 1] = {[4] = sp_strip4, [5] = sp_strip5, [6] = sp_strip6, [7] = sp_strip7,
                                                 [8] = sp_strip8};

/* nz[r][q] for rows r0 ≤ r < r1: bit k of the row r's elements 64q + k of op(A) that are non-zero (NaN counts as
 * non-zero); returns how many are. */
TGT static long sp_bits(int r0, int r1, int kc, const float *a, long sai, long sak, uint64_t nz[][SP_NSUB]) {
    long count = 0;
    const __m512 zero = _mm512_setzero_ps();
    memset(nz[r0], 0, sizeof(uint64_t) * SP_NSUB * (size_t)(r1 - r0));
    if (sak == 1) {  // rows along k (NN: dY·W): 16 elements of a row at a time
        for (int r = r0; r < r1; r++)
            for (int k = 0; k < kc; k += 16) {
                __mmask16 lm = lanes16(kc - k);
                __mmask16 ne = _mm512_mask_cmp_ps_mask(lm, _mm512_maskz_loadu_ps(lm, a + r * sai + k), zero, _CMP_NEQ_UQ);
                nz[r][k / 64] |= (uint64_t)ne << (k % 64);
            }
    } else if (sai == 1) {  // rows across k (TN: dYᵀ·X): 16 rows at a time, 32 bits of each in a lane
        for (int i = r0; i < r1; i += 16) {
            int lanes = r1 - i < 16 ? r1 - i : 16;
            __mmask16 lm = lanes16(lanes);
            for (int k0 = 0; k0 < kc; k0 += 32) {
                __m512i bits = _mm512_setzero_si512();
                for (int k = 0; k < 32 && k0 + k < kc; k++) {
                    __m512 x = _mm512_maskz_loadu_ps(lm, a + i + (long)(k0 + k) * sak);
                    __mmask16 ne = _mm512_mask_cmp_ps_mask(lm, x, zero, _CMP_NEQ_UQ);
                    bits = _mm512_mask_or_epi32(bits, ne, bits, _mm512_set1_epi32((int)(1u << k)));
                }
                uint32_t lane[16];
                _mm512_storeu_si512(lane, bits);
                for (int l = 0; l < lanes; l++) nz[i + l][k0 / 64] |= (uint64_t)lane[l] << (k0 % 64);
            }
        }
    } else {
        for (int k = 0; k < kc; k++)
            for (int r = r0; r < r1; r++) nz[r][k / 64] |= (uint64_t)(a[r * sai + k * sak] != 0.0f) << (k % 64);
    }
    for (int r = r0; r < r1; r++)
        for (int q = 0; q < SP_NSUB; q++) count += __builtin_popcountll(nz[r][q]);
    return count;
}

/* The sparse path for one group of mr ≤ SP_ROWS rows and one K block (k0: where it starts; nz: the group's bits). */
TGT static void sp_group(int mr, int N, int kc, int k0, const float *a, long sai, long sak, const float *b, int ldb,
                         float *c, int ldc, uint64_t nz[][SP_NSUB]) {
    static _Thread_local _Alignas(64) float part[SP_ROWS][16 * SP_NV], pack[64 * 16 * SP_NV];
    int nsub = (kc + 63) / 64;
    int nvec = (N + 15) / 16, nstrip = (nvec + SP_NV - 1) / SP_NV;
    for (int t = 0, j = 0; t < nstrip; t++) {
        int nv = nvec / nstrip + (t < nvec % nstrip), nj = N - j < 16 * nv ? N - j : 16 * nv;
        __mmask16 last = lanes16(nj - 16 * (nv - 1));
        sp_strip_fn full = last == 0xFFFF && nv >= 4 ? sp_strips[nv] : NULL;
        for (int q = 0; q < nsub; q++) {
            const float *bs = b + (long)64 * q * ldb + j;
            long lds = ldb;
            if (ldb % 128 == 0) {  // the sub-block's rows that some row's bits visit, to consecutive lines
                uint64_t used = 0;
                for (int r = 0; r < mr; r++) used |= nz[r][q];
                for (uint64_t u = used; u; u &= u - 1) {
                    int k = __builtin_ctzll(u);
                    const float *src = bs + (long)k * ldb;
                    for (int v = 0; v < nv; v++)
                        _mm512_storeu_ps(pack + k * 16 * SP_NV + 16 * v,
                                         _mm512_maskz_loadu_ps(v == nv - 1 ? last : 0xFFFF, src + 16 * v));
                }
                bs = pack, lds = 16 * SP_NV;
            }
            // The first K block's sums continue in C itself, sub-block after sub-block, in order; a later
            // block's go through part and are then added to C.
            int acc = k0 > 0 && q == nsub - 1, r = 0;
            const float *from[2];
            float *out[2];
            sp_pair_fn pfull = full ? sp_pairs[nv] : NULL;
            for (; pfull && r + 1 < mr; r += 2) {
                uint64_t b0 = nz[r][q], b1 = nz[r + 1][q];
                const float *a0 = a + r * sai + 64 * q * sak;
                for (int t = 0; t < 2; t++) {
                    float *crow = c + (long)(r + t) * ldc + j, *prow = part[r + t];
                    from[t] = q == 0 ? NULL : k0 == 0 ? crow : prow;
                    out[t] = k0 == 0 || q == nsub - 1 ? crow : prow;
                }
                if (__builtin_popcountll(b0 | b1) < SP_PAIR * (__builtin_popcountll(b0) + __builtin_popcountll(b1)))
                    pfull(b0, b1, a0, a0 + sai, sak, bs, lds, from[0], from[1], out[0], out[1], acc);
                else {
                    full(b0, a0, sak, bs, lds, from[0], out[0], acc);
                    full(b1, a0 + sai, sak, bs, lds, from[1], out[1], acc);
                }
            }
            for (; r < mr; r++) {
                float *crow = c + (long)r * ldc + j, *prow = part[r];
                const float *ar = a + r * sai + 64 * q * sak;
                const float *fr = q == 0 ? NULL : k0 == 0 ? crow : prow;
                float *o = k0 == 0 || q == nsub - 1 ? crow : prow;
                if (full) full(nz[r][q], ar, sak, bs, lds, fr, o, acc);
                else sp_row(nz[r][q], ar, sak, bs, lds, fr, o, nv, last, acc);
            }
        }
        j += nj;
    }
}

static const nnrt_bc_kernels bc_kernels = {sp_bits, bc_kblock, sp_group, SP_DENSE};

/* The broadcast form (NN, TN), planned by gemm.c as for the AVX2 set. */
TGT void nnrt_gemm512_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                        int ldc) {
    nnrt_gemm_bc_plan(&bc_kernels, M, N, K, A, sai, sak, B, ldb, C, ldc);
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
