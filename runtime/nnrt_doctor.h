/* nnrt_doctor.h — the doctor command's shared state and pieces: doctor_run.c (the short runs and the verdict lines),
 * doctor_lr.c (the learning-rate range test and its SVG curve, on doctor_run.c), doctor.c (the other checks and the
 * command, on both). */
#ifndef NNRT_DOCTOR_H
#define NNRT_DOCTOR_H

#include <stdint.h>

#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

enum { NNRT_CHECK_FAIL = 0, NNRT_CHECK_PASS = 1, NNRT_CHECK_SKIP = 2 };

typedef struct {
    nnrt_ctx *ctx;
    const nnrt_options *o;
    const nnrt_dataset *train;  // the training split (after --val-split), preprocessed
    int64_t *order;             // (N) a seeded permutation: the first held_out samples are held out, the rest trained on
    int64_t held_out, n_train;  // n_train = N − held_out
    int batch;                  // --batch
    int64_t steps;              // --steps, default 200: the budget of the overfit and learning checks
    float *xb, *out;            // (batch, input_dim), (batch, output_dim)
    void *yb;                   // (batch, target_dim) labels or targets
    double initial_loss;        // the held-out loss at init
    double label_var;           // a regression's held-out labels: their variance, averaged over the targets
    int failed;                 // checks that failed so far
} nnrt_doctor;

/* Prints "PASS  check  what" (FAIL with the line that says what it usually means; SKIP); counts a failure. */
void nnrt_doctor_verdict(nnrt_doctor *d, const char *check, int status, const char *meaning, const char *fmt, ...)
    NNRT_PRINTF(5, 6);
/* The weights a check starts from (--init, else the seeded init), with the optimizer state, step, rate and the
   model's random stream reset. */
void nnrt_doctor_reset(nnrt_doctor *d);
/* The mean loss (and accuracy, −1 for a regression) of samples order[0..k) in eval mode. */
double nnrt_doctor_loss(nnrt_doctor *d, const int64_t *order, int64_t k, double *acc);
/* One training step on samples order[0..n): its loss. */
double nnrt_doctor_step(nnrt_doctor *d, const int64_t *order, int n);
/* Smith's learning-rate range test from the weights as they are: prints its verdict with the suggested rate and,
   with --lr-curve, writes the curve as SVG (doctor_lr.c). */
void nnrt_doctor_lr_range(nnrt_doctor *d);

#endif
