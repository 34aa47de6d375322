/* maximize.c — the maximize command: activation maximization (Erhan et al. 2009; the regularizers of Yosinski et al.
 * 2015). Gradient ascent on the model's input, from a small seeded random start x0 ~ N(0, 0.01²), of one unit's value
 * (a class score, a hidden feature, a channel's mean), each gradient from the model's input-gradient entry point in
 * eval mode. Step t:
 *
 *     d  ~ U{-J..J}²                      jitter: the image rolled by d (wrapping) for the gradient, rolled back
 *     x ← x + lr · g / rms(g)             g = d unit / d x at the rolled image; rms(g) = sqrt(mean(g²))
 *     x ← (1 − l2) · x                    L2 decay
 *     x ← blur(x)  every K-th step        3×3 Gaussian, [1 2 1]ᵀ[1 2 1] / 16, edges repeated
 *
 * With no regularizer (--l2 0 --jitter 0 --blur-every 0) each step is a backtracking ascent: a step that does not
 * raise the unit is retried at half the size (up to 20 times), so the unit's value increases at every step, and the
 * ascent ends early when no step raises it. Jitter and blur apply to image inputs only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_image.h"
#include "nnrt_inputgrad.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"

enum { HALVINGS = 20 };
static const double START_STD = 0.01;

typedef struct {
    nnrt_ctx *ctx;
    nnrt_input_grad g;
    int image, s[3];            // the input as (C, H, W), when it is an image
    int n;                      // input_dim
    float *x, *grad, *tmp, *rolled;   // (n) the input, the gradient at it, two scratch copies
    double *values;             // (steps + 1) the unit's value at x0, x1, …
    int64_t done;               // steps taken
} ascent;

/* The unit's value at x, and its gradient into grad; dies when either stops being finite. */
static double value_at(ascent *a, const float *x, float *grad, int64_t step) {
    double v = nnrt_input_grad_run(&a->g, a->ctx, x, grad);
    int finite = isfinite(v);
    for (int i = 0; finite && i < a->n; i++) finite = isfinite(grad[i]);
    if (!finite) nnrt_die("maximize: the unit's value or gradient stopped being finite at step %lld (try a smaller --lr)", (long long)step);
    return v;
}

static double rms(const float *g, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s / n);
}

/* dst ← src (C, H, W) rolled by (dy, dx) with wrap-around, as numpy.roll: any shift, a jitter larger than the image
   included (it wraps more than once). */
static void roll(const float *src, float *dst, const int s[3], int64_t dy, int64_t dx) {
    int C = s[0], H = s[1], W = s[2];
    int64_t sy = (dy % H + H) % H, sx = (dx % W + W) % W;   // in [0, H) and [0, W)
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int u = 0; u < W; u++)
                dst[((size_t)c * H + (size_t)((y + sy) % H)) * W + (size_t)((u + sx) % W)] = src[((size_t)c * H + y) * W + u];
}

/* x (C, H, W) ← x blurred by the 3×3 Gaussian [1 2 1]ᵀ[1 2 1] / 16, edges repeated; tmp the same size. */
static void blur(float *x, float *tmp, const int s[3]) {
    int C = s[0], H = s[1], W = s[2];
    for (int c = 0; c < C; c++) {
        float *p = x + (size_t)c * H * W, *t = tmp + (size_t)c * H * W;
        for (int y = 0; y < H; y++)   // rows
            for (int u = 0; u < W; u++)
                t[y * W + u] = 0.25f * p[y * W + (u > 0 ? u - 1 : u)] + 0.5f * p[y * W + u] + 0.25f * p[y * W + (u + 1 < W ? u + 1 : u)];
        for (int y = 0; y < H; y++)   // columns
            for (int u = 0; u < W; u++)
                p[y * W + u] = 0.25f * t[(y > 0 ? y - 1 : y) * W + u] + 0.5f * t[y * W + u] + 0.25f * t[(y + 1 < H ? y + 1 : y) * W + u];
    }
}

static void step_along(float *dst, const float *x, const float *g, double size, int n) {
    for (int i = 0; i < n; i++) dst[i] = (float)(x[i] + size * g[i]);
}

/* One backtracking step from (x, v, grad): the first of lr, lr/2, … that raises the unit. 0 when none does. */
static int checked_step(ascent *a, const nnrt_options *o, double *v) {
    double r = rms(a->grad, a->n);
    if (!(r > 0)) return 0;
    float *trial_grad = nnrt_malloc(sizeof(float) * (size_t)a->n);
    int raised = 0;
    for (int h = 0; h <= HALVINGS && !raised; h++) {
        step_along(a->tmp, a->x, a->grad, o->ascent_lr / r / (double)(1u << h), a->n);
        double w = value_at(a, a->tmp, trial_grad, a->done + 1);
        if (w > *v) {
            memcpy(a->x, a->tmp, sizeof(float) * (size_t)a->n);
            memcpy(a->grad, trial_grad, sizeof(float) * (size_t)a->n);
            *v = w, raised = 1;
        }
    }
    free(trial_grad);
    return raised;
}

