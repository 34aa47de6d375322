/* mixup_cost.c — what train --mixup and --cutmix cost the runtime in CPU time: the draws and the in-place mixing
 * (nnrt_mix_draws, nnrt_mix_batch) of an epoch of Fashion-MNIST-sized batches (469 batches of 128 images 1×28×28,
 * the last partial), mixup and CutMix alternating, 7 rounds; prints the medians of the thread's CPU time in ms per
 * epoch. The soft-target step's own extra kernels are not in it (see docs/trainer.md for the whole-step count).
 * build: clang -O3 -march=native -std=c11 -Iruntime bench/mixup_cost.c runtime/[a-z]*.c -o /tmp/mixup_cost
 *            -lopenblas -lpng -lz -lm -lpthread
 * usage: /tmp/mixup_cost */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nnrt.h"

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static float step(nnrt_ctx *ctx, int n, const float *x, const void *y) { return 0; }

static const nnrt_model image = {.name = "bench", .input_dim = 784, .output_dim = 10, .target_kind = NNRT_TARGET_CLASS,
                                 .target_dim = 1, .max_batch = 128, .input_rank = 3, .input_shape = {1, 28, 28},
                                 .train_mixed_step = step};

/* This thread's CPU time: the machine is shared, and a descheduled moment is not the code's cost. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double epoch_ms(nnrt_mix *mx, float *xb, const int32_t *y) {
    double t = cpu_now();
    for (int64_t s = 0, N = 60000; s * 128 < N; s++) {
        int n = (int)(N - s * 128 < 128 ? N - s * 128 : 128);
        nnrt_mix_draw d = nnrt_mix_draws(mx, s);
        nnrt_mix_batch(mx, &d, n, 784, xb, y);
    }
    return (cpu_now() - t) * 1e3;
}

int main(void) {
    float *xb = malloc(128 * 784 * sizeof *xb);
    int32_t y[128];
    for (int i = 0; i < 128 * 784; i++) xb[i] = (float)(i % 255) / 255.0f;
    for (int i = 0; i < 128; i++) y[i] = i % 10;
    nnrt_mix mix, cut;
    nnrt_mix_parse(0.2, 0, &image, &mix);
    nnrt_mix_parse(0, 1.0, &image, &cut);
    enum { R = 7 };
    double a[R], b[R];
    for (int r = 0; r < R; r++) {
        mix.epoch = cut.epoch = r;
        a[r] = epoch_ms(&mix, xb, y);
        b[r] = epoch_ms(&cut, xb, y);
    }
    qsort(a, R, sizeof *a, cmp);
    qsort(b, R, sizeof *b, cmp);
    printf("{\"mixup_ms_per_epoch\": %.2f, \"cutmix_ms_per_epoch\": %.2f, \"rounds\": %d}\n", a[R / 2], b[R / 2], R);
    return 0;
}
