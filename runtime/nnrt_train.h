/* nnrt_train.h — the pieces the train, eval and predict commands are built from (train.c, train_data.c,
 * evaluate.c, ensemble.c, predict.c, ema.c, early_stop.c, plateau.c, resume.c). */
#ifndef NNRT_TRAIN_H
#define NNRT_TRAIN_H

#include <stdint.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_log.h"
#include "nnrt_model.h"

// ----------------------------------------------------------------------------
// data sets (train_data.c)

/* The train split (when train is not NULL; required) and the test split (optional) the options name: an MNIST
   directory (--data, both gunzipped at once on the two threads) or files. Returns 1 when there is a test split.
   CSV labels by name map through *classes, which the training file sets when it is empty. */
int nnrt_load_splits(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *test,
                     nnrt_classes *classes);
/* The validation set, split off the training set (--val-split) or from files (--val-x/--val-y); 0 if none. */
int nnrt_load_validation(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *val,
                         nnrt_classes *classes);
/* The loaders' options of a command: --delimiter and --label-column, and the class names labels map through
   (the training file's `learn`). */
nnrt_data_opts nnrt_data_options(const nnrt_options *o, nnrt_classes *classes, int learn);
/* --verbose: "data: <name> N samples from <path> (…)", and the BLAS, GEMM and model sizes. */
void nnrt_describe_data(const char *name, const nnrt_dataset *d);
void nnrt_verbose_setup(const nnrt_model *m);

// ----------------------------------------------------------------------------
// evaluation (evaluate.c) and ensembles (ensemble.c)

typedef struct { double loss, acc; } nnrt_eval_result;   // acc < 0 for DENSE models

/* Mean loss (and accuracy for CLASS) over d, in chunks of ≤ batch samples. */
nnrt_eval_result nnrt_evaluate(nnrt_ctx *ctx, const nnrt_dataset *d, int batch);

/* The index of row's largest element (the first of equals). */
int nnrt_argmax(const float *row, int c);
/* The metrics of d (when has) for the weights w, NULL for ctx's own: another set of weights (the moving average,
   an early-stopped trial's best epoch) takes the parameters' place for the evaluation. */
nnrt_split_metrics nnrt_evaluate_split_with(nnrt_ctx *ctx, float *w, int has, const nnrt_dataset *d);
nnrt_split_metrics nnrt_evaluate_split(nnrt_ctx *ctx, int has, const nnrt_dataset *d);
/* --weights A,B,…: each file loaded (strictly) into an array of its own; *count gets how many; *info the data
   metadata they share (members that differ are a usage error). */
float **nnrt_ensemble_load(const nnrt_model *m, const char *list, int *count, nnrt_data_info *info);
void nnrt_ensemble_free(float **w, int k);
/* The ensemble's output for a batch: the members' softmax probabilities (classifiers) or outputs (regression),
   averaged into avg (n, output_dim); out is scratch of the same size. */
void nnrt_ensemble_batch(nnrt_ctx *ctx, float **w, int k, int n, const float *xb, float *out, float *avg);

// ----------------------------------------------------------------------------
// SWA and snapshot ensembles (swa.c)

/* The learning rate train_step should use instead of the schedule's (ctx->lr_override) for the step ctx->step of
   epoch ctx->epoch: --swa-lr from --swa-start on (annealed towards it with --swa-anneal-epochs, from anneal_from:
   NaN before epoch E's first step, which then takes the schedule's rate), a snapshot cycle's cosine, else 0 (the
   schedule's). */
double nnrt_swa_step_lr(const nnrt_options *run, const nnrt_ctx *ctx, double anneal_from);
/* After a step: the rate of epoch E's first step (ctx->lr) becomes *anneal_from when the annealing needs it. */
void nnrt_swa_step_taken(const nnrt_options *run, const nnrt_ctx *ctx, double *anneal_from);
/* The anneal_from a run starts with: the checkpoint's when it resumes inside the annealing past epoch E's first
   step (a usage error, exit 2, when the checkpoint has none for that E), else NaN. */
double nnrt_swa_anneal_from(const nnrt_options *run, const nnrt_checkpoint *ck, int resumed);
/* Usage errors of --swa-start, --swa-lr, --swa-anneal-epochs and --snapshots together and with --save, --early-stop
   and the model, on the run's options (a resumed run's may come from its checkpoint, which the message then names). */
void nnrt_swa_check(const nnrt_options *run, const nnrt_model *m);
/* Usage errors of those options against the run's last epoch: --epochs (a checkpoint's), or with --steps the epoch
   the budget ends in, known once the data gives the steps per epoch. */
