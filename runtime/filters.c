/* filters.c — the filters command: what the first layer looks for, as a picture. The first Conv2d's filters
 * (out, in, kH, kW), or for a model without one the first Linear layer's weight rows (out, input_dim) reshaped as
 * the input image, each normalized on its own and drawn as a tile of a grid (nnrt_filter_grid_make). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_image.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

enum { TILE_TARGET = 28 };  // small kernels are magnified to about this many pixels a side

/* A filter's value as a pixel: its place between the filter's min and max (128 for a constant filter). */
static uint8_t level(double x, double lo, double hi) {
    if (!isfinite(x)) return 0;
    return hi > lo ? (uint8_t)lrint(255.0 * (x - lo) / (hi - lo)) : 128;
}

nnrt_filter_grid nnrt_filter_grid_make(const float *w, int n, int C, int h, int w_) {
    nnrt_filter_grid g = {0};
    int color = C == 1 || C == 3;
    g.channels = C == 3 ? 3 : 1;
    g.zoom = TILE_TARGET / (h > w_ ? h : w_);
    if (g.zoom < 1) g.zoom = 1;
    g.cols = color ? (int)ceil(sqrt((double)n)) : C;
    g.rows = color ? (n + g.cols - 1) / g.cols : n;
    int64_t th = (int64_t)h * g.zoom, tw = (int64_t)w_ * g.zoom;
    int64_t width = g.cols * (tw + 1) + 1, height = g.rows * (th + 1) + 1;
    if (width > 1000000 || height > 1000000)
        nnrt_die("filters: %d filters of %d x %d x %d make an image of %lld x %lld pixels, more than a PNG's 1000000 a side",
                 n, C, h, w_, (long long)width, (long long)height);
    g.width = (int)width;
    g.height = (int)height;
    size_t stride = (size_t)g.width * (size_t)g.channels, per = (size_t)C * (size_t)h * (size_t)w_;
    g.pixels = nnrt_malloc(nnrt_mul_size(stride, (size_t)g.height, "the filter image"));
    memset(g.pixels, 255, stride * (size_t)g.height);  // white: the separators
    for (int f = 0; f < n; f++) {
        const float *wf = w + (size_t)f * per;  // (C, h, w_)
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < per; i++)
            if (isfinite(wf[i])) { lo = wf[i] < lo ? wf[i] : lo; hi = wf[i] > hi ? wf[i] : hi; }
        for (int c = 0; c < C; c++) {
            int r = color ? f / g.cols : f, col = color ? f % g.cols : c;    // the tile
            int ch = C == 3 ? c : 0;                                           // its image channel
            size_t y0 = 1 + (size_t)r * (size_t)(th + 1), x0 = 1 + (size_t)col * (size_t)(tw + 1);
            for (int64_t y = 0; y < th; y++)
                for (int64_t x = 0; x < tw; x++) {
                    double v = wf[((size_t)c * (size_t)h + (size_t)(y / g.zoom)) * (size_t)w_ + (size_t)(x / g.zoom)];
                    g.pixels[(y0 + (size_t)y) * stride + (x0 + (size_t)x) * (size_t)g.channels + (size_t)ch] = level(v, lo, hi);
                }
        }
    }
    return g;
}

const nnrt_param *nnrt_filters_param(const nnrt_model *m, int shape[4], char *why, size_t cap) {
    const nnrt_param *linear = NULL;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (p->ndim == 4) {
            for (int d = 0; d < 4; d++) shape[d] = (int)p->shape[d];
            return p;
        }
        if (!linear && p->ndim == 2 && p->shape[1] == m->input_dim) linear = p;
    }
    if (!linear) {
        snprintf(why, cap, "model '%s' has no Conv2d layer and no Linear layer on its input: no first-layer filters to draw", m->name);
        return NULL;
    }
    int side = (int)lrint(sqrt((double)m->input_dim));
    shape[0] = (int)linear->shape[0];
    if (m->input_rank == 3) {
        for (int d = 0; d < 3; d++) shape[d + 1] = m->input_shape[d];
    } else if (side * side == m->input_dim) {
        shape[1] = 1, shape[2] = side, shape[3] = side;  // a square of features: a gray image (784 → 28 x 28)
    } else {
        snprintf(why, cap, "model '%s' takes %d features, not an image (an image shape, or a square number of features, "
                 "is needed to draw the rows of its first Linear layer '%s')", m->name, m->input_dim, linear->name);
        return NULL;
    }
    return linear;
}

int nnrt_cmd_filters(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    nnrt_load_safetensors(o->weights, m, ctx->params);
    int s[4];
    char why[512];
    const nnrt_param *p = nnrt_filters_param(m, s, why, sizeof why);
    if (!p) nnrt_die("filters: %s", why);
    nnrt_filter_grid g = nnrt_filter_grid_make(ctx->params + p->offset, s[0], s[1], s[2], s[3]);
    nnrt_png_write(o->output, g.width, g.height, g.channels, g.pixels);
    if (!o->quiet)
        printf("wrote %s: %d filters of '%s' as %d x %d %s tiles (%dx zoom) in a %d x %d grid, %d x %d pixels\n", o->output,
               s[0], p->name, s[3] * g.zoom, s[2] * g.zoom, s[1] == 3 ? "RGB" : "gray", g.zoom, g.rows, g.cols, g.width, g.height);
    free(g.pixels);
    return 0;
}
