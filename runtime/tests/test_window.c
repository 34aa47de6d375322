/* test_window.c — conv2d and pooling (nnrt_window.h) against float64 reference loops written here, independent
 * of the runtime's code. usage: test_window    prints "ok <name>" / "FAIL <name>: …" and "window: P passed, F failed".
 *
 * Tolerance for a float32 result a against the float64 reference e summing R products of inputs in [−1, 1]:
 * |a − e| ≤ 1e-6·R·(1 + |e|) (float32 rounding grows at worst linearly in R; a wrong index is off by O(1)).
 * The float64 twins must agree to 1e-12·(1 + |e|). Each conv runs with every kernel set the CPU has (AVX-512,
 * AVX2: the fast path for stride 1; NNRT_GEMM=blas: the plain path), on ~80 random geometries and on the CNN
 * workload's two layers with a realistic dy (ReLU and max pooling's backward: mostly zeros). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cblas.h>

#include "nnrt.h"
#include "kernel_sets.h"
#include "nnrt_window.h"
#include "nnrt_fracpool.h"

static int passed, failed;

#define CHECK(name, cond) check_at(__FILE__, __LINE__, name, (cond), #cond)
static void check_at(const char *file, int line, const char *name, int ok, const char *expr) {
    if (ok) { passed++; printf("ok   %s\n", name); }
    else { failed++; printf("FAIL %s (%s:%d): %s\n", name, file, line, expr); }
}

static uint64_t rng = 88172645463325252ull;
static double urand(void) {  /* [−1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / 4503599627370496.0 - 1.0;
}
static int irand(int lo, int hi) { return lo + (int)((urand() + 1.0) * 0.5 * (hi - lo + 1)) % (hi - lo + 1); }

static float *fill(long count, double zeros) {  /* random floats, a fraction `zeros` of them exactly zero */
    float *p = malloc(sizeof(float) * (size_t)(count + 1));
    for (long i = 0; i < count; i++) p[i] = (urand() + 1.0) * 0.5 < zeros ? 0.0f : (float)urand();
    return p;
}

enum { GUARD = 32 };
static const float SENTINEL = 12345.0f;

/* count floats followed by GUARD sentinels, filled with NaN (so that an element left unwritten fails). */
static float *guarded(long count) {
    float *p = malloc(sizeof(float) * (size_t)(count + GUARD));
    for (long i = 0; i < count; i++) p[i] = NAN;
    for (int i = 0; i < GUARD; i++) p[count + i] = SENTINEL;
    return p;
}
static int guard_ok(const float *p, long count) {
    for (int i = 0; i < GUARD; i++)
        if (p[count + i] != SENTINEL) return 0;
    return 1;
}

// ----------------------------------------------------------------------------
// the float64 references

#define TAPS(g, BODY)                                                                                               \
    for (int b = 0; b < n; b++)                                                                                    \
        for (int k = 0; k < g->K; k++)                                                                             \
            for (int oh = 0; oh < g->OH; oh++)                                                                     \
                for (int ow = 0; ow < g->OW; ow++)                                                                 \
                    for (int c = 0; c < g->C / g->groups; c++)                                                     \
                        for (int i = 0; i < g->kh; i++)                                                            \
                            for (int j = 0; j < g->kw; j++) {                                                      \
                                int ih = oh * g->sh - g->ph + i * g->dh, iw = ow * g->sw - g->pw + j * g->dw;    \
                                if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;                       \
                                int cin = k / (g->K / g->groups) * (g->C / g->groups) + c;                         \
                                long X = (((long)b * g->C + cin) * g->H + ih) * g->W + iw;                          \
                                long Y = (((long)b * g->K + k) * g->OH + oh) * g->OW + ow;                          \
                                long Wt = (((long)k * (g->C / g->groups) + c) * g->kh + i) * g->kw + j;             \
                                BODY;                                                                              \
                            }

static void ref_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias, int act,
                        double *y) {
    long ny = (long)n * g->K * g->OH * g->OW;
    for (long e = 0; e < ny; e++) y[e] = bias ? bias[e / (g->OH * g->OW) % g->K] : 0.0;
    TAPS(g, y[Y] += (double)w[Wt] * x[X]);
    if (act == NNRT_ACT_RELU)
        for (long e = 0; e < ny; e++) y[e] = y[e] > 0 ? y[e] : 0;
}
static void ref_grad_input(const nnrt_conv2d_geom *g, int n, const float *dy, const float *w, double *dx) {
    memset(dx, 0, sizeof(double) * (size_t)n * g->C * g->H * g->W);
    TAPS(g, dx[X] += (double)w[Wt] * dy[Y]);
}
static void ref_grad_weight(const nnrt_conv2d_geom *g, int n, const float *dy, const float *x, double *dw, double *db) {
    memset(dw, 0, sizeof(double) * (size_t)g->K * (g->C / g->groups) * g->kh * g->kw);
    memset(db, 0, sizeof(double) * (size_t)g->K);
    TAPS(g, dw[Wt] += (double)dy[Y] * x[X]);
    for (long e = 0; e < (long)n * g->K * g->OH * g->OW; e++) db[e / (g->OH * g->OW) % g->K] += dy[e];
}

