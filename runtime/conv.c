/* conv.c — 2-d convolution on NCHW tensors (nnrt_window.h): forward, grad-input, grad-weight.
 *
 * Two paths, chosen per call:
 *   - fast (stride 1, dilation 1, one group, the CPU has AVX-512 or AVX2 and the workspace holds its layouts):
 *     the vector kernels of conv_simd.c, with the layouts described in conv_kernels.h. The forward convolves a
 *     zero-padded copy of each image directly (no im2col); both backward products visit only dy's non-zeros
 *     (after ReLU and max pooling, ≥ 75 % of dy is zero) on channels-last copies of x and dx.
 *   - plain (everything else, and NNRT_GEMM=blas): per image and group, im2col and nnrt_sgemm for the forward
 *     and the input's gradient (whose A operand, dyᵀ, nnrt_sgemm's broadcast form skips the zeros of), plain
 *     loops that skip dy's zeros for the weight's gradient.
 * Both threads: every call splits the batch in chunks that the threads take from opposite ends (nnrt_par_chunks;
 * each thread has its own scratch slot); grad-weight sums each chunk's images in a partial dW of its own, added
 * at the end in chunk order, so that no result depends on which thread ran what. No allocation: scratch comes from `ws`. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conv_kernels.h"
#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_window.h"

static void check_ws(const char *fn, const nnrt_conv2d_geom *g, size_t ws_floats) {
    size_t need = nnrt_conv2d_ws_floats(g);
    if (ws_floats < need)
        nnrt_die("internal error: %s: workspace of %zu floats, needs %zu (nnrt_conv2d_ws_floats); the generated "
                 "code's arena plan and nnrt_window.h disagree", fn, ws_floats, need);
}

static size_t up(size_t x, size_t m) { return (x + m - 1) / m * m; }

/* The vector kernel set for this call, or NULL for the plain path. */
static const nnrt_conv_kernels *fast_set(const nnrt_conv2d_geom *g) {
    if (g->sh != 1 || g->sw != 1 || g->dh != 1 || g->dw != 1 || g->groups != 1 || g->kh * g->kw > NNRT_CONV_MAX_TAPS)
        return NULL;
    switch (nnrt_gemm_own_kernels()) {
    case NNRT_GEMM_AVX512: return nnrt_conv_k512;
    case NNRT_GEMM_AVX2: return nnrt_conv_k256;
    default: return NULL;
    }
}

/* The whole workspace cut in a shared part and two slots, one per thread (or per half of the batch). */
typedef struct {
    float *shared, *slot[2];
} carve;

static int carve_ws(float *ws, size_t ws_floats, size_t shared, size_t slot, carve *c) {
    shared = up(shared, 16), slot = up(slot, 16);
    if (shared + 2 * slot > ws_floats) return 0;
    c->shared = ws;
    c->slot[0] = ws + shared;
    c->slot[1] = ws + shared + slot;
    return 1;
}

/* The slot of the calling thread: 1 on the caller of nnrt_par_chunks (also when it runs every chunk), 0 on the
 * worker. */
static int my_slot(pthread_t caller) { return pthread_equal(pthread_self(), caller) ? 1 : 0; }

/* n images in `count` chunks of whole images: chunk c covers [*i0, *i1). */
static void chunk_range(int n, int count, int c, int *i0, int *i1) {
    *i0 = (int)((long)n * c / count);
    *i1 = (int)((long)n * (c + 1) / count);
}

static int chunk_count(int n) { return n < 16 ? n : 16; }

/* Zero-padded copy of one image channel by channel: dst (C, cstride), row hp of channel c at c·cstride + hp·Wp
 * (then pixels wp, pw ≤ wp < pw + W, hold x; the rest stays as it was: zero). */
static void pad_image(const nnrt_conv2d_geom *g, const float *x, float *dst, int cstride) {
    int Wp = g->W + 2 * g->pw;
    for (int c = 0; c < g->C; c++)
        for (int h = 0; h < g->H; h++)
            memcpy(dst + (long)c * cstride + (long)(h + g->ph) * Wp + g->pw, x + ((long)c * g->H + h) * g->W,
                   sizeof(float) * (size_t)g->W);
}

