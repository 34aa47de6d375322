/* inputgrad.c — the gradient of one unit with respect to the model's input, through the entry point nncc generates
 * for it (`input_grad`: the eval-mode forward pass and the symbolic backward pass from seeded layer outputs to x),
 * and what saliency.c and maximize.c share: the unit a command line names, the input as an image, the pictures. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"
#include "nnrt_inputgrad.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

// ----------------------------------------------------------------------------
// the unit

/* The units of a layer output: its features, or the channels of a (C, H, W) output. */
static int layer_units(const nnrt_layer_output *l, int *channel) {
    *channel = l->rank >= 2;
    return *channel ? l->shape[0] : (int)l->numel;
}

static void layer_str(const nnrt_layer_output *l, char *buf, size_t cap) {
    int k = snprintf(buf, cap, "%s (", l->name);
    for (int d = 0; d < l->rank && k > 0 && (size_t)k < cap; d++) k += snprintf(buf + k, cap - (size_t)k, "%s%d", d ? ", " : "", l->shape[d]);
    if (k > 0 && (size_t)k < cap) snprintf(buf + k, cap - (size_t)k, "%s)", l->is_output ? ", the output" : "");
}

static int output_layer(const nnrt_model *m) {
    for (int i = 0; i < m->n_layer_outputs; i++) if (m->layer_outputs[i].is_output) return i;
    nnrt_die("%s: invalid model: no layer output is the model's output", m->name);
}

/* The layer output a name on the command line means: its own name (h8, h3_0), else a module path (8 → h8, 3.0 →
   h3_0, fc → h_fc); -1 for none. */
static int find_layer(const nnrt_model *m, const char *name) {
    for (int i = 0; i < m->n_layer_outputs; i++) if (strcmp(m->layer_outputs[i].name, name) == 0) return i;
    char h[80];
    int k = snprintf(h, sizeof h, "h%s", isdigit((unsigned char)name[0]) ? "" : "_");
    for (const char *c = name; *c && k < (int)sizeof h - 1; c++) h[k++] = isalnum((unsigned char)*c) ? *c : '_';
    h[k] = 0;
    for (int i = 0; i < m->n_layer_outputs; i++) if (strcmp(m->layer_outputs[i].name, h) == 0) return i;
    return -1;
}

static NNRT_NORETURN void unknown_layer(const nnrt_model *m, const char *text, const char *name) {
    char list[1024] = "";
    size_t k = 0;
    for (int i = 0; i < m->n_layer_outputs && k + 64 < sizeof list; i++) {
        char l[96];
        layer_str(&m->layer_outputs[i], l, sizeof l);
        k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", l);
    }
    nnrt_usage_die("--unit %s: model '%s' has no layer '%s' (its layers: %s)", text, m->name, name, list);
}

static int parse_index(const char *s, long *v) {
    char *end;
    if (!isdigit((unsigned char)*s)) return 0;
    *v = strtol(s, &end, 10);
    return !*end && *v < 1000000000;
}

nnrt_unit nnrt_unit_parse(const nnrt_model *m, const char *text) {
    nnrt_unit u = {0};
    snprintf(u.text, sizeof u.text, "%s", text);
    const char *colon = strrchr(text, ':');
    long index;
    if (!parse_index(colon ? colon + 1 : text, &index) || (colon && colon == text))
        nnrt_usage_die("--unit %s: expected a class C or LAYER:INDEX (e.g. 3 or h8:17)", text);
    if (!colon) {
        u = nnrt_unit_output(m, index, "--unit");
        snprintf(u.text, sizeof u.text, "%s", text);
        return u;
    }
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int)(colon - text), text);
    u.layer = find_layer(m, name);
    if (u.layer < 0) unknown_layer(m, text, name);
    const nnrt_layer_output *l = &m->layer_outputs[u.layer];
    int units = layer_units(l, &u.channel);
    if (index >= units) {
        char ls[96];
        layer_str(l, ls, sizeof ls);
        nnrt_usage_die("--unit %s: index %ld is out of range: %s has %d %s (0 to %d)", text, index, ls, units,
                       u.channel ? "channels" : "units", units - 1);
    }
    u.index = (int)index;
    return u;
}