/* The largest |a − e| / (tol·(1 + |e|)) (≤ 1 passes); NaN counts as a failure. */
static double worst(const float *a, const double *e, long count, double tol) {
    double m = 0;
    for (long i = 0; i < count; i++) {
        double r = fabs(a[i] - e[i]) / (tol * (1 + fabs(e[i])));
        if (!(r <= m)) m = isnan(r) ? INFINITY : r;
    }
    return m;
}
static double worst64(const double *a, const double *e, long count, double tol) {
    double m = 0;
    for (long i = 0; i < count; i++) {
        double r = fabs(a[i] - e[i]) / (tol * (1 + fabs(e[i])));
        if (!(r <= m)) m = isnan(r) ? INFINITY : r;
    }
    return m;
}

// ----------------------------------------------------------------------------
// one convolution case: inputs, references, and a run of the float32 functions under the current kernel set

typedef struct {
    nnrt_conv2d_geom g;
    int n, act, with_bias, grad_input;
    long nx, ny, nw;
    float *x, *w, *bias, *dy;
    double *ry, *rdx, *rdw, *rdb;
} conv_case;

typedef struct { float *y, *dx, *dw, *db; } conv_out;

static void case_init(conv_case *c, double dy_zeros) {
    const nnrt_conv2d_geom *g = &c->g;
    c->nx = (long)c->n * g->C * g->H * g->W, c->ny = (long)c->n * g->K * g->OH * g->OW;
    c->nw = (long)g->K * (g->C / g->groups) * g->kh * g->kw;
    c->x = fill(c->nx, 0), c->w = fill(c->nw, 0), c->bias = c->with_bias ? fill(g->K, 0) : NULL;
    if (!c->dy) c->dy = fill(c->ny, dy_zeros);
    c->ry = malloc(sizeof(double) * (size_t)c->ny), c->rdx = malloc(sizeof(double) * (size_t)c->nx);
    c->rdw = malloc(sizeof(double) * (size_t)c->nw), c->rdb = malloc(sizeof(double) * (size_t)g->K);
    ref_forward(g, c->n, c->x, c->w, c->bias, c->act, c->ry);
    ref_grad_input(g, c->n, c->dy, c->w, c->rdx);
    ref_grad_weight(g, c->n, c->dy, c->x, c->rdw, c->rdb);
}

static void case_free(conv_case *c) {
    free(c->x), free(c->w), free(c->bias), free(c->dy), free(c->ry), free(c->rdx), free(c->rdw), free(c->rdb);
}

/* worst[0..3]: forward, grad-input, grad-weight, bias gradient (ratios to the tolerance; > 1 fails, also when a
   guard band or the workspace's guard changed). `keep` receives copies of the outputs. */
static void case_run(const conv_case *c, double worst_of[4], conv_out *keep) {
    const nnrt_conv2d_geom *g = &c->g;
    size_t wsn = nnrt_conv2d_ws_floats(g);
    float *ws = guarded((long)wsn), *y = guarded(c->ny), *dx = guarded(c->nx), *dw = guarded(c->nw), *db = guarded(g->K);
    double R = (double)(g->C / g->groups) * g->kh * g->kw + 1, Rg = (double)(g->K / g->groups) * g->kh * g->kw;
    double Rw = (double)c->n * g->OH * g->OW;
    nnrt_conv2d_forward(g, c->n, c->x, c->w, c->bias, c->act, y, ws, wsn);
    worst_of[0] = guard_ok(y, c->ny) ? worst(y, c->ry, c->ny, 1e-6 * R) : INFINITY;
    if (c->grad_input) {
        nnrt_conv2d_grad_input(g, c->n, c->dy, c->w, dx, ws, wsn);
        worst_of[1] = guard_ok(dx, c->nx) ? worst(dx, c->rdx, c->nx, 1e-6 * Rg) : INFINITY;
    } else worst_of[1] = 0;
    nnrt_conv2d_grad_weight(g, c->n, c->dy, c->x, dw, db, ws, wsn);
    worst_of[2] = guard_ok(dw, c->nw) ? worst(dw, c->rdw, c->nw, 1e-6 * Rw) : INFINITY;
    worst_of[3] = guard_ok(db, g->K) ? worst(db, c->rdb, g->K, 1e-6 * Rw) : INFINITY;
    if (!guard_ok(ws, (long)wsn)) worst_of[0] = INFINITY;
    if (keep) *keep = (conv_out){y, dx, dw, db};
    else free(y), free(dx), free(dw), free(db);
    free(ws);
}

static void geom_text(const nnrt_conv2d_geom *g, int n, char *buf, size_t cap) {
    snprintf(buf, cap, "n %d C %d %dx%d K %d %dx%d k %dx%d s %d,%d p %d,%d d %d,%d groups %d", n, g->C, g->H, g->W, g->K,
             g->OH, g->OW, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->dh, g->dw, g->groups);
}

// ----------------------------------------------------------------------------
// random geometries

