/* nnrt_window.h — window operations on NCHW tensors: 2-d convolution and pooling (conv.c, conv_pool.c, pool.c).
 *
 * The contract between the generated C (nncc's CodeGen emits these calls) and runtime/. Layout is PyTorch's
 * everywhere: activations are row-major (n, C, H, W); a convolution's weight is (K, C/groups, kh, kw) and its
 * bias (K). The compiler computes every output size (PyTorch's formula, floor mode) and passes it in the
 * geometry; the runtime trusts it.
 *
 *   OH = (H + 2·ph − dh·(kh − 1) − 1) / sh + 1        (likewise OW)
 *
 * Every function overwrites its output (no accumulation into it) and may use both threads (nnrt_par_chunks),
 * so it must be called from the main thread, never from inside a parallel job. The result does not depend on
 * which thread computes what. The float64 twins (`_f64`) serve gradcheck and are plain loops on one thread.
 */
#ifndef NNRT_WINDOW_H
#define NNRT_WINDOW_H

#include <stddef.h>

typedef struct {
    int C, H, W;         /* input channels, height, width */
    int K, OH, OW;       /* output channels, height, width */
    int kh, kw;          /* kernel size */
    int sh, sw;          /* stride */
    int ph, pw;          /* zero padding on each side */
    int dh, dw;          /* dilation */
    int groups;          /* C and K are multiples of it; input channel group g feeds output channels of group g */
} nnrt_conv2d_geom;

/* The workspace a convolution call needs, in floats: the compiler reserves exactly this much in the arena for
   the call (`ws`, `ws_floats`), and every conv function checks ws_floats against it and stops with an internal
   error if it was given less. Room for both threads: each gets the columns of 4 images of one group
   (C/groups·kh·kw × OH·OW each) and a partial weight gradient (K·C/groups·kh·kw). nncc's CodeGen computes the
   same formula (CEmitter+Window.swift). */
static inline size_t nnrt_conv2d_ws_floats(const nnrt_conv2d_geom *g) {
    size_t col = (size_t)(g->C / g->groups) * g->kh * g->kw * g->OH * g->OW;
    size_t wgt = (size_t)g->K * (g->C / g->groups) * g->kh * g->kw;
    return 2 * (4 * col + wgt) + 64;
}

enum { NNRT_ACT_NONE = 0, NNRT_ACT_RELU = 1 };

/* y (n, K, OH, OW) = act(conv(x (n, C, H, W), w) + bias); bias may be NULL (no bias). */
void nnrt_conv2d_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias,
                         int act, float *y, float *ws, size_t ws_floats);
/* dx (n, C, H, W) = the gradient of the convolution's input, given dy (n, K, OH, OW). */
void nnrt_conv2d_grad_input(const nnrt_conv2d_geom *g, int n, const float *dy, const float *w, float *dx,
                            float *ws, size_t ws_floats);
/* dw (K, C/groups, kh, kw) = Σ over the batch of the weight's gradient; db (K) = Σ dy over n, OH, OW when not
   NULL. */
void nnrt_conv2d_grad_weight(const nnrt_conv2d_geom *g, int n, const float *dy, const float *x, float *dw,
                             float *db, float *ws, size_t ws_floats);

/* A convolution followed by 2×2 max pooling (stride 2, no padding; OH and OW even), in the convolution's calls, so
 * that its (n, K, OH, OW) output is never written: the forward writes the pooled output and one byte per window,
 * and the backward passes take the pooled gradient and those bytes instead of a dense dy. The byte of window
 * (a, b) (output rows 2a, 2a + 1, columns 2b, 2b + 1): bits 0–1 the position s = 2·row + column in the window of
 * its first maximum (PyTorch's rule as in max pooling below: the first maximum in row-major order, a NaN counts
 * as the maximum), NNRT_AT_POSITIVE when that maximum is > 0 (the mask of a ReLU before the pooling there).
 * They need nnrt_conv2d_pool_ws_floats of workspace. Results do not depend on which thread computes what. On
 * conv.c's fast path the pooled output, the bytes, the input gradient and the weight gradient are the separate
 * calls' to the bit (the bias gradient adds in another order); elsewhere they agree to rounding (conv_pool.c). */