/* Channels-last zero-padded copy: xT (Hp·Wp, C); padding pixels stay as they were (zero). */
static void transpose_image(const nnrt_conv2d_geom *g, const float *x, float *xT) {
    int Wp = g->W + 2 * g->pw, C = g->C;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < g->H; h++) {
            const float *src = x + ((long)c * g->H + h) * g->W;
            float *dst = xT + ((long)(h + g->ph) * Wp + g->pw) * C + c;
            for (int w = 0; w < g->W; w++) dst[(long)w * C] = src[w];
        }
}

// ----------------------------------------------------------------------------
// forward

typedef struct {
    const nnrt_conv2d_geom *g;
    const nnrt_conv_kernels *ks;
    nnrt_conv_fwd f;
    int n, act, chunks, pool;
    const float *x, *w, *bias;
    float *y;
    unsigned char *at;
    carve cv;
    size_t xpad_floats;
    pthread_t caller;
} fwd_job;

/* y[k] (OH, OW) = act(yv[k] (OH, Wp) without its last Wp − OW columns + bias[k]). */
static void fwd_epilogue(const nnrt_conv2d_geom *g, const float *yv, int ldv, const float *bias, int act, float *y) {
    int Wp = g->W + 2 * g->pw;
    for (int k = 0; k < g->K; k++) {
        float b = bias ? bias[k] : 0.0f;
        for (int oh = 0; oh < g->OH; oh++) {
            const float *src = yv + (long)k * ldv + (long)oh * Wp;
            float *dst = y + ((long)k * g->OH + oh) * g->OW;
            if (act == NNRT_ACT_RELU)
                for (int ow = 0; ow < g->OW; ow++) { float v = src[ow] + b; dst[ow] = v > 0.0f ? v : 0.0f; }
            else
                for (int ow = 0; ow < g->OW; ow++) dst[ow] = src[ow] + b;
        }
    }
}

static void fwd_chunk(void *arg, int c) {
    fwd_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *xpad = j->cv.slot[my_slot(j->caller)], *yv = xpad + j->xpad_floats;
    int i0, i1;
    chunk_range(j->n, j->chunks, c, &i0, &i1);
    memset(xpad, 0, sizeof(float) * j->xpad_floats);
    for (int i = i0; i < i1; i++) {
        pad_image(g, j->x + (long)i * g->C * g->H * g->W, xpad, j->f.spad);
        j->ks->fwd(&j->f, xpad, yv);
        if (j->pool) {
            long e = (long)i * g->K * (g->OH / 2) * (g->OW / 2);
            j->ks->fwdp(yv, j->f.nvec * j->ks->vl, g->W + 2 * g->pw, g->K, g->OH, g->OW, j->bias, j->act, j->y + e,
                        j->at ? j->at + e : NULL);
        } else fwd_epilogue(g, yv, j->f.nvec * j->ks->vl, j->bias, j->act, j->y + (long)i * g->K * g->OH * g->OW);
    }
}

/* wpack (Kp/MR, C, T, MR): output channels MR at a time, interleaved; rows past K are zero. */
static void pack_forward_weights(const nnrt_conv2d_geom *g, const float *w, float *wpack) {
    int T = g->kh * g->kw, MR = NNRT_CONV_MR, kp = (g->K + MR - 1) / MR;
    for (int kb = 0; kb < kp; kb++)
        for (int c = 0; c < g->C; c++)
            for (int t = 0; t < T; t++)
                for (int r = 0; r < MR; r++) {
                    int k = kb * MR + r;
                    wpack[(((long)kb * g->C + c) * T + t) * MR + r] = k < g->K ? w[((long)k * g->C + c) * T + t] : 0.0f;
                }
}

/* The padded-width layout of one image (conv_kernels.h) for vectors of vl floats; returns xpad's floats. */
static size_t fwd_shape(const nnrt_conv2d_geom *g, int vl, nnrt_conv_fwd *f) {
    int Wp = g->W + 2 * g->pw;
    f->C = g->C, f->K = g->K, f->T = g->kh * g->kw;
    for (int i = 0; i < g->kh; i++)
        for (int jj = 0; jj < g->kw; jj++) f->toff[i * g->kw + jj] = i * Wp + jj;
    f->nvec = (g->OH * Wp + vl - 1) / vl;
    f->spad = (int)up((size_t)f->nvec * vl + (size_t)(g->kh - 1) * Wp + g->kw - 1, 16);
    return up((size_t)g->C * f->spad, 16);
}

