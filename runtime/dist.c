/* dist.c — data-parallel training over MPI (nnrt_dist.h). Built two ways: plain (every trainer; a world of one
 * rank, every hook a no-op) and, for `nncc compile --mpi`, with -DNNRT_MPI and mpicc's flags, linked with libmpi.
 *
 * Gradients: the parameter arena is cut into buckets of whole parameters in arena order (about NNRT_BUCKET_KB,
 * default 256 KiB). The generated train_step reports each parameter's gradient as final (nnrt_dist_grad_ready);
 * when a bucket's last trainable parameter is in, the bucket is scaled by this rank's share of the global batch and
 * its MPI_Iallreduce (sum, in place) starts, and every call tests the buckets in flight so that Open MPI, which has
 * no progress thread, moves them on while backward computes earlier layers. nnrt_dist_grads_wait, before the
 * optimizer update, waits for all of them. Every rank runs the same generated code, so the buckets start in the
 * same order everywhere, as MPI requires of collectives. NNRT_DIST_OVERLAP=0 reduces all buckets only at the wait
 * (in arena order, blocking MPI_Allreduce): the A/B of bench/mpi_scaling.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_dist.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"

#ifdef NNRT_MPI
#include <mpi.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#endif

// ----------------------------------------------------------------------------
// the world, and the parts that need no MPI

static int g_rank = 0, g_size = 1;

int nnrt_dist_rank(void) { return g_rank; }
int nnrt_dist_size(void) { return g_size; }

void nnrt_dist_shard(int64_t n, int64_t *lo, int *count) {
    int64_t a = n * g_rank / g_size, b = n * (g_rank + 1) / g_size;
    *lo = b > a ? a : 0;
    *count = b > a ? (int)(b - a) : 1;  // an empty slice trains sample 0 at weight 0 (nnrt_dist_step_begin)
}

#ifndef NNRT_MPI

void nnrt_dist_init(int *argc, char ***argv) { (void)argc; (void)argv; }
int nnrt_dist_finish(int status) { return status; }
int nnrt_dist_built(void) { return 0; }
void nnrt_dist_step_begin(nnrt_ctx *ctx, int64_t n) { (void)ctx; (void)n; }
float nnrt_dist_step_end(float loss) { return loss; }
void nnrt_dist_epoch_begin(nnrt_ctx *ctx) { (void)ctx; }
void nnrt_dist_epoch_end(nnrt_ctx *ctx) { (void)ctx; }
uint64_t nnrt_dist_check_same(const nnrt_ctx *ctx) { (void)ctx; return 0; }
void nnrt_dist_grad_ready(nnrt_ctx *ctx, size_t off, size_t numel) { (void)ctx; (void)off; (void)numel; }
void nnrt_dist_grads_wait(nnrt_ctx *ctx) { (void)ctx; }

#else

// ----------------------------------------------------------------------------
// start and end

int nnrt_dist_built(void) { return 1; }

/* mpirun ends the other ranks with SIGTERM when one fails or is killed (then SIGKILL): say so, in one line. */
static char g_prog[64] = "trainer";

static void put(const char *s) { (void)!write(STDERR_FILENO, s, strlen(s)); }

/* Only async-signal-safe calls: write and _exit. */
static void on_sigterm(int sig) {
    (void)sig;
    char digits[2][16];
    for (int k = 0; k < 2; k++) {  // g_rank and g_size in decimal
        int v = k ? g_size : g_rank, n = 0;
        char rev[16];
        do { rev[n++] = (char)('0' + v % 10); v /= 10; } while (v && n < 15);
        for (int i = 0; i < n; i++) digits[k][i] = rev[n - 1 - i];
        digits[k][n] = 0;
    }
    put(g_prog); put(": error: rank "); put(digits[0]); put(" of "); put(digits[1]);
    put(" stopped by mpirun: another rank failed or was killed, or the job was interrupted\n");
    _exit(NNRT_EXIT_FAIL);
}

