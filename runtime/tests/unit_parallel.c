/* unit_parallel.c — unit tests of the compute layer's setup: the worker thread (nnrt_par2, nnrt_par_chunks,
 * background pieces), the denormal flush, the OpenBLAS core choice. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>

#include "unit.h"

/* nnrt_par2 runs part 0 on the worker thread and part 1 on the caller, and returns only when both are done. */
typedef struct { pthread_t who[2]; double sum[2]; const double *x; int n; } par_job;
static void par_part(void *arg, int part) {
    par_job *j = arg;
    j->who[part] = pthread_self();
    double s = 0;
    for (int i = part * j->n / 2; i < (part + 1) * j->n / 2; i++) s += j->x[i];
    j->sum[part] = s;
}

/* Each chunk records how often it ran and on which thread; chunks of the slowed-down thread sleep a little. */
typedef struct { int runs[64]; pthread_t who[64]; int slow_caller; pthread_t caller; } chunk_job;
static void chunk_part(void *arg, int c) {
    chunk_job *j = arg;
    j->runs[c]++;
    j->who[c] = pthread_self();
    struct timespec ms20 = {0, 20000000};
    if (j->slow_caller && pthread_equal(pthread_self(), j->caller)) nanosleep(&ms20, NULL);
}

/* A chunk that starts another parallel job: an internal error (exit 1), on one thread as on two. */
static void nested_chunk(void *arg, int c) {
    (void)c;
    chunk_job *j = arg;
    nnrt_par_chunks(chunk_part, j, 4);
}
static void run_nested(const void *arg) {
    (void)arg;
    alarm(10);  // without the check the child would wait forever for a worker it does not have (fork keeps one thread)
    static chunk_job j;
    nnrt_par_chunks(nested_chunk, &j, 8);
}
static void nested_part(void *arg, int part) {
    (void)arg; (void)part;
    nnrt_par2(par_part, NULL);
}
static void run_nested_par2(const void *arg) {
    (void)arg;
    alarm(10);
    nnrt_par2(nested_part, NULL);
}

void test_chunks(void) {
    int once = 1, ends = 1;
    static const int counts[] = {1, 2, 3, 7, 8, 63, 64};
    for (int rep = 0; rep < 300; rep++) {
        for (unsigned q = 0; q < sizeof counts / sizeof *counts; q++) {
            chunk_job j;
            memset(&j, 0, sizeof j);
            int n = counts[q];
            nnrt_par_chunks(chunk_part, &j, n);
            for (int c = 0; c < 64; c++) once &= j.runs[c] == (c < n);
            // The worker's chunks are a prefix and the caller's a suffix (where they meet depends on timing).
            int c = 0;
            while (c < n && !pthread_equal(j.who[c], pthread_self())) c++;
            while (c < n && pthread_equal(j.who[c], pthread_self())) c++;
            ends &= c == n;
        }
    }
    CHECK("par_chunks runs every chunk exactly once", once);
    CHECK("par_chunks: the worker runs a prefix of the chunks, the caller the rest", ends);
    // A caller that is slow on its chunks leaves more of them to the worker.
    chunk_job j;
    memset(&j, 0, sizeof j);
    j.caller = pthread_self();
    j.slow_caller = 1;
    nnrt_par_chunks(chunk_part, &j, 8);
    int worker = 0, all = 1;
    for (int c = 0; c < 8; c++) {
        all &= j.runs[c] == 1;
        worker += !pthread_equal(j.who[c], pthread_self());
    }
    CHECK("par_chunks: the faster thread takes over chunks", all && (worker >= 5 || nnrt_parallel_threads() < 2));
    EXPECT_DIE("par_chunks inside a chunk", 1, "internal error: nnrt_par2 or nnrt_par_chunks called from inside a parallel job", run_nested, NULL);
    EXPECT_DIE("par2 inside a par2 job", 1, "called from inside a parallel job", run_nested_par2, NULL);
    // After the children died, the parent's own jobs still run (the flag is per process and was cleared).
    memset(&j, 0, sizeof j);
    nnrt_par_chunks(chunk_part, &j, 8);
    int again = 1;
    for (int c = 0; c < 8; c++) again &= j.runs[c] == 1;
    CHECK("par_chunks after the nested-job checks", again);
}

enum { BG_PIECES = 37 };
typedef struct { pthread_t caller; _Atomic int runs[BG_PIECES]; _Atomic int on_worker; } bg_job;

static void bg_piece(void *arg, int piece) {
    bg_job *j = arg;
    atomic_fetch_add(&j->runs[piece], 1);
    if (!pthread_equal(pthread_self(), j->caller)) atomic_fetch_add(&j->on_worker, 1);
    double t = nnrt_now();
    while (nnrt_now() - t < 1e-6) {}
}

