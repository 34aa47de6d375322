/* augment_cost.c — what train --augment costs in CPU time, apart from any overlap with training: an epoch of
 * Fashion-MNIST (60000 images, batches of 128, a shuffled order) gathered on one thread, plain and augmented,
 * alternating, 7 rounds; prints the medians of the thread's CPU time in ms per epoch and µs per image.
 * build: clang -O3 -march=native -std=c11 -Iruntime bench/augment_cost.c runtime/[a-z]*.c -o /tmp/augment_cost
 *            -lopenblas -lz -lm -lpthread
 * usage: /tmp/augment_cost [DIR [LIST]]   (defaults /usr/share/datasets/fashion-mnist, crop:4,flip,cutout:8,jitter:0.2) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nnrt.h"

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

static const nnrt_model image = {.name = "bench", .input_dim = 784, .output_dim = 10, .target_kind = NNRT_TARGET_CLASS,
                                 .target_dim = 1, .max_batch = 128, .input_rank = 3, .input_shape = {1, 28, 28}};

/* This thread's CPU time: the machine is shared, and a descheduled moment is not the code's cost. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double epoch_ms(const nnrt_dataset *d, const int64_t *order, float *xb, const nnrt_augment *aug) {
    double t = cpu_now();
    for (int64_t s = 0; s < d->x.n; s += 128) {
        int n = (int)(d->x.n - s < 128 ? d->x.n - s : 128);
        nnrt_gather_x_augmented(&d->x, order + s, n, xb, aug);
    }
    return (cpu_now() - t) * 1e3;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "/usr/share/datasets/fashion-mnist";
    nnrt_parallel_init(1, 1);
    nnrt_dataset d = nnrt_load_idx_dir(dir, "train", &image);
    nnrt_augment aug;
    nnrt_augment_parse(argc > 2 ? argv[2] : "crop:4,flip,cutout:8,jitter:0.2", &image, &aug);
    aug.seed = 1;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)d.x.n);
    for (int64_t i = 0; i < d.x.n; i++) order[i] = i;
    uint64_t rng[4];
    nnrt_rng_seed(rng, 1, 2);
    nnrt_rng_shuffle(rng, order, d.x.n);
    float *xb = malloc(sizeof(float) * 128 * 784);
    enum { R = 7 };
    double plain[R], augd[R];
    for (int r = 0; r < R; r++) {
        aug.epoch = r;
        if (r % 2) { augd[r] = epoch_ms(&d, order, xb, &aug); plain[r] = epoch_ms(&d, order, xb, NULL); }
        else { plain[r] = epoch_ms(&d, order, xb, NULL); augd[r] = epoch_ms(&d, order, xb, &aug); }
    }
    qsort(plain, R, sizeof(double), cmp);
    qsort(augd, R, sizeof(double), cmp);
    printf("gather of %lld images, one thread, CPU time, median of %d: plain %.1f ms, augmented %.1f ms; augmentation %.1f ms per "
           "epoch, %.2f us per image\n", (long long)d.x.n, R, plain[R / 2], augd[R / 2], augd[R / 2] - plain[R / 2],
           (augd[R / 2] - plain[R / 2]) * 1e3 / (double)d.x.n);
    return 0;
}
