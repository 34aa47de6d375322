/* report.c — the report command: one self-contained HTML page of a run. From the JSONL log (--log): the loss per
 * step and the per-epoch metrics as inline SVG charts; with --monitor lines, the update/weight ratio of every layer on
 * a log axis and a table of the last monitored step's statistics. From --weights: each parameter's statistics and
 * the first layer's filters as a PNG data URI (filters.c's grid). From --doctor: the doctor's verdicts. No script and
 * no external resource: the page renders offline, alike in every browser. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_commands.h"
#include "nnrt_image.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_report.h"
#include "nnrt_safetensors.h"

enum { MAX_SERIES = 64 };

/* The metrics of a log: the curves, and the last monitored step's statistics (its line, kept as text). */
typedef struct {
    nnrt_series loss, epoch[5], ratio[MAX_SERIES];
    int n_ratio, lines;
    char *monitor;      // the last line with "update_ratio/" keys, NULL if none
} report_log;

static const char *const EPOCH_KEYS[5] = {"train_loss", "val_loss", "test_loss", "val_acc", "test_acc"};

/* The number after "key": in a flat JSON line (NaN for null); 0 when the key is absent. */
static int number_at(const char *line, const char *key, double *v) {
    char pat[160];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return 0;
    p += strlen(pat);
    *v = strncmp(p, "null", 4) == 0 ? NAN : strtod(p, NULL);
    return 1;
}

static void parse_monitor(report_log *r, char *line, double step) {
    for (const char *p = strstr(line, "\"update_ratio/"); p; p = strstr(p + 1, "\"update_ratio/")) {
        const char *name = p + 14, *end = strchr(name, '"');
        if (!end || end - name >= 90) continue;
        int k = 0;
        while (k < r->n_ratio && (strncmp(r->ratio[k].name, name, (size_t)(end - name)) != 0 || r->ratio[k].name[end - name]))
            k++;
        if (k == MAX_SERIES) continue;
        if (k == r->n_ratio) snprintf(r->ratio[r->n_ratio++].name, sizeof r->ratio[0].name, "%.*s", (int)(end - name), name);
        nnrt_series_add(&r->ratio[k], step, strtod(end + 2, NULL));
    }
    free(r->monitor);
    size_t n = strlen(line) + 1;
    r->monitor = memcpy(nnrt_malloc(n), line, n);
}

static void read_log(const char *path, report_log *r) {
    size_t len;
    char *text = nnrt_read_all(path, &len);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        double step, epoch, v;
        if (number_at(line, "step", &step)) {
            if (number_at(line, "loss", &v)) { nnrt_series_add(&r->loss, step, v); r->lines++; }
            if (strstr(line, "\"update_ratio/")) { parse_monitor(r, line, step); r->lines++; }
        } else if (number_at(line, "epoch", &epoch) && number_at(line, "train_loss", &v)) {
            for (int k = 0; k < 5; k++)
                if (number_at(line, EPOCH_KEYS[k], &v)) nnrt_series_add(&r->epoch[k], epoch, v);
            r->lines++;
        }
    }
    free(text);
    if (!r->lines) nnrt_die("--log %s: no metrics in it (expected the JSON Lines log of 'train --log')", path);
    for (int k = 0; k < 5; k++) snprintf(r->epoch[k].name, sizeof r->epoch[k].name, "%s", EPOCH_KEYS[k]);
}

