/* pool.c — max and average pooling on NCHW tensors (nnrt_window.h), float32 on both threads (chunks of whole
 * channel planes, so that no two write the same memory) and the float64 twins for gradcheck.
 *
 * Max pooling follows PyTorch's CPU kernel exactly: a window's maximum starts as −∞ at its first in-bounds
 * element, and an element replaces it when it is greater or is a NaN (so padding, which is −∞, never wins, and
 * ties go to the first maximum in row-major window order). The backward routes each dy to that element and adds
 * where windows overlap. Average pooling divides by kh·kw (count_include_pad) or by the in-bounds count. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_window.h"

/* The in-bounds part [h0, h1) × [w0, w1) of output pixel (oh, ow)'s window. */
static void window(const nnrt_pool2d_geom *g, int oh, int ow, int *h0, int *h1, int *w0, int *w1) {
    int hs = oh * g->sh - g->ph, ws = ow * g->sw - g->pw;
    *h0 = hs < 0 ? 0 : hs, *h1 = hs + g->kh < g->H ? hs + g->kh : g->H;
    *w0 = ws < 0 ? 0 : ws, *w1 = ws + g->kw < g->W ? ws + g->kw : g->W;
}

static int avg_divisor(const nnrt_pool2d_geom *g, int h0, int h1, int w0, int w1) {
    return g->count_include_pad ? g->kh * g->kw : (h1 - h0) * (w1 - w0);
}

