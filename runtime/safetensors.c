/* safetensors.c — weights files in the safetensors format (what PyTorch's safetensors.torch reads):
 *   u64 little-endian N | N bytes of JSON header | tensor bytes
 * The header maps each name to {"dtype":"F32","shape":[…],"data_offsets":[begin,end]} (offsets into
 * the bytes after the header) plus an optional "__metadata__" object of strings. We write the header
 * padded with spaces to a multiple of 8 so the data is aligned, and the tensors in table order. */
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

// ----------------------------------------------------------------------------
// writing

/* Appends s to the header with JSON escaping of '"' and '\' (parameter names are plain ASCII). */
static size_t put_escaped(char *h, size_t n, size_t cap, const char *s) {
    for (; *s && n + 2 < cap; s++) {
        if (*s == '"' || *s == '\\') h[n++] = '\\';
        h[n++] = *s;
    }
    return n;
}

void nnrt_save_safetensors(const char *path, const nnrt_model *m, const float *params) {
    size_t cap = 256 + (size_t)m->n_params * 256, n = 0;
    for (int i = 0; i < m->n_params; i++) cap += strlen(m->params[i].name) * 2;
    char *h = nnrt_malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t offset = 0;  // bytes
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        n += (size_t)snprintf(h + n, cap - n, ",\"");
        n = put_escaped(h, n, cap, p->name);
        n += (size_t)snprintf(h + n, cap - n, "\":{\"dtype\":\"%s\",\"shape\":[", p->counter ? "I64" : "F32");
        for (int d = 0; d < p->ndim; d++) n += (size_t)snprintf(h + n, cap - n, "%s%lld", d ? "," : "", (long long)p->shape[d]);
        size_t bytes = p->numel * (p->counter ? 8 : 4);
        n += (size_t)snprintf(h + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", offset, offset + bytes);
        offset += bytes;
    }
    n += (size_t)snprintf(h + n, cap - n, "}");
    while (n % 8) h[n++] = ' ';
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)n >> (8 * i));

    nnrt_atomic *a = nnrt_atomic_open(path);
    nnrt_atomic_write(a, len, 8);
    nnrt_atomic_write(a, h, n);
    for (int i = 0; i < m->n_params; i++) {  // x86-64 is little-endian, as the format requires
        const nnrt_param *p = &m->params[i];
        if (!p->counter) { nnrt_atomic_write(a, params + p->offset, p->numel * sizeof(float)); continue; }
        for (size_t k = 0; k < p->numel; k++) {
            int64_t v = (int64_t)params[p->offset + k];
            nnrt_atomic_write(a, &v, sizeof v);
        }
    }
    nnrt_atomic_commit(a);
    free(h);
}

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

/* All tensor entries of the header (not __metadata__), in file order; *n gets their count. */
static st_entry *parse_header(json *j, int *n) {
    int cap = 16;
    st_entry *entries = nnrt_calloc((size_t)cap, sizeof *entries);
    *n = 0;
    expect(j, '{');
    if (peek(j, '}')) { j->p++; return entries; }
    do {
        char name[256];
        json_string(j, name, sizeof name);
        expect(j, ':');
        if (strcmp(name, "__metadata__") == 0) { json_skip(j, 1); continue; }
        if (*n == cap) {
            cap *= 2;
            st_entry *grown = realloc(entries, (size_t)cap * sizeof *entries);
            if (!grown) nnrt_die("%s: out of memory reading the header", j->path);
            entries = grown;
        }
        memset(&entries[*n], 0, sizeof entries[*n]);
        snprintf(entries[*n].name, sizeof entries[*n].name, "%s", name);
        json_entry(j, &entries[*n]);
        (*n)++;
    } while (peek(j, ',') && j->p++);
    expect(j, '}');
    return entries;
}

/* Copies tensor e of the file into param p, after checking dtype, shape and bounds. */
static void load_entry(const char *path, const st_entry *e, const nnrt_param *p, const char *data, uint64_t data_len, float *params) {
    char want[96], got[96];
    nnrt_shape_str(want, sizeof want, p->ndim, p->shape);
    const char *dtype = p->counter ? "I64" : "F32";
    size_t size = p->counter ? 8 : 4;
    if (strcmp(e->dtype, dtype) != 0) nnrt_die("%s: tensor '%s' has dtype %s, expected %s", path, e->name, e->dtype, dtype);
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (!same) nnrt_die("%s: tensor '%s' has shape %s, expected %s", path, e->name, nnrt_shape_str(got, sizeof got, e->ndim, e->shape), want);
    if (e->end < e->begin || e->end > data_len || e->end - e->begin != p->numel * size)
        nnrt_die("%s: corrupt safetensors file (tensor '%s' has data_offsets [%llu, %llu] for %zu bytes, in %llu bytes of data)",
                 path, e->name, (unsigned long long)e->begin, (unsigned long long)e->end, p->numel * size, (unsigned long long)data_len);
    if (!p->counter) { memcpy(params + p->offset, data + e->begin, p->numel * 4); return; }
    for (size_t k = 0; k < p->numel; k++) {
        int64_t v;
        memcpy(&v, data + e->begin + 8 * k, 8);
        params[p->offset + k] = (float)v;
    }
}

void nnrt_load_safetensors(const char *path, const nnrt_model *m, float *params) {
    size_t len;
    char *file = nnrt_read_all(path, &len);
    if (len < 8) nnrt_die("%s: not a safetensors file (only %zu bytes)", path, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)(unsigned char)file[i] << (8 * i);
    if (hlen > len - 8) nnrt_die("%s: corrupt safetensors file (header length %llu, file has %zu bytes)", path, (unsigned long long)hlen, len);
    json j = {.start = file + 8, .p = file + 8, .end = file + 8 + hlen, .path = path};
    int n;
    st_entry *entries = parse_header(&j, &n);
    ws(&j);
    if (j.p != j.end) corrupt(&j, "trailing characters");

    const char *data = file + 8 + hlen;
    uint64_t data_len = len - 8 - hlen;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        st_entry *e = NULL;
        for (int k = 0; k < n && !e; k++) if (strcmp(entries[k].name, p->name) == 0) e = &entries[k];
        char want[96];
        if (!e) nnrt_die("%s: missing tensor '%s' (expected F32 of shape %s)", path, p->name, nnrt_shape_str(want, sizeof want, p->ndim, p->shape));
        e->seen = 1;
        load_entry(path, e, p, data, data_len, params);
    }
    for (int k = 0; k < n; k++) {
        for (int i = 0; !entries[k].seen && i < m->n_params; i++)
            if (strcmp(entries[k].name, m->params[i].name) == 0) nnrt_die("%s: tensor '%s' appears twice", path, entries[k].name);
        if (!entries[k].seen) nnrt_die("%s: unexpected tensor '%s' (not a parameter of %s)", path, entries[k].name, m->name);
    }
    free(entries);
    free(file);
}
