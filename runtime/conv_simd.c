/* conv_simd.c — conv.c's vector kernels (conv_kernels.h), built twice from conv_simd.inc: for AVX-512 and for
 * AVX2 + FMA, each with a target attribute whatever -march says; conv.c picks the set nnrt_sgemm picks
 * (nnrt_gemm_own_kernels: the CPU's features, NNRT_GEMM in the environment). */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <string.h>

#include "conv_kernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define INL static inline __attribute__((always_inline))
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)

// ----------------------------------------------------------------------------
// AVX-512: 32 registers; forward tiles 4 × 6 vectors (24 accumulators), backward blocks of up to 24 vectors
typedef float v16f __attribute__((vector_size(64)));
#define VL 16
#define VT v16f
#define TGT __attribute__((target("avx512f,avx512vl,avx512dq,fma")))
#define F(name) CAT(k512, name)
#define NV 6
#define NWMAX 8
#define NBMAX 24
/* p[0..n) = the first n lanes of v (0 ≤ n ≤ VL) */
TGT INL void k512_stn(float *p, v16f v, int n) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v); }
/* off[0..cnt), val[0..cnt) = tab[p], dy[p] for the p < n where dy[p] ≠ 0 (NaN counts as non-zero); returns cnt.
   Writes up to VL − 1 entries past n. AVX-512: compress 16 at a time. */
TGT static int k512_scan(const float *dy, const int *tab, int n, int *off, float *val) {
    int cnt = 0, p = 0;
    for (; p + 16 <= n; p += 16) {
        __m512 v = _mm512_loadu_ps(dy + p);
        __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_ps(val + cnt, _mm512_maskz_compress_ps(m, v));
        _mm512_storeu_si512((void *)(off + cnt), _mm512_maskz_compress_epi32(m, _mm512_loadu_si512((const void *)(tab + p))));
        cnt += __builtin_popcount(m);
    }
    for (; p < n; p++) off[cnt] = tab[p], val[cnt] = dy[p], cnt += dy[p] != 0.0f;
    return cnt;
}
/* off[0..), val[0..) = the lanes of offs and v that keep (−1 or 0 per lane) selects, in lane order; returns their
   count. Writes up to VL entries. */
typedef int v16i __attribute__((vector_size(64)));
TGT static int k512_pack(v16f v, v16i offs, v16i keep, int *off, float *val) {
    __mmask16 m = _mm512_test_epi32_mask((__m512i)keep, (__m512i)keep);
    _mm512_storeu_ps(val, _mm512_maskz_compress_ps(m, (__m512)v));
    _mm512_storeu_si512((void *)off, _mm512_maskz_compress_epi32(m, (__m512i)offs));
    return __builtin_popcount(m);
}
#include "conv_simd.inc"
#undef VL
#undef VT
#undef TGT
#undef F
#undef NV
#undef NWMAX
#undef NBMAX

// ----------------------------------------------------------------------------
// AVX2 + FMA: 16 registers; forward tiles 4 × 3 vectors (12 accumulators), backward blocks of up to 12 vectors
typedef float v8f __attribute__((vector_size(32)));
#define VL 8
#define VT v8f
#define TGT __attribute__((target("avx2,fma")))
#define F(name) CAT(k256, name)
#define NV 3
#define NWMAX 6
#define NBMAX 12
/* as k512_scan: branch-free scalar compaction */
TGT static int k256_scan(const float *dy, const int *tab, int n, int *off, float *val) {
    int cnt = 0;
    for (int p = 0; p < n; p++) off[cnt] = tab[p], val[cnt] = dy[p], cnt += dy[p] != 0.0f;
    return cnt;
}
typedef int v8i __attribute__((vector_size(32)));
TGT static int k256_pack(v8f v, v8i offs, v8i keep, int *off, float *val) {
    int cnt = 0;
    for (int l = 0; l < 8; l++) off[cnt] = offs[l], val[cnt] = v[l], cnt += keep[l] != 0;
    return cnt;
}
TGT INL void k256_stn(float *p, v8f v, int n) {
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane), (__m256)v);
}
#include "conv_simd.inc"

const nnrt_conv_kernels *const nnrt_conv_k512 = &k512_set, *const nnrt_conv_k256 = &k256_set;
#else
const nnrt_conv_kernels *const nnrt_conv_k512 = NULL, *const nnrt_conv_k256 = NULL;
#endif
