/* conv_f64.c — the float64 twins of conv.c (nnrt_window.h) for gradcheck: direct loops on one thread, written
 * for clarity, not speed. Output pixel (oh, ow)'s tap (i, j) reads input pixel (oh·sh − ph + i·dh, ow·sw − pw + j·dw);
 * output channel k of group k / (K/groups) reads that group's C/groups input channels. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>

#include "nnrt_window.h"

/* Calls BODY for every (image b, output channel k, output pixel oh·OW+ow, input channel c of k's group, tap i, j)
 * whose input pixel (ih_, iw_) is inside the image; xi, yi, wi are the flat indices of x, y and the weight. */
#define FOR_EACH_TAP(g, n, BODY)                                                                                   \
    do {                                                                                                           \
        int Cg = (g)->C / (g)->groups, Kg = (g)->K / (g)->groups;                                                   \
        for (int b = 0; b < (n); b++)                                                                              \
            for (int k = 0; k < (g)->K; k++)                                                                       \
                for (int oh = 0; oh < (g)->OH; oh++)                                                               \
                    for (int ow = 0; ow < (g)->OW; ow++)                                                           \
                        for (int c = 0; c < Cg; c++)                                                               \
                            for (int i = 0; i < (g)->kh; i++)                                                      \
                                for (int j = 0; j < (g)->kw; j++) {                                                \
                                    int ih_ = oh * (g)->sh - (g)->ph + i * (g)->dh;                                \
                                    int iw_ = ow * (g)->sw - (g)->pw + j * (g)->dw;                                \
                                    if (ih_ < 0 || ih_ >= (g)->H || iw_ < 0 || iw_ >= (g)->W) continue;           \
                                    long xi = (((long)b * (g)->C + (long)(k / Kg) * Cg + c) * (g)->H + ih_) * (g)->W + iw_; \
                                    long yi = (((long)b * (g)->K + k) * (g)->OH + oh) * (g)->OW + ow;              \
                                    long wi = (((long)k * Cg + c) * (g)->kh + i) * (g)->kw + j;                     \
                                    BODY;                                                                          \
                                }                                                                                  \
    } while (0)

void nnrt_conv2d_forward_f64(const nnrt_conv2d_geom *g, int n, const double *x, const double *w, const double *bias,
                             int act, double *y) {
    long ny = (long)n * g->K * g->OH * g->OW, plane = (long)g->OH * g->OW;
    for (long e = 0; e < ny; e++) y[e] = bias ? bias[(e / plane) % g->K] : 0.0;
    FOR_EACH_TAP(g, n, y[yi] += w[wi] * x[xi]);
    if (act == NNRT_ACT_RELU)
        for (long e = 0; e < ny; e++) y[e] = y[e] > 0.0 ? y[e] : 0.0;
}

void nnrt_conv2d_grad_input_f64(const nnrt_conv2d_geom *g, int n, const double *dy, const double *w, double *dx) {
    memset(dx, 0, sizeof(double) * (size_t)n * g->C * g->H * g->W);
    FOR_EACH_TAP(g, n, dx[xi] += w[wi] * dy[yi]);
}

void nnrt_conv2d_grad_weight_f64(const nnrt_conv2d_geom *g, int n, const double *dy, const double *x, double *dw,
                                 double *db) {
    memset(dw, 0, sizeof(double) * (size_t)g->K * (g->C / g->groups) * g->kh * g->kw);
    FOR_EACH_TAP(g, n, dw[wi] += dy[yi] * x[xi]);
    if (db) {
        long plane = (long)g->OH * g->OW;
        for (int k = 0; k < g->K; k++) db[k] = 0.0;
        for (long e = 0; e < (long)n * g->K * plane; e++) db[(e / plane) % g->K] += dy[e];
    }
}
