/* conv_kernels.h — between conv.c (planning, layouts, threads) and conv_simd.c (the vector kernels, one set for
 * AVX-512 and one for AVX2, chosen at run time). Internal to the runtime: generated code never sees it.
 *
 * The fast path is for stride 1, dilation 1, one group (every conv of the CNN workload). Its layouts, per image:
 *   - forward, "padded width": xpad (C, spad) holds the zero-padded image (Hp, Wp) row after row, so that output
 *     pixel q = oh·Wp + ow reads tap (i, j) at xpad[c][q + i·Wp + j]: the patches are shifts, no im2col. The
 *     kernel computes yv (Kp, nvec·VL) for every q < OH·Wp (the columns ow ≥ OW are thrown away by conv.c);
 *   - backward, channels last: xT and dxT (Hp·Wp, C), so that the patch of output pixel (oh, ow) is kh segments
 *     of L = kw·C contiguous floats, segment i at ((oh + i)·Wp + ow)·C. Weights and weight gradients are held as
 *     (K, kh, Lp) with Lp = L rounded up to whole vectors (the extra lanes are zero in weights, junk in dWT).
 * Both backward kernels visit the non-zero elements of dy only (a cheap scan finds them): dy is mostly zeros
 * after ReLU and max pooling, and a zero adds nothing, so the result is the same as the dense sum's. */
#ifndef NNRT_CONV_KERNELS_H
#define NNRT_CONV_KERNELS_H

#include "nnrt_window.h"

enum { NNRT_CONV_MR = 4, NNRT_CONV_MAX_TAPS = 64 };

typedef struct {
    int C, K, T;                      /* channels, output channels, taps (kh·kw) */
    int toff[NNRT_CONV_MAX_TAPS];     /* tap t = i·kw + j reads xpad at q + toff[t] = q + i·Wp + j */
    int spad;                         /* floats per channel of xpad */
    int nvec;                         /* vectors of output pixels q (OH·Wp rounded up) */
    const float *wpack;               /* (Kp/MR, C, T, MR) the weights, MR output channels interleaved */
} nnrt_conv_fwd;

typedef struct {
    int K, P, OW;                     /* output channels, output pixels (OH·OW), output width */
    int S, VS;                        /* segments per patch (kh), vectors per segment (Lp/VL) */
    int rowstride, pixstride;         /* floats between segments (Wp·C), between pixels (C) of xT/dxT */
    int Wp;
} nnrt_conv_bwd;

/* Winograd F(2×2, 3×3) for the forward of a 3×3 convolution (stride 1): output tiles of 2×2 pixels, TH × TW of
 * them per image; tile (a, b) reads the 4×4 patch of the zero-padded image at rows 2a…2a+3, columns 2b…2b+3.
 *   - xs (C, rows, 2, LE): the zero-padded image with its even and odd columns apart (row hp's even columns at
 *     (c·rows + hp)·2·LE, its odd ones LE after), so that a vector over tiles b reads each patch column with one
 *     load;
 *   - V (16, C, ldv), V[ξ] ldvx apart: the transformed patches Bᵀ·d·B, ξ = ρ·4 + κ, tile t = img·TH·TW + a·TW + b of the group;
 *   - M (16, KB, ldm): for a block of output channels, M[ξ] = U[ξ] · V[ξ], U[ξ] = (G·g·Gᵀ)[ξ] (one GEMM per ξ,
 *     conv.c calls the forward kernel with one tap); the output transform Aᵀ·m·A gives the tile's 2×2 pixels. */
typedef struct {
    int C, TH, TW, LE, rows;
    long ldv, ldvx;  /* floats between V's rows, between V[ξ] and V[ξ + 1] */
} nnrt_wino;

