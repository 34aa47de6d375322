/* gemm_ab.c — A/B of two builds of runtime/gemm.c (its AVX2 kernels and the dispatch) inside one process, under the cache pressure of a training
 * step, on both threads: the way to judge a kernel change on this machine, whose speed swings by ±40 % from one
 * minute to the next (separate runs of whole trainers need many interleaved repetitions to show 5 %).
 *
 * Each iteration, on each of two threads: touch 2 MB of other memory (as Adam's pass over the parameters does),
 * rewrite this thread's half of X (as the batch gather does), then time variant A and variant B (alternating
 * which goes first) on the MLP's two large GEMMs, split as the trainer splits them:
 *   forward  X (128×784) · W1ᵀ, this thread's 128 of the 256 columns  (dot kernel)
 *   dW1      dH1ᵀ · X, this thread's 128 of the 256 rows               (broadcast kernel)
 * and print the median per variant and thread. NOPOL=1 skips the 2 MB touch, NOX=1 the rewrite of X, CHUNKED=1
 * makes the calls in the trainer's chunks (32 columns forward, 36 rows of dW1) instead of one per thread, and
 * DENSITY=0.45 zeroes all but that fraction of dH1 (at random), as ReLU's derivative does in training.
 *
 * Build (A = the committed runtime/gemm*.c, B = with changed copies; variant.sh renames each build's symbols):
 *   bench/variant.sh A a.o
 *   bench/variant.sh B b.o my_gemm_avx2.c my_gemm_avx512.c   (the GEMM renamed: sg_A, sg_B, …)
 *   cc -O3 -march=native bench/gemm_ab.c bench/gemm_stub.c a.o b.o -o gemm_ab -lopenblas -lpthread && ./gemm_ab
 * (gemm_stub.c provides the nnrt_usage_die and nnrt_die that the GEMM calls for a bad NNRT_GEMM.) */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define BENCH_AB
#include "bench.h"

enum { ITERS = 1500 };
static float *X, *W1, *H1, *dH1, *dW1, *pollute[2];
static double t[2][2][2][ITERS];  // thread, variant, GEMM (0 forward, 1 dW1), iteration
static _Atomic int arrived, generation;

static void barrier(void) {
    int g = atomic_load(&generation);
    if (atomic_fetch_add(&arrived, 1) == 1) {
        atomic_store(&arrived, 0);
        atomic_fetch_add(&generation, 1);
    } else {
        while (atomic_load(&generation) == g) {}
    }
}

static float *buffer(long n) {
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    if (!p) { fprintf(stderr, "gemm_ab: out of memory\n"); exit(1); }
    for (long i = 0; i < n; i++) p[i] = (float)((i * 7919) % 1000) * 1e-5f - 0.005f;
    return p;
}

static void *worker(void *arg) {
    long id = (long)arg;
    long touch = getenv("NOPOL") ? 0 : (2L << 20) / 4;
    int rewrite = !getenv("NOX"), chunked = getenv("CHUNKED") != NULL;
    for (int it = 0; it < ITERS; it++) {
        for (int k = 0; k < 2; k++) {
            int v = (it & 1) ? k : 1 - k;
            for (long q = 0; q < touch; q += 16) pollute[id][q] += 1.0f;
            if (rewrite) for (long q = id * 64 * 784; q < (id + 1) * 64 * 784; q += 16) X[q] += 1e-7f;
            barrier();
            double t0 = bench_now();
            if (chunked)  // as the trainer calls it: this thread's 128 columns in 4 chunks of 32
                for (int c = 0; c < 4; c++) {
                    int j0 = id * 128 + c * 32;
                    variant[v](0, 1, 128, 32, 784, X, 784, W1 + j0 * 784, 784, H1 + j0, 256);
                }
            else variant[v](0, 1, 128, 128, 784, X, 784, W1 + id * 128 * 784, 784, H1 + id * 128, 256);
            t[id][v][0][it] = bench_now() - t0;
            barrier();
            t0 = bench_now();
            if (chunked)  // rows in chunks of 36, thread 0 taking the first four, thread 1 the rest (36, 36, 36, 4)
                for (int c = 0; c < 4; c++) {
                    int i0 = id * 144 + c * 36, i1 = i0 + 36 < 256 ? i0 + 36 : 256;
                    if (i0 < i1) variant[v](1, 0, i1 - i0, 784, 128, dH1 + i0, 256, X, 784, dW1 + i0 * 784, 784);
                }
            else variant[v](1, 0, 128, 784, 128, dH1 + id * 128, 256, X, 784, dW1 + id * 128 * 784, 784);
            t[id][v][1][it] = bench_now() - t0;
            barrier();
        }
    }
    return NULL;
}

int main(void) {
    X = buffer(128 * 784), W1 = buffer(256 * 784), H1 = buffer(128 * 256), dH1 = buffer(128 * 256);
    dW1 = buffer(256 * 784), pollute[0] = buffer(1 << 20), pollute[1] = buffer(1 << 20);
    if (getenv("DENSITY")) {  // dH1 masked as ReLU's derivative masks it: this fraction of it non-zero
        double keep = atof(getenv("DENSITY"));
        unsigned h = 12345;
        for (long q = 0; q < 128 * 256; q++) {
            h = h * 1103515245u + 12345u;
            if ((double)(h >> 8) / (double)(1u << 24) >= keep) dH1[q] = 0.0f;
        }
    }
    pthread_t other;
    if (pthread_create(&other, NULL, worker, (void *)1) != 0) { fprintf(stderr, "gemm_ab: no second thread\n"); return 1; }
    worker((void *)0);
    pthread_join(other, NULL);
    for (int g = 0; g < 2; g++) {
        for (int v = 0; v < 2; v++) {
            double m[2];
            for (int id = 0; id < 2; id++) {
                qsort(t[id][v][g], ITERS, sizeof(double), bench_cmp_double);
                m[id] = t[id][v][g][ITERS / 2] * 1e6;
            }
            printf("%-7s variant %c: median %.1f µs on thread 0, %.1f µs on thread 1\n", g ? "dW1" : "forward", 'A' + v, m[0], m[1]);
        }
    }
    return 0;
}
