/* nnrt_lib.c — the exported inference library's handle (nnrt_lib.h): a safetensors reader that reports errors
 * instead of exiting, the weights file's input preprocessing (applied by prep.c, the trainer's own code), the
 * batch loop over the generated predict and softmax.c, and what the copied runtime files need from the layers
 * below them (errors, allocation, the clock, the two-thread calls run on the caller).
 *
 * Errors: every check calls fail(), which records the code and message in the call's frame and longjmps back to
 * the API call that set it (thread-local, so two threads never see each other's). A runtime file's nnrt_die lands
 * there too. What a failed load allocated is owned by its handle, which the API call frees. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_lib.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

// ----------------------------------------------------------------------------
// errors: one frame per API call in progress on this thread

typedef struct {
    jmp_buf back;
    int code;
    char *msg;
    size_t cap;
} lib_frame;

static _Thread_local lib_frame *frame;

static NNRT_NORETURN void vfail(int code, const char *fmt, va_list ap) {
    if (!frame) {  // a runtime file's fatal error outside any API call: cannot happen, say so loudly
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        abort();
    }
    if (frame->msg && frame->cap) vsnprintf(frame->msg, frame->cap, fmt, ap);
    frame->code = code;
    longjmp(frame->back, 1);
}

static NNRT_NORETURN NNRT_PRINTF(2, 3) void fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(code, fmt, ap);
}

void nnrt_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(NNRT_LIB_ERR_INTERNAL, fmt, ap);
}

void nnrt_usage_die(const char *fmt, ...) {  // gemm.c: a bad NNRT_GEMM in the environment
    va_list ap;
    va_start(ap, fmt);
    vfail(NNRT_LIB_ERR_ARG, fmt, ap);
}

void *nnrt_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) fail(NNRT_LIB_ERR_NOMEM, "out of memory (allocating %zu bytes)", bytes);
    return p;
}

void *nnrt_calloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) fail(NNRT_LIB_ERR_NOMEM, "out of memory (allocating %zu x %zu bytes)", count, size);
    return p;
}

static void *aligned_calloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) fail(NNRT_LIB_ERR_NOMEM, "out of memory (allocating %zu bytes)", bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

double nnrt_now(void) {  // NNRT_PROF's clock; the library never sets ctx->profile
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The trainer's two-thread calls, run on the caller in order: the trainer's --threads 1, which gives the same
   results bit for bit (the chunks write disjoint memory). A library must not start threads behind its caller. */
void nnrt_par2(void (*fn)(void *arg, int part), void *arg) {
    fn(arg, 0);
    fn(arg, 1);
}

void nnrt_par_chunks(void (*fn)(void *arg, int chunk), void *arg, int count) {
    for (int c = 0; c < count; c++) fn(arg, c);
}

// ----------------------------------------------------------------------------
// the handle

struct nnrt_lib {
    const nnrt_model *m;
    nnrt_ctx ctx;           // params (params_numel) and arena (arena_bytes): what the generated predict reads
    int has_prep;           // 0: the file has no input.* metadata, the inputs go in as they are
    nnrt_prep prep;
    float *xb;              // (max_batch, input_dim) one batch of preprocessed inputs
    char msg[256];
};

void nnrt_lib_free(nnrt_lib *h) {
    if (!h) return;
    free(h->ctx.params);
    free(h->ctx.arena);
    nnrt_prep_free(&h->prep);
    free(h->xb);
    free(h);
}

const char *nnrt_lib_message(const nnrt_lib *h) { return h ? h->msg : "no model (NULL)"; }

// ----------------------------------------------------------------------------
// safetensors: an 8-byte header length, a JSON header, the tensors' bytes

typedef struct {
    char name[256], dtype[16];
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;
    int seen;
} st_entry;

typedef struct {
    const char *src;                // the path, or "<memory>", for messages
    const char *start, *p, *end;    // the header
    const unsigned char *data;      // the tensors' bytes
    uint64_t data_len;
    st_entry *entries;              // (n)
    int n, cap;
    char (*keys)[64];               // (n_meta) the string entries of __metadata__
    char **values;
    int n_meta, cap_meta;
} st_file;

static void st_free(st_file *f) {
    free(f->entries);
    free(f->keys);
    for (int i = 0; i < f->n_meta; i++) free(f->values[i]);
    free(f->values);
}

static NNRT_NORETURN void corrupt(const st_file *f, const char *what) {
    fail(NNRT_LIB_ERR_FORMAT, "%s: corrupt safetensors header (%s at byte %ld of the header)", f->src, what,
         (long)(f->p - f->start));
}