/* One regularized step: jitter, the normalized gradient step, the decay, the blur; then the value at the new x. */
static double regularized_step(ascent *a, const nnrt_options *o, uint64_t rng[4], int64_t t) {
    int jitter = a->image && o->jitter > 0;
    int64_t dy = jitter ? (int64_t)nnrt_rng_below(rng, (uint64_t)(2 * o->jitter + 1)) - o->jitter : 0;
    int64_t dx = jitter ? (int64_t)nnrt_rng_below(rng, (uint64_t)(2 * o->jitter + 1)) - o->jitter : 0;
    if (dy || dx) {   // the gradient at the rolled image, rolled back (a->grad holds the one at x otherwise)
        roll(a->x, a->rolled, a->s, dy, dx);
        value_at(a, a->rolled, a->tmp, t);
        roll(a->tmp, a->grad, a->s, -dy, -dx);
    }
    double r = rms(a->grad, a->n);
    if (r > 0) step_along(a->x, a->x, a->grad, o->ascent_lr / r, a->n);
    for (int i = 0; i < a->n; i++) a->x[i] *= (float)(1.0 - o->l2);
    if (a->image && o->blur_every > 0 && t % o->blur_every == 0) blur(a->x, a->tmp, a->s);
    return value_at(a, a->x, a->grad, t);
}

static void write_log(const char *path, const double *values, int64_t steps) {
    nnrt_atomic *f = nnrt_atomic_open(path);
    char line[96];
    for (int64_t t = 0; t <= steps; t++)
        nnrt_atomic_write(f, line, (size_t)snprintf(line, sizeof line, "{\"step\":%lld,\"value\":%.9g}\n", (long long)t, values[t]));
    nnrt_atomic_commit(f);
}

/* Writes the result (F.png: the image before --normalize; F.npy: the model input), and says what it wrote. */
static void write_result(const ascent *a, const nnrt_options *o, const nnrt_data_info *info, char *said, size_t cap) {
    const nnrt_model *m = a->ctx->model;
    if (nnrt_is_npy(o->output)) {
        nnrt_write_row_npy(o->output, a->x, a->n);
        snprintf(said, cap, "(1, %d) float32, the model's input", a->n);
        return;
    }
    memcpy(a->tmp, a->x, sizeof(float) * (size_t)a->n);
    nnrt_unnormalize(info->has_prep ? &info->prep : NULL, m, a->tmp);
    nnrt_picture p = nnrt_picture_new(a->s[0], a->s[1], a->s[2], 1, 0);
    nnrt_picture_image(&p, a->tmp);
    nnrt_png_write(o->output, p.width, p.height, p.channels, p.pixels);
    snprintf(said, cap, "%d x %d pixels", p.width, p.height);
    nnrt_picture_free(&p);
}

int nnrt_cmd_maximize(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    ascent a = {.ctx = ctx, .n = m->input_dim};
    a.image = nnrt_input_image(m, a.s);
    if (!a.image && !nnrt_is_npy(o->output))
        nnrt_usage_die("maximize: model '%s' takes %d features, not an image: there is no picture to draw (--output F.npy "
                       "writes the input)", m->name, m->input_dim);
    nnrt_unit u = nnrt_unit_parse(m, o->unit);
    nnrt_data_info info;
    nnrt_load_weights(o->weights, m, ctx->params, &info);
    nnrt_input_grad_init(&a.g, m, &u);
    a.x = nnrt_calloc((size_t)a.n, sizeof(float));
    a.grad = nnrt_calloc((size_t)a.n, sizeof(float));
    a.tmp = nnrt_calloc((size_t)a.n, sizeof(float));
    a.rolled = nnrt_calloc((size_t)a.n, sizeof(float));
    a.values = nnrt_calloc((size_t)o->steps + 1, sizeof(double));
    uint64_t rng[4];
    nnrt_rng_seed(rng, o->seed, NNRT_STREAM_MAXIMIZE);
    for (int i = 0; i < a.n; i++) a.x[i] = (float)(START_STD * nnrt_rng_normal(rng));
    int regularized = o->l2 > 0 || (a.image && (o->jitter > 0 || o->blur_every > 0));
    double v = a.values[0] = value_at(&a, a.x, a.grad, 0);
    int flat = !(rms(a.grad, a.n) > 0);   // nothing to ascend: a ReLU that is off at the start, say
    for (int64_t t = 1; t <= o->steps; t++) {
        if (regularized) v = regularized_step(&a, o, rng, t);
        else if (!checked_step(&a, o, &v)) break;
        a.values[t] = v;
        a.done = t;
    }
    char said[96], what[160];
    write_result(&a, o, &info, said, sizeof said);
    if (o->log) write_log(o->log, a.values, a.done);
    if (!o->quiet) {
        nnrt_unit_describe(m, &u, what, sizeof what);
        printf("maximize %s: %.6g at the start, %.6g after %lld steps", what, a.values[0], v, (long long)a.done);
        if (flat) printf(" (its gradient is zero at the start, as behind a ReLU that is off there: try the layer before, or another --seed)");
        else if (a.done < o->steps) printf(" (stopped: no step of --lr / 2^%d or more raised it)", HALVINGS);
        printf("\nwrote %s (%s)\n", o->output, said);
    }
    nnrt_input_grad_free(&a.g);
    free(a.x), free(a.grad), free(a.tmp), free(a.rolled), free(a.values);
    nnrt_data_info_free(&info);
    return 0;
}
