/* parallel.c — the trainer's second core: one persistent worker thread that runs part of a kernel while the
 * calling thread runs the rest.
 *
 * nnrt_par2(fn, arg): fn(arg, 0) runs on the worker, fn(arg, 1) on the caller, and nnrt_par2 returns when both
 * are done. The generated code splits each large GEMM (with its fused epilogue) and the optimizer loop into a
 * few chunks of rows or columns and calls nnrt_par_chunks, which runs them on both threads from opposite ends.
 * OpenBLAS itself stays at one thread: at batch 128 its own threading costs more than it gains (BENCHMARKS.md),
 * while a hand-off here costs a few hundred nanoseconds.
 *
 * The hand-off spins (a step posts a job every ~100 µs); a worker idle for longer blocks on a condition
 * variable, so a trainer that is loading data or evaluating does not burn the second core.
 *
 * nnrt_par_background(fn, arg, count) hands the worker pieces fn(arg, 0..count−1) to run while it waits for
 * jobs (while the caller runs a step's small serial kernels, say); nnrt_par_background_finish runs on the caller
 * whatever pieces the worker has not claimed and returns when all are done. The training loop gathers the next
 * batch this way. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "nnrt_compute.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()  // the PAUSE instruction, without the cost of parsing immintrin.h
#else
#define CPU_RELAX() ((void)0)
#endif

enum { SPINS_BEFORE_SLEEP = 200000 };  // ~1–2 ms of _mm_pause

static int threads = 1;                 // 1: run both halves on the caller
static int flush_denormals;
static pthread_t worker;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static _Atomic unsigned posted, finished;
static _Atomic int sleeping;
static void (*job_fn)(void *, int);
static void *job_arg;

/* Background work (nnrt_par_background): `count` pieces, claimed one at a time by the worker while it has no job
 * and by the caller in nnrt_par_background_finish. `state` packs the job's piece count (high 32 bits) and the
 * next unclaimed piece (low 32); a piece is claimed by a compare-and-swap of it, and fn and arg are read only
 * after a successful one. The caller changes fn and arg only when every piece is claimed and `done` says each
 * one finished, and publishes them with the store to `state` that makes pieces claimable again: a worker whose
 * claim races with a new job can only claim a piece of that new job, which it then runs with its fn and arg. */
static struct {
    void (*fn)(void *, int);
    void *arg;
    _Atomic uint64_t state;
    _Atomic int done;
} bg;

static uint32_t bg_count_of(uint64_t state) { return (uint32_t)(state >> 32); }

static int claim_background(void) {
    uint64_t s = atomic_load(&bg.state);
    while ((uint32_t)s < (uint32_t)(s >> 32))
        if (atomic_compare_exchange_weak(&bg.state, &s, s + 1)) return (int)(uint32_t)s;
    return -1;
}

static void run_background(int piece) {
    bg.fn(bg.arg, piece);
    atomic_fetch_add(&bg.done, 1);
}

static void *worker_main(void *unused) {
    (void)unused;
    if (flush_denormals) nnrt_flush_denormals();  // MXCSR is per thread
    unsigned seen = 0;
    for (;;) {
        for (int spins = 0; atomic_load(&posted) == seen;) {
            int piece = claim_background();
            if (piece >= 0) { run_background(piece); spins = 0; continue; }
            if (++spins < SPINS_BEFORE_SLEEP) { CPU_RELAX(); continue; }
            pthread_mutex_lock(&mu);
            atomic_store(&sleeping, 1);
            while (atomic_load(&posted) == seen) pthread_cond_wait(&cv, &mu);
            atomic_store(&sleeping, 0);
            pthread_mutex_unlock(&mu);
        }
        seen = atomic_load(&posted);
        job_fn(job_arg, 0);
        atomic_store(&finished, seen);
    }
    return NULL;
}