/* One plane of each op, for float (f32) and double (f64): x (H, W), y and dy (OH, OW). */
#define POOL_PLANES(T, SFX)                                                                                        \
    /* The index in x (H·W) of the window's maximum, PyTorch's rule; −1 for a window with no in-bounds element. */ \
    static long argmax_##SFX(const nnrt_pool2d_geom *g, const T *x, int oh, int ow, T *max) {                       \
        int h0, h1, w0, w1;                                                                                          \
        window(g, oh, ow, &h0, &h1, &w0, &w1);                                                                       \
        long best = h0 < h1 && w0 < w1 ? (long)h0 * g->W + w0 : -1;                                                  \
        T m = (T)-INFINITY;                                                                                          \
        for (int h = h0; h < h1; h++)                                                                                \
            for (int w = w0; w < w1; w++) {                                                                          \
                T v = x[(long)h * g->W + w];                                                                         \
                if (v > m || isnan(v)) m = v, best = (long)h * g->W + w;                                             \
            }                                                                                                        \
        *max = m;                                                                                                    \
        return best;                                                                                                 \
    }                                                                                                                \
    static void maxfwd_plane_##SFX(const nnrt_pool2d_geom *g, const T *x, T *y) {                                    \
        for (int oh = 0; oh < g->OH; oh++)                                                                           \
            for (int ow = 0; ow < g->OW; ow++) argmax_##SFX(g, x, oh, ow, &y[(long)oh * g->OW + ow]);                \
    }                                                                                                                \
    /* With relu, times step(x): a window whose maximum is not positive passes nothing (the ReLU mask before it). */ \
    static void maxbwd_plane_##SFX(const nnrt_pool2d_geom *g, const T *dy, const T *x, T *dx, int relu) {            \
        memset(dx, 0, sizeof(T) * (size_t)g->H * g->W);                                                              \
        for (int oh = 0; oh < g->OH; oh++)                                                                           \
            for (int ow = 0; ow < g->OW; ow++) {                                                                     \
                T m;                                                                                                 \
                long at = argmax_##SFX(g, x, oh, ow, &m);                                                            \
                if (at >= 0 && (!relu || m > 0)) dx[at] += dy[(long)oh * g->OW + ow];                                \
            }                                                                                                        \
    }                                                                                                                \
    /* 2×2 windows at stride 2 without padding (every pooling of the usual CNN): one pass over each row pair,    \
       writing all of dx (the rows and columns no window covers are zeroed), no argmax search loop. */             \
    static T max4_##SFX(T a, T b, T c, T d, int *k) {                                                               \
        T m = a;                                                                                                     \
        *k = 0;                                                                                                      \
        if (b > m || isnan(b)) m = b, *k = 1;                                                                        \
        if (c > m || isnan(c)) m = c, *k = 2;                                                                        \
        if (d > m || isnan(d)) m = d, *k = 3;                                                                        \
        return m;                                                                                                    \
    }                                                                                                                \
    /* One output row: the vector-friendly loop assumes no NaN (plain compares, the first maximum by equality); a  \
       row pair holding a NaN is done again by the exact rule. Returns 0 when it had to. */                         \
    static int maxfwd2_row_##SFX(const T *r0, const T *r1, T *out, int OW) {                                         \
        int nan = 0;                                                                                                 \
        for (int ow = 0; ow < OW; ow++) {                                                                            \
            T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];                                \
            nan |= (a != a) | (b != b) | (c != c) | (d != d);                                                        \
            T m = a > b ? a : b;                                                                                     \
            m = m > c ? m : c;                                                                                       \
            out[ow] = m > d ? m : d;                                                                                 \
        }                                                                                                            \
        return !nan;                                                                                                 \
    }                                                                                                                \
    static void maxfwd2_plane_##SFX(const nnrt_pool2d_geom *g, const T *x, T *y) {                                   \
        for (int oh = 0; oh < g->OH; oh++) {                                                                         \
            const T *r0 = x + (long)2 * oh * g->W, *r1 = r0 + g->W;                                                 \
            T *out = y + (long)oh * g->OW;                                                                           \
            if (maxfwd2_row_##SFX(r0, r1, out, g->OW)) continue;                                                     \
            for (int ow = 0; ow < g->OW; ow++) {                                                                     \
                int k;                                                                                               \
                out[ow] = max4_##SFX(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], &k);                   \
            }                                                                                                        \
        }                                                                                                            \
    }                                                                                                                \
    static int maxbwd2_row_##SFX(const T *r0, const T *r1, const T *gr, T *d0, T *d1, int OW, int relu) {            \
        int nan = 0;                                                                                                 \
        for (int ow = 0; ow < OW; ow++) {                                                                            \
            T a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];                                \
            nan |= (a != a) | (b != b) | (c != c) | (d != d);                                                        \
            T m = a > b ? a : b;                                                                                     \
            m = m > c ? m : c;                                                                                       \
            m = m > d ? m : d;                                                                                       \
            int ea = a == m, eb = (b == m) & !ea, ec = (c == m) & !ea & !eb, ed = !ea & !eb & !ec;                 \
            T v = relu && !(m > 0) ? (T)0 : gr[ow];                                                                  \
            d0[2 * ow] = ea ? v : 0, d0[2 * ow + 1] = eb ? v : 0, d1[2 * ow] = ec ? v : 0, d1[2 * ow + 1] = ed ? v : 0; \
        }                                                                                                            \
        return !nan;                                                                                                 \
    }                                                                                                                \
    static void maxbwd2_plane_##SFX(const nnrt_pool2d_geom *g, const T *dy, const T *x, T *dx, int relu) {           \
        for (int oh = 0; oh < g->OH; oh++) {                                                                         \
            const T *r0 = x + (long)2 * oh * g->W, *r1 = r0 + g->W;                                                 \
            T *d0 = dx + (long)2 * oh * g->W, *d1 = d0 + g->W;                                                       \
            const T *gr = dy + (long)oh * g->OW;                                                                     \
            if (!maxbwd2_row_##SFX(r0, r1, gr, d0, d1, g->OW, relu))                                                 \
                for (int ow = 0; ow < g->OW; ow++) {                                                                 \
                    int k;                                                                                           \
                    T m = max4_##SFX(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], &k);                   \
                    T v = relu && !(m > 0) ? (T)0 : gr[ow];                                                          \
                    d0[2 * ow] = k == 0 ? v : 0, d0[2 * ow + 1] = k == 1 ? v : 0;                                    \
                    d1[2 * ow] = k == 2 ? v : 0, d1[2 * ow + 1] = k == 3 ? v : 0;                                    \
                }                                                                                                    \
            if (g->W & 1) d0[g->W - 1] = d1[g->W - 1] = 0;                                                           \
        }                                                                                                            \
        if (g->H & 1) memset(dx + (long)(g->H - 1) * g->W, 0, sizeof(T) * (size_t)g->W);                             \
    }                                                                                                                \
    static void avgfwd_plane_##SFX(const nnrt_pool2d_geom *g, const T *x, T *y) {                                    \
        for (int oh = 0; oh < g->OH; oh++)                                                                           \
            for (int ow = 0; ow < g->OW; ow++) {                                                                     \
                int h0, h1, w0, w1;                                                                                  \
                window(g, oh, ow, &h0, &h1, &w0, &w1);                                                               \
                T s = 0;                                                                                             \
                for (int h = h0; h < h1; h++)                                                                        \
                    for (int w = w0; w < w1; w++) s += x[(long)h * g->W + w];                                        \
                y[(long)oh * g->OW + ow] = s / (T)avg_divisor(g, h0, h1, w0, w1);                                    \
            }                                                                                                        \
    }                                                                                                                \
    static void avgbwd_plane_##SFX(const nnrt_pool2d_geom *g, const T *dy, T *dx) {                                  \
        memset(dx, 0, sizeof(T) * (size_t)g->H * g->W);                                                              \
        for (int oh = 0; oh < g->OH; oh++)                                                                           \
            for (int ow = 0; ow < g->OW; ow++) {                                                                     \
                int h0, h1, w0, w1;                                                                                  \
                window(g, oh, ow, &h0, &h1, &w0, &w1);                                                               \
                T d = dy[(long)oh * g->OW + ow] / (T)avg_divisor(g, h0, h1, w0, w1);                                 \
                for (int h = h0; h < h1; h++)                                                                        \
                    for (int w = w0; w < w1; w++) dx[(long)h * g->W + w] += d;                                       \
            }                                                                                                        \
    }

