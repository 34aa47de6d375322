/* conv_pool.c — a convolution followed by 2×2 max pooling, in the convolution's calls (nnrt_window.h,
 * nnrt_conv2d_*_maxpool2): the (n, K, OH, OW) output between them is never written or read.
 *
 * The fast path is conv.c's (the kernels of conv_simd.inc pool each image's output while it is in cache, and
 * the backward kernels build their lists of non-zeros from the pooled gradient: one candidate per window). Where
 * it does not apply (another geometry, another CPU, NNRT_GEMM=blas), 4 images at a time go through the separate
 * calls, their dense output or gradient staged in the workspace after the convolution's own. The fast path is
 * given the convolution's own workspace only, so that it makes the separate calls' choices (Winograd or the direct
 * form, the count of grad-weight's partial sums follow the workspace) and gives their bits. The float64 twins
 * (gradcheck) are plain loops. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include "conv_kernels.h"
#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_window.h"

enum { STAGE_IMAGES = 4 };

static void check(const char *fn, const nnrt_conv2d_geom *g, size_t ws_floats, int with_ws) {
    if (g->OH % 2 || g->OW % 2)
        nnrt_die("internal error: %s: a %dx%d output has no whole 2x2 windows (the compiler fuses only even sizes)", fn,
                 g->OH, g->OW);
    if (with_ws && ws_floats < nnrt_conv2d_pool_ws_floats(g))
        nnrt_die("internal error: %s: workspace of %zu floats, needs %zu (nnrt_conv2d_pool_ws_floats); the generated "
                 "code's arena plan and nnrt_window.h disagree", fn, ws_floats, nnrt_conv2d_pool_ws_floats(g));
}

/* The byte of a window whose pixels, in row-major order, are c[0..4) (nnrt_window.h), and its maximum. */
#define MAX4(c, m, s)                                                                                           \
    do {                                                                                                           \
        m = c[0], s = 0;                                                                                           \
        for (int q = 1; q < 4; q++)                                                                                \
            if (c[q] > m || isnan(c[q])) m = c[q], s = q;                                                          \
        s |= m > 0 ? NNRT_AT_POSITIVE : 0;                                                                         \
    } while (0)

/* y, at (planes, OH/2, OW/2) = the 2×2 max pooling of the planes (OH, OW) of src. */
static void pool_planes(const float *src, long planes, int OH, int OW, float *y, unsigned char *at) {
    long e = 0;
    for (long p = 0; p < planes; p++)
        for (int a = 0; a < OH / 2; a++)
            for (int b = 0; b < OW / 2; b++, e++) {
                const float *r0 = src + (p * OH + 2 * a) * OW + 2 * b, *r1 = r0 + OW;
                float c[4] = {r0[0], r0[1], r1[0], r1[1]}, m;
                int s;
                MAX4(c, m, s);
                y[e] = m;
                if (at) at[e] = (unsigned char)s;
            }
}

/* The pooled gradient's value of window e: what reaches the window's maximum. */
static double pooled(const void *dyp, int f64, const unsigned char *at, int relu, long e) {
    if (relu && !(at[e] & NNRT_AT_POSITIVE)) return 0;
    return f64 ? ((const double *)dyp)[e] : ((const float *)dyp)[e];
}

/* dy (planes, OH, OW) = the dense gradient the pooled one stands for. */
static void expand_planes(const float *dyp, const unsigned char *at, int relu, long planes, int OH, int OW, float *dy) {
    memset(dy, 0, sizeof(float) * (size_t)planes * OH * OW);
    long e = 0;
    for (long p = 0; p < planes; p++)
        for (int a = 0; a < OH / 2; a++)
            for (int b = 0; b < OW / 2; b++, e++)
                dy[(p * OH + 2 * a + (at[e] >> 1 & 1)) * OW + 2 * b + (at[e] & 1)] = (float)pooled(dyp, 0, at, relu, e);
}

// ----------------------------------------------------------------------------
// float32