static int peek(st_file *f, char c) {
    while (f->p < f->end && strchr(" \t\r\n", *f->p)) f->p++;
    return f->p < f->end && *f->p == c;
}

static void expect(st_file *f, char c) {
    char what[32];
    snprintf(what, sizeof what, "expected '%c'", c);
    if (!peek(f, c)) corrupt(f, what);
    f->p++;
}

/* A JSON string into out (truncated to cap − 1 bytes; cap 0 skips it); \uXXXX kept only for ASCII. */
static void json_string(st_file *f, char *out, size_t cap) {
    expect(f, '"');
    size_t n = 0;
    while (f->p < f->end && *f->p != '"') {
        char c = *f->p++;
        if (c == '\\') {
            if (f->p >= f->end) corrupt(f, "unterminated string");
            c = *f->p++;
            if (c == 'u') {
                if (f->end - f->p < 4) corrupt(f, "bad \\u escape");
                c = (char)strtol((char[5]){f->p[0], f->p[1], f->p[2], f->p[3], 0}, NULL, 16);
                f->p += 4;
            } else if (c == 'n') c = '\n'; else if (c == 't') c = '\t'; else if (c == 'r') c = '\r';
        }
        if (n + 1 < cap) out[n++] = c;
    }
    if (f->p >= f->end) corrupt(f, "unterminated string");
    f->p++;
    if (cap) out[n] = 0;
}

static uint64_t json_uint(st_file *f) {
    (void)peek(f, '0');  // skips white space
    if (f->p >= f->end || *f->p < '0' || *f->p > '9') corrupt(f, "expected a non-negative integer");
    uint64_t v = 0;
    while (f->p < f->end && *f->p >= '0' && *f->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) corrupt(f, "integer too large");
        v = v * 10 + (uint64_t)(*f->p++ - '0');
    }
    return v;
}

static void json_skip(st_file *f, int depth) {
    if (depth > 32) corrupt(f, "nesting too deep");
    (void)peek(f, '"');
    if (f->p >= f->end) corrupt(f, "unexpected end");
    char c = *f->p;
    if (c == '"') { json_string(f, NULL, 0); return; }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        f->p++;
        if (peek(f, close)) { f->p++; return; }
        do {
            if (c == '{') { json_string(f, NULL, 0); expect(f, ':'); }
            json_skip(f, depth + 1);
        } while (peek(f, ',') && f->p++);
        expect(f, close);
        return;
    }
    const char *from = f->p;  // a number, true, false or null
    while (f->p < f->end && strchr("+-.0123456789eEtruefalsn", *f->p)) f->p++;
    if (f->p == from) corrupt(f, "unexpected character");
}

/* One tensor's {"dtype":…,"shape":[…],"data_offsets":[b,e]}. */
static void json_entry(st_file *f, st_entry *e) {
    int have = 0;
    expect(f, '{');
    do {
        char key[32];
        json_string(f, key, sizeof key);
        expect(f, ':');
        if (strcmp(key, "dtype") == 0) { json_string(f, e->dtype, sizeof e->dtype); have |= 1; }
        else if (strcmp(key, "shape") == 0) {
            expect(f, '[');
            if (!peek(f, ']')) do {
                if (e->ndim == 8) corrupt(f, "more than 8 dimensions");
                e->shape[e->ndim++] = (int64_t)json_uint(f);
            } while (peek(f, ',') && f->p++);
            expect(f, ']');
            have |= 2;
        } else if (strcmp(key, "data_offsets") == 0) {
            expect(f, '['); e->begin = json_uint(f); expect(f, ','); e->end = json_uint(f); expect(f, ']');
            have |= 4;
        } else json_skip(f, 1);
    } while (peek(f, ',') && f->p++);
    expect(f, '}');
    if (have != 7) corrupt(f, "a tensor needs dtype, shape and data_offsets");
}

