/* safetensors.c — weights files in the safetensors format (what PyTorch's safetensors.torch reads):
 *   u64 little-endian N | N bytes of JSON header | tensor bytes
 * The header maps each name to {"dtype":"F32","shape":[…],"data_offsets":[begin,end]} (offsets into
 * the bytes after the header) plus an optional "__metadata__" object of strings. We write the header
 * padded with spaces to a multiple of 8 so the data is aligned, and the tensors in table order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

// ----------------------------------------------------------------------------
// writing

/* Appends s to the header as JSON string content: '"' and '\' escaped, control characters as \u00XX (a class
   name from a CSV may hold a tab); other bytes (UTF-8) as they are. */
static size_t put_escaped(char *h, size_t n, size_t cap, const char *s) {
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) { n += (size_t)snprintf(h + n, cap - n, "\\u%04x", c); continue; }
        if (c == '"' || c == '\\') h[n++] = '\\';
        h[n++] = *s;
    }
    return n;
}

static size_t put_tensor(char *h, size_t n, size_t cap, const char *name, const char *dtype, int ndim,
                         const int64_t *shape, size_t *offset, size_t bytes) {
    n += (size_t)snprintf(h + n, cap - n, ",\"");
    n = put_escaped(h, n, cap, name);
    n += (size_t)snprintf(h + n, cap - n, "\":{\"dtype\":\"%s\",\"shape\":[", dtype);
    for (int d = 0; d < ndim; d++) n += (size_t)snprintf(h + n, cap - n, "%s%lld", d ? "," : "", (long long)shape[d]);
    n += (size_t)snprintf(h + n, cap - n, "],\"data_offsets\":[%zu,%zu]}", *offset, *offset + bytes);
    *offset += bytes;
    return n;
}

void nnrt_write_safetensors(const char *path, const nnrt_model *m, const float *params, const nnrt_st_kv *meta,
                            int n_meta, const nnrt_st_extra *extra, int n_extra) {
    size_t cap = 256 + (size_t)(m->n_params + n_extra) * 256, n = 0;
    for (int i = 0; i < m->n_params; i++) cap += strlen(m->params[i].name) * 6;
    for (int i = 0; i < n_extra; i++) cap += strlen(extra[i].name) * 6;
    for (int i = 0; i < n_meta; i++) cap += 8 + 6 * (strlen(meta[i].key) + strlen(meta[i].value));
    for (int i = 0; i < m->n_params; i++)  // the last line of defence: a NaN or infinite weight is never saved
        for (size_t k = 0; k < m->params[i].numel; k++)
            if (!isfinite(params[m->params[i].offset + k]))
                nnrt_die("%s: not written: '%s' holds a non-finite value at element %zu (weights that are not finite are never saved)",
                         path, m->params[i].name, k);
    char *h = nnrt_malloc(cap);
    n += (size_t)snprintf(h + n, cap - n, "{\"__metadata__\":{\"format\":\"pt\"");
    for (int i = 0; i < n_meta; i++) {
        n += (size_t)snprintf(h + n, cap - n, ",\"");
        n = put_escaped(h, n, cap, meta[i].key);
        n += (size_t)snprintf(h + n, cap - n, "\":\"");
        n = put_escaped(h, n, cap, meta[i].value);
        n += (size_t)snprintf(h + n, cap - n, "\"");
    }
    n += (size_t)snprintf(h + n, cap - n, "}");
    size_t offset = 0;  // bytes
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        n = put_tensor(h, n, cap, p->name, p->counter ? "I64" : "F32", p->ndim, p->shape, &offset, p->numel * (p->counter ? 8 : 4));
    }
    for (int i = 0; i < n_extra; i++) {
        int64_t flat[1] = {extra[i].numel};
        n = put_tensor(h, n, cap, extra[i].name, extra[i].i64 ? "I64" : "F32", extra[i].ndim > 0 ? extra[i].ndim : 1,
                       extra[i].ndim > 0 ? extra[i].shape : flat, &offset, (size_t)extra[i].numel * (extra[i].i64 ? 8 : 4));
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
    for (int i = 0; i < n_extra; i++) nnrt_atomic_write(a, extra[i].data, (size_t)extra[i].numel * (extra[i].i64 ? 8 : 4));
    nnrt_atomic_commit(a);
    free(h);
}

void nnrt_save_safetensors(const char *path, const nnrt_model *m, const float *params) {
    nnrt_write_safetensors(path, m, params, NULL, 0, NULL, 0);
}

// ----------------------------------------------------------------------------
// reading a file (the parser is st_read.c)

nnrt_st *nnrt_st_read(const char *path) {
    size_t len;
    char *file = nnrt_read_all(path, &len);
    nnrt_st *f = nnrt_st_new(path);
    nnrt_st_parse(f, file, len, 1);
    return f;
}

void nnrt_load_safetensors(const char *path, const nnrt_model *m, float *params) {
    nnrt_st *f = nnrt_st_read(path);
    nnrt_st_load_weights(f, m, params);
    nnrt_st_free(f);
}
