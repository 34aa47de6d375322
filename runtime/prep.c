/* prep.c — input preprocessing, explicit: every sample goes through x' = (x·scale − mean) / std before the model,
 * the same in train, eval, predict and a resumed run, because the weights file (and a checkpoint) keeps it.
 *
 *   - scale: `--scale 1/255` divides (a true division, x / 255.0f, as torchvision's ToTensor computes), a plain
 *     number multiplies, whatever the inputs' dtype; `auto` (the default) is ToTensor's rule for every file, the
 *     training data's and predict's alike: uint8 inputs / 255, float inputs as they are.
 *   - mean, std: `--normalize feature` per input feature (scikit-learn's StandardScaler), `channel` per channel of
 *     an image model (torchvision's Normalize), computed on the training split (after --val-split) of the scaled
 *     inputs, in double, population std (ddof 0); a constant feature keeps std 1, as StandardScaler does. `none`
 *     (the default) leaves the scaled inputs as they are.
 *   - max_abs: the training inputs' largest |x·scale|, so that eval and predict can warn when their inputs' range
 *     is far from it (raw 0–255 floats given to a model trained on [0, 1], say). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"

// ----------------------------------------------------------------------------
// the scale

int nnrt_prep_set_scale(nnrt_prep *p, const char *text) {
    if (text && strcmp(text, "auto") == 0) {
        snprintf(p->scale, sizeof p->scale, "auto");
        p->automatic = 1, p->div = 0, p->mul = 1;
        return 1;
    }
    if (!text) return 0;
    char *end;
    double num = 1, den = 1;
    const char *slash = strchr(text, '/');
    if (slash) {
        num = strtod(text, &end);
        if (end != slash) return 0;
        den = strtod(slash + 1, &end);
    } else {
        num = strtod(text, &end);
    }
    if (!*text || *end || !isfinite(num) || !isfinite(den) || !(num > 0) || !(den > 0)) return 0;
    snprintf(p->scale, sizeof p->scale, "%s", text);
    p->automatic = 0;
    p->div = slash && num == 1 ? (float)den : 0;
    p->mul = (float)(num / den);
    return 1;
}

/* The scale of an array of dtype t as the batches apply it: x / *div (when not 0), else x · *mul. */
static void factors(const nnrt_prep *p, nnrt_dtype t, float *div, float *mul) {
    *div = p->automatic ? (t == NNRT_U8 ? 255.0f : 0) : p->div;
    *mul = p->automatic ? 1 : p->mul;
}

static inline float scaled(float div, float mul, float v) { return div ? v / div : v * mul; }

static double value_at(const nnrt_array *x, size_t i) {
    return x->dtype == NNRT_U8 ? (double)((const uint8_t *)x->data)[i] : (double)((const float *)x->data)[i];
}

double nnrt_prep_max_abs(const nnrt_prep *p, const nnrt_array *x) {
    double top = 0;
    size_t count = (size_t)x->n * (size_t)x->dim;
    float div, mul;
    factors(p, x->dtype, &div, &mul);
    for (size_t i = 0; i < count; i++) top = fmax(top, fabs((double)scaled(div, mul, (float)value_at(x, i))));
    return top;
}

// ----------------------------------------------------------------------------
// statistics

/* The statistic group of feature j: itself, or its channel (NCHW: j / (H·W)). */
static int64_t group_of(const nnrt_prep *p, const nnrt_model *m, int64_t j) {
    if (p->norm != NNRT_NORM_CHANNEL) return j;
    return j / ((int64_t)m->input_shape[1] * m->input_shape[2]);
}

void nnrt_prep_expand(nnrt_prep *p, const nnrt_model *m) {
    free(p->fmean);
    free(p->fstd);
    p->fmean = p->fstd = NULL;
    if (p->norm == NNRT_NORM_NONE) return;
    p->fmean = nnrt_malloc((size_t)m->input_dim * sizeof(float));  // (input_dim)
    p->fstd = nnrt_malloc((size_t)m->input_dim * sizeof(float));   // (input_dim)
    for (int64_t j = 0; j < m->input_dim; j++) {
        p->fmean[j] = p->mean[group_of(p, m, j)];
        p->fstd[j] = p->std[group_of(p, m, j)];
    }
}