static void json_metadata(st_file *f) {
    if (!peek(f, '{')) { json_skip(f, 1); return; }
    f->p++;
    if (peek(f, '}')) { f->p++; return; }
    do {
        char key[64];
        json_string(f, key, sizeof key);
        expect(f, ':');
        if (!peek(f, '"')) { json_skip(f, 1); continue; }
        if (f->n_meta == f->cap_meta) {
            f->cap_meta = f->cap_meta ? 2 * f->cap_meta : 16;
            char (*keys)[64] = realloc(f->keys, (size_t)f->cap_meta * sizeof *f->keys);
            if (keys) f->keys = keys;
            char **values = realloc(f->values, (size_t)f->cap_meta * sizeof *f->values);
            if (values) f->values = values;
            if (!keys || !values) fail(NNRT_LIB_ERR_NOMEM, "%s: out of memory reading the header", f->src);
        }
        const char *q = f->p + 1;  // the raw string is at least as long as its value
        while (q < f->end && *q != '"') q += *q == '\\' ? 2 : 1;
        f->values[f->n_meta] = nnrt_malloc((size_t)(q - f->p) + 1);
        memcpy(f->keys[f->n_meta], key, sizeof key);
        f->n_meta++;
        json_string(f, f->values[f->n_meta - 1], (size_t)(q - f->p) + 1);
    } while (peek(f, ',') && f->p++);
    expect(f, '}');
}

static void st_parse(st_file *f, const unsigned char *buf, size_t len) {
    if (len < 8) fail(NNRT_LIB_ERR_FORMAT, "%s: not a safetensors file (only %zu bytes)", f->src, len);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen > len - 8)
        fail(NNRT_LIB_ERR_FORMAT, "%s: corrupt safetensors file (header length %llu, the file has %zu bytes)", f->src,
             (unsigned long long)hlen, len);
    f->start = f->p = (const char *)buf + 8;
    f->end = f->start + hlen;
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - hlen;
    expect(f, '{');
    if (peek(f, '}')) f->p++;
    else do {
        char name[256];
        json_string(f, name, sizeof name);
        expect(f, ':');
        if (strcmp(name, "__metadata__") == 0) { json_metadata(f); continue; }
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 16;
            st_entry *grown = realloc(f->entries, (size_t)f->cap * sizeof *f->entries);
            if (!grown) fail(NNRT_LIB_ERR_NOMEM, "%s: out of memory reading the header", f->src);
            f->entries = grown;
        }
        st_entry *e = &f->entries[f->n++];
        memset(e, 0, sizeof *e);
        memcpy(e->name, name, sizeof name);
        json_entry(f, e);
    } while (peek(f, ',') && f->p++);
    expect(f, '}');
    (void)peek(f, ' ');
    if (f->p != f->end) corrupt(f, "trailing characters");
}

static const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++) if (strcmp(f->keys[i], key) == 0) return f->values[i];
    return NULL;
}


// ----------------------------------------------------------------------------
// the model's tensors, strictly (the trainer's rules: every parameter with its exact shape and dtype, nothing else)

static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < ndim && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, ndim == 1 ? ",)" : ")");
    return buf;
}

static st_entry *find_entry(st_file *f, const char *name) {
    for (int k = 0; k < f->n; k++) if (!f->entries[k].seen && strcmp(f->entries[k].name, name) == 0) return &f->entries[k];
    return NULL;
}

static void load_param(st_file *f, const nnrt_param *p, float *params) {
    char want[96], got[96];
    shape_str(want, sizeof want, p->ndim, p->shape);
    const char *dtype = p->counter ? "I64" : "F32";
    size_t size = p->counter ? 8 : 4;
    st_entry *e = find_entry(f, p->name);
    if (!e) fail(NNRT_LIB_ERR_WEIGHTS, "%s: missing tensor '%s' (expected %s of shape %s)", f->src, p->name, dtype, want);
    e->seen = 1;
    if (strcmp(e->dtype, dtype) != 0) fail(NNRT_LIB_ERR_WEIGHTS, "%s: tensor '%s' has dtype %s, expected %s", f->src, e->name, e->dtype, dtype);
    int same = e->ndim == p->ndim;
    for (int d = 0; same && d < p->ndim; d++) same = e->shape[d] == p->shape[d];
    if (!same)
        fail(NNRT_LIB_ERR_WEIGHTS, "%s: tensor '%s' has shape %s, expected %s", f->src, e->name,
             shape_str(got, sizeof got, e->ndim, e->shape), want);
    if (e->end < e->begin || e->end > f->data_len || e->end - e->begin != p->numel * size)
        fail(NNRT_LIB_ERR_FORMAT, "%s: corrupt safetensors file (tensor '%s' has data_offsets [%llu, %llu] for %zu bytes, in %llu "
             "bytes of data: truncated?)", f->src, e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
             p->numel * size, (unsigned long long)f->data_len);
    float *w = params + p->offset;  // (numel)
    for (size_t k = 0; k < p->numel; k++) {
        if (p->counter) {
            int64_t v;
            memcpy(&v, f->data + e->begin + 8 * k, 8);
            w[k] = (float)v;
            continue;
        }
        memcpy(&w[k], f->data + e->begin + 4 * k, 4);
        if (!isfinite(w[k]))
            fail(NNRT_LIB_ERR_WEIGHTS, "%s: tensor '%s' holds %s at element %zu, expected finite values", f->src, e->name,
                 isnan(w[k]) ? "NaN" : "an infinity", k);
    }
}

