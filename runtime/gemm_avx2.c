/* gemm_avx2.c — gemm.c's AVX2 + FMA kernels (the design, the summation order and the tests are described there),
 * in GCC/clang vector extensions rather than <immintrin.h> intrinsics, so that this file compiles in 0.3 s rather
 * than 1.2 s (a cold `nncc compile` builds the whole runtime). Built on every x86-64 compile (target attributes),
 * chosen by gemm.c at run time. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "nnrt_compute.h"
#include "nnrt_io.h"

/* The blocking, as in gemm_avx512.c: rows of A per block of the dot form (128 × 784 floats is 400 KB), rows
 * per broadcast tile, and the K block of the broadcast form (which sets the summation order). */
enum { NT_MB = 128, BC_MR = 6, BC_KC = NNRT_BC_KC };

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#define INL static inline __attribute__((always_inline))

// ----------------------------------------------------------------------------
// AVX2 + FMA (for CPUs without AVX-512, such as AMD Zen 2): the same two forms with 8-lane vectors. These
// CPUs have 16 vector registers, not 32, and a 5-cycle FMA that issues twice per cycle, so each tile keeps 12
// accumulators (10 hide the latency): a 3×4 dot tile (12 + 3 rows of A + 1 row of B in flight = 16 registers)
// and a 6×16 broadcast tile (12 + 2 vectors of B + 1 broadcast), the register budget BLIS uses on Haswell.

#define TGT2 __attribute__((target("avx2,fma")))
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));

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

/* (Σa, Σb, Σc, Σd) of four 8-lane vectors, each summed in the same order: ((0+1)+(2+3)) + ((4+5)+(6+7)). */
TGT2 INL v4f hsum4x8(v8f a, v8f b, v8f c, v8f d) {
    v8f abcd = __builtin_ia32_haddps256(__builtin_ia32_haddps256(a, b), __builtin_ia32_haddps256(c, d));
    return __builtin_shufflevector(abcd, abcd, 0, 1, 2, 3) + __builtin_shufflevector(abcd, abcd, 4, 5, 6, 7);
}

/* A 3×4 dot tile: C[r][c] = Σk A[r·lda + k] · B[c·ldb + k] for r < mi, c < nj. Rows past mi or nj re-read the
 * last valid row (so every load stays inside the operands) and are not stored. */
TGT2 INL void nt_tile8(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int mi, int nj) {
    const float *a[3], *b[4];
    for (int r = 0; r < 3; r++) a[r] = A + (long)(r < mi ? r : mi - 1) * lda;
    for (int c = 0; c < 4; c++) b[c] = B + (long)(c < nj ? c : nj - 1) * ldb;
    v8f acc[3][4] = {{{0}}};
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        v8f x[3];
        for (int r = 0; r < 3; r++) x[r] = load8(a[r] + k);
        for (int c = 0; c < 4; c++) {
            v8f y = load8(b[c] + k);
            for (int r = 0; r < 3; r++) acc[r][c] = fma8(x[r], y, acc[r][c]);
        }
    }
    if (k < K) {  // the last K % 8 elements, masked
        v8i m = first_lanes(K - k);
        v8f x[3];
        for (int r = 0; r < 3; r++) x[r] = maskload8(a[r] + k, m);
        for (int c = 0; c < 4; c++) {
            v8f y = maskload8(b[c] + k, m);
            for (int r = 0; r < 3; r++) acc[r][c] = fma8(x[r], y, acc[r][c]);
        }
    }
    for (int r = 0; r < mi; r++) {  // a constant-size copy for whole tiles: a variable one is a call to memcpy
        v4f s = hsum4x8(acc[r][0], acc[r][1], acc[r][2], acc[r][3]);
        if (nj == 4) memcpy(C + (long)r * ldc, &s, sizeof s);
        else
            for (int c = 0; c < nj; c++) C[(long)r * ldc + c] = s[c];
    }
}

/* Blocks of NT_MB rows of A, and in each, columns in groups of 4 rows of B (they stay in L1 while the block of
 * A streams past them), tiles of 3 rows: the dot form (NT). */
TGT2 void nnrt_gemm256_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
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

/* One K block (kc ≤ BC_KC elements) of the broadcast form for M rows: panels of 16 columns of B (256 × 16 floats,
 * 16 KB, stay in L1), tiles of 6 rows. `accumulate`: C += the block's sums, else C = them. */
TGT2 static void bc8_kblock(int M, int N, int kc, const float *A, long sai, long sak, const float *B, int ldb,
                            float *C, int ldc, int accumulate) {
    for (int j = 0; j < N; j += 8 * BC8_NV) {
        int nj = N - j < 8 * BC8_NV ? N - j : 8 * BC8_NV, nv = (nj + 7) / 8, last = nj - 8 * (nv - 1);
        for (int i = 0; i < M; i += BC_MR) {
            int mr = M - i < BC_MR ? M - i : BC_MR;
            const float *a = A + i * sai;
            float *c = C + (long)i * ldc + j;
            if (mr == BC_MR && nj == 8 * BC8_NV) bc_full8(kc, a, sai, sak, B + j, ldb, c, ldc, accumulate);
            else bc_tile8(kc, a, sai, sak, B + j, ldb, c, ldc, mr, nv, last, last < 8, accumulate);
        }
    }
}

