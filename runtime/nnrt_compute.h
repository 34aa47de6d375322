/* nnrt_compute.h — the compute layer under the generated kernels: the CPU's floating-point mode (cpu.c), the worker
 * thread (parallel.c), OpenBLAS's setup (blas.c) and the GEMM (gemm.c, gemm_avx2.c, gemm_avx512.c, gemm_plan.c).
 * nnrt_sgemm, nnrt_par2 and nnrt_par_chunks, which generated code calls, are declared in nnrt_model.h. */
#ifndef NNRT_COMPUTE_H
#define NNRT_COMPUTE_H

#include <stdint.h>
#include <stdio.h>

#include "nnrt_model.h"

// ----------------------------------------------------------------------------
// the CPU's floating-point mode (cpu.c)

/* Flushes subnormal floats to zero (FTZ/DAZ) in this thread. Adam's moments for inputs that are always zero
   (the border pixels of MNIST) decay through the subnormal range, where every operation is ~100× slower:
   measured here, epochs of the Fashion-MNIST MLP went from 1.0 s to 3.0 s by epoch 3. XLA does the same on CPU. */
void nnrt_flush_denormals(void);

// ----------------------------------------------------------------------------
// the worker thread (parallel.c)

/* The worker thread behind nnrt_par2 (parallel.c): requested 0 = one per core, at most 2; `flush` repeats
   nnrt_flush_denormals on the worker. */
void nnrt_parallel_init(int requested, int flush);
int nnrt_parallel_threads(void);
/* Pieces fn(arg, 0..count−1) for the worker to run while it has no job (each should take about a microsecond:
   a job posted meanwhile waits for the piece), then, in nnrt_par_background_finish, the caller runs those left
   and waits for the worker's. One background job at a time, from the main thread; with one thread the finish
   runs them all. */
void nnrt_par_background(void (*fn)(void *arg, int piece), void *arg, int count);
void nnrt_par_background_finish(void);

// ----------------------------------------------------------------------------
// the GEMM (gemm.c dispatches; gemm_avx2.c, gemm_avx512.c kernels; gemm_plan.c the broadcast form's plan)

/* Which GEMM nnrt_sgemm runs (gemm.c): OpenBLAS, or one of its own kernel sets (non-zero). By default the
   best set the CPU runs (AVX-512, else AVX2 with FMA, else OpenBLAS); NNRT_GEMM=blas|nnrt|avx512|avx2 chooses.
   Decided on first use; nnrt_gemm_reset makes the next call decide again (tests). nnrt_gemm_describe is the
   choice in words, for --verbose. */
enum { NNRT_GEMM_BLAS = 0, NNRT_GEMM_AVX512 = 1, NNRT_GEMM_AVX2 = 2 };
int nnrt_gemm_own_kernels(void);
const char *nnrt_gemm_describe(void);
void nnrt_gemm_reset(void);
/* gemm_avx512.c's kernels for nnrt_sgemm (C = A·Bᵀ; C = op(A)·B with op(A)[i][k] = A[i·sai + k·sak]), and
   whether they were built (not when -march names a CPU with AVX2 but without AVX-512). */
extern const int nnrt_gemm512_built;
void nnrt_gemm512_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);
void nnrt_gemm512_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc);
/* gemm_avx2.c's kernels, the same two forms with 8-lane vectors (built on every x86-64 compile). */
void nnrt_gemm256_nt(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc);
void nnrt_gemm256_bc(int M, int N, int K, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc);
/* The broadcast form's plan, the same for both kernel sets (gemm_plan.c): blocks of NNRT_BC_KC along K and, in each,
   groups of NNRT_SP_ROWS rows that skip the zeros of op(A) (`sparse`) unless more than `dense_above` of it is
   non-zero (`dense`). `bits` fills nz[r][q] for rows r0 ≤ r < r1: bit k is set when op(A)'s element 64q + k of
   the block is non-zero; it returns how many are. */
enum { NNRT_BC_KC = 256, NNRT_SP_ROWS = 128, NNRT_SP_NSUB = NNRT_BC_KC / 64 };
typedef struct {
    long (*bits)(int r0, int r1, int kc, const float *a, long sai, long sak, uint64_t nz[][NNRT_SP_NSUB]);
    void (*dense)(int M, int N, int kc, const float *A, long sai, long sak, const float *B, int ldb, float *C, int ldc,
                  int accumulate);
    void (*sparse)(int mr, int N, int kc, int k0, const float *a, long sai, long sak, const float *B, int ldb, float *C,
                   int ldc, uint64_t nz[][NNRT_SP_NSUB]);
    double dense_above;
} nnrt_bc_kernels;
void nnrt_gemm_bc_plan(const nnrt_bc_kernels *kern, int M, int N, int K, const float *A, long sai, long sak,
                       const float *B, int ldb, float *C, int ldc);

// ----------------------------------------------------------------------------
// OpenBLAS (blas.c)

/* Picks OPENBLAS_CORETYPE from the CPU's features and OPENBLAS_NUM_THREADS=1 when the user set
   neither, then re-executes /proc/self/exe once so that OpenBLAS's load-time constructor sees them.
   Returns only when no re-exec is needed (or it failed). */
void nnrt_blas_setup(char **argv);
/* The core type the runtime would choose on this CPU ("SkylakeX", "Haswell" or NULL), and why. */
const char *nnrt_blas_pick_core(char *why, size_t cap);
/* Two lines for --verbose: "blas: OpenBLAS 0.3.21 core SkylakeX (…), 1 thread" and the GEMM and threads used. */
void nnrt_blas_describe(FILE *f);

#endif
