/* nnrt_lbfgs.h — full-batch L-BFGS, as torch.optim.LBFGS: the optimizer step (lbfgs.c, in the commands layer: it
 * drives the model's train_step over the training set) and its strong-Wolfe line search (lbfgs_search.c, plain
 * numerics behind a callback).
 *
 * Precision, as torch's default: the weights, gradients, directions and the history of (s, y) pairs are float32;
 * the dot products are summed in float64 and the scalars (loss, step length t, gᵀd, ρ, H_diag) are float64. */
#ifndef NNRT_LBFGS_H
#define NNRT_LBFGS_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_profile.h"

// ----------------------------------------------------------------------------
// the line search (lbfgs_search.c)

/* torch's _cubic_interpolate: the minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2,
   clamped to bounds[0..1] (NULL: to [min(x1, x2), max(x1, x2)]); their midpoint when the cubic has no minimum. */
double nnrt_cubic_interpolate(double x1, double f1, double g1, double x2, double f2, double g2, const double *bounds);

/* What the line search moves along: the objective at x + t·d is eval(arg, t, g), which returns the loss and writes
   the gradient (n) into g; a loss that is not finite ends the search at once. */
typedef struct {
    double (*eval)(void *arg, double t, float *g);
    void *arg;
    size_t n;
    const float *d;     /* (n) the direction */
    float *spare[3];    /* (n) each: the buffers the search writes gradients into */
} nnrt_line;

typedef struct {
    double f, t;        /* the loss at the accepted step length t (not finite: the search stopped there) */
    const float *g;     /* its gradient: one of spare[], or the g the search started from when t is 0 */
    int64_t evals;      /* objective evaluations */
} nnrt_line_result;

/* torch's _strong_wolfe(obj_func, x, t, d, f, g, gtd) with its constants c1 = 1e-4, c2 = 0.9, max_ls = 25: from
   step length t, bracket a step that satisfies the strong Wolfe conditions f(t) ≤ f + c1·t·gtd and
   |∇f(t)ᵀd| ≤ −c2·gtd, then zoom in by cubic interpolation until one does or the bracket is shorter than
   tolerance_change (measured along d's largest element). f, g and gtd are the loss, gradient and gᵀd at t = 0. */
nnrt_line_result nnrt_strong_wolfe(const nnrt_line *ls, double t, double f, const float *g, double gtd,
                                   double tolerance_change);

// ----------------------------------------------------------------------------
// the optimizer step (lbfgs.c)

typedef struct nnrt_lbfgs nnrt_lbfgs;

/* One epoch of a model with model->lbfgs: one L-BFGS step (torch's optimizer.step(closure)) whose closure is the
   loss over the whole training set in file order, computed in chunks of --batch samples (memory only: the loss
   and gradient are the chunks' sample-weighted means). Up to max_iter iterations, each logged as a step with the
   loss at its start. Returns the loss at the step's start (what torch's step returns). *state holds the history
   across epochs: NULL before the first, allocated then; nnrt_lbfgs_free frees it. With prof (--profile), every
   train_step call counts as a step of the profile, timed with its gather, and the iterations' logging as its log.
   A loss or gradient that is not finite, in the line search or anywhere, puts the weights back at the last point
   accepted, sets *diverged to 0 and says where in why; *diverged is −1 otherwise. */
double nnrt_lbfgs_epoch(nnrt_lbfgs **state, nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train,
                        float *xb, void *yb, nnrt_log *log, nnrt_profile *prof, int64_t *diverged, char *why, size_t cap);
void nnrt_lbfgs_free(nnrt_lbfgs *s);
/* Refuses, as a usage error (exit 2), the train flags full-batch L-BFGS cannot honour: --steps, --ema, --augment,
   --swa-start and --snapshots (the last two set learning rates L-BFGS would ignore). Called before anything is
   loaded. */
void nnrt_lbfgs_check_flags(const nnrt_options *o);
/* Checkpoints (train --checkpoint, --resume): *h ← a copy of the history in s (an empty one when s is NULL, before the
   first epoch), for nnrt_checkpoint_save; free it with nnrt_lbfgs_history_free. nnrt_lbfgs_restore allocates *state
   (as the first epoch would) holding the history h a checkpoint had, so that the resumed run's epochs take the
   steps the uninterrupted run took, bit for bit; with a smaller --history-size than the checkpoint's, the newest
   pairs. */
void nnrt_lbfgs_history_get(const nnrt_lbfgs *s, const nnrt_model *m, nnrt_lbfgs_history *h);
void nnrt_lbfgs_restore(nnrt_lbfgs **state, nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train, float *xb,
                        void *yb, const nnrt_lbfgs_history *h);

#endif