/* A random geometry; `fast` keeps to what the fast path takes (stride 1, dilation 1, one group). */
static nnrt_conv2d_geom random_geom(int fast, int *n) {
    nnrt_conv2d_geom g = {0};
    int kind = irand(0, 3);  /* groups 1, 2, 4, depthwise */
    g.kh = irand(1, 5), g.kw = irand(1, 5);
    g.sh = irand(1, 3), g.sw = irand(1, 3), g.dh = irand(1, 2), g.dw = irand(1, 2);
    g.ph = irand(0, 2), g.pw = irand(0, 2);
    if (fast) g.sh = g.sw = g.dh = g.dw = 1, kind = 0;
    if (kind == 3) g.C = irand(1, 6), g.groups = g.C, g.K = g.C * irand(1, 2);
    else {
        g.groups = kind == 0 ? 1 : kind == 1 ? 2 : 4;
        g.C = g.groups * (fast ? irand(1, 40) : irand(1, 4));
        g.K = g.groups * (fast ? irand(1, 70) : irand(1, 5));
    }
    int minh = g.dh * (g.kh - 1) + 1 - 2 * g.ph, minw = g.dw * (g.kw - 1) + 1 - 2 * g.pw;
    g.H = irand(minh > 1 ? minh : 1, 13), g.W = irand(minw > 1 ? minw : 1, 13);
    g.OH = (g.H + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
    *n = irand(1, 7);
    return g;
}

static void test_random_convs(void) {
    enum { CASES = 80 };
    static const char *what[4] = {"forward", "grad_input", "grad_weight", "bias gradient"};
    double wmax[3][4] = {{0}};
    char where[3][4][160] = {{{0}}};
    for (int t = 0; t < CASES; t++) {
        conv_case c = {0};
        c.g = random_geom(t % 2 == 0, &c.n);
        c.act = t % 3 == 0 ? NNRT_ACT_RELU : NNRT_ACT_NONE, c.with_bias = t % 4 != 1, c.grad_input = 1;
        case_init(&c, t % 5 == 0 ? 0.0 : 0.8);
        for (int s = 0; s < 3; s++) {
            if (!sets[s].present) continue;
            use_set(sets[s].env);
            double wo[4];
            case_run(&c, wo, NULL);
            for (int f = 0; f < 4; f++)
                if (!(wo[f] <= wmax[s][f])) {
                    wmax[s][f] = isnan(wo[f]) ? INFINITY : wo[f];
                    geom_text(&c.g, c.n, where[s][f], sizeof where[s][f]);
                }
        }
        case_free(&c);
    }
    use_set(NULL);
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) { printf("skip %s: this CPU lacks it\n", sets[s].env); continue; }
        for (int f = 0; f < 4; f++) {
            char name[200];
            snprintf(name, sizeof name, "%s: conv2d %s on %d random geometries (worst %.3g of the tolerance)",
                     sets[s].env, what[f], CASES, wmax[s][f]);
            check_at(__FILE__, __LINE__, name, wmax[s][f] <= 1, "worst ≤ 1");
            if (wmax[s][f] > 1) printf("     at %s\n", where[s][f]);
        }
    }
}

/* 3×3, stride 1 geometries with enough channels for the Winograd forward (conv.c), rows wider than a vector of
   tiles, odd output sizes, pads 0–2; its forward against the reference, and against the direct form
   (NNRT_CONV_WINOGRAD=0) within the same tolerance. */
static void test_winograd_convs(void) {
    enum { CASES = 14 };
    double wmax[3] = {0}, wdir[3] = {0};
    char where[3][160] = {{0}};
    for (int t = 0; t < CASES; t++) {
        conv_case c = {0};
        nnrt_conv2d_geom *g = &c.g;
        g->kh = g->kw = 3, g->sh = g->sw = g->dh = g->dw = 1, g->groups = 1;
        g->ph = irand(0, 2), g->pw = irand(0, 2), g->C = irand(8, 40), g->K = irand(8, 70);
        g->H = irand(3 - 2 * g->ph > 1 ? 3 - 2 * g->ph : 1, 20), g->W = irand(3 - 2 * g->pw > 1 ? 3 - 2 * g->pw : 1, t % 3 ? 20 : 44);
        g->OH = g->H + 2 * g->ph - 2, g->OW = g->W + 2 * g->pw - 2;
        c.n = irand(1, 6), c.act = t % 2 ? NNRT_ACT_RELU : NNRT_ACT_NONE, c.with_bias = t % 4 != 3;
        case_init(&c, 0.8);
        double R = (double)g->C * 9 + 1;
        for (int s = 0; s < 2; s++) {
            if (!sets[s].present) continue;
            use_set(sets[s].env);
            size_t wsn = nnrt_conv2d_ws_floats(g);
            float *ws = guarded((long)wsn), *y = guarded(c.ny), *yd = guarded(c.ny);
            nnrt_conv2d_forward(g, c.n, c.x, c.w, c.bias, c.act, y, ws, wsn);
            setenv("NNRT_CONV_WINOGRAD", "0", 1);
            nnrt_conv2d_forward(g, c.n, c.x, c.w, c.bias, c.act, yd, ws, wsn);
            unsetenv("NNRT_CONV_WINOGRAD");
            double wo = guard_ok(y, c.ny) && guard_ok(ws, (long)wsn) ? worst(y, c.ry, c.ny, 1e-6 * R) : INFINITY;
            double wd = guard_ok(yd, c.ny) ? worst(yd, c.ry, c.ny, 1e-6 * R) : INFINITY;
            if (!(wo <= wmax[s])) wmax[s] = isnan(wo) ? INFINITY : wo, geom_text(g, c.n, where[s], sizeof where[s]);
            if (!(wd <= wdir[s])) wdir[s] = isnan(wd) ? INFINITY : wd;
            free(ws), free(y), free(yd);
        }
        case_free(&c);
    }
    use_set(NULL);
    for (int s = 0; s < 2; s++) {
        if (!sets[s].present) continue;
        char name[200];
        snprintf(name, sizeof name, "%s: conv2d forward on %d 3x3 geometries (Winograd: worst %.3g of the tolerance; "
                 "direct: %.3g)", sets[s].env, CASES, wmax[s], wdir[s]);
        check_at(__FILE__, __LINE__, name, wmax[s] <= 1 && wdir[s] <= 1, "worst ≤ 1");
        if (wmax[s] > 1) printf("     at %s\n", where[s]);
    }
}