POOL_PLANES(float, f32)
POOL_PLANES(double, f64)

// ----------------------------------------------------------------------------
// float32: planes in chunks on both threads

enum { POOL_MAXFWD, POOL_MAXBWD, POOL_MAXBWD_RELU, POOL_AVGFWD, POOL_AVGBWD };

/* Whether the 2×2, stride 2, unpadded fast path applies. */
static int pool2x2(const nnrt_pool2d_geom *g) {
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0 && g->OH == g->H / 2 &&
           g->OW == g->W / 2;
}

typedef struct {
    const nnrt_pool2d_geom *g;
    int op, planes, chunks;
    const float *x, *dy;
    float *out;
} pool_job;

static void pool_chunk(void *arg, int c) {
    pool_job *j = arg;
    const nnrt_pool2d_geom *g = j->g;
    long in = (long)g->H * g->W, out = (long)g->OH * g->OW;
    int p0 = (int)((long)j->planes * c / j->chunks), p1 = (int)((long)j->planes * (c + 1) / j->chunks);
    int fast = pool2x2(g);
    for (int p = p0; p < p1; p++) switch (j->op) {
        case POOL_MAXFWD:
            if (fast) maxfwd2_plane_f32(g, j->x + p * in, j->out + p * out);
            else maxfwd_plane_f32(g, j->x + p * in, j->out + p * out);
            break;
        case POOL_MAXBWD:
        case POOL_MAXBWD_RELU:
            if (fast) maxbwd2_plane_f32(g, j->dy + p * out, j->x + p * in, j->out + p * in, j->op == POOL_MAXBWD_RELU);
            else maxbwd_plane_f32(g, j->dy + p * out, j->x + p * in, j->out + p * in, j->op == POOL_MAXBWD_RELU);
            break;
        case POOL_AVGFWD: avgfwd_plane_f32(g, j->x + p * in, j->out + p * out); break;
        default: avgbwd_plane_f32(g, j->dy + p * out, j->out + p * in); break;
        }
}