/* A checkpoint (the trainer's --checkpoint file) holds its training state beside the weights: not parameters. */
static int training_state(const st_file *f, const char *name) {
    static const char *const kept[] = {"optimizer.", "train.order", "early_stop.weights", "ema.weights"};
    if (!st_meta(f, "nncc.checkpoint")) return 0;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (strncmp(name, kept[i], strlen(kept[i])) == 0) return 1;
    return 0;
}

static void load_params(st_file *f, const nnrt_model *m, float *params) {
    for (int i = 0; i < m->n_params; i++) load_param(f, &m->params[i], params);
    for (int k = 0; k < f->n; k++) {
        const st_entry *e = &f->entries[k];
        if (e->seen || training_state(f, e->name)) continue;
        for (int i = 0; i < m->n_params; i++)
            if (strcmp(e->name, m->params[i].name) == 0) fail(NNRT_LIB_ERR_WEIGHTS, "%s: tensor '%s' appears twice", f->src, e->name);
        fail(NNRT_LIB_ERR_WEIGHTS, "%s: unexpected tensor '%s' (not a parameter of %s)", f->src, e->name, m->name);
    }
}

// ----------------------------------------------------------------------------
// the input preprocessing the weights file keeps (the trainer's weights.c writes it; prep.c applies it)

static NNRT_NORETURN void bad_meta(const st_file *f, const char *key, const char *value, const char *expected) {
    fail(NNRT_LIB_ERR_WEIGHTS, "%s: metadata '%s' is '%.60s', expected %s", f->src, key, value ? value : "", expected);
}

static float *meta_floats(const st_file *f, const char *key, int64_t n, int positive) {
    const char *v = st_meta(f, key);
    if (!v) fail(NNRT_LIB_ERR_WEIGHTS, "%s: metadata 'input.normalize' is set but '%s' is missing", f->src, key);
    float *out = nnrt_malloc((size_t)(n ? n : 1) * sizeof(float));
    const char *p = v;
    for (int64_t i = 0; i < n; i++) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || !isfinite((float)x) || (positive && !(x > 0)) || (*end != (i + 1 < n ? ',' : 0))) {
            free(out);
            bad_meta(f, key, v, positive ? "comma-separated positive numbers, one per feature or channel"
                                         : "comma-separated finite numbers, one per feature or channel");
        }
        out[i] = (float)x;
        p = end + 1;
    }
    return out;
}

static void load_prep(const st_file *f, const nnrt_model *m, nnrt_lib *h) {
    const char *scale = st_meta(f, "input.scale"), *norm = st_meta(f, "input.normalize");
    if (!scale) return;  // a file without it (torch's, say): the inputs go in as they are, as the trainer's floats do
    h->has_prep = 1;
    if (!nnrt_prep_set_scale(&h->prep, scale)) bad_meta(f, "input.scale", scale, "auto, a positive number or 1/D");
    if (!norm || !nnrt_prep_set_norm(&h->prep, norm, m))
        bad_meta(f, "input.normalize", norm, m->input_rank == 3 ? "none, feature or channel" : "none or feature");
    if (h->prep.norm == NNRT_NORM_NONE) return;
    h->prep.mean = meta_floats(f, "input.mean", h->prep.n_stats, 0);
    h->prep.std = meta_floats(f, "input.std", h->prep.n_stats, 1);
    nnrt_prep_expand(&h->prep, m);
}

// ----------------------------------------------------------------------------
// the calls

/* Sets up the frame of an API call: the caller does `if (setjmp(fr.back)) …` right after. */
#define LIB_FRAME(fr, message, capacity) \
    lib_frame fr = {.msg = (message), .cap = (capacity)}; \
    lib_frame *const outer_##fr = frame

