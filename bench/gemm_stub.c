/* gemm_stub.c — the two symbols of the rest of the runtime that runtime/gemm*.c call (for a bad
 * NNRT_GEMM value, and an internal error), so that the benchmark programs can link the GEMM alone: gemm_floor.c
 * and gemm_ab.c both link this file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static void vdie(int code, const char *fmt, va_list ap) {
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(code);
}

void nnrt_usage_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdie(2, fmt, ap);
}

void nnrt_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vdie(1, fmt, ap);
}