/* The last monitored step's statistics: a row per parameter, then a row per activation. */
static void monitor_tables(nnrt_text *t, const report_log *r, const nnrt_model *m) {
    double step = 0;
    number_at(r->monitor, "step", &step);
    nnrt_text_printf(t, "<h2>Per-layer statistics at step %.0f</h2>\n<table><tr><th>parameter</th><th>‖W‖</th><th>‖∂L/∂W‖"
                     "</th><th>update ratio ‖ΔW‖/‖W‖</th></tr>\n", step);
    for (int i = 0; i < m->n_params; i++) {
        double w, g, u;
        char key[160];
        snprintf(key, sizeof key, "w_norm/%s", m->params[i].name);
        if (!number_at(r->monitor, key, &w)) continue;
        snprintf(key, sizeof key, "g_norm/%s", m->params[i].name);
        number_at(r->monitor, key, &g);
        snprintf(key, sizeof key, "update_ratio/%s", m->params[i].name);
        number_at(r->monitor, key, &u);
        nnrt_text_printf(t, "<tr><td>");
        nnrt_text_html(t, m->params[i].name);
        nnrt_text_printf(t, "</td><td>%.4g</td><td>%.4g</td><td>%.3g</td></tr>\n", w, g, u);
    }
    nnrt_text_printf(t, "</table>\n<table><tr><th>activation</th><th>mean</th><th>std</th><th>fraction 0</th><th>dead units"
                     "</th><th>saturated</th></tr>\n");
    for (const char *p = strstr(r->monitor, "\"act_mean/"); p; p = strstr(p + 1, "\"act_mean/")) {
        char name[96], key[160];
        const char *end = strchr(p + 10, '"');
        if (!end || end - (p + 10) >= 90) continue;
        snprintf(name, sizeof name, "%.*s", (int)(end - (p + 10)), p + 10);
        nnrt_text_printf(t, "<tr><td>");
        nnrt_text_html(t, name);
        nnrt_text_printf(t, "</td>");
        static const char *const keys[] = {"act_mean", "act_std", "act_zero", "act_dead", "act_saturated"};
        for (int k = 0; k < 5; k++) {
            double v;
            snprintf(key, sizeof key, "%s/%s", keys[k], name);
            if (number_at(r->monitor, key, &v)) nnrt_text_printf(t, "<td>%.4g</td>", v);
            else nnrt_text_printf(t, "<td></td>");
        }
        nnrt_text_printf(t, "</tr>\n");
    }
    nnrt_text_printf(t, "</table>\n");
}

/* Each parameter's statistics from the weights, and the first layer's filters as a PNG data URI. */
static void weights_section(nnrt_text *t, nnrt_ctx *ctx, const char *path) {
    const nnrt_model *m = ctx->model;
    nnrt_load_safetensors(path, m, ctx->params);
    nnrt_text_printf(t, "<h2>Weights</h2>\n<p class=\"note\">");
    nnrt_text_html(t, path);
    nnrt_text_printf(t, "</p>\n<table><tr><th>parameter</th><th>shape</th><th>mean</th><th>std</th><th>min</th><th>max</th>"
                     "<th>‖W‖</th></tr>\n");
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        const float *w = ctx->params + p->offset;
        double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t k = 0; k < p->numel; k++) { s += w[k]; s2 += (double)w[k] * w[k]; lo = fmin(lo, w[k]); hi = fmax(hi, w[k]); }
        double mean = s / (double)p->numel, var = s2 / (double)p->numel - mean * mean;
        char shape[96];
        nnrt_shape_str(shape, sizeof shape, p->ndim, p->shape);
        nnrt_text_printf(t, "<tr><td>");
        nnrt_text_html(t, p->name);
        nnrt_text_printf(t, "</td><td>%s</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.4g</td></tr>\n", shape,
                         mean, sqrt(var > 0 ? var : 0), lo, hi, sqrt(s2));
    }
    nnrt_text_printf(t, "</table>\n");
    int s[4];
    char why[512];
    const nnrt_param *p = nnrt_filters_param(m, s, why, sizeof why);
    if (!p) {
        nnrt_text_printf(t, "<p class=\"note\">No filters: ");
        nnrt_text_html(t, why);
        nnrt_text_printf(t, "</p>\n");
        return;
    }
    nnrt_filter_grid g = nnrt_filter_grid_make(ctx->params + p->offset, s[0], s[1], s[2], s[3]);
    size_t len;
    uint8_t *png = nnrt_png_encode("the report's filters", g.width, g.height, g.channels, g.pixels, &len);
    nnrt_text_printf(t, "<h2>First-layer filters</h2>\n<p class=\"note\">%d filters of '", s[0]);
    nnrt_text_html(t, p->name);
    nnrt_text_printf(t, "', each scaled to its own range</p>\n<img alt=\"first-layer filters\" width=\"%d\" height=\"%d\" "
                     "src=\"data:image/png;base64,", g.width, g.height);
    nnrt_text_base64(t, png, len);
    nnrt_text_printf(t, "\">\n");
    free(png);
    free(g.pixels);
}

