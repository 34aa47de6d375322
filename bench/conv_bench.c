/* conv_bench.c — times runtime/conv.c's calls on the CNN workload's two layers at batch 128 (BENCHMARKS.md):
 *   conv1  C 1 → K 32, 28×28, 3×3, pad 1      forward (bias, ReLU), grad_weight (+ bias)
 *   conv2  C 32 → K 64, 14×14, 3×3, pad 1     forward (bias, ReLU), grad_weight (+ bias), grad_input
 * each with a dense dy (no zeros) and with a realistic one (ReLU's mask and 2×2 max pooling's backward applied to
 * random data: ~77 % zeros), on both threads, median of REPS runs after a warm-up. GFLOP/s is printed as useful
 * work (2 · non-zeros of dy · C·kh·kw for the backward) and as dense-equivalent work (2 · n·K·OH·OW · C·kh·kw).
 * For comparison: a plain per-image im2col + nnrt_sgemm (forward: W · col; grad_input: dyᵀ · W then col2im) on
 * both threads. "cpu" is the median process CPU time per call: on this shared machine it shows the work itself when
 * other jobs delay the threads (with 2 threads it includes the worker's spinning, so compare it on 1 thread).
 *
 * Build and run (from the repository's root; NNRT_GEMM=avx2 or blas picks another kernel set; blas also needs
 * OPENBLAS_CORETYPE=SkylakeX on this CPU, see BENCHMARKS.md):
 *   clang -O2 -march=native -std=c11 -Iruntime bench/conv_bench.c runtime/'*'.c \
 *       -o conv_bench -lopenblas -lz -lm -lpthread && ./conv_bench [threads [pool]]
 * With "pool": only the A/B of each layer's step as separate calls (conv + ReLU, max pooling; the pooling's
 * backward, grad_input, grad_weight) against the calls with the pooling inside (nnrt_conv2d_*_maxpool2). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "nnrt.h"
#include "nnrt_window.h"

enum { N = 128, REPS = 25, WARM = 3 };

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 4503599627370496.0 - 1.0);
}
static float *rand_buf(long count) {
    float *p = aligned_alloc(64, (size_t)(count * 4 + 63) / 64 * 64);
    for (long i = 0; i < count; i++) p[i] = urand();
    return p;
}

/* ReLU's mask and max pooling's backward (2×2) of random data, as training makes dy. */
static float *realistic_dy(const nnrt_conv2d_geom *g) {
    long ny = (long)N * g->K * g->OH * g->OW;
    float *pre = rand_buf(ny), *act = rand_buf(ny), *dy = rand_buf(ny);
    for (long e = 0; e < ny; e++) act[e] = pre[e] > 0 ? pre[e] : 0;
    nnrt_pool2d_geom p = {.C = g->K, .H = g->OH, .W = g->OW, .OH = g->OH / 2, .OW = g->OW / 2, .kh = 2, .kw = 2,
                          .sh = 2, .sw = 2, .count_include_pad = 1};
    float *dpool = rand_buf((long)N * g->K * p.OH * p.OW);
    nnrt_maxpool2d_backward(&p, N, dpool, act, dy);
    for (long e = 0; e < ny; e++) dy[e] = pre[e] > 0 ? dy[e] : 0;
    free(pre), free(act), free(dpool);
    return dy;
}

typedef struct {
    const nnrt_conv2d_geom *g;
    const float *x, *w, *b, *dy;
    float *y, *dx, *dw, *db, *ws;
    size_t wsn;
    int which;  /* 0 forward, 1 grad_weight, 2 grad_input, 3 baseline forward, 4 baseline grad_input */
} call;

static void baseline(call *c);

static void run(call *c) {
    switch (c->which) {
    case 0: nnrt_conv2d_forward(c->g, N, c->x, c->w, c->b, NNRT_ACT_RELU, c->y, c->ws, c->wsn); break;
    case 1: nnrt_conv2d_grad_weight(c->g, N, c->dy, c->x, c->dw, c->db, c->ws, c->wsn); break;
    case 2: nnrt_conv2d_grad_input(c->g, N, c->dy, c->w, c->dx, c->ws, c->wsn); break;
    default: baseline(c);
    }
}

static double cpu_now(void) {
    struct timespec s;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &s);
    return (double)s.tv_sec + 1e-9 * (double)s.tv_nsec;
}

static double last_cpu_ms;  /* the median CPU time of the last time_ms (both threads'; the worker's spin included) */