/* ----------------------------------------------------------------------------
 * The broadcast form skipping the zeros of op(A). In the backward pass op(A) is mostly a gradient masked by
 * ReLU's derivative (dW = dYᵀ·X and dX = dY·W with dY = dA ⊙ [Y > 0]): for the MLP of the README, 35–65 % of
 * it is non-zero, fewer as training goes on, and some units are dead for a whole batch. For each row of C, a
 * bit mask per 64 elements of K marks the non-zero elements of its row of op(A), and the row's sums run over the
 * set bits only: one broadcast and up to SP_NV vectors of B per non-zero element.
 *
 * The result is bit-identical to the dense tiles' (bc8_kblock): each element of C gets the same fused
 * multiply-adds in the same order (K in order, blocks of BC_KC), less those whose op(A) factor is zero, and
 * fma(0, b, s) is s for finite b (also for s = +0, where the sums start). So whether a GEMM takes this path
 * changes its time, never its result (unless B holds an infinity or NaN that a zero of op(A) would have
 * multiplied into NaN).
 *
 * Each element of B loaded serves one multiply-add here, against six in the dense tiles, so a group of rows whose
 * op(A) is more than SP_DENSE non-zero takes the dense tiles instead (break-even measured at 0.8–0.85 by
 * bench/gemm_sparse.c); when a group's first 8 rows are, so do all the rows left. The loops: strips of columns (784
 * columns: 7 of 14 vectors), in each the K block's sub-blocks of 64, and in each all rows, so that the sub-block's
 * rows of the strip (64 × 448 bytes) stay in L1 while every row of C visits them. When B's rows are a multiple of
 * 512 bytes apart (256 floats, say), 64 of them fall into a few of L1's 64 sets and evict each other, so the rows
 * visited are first copied to `pack`. */
enum { SP_NV = 14, SP_ROWS = NNRT_SP_ROWS, SP_NSUB = NNRT_SP_NSUB };
#define SP_DENSE 0.8

/* Row sums over the set bits of `bits` (k = each one's position):
 *   out[8v…] (+)= from + Σk a[k·sak] · B[k·ldb + 8v…]
 * for the first nv vectors, the last one masked to m; `from` (partial sums of the sub-blocks before, or NULL for
 * zero) starts them. */
TGT2 INL void sp_row8(uint64_t bits, const float *a, long sak, const float *B, long ldb, const float *from, float *out,
                      int nv, v8i m, int masked, int accumulate) {
    v8f acc[SP_NV] = {{0}};
    if (from)
        for (int v = 0; v < SP_NV; v++)
            if (v < nv) acc[v] = masked && v == nv - 1 ? maskload8(from + 8 * v, m) : load8(from + 8 * v);
    for (; bits; bits &= bits - 1) {
        long k = __builtin_ctzll(bits);
        const float *brow = B + k * ldb;
        v8f x = splat8(a[k * sak]);
        for (int v = 0; v < SP_NV; v++)
            if (v < nv) {
                v8f y = masked && v == nv - 1 ? maskload8(brow + 8 * v, m) : load8(brow + 8 * v);
                acc[v] = fma8(x, y, acc[v]);
            }
    }
    for (int v = 0; v < nv; v++) {
        float *c = out + 8 * v;
        if (masked && v == nv - 1) maskstore8(c, m, accumulate ? acc[v] + maskload8(c, m) : acc[v]);
        else store8(c, accumulate ? acc[v] + load8(c) : acc[v]);
    }
}

/* Full strips of 8–14 vectors with constant sizes, so that the accumulators stay in registers. */
#define SP_STRIP(NV)                                                                                                \
    TGT2 static void sp_strip##NV(uint64_t bits, const float *a, long sak, const float *B, long ldb,                \
                                  const float *from, float *out, int accumulate) {                                   \
        sp_row8(bits, a, sak, B, ldb, from, out, NV, first_lanes(8), 0, accumulate);                                 \
    }
SP_STRIP(8)
SP_STRIP(9)
SP_STRIP(10)
SP_STRIP(11)
SP_STRIP(12)
SP_STRIP(13)
SP_STRIP(14)
typedef void (*sp_strip_fn)(uint64_t, const float *, long, const float *, long, const float *, float *, int);
static const sp_strip_fn sp_strips[SP_NV + 1] = {[8] = sp_strip8,   [9] = sp_strip9,   [10] = sp_strip10,
                                                 [11] = sp_strip11, [12] = sp_strip12, [13] = sp_strip13,
                                                 [14] = sp_strip14};

