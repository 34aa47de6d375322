/* weights.c — what a weights file (and a checkpoint) says about the data: the input preprocessing and the class
 * names, as __metadata__ strings beside the state_dict, which torch's safetensors.torch.load_file ignores:
 *
 *   "input.scale"      "auto" (uint8 / 255, floats as they are), "1/D" or a number (prep.c)
 *   "input.normalize"  "none", "feature" or "channel"
 *   "input.mean"       comma-separated float32 values (%.9g, so each reads back as itself), one per feature or
 *   "input.std"        channel; present unless "none"
 *   "input.max"        the training inputs' largest |x·scale|, for the range warning of eval and predict
 *   "classes"          K, the number of class names, and "class.0" … "class.K-1" the names (labels.c)
 *
 * A file without "input.scale" (written before these existed, or by torch) gets the loaders' defaults: uint8
 * inputs / 255, floats as they are, no warning. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_safetensors.h"

// ----------------------------------------------------------------------------
// writing

static char *str_printf(const char *fmt, ...) NNRT_PRINTF(1, 2);
static char *str_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = nnrt_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* "v0,v1,…" at %.9g. */
static char *float_list(const float *v, int64_t n) {
    char *s = nnrt_malloc(nnrt_mul_size((size_t)n, 18, "metadata") + 1), *p = s;
    s[0] = 0;
    for (int64_t i = 0; i < n; i++) p += sprintf(p, "%s%.9g", i ? "," : "", (double)v[i]);
    return s;
}

int nnrt_data_info_meta(const nnrt_data_info *d, nnrt_st_kv **kv) {
    int n = 0, cap = 6 + (d ? d->classes.n : 0);
    nnrt_st_kv *out = nnrt_calloc((size_t)cap, sizeof *out);
#define PUT(k, v) (out[n].key = str_printf("%s", k), out[n++].value = (v))
    if (d && d->has_prep) {
        const nnrt_prep *p = &d->prep;
        PUT("input.scale", str_printf("%s", p->scale));
        PUT("input.normalize", str_printf("%s", p->norm == NNRT_NORM_FEATURE ? "feature" : p->norm == NNRT_NORM_CHANNEL ? "channel" : "none"));
        if (p->norm != NNRT_NORM_NONE) {
            PUT("input.mean", float_list(p->mean, p->n_stats));
            PUT("input.std", float_list(p->std, p->n_stats));
        }
        PUT("input.max", str_printf("%.17g", p->max_abs));
    }
    if (d && d->classes.n > 0) {
        PUT("classes", str_printf("%d", d->classes.n));
        for (int i = 0; i < d->classes.n; i++) {
            out[n].key = str_printf("class.%d", i);
            out[n++].value = str_printf("%s", d->classes.names[i]);
        }
    }
#undef PUT
    *kv = out;
    return n;
}

void nnrt_st_kv_free(nnrt_st_kv *kv, int n) {
    for (int i = 0; i < n; i++) {
        free((char *)kv[i].key);
        free((char *)kv[i].value);
    }
    free(kv);
}

void nnrt_save_weights(const char *path, const nnrt_model *m, const float *params, const nnrt_data_info *d) {
    nnrt_st_kv *kv;
    int n = nnrt_data_info_meta(d, &kv);
    nnrt_write_safetensors(path, m, params, kv, n, NULL, 0);
    nnrt_st_kv_free(kv, n);
}

// ----------------------------------------------------------------------------
// reading

static NNRT_NORETURN void bad_meta(const char *path, const char *key, const char *value, const char *expected) {
    nnrt_die("%s: metadata '%s' is '%.60s', expected %s", path, key, value, expected);
}

