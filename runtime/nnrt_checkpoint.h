/* nnrt_checkpoint.h — resumable checkpoints (checkpoint.c), and the training state they keep: early stopping,
 * the weights' moving average, reduce-on-plateau. */
#ifndef NNRT_CHECKPOINT_H
#define NNRT_CHECKPOINT_H

#include <stdint.h>

#include "nnrt_augment.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

/* A checkpoint is a safetensors file: the parameters under their state_dict names (so torch and --init/eval
   read it as weights), NNRT_CHECKPOINT_STATE (state_numel) F32 holding the optimizer's state arena as is,
   NNRT_CHECKPOINT_ORDER (N) I64 holding the last epoch's sample order, and __metadata__ strings for the rest
   (see checkpoint.c). Checkpoints are written at the end of an epoch. */
#define NNRT_CHECKPOINT_KEY "nncc.checkpoint"
#define NNRT_CHECKPOINT_STATE "optimizer.state"
#define NNRT_CHECKPOINT_SLOT_PREFIX "optimizer."  // + "<slot>.<param>", one tensor per slot and trainable parameter
#define NNRT_CHECKPOINT_ORDER "train.order"

/* Early stopping (train --early-stop K): the metric watched, its best value so far and the epoch (1-based) that
   reached it, the epochs since then, and that epoch's parameters (what --save writes in the end). */
typedef struct {
    char on[16];            // "val_loss" or "val_acc"; "" when the run has no --early-stop
    double best;            // +inf (loss) or -inf (accuracy) before the first epoch
    int64_t best_epoch;     // 0 before the first epoch
    int64_t since;          // epochs evaluated since best_epoch that did not improve on it
    float *weights;         // (params_numel) the parameters after best_epoch
} nnrt_early_stop;
#define NNRT_CHECKPOINT_BEST "early_stop.weights"

/* An exponential moving average of the parameters (train --ema D), as torch.optim.swa_utils.AveragedModel with
   get_ema_multi_avg_fn(D) and use_buffers=True: the first update copies the parameters, every later one takes
   ema ← lerp(ema, p, 1 − D) for every float parameter and buffer (BatchNorm's running statistics too); step
   counters (num_batches_tracked) are copied. */
typedef struct {
    int on;
    int64_t count;          // updates so far (0: the next one copies)
    float *weights;         // (params_numel)
} nnrt_ema;
#define NNRT_CHECKPOINT_EMA "ema.weights"
#define NNRT_CHECKPOINT_SWA "swa.weights"   // with "swa.count": SWA's average of the trainable parameters

/* ReduceLROnPlateau (train --reduce-lr-on-plateau P), by PyTorch's rule: the metric watched, its best value so
   far, the epochs since it last improved (num_bad_epochs) and the epochs of cooldown left. The learning rate
   itself is the hyperparameter "lr" (ctx->hp), which checkpoints keep anyway. */
typedef struct {
    char on[16];            // "val_loss", "val_acc" or "train_loss"; "" when the run has no --reduce-lr-on-plateau
    double best;            // +inf (losses) or -inf (accuracy) before the first epoch
    int64_t bad, cooldown;
} nnrt_plateau;

/* Full-batch L-BFGS's state between epochs (lbfgs.c), torch's LBFGS optimizer state: the iterations over the run, the
   last direction d and step length t, the gradient g_prev at the last iteration's start, the kept (s, y) pairs,
   oldest first, and H_diag (yᵀs / yᵀy of the newest pair, 1 before one is kept). The pairs' ρ = 1 / yᵀs are
   recomputed from them when they are restored, with the same float64 sum, hence the same bits. All owned copies. */
typedef struct {
    int on;                 // the model trains with L-BFGS (model->lbfgs)
    int64_t n;              // trainable floats: the length of every vector
    int64_t n_iter, count;  // iterations over the run; pairs kept
    double t, H_diag;
    float *d, *g_prev;      // (n) each
    float *s, *y;           // (count, n) each, oldest pair first; NULL when count is 0
} nnrt_lbfgs_history;
#define NNRT_CHECKPOINT_LBFGS "lbfgs."   // + "d", "g_prev", "s", "y" (tensors) and "n_iter", "count", "t", "H_diag"
void nnrt_lbfgs_history_free(nnrt_lbfgs_history *h);

/* What a checkpoint holds besides ctx (params, state, step, rng and hp). */
typedef struct {
    int64_t epochs_done;    // completed epochs
    int64_t epochs;         // the run's --epochs (a resumed run's default)
    int64_t batch, n_train, n_val;
    int64_t log_every;      // not training state, but a resumed run's log continues at the same pace
    uint64_t seed;
    int no_shuffle;
    double val_split;       // 0 when not splitting (explicit --val-x files, or no validation)
    uint64_t shuffle_rng[4];
    int64_t *order;         // (n_train) the sample order of the epoch just finished; the next shuffles it
    nnrt_early_stop es;     // es.on "" when the run had no --early-stop (es.weights allocated by a load)
    nnrt_plateau plateau;   // plateau.on "" when the run had no --reduce-lr-on-plateau
    nnrt_ema ema;           // ema.on 0 when the run had no --ema (ema.weights allocated by a load)
    nnrt_ema swa;           // SWA's equal average (--swa-start, swa.c): swa.on 0 without it; the same fields
    nnrt_lbfgs_history lbfgs;  // an L-BFGS model's history (lbfgs.on 0 for any other model; allocated by a load)
    int64_t swa_start;      // the run's --swa-start E (with swa.on)
    double swa_lr;          // its --swa-lr (with swa.on; 0 in a checkpoint written before it was kept)
    int64_t swa_anneal_epochs; // its --swa-anneal-epochs K (with swa.on)
    int64_t snapshots;      // the run's --snapshots K (0: off)
    double swa_anneal_from; // the rate SWA's annealing starts from (--swa-anneal-epochs: the schedule's at the first
                            // step of epoch E); NaN while unknown
    nnrt_augment aug;       // the run's --augment (aug.on 0: none), which a resumed run takes unless given again
    char augment[96];       // a load's list, as nnrt_augment_format writes it
    double mixup, cutmix;   // the run's --mixup and --cutmix α (0: off), likewise
    nnrt_data_info info;    // the input preprocessing and class names (a save borrows them; a load allocates)
} nnrt_checkpoint;

void nnrt_checkpoint_save(const char *path, const nnrt_ctx *ctx, const nnrt_checkpoint *c);
/* Restores ctx->params, state, step, rng and hp, and fills *c (c->order is allocated). Dies with one line
   on a missing or corrupt file, a plain weights file, or a checkpoint of another model. */
void nnrt_checkpoint_load(const char *path, nnrt_ctx *ctx, nnrt_checkpoint *c);

#endif