typedef struct {
    int vl;  /* floats per vector */
    /* yv (Kp, nvec·VL) = the convolution of one image's xpad. */
    void (*fwd)(const nnrt_conv_fwd *f, const float *xpad, float *yv);
    /* dwt (K, S·Lp) += Σ over dy's non-zeros (one image's dy (K, P)) of dy[k][p] · the patch of p in xT;
       db (K, may be NULL) += the sums of dy's rows; off: scratch of 2·up(P + VL, 16) ints, val of P + VL floats.
       Returns the non-zeros it found. */
    long (*gw)(const nnrt_conv_bwd *b, const float *dy, const float *xT, float *dwt, float *db, int *off, float *val);
    /* dxT += Σ over dy's non-zeros of dy[k][p] · wt[k] placed at p's patch; kidx and val: scratch of K entries. */
    void (*gi)(const nnrt_conv_bwd *b, const float *dy, const float *wt, float *dxT, int *kidx, float *val);
    /* Grad-weight as dot products in the forward's layout, for few input channels (a patch much narrower than a
       vector): acc (K, C·T, VL) += lane-wise Σ_q dy[k][q] · xpad[c][q + toff[t]]; db (K, may be NULL) += row
       sums; dyv: scratch of nvec·VL floats, zero on entry (columns ow ≥ OW stay zero). Dense: no zero skipping. */
    void (*gwd)(const nnrt_conv_fwd *f, int OH, int OW, int Wp, const float *dy, const float *xpad, float *acc, float *db,
                float *dyv);
    /* V[ξ][c][t0 + a·TW + b] = the transformed patches of one image's xs (writes up to VL − 1 floats past the
       image's last tile in each row of V). */
    void (*wi)(const nnrt_wino *w, const float *xs, float *v, long t0);
    /* y (nk, OH, OW) = act(Aᵀ·M·A + bias) for one image's tiles t0…: M[ξ][k][t] at m + ξ·ldx + k·ldm (reads up
       to VL − 1 floats past the image's last tile); bias (nk, may be NULL). */
    void (*wo)(const nnrt_wino *w, const float *m, long ldx, int ldm, int nk, long t0, const float *bias, int act,
               float *y, int OH, int OW);
    /* With 2×2 max pooling (nnrt_conv2d_*_maxpool2; OH, OW even; `at` as nnrt_window.h describes, NULL: not written):
       fwdp: y, at (K, OH/2, OW/2) = the pooling of fwd's yv (K rows ldv apart, pixel (oh, ow) at oh·Wp + ow) + bias,
       activated (reads up to 2·VL floats past a row's last pixel); wop: as wo, pooled (each tile is a window):
       y, at (nk, TH, TW); gwp, gip, gwdp: as gw, gi, gwd with dy given as the pooled dyp, at (K, OH/2, OW/2) and
       the ReLU's mask (relu). gip's kidx, val: 4·(OW/2)·K entries each, and 4·(OW/2) ints after kidx's; gwdp's
       dyv: 2·VL floats of slack. */
    void (*fwdp)(const float *yv, int ldv, int Wp, int K, int OH, int OW, const float *bias, int act, float *y,
                 unsigned char *at);
    void (*wop)(const nnrt_wino *w, const float *m, long ldx, int ldm, int nk, long t0, const float *bias, int act,
                float *y, unsigned char *at);
    long (*gwp)(const nnrt_conv_bwd *b, const float *dyp, const unsigned char *at, int relu, const float *xT,
                float *dwt, float *db, int *off, float *val);
    void (*gip)(const nnrt_conv_bwd *b, const float *dyp, const unsigned char *at, int relu, const float *wt,
                float *dxT, int *kidx, float *val);
    void (*gwdp)(const nnrt_conv_fwd *f, int OH, int OW, int Wp, const float *dyp, const unsigned char *at, int relu,
                 const float *xpad, float *acc, float *db, float *dyv);
} nnrt_conv_kernels;

/* A dy as the backward kernels take it: dense (at == NULL), or pooled (nnrt_conv2d_*_maxpool2). */
typedef struct {
    const float *dy;
    const unsigned char *at;
    int relu;
} nnrt_conv_dy;

/* conv.c's fast paths, for conv_pool.c too (y and dy pooled when `at` is given, pool set); each returns 0 when it
   does not apply (the geometry, the CPU or the workspace), having written nothing. */
int nnrt_conv_fast_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias, int act,
                           float *y, int pool, unsigned char *at, float *ws, size_t ws_floats);
int nnrt_conv_fast_grad_input(const nnrt_conv2d_geom *g, int n, nnrt_conv_dy dy, const float *w, float *dx, float *ws,
                              size_t ws_floats);
int nnrt_conv_fast_grad_weight(const nnrt_conv2d_geom *g, int n, nnrt_conv_dy dy, const float *x, float *dw, float *db,
                               float *ws, size_t ws_floats);

/* NULL when the set was not built (not x86-64) — conv.c then takes its plain path. */
extern const nnrt_conv_kernels *const nnrt_conv_k512, *const nnrt_conv_k256;


/* The plain path (conv_plain.c), for every geometry; `ws` holds two slots of 4 columns and a weight each, as
   nnrt_conv2d_ws_floats reserves. */
void nnrt_conv_plain_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias,
                             int act, float *y, float *ws);
void nnrt_conv_plain_grad_input(const nnrt_conv2d_geom *g, int n, const float *dy, const float *w, float *dx, float *ws);
void nnrt_conv_plain_grad_weight(const nnrt_conv2d_geom *g, int n, const float *dy, const float *x, float *dw, float *db,
                                 float *ws);

#endif