void nnrt_dist_init(int *argc, char ***argv) {
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        nnrt_die("MPI_Init_thread failed (is this trainer run by mpirun?)");
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    if (*argc > 0) {
        const char *slash = strrchr((*argv)[0], '/');
        snprintf(g_prog, sizeof g_prog, "%s", slash ? slash + 1 : (*argv)[0]);
    }
    if (g_size > 1) signal(SIGTERM, on_sigterm);
    if (g_rank != 0) {  // rank 0 alone prints; errors and warnings (stderr) still come from any rank
        fflush(stdout);
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) { dup2(fd, STDOUT_FILENO); close(fd); }
    }
}

int nnrt_dist_finish(int status) {
    MPI_Finalize();
    return status;
}

// ----------------------------------------------------------------------------
// buckets of gradients

typedef struct {
    size_t lo, hi;        // floats [lo, hi) of the grads arena: whole parameters, contiguous
    int trainable;        // trainable parameters in it
    int left;             // of them, not reported ready in this step
    MPI_Request req;      // in flight when != MPI_REQUEST_NULL
} bucket;

static struct {
    const nnrt_model *model;
    int n;                // buckets
    bucket *b;
    int *param_bucket;    // (n_params) each parameter's bucket
    size_t *sorted_off;   // (n_params) parameter offsets, ascending, and their indices
    int *sorted_idx;
    float weight;         // this rank's share of the global batch in this step
    int overlap;          // start buckets during backward (NNRT_DIST_OVERLAP, default 1)
} g;

static int by_offset(const void *a, const void *b) {
    size_t x = g.model->params[*(const int *)a].offset, y = g.model->params[*(const int *)b].offset;
    return x < y ? -1 : x > y;
}

/* Cuts the arena into buckets of about cap bytes of whole parameters, in offset order. */
static void make_buckets(const nnrt_model *m) {
    g.model = m;
    const char *kb = getenv("NNRT_BUCKET_KB"), *ov = getenv("NNRT_DIST_OVERLAP");
    size_t cap = (kb && atol(kb) > 0 ? (size_t)atol(kb) : 256) * 1024 / sizeof(float);
    g.overlap = !(ov && strcmp(ov, "0") == 0);
    int np = m->n_params;
    g.sorted_idx = nnrt_calloc((size_t)np + 1, sizeof(int));
    g.sorted_off = nnrt_calloc((size_t)np + 1, sizeof(size_t));
    g.param_bucket = nnrt_calloc((size_t)np + 1, sizeof(int));
    g.b = nnrt_calloc((size_t)np + 1, sizeof(bucket));
    for (int i = 0; i < np; i++) g.sorted_idx[i] = i;
    qsort(g.sorted_idx, (size_t)np, sizeof(int), by_offset);
    g.n = 0;
    for (int k = 0; k < np; k++) {
        const nnrt_param *p = &m->params[g.sorted_idx[k]];
        g.sorted_off[k] = p->offset;
        bucket *cur = g.n ? &g.b[g.n - 1] : NULL;
        if (!cur || cur->hi - cur->lo >= cap) {
            cur = &g.b[g.n++];
            cur->lo = p->offset;
            cur->req = MPI_REQUEST_NULL;
        }
        cur->hi = p->offset + p->numel;
        cur->trainable += p->trainable;
        g.param_bucket[g.sorted_idx[k]] = g.n - 1;
    }
}

void nnrt_dist_step_begin(nnrt_ctx *ctx, int64_t n) {
    if (!g.model) make_buckets(ctx->model);
    int64_t a = n * g_rank / g_size, b = n * (g_rank + 1) / g_size;  // nnrt_dist_shard's slice
    g.weight = (float)((double)(b - a) / (double)n);
    for (int i = 0; i < g.n; i++) g.b[i].left = g.b[i].trainable;
}

