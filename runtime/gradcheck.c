/* gradcheck.c — the model's analytic gradient (its float64 twin, loss_grad_f64) against central
 * differences, in float64:
 *   numerical = (L(p + eps) − L(p − eps)) / (2 eps),  eps = 1e-6
 *   rel err   = |analytic − numerical| / max(|analytic|, |numerical|, floor)     (--floor, default 1e-4)
 * on every element of a trainable parameter with ≤ 64 elements, else on 64 seeded-random distinct ones.
 *
 * Why the floor is 1e-4 and not 1e-6: the numerical estimate carries rounding noise of about
 * ulp(L) / (2 eps) ≈ 4e-10 for L ≈ 4 (measured: analytic 3.99180377e-06 vs numerical 3.99147382e-06 on a
 * correct model). With a floor of 1e-6, any element whose gradient is below ~4e-6 fails a 1e-4 tolerance,
 * which happens for a few of the 64 sampled elements of a typical MLP layer. A floor of 1e-4 makes the
 * test an absolute one (tol × floor = 1e-8) for tiny gradients, far above the noise, while a 10% error in
 * a gradient of 1e-5 still shows as 1e-2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

enum { MAX_CHECKED = 64 };
static const double EPS = 1e-6;

// ----------------------------------------------------------------------------
// the batch

typedef struct {
    int n;
    float *x;       // (n, input_dim) as training would see it
    void *y;        // (n) int32 labels or (n, target_dim) floats
    double *x64;    // (n, input_dim)
    void *y64;      // (n) int32 labels or (n, target_dim) doubles
    char source[256];
} gc_batch;

static void batch_alloc(gc_batch *b, const nnrt_model *m, int n) {
    b->n = n;
    b->x = nnrt_calloc((size_t)n * (size_t)m->input_dim, sizeof(float));
    b->y = nnrt_calloc((size_t)n * (size_t)m->target_dim, 4);
    b->x64 = nnrt_calloc((size_t)n * (size_t)m->input_dim, sizeof(double));
    b->y64 = nnrt_calloc((size_t)n * (size_t)m->target_dim, 8);
}

/* n samples drawn without replacement from the data, or synthetic ones when no data was given. */
static void batch_fill(gc_batch *b, const nnrt_model *m, const nnrt_options *o, uint64_t rng[4]) {
    int classes = m->target_kind == NNRT_TARGET_CLASS;
    size_t nx = (size_t)b->n * (size_t)m->input_dim, ny = (size_t)b->n * (size_t)m->target_dim;
    if (o->data || o->train_x) {
        nnrt_classes classes = {0};
        nnrt_data_opts opts = nnrt_data_options(o, &classes, 1);
        nnrt_dataset d = o->data ? nnrt_load_idx_dir(o->data, "train", m) : nnrt_load_dataset_with(o->train_x, o->train_y, m, &opts);
        nnrt_classes_free(&classes);
        if (d.x.n < b->n) nnrt_die("%s: has %lld samples, fewer than --samples %d", d.x.path, (long long)d.x.n, b->n);
        int64_t *order = nnrt_malloc((size_t)d.x.n * sizeof(int64_t));
        for (int64_t i = 0; i < d.x.n; i++) order[i] = i;
        for (int i = 0; i < b->n; i++) {  // partial Fisher–Yates: the first n are a uniform sample
            int64_t j = i + (int64_t)nnrt_rng_below(rng, (uint64_t)(d.x.n - i));
            int64_t t = order[i]; order[i] = order[j]; order[j] = t;
        }
        nnrt_gather_x(&d.x, order, b->n, b->x);
        nnrt_gather_y(&d.y, order, b->n, b->y);
        snprintf(b->source, sizeof b->source, "from %s", d.x.path);
        free(order);
        nnrt_dataset_free(&d);
    } else {
        for (size_t i = 0; i < nx; i++) b->x[i] = (float)nnrt_rng_normal(rng);
        for (size_t i = 0; i < ny; i++) {
            if (classes) ((int32_t *)b->y)[i] = (int32_t)nnrt_rng_below(rng, (uint64_t)m->output_dim);
            else ((float *)b->y)[i] = (float)nnrt_rng_normal(rng);
        }
        snprintf(b->source, sizeof b->source, "synthetic");
    }
    for (size_t i = 0; i < nx; i++) b->x64[i] = b->x[i];
    if (classes) memcpy(b->y64, b->y, ny * 4);
    else for (size_t i = 0; i < ny; i++) ((double *)b->y64)[i] = ((float *)b->y)[i];
}

static void batch_free(gc_batch *b) {
    free(b->x); free(b->y); free(b->x64); free(b->y64);
}

// ----------------------------------------------------------------------------
// the check

typedef struct {
    const nnrt_model *m;
    double *p64;       // (params_numel)
    double *g64;       // (params_numel) analytic gradient
    double *scratch;   // (params_numel) gradients of the finite-difference evaluations (ignored)
    void *arena64;     // arena64_bytes
    gc_batch *b;
    double floor;      // smallest denominator of the relative error
} gc_state;