/* The doctor's saved output, its verdict lines colored. */
static void doctor_section(nnrt_text *t, const char *path) {
    size_t len;
    char *text = nnrt_read_all(path, &len);
    nnrt_text_printf(t, "<h2>Doctor</h2>\n<pre>");
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *cls = strncmp(line, "FAIL", 4) == 0 ? "fail" : strncmp(line, "PASS", 4) == 0 ? "pass"
                        : strncmp(line, "SKIP", 4) == 0 ? "skip" : NULL;
        if (cls) nnrt_text_printf(t, "<span class=\"%s\">", cls);
        nnrt_text_html(t, line);
        nnrt_text_printf(t, "%s\n", cls ? "</span>" : "");
    }
    nnrt_text_printf(t, "</pre>\n");
    free(text);
}

static const char *const STYLE =
    "body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}td:first-child,th:first-child{text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;align-items:flex-start}.charts svg{margin:4px}.note{color:#666;font-size:13px}pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}"
    ".pass{color:#1a7f37}.fail{color:#c62828;font-weight:bold}.skip{color:#777}img{image-rendering:pixelated}";

int nnrt_cmd_report(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    report_log r = {0};
    read_log(o->log, &r);
    nnrt_text t = {0};
    nnrt_text_printf(&t, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>nncc report: ");
    nnrt_text_html(&t, m->name);
    nnrt_text_printf(&t, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Training report: ", STYLE);
    nnrt_text_html(&t, m->name);
    nnrt_text_printf(&t, "</h1>\n<p class=\"note\">%d inputs → %d %s, %zu parameters; log ", m->input_dim, m->output_dim,
                     m->target_kind == NNRT_TARGET_CLASS ? "classes" : "outputs", m->params_numel);
    nnrt_text_html(&t, o->log);
    nnrt_text_printf(&t, "</p>\n");
    if (o->doctor) doctor_section(&t, o->doctor);
    nnrt_text_printf(&t, "<h2>Curves</h2>\n<div class=\"charts\">\n");
    snprintf(r.loss.name, sizeof r.loss.name, "loss");
    nnrt_chart(&t, "Loss per logged step", "step", "loss", &r.loss, 1, 0);
    nnrt_chart(&t, "Loss per epoch", "epoch", "loss", r.epoch, 3, 0);
    nnrt_chart(&t, "Accuracy per epoch", "epoch", "accuracy", r.epoch + 3, 2, 0);
    nnrt_chart(&t, "Update/weight ratio per layer (~1e-3 is healthy)", "step", "‖ΔW‖/‖W‖", r.ratio, r.n_ratio, 1);
    nnrt_text_printf(&t, "</div>\n");
    if (r.monitor) monitor_tables(&t, &r, m);
    else nnrt_text_printf(&t, "<p class=\"note\">No per-layer statistics in the log: train with --monitor every:N (a trainer "
                          "compiled with 'nncc compile --monitor').</p>\n");
    if (o->weights) weights_section(&t, ctx, o->weights);
    nnrt_text_printf(&t, "</body>\n</html>\n");
    nnrt_atomic *a = nnrt_atomic_open(o->output);
    nnrt_atomic_write(a, t.s, t.len);
    nnrt_atomic_commit(a);
    if (!o->quiet) printf("wrote %s (%zu bytes)\n", o->output, t.len);
    free(t.s);
    free(r.monitor);
    free(r.loss.x); free(r.loss.y);
    for (int k = 0; k < 5; k++) { free(r.epoch[k].x); free(r.epoch[k].y); }
    for (int k = 0; k < r.n_ratio; k++) { free(r.ratio[k].x); free(r.ratio[k].y); }
    return 0;
}