nnrt_unit nnrt_unit_output(const nnrt_model *m, int64_t c, const char *flag) {
    nnrt_unit u = {.layer = output_layer(m), .index = (int)c};
    snprintf(u.text, sizeof u.text, "%lld", (long long)c);
    const nnrt_layer_output *l = &m->layer_outputs[u.layer];
    if (c < 0 || (size_t)c >= l->numel) {
        const char *what = m->target_kind == NNRT_TARGET_CLASS ? "class" : "output";
        nnrt_usage_die("%s %lld: %s %lld is out of range: model '%s' has %zu %s%s (0 to %zu)", flag, (long long)c, what,
                       (long long)c, m->name, l->numel, what, l->numel == 1 ? "" : m->target_kind == NNRT_TARGET_CLASS ? "es" : "s",
                       l->numel - 1);
    }
    return u;
}

void nnrt_unit_describe(const nnrt_model *m, const nnrt_unit *u, char *buf, size_t cap) {
    const nnrt_layer_output *l = &m->layer_outputs[u->layer];
    char ls[96];
    layer_str(l, ls, sizeof ls);
    if (l->is_output) snprintf(buf, cap, "%s %d (%s)", m->target_kind == NNRT_TARGET_CLASS ? "class" : "output", u->index, ls);
    else if (u->channel) snprintf(buf, cap, "channel %d of %s, its mean", u->index, ls);
    else snprintf(buf, cap, "unit %d of %s", u->index, ls);
}

// ----------------------------------------------------------------------------
// the gradient

void nnrt_input_grad_init(nnrt_input_grad *g, const nnrt_model *m, const nnrt_unit *u) {
    memset(g, 0, sizeof *g);
    g->m = m;
    if (!m->input_grad || m->n_layer_outputs < 1) nnrt_die("%s: the trainer has no input-gradient entry point (recompile with this nncc)", m->name);
    g->arena = nnrt_aligned_calloc(m->input_grad_arena_bytes > 0 ? m->input_grad_arena_bytes : 64);
    size_t largest = 1;
    for (int i = 0; i < m->n_layer_outputs; i++) largest = m->layer_outputs[i].numel > largest ? m->layer_outputs[i].numel : largest;
    g->zeros = nnrt_aligned_calloc(nnrt_mul_size(largest, sizeof(float), "the seeds"));
    const nnrt_layer_output *l = &m->layer_outputs[u->layer];
    g->seed = nnrt_aligned_calloc(nnrt_mul_size(l->numel, sizeof(float), "the seed"));   // (numel)
    if (u->channel) {
        size_t plane = l->numel / (size_t)l->shape[0];
        for (size_t i = 0; i < plane; i++) g->seed[(size_t)u->index * plane + i] = 1.0f / (float)plane;
    } else {
        g->seed[u->index] = 1.0f;
    }
    g->seeds = nnrt_calloc((size_t)m->n_layer_outputs, sizeof *g->seeds);
    for (int i = 0; i < m->n_layer_outputs; i++) g->seeds[i] = i == u->layer ? g->seed : g->zeros;
}

float nnrt_input_grad_run(nnrt_input_grad *g, nnrt_ctx *ctx, const float *x, float *dx) {
    ctx->training = 0;
    return g->m->input_grad(ctx, g->arena, 1, x, g->seeds, dx);
}

void nnrt_input_grad_free(nnrt_input_grad *g) {
    free(g->arena);
    free(g->zeros);
    free(g->seed);
    free(g->seeds);
    memset(g, 0, sizeof *g);
}

// ----------------------------------------------------------------------------
// the input as an image

int nnrt_input_image(const nnrt_model *m, int shape[3]) {
    if (m->input_rank == 3) {
        for (int d = 0; d < 3; d++) shape[d] = m->input_shape[d];
        return 1;
    }
    int side = (int)lrint(sqrt((double)m->input_dim));
    if (side * side != m->input_dim) return 0;
    shape[0] = 1, shape[1] = side, shape[2] = side;
    return 1;
}

void nnrt_unnormalize(const nnrt_prep *p, const nnrt_model *m, float *x) {
    if (!p || p->norm == NNRT_NORM_NONE || !p->fstd || !p->fmean) return;
    for (int i = 0; i < m->input_dim; i++) x[i] = x[i] * p->fstd[i] + p->fmean[i];
}

