/* kernel_sets.h — the kernel sets a test runs the window functions under (test_window.c, test_conv_pool.c):
 * AVX-512 and AVX2 where the CPU has them, and NNRT_GEMM=blas (the plain path) everywhere. */
#ifndef NNRT_TEST_KERNEL_SETS_H
#define NNRT_TEST_KERNEL_SETS_H

#include <stdlib.h>

#include "nnrt.h"

typedef struct { const char *env; int present; } kernel_set;
static kernel_set sets[3] = {{"avx512", 0}, {"avx2", 0}, {"blas", 1}};

static void detect_sets(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    sets[1].present = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    sets[0].present = nnrt_gemm512_built && sets[1].present && __builtin_cpu_supports("avx512f") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
}

/* Makes the runtime choose the set `env` (NULL: its own choice) from the next call on. */
static void use_set(const char *env) {
    if (env) setenv("NNRT_GEMM", env, 1);
    else unsetenv("NNRT_GEMM");
    nnrt_gemm_reset();
}

#endif
