/* csv.c — comma-separated numbers, one sample per row.
 * The first non-empty row is a header (and skipped) when any of its fields is not a number.
 * Features and dense targets become float32; labels must be integers and become int32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"
#include "nnrt_io.h"

// ----------------------------------------------------------------------------
// fields

/* Parses one field [p, end) as a number; returns 0 if it isn't one. */
static int csv_number(const char *p, const char *end, double *v) {
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r')) end--;
    if (p == end) return 0;
    char tmp[64];
    size_t n = (size_t)(end - p);
    if (n >= sizeof tmp) return 0;
    memcpy(tmp, p, n);
    tmp[n] = 0;
    char *stop;
    *v = strtod(tmp, &stop);
    return *stop == 0;
}

static int64_t csv_count_fields(const char *line, const char *eol) {
    int64_t n = 1;
    for (const char *p = line; p < eol; p++) n += *p == ',';
    return n;
}

static int csv_blank(const char *line, const char *eol) {
    for (const char *p = line; p < eol; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r') return 0;
    return 1;
}

static int csv_all_numeric(const char *line, const char *eol) {
    const char *p = line;
    for (;;) {
        const char *q = p;
        while (q < eol && *q != ',') q++;
        double v;
        if (!csv_number(p, q, &v)) return 0;
        if (q == eol) return 1;
        p = q + 1;
    }
}

// ----------------------------------------------------------------------------
// rows

/* Stores one row's fields at out (cols values of the role's dtype); dies naming line and column. */
static void csv_parse_row(const char *path, long lineno, const char *line, const char *eol,
                          nnrt_role role, int64_t cols, void *out) {
    int64_t got = csv_count_fields(line, eol);
    if (got != cols)
        nnrt_die("%s:%ld: expected %lld column%s, got %lld", path, lineno, (long long)cols, cols == 1 ? "" : "s", (long long)got);
    const char *p = line;
    for (int64_t c = 0; c < cols; c++) {
        const char *q = p;
        while (q < eol && *q != ',') q++;
        double v;
        if (!csv_number(p, q, &v))
            nnrt_die("%s:%ld: column %lld: expected a number, got '%.*s'", path, lineno, (long long)c + 1,
                     (int)(q - p > 40 ? 40 : q - p), p);
        if (!isfinite(v) || (role != NNRT_ROLE_LABELS && !isfinite((float)v)))
            nnrt_die("%s:%ld: column %lld: '%.*s' is not a finite %snumber", path, lineno, (long long)c + 1,
                     (int)(q - p > 40 ? 40 : q - p), p, isfinite(v) ? "float32 " : "");
        if (role == NNRT_ROLE_LABELS) {
            if (v != floor(v) || fabs(v) > 2e9)
                nnrt_die("%s:%ld: expected an integer label, got '%.*s'", path, lineno, (int)(q - p > 40 ? 40 : q - p), p);
            ((int32_t *)out)[c] = (int32_t)v;
        } else {
            ((float *)out)[c] = (float)v;
        }
        p = q + 1;
    }
}

/* The rows are stored as they are parsed, in a buffer that grows with them: a row count taken from the file (its
   newlines, say, blank lines included) is never trusted with an allocation. */
nnrt_tensor_file nnrt_load_csv(const char *path, nnrt_role role, int64_t cols) {
    size_t len;
    char *text = nnrt_read_all(path, &len);
    nnrt_tensor_file t = {.dtype = role == NNRT_ROLE_LABELS ? NNRT_I32 : NNRT_F32, .ndim = 2};
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", role == NNRT_ROLE_LABELS ? "int32" : "float32");
    int64_t rows = 0, cap = 0;
    long lineno = 0;
    int first = 1;
    for (char *line = text; line < text + len;) {
        char *eol = memchr(line, '\n', (size_t)(text + len - line));
        if (!eol) eol = text + len;
        lineno++;
        if (!csv_blank(line, eol)) {
            if (first) {
                first = 0;
                int header = !csv_all_numeric(line, eol);
                if (cols <= 0) cols = csv_count_fields(line, eol);
                if (header) { line = eol + 1; continue; }
            }
            if (rows == cap) {
                cap = cap ? 2 * cap : 64;
                void *grown = realloc(t.data, nnrt_mul_size((size_t)cap, nnrt_mul_size((size_t)cols, 4, path), path));
                if (!grown) { free(t.data); nnrt_die("%s: out of memory at line %ld", path, lineno); }
                t.data = grown;
            }
            csv_parse_row(path, lineno, line, eol, role, cols, (char *)t.data + (size_t)rows * (size_t)cols * 4);
            rows++;
        }
        line = eol + 1;
    }
    free(text);
    if (rows == 0) { free(t.data); nnrt_die("%s: no data rows", path); }
    t.shape[0] = rows;
    t.shape[1] = cols;
    return t;
}