static int load(const nnrt_model *m, const char *src, const unsigned char *buf, size_t len, nnrt_lib **out, char *msg,
                size_t cap) {
    nnrt_lib *volatile h = NULL;
    st_file *volatile f = NULL;
    LIB_FRAME(fr, msg, cap);
    if (setjmp(fr.back)) {
        frame = outer_fr;
        if (f) { st_free(f); free(f); }
        nnrt_lib_free(h);
        return fr.code;
    }
    frame = &fr;
    h = nnrt_calloc(1, sizeof *h);
    h->m = m;
    f = nnrt_calloc(1, sizeof *f);
    f->src = src;
    st_parse(f, buf, len);
    h->ctx.model = m;
    h->ctx.params = aligned_calloc(m->params_numel * sizeof(float));
    load_params(f, m, h->ctx.params);
    load_prep(f, m, h);
    h->ctx.arena = aligned_calloc(m->arena_bytes);
    h->xb = aligned_calloc((size_t)m->max_batch * (size_t)m->input_dim * sizeof(float));
    st_free(f);
    free(f);
    frame = outer_fr;
    if (msg && cap) msg[0] = 0;
    *out = h;
    return NNRT_LIB_OK;
}

int nnrt_lib_load_memory(const nnrt_model *m, const void *buf, size_t len, nnrt_lib **out, char *msg, size_t cap) {
    if (!out || !m || (!buf && len)) {
        if (msg && cap) snprintf(msg, cap, "%s_load_memory: %s is NULL", m ? m->name : "nnrt_lib", out ? "buf" : "the model pointer");
        return NNRT_LIB_ERR_ARG;
    }
    *out = NULL;
    return load(m, "<memory>", buf, len, out, msg, cap);
}

int nnrt_lib_load_file(const nnrt_model *m, const char *path, nnrt_lib **out, char *msg, size_t cap) {
    if (!out || !m || !path) {
        if (msg && cap) snprintf(msg, cap, "%s_load_file: %s is NULL", m ? m->name : "nnrt_lib", out ? "path" : "the model pointer");
        return NNRT_LIB_ERR_ARG;
    }
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    long len = -1;
    if (fp && fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    unsigned char *buf = len >= 0 && fseek(fp, 0, SEEK_SET) == 0 ? malloc((size_t)len + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        if (msg && cap) snprintf(msg, cap, "%s: cannot read the weights file%s", path, fp ? "" : " (no such file, or no permission)");
        free(buf);
        if (fp) fclose(fp);
        return fp && len >= 0 && !buf ? NNRT_LIB_ERR_NOMEM : NNRT_LIB_ERR_IO;
    }
    fclose(fp);
    int r = load(m, path, buf, (size_t)len, out, msg, cap);
    free(buf);
    return r;
}

/* One batch of n ≤ max_batch rows: x through the preprocessing into h->xb, the generated predict, the softmax. */
static void predict_batch(nnrt_lib *h, const float *x, int n, float *probs) {
    const nnrt_model *m = h->m;
    const float *in = x;
    if (h->has_prep) {
        nnrt_array view = {.path = "x", .dtype = NNRT_F32, .n = n, .dim = m->input_dim, .data = (void *)x};
        for (int i = 0; i < n; i++) nnrt_prep_row(&h->prep, &view, i, h->xb + (size_t)i * (size_t)m->input_dim);
        in = h->xb;
    }
    m->predict(&h->ctx, n, in, probs);
    if (m->target_kind == NNRT_TARGET_CLASS) nnrt_softmax_rows(probs, n, m->output_dim);
}

int nnrt_lib_predict(nnrt_lib *h, const float *x, int n, float *probs) {
    if (!h) return NNRT_LIB_ERR_ARG;
    h->msg[0] = 0;
    if (n < 0 || (n > 0 && (!x || !probs))) {
        snprintf(h->msg, sizeof h->msg, "%s_predict: %s", h->m->name, n < 0 ? "n is negative" : x ? "probs is NULL" : "x is NULL");
        return NNRT_LIB_ERR_ARG;
    }
#if defined(__x86_64__) || defined(__i386__)
    const unsigned int csr = _mm_getcsr();  // the caller's floating-point mode, restored below
#endif
    LIB_FRAME(fr, h->msg, sizeof h->msg);
    if (setjmp(fr.back)) {
        frame = outer_fr;
#if defined(__x86_64__) || defined(__i386__)
        _mm_setcsr(csr);
#endif
        return fr.code;
    }
    frame = &fr;
    nnrt_flush_denormals();  // as the trainer computes (its --keep-denormals is off by default)
    const nnrt_model *m = h->m;
    for (int start = 0; start < n; start += m->max_batch) {
        int b = n - start < m->max_batch ? n - start : m->max_batch;
        predict_batch(h, x + (size_t)start * (size_t)m->input_dim, b, probs + (size_t)start * (size_t)m->output_dim);
    }
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(csr);
#endif
    frame = outer_fr;
    return NNRT_LIB_OK;
}