/* Median wall milliseconds per call. */
static double time_ms(call *c) {
    double t[REPS], u[REPS];
    for (int r = 0; r < WARM; r++) run(c);
    for (int r = 0; r < REPS; r++) {
        double t0 = bench_now(), u0 = cpu_now();
        run(c);
        t[r] = (bench_now() - t0) * 1e3, u[r] = (cpu_now() - u0) * 1e3;
    }
    qsort(t, REPS, sizeof *t, bench_cmp_double);
    qsort(u, REPS, sizeof *u, bench_cmp_double);
    last_cpu_ms = u[REPS / 2];
    return t[REPS / 2];
}

// ----------------------------------------------------------------------------
// the baseline: per image, im2col (C·kh·kw, OH·OW) and nnrt_sgemm, images split over both threads

static float *base_col[2];

static void base_chunk(void *arg, int chunk) {
    call *c = arg;
    const nnrt_conv2d_geom *g = c->g;
    int Q = g->C * g->kh * g->kw, P = g->OH * g->OW;
    float *col = base_col[chunk % 2];
    for (int i = chunk * N / 2; i < (chunk + 1) * N / 2; i++) {
        if (c->which == 3) {  /* y_i (K, P) = W (K, Q) · col (Q, P) */
            for (int ch = 0, q = 0; ch < g->C; ch++)
                for (int a = 0; a < g->kh; a++)
                    for (int b = 0; b < g->kw; b++, q++)
                        for (int oh = 0; oh < g->OH; oh++)
                            for (int ow = 0; ow < g->OW; ow++) {
                                int h = oh - g->ph + a, w = ow - g->pw + b;
                                col[(long)q * P + oh * g->OW + ow] =
                                    h >= 0 && h < g->H && w >= 0 && w < g->W ? c->x[(((long)i * g->C + ch) * g->H + h) * g->W + w] : 0;
                            }
            nnrt_sgemm(0, 0, g->K, P, Q, c->w, Q, col, P, c->y + (long)i * g->K * P, P);
        } else {  /* dcolᵀ (P, Q) = dy_iᵀ (P, K) · W (K, Q), then col2im */
            nnrt_sgemm(1, 0, P, Q, g->K, c->dy + (long)i * g->K * P, P, c->w, Q, col, Q);
            float *dx = c->dx + (long)i * g->C * g->H * g->W;
            memset(dx, 0, sizeof(float) * (size_t)g->C * g->H * g->W);
            for (int oh = 0; oh < g->OH; oh++)
                for (int ow = 0; ow < g->OW; ow++)
                    for (int ch = 0, q = 0; ch < g->C; ch++)
                        for (int a = 0; a < g->kh; a++)
                            for (int b = 0; b < g->kw; b++, q++) {
                                int h = oh - g->ph + a, w = ow - g->pw + b;
                                if (h >= 0 && h < g->H && w >= 0 && w < g->W)
                                    dx[((long)ch * g->H + h) * g->W + w] += col[(long)(oh * g->OW + ow) * Q + q];
                            }
        }
    }
}

static void baseline(call *c) { nnrt_par_chunks(base_chunk, c, 2); }

// ----------------------------------------------------------------------------

static void report(const char *layer, const char *what, const char *dyk, double ms, double useful, double dense) {
    printf("%-6s %-20s %-7s %8.3f ms (cpu %7.3f)  %6.1f GFLOP/s useful  %6.1f GFLOP/s dense-equivalent\n", layer, what,
           dyk, ms, last_cpu_ms, useful / ms * 1e-6, dense / ms * 1e-6);
}

/* The anchor for this run (the machine is shared): one thread's nnrt_sgemm on a 512³ NN product, GFLOP/s. */
static double sgemm_anchor(void) {
    enum { S = 512 };
    float *a = rand_buf(S * S), *b = rand_buf(S * S), *cc = rand_buf(S * S);
    double t[9];
    for (int r = 0; r < 9; r++) {
        double t0 = bench_now();
        nnrt_sgemm(0, 0, S, S, S, a, S, b, S, cc, S);
        t[r] = bench_now() - t0;
    }
    qsort(t, 9, sizeof *t, bench_cmp_double);
    free(a), free(b), free(cc);
    return 2.0 * S * S * S / t[4] * 1e-9;
}

