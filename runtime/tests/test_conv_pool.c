/* test_conv_pool.c — a convolution with 2×2 max pooling in its calls (nnrt_conv2d_*_maxpool2, conv_pool.c) against
 * the separate calls it replaces (nnrt_conv2d_* and nnrt_maxpool2d_*, which test_window.c checks against float64
 * loops), and the float64 twins against the float64 separate calls.
 * usage: test_conv_pool    prints "ok <name>" / "FAIL <name>: …" and "conv_pool: P passed, F failed".
 *
 * What must hold, for every kernel set the CPU has (AVX-512, AVX2, NNRT_GEMM=blas):
 *   - the pooled output is the separate calls' to the bit, and each window's byte names the separate pooling's
 *     choice (its first maximum; a NaN wins) and whether the maximum is positive;
 *   - the input gradient is the separate calls' to the bit (dy expanded from the pooled gradient and the bytes,
 *     times the ReLU's mask); the weight gradient too where conv.c's fast path runs (stride 1, one group, a vector
 *     set); elsewhere, and for the bias gradient (its additions come in another order), within
 *     1e-6·R·(1 + |e|), R the count of products summed;
 *   - on two threads, the results of one thread to the bit; nothing written outside the outputs and workspace. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "nnrt.h"
#include "kernel_sets.h"
#include "nnrt_window.h"

static int passed, failed;

static void check(const char *name, int ok) {
    if (ok) passed++, printf("ok   %s\n", name);
    else failed++, printf("FAIL %s\n", name);
}

static uint64_t rng = 2463534242ull;
static double urand(void) {  /* [−1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}
static int irand(int lo, int hi) { return lo + (int)((urand() + 1.0) * 0.5 * (hi - lo + 1)) % (hi - lo + 1); }

enum { GUARD = 64 };
/* count elements of `size` bytes, then GUARD bytes of 0xA5 (what must stay as it was) */
static void *guarded(long count, size_t size) {
    unsigned char *p = malloc((size_t)count * size + GUARD);
    memset(p, 0xFF, (size_t)count * size);  /* NaN floats, 255 bytes: an element left unwritten shows */
    memset(p + (size_t)count * size, 0xA5, GUARD);
    return p;
}
static int guard_ok(const void *p, long count, size_t size) {
    const unsigned char *g = (const unsigned char *)p + (size_t)count * size;
    for (int i = 0; i < GUARD; i++)
        if (g[i] != 0xA5) return 0;
    return 1;
}
static float *randoms(long count, double zeros) {
    float *p = malloc(sizeof(float) * (size_t)count);
    for (long i = 0; i < count; i++) p[i] = (urand() + 1.0) * 0.5 < zeros ? 0.0f : (float)urand();
    return p;
}
/* equal as bits, NaNs of any payload alike */
static int same(const float *a, const float *b, long count) {
    for (long i = 0; i < count; i++)
        if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float))) return 0;
    return 1;
}
static double worst(const float *a, const float *e, long count, double tol) {  /* ≤ 1 passes */
    double m = 0;
    for (long i = 0; i < count; i++) {
        if (isnan(a[i]) && isnan(e[i])) continue;
        double r = fabs((double)a[i] - e[i]) / (tol * (1 + fabs(e[i])));
        if (!(r <= m)) m = isnan(r) ? INFINITY : r;
    }
    return m;
}


// ----------------------------------------------------------------------------
// one case: the separate calls, then the fused ones

typedef struct {
    nnrt_conv2d_geom g;
    int n, act, relu;
    long nx, ny, np, nw;          /* elements of x, of the dense output, of the pooled output, of w */
    float *x, *w, *bias, *dyp;
} pcase;

typedef struct { float *y, *dx, *dw, *db; unsigned char *at; } results;

static void results_free(results *r) { free(r->y), free(r->dx), free(r->dw), free(r->db), free(r->at); }