static void start_bucket(nnrt_ctx *ctx, bucket *b) {
    float *v = ctx->grads + b->lo, w = g.weight;
    size_t len = b->hi - b->lo;
    if (w != 1.0f)
        for (size_t i = 0; i < len; i++) v[i] *= w;
    MPI_Iallreduce(MPI_IN_PLACE, v, (int)len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &b->req);
}

/* The index of the parameter at offset off (parameters do not overlap). */
static int param_at(size_t off) {
    int lo = 0, hi = g.model->n_params - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (g.sorted_off[mid] <= off) lo = mid; else hi = mid - 1;
    }
    return g.sorted_idx[lo];
}

void nnrt_dist_grad_ready(nnrt_ctx *ctx, size_t off, size_t numel) {
    (void)numel;
    if (g_size == 1 || !g.overlap) return;
    bucket *b = &g.b[g.param_bucket[param_at(off)]];
    if (--b->left == 0) start_bucket(ctx, b);
    for (int i = 0; i < g.n; i++) {  // progress: Open MPI moves a non-blocking collective on only inside MPI calls
        int done;
        if (g.b[i].req != MPI_REQUEST_NULL) MPI_Test(&g.b[i].req, &done, MPI_STATUS_IGNORE);
    }
}

void nnrt_dist_grads_wait(nnrt_ctx *ctx) {
    if (g_size == 1) return;
    for (int i = 0; i < g.n; i++) {
        bucket *b = &g.b[i];
        if (!g.overlap) {
            float *v = ctx->grads + b->lo, w = g.weight;
            for (size_t k = 0; k < b->hi - b->lo; k++) v[k] *= w;
            MPI_Allreduce(MPI_IN_PLACE, v, (int)(b->hi - b->lo), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        } else if (b->left > 0) {  // a parameter the step never reported (a gradient no kernel writes): reduce it now
            b->left = 0;
            start_bucket(ctx, b);
        }
    }
    for (int i = 0; i < g.n; i++)
        if (g.b[i].req != MPI_REQUEST_NULL) MPI_Wait(&g.b[i].req, MPI_STATUS_IGNORE);
}

// ----------------------------------------------------------------------------
// the loss, the generators, the buffers

float nnrt_dist_step_end(float loss) {
    if (g_size == 1) return loss;
    double v = (double)g.weight * (double)loss, sum;
    MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return (float)sum;
}

void nnrt_dist_epoch_begin(nnrt_ctx *ctx) {
    if (g_size == 1) return;
    MPI_Bcast(ctx->rng, 4, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (g_rank > 0) {  // a stream of its own, a function of rank 0's state and the rank
        uint64_t s0 = ctx->rng[0] ^ (ctx->rng[1] << 1) ^ (ctx->rng[2] << 2) ^ (ctx->rng[3] << 3);
        nnrt_rng_seed_at(ctx->rng, s0, NNRT_STREAM_MODEL, (uint64_t)g_rank, (uint64_t)ctx->epoch);
    }
}

void nnrt_dist_epoch_end(nnrt_ctx *ctx) {
    if (g_size == 1) return;
    const nnrt_model *m = ctx->model;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable) MPI_Bcast(ctx->params + p->offset, (int)p->numel, MPI_FLOAT, 0, MPI_COMM_WORLD);
    }
}

/* FNV-1a over the bytes of the parameter arena. */
static uint64_t params_hash(const nnrt_ctx *ctx) {
    const unsigned char *p = (const unsigned char *)ctx->params;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < ctx->model->params_numel * sizeof(float); i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

uint64_t nnrt_dist_check_same(const nnrt_ctx *ctx) {
    uint64_t h = params_hash(ctx), lo, hi;
    if (g_size == 1) return h;
    MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi) nnrt_die("internal: the %d ranks' weights differ after training (hashes %016llx and %016llx)", g_size,
                           (unsigned long long)lo, (unsigned long long)hi);
    return h;
}

#endif