void test_parallel(void) {
    enum { N = 1 << 16 };
    static double x[N];
    for (int i = 0; i < N; i++) x[i] = i % 7;
    nnrt_parallel_init(2, 1);
    CHECK("two threads on a multi-core machine", nnrt_parallel_threads() == 2 || sysconf(_SC_NPROCESSORS_ONLN) < 2);
    int ok = 1;
    for (int rep = 0; rep < 2000; rep++) {   // many hand-offs: a lost wake-up or early return shows up here
        par_job j = {.x = x, .n = N};
        nnrt_par2(par_part, &j);
        double want = 0;
        for (int i = 0; i < N; i++) want += x[i];
        ok &= j.sum[0] + j.sum[1] == want;
        if (nnrt_parallel_threads() == 2) ok &= !pthread_equal(j.who[0], j.who[1]) && pthread_equal(j.who[1], pthread_self());
    }
    CHECK("par2 runs both halves, the first on the worker", ok);

    // The batch gather splits its rows over both threads and gives what one thread gives.
    enum { R = 300, D = 200, B = 257 };
    static uint8_t pixels[R * D];
    static float two[B * D];
    int64_t order[B];
    for (int i = 0; i < R * D; i++) pixels[i] = (uint8_t)(i * 31);
    for (int b = 0; b < B; b++) order[b] = (b * 7) % R;
    nnrt_array images = {.dtype = NNRT_U8, .n = R, .dim = D, .data = pixels};
    nnrt_gather_x(&images, order, B, two);
    int same = 1;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < D; k++) same &= two[b * D + k] == pixels[order[b] * D + k] / 255.0f;
    CHECK("parallel gather equals the rows it gathers", same);

    // Background pieces: each runs exactly once, some on the worker while the caller is busy, the rest in finish.
    int once = 1, by_worker = 0;
    for (int rep = 0; rep < 300; rep++) {
        bg_job j = {.caller = pthread_self()};
        nnrt_par_background(bg_piece, &j, BG_PIECES);
        if (rep % 2) {   // a busy caller: a parallel job, or a spin, in between
            par_job p = {.x = x, .n = N};
            nnrt_par2(par_part, &p);
        } else {
            double t = nnrt_now();
            while (nnrt_now() - t < 20e-6) {}
        }
        nnrt_par_background_finish();
        for (int i = 0; i < BG_PIECES; i++) once &= atomic_load(&j.runs[i]) == 1;
        by_worker += atomic_load(&j.on_worker);
    }
    CHECK("background pieces each run once, finished by the caller", once);
    CHECK("the worker runs background pieces while it has no job", by_worker > 0 || nnrt_parallel_threads() < 2);

    // The next batch gathered in the background equals the batch gathered in the foreground, x and y.
    static float three[B * D];
    int32_t labels[R], y_two[B], y_three[B];
    for (int r = 0; r < R; r++) labels[r] = r * 3 + 1;
    nnrt_dataset d = {.x = images, .y = {.dtype = NNRT_I32, .n = R, .dim = 1, .data = labels}};
    nnrt_gather_y(&d.y, order, B, y_two);
    int same_bg = 1;
    for (int b = 0; b < B; b++) same_bg &= y_two[b] == labels[order[b]];
    for (int n = 1; n <= B; n += 64) {
        memset(three, 0, sizeof three);
        memset(y_three, 0, sizeof y_three);
        nnrt_gather_background(&d, order, n, three, y_three, NULL);
        double t = nnrt_now();
        while (nnrt_now() - t < 5e-6) {}
        nnrt_par_background_finish();
        same_bg &= memcmp(two, three, (size_t)n * D * sizeof(float)) == 0 && memcmp(y_two, y_three, (size_t)n * 4) == 0;
    }
    CHECK("background gather equals the foreground gather (x and y)", same_bg);
}

/* After nnrt_flush_denormals a product in the subnormal range is zero, and a subnormal input reads as zero. */
void test_denormals(void) {
    volatile float tiny = 1e-30f, scale = 1e-10f, sub = 1e-40f;
    CHECK("subnormal arithmetic before the flush", tiny * scale != 0.0f);
    nnrt_flush_denormals();
    CHECK("flush to zero", tiny * scale == 0.0f);
    CHECK("denormals are zero", sub * 1.0f == 0.0f);
}

/* blas.c's choice of OpenBLAS core: SkylakeX on a CPU with AVX-512 BW. */
void test_blas_core(void) {
    char why[128];
    const char *core = nnrt_blas_pick_core(why, sizeof why);
    __builtin_cpu_init();
    CHECK("blas core from cpu features", __builtin_cpu_supports("avx512bw") ? core && strcmp(core, "SkylakeX") == 0 : 1);
}