/* The fast forward (pooled: fwdp's epilogue); 0 when its layouts do not fit the workspace. Slot: xpad | yv and the
   2·VL floats fwdp may read past it. */
static int forward_fast(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks, int n, const float *x, const float *w,
                        const float *bias, int act, float *y, int pool, unsigned char *at, float *ws, size_t ws_floats) {
    fwd_job j = {.g = g, .ks = ks, .n = n, .act = act, .pool = pool, .x = x, .w = w, .bias = bias, .y = y, .at = at,
                 .caller = pthread_self()};
    int vl = ks->vl, kp = (g->K + NNRT_CONV_MR - 1) / NNRT_CONV_MR * NNRT_CONV_MR;
    j.xpad_floats = fwd_shape(g, vl, &j.f);
    size_t shared = (size_t)kp * g->C * j.f.T, slot = j.xpad_floats + (size_t)kp * j.f.nvec * vl + 2 * (size_t)vl;
    if (!carve_ws(ws, ws_floats, shared, slot, &j.cv)) return 0;
    pack_forward_weights(g, w, j.cv.shared);
    j.f.wpack = j.cv.shared;
    j.chunks = chunk_count(n);
    nnrt_par_chunks(fwd_chunk, &j, j.chunks);
    return 1;
}

// ----------------------------------------------------------------------------
// forward by Winograd F(2×2, 3×3) (conv_kernels.h, nnrt_wino): 2.25× fewer multiply-adds than the direct form.
// Per chunk of images: the padded, even/odd-split image (xs), its transformed patches (V, 16 × C × tiles of the
// group's images), then per block of WINO_KB output channels 16 GEMMs (the forward kernel, one tap) into M and the
// output transform with bias and activation. Each output pixel depends on its own image only, and the GEMM sums
// over c in a fixed order, so the results do not depend on the grouping nor on the threads.

enum { WINO_KB = 16, WINO_MAX_IMAGES = 4 };

typedef struct {
    const nnrt_conv2d_geom *g;
    const nnrt_conv_kernels *ks;
    nnrt_wino w;
    int n, act, groups, chunks, imgs, kp, nvec, pool;
    const float *x, *u, *bias;
    float *y;
    unsigned char *at;
    carve cv;
    size_t xs_floats, v_floats;
    long ldx;  /* floats between M[ξ] and M[ξ + 1] */
    pthread_t caller;
} wino_job;

/* Slot: xs | V | M (16, KB, ldm) and VL floats of slack. */
static void wino_chunk(void *arg, int c) {
    wino_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    int vl = j->ks->vl, ldm = j->nvec * vl, Wh = j->w.LE, TT = j->w.TH * j->w.TW;
    float *xs = j->cv.slot[my_slot(j->caller)], *v = xs + j->xs_floats, *m = v + j->v_floats;
    memset(xs, 0, sizeof(float) * j->xs_floats);
    int g0 = (int)((long)j->groups * c / j->chunks), g1 = (int)((long)j->groups * (c + 1) / j->chunks);
    for (int gi = g0; gi < g1; gi++) {
        int i0 = gi * j->imgs, i1 = i0 + j->imgs < j->n ? i0 + j->imgs : j->n;
        for (int i = i0; i < i1; i++) {
            const float *xi = j->x + (long)i * g->C * g->H * g->W;
            for (int ch = 0; ch < g->C; ch++)
                for (int h = 0; h < g->H; h++) {
                    float *row = xs + ((long)ch * j->w.rows + h + g->ph) * 2 * Wh;
                    const float *src = xi + ((long)ch * g->H + h) * g->W;
                    for (int x0 = 0; x0 < g->W; x0++) {
                        int wp = x0 + g->pw;
                        row[(wp & 1) * Wh + (wp >> 1)] = src[x0];
                    }
                }
            j->ks->wi(&j->w, xs, v, (long)(i - i0) * TT);
        }
        for (int k0 = 0; k0 < g->K; k0 += WINO_KB) {
            int nk = g->K - k0 < WINO_KB ? g->K - k0 : WINO_KB;
            nnrt_conv_fwd f = {.C = g->C, .K = nk, .T = 1, .toff = {0}, .spad = (int)j->w.ldv, .nvec = j->nvec};
            for (int xi = 0; xi < 16; xi++) {
                f.wpack = j->u + ((long)xi * j->kp + k0) * g->C;
                j->ks->fwd(&f, v + xi * j->w.ldvx, m + xi * j->ldx);
            }
            for (int i = i0; i < i1; i++) {
                const float *b = j->bias ? j->bias + k0 : NULL;
                long e = ((long)i * g->K + k0) * TT;  /* pooled: each tile is a window */
                if (j->pool) j->ks->wop(&j->w, m, j->ldx, ldm, nk, (long)(i - i0) * TT, b, j->act, j->y + e, j->at ? j->at + e : NULL);
                else j->ks->wo(&j->w, m, j->ldx, ldm, nk, (long)(i - i0) * TT, b, j->act,
                               j->y + ((long)i * g->K + k0) * g->OH * g->OW, g->OH, g->OW);
            }
        }
    }
}