static void pool_run(const nnrt_pool2d_geom *g, int op, int n, const float *x, const float *dy, float *out) {
    pool_job j = {.g = g, .op = op, .planes = n * g->C, .x = x, .dy = dy, .out = out};
    if (j.planes <= 0) return;
    j.chunks = j.planes < 16 ? j.planes : 16;
    nnrt_par_chunks(pool_chunk, &j, j.chunks);
}

void nnrt_maxpool2d_forward(const nnrt_pool2d_geom *g, int n, const float *x, float *y) {
    pool_run(g, POOL_MAXFWD, n, x, NULL, y);
}
void nnrt_maxpool2d_backward(const nnrt_pool2d_geom *g, int n, const float *dy, const float *x, float *dx) {
    pool_run(g, POOL_MAXBWD, n, x, dy, dx);
}
void nnrt_maxpool2d_backward_relu(const nnrt_pool2d_geom *g, int n, const float *dy, const float *x, float *dx) {
    pool_run(g, POOL_MAXBWD_RELU, n, x, dy, dx);
}
void nnrt_avgpool2d_forward(const nnrt_pool2d_geom *g, int n, const float *x, float *y) {
    pool_run(g, POOL_AVGFWD, n, x, NULL, y);
}
void nnrt_avgpool2d_backward(const nnrt_pool2d_geom *g, int n, const float *dy, float *dx) {
    pool_run(g, POOL_AVGBWD, n, NULL, dy, dx);
}

// ----------------------------------------------------------------------------
// float64 twins, one thread

void nnrt_maxpool2d_forward_f64(const nnrt_pool2d_geom *g, int n, const double *x, double *y) {
    for (long p = 0; p < (long)n * g->C; p++)
        if (pool2x2(g)) maxfwd2_plane_f64(g, x + p * g->H * g->W, y + p * g->OH * g->OW);
        else maxfwd_plane_f64(g, x + p * g->H * g->W, y + p * g->OH * g->OW);
}
void nnrt_maxpool2d_backward_f64(const nnrt_pool2d_geom *g, int n, const double *dy, const double *x, double *dx) {
    for (long p = 0; p < (long)n * g->C; p++)
        if (pool2x2(g)) maxbwd2_plane_f64(g, dy + p * g->OH * g->OW, x + p * g->H * g->W, dx + p * g->H * g->W, 0);
        else maxbwd_plane_f64(g, dy + p * g->OH * g->OW, x + p * g->H * g->W, dx + p * g->H * g->W, 0);
}
void nnrt_maxpool2d_backward_relu_f64(const nnrt_pool2d_geom *g, int n, const double *dy, const double *x,
                                      double *dx) {
    for (long p = 0; p < (long)n * g->C; p++)
        if (pool2x2(g)) maxbwd2_plane_f64(g, dy + p * g->OH * g->OW, x + p * g->H * g->W, dx + p * g->H * g->W, 1);
        else maxbwd_plane_f64(g, dy + p * g->OH * g->OW, x + p * g->H * g->W, dx + p * g->H * g->W, 1);
}
void nnrt_avgpool2d_forward_f64(const nnrt_pool2d_geom *g, int n, const double *x, double *y) {
    for (long p = 0; p < (long)n * g->C; p++) avgfwd_plane_f64(g, x + p * g->H * g->W, y + p * g->OH * g->OW);
}
void nnrt_avgpool2d_backward_f64(const nnrt_pool2d_geom *g, int n, const double *dy, double *dx) {
    for (long p = 0; p < (long)n * g->C; p++) avgbwd_plane_f64(g, dy + p * g->OH * g->OW, dx + p * g->H * g->W);
}