// ----------------------------------------------------------------------------
// the CNN workload's layers, with dy as training makes it; one thread against two

static const nnrt_conv2d_geom cnn_layer[2] = {
    {.C = 1, .H = 28, .W = 28, .K = 32, .OH = 28, .OW = 28, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
     .dh = 1, .dw = 1, .groups = 1},
    {.C = 32, .H = 14, .W = 14, .K = 64, .OH = 14, .OW = 14, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1,
     .dh = 1, .dw = 1, .groups = 1},
};

/* dy (n, K, OH, OW) = maxpool2's backward of a random gradient, masked by ReLU's derivative at a random
   pre-activation: about 80 % zeros, in max pooling's pattern. */
static float *realistic_dy(const nnrt_conv2d_geom *g, int n) {
    long ny = (long)n * g->K * g->OH * g->OW;
    float *pre = fill(ny, 0), *act = malloc(sizeof(float) * (size_t)ny), *dy = malloc(sizeof(float) * (size_t)ny);
    for (long e = 0; e < ny; e++) act[e] = pre[e] > 0 ? pre[e] : 0;
    nnrt_pool2d_geom p = {.C = g->K, .H = g->OH, .W = g->OW, .OH = g->OH / 2, .OW = g->OW / 2, .kh = 2, .kw = 2,
                          .sh = 2, .sw = 2, .count_include_pad = 1};
    float *dpool = fill((long)n * g->K * p.OH * p.OW, 0);
    nnrt_maxpool2d_backward(&p, n, dpool, act, dy);
    for (long e = 0; e < ny; e++) dy[e] = pre[e] > 0 ? dy[e] : 0;
    free(pre), free(act), free(dpool);
    return dy;
}

static conv_case cnn_case[2];
static conv_out one_thread[3][2];

static void cnn_cases_init(void) {
    for (int l = 0; l < 2; l++) {
        conv_case *c = &cnn_case[l];
        c->g = cnn_layer[l], c->n = 5, c->act = NNRT_ACT_RELU, c->with_bias = 1, c->grad_input = l == 1;
        c->dy = realistic_dy(&c->g, c->n);
        case_init(c, 0);
        long zeros = 0;
        for (long e = 0; e < c->ny; e++) zeros += c->dy[e] == 0;
        char name[120];
        snprintf(name, sizeof name, "conv%d: the realistic dy is mostly zeros (%.0f %%)", l + 1, 100.0 * zeros / c->ny);
        CHECK(name, zeros >= c->ny * 3 / 4);
    }
}

/* On one thread (before the worker starts): each set's results on the two layers, kept. */
static void test_cnn_one_thread(void) {
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) continue;
        use_set(sets[s].env);
        for (int l = 0; l < 2; l++) {
            double wo[4];
            case_run(&cnn_case[l], wo, &one_thread[s][l]);
            char name[160];
            snprintf(name, sizeof name, "%s: conv%d (CNN layer, sparse dy, 1 thread) forward %.2g, grad_input %.2g, "
                     "grad_weight %.2g, bias %.2g of the tolerance", sets[s].env, l + 1, wo[0], wo[1], wo[2], wo[3]);
            check_at(__FILE__, __LINE__, name, wo[0] <= 1 && wo[1] <= 1 && wo[2] <= 1 && wo[3] <= 1, "worst ≤ 1");
        }
    }
    use_set(NULL);
}

static int same(const float *a, const float *b, long count) { return memcmp(a, b, sizeof(float) * (size_t)count) == 0; }

/* On two threads: bit-identical to one thread. */
static void test_cnn_two_threads(void) {
    for (int s = 0; s < 3; s++) {
        if (!sets[s].present) continue;
        use_set(sets[s].env);
        for (int l = 0; l < 2; l++) {
            const conv_case *c = &cnn_case[l];
            conv_out two, *one = &one_thread[s][l];
            double wo[4];
            for (int rep = 0; rep < 3; rep++) {  /* a few times: which thread takes which chunk varies */
                case_run(c, wo, &two);
                int ok = same(one->y, two.y, c->ny) && same(one->dw, two.dw, c->nw) && same(one->db, two.db, c->g.K) &&
                         (!c->grad_input || same(one->dx, two.dx, c->nx));
                char name[120];
                snprintf(name, sizeof name, "%s: conv%d on 2 threads is bit-identical to 1 thread (run %d)",
                         sets[s].env, l + 1, rep + 1);
                CHECK(name, ok && nnrt_parallel_threads() == 2);
                free(two.y), free(two.dx), free(two.dw), free(two.db);
            }
            free(one->y), free(one->dx), free(one->dw), free(one->db);
        }
    }
    use_set(NULL);
    case_free(&cnn_case[0]), case_free(&cnn_case[1]);
}