/* u (16, Kp/MR, C, MR): U[ξ] = G·g·Gᵀ of each (k, c) with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1], MR output channels
   interleaved as the forward kernel reads them; rows past K are zero. */
static void pack_wino_weights(const nnrt_conv2d_geom *g, const float *w, int kp, float *u) {
    int MR = NNRT_CONV_MR;
    for (int k = 0; k < kp; k++)
        for (int c = 0; c < g->C; c++) {
            float t[4][3], o[4][4];
            const float *gw = w + ((long)k * g->C + c) * 9;
            for (int jj = 0; jj < 3; jj++) {
                float g0 = k < g->K ? gw[jj] : 0.0f, g1 = k < g->K ? gw[3 + jj] : 0.0f, g2 = k < g->K ? gw[6 + jj] : 0.0f;
                t[0][jj] = g0, t[1][jj] = 0.5f * (g0 + g1 + g2), t[2][jj] = 0.5f * (g0 - g1 + g2), t[3][jj] = g2;
            }
            for (int r = 0; r < 4; r++) {
                o[r][0] = t[r][0], o[r][1] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
                o[r][2] = 0.5f * (t[r][0] - t[r][1] + t[r][2]), o[r][3] = t[r][2];
            }
            for (int xi = 0; xi < 16; xi++)
                u[(((long)xi * kp + k / MR * MR) * g->C + (long)c * MR) + k % MR] = o[xi / 4][xi % 4];
        }
}

/* The Winograd forward (pooled: wop's output transform, OH and OW even); 0 when the geometry is not its (3×3, enough
   channels) or its layouts do not fit. The environment's NNRT_CONV_WINOGRAD=0 turns it off (for A/B measurements). */
static int forward_wino(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks, int n, const float *x, const float *w,
                        const float *bias, int act, float *y, int pool, unsigned char *at, float *ws, size_t ws_floats) {
    if (g->kh != 3 || g->kw != 3 || g->C < 8 || g->K < 8) return 0;
    const char *env = getenv("NNRT_CONV_WINOGRAD");
    if (env && env[0] == '0') return 0;
    int vl = ks->vl, MR = NNRT_CONV_MR;
    wino_job j = {.g = g, .ks = ks, .n = n, .act = act, .pool = pool, .x = x, .bias = bias, .y = y, .at = at,
                  .caller = pthread_self()};
    j.kp = (g->K + MR - 1) / MR * MR;
    j.w.C = g->C, j.w.TH = (g->OH + 1) / 2, j.w.TW = (g->OW + 1) / 2;
    j.w.LE = ((j.w.TW + vl - 1) / vl + 1) * vl, j.w.rows = 2 * j.w.TH + 2;
    j.xs_floats = up((size_t)g->C * j.w.rows * 2 * j.w.LE, 16);
    size_t shared = (size_t)16 * j.kp * g->C, TT = (size_t)j.w.TH * j.w.TW;
    for (j.imgs = n < WINO_MAX_IMAGES ? n : WINO_MAX_IMAGES; j.imgs >= 1; j.imgs--) {
        j.nvec = (int)((j.imgs * TT + vl - 1) / vl);
        /* V[ξ] and M[ξ] an odd number of cache lines apart: at a multiple of 4 KB the 16 of them would share the
           same L1 sets (the transforms read or write all 16 at once) */
        j.w.ldv = (long)(j.nvec + 1) * vl;
        j.w.ldvx = (long)up((size_t)g->C * j.w.ldv, 32) + 16;
        j.v_floats = up((size_t)16 * j.w.ldvx, 16);
        j.ldx = (long)up((size_t)WINO_KB * j.nvec * vl, 32) + 16;
        if (carve_ws(ws, ws_floats, shared, j.xs_floats + j.v_floats + (size_t)16 * j.ldx + vl, &j.cv)) break;
    }
    if (j.imgs < 1) return 0;
    pack_wino_weights(g, w, j.kp, j.cv.shared);
    j.u = j.cv.shared;
    j.groups = (n + j.imgs - 1) / j.imgs;
    j.chunks = j.groups < 32 ? j.groups : 32;
    nnrt_par_chunks(wino_chunk, &j, j.chunks);
    return 1;
}