/* Two passes in double over the scaled inputs: the mean of each group, then the mean squared deviation. */
static void fit_stats(nnrt_prep *p, const nnrt_array *x, const nnrt_model *m) {
    int64_t g = p->n_stats, d = x->dim;
    double *sum = nnrt_calloc((size_t)g, sizeof(double)), *sq = nnrt_calloc((size_t)g, sizeof(double));  // (g)
    double per = (double)x->n * (double)(d / g);  // values per group
    float div, mul;
    factors(p, x->dtype, &div, &mul);
    for (int64_t i = 0; i < x->n; i++)
        for (int64_t j = 0; j < d; j++) sum[group_of(p, m, j)] += scaled(div, mul, (float)value_at(x, (size_t)(i * d + j)));
    for (int64_t k = 0; k < g; k++) sum[k] /= per;
    for (int64_t i = 0; i < x->n; i++)
        for (int64_t j = 0; j < d; j++) {
            double e = scaled(div, mul, (float)value_at(x, (size_t)(i * d + j))) - sum[group_of(p, m, j)];
            sq[group_of(p, m, j)] += e * e;
        }
    p->mean = nnrt_malloc((size_t)g * sizeof(float));
    p->std = nnrt_malloc((size_t)g * sizeof(float));
    for (int64_t k = 0; k < g; k++) {
        double s = sqrt(sq[k] / per);
        p->mean[k] = (float)sum[k];
        p->std[k] = s <= 1e-7 * fmax(1, fabs(sum[k])) ? 1.0f : (float)s;  // constant: StandardScaler's std 1
    }
    free(sum);
    free(sq);
}

int nnrt_prep_set_norm(nnrt_prep *p, const char *text, const nnrt_model *m) {
    if (strcmp(text, "none") == 0) p->norm = NNRT_NORM_NONE, p->n_stats = 0;
    else if (strcmp(text, "feature") == 0) p->norm = NNRT_NORM_FEATURE, p->n_stats = m->input_dim;
    else if (strcmp(text, "channel") == 0 && m->input_rank == 3) p->norm = NNRT_NORM_CHANNEL, p->n_stats = m->input_shape[0];
    else return 0;
    return 1;
}

void nnrt_prep_fit(nnrt_prep *p, const nnrt_array *x, const nnrt_model *m, const char *scale, const char *norm) {
    memset(p, 0, sizeof *p);
    if (!nnrt_prep_set_scale(p, scale ? scale : "auto")) nnrt_usage_die("--scale: expected auto, a positive number or 1/D, got '%s'", scale);
    if (!nnrt_prep_set_norm(p, norm ? norm : "none", m))
        nnrt_usage_die("--normalize: expected none, feature%s, got '%s'", m->input_rank == 3 ? " or channel" : " (channel is for "
                       "image models, input: [C, H, W])", norm);
    p->max_abs = nnrt_prep_max_abs(p, x);
    if (p->norm != NNRT_NORM_NONE) fit_stats(p, x, m);
    nnrt_prep_expand(p, m);
}

void nnrt_prep_free(nnrt_prep *p) {
    free(p->mean);
    free(p->std);
    free(p->fmean);
    free(p->fstd);
    memset(p, 0, sizeof *p);
}

// ----------------------------------------------------------------------------
// applying it

void nnrt_prep_scale_row(const nnrt_prep *p, const nnrt_array *x, int64_t row, float *restrict dst) {
    size_t d = (size_t)x->dim;
    float div, mul;
    factors(p, x->dtype, &div, &mul);
    if (x->dtype == NNRT_U8) {
        const uint8_t *restrict s = (const uint8_t *)x->data + (size_t)row * d;
        if (div) for (size_t j = 0; j < d; j++) dst[j] = (float)s[j] / div;
        else for (size_t j = 0; j < d; j++) dst[j] = (float)s[j] * mul;
    } else {
        const float *restrict s = (const float *)x->data + (size_t)row * d;
        if (div) for (size_t j = 0; j < d; j++) dst[j] = s[j] / div;
        else if (mul != 1) for (size_t j = 0; j < d; j++) dst[j] = s[j] * mul;
        else memcpy(dst, s, d * sizeof(float));
    }
}

void nnrt_prep_normalize_row(const nnrt_prep *p, const nnrt_array *x, float *restrict dst) {
    if (p->norm == NNRT_NORM_NONE) return;
    size_t d = (size_t)x->dim;
    const float *restrict mean = p->fmean, *restrict std = p->fstd;
    for (size_t j = 0; j < d; j++) dst[j] = (dst[j] - mean[j]) / std[j];
}

void nnrt_prep_row(const nnrt_prep *p, const nnrt_array *x, int64_t row, float *restrict dst) {
    nnrt_prep_scale_row(p, x, row, dst);
    nnrt_prep_normalize_row(p, x, dst);
}

void nnrt_prep_check_range(const nnrt_prep *p, const nnrt_array *x) {
    if (!(p->max_abs > 0)) return;
    double top = nnrt_prep_max_abs(p, x), ratio = top / p->max_abs;
    if (!(ratio > NNRT_PREP_RANGE || (top > 0 && ratio < 1.0 / NNRT_PREP_RANGE))) return;
    fflush(stdout);
    fprintf(stderr, "warning: %s: its inputs reach %.4g after --scale %s%s, %.3g times the training inputs' largest (%.4g): "
                    "give data prepared as the training data was\n", x->path, top, p->scale,
            p->automatic ? (x->dtype == NNRT_U8 ? " (uint8 / 255)" : " (floats as they are)") : "", ratio, p->max_abs);
}
