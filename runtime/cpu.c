/* cpu.c — the CPU's per-thread floating-point mode. */
#include "nnrt_compute.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

void nnrt_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ (bit 15) and DAZ (bit 6)
#endif
}
