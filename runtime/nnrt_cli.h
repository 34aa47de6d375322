/* nnrt_cli.h — the trainer's command line (cli.c): subcommands, flags and their checks. */
#ifndef NNRT_CLI_H
#define NNRT_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_augment.h"
#include "nnrt_mixup.h"
#include "nnrt_context.h"
#include "nnrt_model.h"

typedef enum { NNRT_CMD_TRAIN = 1, NNRT_CMD_EVAL = 2, NNRT_CMD_PREDICT = 4, NNRT_CMD_GRADCHECK = 8, NNRT_CMD_SEARCH = 16,
               NNRT_CMD_FILTERS = 32, NNRT_CMD_SHOW_BATCH = 64, NNRT_CMD_SALIENCY = 128, NNRT_CMD_MAXIMIZE = 256,
               NNRT_CMD_DOCTOR = 512, NNRT_CMD_REPORT = 1024 } nnrt_cmd;

/* The most flags cli.c's table may hold (a static assertion there checks). */
enum { NNRT_MAX_FLAGS = 128, NNRT_MAX_SEARCH_FOLDS = 100 };

typedef struct {
    nnrt_cmd cmd;
    const char *prog;                   // basename of argv[0], for messages
    const char *data, *train_x, *train_y, *test_x, *test_y;
    const char *init, *save, *log, *weights, *input, *output;
    const char *checkpoint, *resume, *val_x, *val_y;   // train: resumable checkpoints, validation files
    const char *label_column;           // --label-column: a CSV's labels, by header name or 0-based index
    const char *delimiter;              // --delimiter as given ("," by default; "tab" for tabs)
    char csv_delim;                     // the character it names
    int labels;                         // predict --labels: the predicted class (name) instead of probabilities
    const char *scale, *normalize;      // train --scale (auto) and --normalize (none): the input preprocessing
    int64_t steps;                      // train --steps N: a budget of N steps in all instead of --epochs (0: off)
    int64_t checkpoint_every;
    double val_split;                   // train --val-split F (0: none); NNRT_VAL_SPLIT_DEFAULT when neither it nor --val-x is given
    int val_split_default;              // 1 when val_split is that default, not the user's
    int report_test;                    // train --report-test: evaluate the test split of --data each epoch too
    int64_t early_stop;                 // train --early-stop K: patience in epochs (0: off)
    const char *early_stop_on;          // --early-stop-on: "val_loss" (default) or "val_acc"
    double early_stop_delta;            // --early-stop-delta: the least change that counts as better (default 0)
    int64_t plateau;                    // --reduce-lr-on-plateau P: patience (on when given, even 0)
    const char *plateau_on;             // --plateau-on: "val_loss" (default), "val_acc" or "train_loss"
    double plateau_factor, plateau_threshold, plateau_min_lr;   // defaults 0.1, 1e-4 (relative), 0
    int64_t plateau_cooldown;           // default 0
    int64_t trials;                     // search --trials N (random search)
    const char *search_on;              // search --search-on: "val_loss" (default) or "val_acc"
    int64_t folds;                      // search --folds K: k-fold cross-validation (0: off)
    int64_t jobs;                       // search --jobs N: trials side by side in N processes (1: in this one)
    const char *prune;                  // search --prune halving (NULL: off)
    int64_t prune_factor;               // --prune-factor (3)
    const char **hp_spec;               // (n_hparams) search: each hyperparameter flag's text (NULL: not given)
    int64_t trial;                      // set by search for its trials (1-based; 0 outside a search)
    double ema;                         // --ema D: the decay of the weights' moving average (on when given)
    const char *save_ema;               // --save-ema W: where the averaged weights go
    int64_t swa_start;                  // --swa-start E: SWA from epoch E (1-based) on (0: off; swa.c)
    double swa_lr;                      // --swa-lr LR: the learning rate from epoch E on
    int64_t swa_anneal_epochs;          // --swa-anneal-epochs K: SWALR's cosine from the schedule's rate to LR over K epochs (0: at once)
    int64_t snapshots;                  // --snapshots K: cyclic cosine in K cycles, one weights file each (0: off)
    const char *augment;                // --augment LIST: train's image augmentation, as given
    nnrt_augment aug;                   // the list parsed (aug.on 0 without --augment)
    double mixup, cutmix;               // --mixup α, --cutmix α (0: off)
    nnrt_mix mix;                       // both checked, with the soft-target buffer (mix.on 0 without them)
    int64_t epochs, batch, log_every, samples;
    uint64_t seed;
    double tol, floor;                  // gradcheck: tolerance and relative-error floor
    int no_shuffle, verbose, quiet, keep_denormals, profile;
    const char *monitor;                // train --monitor every:N: per-layer statistics every N steps (monitor.c)
    const char *lr_curve;               // doctor --lr-curve F.svg: the LR range test's curve
    const char *doctor;                 // report --doctor F: the doctor's saved output
    int json;  // eval --json: one JSON object per line, numbers at full precision
    const char *unit;                   // maximize (and saliency) --unit: CLASS or LAYER:INDEX, as given
    int64_t index, klass;               // saliency --index (the sample) and --class (default: the predicted one)
    double ascent_lr, l2;               // maximize --lr (default 0.1) and --l2 (default 0.01)
    int64_t jitter, blur_every;         // maximize --jitter (pixels, default 1) and --blur-every (steps, default 4)
    int64_t threads;    // --threads: 0 = one per core (at most 2)
    double *hp;                         // (n_hparams) model defaults, then overrides
    unsigned char given[NNRT_MAX_FLAGS];  // 1 where the k-th flag of cli.c's table was on the command line
    unsigned char *hp_given;            // (n_hparams) 1 where the command line set the hyperparameter
} nnrt_options;

/* The validation fraction train holds out when given neither --val-split nor --val-x (as Keras users pass
   validation_split=0.1); a training set too small to leave a sample on each side gets none. */
#define NNRT_VAL_SPLIT_DEFAULT 0.1

/* Parses argv into o (printing help and exiting 0 for --help, dying with exit 2 on mistakes). */
void nnrt_parse_args(const nnrt_model *m, int argc, char **argv, nnrt_options *o);
void nnrt_options_free(nnrt_options *o);
/* Whether --name was on the command line (not just its default). */
int nnrt_flag_given(const nnrt_options *o, const char *name);
/* The hyperparameters by name (nnrt_find_hparam, nnrt_hparam_in_range) are in nnrt_context.h. */

#endif