static double loss_at(gc_state *s) {
    return s->m->loss_grad_f64(s->p64, s->scratch, s->arena64, s->b->n, s->b->x64, s->b->y64);
}

/* Up to MAX_CHECKED distinct element indices of a parameter with numel elements. */
static int pick_elements(size_t numel, uint64_t rng[4], size_t *out) {
    if (numel <= MAX_CHECKED) {
        for (size_t i = 0; i < numel; i++) out[i] = i;
        return (int)numel;
    }
    int k = 0;
    while (k < MAX_CHECKED) {
        size_t e = (size_t)nnrt_rng_below(rng, numel);
        int dup = 0;
        for (int i = 0; i < k; i++) dup |= out[i] == e;
        if (!dup) out[k++] = e;
    }
    return k;
}

typedef struct {
    int checked;
    double worst, analytic, numerical;  // the worst relative error and the values behind it
    size_t at;                          // its element index
} gc_result;

/* Worst relative error over the checked elements of parameter p. */
static gc_result check_param(gc_state *s, const nnrt_param *p, uint64_t rng[4]) {
    size_t elems[MAX_CHECKED];
    gc_result r = {.checked = pick_elements(p->numel, rng, elems)};
    for (int k = 0; k < r.checked; k++) {
        double *w = s->p64 + p->offset + elems[k], saved = *w;
        *w = saved + EPS;
        double up = loss_at(s);
        *w = saved - EPS;
        double down = loss_at(s);
        *w = saved;
        double num = (up - down) / (2 * EPS), ana = s->g64[p->offset + elems[k]];
        double denom = fmax(fmax(fabs(ana), fabs(num)), s->floor);
        double rel = fabs(ana - num) / denom;
        if (!(rel <= r.worst) || k == 0) r = (gc_result){r.checked, rel, ana, num, elems[k]};  // NaN counts as worst
    }
    return r;
}

/* The check of ctx's parameters as they are, on --samples samples (printing each parameter's line when print):
   the worst relative error over every checked element (also NaN). */
double nnrt_gradcheck_worst(nnrt_ctx *ctx, const nnrt_options *o, int print) {
    const nnrt_model *m = ctx->model;
    if (!m->loss_grad_f64) nnrt_die("%s: this trainer has no float64 gradient (loss_grad_f64) to check", m->name);
    uint64_t rng[4];
    nnrt_rng_seed(rng, o->seed, NNRT_STREAM_GRADCHECK);
    gc_batch b;
    batch_alloc(&b, m, (int)o->samples);
    batch_fill(&b, m, o, rng);

    gc_state s = {.m = m, .b = &b, .floor = o->floor};
    s.p64 = nnrt_calloc(m->params_numel, sizeof(double));
    s.g64 = nnrt_calloc(m->params_numel, sizeof(double));
    s.scratch = nnrt_calloc(m->params_numel, sizeof(double));
    s.arena64 = nnrt_aligned_calloc(m->arena64_bytes);
    for (size_t i = 0; i < m->params_numel; i++) s.p64[i] = ctx->params[i];
    double loss = m->loss_grad_f64(s.p64, s.g64, s.arena64, b.n, b.x64, b.y64);
    float *out = nnrt_calloc((size_t)b.n * (size_t)m->output_dim, sizeof(float));  // (n, output_dim)
    float loss32 = m->eval_batch(ctx, b.n, b.x, b.y, out);
    if (print) printf("gradcheck: %d samples (%s), loss %.9g (float32 eval_batch: %.9g)\n", b.n, b.source, loss, (double)loss32);

    double worst = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        char shape[96];
        nnrt_shape_str(shape, sizeof shape, p->ndim, p->shape);
        if (!p->trainable) { if (print) printf("  %-24s %-14s buffer, not checked\n", p->name, shape); continue; }
        gc_result r = check_param(&s, p, rng);
        if (print)
            printf("  %-24s %-14s %d of %zu elements  worst rel err %.3g (element %zu: analytic %.9g, numerical %.9g)\n",
                   p->name, shape, r.checked, p->numel, r.worst, r.at, r.analytic, r.numerical);
        if (!(r.worst <= worst)) worst = r.worst;
    }
    free(out); free(s.p64); free(s.g64); free(s.scratch); free(s.arena64);
    batch_free(&b);
    return worst;
}

int nnrt_cmd_gradcheck(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    if (!m->loss_grad_f64) nnrt_die("%s: this trainer has no float64 gradient (loss_grad_f64) to check", m->name);
    if (o->verbose) nnrt_blas_describe(stdout);
    if (o->weights) nnrt_load_safetensors(o->weights, m, ctx->params);
    else nnrt_init_params(m, ctx->params, o->seed);
    double worst = nnrt_gradcheck_worst(ctx, o, 1);
    int ok = worst <= o->tol;
    printf("gradcheck: %s (worst %.3g %s tol %.3g)\n", ok ? "passed" : "failed", worst, ok ? "≤" : ">", o->tol);
    return ok ? 0 : NNRT_EXIT_FAIL;
}
