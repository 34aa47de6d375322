/* nnrt_lib.c — the exported inference library's handle (nnrt_lib.h): the weights read by the trainer's own reader
 * (st_read.c, the same checks and messages), the input preprocessing the file keeps (applied by prep.c, the
 * trainer's code), the batch loop over the generated predict and softmax.c, and what those runtime files need from
 * the layers below them (errors, allocation, the clock, the two-thread calls run on the caller).
 *
 * Errors: a runtime file's nnrt_die (and every check here) records the code and message in the frame of the API
 * call in progress on this thread and longjmps back to it (thread-local, so two threads never see each other's).
 * The code is the frame's phase (reading the header: FORMAT; fitting the model: WEIGHTS; predicting: INTERNAL),
 * except that a corrupt file is FORMAT in any phase. What a failed load allocated is held by its reader and its
 * handle, which the API call frees. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_lib.h"
#include "nnrt_safetensors.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

// ----------------------------------------------------------------------------
// errors: one frame per API call in progress on this thread

typedef struct {
    jmp_buf back;
    int code;
    int phase;      // the code of nnrt_die's errors now
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
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int corrupt = strstr(msg, ": corrupt safetensors") || strstr(msg, ": not a safetensors");
    fail(corrupt ? NNRT_LIB_ERR_FORMAT : frame ? frame->phase : NNRT_LIB_ERR_INTERNAL, "%s", msg);
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

int64_t nnrt_mul_dims(int64_t a, int64_t b, const char *path) {
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        nnrt_die("%s: dimensions overflow (%lld x %lld)", path, (long long)a, (long long)b);
    return r;
}

/* "(256, 784)", "(128,)": st_read.c's messages (data.c's, which the library does not compile). */
char *nnrt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "(");
    for (int d = 0; d < ndim && k < cap; d++) k += (size_t)snprintf(buf + k, cap - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, ndim == 1 ? ",)" : ")");
    return buf;
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
// the input preprocessing the weights file keeps (the trainer's weights.c writes it; prep.c applies it)

static NNRT_NORETURN void bad_meta(const nnrt_st *f, const char *key, const char *value, const char *expected) {
    fail(NNRT_LIB_ERR_WEIGHTS, "%s: metadata '%s' is '%.60s', expected %s", nnrt_st_path(f), key, value ? value : "", expected);
}

static float *meta_floats(const nnrt_st *f, const char *key, int64_t n, int positive) {
    const char *v = nnrt_st_meta(f, key);
    if (!v) fail(NNRT_LIB_ERR_WEIGHTS, "%s: metadata 'input.normalize' is set but '%s' is missing", nnrt_st_path(f), key);
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

static void load_prep(const nnrt_st *f, const nnrt_model *m, nnrt_lib *h) {
    const char *scale = nnrt_st_meta(f, "input.scale"), *norm = nnrt_st_meta(f, "input.normalize");
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
    lib_frame fr = {.msg = (message), .cap = (capacity), .phase = NNRT_LIB_ERR_INTERNAL}; \
    lib_frame *const outer_##fr = frame

static int load(const nnrt_model *m, const char *src, const char *buf, size_t len, nnrt_lib **out, char *msg, size_t cap) {
    nnrt_lib *volatile h = NULL;
    nnrt_st *volatile f = NULL;
    LIB_FRAME(fr, msg, cap);
    if (setjmp(fr.back)) {
        frame = outer_fr;
        nnrt_st_free(f);
        nnrt_lib_free(h);
        return fr.code;
    }
    frame = &fr;
    fr.phase = NNRT_LIB_ERR_NOMEM;
    h = nnrt_calloc(1, sizeof *h);
    h->m = m;
    h->ctx.model = m;
    h->ctx.params = aligned_calloc(m->params_numel * sizeof(float));
    h->ctx.arena = aligned_calloc(m->arena_bytes);
    h->xb = aligned_calloc((size_t)m->max_batch * (size_t)m->input_dim * sizeof(float));
    f = nnrt_st_new(src);
    fr.phase = NNRT_LIB_ERR_FORMAT;
    nnrt_st_parse(f, buf, len, 0);
    fr.phase = NNRT_LIB_ERR_WEIGHTS;
    nnrt_st_load_weights(f, m, h->ctx.params);  // the trainer's strict load: every parameter, nothing unknown
    load_prep(f, m, h);
    nnrt_st_free(f);
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
    struct stat st;
    long len = -1;
    if (fp && fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    char *buf = len >= 0 && fseek(fp, 0, SEEK_SET) == 0 ? malloc((size_t)len + 1) : NULL;
    if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len) {
        if (msg && cap) snprintf(msg, cap, "%s: cannot read the weights file%s", path, !fp ? " (no such file, or no permission)" : len < 0 ? " (not a regular file)" : "");
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
