/* show_batch.c — the show-batch command: the first --batch images of the training set, as epoch 1 of a run with
 * the same --seed and --augment trains them, drawn as a PNG grid, so a user can see what the network sees. The
 * augmentation is a function of (seed, epoch, sample index) only (augment.c), so the picture is exactly those
 * samples' training inputs, whatever the batch they land in. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_augment.h"
#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_image.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

nnrt_filter_grid nnrt_batch_grid_make(const float *x, int n, int C, int H, int W) {
    nnrt_filter_grid g = {.channels = C, .cols = (int)ceil(sqrt((double)n)), .zoom = 64 / (H > W ? H : W)};
    if (g.zoom < 1) g.zoom = 1;
    g.rows = (n + g.cols - 1) / g.cols;
    int th = H * g.zoom, tw = W * g.zoom;
    g.width = g.cols * (tw + 1) + 1;
    g.height = g.rows * (th + 1) + 1;
    g.pixels = nnrt_malloc((size_t)g.width * (size_t)g.height * (size_t)C);
    memset(g.pixels, 255, (size_t)g.width * (size_t)g.height * (size_t)C);  // the white separators
    for (int i = 0; i < n; i++) {
        int y0 = 1 + (i / g.cols) * (th + 1), x0 = 1 + (i % g.cols) * (tw + 1);
        for (int y = 0; y < th; y++)
            for (int u = 0; u < tw; u++)
                for (int c = 0; c < C; c++) {
                    float v = x[(((size_t)i * C + c) * H + y / g.zoom) * W + u / g.zoom];
                    v = v < 0 ? 0 : v > 1 ? 1 : v;  // NaN is refused at load
                    g.pixels[((size_t)(y0 + y) * g.width + x0 + u) * C + c] = (uint8_t)lrintf(v * 255.0f);
                }
    }
    return g;
}

int nnrt_cmd_show_batch(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    if (m->input_rank != 3 || (m->input_shape[0] != 1 && m->input_shape[0] != 3))
        nnrt_usage_die("show-batch: model '%s' does not take 1- or 3-channel images (C, H, W); there is no picture to draw", m->name);
    nnrt_train_data d;  // the training split as train loads it (after --val-split), with its --scale
    nnrt_train_data_load(o, m, &d, NULL);
    nnrt_dataset train = d.train;
    nnrt_prep shown = d.info.prep;  // the picture shows the scaled pixels, before --normalize
    shown.norm = NNRT_NORM_NONE;
    train.x.prep = &shown;
    int n = (int)(train.x.n < o->batch ? train.x.n : o->batch);
    int64_t *idx = nnrt_malloc(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) idx[i] = i;
    float *x = nnrt_malloc(sizeof(float) * (size_t)n * (size_t)m->input_dim);  // (n, C, H, W)
    nnrt_augment aug = o->aug;
    aug.seed = o->seed;
    aug.epoch = 0;
    nnrt_gather_x_augmented(&train.x, idx, n, x, aug.on ? &aug : NULL);
    const int *s = m->input_shape;
    nnrt_filter_grid g = nnrt_batch_grid_make(x, n, s[0], s[1], s[2]);
    nnrt_png_write(o->output, g.width, g.height, g.channels, g.pixels);
    if (!o->quiet)
        printf("wrote %s: samples 0-%d of the training set%s%s, as epoch 1 of --seed %llu trains them; %d x %d pixels "
               "(%dx zoom, values clamped to [0, 1])\n", o->output, n - 1, aug.on ? " augmented by --augment " : "",
               aug.on ? o->augment : "", (unsigned long long)o->seed, g.width, g.height, g.zoom);
    free(g.pixels);
    free(x);
    free(idx);
    nnrt_train_data_free(&d);
    return 0;
}
