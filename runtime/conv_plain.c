/* conv_plain.c — conv.c's plain path: any stride, padding, dilation and groups, on any CPU.
 *
 * Per image and group g (Cg = C/groups input channels, Kg = K/groups output channels, Q = Cg·kh·kw, P = OH·OW):
 *   forward      y_g (Kg, P) = w_g (Kg, Q) · col (Q, P)                       im2col, nnrt_sgemm NN
 *   grad-input   dcolᵀ (P, Q) = dy_gᵀ (P, Kg) · w_g (Kg, Q), then col2im       nnrt_sgemm TN (skips dy's zeros)
 *   grad-weight  dw_g (Kg, Q) += dy_g (Kg, P) · colᵀ (P, Q)                    loops over dy's non-zeros
 * Scratch: two slots of nnrt_conv2d_ws_floats's layout (4 columns, then one weight), one per thread for the
 * forward and grad-input, one per half of the batch for grad-weight. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <string.h>

#include "conv_kernels.h"
#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

typedef struct {
    const nnrt_conv2d_geom *g;
    int n, act, chunks, Cg, Kg, Q, P;
    const float *x, *w, *bias, *dy;
    float *out, *db, *ws;
    size_t col, slot;  /* floats of one image-group's columns, of one slot */
    pthread_t caller;
} plain_job;

static plain_job plain_setup(const nnrt_conv2d_geom *g, int n, float *ws) {
    plain_job j = {.g = g, .n = n, .ws = ws, .caller = pthread_self()};
    j.Cg = g->C / g->groups, j.Kg = g->K / g->groups, j.Q = j.Cg * g->kh * g->kw, j.P = g->OH * g->OW;
    j.col = (size_t)j.Q * j.P;
    j.slot = 4 * j.col + (size_t)g->K * j.Q;
    j.chunks = n < 16 ? n : 16;
    return j;
}

static float *slot_of(const plain_job *j, int s) { return j->ws + (size_t)s * j->slot; }
static float *my_slot(const plain_job *j) { return slot_of(j, pthread_equal(pthread_self(), j->caller) ? 1 : 0); }

static void range(int n, int count, int c, int *i0, int *i1) {
    *i0 = (int)((long)n * c / count), *i1 = (int)((long)n * (c + 1) / count);
}

/* The input pixel that tap (i, j) of output pixel (oh, ow) reads, and whether it is inside the image. */
static int tap(const nnrt_conv2d_geom *g, int oh, int ow, int i, int jj, int *h, int *w) {
    *h = oh * g->sh - g->ph + i * g->dh;
    *w = ow * g->sw - g->pw + jj * g->dw;
    return *h >= 0 && *h < g->H && *w >= 0 && *w < g->W;
}

/* col (Q, P), or its transpose colᵀ (P, Q) when `transposed`, of the channels xg (Cg, H, W). */
static void im2col(const nnrt_conv2d_geom *g, int Cg, const float *xg, float *col, int transposed) {
    int P = g->OH * g->OW, Q = Cg * g->kh * g->kw;
    for (int c = 0, q = 0; c < Cg; c++)
        for (int i = 0; i < g->kh; i++)
            for (int jj = 0; jj < g->kw; jj++, q++)
                for (int oh = 0, p = 0; oh < g->OH; oh++)
                    for (int ow = 0; ow < g->OW; ow++, p++) {
                        int h, w;
                        float v = tap(g, oh, ow, i, jj, &h, &w) ? xg[((long)c * g->H + h) * g->W + w] : 0.0f;
                        col[transposed ? (long)p * Q + q : (long)q * P + p] = v;
                    }
}

// ----------------------------------------------------------------------------
// forward

static void forward_chunk(void *arg, int c) {
    plain_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *col = my_slot(j);
    int i0, i1;
    range(j->n, j->chunks, c, &i0, &i1);
    for (int i = i0; i < i1; i++) {
        float *y = j->out + (long)i * g->K * j->P;  /* y (K, P) of image i */
        for (int gr = 0; gr < g->groups; gr++) {
            im2col(g, j->Cg, j->x + ((long)i * g->C + (long)gr * j->Cg) * g->H * g->W, col, 0);
            nnrt_sgemm(0, 0, j->Kg, j->P, j->Q, j->w + (long)gr * j->Kg * j->Q, j->Q, col, j->P,
                       y + (long)gr * j->Kg * j->P, j->P);
        }
        for (int k = 0; k < g->K; k++) {
            float b = j->bias ? j->bias[k] : 0.0f, *row = y + (long)k * j->P;
            for (int p = 0; p < j->P; p++) {
                float v = row[p] + b;
                row[p] = j->act == NNRT_ACT_RELU && !(v > 0.0f) ? 0.0f : v;
            }
        }
    }
}

