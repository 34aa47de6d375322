/* st_read.c — the safetensors reader (nnrt_safetensors.h): the header's JSON, the strict load of a model's
 * parameters, and the other tensors and metadata strings checkpoints and weights.c read. It parses bytes already in
 * memory (safetensors.c reads the file) and reports every problem through nnrt_die, so that the exported inference
 * library (nncc compile --emit=library), which copies this file, gets the trainer's checks and messages: its
 * nnrt_die returns an error code instead of exiting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

// ----------------------------------------------------------------------------
// a small JSON reader, just enough for the header

typedef struct {
    const char *start, *p, *end, *path;
} json;

typedef struct {
    char name[256], dtype[16];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;
    int seen;  // matched to a model parameter
} st_entry;

static NNRT_NORETURN void corrupt(const json *j, const char *what) {
    nnrt_die("%s: corrupt safetensors header (%s at byte %ld of the header)", j->path, what, (long)(j->p - j->start));
}

static void ws(json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static void expect(json *j, char c) {
    ws(j);
    if (j->p >= j->end || *j->p != c) {
        char what[32];
        snprintf(what, sizeof what, "expected '%c'", c);
        corrupt(j, what);
    }
    j->p++;
}

static int peek(json *j, char c) {
    ws(j);
    return j->p < j->end && *j->p == c;
}

/* A string into out (escapes kept simple: \uXXXX only for ASCII). */
static void json_string(json *j, char *out, size_t cap) {
    expect(j, '"');
    size_t n = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end) corrupt(j, "unterminated string");
            c = *j->p++;
            if (c == 'u') {
                if (j->end - j->p < 4) corrupt(j, "bad \\u escape");
                c = (char)strtol((char[5]){j->p[0], j->p[1], j->p[2], j->p[3], 0}, NULL, 16);
                j->p += 4;
            } else if (c == 'n') c = '\n'; else if (c == 't') c = '\t'; else if (c == 'r') c = '\r';
            else if (c == 'b') c = '\b'; else if (c == 'f') c = '\f';
        }
        if (n + 1 < cap) out[n++] = c;
    }
    if (j->p >= j->end) corrupt(j, "unterminated string");
    j->p++;
    if (cap) out[n] = 0;
}

static uint64_t json_uint(json *j) {
    ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') corrupt(j, "expected a non-negative integer");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) corrupt(j, "integer too large");
        v = v * 10 + (uint64_t)(*j->p++ - '0');
    }
    return v;
}

static void json_skip(json *j, int depth) {
    if (depth > 32) corrupt(j, "nesting too deep");
    ws(j);
    if (j->p >= j->end) corrupt(j, "unexpected end");
    char c = *j->p;
    if (c == '"') { char tmp[1]; json_string(j, tmp, 0); return; }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (peek(j, close)) { j->p++; return; }
        do {
            if (c == '{') { char tmp[1]; json_string(j, tmp, 0); expect(j, ':'); }
            json_skip(j, depth + 1);
        } while (peek(j, ',') && j->p++);
        expect(j, close);
        return;
    }
    const char *start = j->p;  // number, true, false, null
    while (j->p < j->end && strchr("+-.0123456789eEtruefalsn", *j->p)) j->p++;
    if (j->p == start) corrupt(j, "unexpected character");
}

/* One tensor's {"dtype":…,"shape":[…],"data_offsets":[b,e]}. */
static void json_entry(json *j, st_entry *e) {
    int have = 0;
    expect(j, '{');
    do {
        char key[32];
        json_string(j, key, sizeof key);
        expect(j, ':');
        if (strcmp(key, "dtype") == 0) { json_string(j, e->dtype, sizeof e->dtype); have |= 1; }
        else if (strcmp(key, "shape") == 0) {
            expect(j, '[');
            e->ndim = 0;
            if (!peek(j, ']')) do {
                if (e->ndim == 8) corrupt(j, "more than 8 dimensions");
                e->shape[e->ndim++] = (int64_t)json_uint(j);
            } while (peek(j, ',') && j->p++);
            expect(j, ']');
            have |= 2;
        } else if (strcmp(key, "data_offsets") == 0) {
            expect(j, '['); e->begin = json_uint(j); expect(j, ','); e->end = json_uint(j); expect(j, ']');
            have |= 4;
        } else json_skip(j, 1);
    } while (peek(j, ',') && j->p++);
    expect(j, '}');
    if (have != 7) corrupt(j, "a tensor needs dtype, shape and data_offsets");
}

// ----------------------------------------------------------------------------
// reading

struct nnrt_st {
    const char *path;
    const char *file;           // the whole file
    int owned;                  // whether nnrt_st_free frees file
    st_entry *entries;          // (n) tensors in file order
    int n;
    const char *data;           // the bytes after the header
    uint64_t data_len;
    char (*keys)[128], **values;        // (n_meta) string entries of __metadata__ (values allocated)
    int n_meta, cap_meta;
};