// ----------------------------------------------------------------------------
// the workspace check: too small a workspace stops with an internal error (in a forked child)

static float *death_buf;  /* global, so that the leak checker of the dying child sees it reachable */
static void too_small(int which) {
    nnrt_conv2d_geom g = cnn_layer[1];
    size_t need = nnrt_conv2d_ws_floats(&g);
    float *buf = death_buf = calloc(need + (size_t)g.C * g.H * g.W * 2 + (size_t)g.K * g.C * 9 + (size_t)g.K * g.OH * g.OW * 2, 4);
    float *ws = buf, *x = ws + need, *w = x + g.C * g.H * g.W, *y = w + g.K * g.C * 9;
    if (which == 0) nnrt_conv2d_forward(&g, 1, x, w, NULL, 0, y, ws, need - 1);
    if (which == 1) nnrt_conv2d_grad_input(&g, 1, y, w, x, ws, need - 1);
    if (which == 2) nnrt_conv2d_grad_weight(&g, 1, y, x, w, NULL, ws, need - 1);
}

static void test_workspace_check(void) {
    static const char *names[3] = {"forward", "grad_input", "grad_weight"};
    for (int which = 0; which < 3; which++) {
        int fd[2];
        if (pipe(fd) != 0) abort();
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(fd[1], 2);
            close(fd[0]);
            too_small(which);
            _exit(0);
        }
        close(fd[1]);
        char err[1024] = {0};
        size_t got = 0;
        ssize_t r;
        while (got + 1 < sizeof err && (r = read(fd[0], err + got, sizeof err - 1 - got)) > 0) got += (size_t)r;
        close(fd[0]);
        int status;
        waitpid(pid, &status, 0);
        char name[120];
        snprintf(name, sizeof name, "conv2d %s with a workspace one float short stops with an internal error", names[which]);
        CHECK(name, WIFEXITED(status) && WEXITSTATUS(status) == 1 && strstr(err, "internal error") &&
                        strstr(err, "nnrt_conv2d_ws_floats"));
    }
}

// ----------------------------------------------------------------------------
// pooling

/* References: max (PyTorch's rule: −∞ start, a greater element or a NaN takes over; the first in-bounds element
   is the argmax of a window of −∞) and average. */
static void ref_pool(const nnrt_pool2d_geom *g, int n, const double *x, const double *dy, double *y, double *dx, int max) {
    memset(dx, 0, sizeof(double) * (size_t)n * g->C * g->H * g->W);
    for (long pl = 0; pl < (long)n * g->C; pl++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                double m = -INFINITY, s = 0;
                long arg = -1, cnt = 0;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oh * g->sh - g->ph + i, w = ow * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        long at = (pl * g->H + h) * g->W + w;
                        if (arg < 0) arg = at;
                        if (x[at] > m || isnan(x[at])) m = x[at], arg = at;
                        s += x[at], cnt++;
                    }
                long o = (pl * g->OH + oh) * g->OW + ow;
                double div = g->count_include_pad ? g->kh * g->kw : (double)cnt;
                y[o] = max ? m : s / div;
                if (max) dx[arg] += dy[o];
                else
                    for (int i = 0; i < g->kh; i++)
                        for (int j = 0; j < g->kw; j++) {
                            int h = oh * g->sh - g->ph + i, w = ow * g->sw - g->pw + j;
                            if (h >= 0 && h < g->H && w >= 0 && w < g->W) dx[(pl * g->H + h) * g->W + w] += dy[o] / div;
                        }
            }
}