// ----------------------------------------------------------------------------
// pictures

enum { PICTURE_TARGET = 112 };  // tiles are magnified to about this many pixels a side

nnrt_picture nnrt_picture_new(int C, int H, int W, int images, int heat_maps) {
    nnrt_picture p = {.C = C, .H = H, .W = W, .zoom = PICTURE_TARGET / (H > W ? H : W)};
    if (p.zoom < 1) p.zoom = 1;
    p.channels = heat_maps > 0 || C == 3 ? 3 : 1;
    p.tiles = images * (C == 3 ? 1 : C) + heat_maps;
    int64_t width = (int64_t)p.tiles * ((int64_t)W * p.zoom + 1) + 1, height = (int64_t)H * p.zoom + 2;
    if (width > 1000000 || height > 1000000)
        nnrt_die("a picture of %d tiles of %d x %d pixels is more than a PNG's 1000000 a side", p.tiles, H, W);
    p.width = (int)width, p.height = (int)height;
    size_t bytes = nnrt_mul_size(nnrt_mul_size((size_t)p.width, (size_t)p.height, "the picture"), (size_t)p.channels, "the picture");
    p.pixels = nnrt_malloc(bytes);
    memset(p.pixels, 255, bytes);  // white: the separators
    return p;
}

/* Tile p->next's pixel (y, x) (in the magnified tile), channel c. */
static uint8_t *pixel(nnrt_picture *p, int y, int x, int c) {
    size_t x0 = 1 + (size_t)p->next * ((size_t)p->W * (size_t)p->zoom + 1);
    return &p->pixels[((size_t)(1 + y) * (size_t)p->width + x0 + (size_t)x) * (size_t)p->channels + (size_t)c];
}

void nnrt_picture_image(nnrt_picture *p, const float *x) {
    size_t plane = (size_t)p->H * (size_t)p->W;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < plane * (size_t)p->C; i++)
        if (isfinite(x[i])) { lo = x[i] < lo ? x[i] : lo; hi = x[i] > hi ? x[i] : hi; }
    for (int c = 0; c < p->C; c++) {
        for (int y = 0; y < p->H * p->zoom; y++)
            for (int u = 0; u < p->W * p->zoom; u++) {
                double v = x[(size_t)c * plane + (size_t)(y / p->zoom) * (size_t)p->W + (size_t)(u / p->zoom)];
                uint8_t level = !isfinite(v) ? 0 : hi > lo ? (uint8_t)lrint(255.0 * (v - lo) / (hi - lo)) : 128;
                int first = p->C == 3 ? c : 0, last = p->C == 3 ? c : p->channels - 1;   // gray in an RGB picture: all three
                for (int k = first; k <= last; k++) *pixel(p, y, u, k) = level;
            }
        if (p->C != 3) p->next++;
    }
    if (p->C == 3) p->next++;
}

void nnrt_picture_heat(nnrt_picture *p, const float *h) {
    size_t plane = (size_t)p->H * (size_t)p->W;
    double hi = 0;
    for (size_t i = 0; i < plane; i++) hi = isfinite(h[i]) && h[i] > hi ? h[i] : hi;
    for (int y = 0; y < p->H * p->zoom; y++)
        for (int u = 0; u < p->W * p->zoom; u++) {
            double v = h[(size_t)(y / p->zoom) * (size_t)p->W + (size_t)(u / p->zoom)], t = hi > 0 && isfinite(v) ? v / hi : 0;
            for (int c = 0; c < 3; c++) {   // "hot": red rises over the first third, green the second, blue the last
                double level = 3 * t - c;
                *pixel(p, y, u, c) = (uint8_t)lrint(255.0 * (level < 0 ? 0 : level > 1 ? 1 : level));
            }
        }
    p->next++;
}

void nnrt_picture_free(nnrt_picture *p) {
    free(p->pixels);
    p->pixels = NULL;
}

void nnrt_write_row_npy(const char *path, const float *x, int64_t n) {
    nnrt_atomic *f = nnrt_npy_begin(path, 1, n);
    nnrt_atomic_write(f, x, (size_t)n * sizeof(float));
    nnrt_atomic_commit(f);
}

int nnrt_is_npy(const char *path) { return nnrt_predict_format(path) == 'n'; }