void nnrt_parallel_init(int requested, int flush) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    threads = requested > 0 ? requested : (cores >= 2 ? 2 : 1);
    if (threads > 2) threads = 2;
    flush_denormals = flush;
    if (threads == 2 && pthread_create(&worker, NULL, worker_main, NULL) != 0) threads = 1;
    if (threads == 2) pthread_detach(worker);
}

int nnrt_parallel_threads(void) { return threads; }

/* 1 while a job runs. A job must not start another: with two threads the worker would wait for itself, and
 * nnrt_par_chunks keeps its job in one static struct. The generated code never nests them; this catches a
 * runtime or codegen change that would, on one thread as on two. */
static _Atomic int in_job;

static void enter_job(void) {
    if (atomic_exchange(&in_job, 1)) nnrt_die("internal error: nnrt_par2 or nnrt_par_chunks called from inside a parallel job");
}

void nnrt_par2(void (*fn)(void *arg, int part), void *arg) {
    enter_job();
    if (threads < 2) {
        fn(arg, 0);
        fn(arg, 1);
        atomic_store(&in_job, 0);
        return;
    }
    job_fn = fn;
    job_arg = arg;
    unsigned seq = atomic_load(&posted) + 1;
    atomic_store(&posted, seq);  // publishes job_fn and job_arg (sequentially consistent)
    if (atomic_load(&sleeping)) {
        pthread_mutex_lock(&mu);
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
    fn(arg, 1);
    while (atomic_load(&finished) != seq) CPU_RELAX();
    atomic_store(&in_job, 0);
}

/* Chunks from opposite ends: the worker takes 0, 1, 2, …, the caller count−1, count−2, …, each claiming a chunk
 * in `claimed` before running it, and stopping at the first chunk the other thread already has (from there on
 * everything is the other's). With both threads at the same speed each runs the half a fixed split would give
 * it, so each keeps working on the same rows of a weight from step to step (in its own cache); when the shared
 * machine slows one thread down, the other takes over a chunk or two instead of waiting. The job lives in one
 * static struct: only the main thread may call nnrt_par_chunks, never a chunk itself (enter_job checks). */
static struct {
    void (*fn)(void *, int);
    void *arg;
    int count;
    _Atomic uint64_t claimed;
} chunks;

static void run_chunks(void *unused, int part) {
    (void)unused;
    for (int i = 0; i < chunks.count; i++) {
        int c = part == 0 ? i : chunks.count - 1 - i;
        uint64_t bit = (uint64_t)1 << c;
        if (atomic_fetch_or(&chunks.claimed, bit) & bit) break;
        chunks.fn(chunks.arg, c);
    }
}

void nnrt_par_chunks(void (*fn)(void *arg, int chunk), void *arg, int count) {
    if (threads < 2 || count < 2) {
        enter_job();
        for (int c = 0; c < count; c++) fn(arg, c);
        atomic_store(&in_job, 0);
        return;
    }
    if (count > 64) nnrt_die("internal error: nnrt_par_chunks with %d chunks (at most 64)", count);
    chunks.fn = fn;
    chunks.arg = arg;
    chunks.count = count;
    atomic_store(&chunks.claimed, 0);
    nnrt_par2(run_chunks, NULL);  // publishes the fields above before the worker starts
}

void nnrt_par_background(void (*fn)(void *arg, int piece), void *arg, int count) {
    uint64_t s = atomic_load(&bg.state);
    if ((uint32_t)s < bg_count_of(s) || (uint32_t)atomic_load(&bg.done) != bg_count_of(s))
        nnrt_die("internal error: nnrt_par_background called before the previous background job finished");
    bg.fn = fn;
    bg.arg = arg;
    atomic_store(&bg.done, 0);
    atomic_store(&bg.state, (uint64_t)(uint32_t)count << 32);  // publishes fn and arg
}

void nnrt_par_background_finish(void) {
    for (int piece; (piece = claim_background()) >= 0;) run_background(piece);
    int count = (int)bg_count_of(atomic_load(&bg.state));
    while (atomic_load(&bg.done) != count) CPU_RELAX();
}