/* nz[r][q] for rows r0 ≤ r < r1: bit k of the row r's elements k0 + 64q + k of op(A) that are non-zero; returns
 * how many are. */
TGT2 static long sp_bits8(int r0, int r1, int kc, const float *a, long sai, long sak, uint64_t nz[][SP_NSUB]) {
    long count = 0;
    memset(nz[r0], 0, sizeof(uint64_t) * SP_NSUB * (size_t)(r1 - r0));
    if (sak == 1) {  // rows along k (NN: dY·W)
        for (int r = r0; r < r1; r++)
            for (int k = 0; k < kc; k += 8) {
                int lanes = kc - k < 8 ? kc - k : 8;
                v8i ne = (v8i)(maskload8(a + r * sai + k, first_lanes(lanes)) != splat8(0.0f));
                uint64_t m = (uint64_t)__builtin_ia32_movmskps256((v8f)ne);
                nz[r][k / 64] |= m << (k % 64);
            }
    } else if (sai == 1) {  // rows across k (TN: dYᵀ·X): 8 rows at a time, 32 bits of each in a lane
        for (int i = r0; i < r1; i += 8) {
            int lanes = r1 - i < 8 ? r1 - i : 8;
            v8i m = first_lanes(lanes);
            for (int k0 = 0; k0 < kc; k0 += 32) {
                v8i bits = {0};
                for (int k = 0; k < 32 && k0 + k < kc; k++) {
                    v8i ne = (v8i)(maskload8(a + i + (long)(k0 + k) * sak, m) != splat8(0.0f));
                    int bit = (int)(1u << k);
                    bits |= ne & (v8i){bit, bit, bit, bit, bit, bit, bit, bit};
                }
                for (int l = 0; l < lanes; l++) nz[i + l][k0 / 64] |= (uint64_t)(uint32_t)bits[l] << (k0 % 64);
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
TGT2 static void sp_group8(int mr, int N, int kc, int k0, const float *a, long sai, long sak, const float *b, int ldb,
                           float *c, int ldc, uint64_t nz[][SP_NSUB]) {
    static _Thread_local _Alignas(32) float part[SP_ROWS][8 * SP_NV], pack[64 * 8 * SP_NV];
    int nsub = (kc + 63) / 64;
    // Strips as even as SP_NV allows (784 columns: 7 of 14 vectors; 256: 11, 11 and 10).
    int nvec = (N + 7) / 8, nstrip = (nvec + SP_NV - 1) / SP_NV;
    for (int t = 0, j = 0; t < nstrip; t++) {
        int nv = nvec / nstrip + (t < nvec % nstrip), nj = N - j < 8 * nv ? N - j : 8 * nv;
        int last = nj - 8 * (nv - 1);
        sp_strip_fn full = last == 8 ? sp_strips[nv] : NULL;
        v8i m = first_lanes(last);
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
                        store8(pack + k * 8 * SP_NV + 8 * v, v == nv - 1 ? maskload8(src + 8 * v, m) : load8(src + 8 * v));
                }
                bs = pack, lds = 8 * SP_NV;
            }
            for (int r = 0; r < mr; r++) {
                // The first K block's sums continue in C itself, sub-block after sub-block, in order; a later
                // block's go through part and are then added to C.
                float *crow = c + (long)r * ldc + j, *prow = part[r];
                const float *ar = a + r * sai + 64 * q * sak, *bq = bs;
                const float *from = q == 0 ? NULL : k0 == 0 ? crow : prow;
                float *out = k0 == 0 || q == nsub - 1 ? crow : prow;
                int acc = k0 > 0 && q == nsub - 1;
                if (full) full(nz[r][q], ar, sak, bq, lds, from, out, acc);
                else sp_row8(nz[r][q], ar, sak, bq, lds, from, out, nv, m, last < 8, acc);
            }
        }
        j += nj;
    }
}

static const nnrt_bc_kernels bc8_kernels = {sp_bits8, bc8_kblock, sp_group8, SP_DENSE};

/* The broadcast form (NN, TN), planned by gemm_plan.c as for the AVX-512 set. */
TGT2 void nnrt_gemm256_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C,
                          int ldc) {
    nnrt_gemm_bc_plan(&bc8_kernels, M, N, K, A, sai, sak, B, ldb, C, ldc);
}
#else
void nnrt_gemm256_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B, (void)ldb, (void)C, (void)ldc;
    nnrt_die("internal error: the AVX2 GEMM kernels are not built for this CPU");
}

void nnrt_gemm256_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc) {
    (void)M, (void)N, (void)K, (void)A, (void)sai, (void)sak, (void)B, (void)ldb, (void)C, (void)ldc;
    nnrt_die("internal error: the AVX2 GEMM kernels are not built for this CPU");
}
#endif
