/* monitor.c — per-layer statistics of training: `train --monitor every:N` (nnrt_monitor.h has the keys it logs).
 * The activations come from train_step_monitor, which nncc emits with --monitor: it calls nnrt_monitor_act right
 * after each kernel that writes a forward activation, while the values are live (the memory plan lets later
 * kernels reuse those bytes). The weights' and gradients' statistics are read off the arenas after the step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_monitor.h"

int64_t nnrt_monitor_parse(const char *spec) {
    char *end;
    if (strncmp(spec, "every:", 6) != 0) nnrt_usage_die("--monitor: expected every:N (a statistics line every N steps), got '%s'", spec);
    long long n = strtoll(spec + 6, &end, 10);
    if (!spec[6] || *end || n < 1 || n > 1000000000)
        nnrt_usage_die("--monitor: expected every:N with N a positive integer, got '%s'", spec);
    return n;
}

void nnrt_monitor_start(nnrt_monitor *mon, nnrt_ctx *ctx, int64_t every, FILE *jsonl) {
    const nnrt_model *m = ctx->model;
    if (!m->train_step_monitor)
        nnrt_usage_die("--monitor: this trainer was compiled without the instrumented step; recompile the model with "
                       "'nncc compile --monitor'");
    memset(mon, 0, sizeof *mon);
    mon->every = every;
    mon->jsonl = jsonl;
    mon->before = nnrt_malloc(m->params_numel * sizeof(float) + 1);
    mon->params = nnrt_calloc((size_t)m->n_params + 1, sizeof(nnrt_param_stats));
    ctx->monitor = mon;
}

void nnrt_monitor_stop(nnrt_monitor *mon, nnrt_ctx *ctx) {
    free(mon->before);
    free(mon->params);
    mon->before = NULL;
    mon->params = NULL;
    ctx->monitor = NULL;
}

// ----------------------------------------------------------------------------
// statistics

/* The fraction of the per_sample columns of v (n, per_sample) that are 0 in every row. */
static double dead_fraction(const float *v, int n, int per_sample) {
    int64_t dead = 0;
    for (int j = 0; j < per_sample; j++) {
        int alive = 0;
        for (int i = 0; i < n && !alive; i++) alive = v[(size_t)i * per_sample + j] != 0;
        dead += !alive;
    }
    return per_sample ? (double)dead / per_sample : 0;
}

void nnrt_act_stats_compute(nnrt_act_stats *s, const char *kind, const float *v, int n, int per_sample) {
    size_t count = (size_t)n * (size_t)per_sample;
    double sum = 0, sq = 0, lo = INFINITY, hi = -INFINITY;
    int64_t zeros = 0, sat = 0;
    int tanh_like = strcmp(kind, "tanh") == 0, sigmoid_like = strcmp(kind, "sigmoid") == 0;
    for (size_t i = 0; i < count; i++) {
        double x = v[i];
        sum += x;
        sq += x * x;
        if (x < lo) lo = x;
        if (x > hi) hi = x;
        zeros += x == 0;
        sat += tanh_like ? fabs(x) >= 0.99 : sigmoid_like ? x <= 0.01 || x >= 0.99 : 0;
    }
    snprintf(s->kind, sizeof s->kind, "%s", kind);
    s->units = per_sample;
    s->frac_dead = strcmp(kind, "relu") == 0 ? dead_fraction(v, n, per_sample) : 0;
    s->frac_saturated = count ? (double)sat / (double)count : 0;
    s->num = (int64_t)count;
    s->sum = sum;
    s->sum_squares = sq;
    s->min = count ? lo : 0;
    s->max = count ? hi : 0;
    s->mean = count ? sum / (double)count : 0;
    double var = count ? sq / (double)count - s->mean * s->mean : 0;
    s->std = sqrt(var > 0 ? var : 0);
    s->frac_zero = count ? (double)zeros / (double)count : 0;
    s->bins = s->max > s->min ? NNRT_MONITOR_BINS : 1;
    double w = (s->max - s->min) / s->bins;
    for (int b = 0; b < s->bins; b++) {
        s->limit[b] = b == s->bins - 1 ? s->max : s->min + (b + 1) * w;
        s->count[b] = 0;
    }
    for (size_t i = 0; i < count && s->bins > 1; i++) {
        double k = ceil(((double)v[i] - s->min) / w) - 1;
        int b = k < 0 ? 0 : k >= s->bins ? s->bins - 1 : (int)k;
        s->count[b] += 1;
    }
    if (s->bins == 1) s->count[0] = (double)count;
}