/* n finite numbers from "v0,v1,…" (positive ones when `positive`). */
static float *read_floats(const char *path, const char *key, const char *v, int64_t n, int positive) {
    float *out = nnrt_malloc(nnrt_mul_size((size_t)(n ? n : 1), sizeof(float), path));
    const char *p = v;
    char what[96];
    snprintf(what, sizeof what, "%lld comma-separated %s numbers", (long long)n, positive ? "positive" : "finite");
    for (int64_t i = 0; i < n; i++) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !isfinite((float)x) || (positive && !(x > 0)) || (*end != (i + 1 < n ? ',' : 0))) {
            free(out);
            bad_meta(path, key, v, what);
        }
        out[i] = (float)x;
        p = end + 1;
    }
    return out;
}

static void read_prep(const nnrt_st *f, const char *path, const nnrt_model *m, nnrt_prep *p) {
    const char *scale = nnrt_st_meta(f, "input.scale"), *norm = nnrt_st_meta(f, "input.normalize");
    const char *max = nnrt_st_meta(f, "input.max");
    if (!nnrt_prep_set_scale(p, scale)) bad_meta(path, "input.scale", scale, "auto, a positive number or 1/D");
    if (!norm || !nnrt_prep_set_norm(p, norm, m))
        bad_meta(path, "input.normalize", norm ? norm : "", m->input_rank == 3 ? "none, feature or channel" : "none or feature");
    char *end;
    p->max_abs = max ? strtod(max, &end) : 0;
    if (max && (*end || !(p->max_abs >= 0) || !isfinite(p->max_abs))) bad_meta(path, "input.max", max, "a number >= 0");
    if (p->norm == NNRT_NORM_NONE) return;
    const char *mean = nnrt_st_meta(f, "input.mean"), *std = nnrt_st_meta(f, "input.std");
    if (!mean || !std) nnrt_die("%s: metadata 'input.normalize' is '%s' but 'input.%s' is missing", path, norm, mean ? "std" : "mean");
    p->mean = read_floats(path, "input.mean", mean, p->n_stats, 0);
    p->std = read_floats(path, "input.std", std, p->n_stats, 1);
    nnrt_prep_expand(p, m);
}

static void read_classes(const nnrt_st *f, const char *path, const nnrt_model *m, nnrt_classes *c) {
    const char *count = nnrt_st_meta(f, "classes");
    if (!count) return;
    char *end, expected[64];
    long k = strtol(count, &end, 10);
    snprintf(expected, sizeof expected, "a class count from 1 to %d", m->output_dim);
    if (*end || k < 1 || k > m->output_dim || m->target_kind != NNRT_TARGET_CLASS) bad_meta(path, "classes", count, expected);
    c->names = nnrt_calloc((size_t)k, sizeof *c->names);
    for (c->n = 0; c->n < k; c->n++) {
        char key[32];
        snprintf(key, sizeof key, "class.%d", c->n);
        const char *name = nnrt_st_meta(f, key);
        if (!name) nnrt_die("%s: metadata 'classes' is %ld but '%s' is missing", path, k, key);
        if (c->n > 0 && strcmp(c->names[c->n - 1], name) >= 0)
            nnrt_die("%s: metadata '%s' ('%.40s') does not sort after the class before it (class names are distinct and sorted)",
                     path, key, name);
        c->names[c->n] = str_printf("%s", name);
    }
}

void nnrt_data_info_read(const nnrt_st *f, const nnrt_model *m, nnrt_data_info *d) {
    memset(d, 0, sizeof *d);
    const char *path = nnrt_st_path(f);
    if (nnrt_st_meta(f, "input.scale")) {
        d->has_prep = 1;
        read_prep(f, path, m, &d->prep);
    }
    read_classes(f, path, m, &d->classes);
}

void nnrt_data_info_free(nnrt_data_info *d) {
    nnrt_prep_free(&d->prep);
    nnrt_classes_free(&d->classes);
    d->has_prep = 0;
}

void nnrt_load_weights(const char *path, const nnrt_model *m, float *params, nnrt_data_info *d) {
    nnrt_st *f = nnrt_st_read(path);
    nnrt_st_load_weights(f, m, params);
    if (d) nnrt_data_info_read(f, m, d);
    nnrt_st_free(f);
}