void nnrt_conv_plain_forward(const nnrt_conv2d_geom *g, int n, const float *x, const float *w, const float *bias,
                             int act, float *y, float *ws) {
    plain_job j = plain_setup(g, n, ws);
    j.x = x, j.w = w, j.bias = bias, j.act = act, j.out = y;
    nnrt_par_chunks(forward_chunk, &j, j.chunks);
}

// ----------------------------------------------------------------------------
// grad-input

static void grad_input_chunk(void *arg, int c) {
    plain_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *dcolT = my_slot(j);  /* (P, Q) */
    int i0, i1;
    range(j->n, j->chunks, c, &i0, &i1);
    for (int i = i0; i < i1; i++) {
        float *dx = j->out + (long)i * g->C * g->H * g->W;  /* dx (C, H, W) of image i */
        memset(dx, 0, sizeof(float) * (size_t)g->C * g->H * g->W);
        for (int gr = 0; gr < g->groups; gr++) {
            const float *dyg = j->dy + ((long)i * g->K + (long)gr * j->Kg) * j->P;  /* (Kg, P) */
            nnrt_sgemm(1, 0, j->P, j->Q, j->Kg, dyg, j->P, j->w + (long)gr * j->Kg * j->Q, j->Q, dcolT, j->Q);
            float *dxg = dx + (long)gr * j->Cg * g->H * g->W;
            for (int oh = 0, p = 0; oh < g->OH; oh++)  /* col2im */
                for (int ow = 0; ow < g->OW; ow++, p++)
                    for (int cc = 0, q = 0; cc < j->Cg; cc++)
                        for (int ii = 0; ii < g->kh; ii++)
                            for (int jj = 0; jj < g->kw; jj++, q++) {
                                int h, w;
                                if (tap(g, oh, ow, ii, jj, &h, &w))
                                    dxg[((long)cc * g->H + h) * g->W + w] += dcolT[(long)p * j->Q + q];
                            }
        }
    }
}

void nnrt_conv_plain_grad_input(const nnrt_conv2d_geom *g, int n, const float *dy, const float *w, float *dx, float *ws) {
    plain_job j = plain_setup(g, n, ws);
    j.dy = dy, j.w = w, j.out = dx;
    nnrt_par_chunks(grad_input_chunk, &j, j.chunks);
}

// ----------------------------------------------------------------------------
// grad-weight

/* Half c of the batch: its dW (K, Q) in its slot's weight part. */
static void grad_weight_half(void *arg, int c) {
    plain_job *j = arg;
    const nnrt_conv2d_geom *g = j->g;
    float *colT = slot_of(j, c), *dw = colT + 4 * j->col;  /* (P, Q), (K, Q) */
    memset(dw, 0, sizeof(float) * (size_t)g->K * j->Q);
    int i0, i1;
    range(j->n, 2, c, &i0, &i1);
    for (int i = i0; i < i1; i++)
        for (int gr = 0; gr < g->groups; gr++) {
            im2col(g, j->Cg, j->x + ((long)i * g->C + (long)gr * j->Cg) * g->H * g->W, colT, 1);
            for (int k = gr * j->Kg; k < (gr + 1) * j->Kg; k++) {
                const float *dyk = j->dy + ((long)i * g->K + k) * j->P;
                float *dwk = dw + (long)k * j->Q;
                for (int p = 0; p < j->P; p++) {
                    float a = dyk[p];
                    if (a == 0.0f) continue;
                    const float *patch = colT + (long)p * j->Q;
                    for (int q = 0; q < j->Q; q++) dwk[q] += a * patch[q];
                }
            }
        }
}

/* db (K) = Σ dy over the batch and pixels, chunks of output channels. */
static void bias_chunk(void *arg, int c) {
    plain_job *j = arg;
    int k0, k1;
    range(j->g->K, j->chunks, c, &k0, &k1);
    for (int k = k0; k < k1; k++) {
        float s = 0.0f;
        for (int i = 0; i < j->n; i++)
            for (int p = 0; p < j->P; p++) s += j->dy[((long)i * j->g->K + k) * j->P + p];
        j->db[k] = s;
    }
}

void nnrt_conv_plain_grad_weight(const nnrt_conv2d_geom *g, int n, const float *dy, const float *x, float *dw, float *db,
                                 float *ws) {
    plain_job j = plain_setup(g, n, ws);
    j.dy = dy, j.x = x, j.db = db;
    nnrt_par_chunks(grad_weight_half, &j, 2);
    const float *p0 = slot_of(&j, 0) + 4 * j.col, *p1 = slot_of(&j, 1) + 4 * j.col;
    for (long e = 0; e < (long)g->K * j.Q; e++) dw[e] = p0[e] + p1[e];
    if (db) {
        j.chunks = g->K < 16 ? g->K : 16;
        nnrt_par_chunks(bias_chunk, &j, j.chunks);
    }
}