static nnrt_pool2d_geom pool_of(const nnrt_conv2d_geom *g) {
    return (nnrt_pool2d_geom){.C = g->K, .H = g->OH, .W = g->OW, .OH = g->OH / 2, .OW = g->OW / 2, .kh = 2, .kw = 2,
                              .sh = 2, .sw = 2, .count_include_pad = 1};
}

/* The separate calls: y pooled, the window bytes from the dense output, dx, dw, db from the expanded dy. */
static results separate(const pcase *c) {
    const nnrt_conv2d_geom *g = &c->g;
    nnrt_pool2d_geom p = pool_of(g);
    size_t wsn = nnrt_conv2d_ws_floats(g);
    float *ws = malloc(sizeof(float) * wsn), *y = malloc(sizeof(float) * (size_t)c->ny), *dy = malloc(sizeof(float) * (size_t)c->ny);
    results r = {malloc(sizeof(float) * (size_t)c->np), malloc(sizeof(float) * (size_t)c->nx), malloc(sizeof(float) * (size_t)c->nw),
                 malloc(sizeof(float) * (size_t)g->K), malloc((size_t)c->np)};
    nnrt_conv2d_forward(g, c->n, c->x, c->w, c->bias, c->act, y, ws, wsn);
    nnrt_maxpool2d_forward(&p, c->n, y, r.y);
    for (long e = 0; e < c->np; e++) {  /* the window's first maximum, max pooling's rule */
        long pl = e / (p.OH * p.OW), a = e / p.OW % p.OH, b = e % p.OW;
        const float *r0 = y + (pl * g->OH + 2 * a) * g->OW + 2 * b, *r1 = r0 + g->OW;
        float v[4] = {r0[0], r0[1], r1[0], r1[1]}, m = v[0];
        int s = 0;
        for (int q = 1; q < 4; q++)
            if (v[q] > m || isnan(v[q])) m = v[q], s = q;
        r.at[e] = (unsigned char)(s | (m > 0 ? NNRT_AT_POSITIVE : 0));
    }
    if (c->relu) nnrt_maxpool2d_backward_relu(&p, c->n, c->dyp, y, dy);
    else nnrt_maxpool2d_backward(&p, c->n, c->dyp, y, dy);
    nnrt_conv2d_grad_input(g, c->n, dy, c->w, r.dx, ws, wsn);
    nnrt_conv2d_grad_weight(g, c->n, dy, c->x, r.dw, r.db, ws, wsn);
    free(ws), free(y), free(dy);
    return r;
}

/* The fused calls, every output and the workspace guarded (*ok = 0 when a guard changed). */
static results fused(const pcase *c, int *ok) {
    const nnrt_conv2d_geom *g = &c->g;
    size_t wsn = nnrt_conv2d_pool_ws_floats(g);
    float *ws = guarded((long)wsn, 4);
    results r = {guarded(c->np, 4), guarded(c->nx, 4), guarded(c->nw, 4), guarded(g->K, 4), guarded(c->np, 1)};
    nnrt_conv2d_forward_maxpool2(g, c->n, c->x, c->w, c->bias, c->act, r.y, r.at, ws, wsn);
    nnrt_conv2d_grad_input_maxpool2(g, c->n, c->dyp, r.at, c->relu, c->w, r.dx, ws, wsn);
    nnrt_conv2d_grad_weight_maxpool2(g, c->n, c->dyp, r.at, c->relu, c->x, r.dw, r.db, ws, wsn);
    *ok = guard_ok(ws, (long)wsn, 4) && guard_ok(r.y, c->np, 4) && guard_ok(r.dx, c->nx, 4) && guard_ok(r.dw, c->nw, 4) &&
          guard_ok(r.db, g->K, 4) && guard_ok(r.at, c->np, 1);
    free(ws);
    return r;
}

