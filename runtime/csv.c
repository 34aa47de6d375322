/* csv.c — CSV as people have it: one sample per row, fields split by a delimiter (',' unless --delimiter), blank
 * lines skipped, a field optionally in double quotes ("" inside for a quote), and an optional header row.
 * Features and dense targets become float32, integer labels int32. A label column (--label-column, by header
 * name or 0-based index) is kept as text, so that class names can be mapped to indices (labels.c).
 *
 * The header: with no label column, the first non-blank row is a header when any field is not a number; with
 * a label column given by index, when any field besides that column is not a number (so a header-less file with
 * class names in its label column is read as data); with a label column given by name, the header must name it. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"
#include "nnrt_io.h"

// ----------------------------------------------------------------------------
// fields

/* The field starting at p on a line ending at eol, unquoted and trimmed of blanks outside quotes, into buf (which
   holds the line's length + 1). Returns where the next field starts, or NULL after the last one. */
static const char *csv_field(const char *path, long lineno, int64_t col, const char *p, const char *eol, char delim,
                             char *buf) {
    size_t n = 0;
    while (p < eol && (*p == ' ' || *p == '\t') && *p != delim) p++;
    if (p < eol && *p == '"') {
        for (p++;; p++) {
            if (p >= eol) nnrt_die("%s:%ld: column %lld: a quote is not closed on its line", path, lineno, (long long)col + 1);
            if (*p == '"' && p + 1 < eol && p[1] == '"') { buf[n++] = '"'; p++; continue; }
            if (*p == '"') break;
            buf[n++] = *p;
        }
        for (p++; p < eol && (*p == ' ' || *p == '\t' || *p == '\r') && *p != delim; p++) {}
        if (p < eol && *p != delim)
            nnrt_die("%s:%ld: column %lld: text after the closing quote (expected '%c' or the end of the line)", path,
                     lineno, (long long)col + 1, delim);
    } else {
        const char *start = p;
        while (p < eol && *p != delim) p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r') && end[-1] != delim) end--;
        n = (size_t)(end - start);
        memcpy(buf, start, n);
    }
    buf[n] = 0;
    return p < eol ? p + 1 : NULL;
}

/* A whole field as a double: 0 if it is not one. */
static int csv_number(const char *field, double *v) {
    if (!*field) return 0;
    char *stop;
    *v = strtod(field, &stop);
    return *stop == 0;
}

