/* fracpool.c — fractional max pooling (nnrt_fracpool.h), float32 on both threads (chunks of whole planes, so
 * that no two write the same memory) and the float64 twins for gradcheck. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <string.h>

#include "nnrt.h"
#include "nnrt_fracpool.h"

int nnrt_fracpool_start(int i, int size, int out, int k, double u) {
    if (i == out - 1) return size - k;
    double alpha = (double)(size - k) / (double)(out - 1);
    return (int)floor(((double)i + u) * alpha) - (int)floor(u * alpha);
}

/* The largest plane the window starts are kept for on the stack; larger ones are recomputed per window. */
enum { FRACPOOL_MAX_OUT = 1024 };

/* One plane, for float (f32) and double (f64): x (H, W), y and dy (OH, OW), u the plane's two samples. The index
   of each window's maximum in x (H·W) by PyTorch's rule; forward writes the maximum, backward adds dy there. */
#define FRACPOOL_PLANE(T, SFX)                                                                                     \
    static void plane_##SFX(const nnrt_fracpool2d_geom *g, const T *x, const T *u, const T *dy, T *out) {          \
        int rows[FRACPOOL_MAX_OUT], cols[FRACPOOL_MAX_OUT];                                                          \
        for (int i = 0; i < g->OH; i++) rows[i] = nnrt_fracpool_start(i, g->H, g->OH, g->kh, (double)u[1]);        \
        for (int j = 0; j < g->OW; j++) cols[j] = nnrt_fracpool_start(j, g->W, g->OW, g->kw, (double)u[0]);        \
        if (dy) memset(out, 0, sizeof(T) * (size_t)g->H * g->W);                                                     \
        for (int i = 0; i < g->OH; i++)                                                                              \
            for (int j = 0; j < g->OW; j++) {                                                                        \
                long best = (long)rows[i] * g->W + cols[j];                                                          \
                T m = (T)-INFINITY;                                                                                  \
                for (int h = rows[i]; h < rows[i] + g->kh; h++)                                                      \
                    for (int w = cols[j]; w < cols[j] + g->kw; w++) {                                                \
                        T v = x[(long)h * g->W + w];                                                                 \
                        if (v > m || isnan(v)) m = v, best = (long)h * g->W + w;                                     \
                    }                                                                                                \
                if (dy) out[best] += dy[(long)i * g->OW + j];                                                        \
                else out[(long)i * g->OW + j] = m;                                                                   \
            }                                                                                                        \
    }

FRACPOOL_PLANE(float, f32)
FRACPOOL_PLANE(double, f64)

static void check(const nnrt_fracpool2d_geom *g) {
    if (g->OH > FRACPOOL_MAX_OUT || g->OW > FRACPOOL_MAX_OUT)
        nnrt_die("internal error: fractional max pooling to %dx%d (at most %d per axis)", g->OH, g->OW,
                 FRACPOOL_MAX_OUT);
}

// ----------------------------------------------------------------------------
// float32: planes in chunks on both threads

typedef struct {
    const nnrt_fracpool2d_geom *g;
    int planes, chunks;
    const float *x, *u, *dy;
    float *out;
} fracpool_job;

static void fracpool_chunk(void *arg, int c) {
    fracpool_job *j = arg;
    const nnrt_fracpool2d_geom *g = j->g;
    long in = (long)g->H * g->W, out = (long)g->OH * g->OW;
    int p0 = (int)((long)j->planes * c / j->chunks), p1 = (int)((long)j->planes * (c + 1) / j->chunks);
    for (int p = p0; p < p1; p++)
        plane_f32(g, j->x + p * in, j->u + 2 * p, j->dy ? j->dy + p * out : NULL, j->out + p * (j->dy ? in : out));
}

static void fracpool_run(const nnrt_fracpool2d_geom *g, int n, const float *x, const float *u, const float *dy,
                         float *out) {
    check(g);
    fracpool_job j = {.g = g, .planes = n * g->C, .x = x, .u = u, .dy = dy, .out = out};
    if (j.planes <= 0) return;
    j.chunks = j.planes < 16 ? j.planes : 16;
    nnrt_par_chunks(fracpool_chunk, &j, j.chunks);
}

void nnrt_fracmaxpool2d_forward(const nnrt_fracpool2d_geom *g, int n, const float *x, const float *u, float *y) {
    fracpool_run(g, n, x, u, NULL, y);
}
void nnrt_fracmaxpool2d_backward(const nnrt_fracpool2d_geom *g, int n, const float *dy, const float *x,
                                 const float *u, float *dx) {
    fracpool_run(g, n, x, u, dy, dx);
}

// ----------------------------------------------------------------------------
// float64 twins, one thread

void nnrt_fracmaxpool2d_forward_f64(const nnrt_fracpool2d_geom *g, int n, const double *x, const double *u,
                                    double *y) {
    check(g);
    for (long p = 0; p < (long)n * g->C; p++) plane_f64(g, x + p * g->H * g->W, u + 2 * p, NULL, y + p * g->OH * g->OW);
}
void nnrt_fracmaxpool2d_backward_f64(const nnrt_fracpool2d_geom *g, int n, const double *dy, const double *x,
                                     const double *u, double *dx) {
    check(g);
    for (long p = 0; p < (long)n * g->C; p++)
        plane_f64(g, x + p * g->H * g->W, u + 2 * p, dy + p * g->OH * g->OW, dx + p * g->H * g->W);
}