int nnrt_conv_fast_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias, int act,
                           float *y, int pool, unsigned char *at, float *ws, size_t ws_floats) {
    const nnrt_conv_kernels *ks = fast_set(g);
    return ks && (forward_wino(g, ks, n, x, w, bias, act, y, pool, at, ws, ws_floats) ||
                  forward_fast(g, ks, n, x, w, bias, act, y, pool, at, ws, ws_floats));
}

void nnrt_conv2d_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias, int act,
                         float *y, float *ws, size_t ws_floats) {
    check_ws("nnrt_conv2d_forward", g, ws_floats);
    if (n <= 0 || nnrt_conv_fast_forward(g, n, x, w, bias, act, y, 0, NULL, ws, ws_floats)) return;
    nnrt_conv_plain_forward(g, n, x, w, bias, act, y, ws);
}

// ----------------------------------------------------------------------------
// the backward passes' channels-last layouts

/* The shape of the backward kernels' layouts for one kernel set. */
static nnrt_conv_bwd bwd_shape(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks) {
    int Wp = g->W + 2 * g->pw, lp = (int)up((size_t)g->kw * g->C, (size_t)ks->vl);
    return (nnrt_conv_bwd){.K = g->K, .P = g->OH * g->OW, .OW = g->OW, .S = g->kh, .VS = lp / ks->vl,
                           .rowstride = Wp * g->C, .pixstride = g->C, .Wp = Wp};
}

/* Floats of xT or dxT, with the slack that the last pixel's whole vectors read past the image. */
static size_t image_T_floats(const nnrt_conv2d_geom *g, const nnrt_conv_bwd *b, int vl) {
    return up((size_t)(g->H + 2 * g->ph) * (g->W + 2 * g->pw) * g->C + (size_t)b->VS * vl, 16);
}

// ----------------------------------------------------------------------------
// grad-weight

/* Grad-weight splits the batch in up to GW_CHUNKS chunks that both threads take from opposite ends
 * (nnrt_par_chunks); each chunk sums its images into its own partial (dW in the kernel's layout, then db), and
 * the partials are added at the end in chunk order: the result does not depend on which thread ran what, nor on
 * the number of threads. The per-thread scratch (the image's layout) is in the thread's slot. */
enum { GW_CHUNKS = 8 };

/* How many chunks' partials of `part` floats fit next to two slots of `slot` floats: GW_CHUNKS or fewer, at
   least 2 (what the workspace formula guarantees: its two slots hold a partial each), 0 when not even that. */
static int gw_chunks(int n, float *ws, size_t ws_floats, size_t part, size_t slot, carve *cv) {
    part = up(part, 16), slot = up(slot, 16);
    int count = n < GW_CHUNKS ? n : GW_CHUNKS;
    if (count < 2) count = 2;
    for (; count >= 2; count--)
        if (carve_ws(ws, ws_floats, (size_t)count * part, slot, cv)) return count;
    return 0;
}

typedef struct {
    const nnrt_conv2d_geom *g;
    const nnrt_conv_kernels *ks;
    nnrt_conv_bwd b;
    int n, with_db, chunks;
    nnrt_conv_dy dy;
    const float *x;
    carve cv;
    size_t xT_floats, dwt_floats, part_floats;
    pthread_t caller;
} gw_job;

