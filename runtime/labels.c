/* labels.c — the label column of a CSV file (--label-column): class names mapped to indices, integer class indices,
 * or the target of a one-output regression model.
 *
 * Class names: the training file's labels, unless every one of them is an integer (then they are the class indices
 * themselves), are names; the distinct names in sorted byte order (strcmp, as sklearn's LabelEncoder sorts) are
 * classes 0, 1, …. The weights file keeps them (weights.c), so that validation, test, eval and predict files map
 * the same name to the same class, and predict --labels writes names. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"

void nnrt_classes_free(nnrt_classes *c) {
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    c->names = NULL;
    c->n = 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A whole field as an int32: 0 if it is not one. */
static int label_int(const char *s, int32_t *v) {
    char *end;
    if (!*s) return 0;
    long long k = strtoll(s, &end, 10);
    if (*end || k < -2147483647LL || k > 2147483647LL) return 0;
    *v = (int32_t)k;
    return 1;
}

static int all_integers(const nnrt_csv_table *t) {
    int32_t v;
    for (int64_t i = 0; i < t->rows; i++)
        if (!label_int(t->labels[i], &v)) return 0;
    return 1;
}

/* "'a', 'b', 'c'" (at most the first 10), for messages. */
static void name_list(const nnrt_classes *c, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < c->n && len + 8 < cap; i++) {
        if (i == 10) { snprintf(out + len, cap - len, ", … (%d in all)", c->n); break; }
        len += (size_t)snprintf(out + len, cap - len, "%s'%.40s'", i ? ", " : "", c->names[i]);
    }
}

/* The distinct labels of t, sorted, as the classes; dies when there are more than the model's outputs. */
static void learn_classes(const char *path, const nnrt_csv_table *t, const nnrt_model *m, nnrt_classes *c) {
    char **sorted = nnrt_malloc(nnrt_mul_size((size_t)t->rows, sizeof *sorted, path));
    memcpy(sorted, t->labels, (size_t)t->rows * sizeof *sorted);
    qsort(sorted, (size_t)t->rows, sizeof *sorted, cmp_str);
    int64_t n = 0;
    for (int64_t i = 0; i < t->rows; i++)
        if (i == 0 || strcmp(sorted[i], sorted[n - 1]) != 0) sorted[n++] = sorted[i];
    c->n = (int)(n < m->output_dim ? n : m->output_dim);
    c->names = sorted;
    if (n > m->output_dim) {
        char names[512];
        name_list(c, names, sizeof names);
        nnrt_die("%s: the label column %s holds %lld distinct class names, but model '%s' has %d classes (the first: %s)", path,
                 t->label_name, (long long)n, m->name, m->output_dim, names);
    }
    for (int i = 0; i < c->n; i++) {
        c->names[i] = strdup(sorted[i]);
        if (!c->names[i]) nnrt_die("%s: out of memory", path);
    }
}

static int find_class(const nnrt_classes *c, const char *name) {
    char **hit = bsearch(&name, c->names, (size_t)c->n, sizeof *c->names, cmp_str);
    return hit ? (int)(hit - c->names) : -1;
}

/* Dense targets: a one-output regression model's label column holds its target. */
static nnrt_array targets_from_table(const char *path, const nnrt_csv_table *t, const nnrt_model *m) {
    if (m->target_dim != 1)
        nnrt_die("%s: --label-column: model '%s' has %d target values per sample, but a label column holds one", path, m->name,
                 m->target_dim);
    float *y = nnrt_malloc(nnrt_mul_size((size_t)t->rows, sizeof(float), path));
    for (int64_t i = 0; i < t->rows; i++) {
        char *end;
        double v = strtod(t->labels[i], &end);
        if (!*t->labels[i] || *end || !isfinite((float)v)) {
            free(y);
            nnrt_die("%s: row %lld (line %ld): the label column %s holds '%.40s', expected a finite number (the target of a "
                     "regression model)", path, (long long)i + 1, t->lines[i], t->label_name, t->labels[i]);
        }
        y[i] = (float)v;
    }
    return (nnrt_array){.path = strdup(path), .dtype = NNRT_F32, .n = t->rows, .dim = 1, .data = y};
}

nnrt_array nnrt_labels_from_table(const char *path, const nnrt_csv_table *t, const nnrt_model *m, const nnrt_data_opts *d) {
    if (m->target_kind != NNRT_TARGET_CLASS) return targets_from_table(path, t, m);
    nnrt_classes none = {0}, *c = d && d->classes ? d->classes : &none;
    if (c->n == 0 && d && d->learn && !all_integers(t)) learn_classes(path, t, m, c);
    int32_t *y = nnrt_malloc(nnrt_mul_size((size_t)t->rows, sizeof(int32_t), path));
    char names[512];
    for (int64_t i = 0; i < t->rows; i++) {
        const char *s = t->labels[i];
        if (c->n > 0 && (y[i] = find_class(c, s)) < 0) {
            name_list(c, names, sizeof names);
            nnrt_die("%s: row %lld (line %ld): unknown class '%.40s' in the label column %s (the classes are %s)", path,
                     (long long)i + 1, t->lines[i], s, t->label_name, names);
        }
        if (c->n > 0) continue;
        if (!label_int(s, &y[i]))
            nnrt_die("%s: row %lld (line %ld): the label column %s holds '%.40s', expected a class index (the model's "
                     "training labels were class indices, not names)", path, (long long)i + 1, t->lines[i], t->label_name, s);
        if (y[i] < 0 || y[i] >= m->output_dim)
            nnrt_die("%s: row %lld (line %ld): label %d is outside [0, %d)", path, (long long)i + 1, t->lines[i], y[i],
                     m->output_dim);
    }
    return (nnrt_array){.path = strdup(path), .dtype = NNRT_I32, .n = t->rows, .dim = 1, .data = y};
}
