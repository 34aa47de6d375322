/* npy.c — NumPy .npy files (format versions 1.0–3.0): read C-ordered little-endian float32, float64,
 * uint8, int32 and int64 arrays; write float32 matrices.
 * Layout: "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), an ASCII Python dict
 * {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), } padded with spaces and '\n', then data. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_data.h"
#include "nnrt_io.h"

// ----------------------------------------------------------------------------
// header

typedef struct {
    char descr[16];
    int fortran;
    int ndim;
    int64_t shape[8];
} npy_header;

/* The value after 'key': in the header dict, or NULL. */
static const char *npy_field(const char *h, const char *key) {
    const char *p = strstr(h, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == '\'' || *p == '"' || *p == ' ' || *p == ':') p++;
    return p;
}

static void npy_parse_shape(const char *path, const char *p, npy_header *hd) {
    if (*p != '(') nnrt_die("%s: corrupt .npy header (no shape tuple)", path);
    p++;
    hd->ndim = 0;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (!isdigit((unsigned char)*p)) nnrt_die("%s: corrupt .npy header (bad shape)", path);
        if (hd->ndim == 8) nnrt_die("%s: arrays of more than 8 dimensions are not supported", path);
        char *end;
        long long v = strtoll(p, &end, 10);
        hd->shape[hd->ndim++] = v;
        p = end;
        while (*p == 'L') p++;  // Python 2 longs
    }
}