/* Slot: xT | val (P + 16) | off (2·up(P + 16, 16) ints). Partial c: dWT (K, S·Lp) | db (K). */
static void gw_chunk(void *arg, int c) {
    gw_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *xT = j->cv.slot[my_slot(j->caller)], *val = xT + j->xT_floats;
    int *off = (int *)(val + up((size_t)j->b.P + 16, 16));
    float *dwt = j->cv.shared + (size_t)c * j->part_floats, *db = dwt + j->dwt_floats;
    memset(xT, 0, sizeof(float) * j->xT_floats);
    memset(dwt, 0, sizeof(float) * j->part_floats);
    int i0, i1;
    chunk_range(j->n, j->chunks, c, &i0, &i1);
    for (int i = i0; i < i1; i++) {
        transpose_image(g, j->x + (long)i * g->C * g->H * g->W, xT);
        long e = (long)i * g->K * (j->dy.at ? j->b.P / 4 : j->b.P);
        if (j->dy.at) j->ks->gwp(&j->b, j->dy.dy + e, j->dy.at + e, j->dy.relu, xT, dwt, j->with_db ? db : NULL, off, val);
        else j->ks->gw(&j->b, j->dy.dy + e, xT, dwt, j->with_db ? db : NULL, off, val);
    }
}

static int grad_weight_fast(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks, int n, nnrt_conv_dy dy,
                            const float *x, float *dw, float *db, float *ws, size_t ws_floats) {
    gw_job j = {.g = g, .ks = ks, .b = bwd_shape(g, ks), .n = n, .with_db = db != NULL, .dy = dy, .x = x,
                .caller = pthread_self()};
    int lp = j.b.VS * ks->vl;
    j.xT_floats = image_T_floats(g, &j.b, ks->vl);
    j.dwt_floats = up((size_t)g->K * j.b.S * lp, 16);
    j.part_floats = j.dwt_floats + up((size_t)g->K, 16);
    size_t slot = j.xT_floats + 3 * up((size_t)j.b.P + 16, 16);
    if (!(j.chunks = gw_chunks(n, ws, ws_floats, j.part_floats, slot, &j.cv))) return 0;
    nnrt_par_chunks(gw_chunk, &j, j.chunks);
    /* dw[k][c][i][j] = the partials' dWT[k][i][j·C + c], added in chunk order */
    const float *p = j.cv.shared;
    size_t pf = j.part_floats;
    for (int k = 0; k < g->K; k++)
        for (int c = 0; c < g->C; c++)
            for (int i = 0; i < g->kh; i++)
                for (int jj = 0; jj < g->kw; jj++) {
                    long s = ((long)k * g->kh + i) * lp + jj * g->C + c;
                    float v = p[s];
                    for (int q = 1; q < j.chunks; q++) v += p[q * pf + s];
                    dw[(((long)k * g->C + c) * g->kh + i) * g->kw + jj] = v;
                }
    if (db)
        for (int k = 0; k < g->K; k++) {
            float v = p[j.dwt_floats + k];
            for (int q = 1; q < j.chunks; q++) v += p[q * pf + j.dwt_floats + k];
            db[k] = v;
        }
    return 1;
}

/* The dot form, for few input channels (conv_kernels.h, gwd). Slot: xpad | dyv. Partial c: acc (K, C·T, VL) |
   db (K). */
typedef struct {
    const nnrt_conv2d_geom *g;
    const nnrt_conv_kernels *ks;
    nnrt_conv_fwd f;
    int n, with_db, chunks;
    nnrt_conv_dy dy;
    const float *x;
    carve cv;
    size_t xpad_floats, acc_floats, dyv_floats, part_floats;
    pthread_t caller;
} gwd_job;