// ----------------------------------------------------------------------------
// A/B: a layer's step as separate calls (conv + ReLU, max pooling; max pooling's backward with the ReLU mask,
// grad_input, grad_weight) against the calls with the pooling inside (nnrt_conv2d_*_maxpool2), interleaved

typedef struct {
    const nnrt_conv2d_geom *g;
    nnrt_pool2d_geom p;
    const float *x, *w, *b, *dyp;
    float *y, *yp, *dy, *dx, *dw, *db, *ws;
    unsigned char *at;
    size_t wsn;
    int grad_input;
} layer_step;

static void step_separate(layer_step *s, int backward) {
    const nnrt_conv2d_geom *g = s->g;
    if (!backward) {
        nnrt_conv2d_forward(g, N, s->x, s->w, s->b, NNRT_ACT_RELU, s->y, s->ws, s->wsn);
        nnrt_maxpool2d_forward(&s->p, N, s->y, s->yp);
        return;
    }
    nnrt_maxpool2d_backward_relu(&s->p, N, s->dyp, s->y, s->dy);
    if (s->grad_input) nnrt_conv2d_grad_input(g, N, s->dy, s->w, s->dx, s->ws, s->wsn);
    nnrt_conv2d_grad_weight(g, N, s->dy, s->x, s->dw, s->db, s->ws, s->wsn);
}

static void step_fused(layer_step *s, int backward) {
    const nnrt_conv2d_geom *g = s->g;
    if (!backward) {
        nnrt_conv2d_forward_maxpool2(g, N, s->x, s->w, s->b, NNRT_ACT_RELU, s->yp, s->at, s->ws, s->wsn);
        return;
    }
    if (s->grad_input) nnrt_conv2d_grad_input_maxpool2(g, N, s->dyp, s->at, 1, s->w, s->dx, s->ws, s->wsn);
    nnrt_conv2d_grad_weight_maxpool2(g, N, s->dyp, s->at, 1, s->x, s->dw, s->db, s->ws, s->wsn);
}

static double once(void (*f)(layer_step *, int), layer_step *s, int backward, double *cpu) {
    double t0 = bench_now(), u0 = cpu_now();
    f(s, backward);
    *cpu = (cpu_now() - u0) * 1e3;
    return (bench_now() - t0) * 1e3;
}

static void ab_pooling(const nnrt_conv2d_geom *layers) {
    for (int l = 0; l < 2; l++) {
        const nnrt_conv2d_geom *g = &layers[l];
        long nx = (long)N * g->C * g->H * g->W, ny = (long)N * g->K * g->OH * g->OW, Q = (long)g->C * g->kh * g->kw;
        layer_step s = {.g = g, .p = {.C = g->K, .H = g->OH, .W = g->OW, .OH = g->OH / 2, .OW = g->OW / 2, .kh = 2,
                                      .kw = 2, .sh = 2, .sw = 2, .count_include_pad = 1},
                        .x = rand_buf(nx), .w = rand_buf(g->K * Q), .b = rand_buf(g->K), .dyp = rand_buf(ny / 4),
                        .y = rand_buf(ny), .yp = rand_buf(ny / 4), .dy = rand_buf(ny), .dx = rand_buf(nx),
                        .dw = rand_buf(g->K * Q), .db = rand_buf(g->K), .wsn = nnrt_conv2d_pool_ws_floats(g),
                        .grad_input = l == 1};
        s.ws = rand_buf((long)s.wsn), s.at = malloc((size_t)ny / 4);
        for (int backward = 0; backward < 2; backward++) {
            double t[2][REPS], u[2][REPS];
            for (int r = 0; r < WARM; r++) step_separate(&s, 0), step_fused(&s, 0);
            for (int r = 0; r < REPS; r++) {  /* A B, then B A: neither always runs second */
                int first = r % 2;
                for (int k = 0; k < 2; k++) {
                    int which = k ^ first;
                    if (backward) {  /* each backward reads its own forward's outputs */
                        double dummy;
                        once(which ? step_fused : step_separate, &s, 0, &dummy);
                    }
                    t[which][r] = once(which ? step_fused : step_separate, &s, backward, &u[which][r]);
                }
            }
            for (int k = 0; k < 2; k++) qsort(t[k], REPS, sizeof(double), bench_cmp_double), qsort(u[k], REPS, sizeof(double), bench_cmp_double);
            printf("conv%d %-8s separate %7.3f ms (cpu %7.3f)   pooling inside %7.3f ms (cpu %7.3f)   ratio %.3f\n", l + 1,
                   backward ? "backward" : "forward", t[0][REPS / 2], u[0][REPS / 2], t[1][REPS / 2], u[1][REPS / 2],
                   t[1][REPS / 2] / t[0][REPS / 2]);
        }
        free((void *)s.x), free((void *)s.w), free((void *)s.b), free((void *)s.dyp), free(s.y), free(s.yp), free(s.dy);
        free(s.dx), free(s.dw), free(s.db), free(s.ws), free(s.at);
    }
}