static npy_header npy_read_header(nnrt_reader *r) {
    const char *path = nnrt_reader_path(r);
    unsigned char pre[10];
    nnrt_reader_read_exact(r, pre, 8, "the 8-byte .npy preamble");
    if (memcmp(pre, "\x93NUMPY", 6) != 0) nnrt_die("%s: not a .npy file (bad magic)", path);
    uint32_t hlen;
    if (pre[6] == 1) {
        nnrt_reader_read_exact(r, pre + 8, 2, "the .npy header length");
        hlen = pre[8] | (uint32_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        unsigned char b[4];
        nnrt_reader_read_exact(r, b, 4, "the .npy header length");
        hlen = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    } else {
        nnrt_die("%s: unsupported .npy format version %d.%d", path, pre[6], pre[7]);
    }
    if (hlen > (1u << 20)) nnrt_die("%s: corrupt .npy header (length %u)", path, hlen);
    char *h = nnrt_malloc(hlen + 1);
    nnrt_reader_read_exact(r, h, hlen, "the .npy header");
    h[hlen] = 0;

    npy_header hd = {0};
    const char *d = npy_field(h, "descr"), *f = npy_field(h, "fortran_order"), *s = npy_field(h, "shape");
    if (!d || !f || !s) { free(h); nnrt_die("%s: corrupt .npy header (needs descr, fortran_order, shape)", path); }
    size_t n = strcspn(d, "'\"");
    if (n == 0 || n >= sizeof hd.descr) { free(h); nnrt_die("%s: corrupt .npy header (bad descr)", path); }
    memcpy(hd.descr, d, n);
    hd.fortran = strncmp(f, "True", 4) == 0;
    npy_parse_shape(path, s, &hd);
    free(h);
    return hd;
}

// ----------------------------------------------------------------------------
// data

typedef struct { const char *descr, *name; nnrt_dtype dtype; int size; } npy_kind;

static const npy_kind npy_kinds[] = {
    {"<f4", "float32", NNRT_F32, 4}, {"<f8", "float64", NNRT_F32, 8},
    {"|u1", "uint8", NNRT_U8, 1},    {"<u1", "uint8", NNRT_U8, 1},   {"u1", "uint8", NNRT_U8, 1},
    {"<i4", "int32", NNRT_I32, 4},   {"<i8", "int64", NNRT_I32, 8},
};

static const npy_kind *npy_find_kind(const char *path, const char *descr) {
    for (size_t i = 0; i < sizeof npy_kinds / sizeof npy_kinds[0]; i++)
        if (strcmp(npy_kinds[i].descr, descr) == 0) return &npy_kinds[i];
    if (descr[0] == '>')
        nnrt_die("%s: big-endian dtype '%s' is not supported (save it with arr.astype('<%s'))", path, descr, descr + 1);
    nnrt_die("%s: unsupported dtype '%s' (expected float32, float64, uint8, int32 or int64)", path, descr);
}

/* Narrows stored 8-byte elements (little-endian) into the in-memory 4-byte dtype; dst may be src. */
static void npy_convert(const npy_kind *k, const void *src_, void *dst, size_t count) {
    const unsigned char *src = src_;
    if (k->dtype == NNRT_F32) {  // float64 → float32
        for (size_t i = 0; i < count; i++) { double v; memcpy(&v, src + 8 * i, 8); ((float *)dst)[i] = (float)v; }
    } else {  // int64 → int32, clamped so range checks still see an out-of-range value
        for (size_t i = 0; i < count; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            ((int32_t *)dst)[i] = v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : (int32_t)v;
        }
    }
}

nnrt_tensor_file nnrt_load_npy(const char *path) {
    nnrt_reader *r = nnrt_reader_open(path);
    npy_header hd = npy_read_header(r);
    const npy_kind *k = npy_find_kind(path, hd.descr);
    if (hd.fortran) nnrt_die("%s: fortran_order arrays are not supported (save np.ascontiguousarray(arr))", path);
    if (hd.ndim == 0) nnrt_die("%s: expected an array, got a scalar", path);

    nnrt_tensor_file t = {.dtype = k->dtype, .ndim = hd.ndim};
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", k->name);
    size_t count = 1;
    for (int i = 0; i < hd.ndim; i++) {
        t.shape[i] = hd.shape[i];
        count = nnrt_mul_size(count, (size_t)hd.shape[i], path);
    }
    size_t out_size = k->dtype == NNRT_U8 ? 1 : 4;
    char what[96];
    snprintf(what, sizeof what, "%zu elements of %s", count, k->name);
    // The stored bytes, checked against what the file holds before they are allocated; a wider stored type
    // (float64, int64) is narrowed in place, front to back (element i's result lands on bytes already read).
    t.data = nnrt_reader_read_alloc(r, nnrt_mul_size(count, (size_t)k->size, path), what);
    if (k->size != (int)out_size) {
        npy_convert(k, t.data, t.data, count);
        void *shrunk = realloc(t.data, count > 0 ? count * out_size : 1);
        if (shrunk) t.data = shrunk;
    }
    nnrt_reader_close(r);
    return t;
}

// ----------------------------------------------------------------------------
// writing

/* The header of a .npy of dtype descr and a shape written as a Python tuple ("(3, 4)", "(3,)"). */
static nnrt_atomic *npy_begin(const char *path, const char *descr, const char *shape) {
    char h[192];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    int total = (10 + n + 1 + 63) / 64 * 64;  // preamble + dict + '\n', aligned to 64 like NumPy
    int hlen = total - 10;
    memset(h + n, ' ', (size_t)(hlen - n));
    h[hlen - 1] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    nnrt_atomic *a = nnrt_atomic_open(path);
    nnrt_atomic_write(a, pre, sizeof pre);
    nnrt_atomic_write(a, h, (size_t)hlen);
    return a;
}

nnrt_atomic *nnrt_npy_begin(const char *path, int64_t rows, int64_t cols) {
    char shape[64];
    snprintf(shape, sizeof shape, "(%lld, %lld)", (long long)rows, (long long)cols);
    return npy_begin(path, "<f4", shape);
}

nnrt_atomic *nnrt_npy_begin_i32(const char *path, int64_t rows) {
    char shape[64];
    snprintf(shape, sizeof shape, "(%lld,)", (long long)rows);
    return npy_begin(path, "<i4", shape);
}

int nnrt_predict_format(const char *path) {
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".npy") == 0) return 'n';
    if (n >= 4 && strcmp(path + n - 4, ".csv") == 0) return 'c';
    return 0;
}