static void gwd_chunk(void *arg, int c) {
    gwd_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *xpad = j->cv.slot[my_slot(j->caller)], *dyv = xpad + j->xpad_floats;
    float *acc = j->cv.shared + (size_t)c * j->part_floats, *db = acc + j->acc_floats;
    memset(xpad, 0, sizeof(float) * (j->xpad_floats + j->dyv_floats));
    memset(acc, 0, sizeof(float) * j->part_floats);
    int i0, i1;
    chunk_range(j->n, j->chunks, c, &i0, &i1);
    for (int i = i0; i < i1; i++) {
        pad_image(g, j->x + (long)i * g->C * g->H * g->W, xpad, j->f.spad);
        int Wp = g->W + 2 * g->pw;
        long e = (long)i * g->K * (j->dy.at ? g->OH / 2 * (g->OW / 2) : g->OH * g->OW);
        if (j->dy.at)
            j->ks->gwdp(&j->f, g->OH, g->OW, Wp, j->dy.dy + e, j->dy.at + e, j->dy.relu, xpad, acc, j->with_db ? db : NULL,
                        dyv);
        else j->ks->gwd(&j->f, g->OH, g->OW, Wp, j->dy.dy + e, xpad, acc, j->with_db ? db : NULL, dyv);
    }
}

static int grad_weight_dot(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks, int n, nnrt_conv_dy dy,
                           const float *x, float *dw, float *db, float *ws, size_t ws_floats) {
    gwd_job j = {.g = g, .ks = ks, .n = n, .with_db = db != NULL, .dy = dy, .x = x, .caller = pthread_self()};
    int vl = ks->vl;
    j.xpad_floats = fwd_shape(g, vl, &j.f);
    j.acc_floats = up((size_t)g->K * g->C * j.f.T * vl, 16);
    j.dyv_floats = up((size_t)j.f.nvec * vl + 2 * (size_t)vl, 16);  /* gwdp's slack */
    j.part_floats = j.acc_floats + up((size_t)g->K, 16);
    if (!(j.chunks = gw_chunks(n, ws, ws_floats, j.part_floats, j.xpad_floats + j.dyv_floats, &j.cv))) return 0;
    nnrt_par_chunks(gwd_chunk, &j, j.chunks);
    /* dw[k][c][t] = the lanes of chunk 0's acc summed in order, plus chunk 1's, … */
    const float *p = j.cv.shared;
    size_t pf = j.part_floats;
    for (long e = 0; e < (long)g->K * g->C * j.f.T; e++) {
        float v = 0.0f;
        for (int q = 0; q < j.chunks; q++) {
            float s = 0.0f;
            for (int l = 0; l < vl; l++) s += p[q * pf + e * vl + l];
            v = q ? v + s : s;
        }
        dw[e] = v;
    }
    if (db)
        for (int k = 0; k < g->K; k++) {
            float v = p[j.acc_floats + k];
            for (int q = 1; q < j.chunks; q++) v += p[q * pf + j.acc_floats + k];
            db[k] = v;
        }
    return 1;
}

int nnrt_conv_fast_grad_weight(const nnrt_conv2d_geom *g, int n, nnrt_conv_dy dy, const float *x, float *dw, float *db,
                               float *ws, size_t ws_floats) {
    const nnrt_conv_kernels *ks = fast_set(g);
    if (!ks) return 0;
    /* A patch narrower than half a vector (conv1: 3 floats) wastes most lanes of the sparse kernel: dot form. */
    if (2 * g->kw * g->C <= ks->vl && grad_weight_dot(g, ks, n, dy, x, dw, db, ws, ws_floats)) return 1;
    return grad_weight_fast(g, ks, n, dy, x, dw, db, ws, ws_floats);
}

void nnrt_conv2d_grad_weight(const nnrt_conv2d_geom *g, int n, const float *dy, const float *x, float *dw, float *db,
                             float *ws, size_t ws_floats) {
    check_ws("nnrt_conv2d_grad_weight", g, ws_floats);
    if (nnrt_conv_fast_grad_weight(g, n, (nnrt_conv_dy){dy, NULL, 0}, x, dw, db, ws, ws_floats)) return;
    nnrt_conv_plain_grad_weight(g, n, dy, x, dw, db, ws);
}

// ----------------------------------------------------------------------------
// grad-input

typedef struct {
    const nnrt_conv2d_geom *g;
    const nnrt_conv_kernels *ks;
    nnrt_conv_bwd b;
    int n, chunks;
    nnrt_conv_dy dy;
    const float *wt;
    float *dx;
    carve cv;
    size_t dxT_floats, list;  /* floats of dxT, entries of kidx and of val */
    pthread_t caller;
} gi_job;