static void case_init(pcase *c) {
    const nnrt_conv2d_geom *g = &c->g;
    c->nx = (long)c->n * g->C * g->H * g->W, c->ny = (long)c->n * g->K * g->OH * g->OW, c->np = c->ny / 4;
    c->nw = (long)g->K * (g->C / g->groups) * g->kh * g->kw;
    c->x = randoms(c->nx, 0), c->w = randoms(c->nw, 0), c->bias = randoms(g->K, 0), c->dyp = randoms(c->np, 0.1);
}
static void case_free(pcase *c) { free(c->x), free(c->w), free(c->bias), free(c->dyp); }

/* Compares fused with separate; returns 1 when everything holds, with what failed in `why`. */
static int compare(const pcase *c, int fast, char *why, size_t cap) {
    const nnrt_conv2d_geom *g = &c->g;
    int guards;
    results s = separate(c), f = fused(c, &guards);
    double R = (double)c->n * g->OH * g->OW;
    int y_ok = same(f.y, s.y, c->np), at_ok = memcmp(f.at, s.at, (size_t)c->np) == 0, dx_ok = same(f.dx, s.dx, c->nx);
    int dw_ok = fast ? same(f.dw, s.dw, c->nw) : worst(f.dw, s.dw, c->nw, 1e-6 * R) <= 1;
    int db_ok = worst(f.db, s.db, g->K, 1e-6 * R) <= 1;
    snprintf(why, cap, "y %d at %d dx %d dw %d db %d guards %d (C %d %dx%d K %d k %dx%d s %d p %d,%d groups %d n %d act %d relu %d)",
             y_ok, at_ok, dx_ok, dw_ok, db_ok, guards, g->C, g->H, g->W, g->K, g->kh, g->kw, g->sh, g->ph, g->pw, g->groups,
             c->n, c->act, c->relu);
    results_free(&s), results_free(&f);
    return y_ok && at_ok && dx_ok && dw_ok && db_ok && guards;
}

/* A geometry with an even output: fast (stride 1, one group) or not. */
static nnrt_conv2d_geom random_geom(int fast, int *n) {
    nnrt_conv2d_geom g = {.sh = 1, .sw = 1, .dh = 1, .dw = 1, .groups = 1};
    g.kh = irand(1, 5), g.kw = irand(1, 5), g.ph = irand(0, g.kh / 2), g.pw = irand(0, g.kw / 2);
    if (!fast) g.sh = g.sw = 2, g.groups = 2;
    g.C = g.groups * irand(1, fast ? 40 : 4), g.K = g.groups * irand(1, fast ? 70 : 5);
    if (irand(0, 2) == 0 && fast) g.kh = g.kw = 3, g.ph = g.pw = 1, g.C = irand(8, 40), g.K = irand(8, 40);  /* Winograd */
    g.OH = 2 * irand(1, 8), g.OW = 2 * irand(1, 20);
    g.H = (g.OH - 1) * g.sh + g.kh - 2 * g.ph, g.W = (g.OW - 1) * g.sw + g.kw - 2 * g.pw;  /* ≥ 1: pads ≤ k/2 */
    *n = irand(1, 6);
    return g;
}

static const nnrt_conv2d_geom cnn_layer[2] = {
    {.C = 1, .H = 28, .W = 28, .K = 32, .OH = 28, .OW = 28, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
     .dh = 1, .dw = 1, .groups = 1},
    {.C = 32, .H = 14, .W = 14, .K = 64, .OH = 14, .OW = 14, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
     .dh = 1, .dw = 1, .groups = 1},
};

static void test_against_separate_calls(void) {
    enum { CASES = 40 };
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) continue;
        use_set(sets[s].env);
        int bad = 0;
        char why[300] = "", first[300] = "";
        for (int t = 0; t < CASES + 2; t++) {
            pcase c = {0};
            if (t < 2) c.g = cnn_layer[t], c.n = 5;
            else c.g = random_geom(t % 4 != 0, &c.n);
            c.act = t < 2 || t % 3 ? NNRT_ACT_RELU : NNRT_ACT_NONE, c.relu = c.act == NNRT_ACT_RELU;
            case_init(&c);
            int fast = s < 2 && c.g.sh == 1 && c.g.groups == 1;
            if (!compare(&c, fast, why, sizeof why) && !bad++) strcpy(first, why);
            case_free(&c);
        }
        char name[400];
        snprintf(name, sizeof name, "%s: conv + 2x2 max pooling in one call is the separate calls' (the CNN's layers, %d "
                 "random geometries)%s%s", sets[s].env, CASES, bad ? ": " : "", first);
        check(name, !bad);
    }
    use_set(NULL);
}