enum { NNRT_AT_POSITIVE = 4 };
static inline size_t nnrt_conv2d_pool_ws_floats(const nnrt_conv2d_geom *g) {
    /* the convolution's own, then 4 images of its dense output and a partial weight gradient (the path for
       other CPUs, which runs the separate calls on 4 images at a time) */
    return nnrt_conv2d_ws_floats(g) + 4 * (size_t)g->K * g->OH * g->OW +
           (size_t)g->K * (g->C / g->groups) * g->kh * g->kw + (size_t)g->K + 64;
}
/* y (n, K, OH/2, OW/2) = maxpool2(act(conv(x, w) + bias)); at (n, K, OH/2, OW/2) the windows' bytes, or NULL. */
void nnrt_conv2d_forward_maxpool2(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias,
                                  int act, float *y, unsigned char *at, float *ws, size_t ws_floats);
/* The gradients of the convolution given dyp (n, K, OH/2, OW/2), the gradient of the pooled output: its dy is
   dyp at each window's maximum and zero elsewhere, times the ReLU's mask (NNRT_AT_POSITIVE) when relu is 1. */
void nnrt_conv2d_grad_input_maxpool2(const nnrt_conv2d_geom *g, int n, const float *dyp, const unsigned char *at,
                                     int relu, const float *w, float *dx, float *ws, size_t ws_floats);
void nnrt_conv2d_grad_weight_maxpool2(const nnrt_conv2d_geom *g, int n, const float *dyp, const unsigned char *at,
                                      int relu, const float *x, float *dw, float *db, float *ws, size_t ws_floats);
void nnrt_conv2d_forward_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *x, const double *w,
                                      const double *bias, int act, double *y, unsigned char *at);
void nnrt_conv2d_grad_input_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *dyp, const unsigned char *at,
                                         int relu, const double *w, double *dx);
void nnrt_conv2d_grad_weight_maxpool2_f64(const nnrt_conv2d_geom *g, int n, const double *dyp,
                                          const unsigned char *at, int relu, const double *x, double *dw, double *db);

void nnrt_conv2d_forward_f64(const nnrt_conv2d_geom *g, int n, const double *x, const double *w,
                             const double *bias, int act, double *y);
void nnrt_conv2d_grad_input_f64(const nnrt_conv2d_geom *g, int n, const double *dy, const double *w, double *dx);
void nnrt_conv2d_grad_weight_f64(const nnrt_conv2d_geom *g, int n, const double *dy, const double *x, double *dw,
                                 double *db);

typedef struct {
    int C, H, W;         /* channels, input height and width */
    int OH, OW;          /* output height and width */
    int kh, kw, sh, sw, ph, pw;
    int count_include_pad;  /* average pooling: divide by kh·kw (1, PyTorch's default) or by the in-bounds count (0) */
} nnrt_pool2d_geom;

/* Max pooling. Padding counts as −∞. The backward routes each dy to its window's first maximum in row-major
   window order (a NaN counts as the maximum), as PyTorch's CPU kernel does, and adds where windows overlap. */
void nnrt_maxpool2d_forward(const nnrt_pool2d_geom *g, int n, const float *x, float *y);
void nnrt_maxpool2d_backward(const nnrt_pool2d_geom *g, int n, const float *dy, const float *x, float *dx);
/* The max pooling's backward times the mask of a ReLU before it: dx = maxpool_backward(dy, x)·step(x), where x
   is the pooling's input and a ReLU's output (a window whose maximum is not positive passes no gradient). */
void nnrt_maxpool2d_backward_relu(const nnrt_pool2d_geom *g, int n, const float *dy, const float *x, float *dx);
void nnrt_avgpool2d_forward(const nnrt_pool2d_geom *g, int n, const float *x, float *y);
void nnrt_avgpool2d_backward(const nnrt_pool2d_geom *g, int n, const float *dy, float *dx);

void nnrt_maxpool2d_forward_f64(const nnrt_pool2d_geom *g, int n, const double *x, double *y);
void nnrt_maxpool2d_backward_f64(const nnrt_pool2d_geom *g, int n, const double *dy, const double *x, double *dx);
void nnrt_maxpool2d_backward_relu_f64(const nnrt_pool2d_geom *g, int n, const double *dy, const double *x,
                                      double *dx);
void nnrt_avgpool2d_forward_f64(const nnrt_pool2d_geom *g, int n, const double *x, double *y);
void nnrt_avgpool2d_backward_f64(const nnrt_pool2d_geom *g, int n, const double *dy, double *dx);

#endif