/* The "__metadata__" object: string values are kept, anything else is skipped. */
static void parse_metadata(json *j, nnrt_st *f) {
    ws(j);
    if (!peek(j, '{')) { json_skip(j, 1); return; }
    j->p++;
    if (peek(j, '}')) { j->p++; return; }
    do {
        char key[128];
        json_string(j, key, sizeof key);
        expect(j, ':');
        if (!peek(j, '"')) { json_skip(j, 1); continue; }
        if (f->n_meta == f->cap_meta) {
            f->cap_meta = f->cap_meta ? 2 * f->cap_meta : 16;
            f->keys = realloc(f->keys, (size_t)f->cap_meta * sizeof *f->keys);
            f->values = realloc(f->values, (size_t)f->cap_meta * sizeof *f->values);
            if (!f->keys || !f->values) nnrt_die("%s: out of memory reading the header", j->path);
        }
        snprintf(f->keys[f->n_meta], sizeof f->keys[0], "%s", key);
        const char *q = j->p + 1;  // the raw string is at least as long as its value: size the buffer by it
        while (q < j->end && *q != '"') q += *q == '\\' ? 2 : 1;
        f->values[f->n_meta] = nnrt_malloc((size_t)(q - j->p) + 1);
        f->n_meta++;
        json_string(j, f->values[f->n_meta - 1], (size_t)(q - j->p) + 1);
    } while (peek(j, ',') && j->p++);
    expect(j, '}');
}

/* All tensor entries of the header, in file order, into f->entries; the metadata into f->keys/values. */
static void parse_header(json *j, nnrt_st *f) {
    int cap = 16;
    f->entries = nnrt_calloc((size_t)cap, sizeof *f->entries);
    f->n = 0;
    expect(j, '{');
    if (peek(j, '}')) { j->p++; return; }
    do {
        char name[256];
        json_string(j, name, sizeof name);
        expect(j, ':');
        if (strcmp(name, "__metadata__") == 0) { parse_metadata(j, f); continue; }
        if (f->n == cap) {
            cap *= 2;
            st_entry *grown = realloc(f->entries, (size_t)cap * sizeof *f->entries);
            if (!grown) nnrt_die("%s: out of memory reading the header", j->path);
            f->entries = grown;
        }
        memset(&f->entries[f->n], 0, sizeof f->entries[f->n]);
        snprintf(f->entries[f->n].name, sizeof f->entries[f->n].name, "%s", name);
        json_entry(j, &f->entries[f->n]);
        f->n++;
    } while (peek(j, ',') && j->p++);
    expect(j, '}');
}

nnrt_st *nnrt_st_new(const char *path) {
    nnrt_st *f = nnrt_calloc(1, sizeof *f);
    f->path = path;
    return f;
}

void nnrt_st_parse(nnrt_st *f, const char *buf, size_t len, int owned) {
    const char *path = f->path;
    f->file = buf;
    f->owned = owned;
    if (len < 8) nnrt_die("%s: not a safetensors file (only %zu bytes)", path, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(unsigned char)buf[i] << (8 * i);
    if (hlen > len - 8) nnrt_die("%s: corrupt safetensors file (header length %llu, file has %zu bytes)", path, (unsigned long long)hlen, len);
    json j = {.start = buf + 8, .p = buf + 8, .end = buf + 8 + hlen, .path = path};
    parse_header(&j, f);
    ws(&j);
    if (j.p != j.end) corrupt(&j, "trailing characters");
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - hlen;
}

int nnrt_st_meta_count(const nnrt_st *f) { return f->n_meta; }
const char *nnrt_st_meta_key(const nnrt_st *f, int i) { return f->keys[i]; }

const char *nnrt_st_meta(const nnrt_st *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++) if (strcmp(f->keys[i], key) == 0) return f->values[i];
    return NULL;
}

static st_entry *find_entry(nnrt_st *f, const char *name) {
    for (int k = 0; k < f->n; k++) if (!f->entries[k].seen && strcmp(f->entries[k].name, name) == 0) return &f->entries[k];
    return NULL;
}

/* Copies tensor e of the file into param p, after checking dtype, shape and bounds. */
static void load_entry(const nnrt_st *f, const st_entry *e, const nnrt_param *p, float *params) {
    char want[96], got[96];
    nnrt_shape_str(want, sizeof want, p->ndim, p->shape);
    const char *dtype = p->counter ? "I64" : "F32", *path = f->path;
    size_t size = p->counter ? 8 : 4;
    if (strcmp(e->dtype, dtype) != 0) nnrt_die("%s: tensor '%s' has dtype %s, expected %s", path, e->name, e->dtype, dtype);
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (!same) nnrt_die("%s: tensor '%s' has shape %s, expected %s", path, e->name, nnrt_shape_str(got, sizeof got, e->ndim, e->shape), want);
    if (e->end < e->begin || e->end > f->data_len || e->end - e->begin != p->numel * size)
        nnrt_die("%s: corrupt safetensors file (tensor '%s' has data_offsets [%llu, %llu] for %zu bytes, in %llu bytes of data)",
                 path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, p->numel * size, (unsigned long long)f->data_len);
    if (!p->counter) {
        memcpy(params + p->offset, f->data + e->begin, p->numel * 4);
        for (size_t k = 0; k < p->numel; k++)  // weights that are not finite are never written, nor read
            if (!isfinite(params[p->offset + k]))
                nnrt_die("%s: tensor '%s' holds %s at element %zu, expected finite values", path, e->name,
                         isnan(params[p->offset + k]) ? "NaN" : "an infinity", k);
        return;
    }
    for (size_t k = 0; k < p->numel; k++) {
        int64_t v;
        memcpy(&v, f->data + e->begin + 8 * k, 8);
        params[p->offset + k] = (float)v;
    }
}