static void test_random_pools(void) {
    double w32 = 0, w64 = 0;
    for (int t = 0; t < 60; t++) {
        nnrt_pool2d_geom g = {.C = irand(1, 5), .kh = irand(1, 4), .kw = irand(1, 4), .sh = irand(1, 3), .sw = irand(1, 3),
                              .count_include_pad = t % 2};
        g.ph = irand(0, g.kh / 2), g.pw = irand(0, g.kw / 2);
        g.H = irand(g.kh, 12), g.W = irand(g.kw, 12);
        g.OH = (g.H + 2 * g.ph - g.kh) / g.sh + 1, g.OW = (g.W + 2 * g.pw - g.kw) / g.sw + 1;
        int n = irand(1, 4), max = t % 3 != 0;
        long nx = (long)n * g.C * g.H * g.W, ny = (long)n * g.C * g.OH * g.OW;
        float *x = fill(nx, 0), *dy = fill(ny, 0), *y = guarded(ny), *dx = guarded(nx);
        if (t % 4 == 0)  /* ties: values from a handful */
            for (long e = 0; e < nx; e++) x[e] = (float)((int)(x[e] * 2.5f)) / 2;
        double *xd = malloc(8 * (size_t)nx), *dyd = malloc(8 * (size_t)ny), *ry = malloc(8 * (size_t)ny), *rdx = malloc(8 * (size_t)nx);
        double *y64 = malloc(8 * (size_t)ny), *dx64 = malloc(8 * (size_t)nx);
        for (long e = 0; e < nx; e++) xd[e] = x[e];
        for (long e = 0; e < ny; e++) dyd[e] = dy[e];
        ref_pool(&g, n, xd, dyd, ry, rdx, max);
        if (max) {
            nnrt_maxpool2d_forward(&g, n, x, y), nnrt_maxpool2d_backward(&g, n, dy, x, dx);
            nnrt_maxpool2d_forward_f64(&g, n, xd, y64), nnrt_maxpool2d_backward_f64(&g, n, dyd, xd, dx64);
        } else {
            nnrt_avgpool2d_forward(&g, n, x, y), nnrt_avgpool2d_backward(&g, n, dy, dx);
            nnrt_avgpool2d_forward_f64(&g, n, xd, y64), nnrt_avgpool2d_backward_f64(&g, n, dyd, dx64);
        }
        double a = fmax(worst(y, ry, ny, 1e-6 * 17), worst(dx, rdx, nx, 1e-6 * 17));
        if (!guard_ok(y, ny) || !guard_ok(dx, nx)) a = INFINITY;
        if (max) {  /* the ReLU-masked backward: the same times step(x) */
            for (long e = 0; e < nx; e++) rdx[e] *= xd[e] > 0;
            nnrt_maxpool2d_backward_relu(&g, n, dy, x, dx), nnrt_maxpool2d_backward_relu_f64(&g, n, dyd, xd, dx64);
            a = fmax(a, worst(dx, rdx, nx, 1e-6 * 17));
            w64 = fmax(w64, worst64(dx64, rdx, nx, 1e-12));
        }
        w32 = fmax(w32, a);
        w64 = fmax(w64, fmax(worst64(y64, ry, ny, 1e-12), worst64(dx64, rdx, nx, 1e-12)));
        free(x), free(dy), free(y), free(dx), free(xd), free(dyd), free(ry), free(rdx), free(y64), free(dx64);
    }
    char name[120];
    snprintf(name, sizeof name, "max and avg pooling on 60 random geometries (worst %.3g of the tolerance)", w32);
    CHECK(name, w32 <= 1);
    snprintf(name, sizeof name, "pooling's float64 twins on the same (worst %.3g of 1e-12)", w64);
    CHECK(name, w64 <= 1);
}

/* The 2×2, stride-2 fast path (even and odd sizes, ties) and the ReLU-masked backward, f32 and f64, against
   ref_pool (times step(x) for the mask); every general geometry goes through the general loops instead. */
static void test_pool2x2(void) {
    const int sizes[][2] = {{2, 2}, {4, 6}, {5, 7}, {28, 28}, {3, 2}};
    double w32 = 0, w64 = 0;
    for (int t = 0; t < 10; t++) {
        nnrt_pool2d_geom g = {.C = 3, .H = sizes[t % 5][0], .W = sizes[t % 5][1], .kh = 2, .kw = 2, .sh = 2, .sw = 2,
                              .count_include_pad = 1};
        g.OH = g.H / 2, g.OW = g.W / 2;
        int n = 2, relu = t >= 5;
        long nx = (long)n * g.C * g.H * g.W, ny = (long)n * g.C * g.OH * g.OW;
        float *x = fill(nx, 0), *dy = fill(ny, 0), *y = guarded(ny), *dx = guarded(nx);
        for (long e = 0; e < nx; e++) x[e] = (float)((int)(x[e] * 2.5f)) / 2 - (relu ? 0.5f : 0);  /* ties; ≤ 0 too */
        double *xd = malloc(8 * (size_t)nx), *dyd = malloc(8 * (size_t)ny), *ry = malloc(8 * (size_t)ny), *rdx = malloc(8 * (size_t)nx);
        double *y64 = malloc(8 * (size_t)ny), *dx64 = malloc(8 * (size_t)nx);
        for (long e = 0; e < nx; e++) xd[e] = x[e];
        for (long e = 0; e < ny; e++) dyd[e] = dy[e];
        ref_pool(&g, n, xd, dyd, ry, rdx, 1);
        if (relu)
            for (long e = 0; e < nx; e++) rdx[e] *= xd[e] > 0;
        nnrt_maxpool2d_forward(&g, n, x, y), nnrt_maxpool2d_forward_f64(&g, n, xd, y64);
        if (relu) nnrt_maxpool2d_backward_relu(&g, n, dy, x, dx), nnrt_maxpool2d_backward_relu_f64(&g, n, dyd, xd, dx64);
        else nnrt_maxpool2d_backward(&g, n, dy, x, dx), nnrt_maxpool2d_backward_f64(&g, n, dyd, xd, dx64);
        double a = fmax(worst(y, ry, ny, 1e-6), worst(dx, rdx, nx, 1e-6));
        if (!guard_ok(y, ny) || !guard_ok(dx, nx)) a = INFINITY;
        w32 = fmax(w32, a);
        w64 = fmax(w64, fmax(worst64(y64, ry, ny, 1e-12), worst64(dx64, rdx, nx, 1e-12)));
        free(x), free(dy), free(y), free(dx), free(xd), free(dyd), free(ry), free(rdx), free(y64), free(dx64);
    }
    char name[140];
    snprintf(name, sizeof name, "maxpool 2x2 stride 2 (fast path), plain and ReLU-masked, f32 (worst %.3g of the tolerance)", w32);
    CHECK(name, w32 <= 1);
    snprintf(name, sizeof name, "maxpool 2x2 stride 2, plain and ReLU-masked, f64 (worst %.3g of 1e-12)", w64);
    CHECK(name, w64 <= 1);
}

