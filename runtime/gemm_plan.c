/* gemm_plan.c — the broadcast form's plan, the same for both kernel sets (gemm_avx2.c, gemm_avx512.c): blocks of
 * NNRT_BC_KC along K and, in each, groups of rows that skip op(A)'s zeros unless they are dense. The plan fixes the
 * summation order (K in order, blocks of 256), so both sets give the same result bit for bit. */
#include <stdint.h>

#include "nnrt_compute.h"

/* A probe of a group's first 8 rows comes first: when they are dense (BatchNorm's gradient, say), the dense tiles
 * take all the rows left in one go, at little more than their own cost. */
void nnrt_gemm_bc_plan(const nnrt_bc_kernels *kern, int M, int N, int K, const float *A, long sai, long sak,
                       const float *B, int ldb, float *C, int ldc) {
    uint64_t nz[NNRT_SP_ROWS][NNRT_SP_NSUB];
    for (int k0 = 0; k0 < K; k0 += NNRT_BC_KC) {
        int kc = K - k0 < NNRT_BC_KC ? K - k0 : NNRT_BC_KC;
        const float *b = B + (long)k0 * ldb;
        for (int i0 = 0; i0 < M; i0 += NNRT_SP_ROWS) {
            int mr = M - i0 < NNRT_SP_ROWS ? M - i0 : NNRT_SP_ROWS, probe = mr < 8 ? mr : 8;
            const float *a = A + i0 * sai + k0 * sak;
            float *c = C + (long)i0 * ldc;
            long nonzero = kern->bits(0, probe, kc, a, sai, sak, nz);
            if ((double)nonzero > kern->dense_above * probe * kc) {
                kern->dense(M - i0, N, kc, a, sai, sak, b, ldb, c, ldc, k0 > 0);
                break;
            }
            nonzero += kern->bits(probe, mr, kc, a, sai, sak, nz);
            if ((double)nonzero > kern->dense_above * mr * kc) kern->dense(mr, N, kc, a, sai, sak, b, ldb, c, ldc, k0 > 0);
            else kern->sparse(mr, N, kc, k0, a, sai, sak, b, ldb, c, ldc, nz);
        }
    }
}