void nnrt_conv2d_forward_maxpool2(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias,
                                  int act, float *y, unsigned char *at, float *ws, size_t ws_floats) {
    check("nnrt_conv2d_forward_maxpool2", g, ws_floats, 1);
    size_t cw = nnrt_conv2d_ws_floats(g);
    if (n <= 0 || nnrt_conv_fast_forward(g, n, x, w, bias, act, y, 1, at, ws, cw)) return;
    long in = (long)g->C * g->H * g->W, out = (long)g->K * g->OH * g->OW;
    for (int i0 = 0; i0 < n; i0 += STAGE_IMAGES) {
        int m = n - i0 < STAGE_IMAGES ? n - i0 : STAGE_IMAGES;
        nnrt_conv2d_forward(g, m, x + i0 * in, w, bias, act, ws + cw, ws, cw);
        pool_planes(ws + cw, (long)m * g->K, g->OH, g->OW, y + i0 * out / 4, at ? at + i0 * out / 4 : NULL);
    }
}

void nnrt_conv2d_grad_input_maxpool2(const nnrt_conv2d_geom *g, int n, const float *dyp, const unsigned char *at,
                                     int relu, const float *w, float *dx, float *ws, size_t ws_floats) {
    check("nnrt_conv2d_grad_input_maxpool2", g, ws_floats, 1);
    size_t cw = nnrt_conv2d_ws_floats(g);
    if (n <= 0 || nnrt_conv_fast_grad_input(g, n, (nnrt_conv_dy){dyp, at, relu}, w, dx, ws, cw)) return;
    long in = (long)g->C * g->H * g->W, out = (long)g->K * g->OH * g->OW;
    for (int i0 = 0; i0 < n; i0 += STAGE_IMAGES) {
        int m = n - i0 < STAGE_IMAGES ? n - i0 : STAGE_IMAGES;
        expand_planes(dyp + i0 * out / 4, at + i0 * out / 4, relu, (long)m * g->K, g->OH, g->OW, ws + cw);
        nnrt_conv2d_grad_input(g, m, ws + cw, w, dx + i0 * in, ws, cw);
    }
}

void nnrt_conv2d_grad_weight_maxpool2(const nnrt_conv2d_geom *g, int n, const float *dyp, const unsigned char *at,
                                      int relu, const float *x, float *dw, float *db, float *ws, size_t ws_floats) {
    check("nnrt_conv2d_grad_weight_maxpool2", g, ws_floats, 1);
    size_t cw = nnrt_conv2d_ws_floats(g);
    if (nnrt_conv_fast_grad_weight(g, n, (nnrt_conv_dy){dyp, at, relu}, x, dw, db, ws, cw)) return;
    long in = (long)g->C * g->H * g->W, out = (long)g->K * g->OH * g->OW;
    long nw = (long)g->K * (g->C / g->groups) * g->kh * g->kw;
    float *stage = ws + cw, *dwp = stage + STAGE_IMAGES * out, *dbp = dwp + nw;
    if (n <= 0) nnrt_conv2d_grad_weight(g, 0, dyp, x, dw, db, ws, cw);  /* zeros */
    for (int i0 = 0; i0 < n; i0 += STAGE_IMAGES) {
        int m = n - i0 < STAGE_IMAGES ? n - i0 : STAGE_IMAGES;
        expand_planes(dyp + i0 * out / 4, at + i0 * out / 4, relu, (long)m * g->K, g->OH, g->OW, stage);
        /* the first group's sums into dw and db, the others' added in order: deterministic */
        nnrt_conv2d_grad_weight(g, m, stage, x + i0 * in, i0 ? dwp : dw, i0 ? (db ? dbp : NULL) : db, ws, cw);
        if (!i0) continue;
        for (long e = 0; e < nw; e++) dw[e] += dwp[e];
        if (db)
            for (int k = 0; k < g->K; k++) db[k] += dbp[k];
    }
}

// ----------------------------------------------------------------------------
// float64 twins: plain loops over each window's pixels