/* Max pooling's tie rule, NaN and padding, on hand-made planes. */
static void test_maxpool_rules(void) {
    /* 2×2 windows, stride 2 over a 2×4 plane: ties go to the first maximum in row-major order. */
    nnrt_pool2d_geom g = {.C = 1, .H = 2, .W = 4, .OH = 1, .OW = 2, .kh = 2, .kw = 2, .sh = 2, .sw = 2};
    float x[8] = {5, 1, 2, 7, 5, 5, 7, 7}, dy[2] = {1, 10}, dx[8], y[2];
    nnrt_maxpool2d_forward(&g, 1, x, y);
    nnrt_maxpool2d_backward(&g, 1, dy, x, dx);
    float want[8] = {1, 0, 0, 10, 0, 0, 0, 0};
    CHECK("maxpool: a tie goes to the first maximum in row-major window order", y[0] == 5 && y[1] == 7 && !memcmp(dx, want, sizeof dx));
    /* Overlapping windows (3×3, stride 1) that share their maximum add at it. */
    nnrt_pool2d_geom o = {.C = 1, .H = 3, .W = 4, .OH = 1, .OW = 2, .kh = 3, .kw = 3, .sh = 1, .sw = 1};
    float xo[12] = {0, 0, 0, 0, 0, 9, 9, 0, 0, 0, 0, 0}, dyo[2] = {1, 2}, dxo[12];
    nnrt_maxpool2d_backward(&o, 1, dyo, xo, dxo);
    CHECK("maxpool: overlapping windows accumulate at their shared maximum (a tie: the first)", dxo[5] == 3 && dxo[6] == 0 && dxo[0] == 0);
    /* A NaN is the maximum. */
    float xn[8] = {1, NAN, 2, 2, 3, 4, 2, 2}, yn[2], dxn[8];
    nnrt_maxpool2d_forward(&g, 1, xn, yn);
    nnrt_maxpool2d_backward(&g, 1, dy, xn, dxn);
    CHECK("maxpool: a NaN counts as the maximum", isnan(yn[0]) && yn[1] == 2 && dxn[1] == 1 && dxn[2] == 10);
    /* Padding is −∞: a window of negative numbers and padding gives a number, not 0. */
    nnrt_pool2d_geom p = {.C = 1, .H = 2, .W = 2, .OH = 2, .OW = 2, .kh = 2, .kw = 2, .sh = 1, .sw = 1, .ph = 1, .pw = 1};
    float xp[4] = {-3, -1, -2, -4}, yp[4];
    nnrt_maxpool2d_forward(&p, 1, xp, yp);
    CHECK("maxpool: padding never wins (it is −∞)", yp[0] == -3 && yp[1] == -1 && yp[2] == -2 && yp[3] == -1);
    /* avg with and without the padding in the count */
    nnrt_pool2d_geom a = p;
    float ya[4];
    a.count_include_pad = 1;
    nnrt_avgpool2d_forward(&a, 1, xp, ya);
    int inc = ya[0] == -0.75f;
    a.count_include_pad = 0;
    nnrt_avgpool2d_forward(&a, 1, xp, ya);
    CHECK("avgpool: count_include_pad divides by kh·kw, else by the in-bounds count", inc && ya[0] == -3.0f);
}

// ----------------------------------------------------------------------------
// the float64 conv twins

static void test_conv_f64(void) {
    double wmax = 0;
    for (int t = 0; t < 40; t++) {
        conv_case c = {0};
        c.g = random_geom(t % 2 == 0, &c.n);
        c.act = t % 2 ? NNRT_ACT_RELU : NNRT_ACT_NONE, c.with_bias = t % 3 != 0;
        case_init(&c, 0.5);
        double *x = malloc(8 * (size_t)c.nx), *w = malloc(8 * (size_t)c.nw), *dy = malloc(8 * (size_t)c.ny), b[512];
        double *y = malloc(8 * (size_t)c.ny), *dx = malloc(8 * (size_t)c.nx), *dw = malloc(8 * (size_t)c.nw), db[512];
        for (long e = 0; e < c.nx; e++) x[e] = c.x[e];
        for (long e = 0; e < c.nw; e++) w[e] = c.w[e];
        for (long e = 0; e < c.ny; e++) dy[e] = c.dy[e];
        for (int k = 0; k < c.g.K && c.bias; k++) b[k] = c.bias[k];
        nnrt_conv2d_forward_f64(&c.g, c.n, x, w, c.bias ? b : NULL, c.act, y);
        nnrt_conv2d_grad_input_f64(&c.g, c.n, dy, w, dx);
        nnrt_conv2d_grad_weight_f64(&c.g, c.n, dy, x, dw, db);
        wmax = fmax(wmax, fmax(worst64(y, c.ry, c.ny, 1e-12), worst64(dx, c.rdx, c.nx, 1e-12)));
        wmax = fmax(wmax, fmax(worst64(dw, c.rdw, c.nw, 1e-12), worst64(db, c.rdb, c.g.K, 1e-12)));
        free(x), free(w), free(dy), free(y), free(dx), free(dw);
        case_free(&c);
    }
    char name[120];
    snprintf(name, sizeof name, "conv2d float64 twins on 40 random geometries (worst %.3g of 1e-12)", wmax);
    CHECK(name, wmax <= 1);
}