/* Ties (every output equal: the first pixel of each window), zeros under the ReLU (no gradient passes), NaN in x
   without an activation (the NaN wins, as in the separate pooling). */
static void test_rules(void) {
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) continue;
        use_set(sets[s].env);
        for (int kind = 0; kind < 3; kind++) {
            pcase c = {.g = cnn_layer[kind == 2 ? 0 : 1], .n = 3};
            c.act = kind == 2 ? NNRT_ACT_NONE : NNRT_ACT_RELU, c.relu = c.act == NNRT_ACT_RELU;
            case_init(&c);
            for (long e = 0; kind < 2 && e < c.nw; e++) c.w[e] = 0;
            for (int k = 0; kind < 2 && k < c.g.K; k++) c.bias[k] = kind == 0 ? 0.5f : -0.5f;
            if (kind == 2) c.x[100] = NAN, c.x[c.nx - 1] = NAN;
            char why[300];
            int ok = compare(&c, s < 2, why, sizeof why);
            int dummy;
            results f = fused(&c, &dummy);
            for (long e = 0; kind < 2 && e < c.np; e++) ok &= f.at[e] == (kind == 0 ? NNRT_AT_POSITIVE : 0);
            long nans = 0;
            for (long e = 0; e < c.np; e++) nans += isnan(f.y[e]);
            if (kind == 2) ok &= nans > 0;
            for (long e = 0; kind == 1 && e < c.nx; e++) ok &= f.dx[e] == 0;
            results_free(&f);
            static const char *what[3] = {"ties go to the window's first pixel", ("a window of zeros under the ReLU passes "
                                           "no gradient"), "a NaN is the maximum"};
            char name[400];
            snprintf(name, sizeof name, "%s: conv + max pooling: %s (%s)", sets[s].env, what[kind], why);
            check(name, ok);
            case_free(&c);
        }
    }
    use_set(NULL);
}

/* The CNN's layers on one thread, then on two: the same bits. */
static results one_thread[3][2];
static pcase cnn_case[2];
static void run_cnn(int threads) {
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) continue;
        use_set(sets[s].env);
        for (int l = 0; l < 2; l++) {
            int guards;
            if (threads == 1) {
                one_thread[s][l] = fused(&cnn_case[l], &guards);
                continue;
            }
            const pcase *c = &cnn_case[l];
            results *o = &one_thread[s][l];
            int ok = 1;
            for (int rep = 0; rep < 3; rep++) {
                results t = fused(c, &guards);
                ok &= same(t.y, o->y, c->np) && !memcmp(t.at, o->at, (size_t)c->np) && same(t.dx, o->dx, c->nx) &&
                      same(t.dw, o->dw, c->nw) && same(t.db, o->db, c->g.K) && guards;
                results_free(&t);
            }
            char name[200];
            snprintf(name, sizeof name, "%s: conv%d + max pooling on 2 threads is bit-identical to 1 thread", sets[s].env, l + 1);
            check(name, ok && nnrt_parallel_threads() == 2);
            results_free(o);
        }
    }
    use_set(NULL);
}

// ----------------------------------------------------------------------------
// float64 twins against the float64 separate calls