/* dx (C, H, W) = the interior of dxT (Hp·Wp, C). */
static void untranspose_image(const nnrt_conv2d_geom *g, const float *dxT, float *dx) {
    int Wp = g->W + 2 * g->pw, C = g->C;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < g->H; h++) {
            const float *src = dxT + ((long)(h + g->ph) * Wp + g->pw) * C + c;
            float *dst = dx + ((long)c * g->H + h) * g->W;
            for (int w = 0; w < g->W; w++) dst[w] = src[(long)w * C];
        }
}

/* Slot: dxT | val (list) | kidx (list): K entries each, gip's 4·(OW/2)·(K + 1) when dy is pooled. */
static void gi_chunk(void *arg, int c) {
    gi_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *dxT = j->cv.slot[my_slot(j->caller)], *val = dxT + j->dxT_floats;
    int *kidx = (int *)(val + j->list);
    int i0, i1;
    chunk_range(j->n, j->chunks, c, &i0, &i1);
    for (int i = i0; i < i1; i++) {
        memset(dxT, 0, sizeof(float) * j->dxT_floats);
        long e = (long)i * g->K * (j->dy.at ? j->b.P / 4 : j->b.P);
        if (j->dy.at) j->ks->gip(&j->b, j->dy.dy + e, j->dy.at + e, j->dy.relu, j->wt, dxT, kidx, val);
        else j->ks->gi(&j->b, j->dy.dy + e, j->wt, dxT, kidx, val);
        untranspose_image(g, dxT, j->dx + (long)i * g->C * g->H * g->W);
    }
}

/* wt (K, kh, Lp): wt[k][i][j·C + c] = w[k][c][i][j], zero in the lanes past kw·C. */
static void pack_backward_weights(const nnrt_conv2d_geom *g, int lp, const float *w, float *wt) {
    memset(wt, 0, sizeof(float) * (size_t)g->K * g->kh * lp);
    for (int k = 0; k < g->K; k++)
        for (int c = 0; c < g->C; c++)
            for (int i = 0; i < g->kh; i++)
                for (int jj = 0; jj < g->kw; jj++)
                    wt[((long)k * g->kh + i) * lp + jj * g->C + c] = w[(((long)k * g->C + c) * g->kh + i) * g->kw + jj];
}

static int grad_input_fast(const nnrt_conv2d_geom *g, const nnrt_conv_kernels *ks, int n, nnrt_conv_dy dy,
                           const float *w, float *dx, float *ws, size_t ws_floats) {
    gi_job j = {.g = g, .ks = ks, .b = bwd_shape(g, ks), .n = n, .dy = dy, .dx = dx, .caller = pthread_self()};
    int lp = j.b.VS * ks->vl;
    j.dxT_floats = image_T_floats(g, &j.b, ks->vl);
    j.list = up(dy.at ? (size_t)4 * (g->OW / 2) * (g->K + 1) : (size_t)g->K, 16);
    size_t shared = (size_t)g->K * g->kh * lp, slot = j.dxT_floats + 2 * j.list;
    if (!carve_ws(ws, ws_floats, shared, slot, &j.cv)) return 0;
    pack_backward_weights(g, lp, w, j.cv.shared);
    j.wt = j.cv.shared;
    j.chunks = chunk_count(n);
    nnrt_par_chunks(gi_chunk, &j, j.chunks);
    return 1;
}

int nnrt_conv_fast_grad_input(const nnrt_conv2d_geom *g, int n, nnrt_conv_dy dy, const float *w, float *dx, float *ws,
                              size_t ws_floats) {
    const nnrt_conv_kernels *ks = fast_set(g);
    return ks && grad_input_fast(g, ks, n, dy, w, dx, ws, ws_floats);
}

void nnrt_conv2d_grad_input(const nnrt_conv2d_geom *g, int n, const float *dy, const float *w, float *dx, float *ws,
                            size_t ws_floats) {
    check_ws("nnrt_conv2d_grad_input", g, ws_floats);
    if (n <= 0 || nnrt_conv_fast_grad_input(g, n, (nnrt_conv_dy){dy, NULL, 0}, w, dx, ws, ws_floats)) return;
    nnrt_conv_plain_grad_input(g, n, dy, w, dx, ws);
}
