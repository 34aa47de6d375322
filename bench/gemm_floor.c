/* gemm_floor.c — the time one training epoch of an MLP spends in sgemm alone, with nothing else: the floor
 * under nncc's seconds per epoch for the same model, batch and BLAS settings.
 *
 * Per step and layer l (in → out), exactly the calls nncc's generated trainer makes:
 *   forward        y (n, out)   = x (n, in) · W (out, in)ᵀ
 *   weight grad    dW (out, in) = dy (n, out)ᵀ · x (n, in)
 *   input grad     dx (n, in)   = dy (n, out) · W (out, in)        (not for the first layer)
 * over ceil(samples / batch) steps, the last one partial, like the trainer. Every layer has its own
 * buffers, laid out as in a real step (activations kept for the backward pass), so caches see what
 * they would see in training. Values are small constants: only time matters.
 *
 * usage: gemm_floor [--batch B] [--samples N] [--epochs E] [--dims 784,256,128,10] [--kernel blas|nnrt]
 * prints one line per epoch and a last line: {"median_s":…,"gflops":…,"batch":B,"steps":S,"kernel":…}
 * --kernel blas (the default) calls OpenBLAS's cblas_sgemm, whose core and threads come from the environment
 * (OPENBLAS_CORETYPE, OPENBLAS_NUM_THREADS; bench/run.py sets them to what the trainer uses); --kernel nnrt
 * calls the trainer's own nnrt_sgemm (runtime/gemm*.c, linked in), on one thread.
 * Build: cc -O3 -march=native -std=c11 -Iruntime bench/gemm_floor.c bench/gemm_stub.c runtime/gemm*.c -lopenblas */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

enum { MAX_LAYERS = 16, MAX_EPOCHS = 100 };

void nnrt_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc);  // runtime/gemm.c
static int use_nnrt;

/* C = op(A) · op(B), row-major, through the chosen implementation. */
static void sgemm(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (use_nnrt) nnrt_sgemm(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
    else cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                     lda, B, ldb, 0.0f, C, ldc);
}

static float *buffer(size_t count, float value) {
    float *p = aligned_alloc(64, ((count * sizeof(float) + 63) / 64) * 64);
    if (!p) { fprintf(stderr, "gemm_floor: out of memory\n"); exit(1); }
    for (size_t i = 0; i < count; i++) p[i] = value * (float)(1 + i % 7);
    return p;
}

int main(int argc, char **argv) {
    int batch = 128, samples = 60000, epochs = 3, dims[MAX_LAYERS + 1] = {784, 256, 128, 10}, L = 3;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) { fprintf(stderr, "gemm_floor: %s needs a value\n", argv[i]); return 2; }
        if (strcmp(argv[i], "--batch") == 0) batch = atoi(v);
        else if (strcmp(argv[i], "--samples") == 0) samples = atoi(v);
        else if (strcmp(argv[i], "--epochs") == 0) epochs = atoi(v);
        else if (strcmp(argv[i], "--kernel") == 0) {
            if (strcmp(v, "nnrt") != 0 && strcmp(v, "blas") != 0) { fprintf(stderr, "gemm_floor: --kernel is blas or nnrt\n"); return 2; }
            use_nnrt = strcmp(v, "nnrt") == 0;
        }
        else if (strcmp(argv[i], "--dims") == 0) {
            L = -1;
            for (char *s = argv[i + 1], *end; *s && L < MAX_LAYERS; s = *end ? end + 1 : end) dims[++L] = (int)strtol(s, &end, 10);
        } else { fprintf(stderr, "gemm_floor: unknown flag %s\n", argv[i]); return 2; }
    }
    if (batch < 1 || samples < 1 || epochs < 1 || epochs > MAX_EPOCHS || L < 1) { fprintf(stderr, "gemm_floor: bad arguments\n"); return 2; }

    float *act[MAX_LAYERS + 1], *dact[MAX_LAYERS + 1], *w[MAX_LAYERS], *dw[MAX_LAYERS];
    for (int l = 0; l <= L; l++) {
        act[l] = buffer((size_t)batch * dims[l], 0.01f);   // (batch, dims[l]): the input and each layer's output
        dact[l] = buffer((size_t)batch * dims[l], 0.001f); // its gradient
    }
    for (int l = 0; l < L; l++) {
        w[l] = buffer((size_t)dims[l + 1] * dims[l], 0.02f);  // (out, in)
        dw[l] = buffer((size_t)dims[l + 1] * dims[l], 0.0f);
    }
    int steps = (samples + batch - 1) / batch;
    double flops = 0, times[MAX_EPOCHS];
    for (int e = 0; e < epochs; e++) {
        double t0 = bench_now();
        flops = 0;
        for (int s = 0; s < steps; s++) {
            int n = samples - s * batch < batch ? samples - s * batch : batch;
            for (int l = 0; l < L; l++) {
                int in = dims[l], out = dims[l + 1];
                sgemm(0, 1, n, out, in, act[l], in, w[l], in, act[l + 1], out);
                flops += 2.0 * n * in * out;
            }
            for (int l = L - 1; l >= 0; l--) {
                int in = dims[l], out = dims[l + 1];
                if (l > 0) {
                    sgemm(0, 0, n, in, out, dact[l + 1], out, w[l], in, dact[l], in);
                    flops += 2.0 * n * in * out;
                }
                sgemm(1, 0, out, in, n, dact[l + 1], out, act[l], in, dw[l], in);
                flops += 2.0 * n * in * out;
            }
        }
        times[e] = bench_now() - t0;
        printf("epoch %d: %.4f s\n", e + 1, times[e]);
    }
    qsort(times, (size_t)epochs, sizeof times[0], bench_cmp_double);
    double median = epochs % 2 ? times[epochs / 2] : 0.5 * (times[epochs / 2 - 1] + times[epochs / 2]);
    printf("{\"median_s\":%.6f,\"gflops\":%.2f,\"gflop_per_epoch\":%.3f,\"batch\":%d,\"steps\":%d,\"kernel\":\"%s\"}\n",
           median, flops / median * 1e-9, flops * 1e-9, batch, steps, use_nnrt ? "nnrt" : "blas");
    for (int l = 0; l <= L; l++) { free(act[l]); free(dact[l]); }
    for (int l = 0; l < L; l++) { free(w[l]); free(dw[l]); }
    return 0;
}