void nnrt_monitor_act(nnrt_ctx *ctx, const char *name, const char *kind, const float *v, int n, int per_sample) {
    nnrt_monitor *mon = ctx->monitor;
    if (!mon) return;
    int i = 0;
    while (i < mon->n_acts && strcmp(mon->acts[i].name, name) != 0) i++;
    if (i == NNRT_MONITOR_MAX_ACTS) return;  // more activations than a line holds: the first ones are logged
    if (i == mon->n_acts) snprintf(mon->acts[mon->n_acts++].name, sizeof mon->acts[0].name, "%s", name);
    nnrt_act_stats_compute(&mon->acts[i], kind, v, n, per_sample);
}

static double norm2(const float *v, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)v[i] * v[i];
    return sqrt(s);
}

static double diff_norm2(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) { double d = (double)a[i] - b[i]; s += d * d; }
    return sqrt(s);
}

void nnrt_param_stats_compute(const nnrt_model *m, const float *before, const float *after, const float *grads,
                              nnrt_param_stats *out) {
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable) continue;
        nnrt_param_stats *s = &out[i];
        double w0 = norm2(before + p->offset, p->numel);
        s->w_norm = norm2(after + p->offset, p->numel);
        s->g_norm = norm2(grads + p->offset, p->numel);
        s->update_ratio = diff_norm2(after + p->offset, before + p->offset, p->numel) / (w0 > 0 ? w0 : 1);
    }
}

// ----------------------------------------------------------------------------
// the JSONL line

static void key_number(FILE *f, const char *what, const char *name, double v) {
    char key[160];
    snprintf(key, sizeof key, "%s/%s", what, name);
    fputc(',', f);
    nnrt_json_string(f, key);
    fputc(':', f);
    nnrt_json_number(f, v);
}

static void histogram_json(FILE *f, const nnrt_act_stats *s) {
    fprintf(f, "{\"min\":");
    nnrt_json_number(f, s->min);
    fprintf(f, ",\"max\":");
    nnrt_json_number(f, s->max);
    fprintf(f, ",\"num\":%lld,\"sum\":", (long long)s->num);
    nnrt_json_number(f, s->sum);
    fprintf(f, ",\"sum_squares\":");
    nnrt_json_number(f, s->sum_squares);
    fprintf(f, ",\"bucket_limit\":[");
    for (int b = 0; b < s->bins; b++) { if (b) fputc(',', f); nnrt_json_number(f, s->limit[b]); }
    fprintf(f, "],\"bucket\":[");
    for (int b = 0; b < s->bins; b++) fprintf(f, "%s%.0f", b ? "," : "", s->count[b]);
    fprintf(f, "]}");
}

static void write_line(const nnrt_monitor *mon, const nnrt_ctx *ctx) {
    FILE *f = mon->jsonl;
    const nnrt_model *m = ctx->model;
    fprintf(f, "{\"step\":%lld,\"epoch\":%lld", (long long)ctx->step, (long long)ctx->epoch + 1);
    for (int i = 0; i < m->n_params; i++) {
        if (!m->params[i].trainable) continue;
        key_number(f, "w_norm", m->params[i].name, mon->params[i].w_norm);
        key_number(f, "g_norm", m->params[i].name, mon->params[i].g_norm);
        key_number(f, "update_ratio", m->params[i].name, mon->params[i].update_ratio);
    }
    for (int i = 0; i < mon->n_acts; i++) {
        key_number(f, "act_mean", mon->acts[i].name, mon->acts[i].mean);
        key_number(f, "act_std", mon->acts[i].name, mon->acts[i].std);
        key_number(f, "act_zero", mon->acts[i].name, mon->acts[i].frac_zero);
        if (strcmp(mon->acts[i].kind, "relu") == 0) key_number(f, "act_dead", mon->acts[i].name, mon->acts[i].frac_dead);
        if (strcmp(mon->acts[i].kind, "tanh") == 0 || strcmp(mon->acts[i].kind, "sigmoid") == 0)
            key_number(f, "act_saturated", mon->acts[i].name, mon->acts[i].frac_saturated);
    }
    fprintf(f, ",\"histograms\":{");
    for (int i = 0; i < mon->n_acts; i++) {
        fprintf(f, "%s\"act/", i ? "," : "");
        for (const char *c = mon->acts[i].name; *c; c++) fputc(*c, f);  // C identifiers: nothing to escape
        fprintf(f, "\":");
        histogram_json(f, &mon->acts[i]);
    }
    fprintf(f, "}}\n");
}

float nnrt_monitor_train_step(nnrt_ctx *ctx, int n, const float *x, const void *y) {
    nnrt_monitor *mon = ctx->monitor;
    const nnrt_model *m = ctx->model;
    if (!mon || ctx->step % mon->every != 0) return m->train_step(ctx, n, x, y);
    memcpy(mon->before, ctx->params, m->params_numel * sizeof(float));
    float loss = m->train_step_monitor(ctx, n, x, y);
    nnrt_param_stats_compute(m, mon->before, ctx->params, ctx->grads, mon->params);
    if (mon->jsonl) write_line(mon, ctx);
    return loss;
}