void nnrt_st_load_params(nnrt_st *f, const nnrt_model *m, float *params) {
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        st_entry *e = find_entry(f, p->name);
        char want[96];
        if (!e) nnrt_die("%s: missing tensor '%s' (expected F32 of shape %s)", f->path, p->name, nnrt_shape_str(want, sizeof want, p->ndim, p->shape));
        e->seen = 1;
        load_entry(f, e, p, params);
    }
}

const void *nnrt_st_tensor(nnrt_st *f, const char *name, int i64, int64_t numel) {
    return nnrt_st_tensor_shaped(f, name, i64, 1, (int64_t[]){numel});
}

const void *nnrt_st_tensor_shaped(nnrt_st *f, const char *name, int i64, int ndim, const int64_t *shape) {
    st_entry *e = find_entry(f, name);
    if (!e) return NULL;
    e->seen = 1;
    const char *dtype = i64 ? "I64" : "F32";
    if (strcmp(e->dtype, dtype) != 0) nnrt_die("%s: tensor '%s' has dtype %s, expected %s", f->path, name, e->dtype, dtype);
    int64_t numel = 1;
    int same = e->ndim == ndim;
    for (int d = 0; d < ndim; d++) {
        numel = nnrt_mul_dims(numel, shape[d], f->path);
        same &= same && e->shape[d] == shape[d];
    }
    if (!same) {
        char got[96], want[96];
        nnrt_die("%s: tensor '%s' has shape %s, expected %s", f->path, name, nnrt_shape_str(got, sizeof got, e->ndim, e->shape),
                 nnrt_shape_str(want, sizeof want, ndim, shape));
    }
    if (e->end < e->begin || e->end > f->data_len || (uint64_t)numel > UINT64_MAX / 8 || e->end - e->begin != (uint64_t)numel * (i64 ? 8 : 4))
        nnrt_die("%s: corrupt safetensors file (tensor '%s' has data_offsets [%llu, %llu] in %llu bytes of data)", f->path, name,
                 (unsigned long long)e->begin, (unsigned long long)e->end, (unsigned long long)f->data_len);
    return f->data + e->begin;
}

void nnrt_st_check_unexpected(const nnrt_st *f, const nnrt_model *m) {
    for (int k = 0; k < f->n; k++) {
        const st_entry *e = &f->entries[k];
        for (int i = 0; !e->seen && i < m->n_params; i++)
            if (strcmp(e->name, m->params[i].name) == 0) nnrt_die("%s: tensor '%s' appears twice", f->path, e->name);
        if (!e->seen) nnrt_die("%s: unexpected tensor '%s' (not a parameter of %s)", f->path, e->name, m->name);
    }
}

void nnrt_st_free(nnrt_st *f) {
    if (!f) return;
    free(f->entries);
    free(f->keys);
    for (int i = 0; i < f->n_meta; i++) free(f->values[i]);
    free(f->values);
    if (f->owned) free((void *)f->file);
    free(f);
}

const char *nnrt_st_path(const nnrt_st *f) { return f->path; }

void nnrt_st_load_weights(nnrt_st *f, const nnrt_model *m, float *params) {
    nnrt_st_load_params(f, m, params);
    if (nnrt_st_meta(f, NNRT_CHECKPOINT_KEY))  // a checkpoint's weights: its training state is not a parameter
        for (int k = 0; k < f->n; k++) {
            const char *name = f->entries[k].name;
            if (strncmp(name, NNRT_CHECKPOINT_SLOT_PREFIX, strlen(NNRT_CHECKPOINT_SLOT_PREFIX)) == 0 ||
                strncmp(name, NNRT_CHECKPOINT_LBFGS, strlen(NNRT_CHECKPOINT_LBFGS)) == 0 ||
                strcmp(name, NNRT_CHECKPOINT_ORDER) == 0 || strcmp(name, NNRT_CHECKPOINT_BEST) == 0 ||
                strcmp(name, NNRT_CHECKPOINT_EMA) == 0 || strcmp(name, NNRT_CHECKPOINT_SWA) == 0)
                f->entries[k].seen = 1;
        }
    nnrt_st_check_unexpected(f, m);
}