void nnrt_swa_check_epochs(const nnrt_options *run, int64_t steps_per_epoch);
/* The SWA average a run starts with (--swa-start): continued from a checkpoint that has one, else afresh. */
void nnrt_swa_start(nnrt_ema *swa, const nnrt_options *run, const nnrt_checkpoint *ck, const nnrt_model *m);
/* After an epoch: the SWA average takes the weights in (from --swa-start on), and the last epoch of a snapshot
   cycle writes its snapshot file. */
void nnrt_swa_epoch_end(nnrt_ema *swa, const nnrt_options *run, const nnrt_ctx *ctx, const nnrt_data_info *info);
/* update_bn: `weights`' BatchNorm running statistics recomputed over one pass of the training set (file order,
   batches of `batch`, no augmentation; each batch weighted equally), num_batches_tracked = the batches. Nothing for
   a model without running statistics. */
void nnrt_update_bn(nnrt_ctx *ctx, float *weights, const nnrt_dataset *train, int64_t batch);
/* The end of an SWA run: update_bn for the average, then its validation and test metrics, printed (talk) and
   logged as {"swa":{…}}. */
void nnrt_swa_finish(nnrt_ctx *ctx, nnrt_ema *swa, const nnrt_options *run, const nnrt_train_data *data, nnrt_log *log,
                     int talk);

// ----------------------------------------------------------------------------
// train's options: resuming (resume.c), --ema (ema.c), --early-stop (early_stop.c), --reduce-lr-on-plateau
// (plateau.c)

/* run ← o with the checkpoint's batch, seed, shuffle, validation split and --epochs unless the command line
   gives them (then only --epochs and the hyperparameters may differ: exit 2 otherwise), and its --augment, --mixup,
   --cutmix, --swa-start, --swa-lr, --swa-anneal-epochs and --snapshots unless given (those may differ: a flag given
   again overrides the stored value; but not --swa-start once the checkpoint has averaged an epoch, exit 2). */
void nnrt_resume_options(nnrt_ctx *ctx, const nnrt_options *o, nnrt_options *run, const nnrt_checkpoint *c);
/* "resumed C: k of N epochs done, step S", and the data path's, SWA's and the snapshots' options the run took from
   the checkpoint (unless quiet). */
void nnrt_resume_report(const nnrt_ctx *ctx, const nnrt_options *o, const nnrt_options *run, const nnrt_checkpoint *c);
/* Frees what nnrt_resume_options allocated into run (a soft-target buffer of its own). */
void nnrt_resume_free(const nnrt_options *o, nnrt_options *run);
/* Dies unless the run has the checkpoint's numbers of training and validation samples. */
void nnrt_check_resumed_data(const char *path, const nnrt_checkpoint *c, const nnrt_dataset *train, int64_t n_val);

/* One update of an average of the weights (params_numel floats) towards params, with torch's lerp: start +
   w·(end − start) for w < 0.5, else end − (end − start)·v (v = 1 − w as the caller rounds it), in float; first
   copies params. Step counters are copied; the other buffers are averaged when `buffers`, else copied. */
void nnrt_average_update(const nnrt_model *m, float *avg, const float *params, float w, float v, int first, int buffers);
/* One update of ema towards params: nnrt_average_update with w = 1 − decay and buffers averaged. */
void nnrt_ema_update(const nnrt_model *m, float *ema, const float *params, double decay, int first);
/* The moving average a run starts with (--ema): continued from a checkpoint that has one, else afresh. */
void nnrt_ema_start(nnrt_ema *ema, const nnrt_options *o, const nnrt_checkpoint *ck, const nnrt_model *m);

/* The early-stopping state a run starts with, afresh or as its checkpoint left it when that watched the same
   metric (otherwise a resumed run starts counting again, and says so unless quiet). */
void nnrt_early_stop_start(nnrt_early_stop *es, const nnrt_options *run, const nnrt_checkpoint *ck, const nnrt_model *m,
                           int resumed, int quiet);
/* After an epoch's evaluation: 1 when training should stop (no improvement by more than --early-stop-delta for
   --early-stop epochs). An improvement keeps a copy of the parameters; a NaN metric never improves. */
int nnrt_early_stop_update(nnrt_early_stop *es, const nnrt_options *run, nnrt_split_metrics val, const nnrt_ctx *ctx);

/* The reduce-on-plateau state a run starts with, afresh or from its checkpoint when that watched the same metric. */
void nnrt_plateau_start(nnrt_plateau *p, const nnrt_options *o, const nnrt_options *run, const nnrt_checkpoint *ck,
                        int resumed);
/* After an epoch, PyTorch's ReduceLROnPlateau.step(metric): 1 when it reduced ctx->hp's "lr". */
int nnrt_plateau_update(nnrt_plateau *p, const nnrt_options *run, nnrt_ctx *ctx, double train_loss, nnrt_split_metrics val);

#endif
