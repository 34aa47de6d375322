/* nnrt_commands.h — the commands nnrt_main runs (train.c, evaluate.c, predict.c, gradcheck.c, search.c, …) on the
 * context it set up (context.c). The pieces they are built from are in nnrt_train.h. */
#ifndef NNRT_COMMANDS_H
#define NNRT_COMMANDS_H

#include <stdint.h>

#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

int nnrt_cmd_train(nnrt_ctx *ctx, const nnrt_options *o);
int nnrt_cmd_eval(nnrt_ctx *ctx, const nnrt_options *o);
int nnrt_cmd_predict(nnrt_ctx *ctx, const nnrt_options *o);
int nnrt_cmd_gradcheck(nnrt_ctx *ctx, const nnrt_options *o);
/* gradcheck's check of ctx's parameters as they are (gradcheck.c): the worst relative error (NaN counts as worst);
   each parameter's line printed when print. */
double nnrt_gradcheck_worst(nnrt_ctx *ctx, const nnrt_options *o, int print);
/* search: random or grid search over the hyperparameters given as specs (search.c). */
int nnrt_cmd_search(nnrt_ctx *ctx, const nnrt_options *o);
/* filters: the first Conv2d's filters, or the first Linear layer's rows as input images, as a PNG (filters.c). */
int nnrt_cmd_filters(nnrt_ctx *ctx, const nnrt_options *o);
/* show-batch: the first --batch training images, augmented as epoch 1 of a run with --augment would, as a PNG
   grid (show_batch.c). */
int nnrt_cmd_show_batch(nnrt_ctx *ctx, const nnrt_options *o);
/* doctor: the babysitting checks of a model and its data, a verdict each (doctor.c); exit 1 when one fails. */
int nnrt_cmd_doctor(nnrt_ctx *ctx, const nnrt_options *o);
/* report: one self-contained HTML page of a run's log, weights and doctor output (report.c). */
int nnrt_cmd_report(nnrt_ctx *ctx, const nnrt_options *o);
/* saliency: the gradient of a class score with respect to one input sample, as a heat map (saliency.c). */
int nnrt_cmd_saliency(nnrt_ctx *ctx, const nnrt_options *o);
/* maximize: the input that maximizes a unit, by gradient ascent with regularizers (maximize.c). */
int nnrt_cmd_maximize(nnrt_ctx *ctx, const nnrt_options *o);

/* The datasets of a training run, loaded once for all the trials of a search. */
typedef struct {
    nnrt_dataset train, test, val;
    int has_test, has_val;
    nnrt_data_info info;        // the input preprocessing every set goes through, and the class names of CSV labels
} nnrt_train_data;
/* Loads o's training, test and validation sets (the validation split taken out of the training set), then the
   input preprocessing: fitted on the training split from --scale and --normalize, or a resumed checkpoint's
   (resumed: NULL when not resuming; its class names map the labels too). Every set's x points at d->info.prep. */
void nnrt_train_data_load(const nnrt_options *o, const nnrt_model *m, nnrt_train_data *d, const nnrt_data_info *resumed);
void nnrt_train_data_free(nnrt_train_data *d);

/* What a search trial gets back from nnrt_train_run. */
typedef struct {
    const nnrt_train_data *data;  // in: the datasets, loaded by the caller (the run only reads them)
    int diverged;               // the loss stopped being finite (the trial is out; nothing else is set)
    nnrt_split_metrics val;     // the validation metrics of the weights the run would save
    float *weights;             // (params_numel, the caller's) those weights
    int64_t epochs;             // epochs trained
} nnrt_train_result;
/* train; with res, one trial of a search (search.c) on ctx as it is (params initialised by the run, state, step
   and rng reset by the caller): quiet unless --verbose, a diverging loss ends the trial rather than the process,
   and the weights --save would get (the best epoch's with --early-stop) go to res->weights. */
int nnrt_train_run(nnrt_ctx *ctx, const nnrt_options *o, nnrt_train_result *res);

#endif