static void test_f64(void) {
    double wmax = 0;
    int at_ok = 1;
    for (int t = 0; t < 20; t++) {
        pcase c = {0};
        c.g = random_geom(t % 3 != 0, &c.n);
        c.act = t % 2 ? NNRT_ACT_RELU : NNRT_ACT_NONE, c.relu = t % 2;
        case_init(&c);
        const nnrt_conv2d_geom *g = &c.g;
        nnrt_pool2d_geom p = pool_of(g);
        double *x = malloc(8 * (size_t)c.nx), *w = malloc(8 * (size_t)c.nw), *b = malloc(8 * (size_t)g->K);
        double *dyp = malloc(8 * (size_t)c.np), *y = malloc(8 * (size_t)c.ny), *dy = malloc(8 * (size_t)c.ny);
        double *ry = malloc(8 * (size_t)c.np), *rdx = malloc(8 * (size_t)c.nx), *rdw = malloc(8 * (size_t)c.nw), *rdb = malloc(8 * (size_t)g->K);
        double *fy = malloc(8 * (size_t)c.np), *fdx = malloc(8 * (size_t)c.nx), *fdw = malloc(8 * (size_t)c.nw), *fdb = malloc(8 * (size_t)g->K);
        unsigned char *at = malloc((size_t)c.np);
        for (long e = 0; e < c.nx; e++) x[e] = c.x[e];
        for (long e = 0; e < c.nw; e++) w[e] = c.w[e];
        for (int k = 0; k < g->K; k++) b[k] = c.bias[k];
        for (long e = 0; e < c.np; e++) dyp[e] = c.dyp[e];
        nnrt_conv2d_forward_f64(g, c.n, x, w, b, c.act, y);
        nnrt_maxpool2d_forward_f64(&p, c.n, y, ry);
        if (c.relu) nnrt_maxpool2d_backward_relu_f64(&p, c.n, dyp, y, dy);
        else nnrt_maxpool2d_backward_f64(&p, c.n, dyp, y, dy);
        nnrt_conv2d_grad_input_f64(g, c.n, dy, w, rdx);
        nnrt_conv2d_grad_weight_f64(g, c.n, dy, x, rdw, rdb);
        nnrt_conv2d_forward_maxpool2_f64(g, c.n, x, w, b, c.act, fy, at);
        nnrt_conv2d_grad_input_maxpool2_f64(g, c.n, dyp, at, c.relu, w, fdx);
        nnrt_conv2d_grad_weight_maxpool2_f64(g, c.n, dyp, at, c.relu, x, fdw, fdb);
        for (long e = 0; e < c.np; e++) at_ok &= (fy[e] > 0) == !!(at[e] & NNRT_AT_POSITIVE);
        double *pairs[4][2] = {{fy, ry}, {fdx, rdx}, {fdw, rdw}, {fdb, rdb}};
        long counts[4] = {c.np, c.nx, c.nw, g->K};
        for (int q = 0; q < 4; q++)
            for (long e = 0; e < counts[q]; e++)
                wmax = fmax(wmax, fabs(pairs[q][0][e] - pairs[q][1][e]) / (1e-12 * (1 + fabs(pairs[q][1][e]))));
        free(x), free(w), free(b), free(dyp), free(y), free(dy), free(ry), free(rdx), free(rdw), free(rdb);
        free(fy), free(fdx), free(fdw), free(fdb), free(at);
        case_free(&c);
    }
    char name[200];
    snprintf(name, sizeof name, "conv + max pooling float64 twins against the separate float64 calls (worst %.3g of 1e-12)", wmax);
    check(name, wmax <= 1 && at_ok);
}

int main(void) {
    openblas_set_num_threads(1);
    detect_sets();
    for (int l = 0; l < 2; l++) {
        cnn_case[l] = (pcase){.g = cnn_layer[l], .n = 9, .act = NNRT_ACT_RELU, .relu = 1};
        case_init(&cnn_case[l]);
    }
    run_cnn(1);
    nnrt_parallel_init(2, 0);
    run_cnn(2);
    for (int l = 0; l < 2; l++) case_free(&cnn_case[l]);
    test_against_separate_calls();
    test_rules();
    test_f64();
    printf("conv_pool: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