static int csv_blank(const char *line, const char *eol) {
    for (const char *p = line; p < eol; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r') return 0;
    return 1;
}

/* The fields of one line: unquoted into buf (the line's length + 1 bytes: each field takes at most its own span,
   its NUL the delimiter's place), with a pointer to each in *f, which grows as needed (*cap entries). Returns
   how many. */
typedef struct { char **f; int64_t cap; char *buf; } csv_fields;

static int64_t csv_split(const char *path, long lineno, const char *line, const char *eol, char delim, csv_fields *s) {
    int64_t n = 0;
    char *out = s->buf;
    for (const char *p = line; p;) {
        p = csv_field(path, lineno, n, p, eol, delim, out);
        if (n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 16;
            char **grown = realloc(s->f, nnrt_mul_size((size_t)s->cap, sizeof *s->f, path));
            if (!grown) nnrt_die("%s: out of memory at line %ld", path, lineno);
            s->f = grown;
        }
        s->f[n++] = out;
        out += strlen(out) + 1;
    }
    return n;
}

// ----------------------------------------------------------------------------
// the label column

/* Whether s is a whole integer (the label column's index); *k gets it. */
static int csv_index(const char *s, long long *k) {
    char *end;
    if (!*s) return 0;
    *k = strtoll(s, &end, 10);
    return *end == 0;
}

/* The first row is a header when a field that must be a number is not one. */
static int csv_is_header(char **f, int64_t n, int64_t skip) {
    double v;
    for (int64_t i = 0; i < n; i++)
        if (i != skip && !csv_number(f[i], &v)) return 1;
    return 0;
}

/* "a, b, c" (the header's first names), for an error message. */
static void header_list(char **f, int64_t n, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    for (int64_t i = 0; i < n && len + 8 < cap; i++) {
        if (i == 12) { snprintf(out + len, cap - len, ", …"); break; }
        len += (size_t)snprintf(out + len, cap - len, "%s'%.40s'", i ? ", " : "", f[i]);
    }
}

/* Which column of the first row (fields f, n of them) is the label column: -1 when it is absent and optional.
   Also decides *header. */
static int64_t find_label_column(const char *path, const nnrt_csv_opts *o, char **f, int64_t n, int64_t cols, int optional,
                                 int *header) {
    long long k;
    int by_index = csv_index(o->label_column, &k);
    if (by_index && (k < -n || k >= n)) {
        if (optional && cols > 0 && n == cols) { *header = csv_is_header(f, n, -1); return -1; }
        nnrt_die("%s: --label-column %s: the file has %lld columns (an index counts from 0; -1 is the last)", path,
                 o->label_column, (long long)n);
    }
    int64_t idx = by_index ? (k < 0 ? n + k : k) : -1;
    *header = csv_is_header(f, n, idx);
    if (*header) {  // a name in the header wins over an index
        for (int64_t i = 0; i < n; i++)
            if (strcmp(f[i], o->label_column) == 0) return i;
    }
    if (by_index) {
        if (optional && cols > 0 && n == cols) return -1;  // as many fields as the model has inputs: no labels here
        return idx;
    }
    if (optional) return -1;
    char names[512];
    header_list(f, n, names, sizeof names);
    if (*header) nnrt_die("%s: --label-column %s: no such column in the header (it has %s)", path, o->label_column, names);
    nnrt_die("%s: --label-column %s: the file has no header row (its first row is all numbers), so a column can only be "
             "given by its 0-based index", path, o->label_column);
}

// ----------------------------------------------------------------------------
// tables

static void table_grow(const char *path, nnrt_csv_table *t, int64_t *cap, long lineno) {
    *cap = *cap ? 2 * *cap : 64;
    size_t row = nnrt_mul_size((size_t)(t->cols ? t->cols : 1), sizeof(float), path);
    float *x = realloc(t->x, nnrt_mul_size((size_t)*cap, row, path));
    long *lines = realloc(t->lines, nnrt_mul_size((size_t)*cap, sizeof *lines, path));
    if (x) t->x = x;
    if (lines) t->lines = lines;
    if (!x || !lines) nnrt_die("%s: out of memory at line %ld", path, lineno);
    if (t->labels) {
        char **labels = realloc(t->labels, nnrt_mul_size((size_t)*cap, sizeof *labels, path));
        if (!labels) nnrt_die("%s: out of memory at line %ld", path, lineno);
        t->labels = labels;
    }
}

/* Stores one data row: its numbers into t->x, its label (when there is a label column) into t->labels. */
static void table_row(const char *path, long lineno, nnrt_csv_table *t, char **f, int64_t n, int64_t label, int labels_int) {
    float *x = t->x + (size_t)t->rows * (size_t)t->cols;
    for (int64_t i = 0, c = 0; i < n; i++) {
        if (i == label) continue;
        double v;
        if (!csv_number(f[i], &v))
            nnrt_die("%s:%ld: column %lld: expected a number, got '%.40s'", path, lineno, (long long)i + 1, f[i]);
        if (!isfinite(v) || (!labels_int && !isfinite((float)v)))
            nnrt_die("%s:%ld: column %lld: '%.40s' is not a finite %snumber", path, lineno, (long long)i + 1, f[i],
                     isfinite(v) ? "float32 " : "");
        if (labels_int) {
            if (v != floor(v) || fabs(v) > 2e9) nnrt_die("%s:%ld: expected an integer label, got '%.40s'", path, lineno, f[i]);
            ((int32_t *)x)[c++] = (int32_t)v;
        } else {
            x[c++] = (float)v;
        }
    }
    if (label >= 0) {
        t->labels[t->rows] = strdup(f[label]);
        if (!t->labels[t->rows]) nnrt_die("%s: out of memory at line %ld", path, lineno);
    }
    t->lines[t->rows++] = lineno;
}

/* The rows are stored as they are parsed, in buffers that grow with them: a row count taken from the file (its
   newlines, say, blank lines included) is never trusted with an allocation. */
static nnrt_csv_table csv_read(const char *path, const nnrt_csv_opts *opts, int64_t cols, int optional, int labels_int) {
    nnrt_csv_opts o = opts ? *opts : (nnrt_csv_opts){0};
    if (!o.delimiter) o.delimiter = ',';
    size_t len;
    char *text = nnrt_read_all(path, &len);
    csv_fields s = {.buf = nnrt_malloc(len + 2)};  // one line's fields, unquoted: at most the line and a NUL
    nnrt_csv_table t = {0};
    int64_t cap = 0, fields = -1, label = -1;
    long lineno = 0;
    for (char *line = text; line < text + len;) {
        char *eol = memchr(line, '\n', (size_t)(text + len - line));
        if (!eol) eol = text + len;
        lineno++;
        if (!csv_blank(line, eol)) {
            int64_t n = csv_split(path, lineno, line, eol, o.delimiter, &s);
            char **f = s.f;
            int header = 0;
            if (fields < 0) {  // the first row: the header, the label column, the column count
                fields = n;
                if (o.label_column) label = find_label_column(path, &o, f, n, cols, optional, &header);
                else header = csv_is_header(f, n, -1);
                t.cols = n - (label >= 0);
                if (label >= 0) {
                    if (header) snprintf(t.label_name, sizeof t.label_name, "'%.48s'", f[label]);
                    else snprintf(t.label_name, sizeof t.label_name, "%lld", (long long)label);
                    t.labels = nnrt_malloc(sizeof *t.labels);
                }
                if (cols > 0 && t.cols != cols && label >= 0)
                    nnrt_die("%s:%ld: expected %lld columns (%lld and the label column %s), got %lld", path, lineno,
                             (long long)cols + 1, (long long)cols, t.label_name, (long long)n);
                if (cols <= 0) cols = t.cols;
                fields = label >= 0 ? n : cols;
            }
            if (!header) {
                if (n != fields)
                    nnrt_die("%s:%ld: expected %lld column%s, got %lld", path, lineno, (long long)fields, fields == 1 ? "" : "s",
                             (long long)n);
                if (t.rows == cap) table_grow(path, &t, &cap, lineno);
                table_row(path, lineno, &t, f, n, label, labels_int);
            }
        }
        line = eol + 1;
    }
    free(text);
    free(s.buf);
    free(s.f);
    if (t.rows == 0) { nnrt_csv_table_free(&t); nnrt_die("%s: no data rows", path); }
    return t;
}

nnrt_csv_table nnrt_csv_read(const char *path, const nnrt_csv_opts *opts, int64_t cols, int optional) {
    return csv_read(path, opts, cols, optional, 0);
}

void nnrt_csv_table_free(nnrt_csv_table *t) {
    for (int64_t i = 0; t->labels && i < t->rows; i++) free(t->labels[i]);
    free(t->labels);
    free(t->x);
    free(t->lines);
    memset(t, 0, sizeof *t);
}

nnrt_tensor_file nnrt_load_csv(const char *path, nnrt_role role, int64_t cols, const nnrt_csv_opts *opts) {
    nnrt_csv_opts plain = {.delimiter = opts ? opts->delimiter : ','};
    nnrt_csv_table c = csv_read(path, &plain, cols, 0, role == NNRT_ROLE_LABELS);
    nnrt_tensor_file t = {.dtype = role == NNRT_ROLE_LABELS ? NNRT_I32 : NNRT_F32, .ndim = 2, .data = c.x,
                          .shape = {c.rows, c.cols}};
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", role == NNRT_ROLE_LABELS ? "int32" : "float32");
    c.x = NULL;
    nnrt_csv_table_free(&c);
    return t;
}
