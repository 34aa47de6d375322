/* mixup.c — mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019) of training batches, as timm's Mixup in batch
 * mode: one λ ~ Beta(α, α) per batch, each sample paired with its mirror in the flipped batch (sample n−1−i), the
 * soft target λ·onehot(yᵢ) + (1−λ)·onehot(y_{n−1−i}). The batch is the gathered copy (already scaled, normalized and
 * augmented), so the data set itself is never touched, and evaluation never sees a mixed batch.
 *
 * A batch's draws come from nnrt_rng_seed_at(seed, NNRT_STREAM_MIX, epoch, step): the method's coin, then CutMix's
 * centre row and column, then λ, whichever method is on, so that a resumed run (which restarts at a step of an epoch)
 * draws what the uninterrupted one did. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nnrt_io.h"
#include "nnrt_mixup.h"
#include "nnrt_rng.h"

const char *nnrt_mix_unsupported(double mixup, double cutmix, const nnrt_model *m, char *why, size_t cap) {
    if (!(mixup > 0) && !(cutmix > 0)) return NULL;
    const char *name = mixup > 0 ? "mixup" : "cutmix";
    if (!m->train_mixed_step) {
        snprintf(why, cap, "model '%s' has no soft-target training step: mixup and CutMix need a classifier trained with "
                 "plain cross-entropy (no label smoothing, hinge or dense targets)", m->name);
        return name;
    }
    if (cutmix > 0 && m->input_rank != 3) {
        snprintf(why, cap, "model '%s' takes %d flat features, not images (C, H, W): CutMix pastes a box of an image; "
                 "--mixup works on any input", m->name, m->input_dim);
        return "cutmix";
    }
    return NULL;
}

void nnrt_mix_parse(double mixup, double cutmix, const nnrt_model *m, nnrt_mix *x) {
    memset(x, 0, sizeof *x);
    char why[256];
    const char *bad = nnrt_mix_unsupported(mixup, cutmix, m, why, sizeof why);
    if (bad) nnrt_usage_die("--%s: %s", bad, why);
    if (!(mixup > 0) && !(cutmix > 0)) return;
    *x = (nnrt_mix){.on = 1, .mixup = mixup > 0 ? mixup : 0, .cutmix = cutmix > 0 ? cutmix : 0, .k = m->output_dim};
    if (m->input_rank == 3) { x->c = m->input_shape[0]; x->h = m->input_shape[1]; x->w = m->input_shape[2]; }
    x->soft = nnrt_malloc((size_t)m->max_batch * (size_t)m->output_dim * sizeof(float));
}

// ----------------------------------------------------------------------------
// the draws

/* Gamma(a, 1): Marsaglia and Tsang's squeeze for a ≥ 1; for a < 1, Gamma(a + 1)·U^(1/a). */
static double gamma_draw(uint64_t s[4], double a) {
    if (a < 1) {
        double u = nnrt_rng_uniform(s);
        return gamma_draw(s, a + 1) * pow(u, 1 / a);
    }
    double d = a - 1.0 / 3, c = 1 / sqrt(9 * d);
    for (;;) {
        double z = nnrt_rng_normal(s), v = 1 + c * z;
        if (v <= 0) continue;
        v = v * v * v;
        double u = nnrt_rng_uniform(s);
        if (u < 1 - 0.0331 * z * z * z * z || log(u) < 0.5 * z * z + d * (1 - v + log(v))) return d * v;
    }
}

double nnrt_beta_symmetric(uint64_t s[4], double a) {
    double g1 = gamma_draw(s, a), g2 = gamma_draw(s, a);
    // A tiny α can underflow both to 0: Beta(α, α) then puts its mass at 0 and 1, half each.
    if (!(g1 + g2 > 0)) return nnrt_rng_uniform(s) < 0.5 ? 0 : 1;
    return g1 / (g1 + g2);
}

static int clip(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

void nnrt_cutmix_box(int h, int w, double lam, int cy, int cx, nnrt_mix_draw *d) {
    double r = sqrt(1 - lam);
    int ch = (int)(h * r), cw = (int)(w * r);
    d->y0 = clip(cy - ch / 2, h);
    d->y1 = clip(cy + ch / 2, h);
    d->x0 = clip(cx - cw / 2, w);
    d->x1 = clip(cx + cw / 2, w);
    d->lam = 1 - (double)(d->y1 - d->y0) * (d->x1 - d->x0) / ((double)h * w);
}

nnrt_mix_draw nnrt_mix_draws(const nnrt_mix *x, int64_t step) {
    uint64_t s[4];
    nnrt_rng_seed_at(s, x->seed, NNRT_STREAM_MIX, (uint64_t)x->epoch, (uint64_t)step);
    double coin = nnrt_rng_uniform(s);
    int cy = x->h > 0 ? (int)nnrt_rng_below(s, (uint64_t)x->h) : 0, cx = x->w > 0 ? (int)nnrt_rng_below(s, (uint64_t)x->w) : 0;
    nnrt_mix_draw d = {.cutmix = x->cutmix > 0 && (x->mixup <= 0 || coin < 0.5)};
    d.lam = nnrt_beta_symmetric(s, d.cutmix ? x->cutmix : x->mixup);
    if (d.cutmix) nnrt_cutmix_box(x->h, x->w, d.lam, cy, cx, &d);
    return d;
}

// ----------------------------------------------------------------------------
// mixing a batch

/* Rows a and b (a < b) of the batch: mixup blends them both ways, CutMix swaps the box of every channel. */
static void mix_pair(const nnrt_mix *x, const nnrt_mix_draw *d, int dim, float *ra, float *rb) {
    if (!d->cutmix) {
        float l = (float)d->lam, m = 1 - l;
        for (int i = 0; i < dim; i++) {
            float a = ra[i], b = rb[i];
            ra[i] = l * a + m * b;
            rb[i] = l * b + m * a;
        }
        return;
    }
    for (int c = 0; c < x->c; c++)
        for (int r = d->y0; r < d->y1; r++)
            for (int q = d->x0; q < d->x1; q++) {
                size_t i = ((size_t)c * x->h + r) * x->w + q;
                float t = ra[i];
                ra[i] = rb[i];
                rb[i] = t;
            }
}

void nnrt_mix_batch(const nnrt_mix *x, const nnrt_mix_draw *d, int n, int dim, float *xb, const int32_t *y) {
    for (int i = 0; i < n / 2; i++) mix_pair(x, d, dim, xb + (size_t)i * dim, xb + (size_t)(n - 1 - i) * dim);
    float l = (float)d->lam;
    for (int i = 0; i < n; i++) {
        float *t = x->soft + (size_t)i * x->k;
        memset(t, 0, (size_t)x->k * sizeof *t);
        t[y[i]] += l;
        t[y[n - 1 - i]] += 1 - l;
    }
}

float nnrt_mix_step(nnrt_ctx *ctx, const nnrt_mix *x, int64_t step, int n, float *xb, const void *y) {
    nnrt_mix_draw d = nnrt_mix_draws(x, step);
    nnrt_mix_batch(x, &d, n, ctx->model->input_dim, xb, y);
    return ctx->model->train_mixed_step(ctx, n, xb, x->soft);
}
