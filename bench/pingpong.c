/* pingpong.c — how long one cache line takes to go from one CPU to the other and back: the cost of every
 * byte that one of the trainer's threads writes and the other then reads (a chunk's output, the next kernel's
 * input; the hand-off itself).
 *
 * Thread A, pinned to CPU 0, sets a flag to 1 and waits for 0; thread B, pinned to CPU 1, waits for 1 and sets
 * 0. Prints the median round trip over 5 runs of 10^6. Two cores that share an L3 pass a line in tens of
 * nanoseconds; a few hundred says the line goes through the memory fabric.
 *
 *   cc -O2 bench/pingpong.c -o pingpong -lpthread && ./pingpong */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"

enum { ROUNDS = 1000000, RUNS = 5 };
static _Alignas(64) _Atomic int flag;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "pingpong: cannot pin a thread to CPU %d (this needs two CPUs)\n", cpu);
        exit(1);
    }
}

static void *echo(void *unused) {
    (void)unused;
    pin(1);
    for (int r = 0; r < RUNS * ROUNDS; r++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1) continue;
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return NULL;
}


int main(void) {
    pin(0);
    pthread_t t;
    if (pthread_create(&t, NULL, echo, NULL) != 0) return 1;
    double ns[RUNS];
    for (int run = 0; run < RUNS; run++) {
        double t0 = bench_now();
        for (int r = 0; r < ROUNDS; r++) {
            atomic_store_explicit(&flag, 1, memory_order_release);
            while (atomic_load_explicit(&flag, memory_order_acquire) != 0) continue;
        }
        ns[run] = (bench_now() - t0) * 1e9 / ROUNDS;
    }
    pthread_join(t, NULL);
    qsort(ns, RUNS, sizeof ns[0], bench_cmp_double);
    printf("CPU 0 -> CPU 1 -> CPU 0: median %.0f ns a round trip (runs %.0f-%.0f ns)\n", ns[RUNS / 2], ns[0], ns[RUNS - 1]);
    return 0;
}
