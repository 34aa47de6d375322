/* fuzz_common.c — the allocator that forgets nothing, fz_run, and the models (fuzz.h). Compiled without the
 * renaming macros: here malloc and gzopen are the real ones. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"

// ----------------------------------------------------------------------------
// live blocks: a 64-byte header before each (keeps aligned_alloc's 64-byte alignment), in a doubly linked list

typedef struct block { struct block *prev, *next; size_t size; char pad[40]; } block;
_Static_assert(sizeof(block) == 64, "the header keeps 64-byte alignment");
static block live = {&live, &live, 0, {0}};

void *fz_malloc(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(block) + n) != 0) return NULL;
    block *b = p;
    b->size = n;
    b->next = live.next; b->prev = &live;
    live.next->prev = b; live.next = b;
    return b + 1;
}

void fz_free(void *p) {
    if (!p) return;
    block *b = (block *)p - 1;
    b->prev->next = b->next; b->next->prev = b->prev;
    free(b);
}

void *fz_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = fz_malloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *fz_realloc(void *p, size_t n) {
    void *q = fz_malloc(n);
    if (q && p) { size_t old = ((block *)p - 1)->size; memcpy(q, p, old < n ? old : n); }
    if (q || n == 0) fz_free(p);
    return q;
}

void *fz_aligned_alloc(size_t align, size_t n) { return align <= 64 ? fz_malloc(n) : NULL; }

char *fz_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = fz_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void free_all(void) {
    while (live.next != &live) fz_free(live.next + 1);
}

// ----------------------------------------------------------------------------
// open gzFiles

enum { MAX_GZ = 16 };
static gzFile open_gz[MAX_GZ];

gzFile fz_gzopen(const char *path, const char *mode) {
    gzFile g = gzopen(path, mode);
    for (int i = 0; g && i < MAX_GZ; i++) if (!open_gz[i]) { open_gz[i] = g; return g; }
    if (g) abort();  // more than MAX_GZ at once: the harness needs more slots
    return g;
}

int fz_gzclose(gzFile g) {
    for (int i = 0; i < MAX_GZ; i++) if (open_gz[i] == g) open_gz[i] = NULL;
    return gzclose(g);
}

static void close_all(void) {
    for (int i = 0; i < MAX_GZ; i++) if (open_gz[i]) { gzclose(open_gz[i]); open_gz[i] = NULL; }
}

// ----------------------------------------------------------------------------
// running one input

typedef struct { void (*fn)(const char *, int); const char *path; int role; } job;

static void run_job(void *arg) {
    job *j = arg;
    j->fn(j->path, j->role);
}

static char dir[256];

/* At exit (the end of a run; a crash keeps the files for a look), the directory and its files go. */
static void remove_dir(void) {
    DIR *d = opendir(dir);
    if (!d) return;
    char path[512];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void fz_run(const uint8_t *data, size_t size, const char *name, void (*fn)(const char *, int), int roles) {
    if (!dir[0]) {  // one directory per process (several fuzzers run at once), in memory when there is /dev/shm
        snprintf(dir, sizeof dir, "%s/nnrt-fuzz-%ld", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
        mkdir(dir, 0700);
        atexit(remove_dir);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    for (int role = 0; role < roles; role++) {
        char msg[1024];
        job j = {fn, path, role};
        int status = nnrt_try(run_job, &j, msg, sizeof msg);
        if (status != 0 && status != NNRT_EXIT_FAIL) { fprintf(stderr, "exit status %d: %s\n", status, msg); abort(); }
        if (status != 0 && !strstr(msg, path)) { fprintf(stderr, "an error without the file's name: %s\n", msg); abort(); }
        close_all();
        free_all();
    }
}

// ----------------------------------------------------------------------------
// the models

enum { D = 5, C = 3 };
static const nnrt_param params[] = {
    {"weight", 2, {C, D}, 0, C * D, NNRT_INIT_ZEROS, 0, 0, 1, 0},
    {"bias", 1, {C}, C * D, C, NNRT_INIT_ZEROS, 0, 0, 1, 0},
    {"seen", 0, {0}, C * D + C, 1, NNRT_INIT_ZEROS, 0, 0, 0, 1},
};
static const nnrt_hparam hparams[] = {{"lr", 0.1, "learning rate"}, {"momentum", 0, "momentum"}, {"weight_decay", 0, "L2"}};

const nnrt_model fz_class_model = {
    .name = "toy", .input_dim = D, .output_dim = C, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1, .max_batch = 8,
    .params_numel = C * D + C + 1, .state_numel = C * D + C + 1, .arena_bytes = 64, .n_params = 3, .params = params,
    .n_hparams = 3, .hparams = hparams, .default_batch = 4, .default_epochs = 2,
};

/* runtime/tests/toy_model.c -DTOY_LBFGS: the same tables with L-BFGS's hyperparameters, no state arena, "seen" F32 */
static const nnrt_param lbfgs_params[] = {
    {"weight", 2, {C, D}, 0, C * D, NNRT_INIT_ZEROS, 0, 0, 1, 0},
    {"bias", 1, {C}, C * D, C, NNRT_INIT_ZEROS, 0, 0, 1, 0},
    {"seen", 1, {1}, C * D + C, 1, NNRT_INIT_ZEROS, 0, 0, 0, 0},
};
static const nnrt_hparam lbfgs_hparams[] = {
    {"lr", 1, ""}, {"max_iter", 20, ""}, {"max_eval", 0, ""}, {"history_size", 10, ""}, {"tolerance_grad", 1e-7, ""},
    {"tolerance_change", 1e-9, ""}, {"l2", 0.05, ""},
};

const nnrt_model fz_lbfgs_model = {
    .name = "toy", .input_dim = D, .output_dim = C, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1, .max_batch = 16,
    .params_numel = C * D + C + 1, .state_numel = 0, .arena_bytes = 64, .n_params = 3, .params = lbfgs_params,
    .n_hparams = 7, .hparams = lbfgs_hparams, .default_batch = 4, .default_epochs = 2, .lbfgs = NNRT_LBFGS_STRONG_WOLFE,
};

const nnrt_model fz_dense_model = {
    .name = "toy", .input_dim = D, .output_dim = C, .target_kind = NNRT_TARGET_DENSE, .target_dim = C, .max_batch = 8,
    .params_numel = C * D + C + 1, .state_numel = C * D + C + 1, .arena_bytes = 64, .n_params = 3, .params = params,
    .n_hparams = 3, .hparams = hparams, .default_batch = 4, .default_epochs = 2,
};
