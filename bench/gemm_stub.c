/* gemm_stub.c — the one symbol of the rest of the runtime that runtime/gemm.c calls (for a bad NNRT_GEMM value),
 * so that the benchmark programs can link gemm.c alone: gemm_floor.c and gemm_ab.c both link this file. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void nnrt_usage_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}
