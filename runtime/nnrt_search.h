/* nnrt_search.h — what `TRAINER search` (search.c) is built from: one setting's training run(s), on the
 * validation set or on each fold of a k-fold cross-validation, and a pool of processes that runs settings side
 * by side (search_trials.c). */
#ifndef NNRT_SEARCH_H
#define NNRT_SEARCH_H

#include <stdint.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_context.h"

enum { NNRT_MAX_FOLDS = NNRT_MAX_SEARCH_FOLDS };

/* One setting's outcome at one budget of epochs. With folds, val is the mean over the folds and *_std their
   population standard deviation (NumPy's np.std, ddof 0); without, the std are 0. Plain data: a child process
   sends it back as bytes. */
typedef struct {
    int diverged;                       // a run's loss stopped being finite: the setting is out
    nnrt_split_metrics val;
    double loss_std, acc_std;
    int64_t epochs;                     // epochs trained (the most of any fold: early stopping may end one sooner)
    int folds;                          // 0: one run on the validation set
    double fold_loss[NNRT_MAX_FOLDS], fold_acc[NNRT_MAX_FOLDS];
    double seconds;
} nnrt_search_result;

/* What every setting of a search shares. */
typedef struct {
    const nnrt_options *o;
    const nnrt_train_data *data;        // loaded once (with --folds: the whole training set, no validation split)
    int folds;                          // --folds K, or 0
    const unsigned char *fold_of;       // (n_train) each training sample's fold in [0, folds), with --folds
} nnrt_search_plan;

/* Each of the n samples' fold: the NNRT_STREAM_VAL permutation of seed cut into K contiguous parts whose sizes
   differ by at most one (scikit-learn's KFold(shuffle=True)). */
void nnrt_search_assign_folds(int64_t n, int K, uint64_t seed, unsigned char *fold_of);

/* Trains setting hp (n_hparams values) for `epochs` epochs, once or once per fold, each run from the same seeded
   start; weights (params_numel, may be NULL) gets the weights --save would keep (without folds). */
void nnrt_search_run_setting(nnrt_ctx *ctx, const nnrt_search_plan *p, const double *hp, int64_t epochs,
                             nnrt_search_result *r, float *weights);

/* Runs settings hps[0..n) at `epochs` each, up to `jobs` at a time in child processes (jobs 1: in this process, in
   order), into results[0..n) and, when weights is not NULL, weights[k] (params_numel each). done(k, arg) is called
   for k = 0, 1, … in order, each as soon as it and every earlier setting have finished. A child that fails ends
   the search: the others are stopped and this process exits with the child's status. */
void nnrt_search_run_settings(nnrt_ctx *ctx, const nnrt_search_plan *p, int64_t jobs, double *const *hps, int64_t n,
                              int64_t epochs, nnrt_search_result *results, float *const *weights,
                              void (*done)(int64_t k, void *arg), void *arg);

#endif