int main(int argc, char **argv) {
    nnrt_parallel_init(argc > 1 ? atoi(argv[1]) : 2, 1);  /* argument: threads (default 2); then "pool": the A/B only */
    printf("anchor: nnrt_sgemm 512³ on one thread %.1f GFLOP/s\n", sgemm_anchor());
    static const nnrt_conv2d_geom layers[2] = {
        {.C = 1, .H = 28, .W = 28, .K = 32, .OH = 28, .OW = 28, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
         .dh = 1, .dw = 1, .groups = 1},
        {.C = 32, .H = 14, .W = 14, .K = 64, .OH = 14, .OW = 14, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
         .dh = 1, .dw = 1, .groups = 1},
    };
    printf("%s, %d thread(s), batch %d, median of %d\n", nnrt_gemm_describe(), nnrt_parallel_threads(), N, REPS);
    if (argc > 2 && !strcmp(argv[2], "pool")) {
        ab_pooling(layers);
        return 0;
    }
    double total[2] = {0, 0};
    for (int l = 0; l < 2; l++) {
        const nnrt_conv2d_geom *g = &layers[l];
        long nx = (long)N * g->C * g->H * g->W, ny = (long)N * g->K * g->OH * g->OW, Q = (long)g->C * g->kh * g->kw;
        size_t wsn = nnrt_conv2d_ws_floats(g);
        call c = {.g = g, .x = rand_buf(nx), .w = rand_buf(g->K * Q), .b = rand_buf(g->K), .y = rand_buf(ny),
                  .dx = rand_buf(nx), .dw = rand_buf(g->K * Q), .db = rand_buf(g->K), .ws = rand_buf((long)wsn), .wsn = wsn};
        base_col[0] = rand_buf(Q * g->OH * g->OW), base_col[1] = rand_buf(Q * g->OH * g->OW);
        float *dys[2] = {rand_buf(ny), realistic_dy(g)};
        char name[16];
        snprintf(name, sizeof name, "conv%d", l + 1);
        double dense = 2.0 * ny * Q;
        c.which = 0;
        double ms = time_ms(&c);
        report(name, "forward+bias+relu", "", ms, dense, dense);
        total[0] += ms, total[1] += ms;
        if (g->kh == 3 && g->kw == 3 && g->C >= 8) {  /* A/B: the direct form instead of Winograd (conv.c) */
            setenv("NNRT_CONV_WINOGRAD", "0", 1);
            report(name, "direct fwd+bias+relu", "", time_ms(&c), dense, dense);
            unsetenv("NNRT_CONV_WINOGRAD");
        }
        c.which = 3;
        report(name, "baseline forward", "", time_ms(&c), dense, dense);
        for (int d = 0; d < 2; d++) {
            long nnz = 0;
            for (long e = 0; e < ny; e++) nnz += dys[d][e] != 0;
            c.dy = dys[d];
            for (int which = 1; which <= (l == 1 ? 4 : 1); which += which == 2 ? 2 : 1) {
                c.which = which;
                ms = time_ms(&c);
                if (which <= 2) total[d] += ms;
                char dyk[16];
                snprintf(dyk, sizeof dyk, "%s", d ? "sparse" : "dense");
                report(name, which == 1 ? "grad_weight+bias" : which == 2 ? "grad_input" : "baseline grad_input",
                       dyk, ms, 2.0 * nnz * Q, dense);
            }
            if (d == 1) printf("%-6s realistic dy: %.1f %% non-zero\n", name, 100.0 * nnz / ny);
        }
        free((void *)c.x), free((void *)c.w), free((void *)c.b), free(c.y), free(c.dx), free(c.dw), free(c.db), free(c.ws);
        free(base_col[0]), free(base_col[1]), free(dys[0]), free(dys[1]);
    }
    printf("all conv calls of a training step: %.2f ms with dense dy, %.2f ms with the realistic dy\n", total[0], total[1]);
    return 0;
}