/* Fractional max pooling (nnrt_fracpool.h): the window starts against a case worked by hand, then random geometries
   (overlapping windows, one output, u at 0) against loops written here from PyTorch's definition, f32 on both
   threads and the f64 twins; the backward adds where windows overlap. */
static int ref_start(int i, int size, int out, int k, double u) {
    if (i == out - 1) return size - k;
    double a = (double)(size - k) / (out - 1);
    return (int)floor((i + u) * a) - (int)floor(u * a);
}
static void test_fractional_pools(void) {
    int hand[5];
    for (int i = 0; i < 5; i++) hand[i] = nnrt_fracpool_start(i, 8, 5, 2, 0.3);  /* α = 1.5: ⌊(i + 0.3)·1.5⌋ − 0 */
    CHECK("fractional pooling starts 0 1 3 4 6 for size 8, 5 outputs, k 2, u 0.3",
          hand[0] == 0 && hand[1] == 1 && hand[2] == 3 && hand[3] == 4 && hand[4] == 6);
    double w32 = 0, w64 = 0;
    for (int t = 0; t < 40; t++) {
        nnrt_fracpool2d_geom g = {.C = irand(1, 4), .kh = irand(1, 3), .kw = irand(1, 3)};
        g.H = irand(g.kh, 12), g.W = irand(g.kw, 12);
        g.OH = irand(1, g.H - g.kh + 1), g.OW = irand(1, g.W - g.kw + 1);
        int n = irand(1, 3);
        long planes = (long)n * g.C, nx = planes * g.H * g.W, ny = planes * g.OH * g.OW;
        float *x = fill(nx, 0), *dy = fill(ny, 0), *u = fill(2 * planes, 0), *y = guarded(ny), *dx = guarded(nx);
        for (long e = 0; e < 2 * planes; e++) u[e] = t % 5 == 0 ? 0.0f : (u[e] + 1) / 2;
        double *xd = malloc(8 * (size_t)nx), *dyd = malloc(8 * (size_t)ny), *ud = malloc(16 * (size_t)planes);
        double *ry = calloc((size_t)ny, 8), *rdx = calloc((size_t)nx, 8), *y64 = malloc(8 * (size_t)ny), *dx64 = malloc(8 * (size_t)nx);
        for (long e = 0; e < nx; e++) xd[e] = x[e];
        for (long e = 0; e < ny; e++) dyd[e] = dy[e];
        for (long e = 0; e < 2 * planes; e++) ud[e] = u[e];
        for (long p = 0; p < planes; p++)
            for (int i = 0; i < g.OH; i++)
                for (int j = 0; j < g.OW; j++) {
                    int r0 = ref_start(i, g.H, g.OH, g.kh, ud[2 * p + 1]), c0 = ref_start(j, g.W, g.OW, g.kw, ud[2 * p]);
                    long best = -1;
                    for (int r = r0; r < r0 + g.kh; r++)
                        for (int c = c0; c < c0 + g.kw; c++)
                            if (best < 0 || xd[(p * g.H + r) * g.W + c] > xd[best]) best = (p * g.H + r) * g.W + c;
                    ry[(p * g.OH + i) * g.OW + j] = xd[best];
                    rdx[best] += dyd[(p * g.OH + i) * g.OW + j];
                }
        nnrt_fracmaxpool2d_forward(&g, n, x, u, y), nnrt_fracmaxpool2d_backward(&g, n, dy, x, u, dx);
        nnrt_fracmaxpool2d_forward_f64(&g, n, xd, ud, y64), nnrt_fracmaxpool2d_backward_f64(&g, n, dyd, xd, ud, dx64);
        double a = fmax(worst(y, ry, ny, 1e-6 * 9), worst(dx, rdx, nx, 1e-6 * 9));
        if (!guard_ok(y, ny) || !guard_ok(dx, nx)) a = INFINITY;
        w32 = fmax(w32, a);
        w64 = fmax(w64, fmax(worst64(y64, ry, ny, 1e-12), worst64(dx64, rdx, nx, 1e-12)));
        free(x), free(dy), free(u), free(y), free(dx), free(xd), free(dyd), free(ud), free(ry), free(rdx), free(y64), free(dx64);
    }
    char name[140];
    snprintf(name, sizeof name, "fractional max pooling on 40 random geometries, f32 (worst %.3g of the tolerance)", w32);
    CHECK(name, w32 <= 1);
    snprintf(name, sizeof name, "fractional max pooling's float64 twins on the same (worst %.3g of 1e-12)", w64);
    CHECK(name, w64 <= 1);
}

int main(void) {
    openblas_set_num_threads(1);  /* as every trainer runs it (blas.c); its pool is not instrumented for TSan */
    detect_sets();
    test_workspace_check();  /* forks: before the worker thread exists */
    cnn_cases_init();
    test_cnn_one_thread();
    nnrt_parallel_init(2, 0);
    test_cnn_two_threads();
    test_random_convs();
    test_winograd_convs();
    test_random_pools();
    test_maxpool_rules();
    test_pool2x2();
    test_fractional_pools();
    test_conv_f64();
    printf("window: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
