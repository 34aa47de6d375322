/* nnrt_monitor.h — per-layer statistics of training (monitor.c): `train --monitor every:N` and the doctor.
 *
 * Every N steps the trainer runs train_step_monitor (emitted by `nncc compile --monitor`) instead of train_step and
 * writes one JSONL line for that step (keys in docs/trainer.md, "Monitoring"):
 *   per trainable parameter P:  "w_norm/P" ‖W‖₂ after the update, "g_norm/P" ‖∂L/∂W‖₂, "update_ratio/P" ‖ΔW‖₂ / ‖W‖₂
 *                               (‖ΔW‖ over the weights before the update);
 *   per forward activation A:   "act_mean/A", "act_std/A" (population), "act_zero/A" (the fraction exactly 0), and
 *                               for a ReLU "act_dead/A" (the fraction of units 0 on every sample), for tanh and sigmoid
 *                               "act_saturated/A", and "histograms":{"act/A":{…}} in TensorBoard's HistogramProto
 *                               fields (MetricsLog's format).
 */
#ifndef NNRT_MONITOR_H
#define NNRT_MONITOR_H

#include <stdint.h>
#include <stdio.h>

#include "nnrt_model.h"

enum { NNRT_MONITOR_BINS = 30, NNRT_MONITOR_MAX_ACTS = 64 };

/* One activation's statistics over all n·per_sample values of a batch, in float64. The histogram has
   NNRT_MONITOR_BINS equal buckets from min to max: bucket i counts the values in (limit[i−1], limit[i]] (the first
   from min, inclusive), i = ceil((v − min) / w) − 1 clamped to [0, bins), w = (max − min) / bins; one bucket when
   max == min. */
typedef struct {
    char name[64];
    char kind[16];      // "relu", "tanh", "sigmoid" or "" (what computed it, from the compiler)
    int64_t num;
    double mean, std, frac_zero, min, max, sum, sum_squares;
    int bins;
    double limit[NNRT_MONITOR_BINS], count[NNRT_MONITOR_BINS];
    int units;          // per_sample: the features (for an image, every channel and position) of one sample
    double frac_dead;   // the fraction of units that are 0 for every sample of the batch (a dead ReLU)
    double frac_saturated;  // tanh: the fraction of values with |v| ≥ 0.99; sigmoid: v ≤ 0.01 or v ≥ 0.99; else 0
} nnrt_act_stats;

/* A trainable parameter's statistics at a monitored step. */
typedef struct { double w_norm, g_norm, update_ratio; } nnrt_param_stats;

typedef struct nnrt_monitor {
    int64_t every;              // a monitored step every `every` steps
    FILE *jsonl;                // where the lines go (train's --log); NULL: kept, not written (the doctor)
    float *before;              // (params_numel) the weights before a monitored step
    int n_acts;
    nnrt_act_stats acts[NNRT_MONITOR_MAX_ACTS];
    nnrt_param_stats *params;   // (n_params) of the last monitored step
} nnrt_monitor;

/* "every:N" → N (N ≥ 1); a usage error (exit 2) naming --monitor otherwise. */
int64_t nnrt_monitor_parse(const char *spec);
/* Sets up a monitor for ctx (ctx->monitor points at it); dies unless the model was compiled with --monitor. */
void nnrt_monitor_start(nnrt_monitor *mon, nnrt_ctx *ctx, int64_t every, FILE *jsonl);
void nnrt_monitor_stop(nnrt_monitor *mon, nnrt_ctx *ctx);
/* The step the trainer takes: train_step_monitor with the statistics (and their JSONL line) when ctx->step (already
   counted) is a multiple of `every`, else train_step. */
float nnrt_monitor_train_step(nnrt_ctx *ctx, int n, const float *x, const void *y);
/* One activation's statistics, (n, per_sample) values of the given kind (also for tests and the doctor). */
void nnrt_act_stats_compute(nnrt_act_stats *s, const char *kind, const float *v, int n, int per_sample);
/* Each trainable parameter's statistics (out: n_params, others left as they are) from the weights before and after
   a step and its gradients; the update ratio of a parameter whose norm was 0 is ‖ΔW‖₂ itself. */
void nnrt_param_stats_compute(const nnrt_model *m, const float *before, const float *after, const float *grads,
                              nnrt_param_stats *out);

#endif
