/* nnrt_profile.h — train --profile (profile.c): where a training run's time goes. */
#ifndef NNRT_PROFILE_H
#define NNRT_PROFILE_H

#include <stdint.h>
#include <stdio.h>

#include "nnrt_model.h"

/* Seconds since the start of training (never reset; per-epoch views are differences of snapshots). */
typedef struct {
    int64_t epochs, steps, samples;
    double kernel[NNRT_PROF_KINDS];  // inside train_step, per NNRT_PROF kind (gemm, elementwise, row-wise, optimizer)
    double step;                     // the train_step calls as a whole
    double gather;                   // building batches: rows gathered, uint8 converted to float
    double log;                      // per-step JSONL and progress bar
    double train;                    // the timed epochs (the sum of the JSONL "seconds")
    double shuffle, eval;            // per epoch, outside the timed part
    double load, init;               // once: data files, parameter init (or --init)
    double timer_ns;                 // cost of one nnrt_now(), for judging the overhead
} nnrt_profile;

/* Moves ctx->prof[] (what the generated code accumulated) into p->kernel and zeroes it. */
void nnrt_profile_take_kernels(nnrt_profile *p, nnrt_ctx *ctx);
/* train_step time not spent in any wrapped kernel (clamped at 0). */
double nnrt_profile_other(const nnrt_profile *p);
/* now − before, field by field (timer_ns, load and init are taken from now). */
nnrt_profile nnrt_profile_diff(const nnrt_profile *now, const nnrt_profile *before);
/* One indented line for an epoch's difference: ms per step per kind, gather, eval. */
void nnrt_profile_epoch_line(FILE *f, const nnrt_profile *epoch);
/* The table printed after training. */
void nnrt_profile_report(FILE *f, const nnrt_profile *p);
/* The per-kernel table: each timed call of train_step (m->train_kernels) with ms/step and its share of the step,
   slowest first; nothing when the model has no names or kprof is NULL. */
void nnrt_profile_kernels_report(FILE *f, const nnrt_model *m, const double *kprof, const nnrt_profile *p);
/* {"profile":{"epochs":…,"steps":…,"samples":…,"gemm_s":…,…,"timer_ns":…,"kernels_s":{name:seconds,…}}} and a
   newline; kernels_s only with m and kprof (and names in the model). */
void nnrt_profile_json(FILE *f, const nnrt_profile *p, const nnrt_model *m, const double *kprof);
/* Nanoseconds per nnrt_now() call (best of a few rounds). */
double nnrt_timer_cost_ns(void);

#endif