/* The convolution's output (k, oh, ow) of image xi (C, H, W), before the activation. */
static double conv_at(const nnrt_conv2d_geom *g, const double *xi, const double *w, const double *bias, int k, int oh,
                      int ow) {
    int Cg = g->C / g->groups, c0 = k / (g->K / g->groups) * Cg;
    double s = bias ? bias[k] : 0;
    for (int c = 0; c < Cg; c++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++) {
                int h = oh * g->sh - g->ph + i * g->dh, v = ow * g->sw - g->pw + j * g->dw;
                if (h >= 0 && h < g->H && v >= 0 && v < g->W)
                    s += w[(((long)k * Cg + c) * g->kh + i) * g->kw + j] * xi[((long)(c0 + c) * g->H + h) * g->W + v];
            }
    return s;
}

void nnrt_conv2d_forward_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *x, const double *w,
                                      const double *bias, int act, double *y, unsigned char *at) {
    check("nnrt_conv2d_forward_maxpool2_f64", g, 0, 0);
    long e = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < g->K; k++)
            for (int a = 0; a < g->OH / 2; a++)
                for (int b = 0; b < g->OW / 2; b++, e++) {
                    double c[4], m;
                    int s;
                    for (int q = 0; q < 4; q++) {
                        double v = conv_at(g, x + (long)i * g->C * g->H * g->W, w, bias, k, 2 * a + q / 2, 2 * b + q % 2);
                        c[q] = act == NNRT_ACT_RELU ? (v > 0 ? v : 0) : v;
                    }
                    MAX4(c, m, s);
                    y[e] = m;
                    if (at) at[e] = (unsigned char)s;
                }
}

/* For every window's maximum that passes a gradient v, BODY with the tap's weight index wi and input index xi. */
#define WINDOW_TAPS(BODY)                                                                                          \
    long e = 0;                                                                                                    \
    int Cg = g->C / g->groups;                                                                                     \
    for (int b_ = 0; b_ < n; b_++)                                                                                 \
        for (int k = 0; k < g->K; k++)                                                                             \
            for (int a = 0; a < g->OH / 2; a++)                                                                    \
                for (int b = 0; b < g->OW / 2; b++, e++) {                                                         \
                    double v = pooled(dyp, 1, at, relu, e);                                                        \
                    int oh = 2 * a + (at[e] >> 1 & 1), ow = 2 * b + (at[e] & 1), c0 = k / (g->K / g->groups) * Cg; \
                    if (v == 0) continue;                                                                          \
                    for (int c = 0; c < Cg; c++)                                                                   \
                        for (int i = 0; i < g->kh; i++)                                                            \
                            for (int j = 0; j < g->kw; j++) {                                                      \
                                int h = oh * g->sh - g->ph + i * g->dh, u = ow * g->sw - g->pw + j * g->dw;        \
                                if (h < 0 || h >= g->H || u < 0 || u >= g->W) continue;                            \
                                long wi = (((long)k * Cg + c) * g->kh + i) * g->kw + j;                            \
                                long xi = (((long)b_ * g->C + c0 + c) * g->H + h) * g->W + u;                      \
                                BODY;                                                                              \
                            }                                                                                      \
                }

void nnrt_conv2d_grad_input_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *dyp, const unsigned char *at,
                                         int relu, const double *w, double *dx) {
    check("nnrt_conv2d_grad_input_maxpool2_f64", g, 0, 0);
    memset(dx, 0, sizeof(double) * (size_t)n * g->C * g->H * g->W);
    WINDOW_TAPS(dx[xi] += w[wi] * v)
}

void nnrt_conv2d_grad_weight_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *dyp,
                                          const unsigned char *at, int relu, const double *x, double *dw, double *db) {
    check("nnrt_conv2d_grad_weight_maxpool2_f64", g, 0, 0);
    memset(dw, 0, sizeof(double) * (size_t)g->K * (g->C / g->groups) * g->kh * g->kw);
    if (db) memset(db, 0, sizeof(double) * (size_t)g->K);
    WINDOW_TAPS(dw[wi] += x[xi] * v)
    if (db)
        for (long q = 0; q < (long)n * g->K * (g->OH / 2) * (g->OW / 2); q++)
            db[q / ((g->OH / 2) * (g->OW / 2)) % g->K] += pooled(dyp, 1, at, relu, q);
}
