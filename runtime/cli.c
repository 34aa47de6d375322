/* cli.c — the trainer's command line: subcommands, flags (--name value or --name=value), one flag per
 * model hyperparameter, --help at every level, and errors that say which flag is wrong and why (exit 2).
 * The flags are a table; parsing, checking and help text are all driven by it. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_monitor.h"

/* The runtime's version: nncc's own (NNCCVersion.number in Sources/NNCompiler/Driver; a test checks they agree). */
#define NNRT_VERSION "0.1.0"

// ----------------------------------------------------------------------------
// the flag table

typedef enum { F_STR, F_POSINT, F_COUNT, F_U64, F_POSFLOAT, F_NNFLOAT, F_BOOL } flag_kind;

enum { ALL = NNRT_CMD_TRAIN | NNRT_CMD_EVAL | NNRT_CMD_PREDICT | NNRT_CMD_GRADCHECK | NNRT_CMD_SEARCH | NNRT_CMD_FILTERS |
             NNRT_CMD_SHOW_BATCH | NNRT_CMD_DOCTOR | NNRT_CMD_REPORT | NNRT_CMD_SALIENCY | NNRT_CMD_MAXIMIZE,
       TR = NNRT_CMD_TRAIN, EV = NNRT_CMD_EVAL, PR = NNRT_CMD_PREDICT, GC = NNRT_CMD_GRADCHECK, SE = NNRT_CMD_SEARCH,
       FI = NNRT_CMD_FILTERS, SB = NNRT_CMD_SHOW_BATCH, DO = NNRT_CMD_DOCTOR, RE = NNRT_CMD_REPORT,
       SA = NNRT_CMD_SALIENCY, MX = NNRT_CMD_MAXIMIZE,
       TS = TR | SE | DO };  // train's flags that every trial of a search, and the doctor's short runs, take too

/* The values a number flag takes (nnrt_context.h). */
typedef nnrt_range flag_range;

typedef struct {
    const char *name;   // without the leading "--"
    flag_kind kind;
    unsigned cmds;      // the commands that accept it
    size_t offset;      // into nnrt_options
    const char *metavar, *help;
    flag_range range;   // number flags only
} flag;

enum { INT_FLAG_MAX = 1000000000 };  // no count, batch or epoch number a trainer takes comes near it
#define F_STR_RANGE {0, 0, 0, 0, NULL}
#define F_POSINT_RANGE {1, INT_FLAG_MAX, 0, 0, NULL}
#define F_COUNT_RANGE {0, INT_FLAG_MAX, 0, 0, NULL}
#define F_U64_RANGE {0, 18446744073709551615.0, 0, 0, NULL}
#define F_POSFLOAT_RANGE {0, INFINITY, 1, 1, NULL}
#define F_NNFLOAT_RANGE {0, INFINITY, 0, 1, NULL}
#define F_BOOL_RANGE {0, 0, 0, 0, NULL}

/* A table entry: FLAG(name, kind, commands, field, metavar, help). The field's type must be the one its kind is
 * written as (set_value): a mismatch, such as an `int` field for F_POSINT (which writes an int64_t), does not
 * compile. That bug once clobbered the next field (--threads). */
#define FLAG(name, kind, cmds, field, metavar, help) \
    {name, kind, cmds, NNRT_FIELD_OFFSET(nnrt_options, field, kind##_TYPE), metavar, help, kind##_RANGE}
/* A number flag whose values stop below the kind's own upper bound: hi (excluded for floats, included for integers). */
#define FLAG_BELOW(name, kind, cmds, field, metavar, help, hi, words) \
    {name, kind, cmds, NNRT_FIELD_OFFSET(nnrt_options, field, kind##_TYPE), metavar, help, \
     {kind == F_POSINT, hi, kind == F_POSFLOAT, kind == F_POSFLOAT || kind == F_NNFLOAT, words}}
#define F_STR_TYPE const char *
#define F_POSINT_TYPE int64_t
#define F_COUNT_TYPE int64_t
#define F_U64_TYPE uint64_t
#define F_POSFLOAT_TYPE double
#define F_NNFLOAT_TYPE double
#define F_BOOL_TYPE int
static const flag flags[] = {
    FLAG("data", F_STR, TS | EV | GC | SB, data, "DIR", "directory in the MNIST IDX layout (train-/t10k- images and labels, raw or .gz)"),
    FLAG("train-x", F_STR, TS | GC | SB, train_x, "F", "training inputs: .npy, IDX (raw or .gz) or .csv"),
    FLAG("train-y", F_STR, TS | GC | SB, train_y, "F", "training labels or targets: .npy, IDX or .csv"),
    FLAG("test-x", F_STR, TS | EV, test_x, "F", "test inputs"),
    FLAG("test-y", F_STR, TS | EV, test_y, "F", "test labels or targets"),
    FLAG("weights", F_STR, EV | PR | GC | FI | RE | SA | MX, weights, "W", "weights to load (.safetensors, strict); eval and predict take an ensemble as W1,W2,…"),
    FLAG("init", F_STR, TS, init, "W", "start from these weights (.safetensors, strict) instead of the seeded init"),
    FLAG("save", F_STR, TS, save, "W", "write the trained weights here (.safetensors, atomically; search: the best trial's)"),
    FLAG("label-column", F_STR, TS | EV | PR | GC, label_column, "C", "the column of a .csv -x file that holds the labels, by header name or 0-based index (-1: the last); then no -y file (predict: left out of the features when present)"),
    FLAG("delimiter", F_STR, TS | EV | PR | GC, delimiter, "D", "the field separator of .csv files: one character, or tab (default ,)"),
    FLAG("input", F_STR, PR | SA, input, "X", "inputs (.npy; also IDX or .csv)"),
    FLAG("output", F_STR, PR, output, "Y", "write outputs here (.npy float32 (N, outputs); probabilities for classifiers)"),
    FLAG("labels", F_BOOL, PR, labels, NULL, "write each sample's predicted class instead of probabilities: its name when the weights name the classes, else its index"),
    FLAG("scale", F_STR, TS, scale, "S", "input scale, kept in the weights: auto (uint8 inputs / 255, floats as they are, in every file), a number, or 1/D (x / D)"),
    FLAG("normalize", F_STR, TS, normalize, "M", "standardize the inputs with the training split's mean and std: none (default), feature, or channel (image models); kept in the weights"),
    FLAG("output", F_STR, FI | SB | SA | MX, output, "F.png", "write the picture here (PNG, atomically; -o F.png too; saliency and maximize: F.npy for the raw values)"),
    FLAG("output", F_STR, RE, output, "F.html", "write the report here (one self-contained HTML page, atomically; -o F.html too)"),
    FLAG("epochs", F_POSINT, TS, epochs, "N", "passes over the training set"),
    FLAG("steps", F_POSINT, TS, steps, "N", "train N steps (batches) in all instead of --epochs; the last epoch stops part-way"),
    FLAG("batch", F_POSINT, TS | EV | PR | SB, batch, "N", "samples per step (the last batch of an epoch may be smaller)"),
    FLAG("seed", F_U64, TS | GC | SB | MX, seed, "N", "seed for the init, the shuffle and random ops (xoshiro256**)"),
    FLAG("no-shuffle", F_BOOL, TS, no_shuffle, NULL, "keep the file's sample order in every epoch"),
    FLAG("log", F_STR, TS | RE, log, "M", "write JSON Lines metrics here (per step and per epoch; appended to with --resume; search: one line per trial)"),
    FLAG_BELOW("val-split", F_NNFLOAT, TS, val_split, "F", "hold out a seeded random fraction 0 <= F < 1 of the training set and report val_loss/val_acc per epoch (default 0.1 without --val-x; 0: none)",
               1, "a fraction in [0, 1)"),
    FLAG("val-x", F_STR, TS, val_x, "F", "validation inputs (instead of --val-split)"),
    FLAG("val-y", F_STR, TS, val_y, "F", "validation labels or targets"),
    FLAG("report-test", F_BOOL, TR, report_test, NULL, "evaluate the test split of --data each epoch too (--test-x/--test-y given to train are always reported)"),
    FLAG("checkpoint", F_STR, TR, checkpoint, "C", "write a resumable checkpoint here (weights, optimizer state, step, RNG, data order) at epoch ends"),
    FLAG("checkpoint-every", F_POSINT, TR, checkpoint_every, "K", "write the checkpoint every K epochs (and after the last)"),
    FLAG("resume", F_STR, TR, resume, "C", "continue from a checkpoint, bit-identical to a run that never stopped (--epochs counts from the start)"),
    FLAG("early-stop", F_POSINT, TS, early_stop, "K", "stop when the validation metric has not improved for K epochs; --save gets the best epoch's weights"),
    FLAG("early-stop-on", F_STR, TS, early_stop_on, "M", "the metric --early-stop watches: val_loss (lower is better) or val_acc"),
    FLAG("early-stop-delta", F_NNFLOAT, TS, early_stop_delta, "X", "the least improvement that counts (default 0: any)"),
    FLAG("reduce-lr-on-plateau", F_COUNT, TS, plateau, "P", "multiply --lr by --plateau-factor when the metric has not improved for more than P epochs (PyTorch's ReduceLROnPlateau)"),
    FLAG("plateau-on", F_STR, TS, plateau_on, "M", "the metric it watches: val_loss (default), val_acc or train_loss"),
    FLAG_BELOW("plateau-factor", F_POSFLOAT, TS, plateau_factor, "F", "the factor, below 1 (default 0.1)", 1, "a factor below 1"),
    FLAG("plateau-threshold", F_NNFLOAT, TS, plateau_threshold, "X", "relative improvement that counts: below best·(1−X) (default 1e-4)"),
    FLAG("plateau-cooldown", F_COUNT, TS, plateau_cooldown, "N", "epochs after a reduction in which no epoch counts as bad (default 0)"),
    FLAG("plateau-min-lr", F_NNFLOAT, TS, plateau_min_lr, "X", "the learning rate it never goes below (default 0)"),
    FLAG("trials", F_POSINT, SE, trials, "N", "trials of a random search (a search over lists only is the whole grid)"),
    FLAG("search-on", F_STR, SE, search_on, "M", "the validation metric that ranks the trials: val_loss (default) or val_acc"),
    FLAG_BELOW("folds", F_POSINT, SE, folds, "K", "score each setting by K-fold cross-validation (mean ± std over the folds) instead of a validation split; --save then trains the best on all the data",
               NNRT_MAX_SEARCH_FOLDS, "a number of folds from 2 to 100"),
    FLAG_BELOW("jobs", F_POSINT, SE, jobs, "N", "run up to N trials at once, one single-threaded process each (default 1)", 256, "a number of processes from 1 to 256"),
    FLAG("prune", F_STR, SE, prune, "halving", "stop weak trials early by successive halving: all trials get a few epochs, the best 1/--prune-factor get more, up to --epochs"),
    FLAG("prune-factor", F_POSINT, SE, prune_factor, "F", "the factor of --prune halving: keep the best 1/F of each rung, which trains F times longer (default 3)"),
    FLAG_BELOW("ema", F_NNFLOAT, TR, ema, "D", "keep a moving average of the weights, ema <- D*ema + (1-D)*p after every step, and report its metrics",
               1, "a decay below 1 (0.999 is common)"),
    FLAG("save-ema", F_STR, TR, save_ema, "W", "write the averaged weights here (.safetensors, atomically; needs --ema)"),
    FLAG("swa-start", F_COUNT, TR, swa_start, "E", "stochastic weight averaging: from epoch E on, train at --swa-lr and average the weights of each epoch's end; --save gets the average (BatchNorm statistics recomputed); --resume keeps the checkpoint's (0: off)"),
    FLAG("swa-lr", F_POSFLOAT, TR, swa_lr, "LR", "the learning rate of the epochs SWA averages (instead of the schedule's)"),
    FLAG("swa-anneal-epochs", F_COUNT, TR, swa_anneal_epochs, "K", "anneal from the schedule's rate at the start of epoch E to --swa-lr over K epochs by a cosine, as torch's SWALR(anneal_epochs=K) (default 0: at once)"),
    FLAG("snapshots", F_COUNT, TR, snapshots, "K", "snapshot ensemble: cosine from --lr to 0 restarted K times; each cycle's weights to W.snapC.safetensors (needs --save W); --resume keeps the checkpoint's (0: off)"),
    FLAG("augment", F_STR, TS | SB, augment, "LIST", "augment each training batch (image models): any of crop:P,flip,cutout:S,jitter:J, or none (see docs/data.md); --resume takes the checkpoint's unless given"),
    FLAG("mixup", F_NNFLOAT, TS, mixup, "A", "mix each training batch with its flipped self, weight lambda ~ Beta(A, A), against soft labels (classifiers; 0: off; --resume takes the checkpoint's unless given)"),
    FLAG("cutmix", F_NNFLOAT, TS, cutmix, "A", "CutMix: swap a box of area (1-lambda) between the pairs, lambda ~ Beta(A, A) (image classifiers; with --mixup, half the batches each)"),
    FLAG("log-every", F_POSINT, TR, log_every, "K", "log the loss of every K-th step"),
    FLAG("monitor", F_STR, TR, monitor, "every:N", "log per-layer statistics every N steps to --log (weight, gradient and update norms, activations; needs 'nncc compile --monitor')"),
    FLAG("lr-curve", F_STR, DO, lr_curve, "F.svg", "write the learning-rate range test's curve (loss against learning rate) here"),
    FLAG("doctor", F_STR, RE, doctor, "F", "the doctor's output (what 'doctor' printed, saved to a file) to show in the report"),
    FLAG("samples", F_POSINT, GC, samples, "N", "samples in the gradcheck batch"),
    FLAG("tol", F_POSFLOAT, GC, tol, "X", "largest relative error accepted"),
    FLAG("floor", F_POSFLOAT, GC, floor, "X", "smallest denominator of the relative error"),
    FLAG("verbose", F_BOOL, ALL, verbose, NULL, "print setup details (BLAS core and threads, data sizes)"),
    FLAG("quiet", F_BOOL, ALL, quiet, NULL, "no progress bar"),
    FLAG_BELOW("threads", F_POSINT, ALL, threads, "N", "threads for the kernels: 1 or 2 (default: 2 on a machine with two or more cores)", 2, "1 or 2"),
    FLAG("profile", F_BOOL, TR, profile, NULL, "time every kernel and the runtime's own parts; print a breakdown per epoch and at the end"),
    FLAG("keep-denormals", F_BOOL, ALL, keep_denormals, NULL, "do not flush subnormal floats to zero (slower; see README)"),
    FLAG("json", F_BOOL, EV, json, NULL, "print the results as JSON, one object per line, at full precision (%.17g)"),
    FLAG("index", F_COUNT, SA, index, "I", "the sample of --input (0-based)"),
    FLAG("class", F_COUNT, SA, klass, "C", "the class (output) whose score is differentiated (default: the predicted class)"),
    FLAG("unit", F_STR, SA | MX, unit, "U", "the unit: a class C, or LAYER:INDEX with LAYER a layer output (h8, or its module 8) and INDEX a feature or a channel"),
    FLAG("steps", F_POSINT, MX, steps, "N", "gradient ascent steps"),
    FLAG("lr", F_POSFLOAT, MX, ascent_lr, "X", "step size: each step adds lr * grad / rms(grad) to the input"),
    FLAG_BELOW("l2", F_NNFLOAT, MX, l2, "D", "L2 decay: after each step the input is multiplied by 1 - D (0: off)", 1, "a decay below 1"),
    FLAG("jitter", F_COUNT, MX, jitter, "J", "shift the image by up to J pixels, seeded, before each step (0: off)"),
    FLAG("blur-every", F_COUNT, MX, blur_every, "K", "blur the image with a 3x3 Gaussian every K steps (0: off)"),
    FLAG("log", F_STR, MX, log, "M", "write the unit's value at every step here (JSON Lines)"),
};
enum { N_FLAGS = sizeof flags / sizeof flags[0] };
_Static_assert((int)N_FLAGS <= (int)NNRT_MAX_FLAGS, "nnrt_options.given has one byte per flag");

static const struct { const char *name; nnrt_cmd cmd; const char *args, *help; } commands[] = {
    {"train", NNRT_CMD_TRAIN, "(--data DIR | --train-x F --train-y F [--test-x F --test-y F] | --train-x F.csv --label-column C) [flags]", "train the model, optionally saving its weights and a metrics log"},
    {"eval", NNRT_CMD_EVAL, "--weights W (--data DIR | --test-x F --test-y F | --test-x F.csv --label-column C) [flags]", "loss (and accuracy) of saved weights on a test set"},
    {"predict", NNRT_CMD_PREDICT, "--weights W --input X --output Y.npy|Y.csv [--labels] [flags]", "model outputs (or predicted classes) for the samples of a file"},
    {"gradcheck", NNRT_CMD_GRADCHECK, "[--weights W] [--data DIR | --train-x F --train-y F] [flags]", "compare the analytic gradient with central differences (float64)"},
    {"search", NNRT_CMD_SEARCH, "(--data DIR | --train-x F --train-y F) [--val-split F | --val-x F --val-y F | --folds K] --HPARAM SPEC… [flags]",
     "train once per hyperparameter setting and keep the best by a validation metric (random or grid search)"},
    {"filters", NNRT_CMD_FILTERS, "--weights W --output F.png [flags]", "draw the first Conv2d's filters (or the first Linear layer's rows) as a PNG grid"},
    {"show-batch", NNRT_CMD_SHOW_BATCH, "(--data DIR | --train-x F --train-y F) [--augment LIST] --output F.png [flags]",
     "draw the first --batch training images, augmented as epoch 1 of training would see them, as a PNG grid"},
    {"doctor", NNRT_CMD_DOCTOR, "(--data DIR | --train-x F --train-y F) [--lr-curve F.svg] [train flags]",
     "sanity checks of the model, its data and its learning rate in seconds: a verdict per check (exit 1 if one fails)"},
    {"report", NNRT_CMD_REPORT, "--log M [--weights W] [--doctor F] --output F.html",
     "one self-contained HTML page of a run: curves, per-layer statistics, first-layer filters, the doctor's verdicts"},
    {"saliency", NNRT_CMD_SALIENCY, "--weights W --input X --index I [--class C | --unit U] --output F.png|F.npy [flags]",
     "the gradient of a class score with respect to one input, as a heat map beside the input"},
    {"maximize", NNRT_CMD_MAXIMIZE, "--weights W --unit U --output F.png|F.npy [flags]",
     "synthesize the input that maximizes a unit, by gradient ascent from a small seeded random start"},
};
enum { N_COMMANDS = sizeof commands / sizeof commands[0] };

static const char *cmd_name(nnrt_cmd c) {
    for (int i = 0; i < N_COMMANDS; i++) if (commands[i].cmd == c) return commands[i].name;
    return "?";
}

// ----------------------------------------------------------------------------
// help

static void flag_default(const nnrt_model *m, const flag *f, char *buf, size_t cap) {
    buf[0] = 0;
    if (strcmp(f->name, "epochs") == 0) snprintf(buf, cap, " (default %d)", m->default_epochs);
    else if (strcmp(f->name, "batch") == 0) snprintf(buf, cap, " (default %d, at most %d)", m->default_batch, m->max_batch);
    else if (strcmp(f->name, "seed") == 0) snprintf(buf, cap, " (default %llu)", (unsigned long long)m->default_seed);
    else if (strcmp(f->name, "log-every") == 0) snprintf(buf, cap, " (default 50)");
    else if (strcmp(f->name, "checkpoint-every") == 0) snprintf(buf, cap, " (default 1)");
    else if (strcmp(f->name, "samples") == 0) snprintf(buf, cap, " (default 4)");
    else if (strcmp(f->name, "tol") == 0) snprintf(buf, cap, " (default 1e-4)");
    else if (strcmp(f->name, "floor") == 0) snprintf(buf, cap, " (default 1e-4)");
    else if (strcmp(f->name, "index") == 0) snprintf(buf, cap, " (default 0)");
    else if (f->cmds == MX && strcmp(f->name, "steps") == 0) snprintf(buf, cap, " (default 200)");
    else if (strcmp(f->name, "lr") == 0) snprintf(buf, cap, " (default 0.1)");
    else if (strcmp(f->name, "l2") == 0) snprintf(buf, cap, " (default 0.01)");
    else if (strcmp(f->name, "jitter") == 0) snprintf(buf, cap, " (default 1)");
    else if (strcmp(f->name, "blur-every") == 0) snprintf(buf, cap, " (default 4)");
}

static void print_hparams(const nnrt_model *m) {
    for (int i = 0; i < m->n_hparams; i++) {
        char name[64], left[80];
        nnrt_flag_spelling(m->hparams[i].name, name, sizeof name);
        snprintf(left, sizeof left, "--%s X", name);
        char range[64];
        nnrt_hparam_in_range(m, i, 0, range, sizeof range);
        printf("  %-20s %s%s (default %g); X in %s\n", left, strlen(left) >= 20 ? " " : "", m->hparams[i].help ? m->hparams[i].help : "",
               m->hparams[i].value, range);
    }
}

static void print_main_help(const nnrt_model *m, const char *prog) {
    printf("usage: %s <command> [flags]\n\n", prog);
    printf("Trainer for the model '%s' (%d inputs -> %d %s, %zu parameters), generated by nncc.\n\ncommands:\n",
           m->name, m->input_dim, m->output_dim, m->target_kind == NNRT_TARGET_CLASS ? "classes" : "outputs", m->params_numel);
    for (int i = 0; i < N_COMMANDS; i++) printf("  %-10s %s\n", commands[i].name, commands[i].help);
    if (m->n_hparams) {
        printf("\nhyperparameters (flags of 'train' and 'search'):\n");
        print_hparams(m);
    }
    printf("\nenvironment:\n"
           "  NNRT_GEMM            blas (OpenBLAS), nnrt (the best kernels this CPU runs), avx512 or avx2\n"
           "                       (default: nnrt's AVX-512, else AVX2 kernels, else OpenBLAS)\n"
           "  OPENBLAS_CORETYPE    OpenBLAS's kernels (default: chosen from the CPU's features)\n"
           "  OPENBLAS_NUM_THREADS OpenBLAS's threads (default: 1; --threads sets the trainer's own)\n");
    printf("\nRun '%s <command> --help' for the flags of a command.\n", prog);
}

static void print_cmd_help(const nnrt_model *m, const char *prog, int c) {
    printf("usage: %s %s %s\n\n%s.\n\nflags:\n", prog, commands[c].name, commands[c].args, commands[c].help);
    for (int i = 0; i < N_FLAGS; i++) {
        if (!(flags[i].cmds & commands[c].cmd)) continue;
        char left[64], def[64];
        snprintf(left, sizeof left, "--%s%s%s", flags[i].name, flags[i].metavar ? " " : "", flags[i].metavar ? flags[i].metavar : "");
        flag_default(m, &flags[i], def, sizeof def);
        char range[80] = "";
        if (flags[i].kind != F_STR && flags[i].kind != F_BOOL && flags[i].kind != F_U64) {
            char r[64];
            flag_range fr = flags[i].range;
            if (strcmp(flags[i].name, "batch") == 0 || strcmp(flags[i].name, "samples") == 0) fr.hi = m->max_batch;
            nnrt_range_str(&fr, r, sizeof r);
            snprintf(range, sizeof range, "; %s in %s", flags[i].metavar, r);
        }
        printf("  %-20s %s%s%s%s\n", left, strlen(left) >= 20 ? " " : "", flags[i].help, def, range);
    }
    printf("  %-20s %s\n", "--help", "show this help");
    if (commands[c].cmd == NNRT_CMD_TRAIN && m->n_hparams) { printf("\nhyperparameters:\n"); print_hparams(m); }
    if (commands[c].cmd == NNRT_CMD_SEARCH) {
        if (m->n_hparams) {
            printf("\nhyperparameters, each fixed (X), a list (X,Y,...), uniform:A:B or loguniform:A:B:\n");
            print_hparams(m);
        }
        printf("\nWith only numbers and lists the search is the whole grid, in order; with a uniform: or loguniform:\n"
               "spec it is a random search of --trials N draws (lists then drawn from evenly), from the SEARCH\n"
               "stream of --seed. Every trial trains from the same init, data order and dropout masks (--seed),\n"
               "with the train flags given (--epochs, --early-stop, ...), and is ranked by --search-on on the\n"
               "validation set (with --early-stop, at its best epoch). A trial whose loss stops being finite is\n"
               "out. --save writes the best trial's weights; --log writes one JSON line per trial and the best.\n"
               "--folds K scores each setting by K-fold cross-validation (mean ± std; --save then trains the best\n"
               "setting on all the data), --jobs N runs N trials at once in processes of their own, and --prune\n"
               "halving trains every trial a few epochs and only the best 1/--prune-factor longer, up to --epochs.\n");
    }
    if (commands[c].cmd == NNRT_CMD_TRAIN)
        printf("\n--profile adds a line per epoch and a table after training: milliseconds per step and share of\n"
               "the step spent in gemm (nnrt_sgemm and its fused epilogue), elementwise loops, row-wise kernels\n"
               "(softmax, cross-entropy), the optimizer update and the rest of train_step; then, per step and per\n"
               "epoch, the batch gather (uint8 -> float), logging, and per epoch the shuffle and the test evaluation;\n"
               "last, every kernel call of train_step by name, slowest first.\n"
               "The counters are totals since the start of training (never reset); the per-epoch lines show each\n"
               "epoch's own share. With --log, one {\"profile\":{...}} line (seconds) ends the JSONL file.\n"
               "Timing costs two clock reads per kernel call (well under 1%% of a step); the epoch seconds stay\n"
               "comparable, but benchmark without --profile.\n");
    if (commands[c].cmd == NNRT_CMD_DOCTOR)
        printf("\nChecks, each a PASS/FAIL/SKIP line with its number: initial loss vs log(C) (or the labels' variance),\n"
               "overfitting two batches in --steps (default 200), gradcheck, the update ratio at step 5, learning on\n"
               "held-out samples, dead or saturated units at init (needs 'nncc compile --monitor'), and an LR range\n"
               "test that suggests a rate. Exit status 0 if none failed, 1 otherwise (see docs/trainer.md).\n");
    if (commands[c].cmd == NNRT_CMD_GRADCHECK)
        printf("\nEach trainable parameter is checked on all its elements when it has at most 64, else on 64\n"
               "seeded-random ones: numerical = (L(p+eps) - L(p-eps)) / (2 eps) with eps = 1e-6 in float64,\n"
               "relative error = |analytic - numerical| / max(|analytic|, |numerical|, floor).\n"
               "The floor (--floor, default 1e-4) keeps the rounding noise of the numerical estimate\n"
               "(about 1e-10 absolute) from failing elements whose gradient is nearly zero.\n"
               "Without --weights the parameters come from the seeded init; without data the batch is\n"
               "synthetic (x ~ N(0,1), labels uniform or targets ~ N(0,1)). Exit status 1 if any error > --tol.\n");
}

// ----------------------------------------------------------------------------
// values

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b), row[64];
    if (la > 62 || lb > 62) return 99;
    for (int j = 0; j <= lb; j++) row[j] = j;
    for (int i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = i;
        for (int j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

/* Parses and checks a number flag's value, once: its kind (integer or not, sign) and then its range. */
static void set_value(const flag *f, const char *v, nnrt_options *o) {
    char *end, *field = (char *)o + f->offset;
    errno = 0;
    const flag_range *r = &f->range;
    if (f->kind == F_STR) {
        if (!*v) nnrt_usage_die("--%s: expected %s, got ''", f->name, strcmp(f->metavar, "LIST") == 0 ? "a list" : "a path");
        *(const char **)field = v;
        return;
    }
    if (f->kind == F_U64) {
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *v == '-' || *end || errno) nnrt_usage_die("--%s: expected a non-negative integer, got '%s'", f->name, v);
        *(uint64_t *)field = x;
        return;
    }
    double x;
    int integer = f->kind == F_POSINT || f->kind == F_COUNT;
    if (integer) {
        long long i = strtoll(v, &end, 10);
        x = (double)i;
        if (!*v || *end || errno || i < (long long)r->lo)
            nnrt_usage_die("--%s: expected a %s integer, got '%s'", f->name, f->kind == F_COUNT ? "non-negative" : "positive", v);
    } else {
        x = strtod(v, &end);
        if (!*v || *end || !isfinite(x) || (r->lo_open ? x <= r->lo : x < r->lo))
            nnrt_usage_die("--%s: expected a %s number, got '%s'", f->name, f->kind == F_POSFLOAT ? "positive" : "non-negative", v);
    }
    if (!nnrt_range_contains(r, x)) {
        char range[64];
        nnrt_range_str(r, range, sizeof range);
        if (r->words) nnrt_usage_die("--%s: expected %s, got %s", f->name, r->words, v);
        nnrt_usage_die("--%s: expected a%s %s in %s, got '%s'", f->name, integer ? "n" : "", integer ? "integer" : "number", range, v);
    }
    if (integer) *(int64_t *)field = (int64_t)x;
    else *(double *)field = x;
}

// ----------------------------------------------------------------------------
// parsing

static NNRT_NORETURN void unknown_flag(const nnrt_model *m, const nnrt_options *o, const char *name) {
    const char *best = NULL;
    char best_buf[64];
    int best_d = 3;  // suggest only close matches
    for (int i = 0; i < N_FLAGS; i++) {
        int d = edit_distance(name, flags[i].name);
        if ((flags[i].cmds & o->cmd) && d < best_d) { best_d = d; best = flags[i].name; }
    }
    for (int i = 0; (o->cmd & TS) && i < m->n_hparams; i++) {
        char h[64];
        nnrt_flag_spelling(m->hparams[i].name, h, sizeof h);
        int d = edit_distance(name, h);
        if (d < best_d) { best_d = d; snprintf(best_buf, sizeof best_buf, "%s", h); best = best_buf; }
    }
    if (!best && nnrt_find_hparam(m, name) >= 0)
        nnrt_usage_die("'--%s' is a hyperparameter of 'train' and 'search', not a flag of '%s'", name, cmd_name(o->cmd));
    for (int i = 0; i < N_FLAGS && !best; i++)
        if (strcmp(flags[i].name, name) == 0)
            nnrt_usage_die("flag '--%s' does not apply to '%s' (see '%s %s --help')", name, cmd_name(o->cmd), o->prog, cmd_name(o->cmd));
    char hint[96] = "";
    if (best) snprintf(hint, sizeof hint, "; did you mean '--%s'?", best);
    nnrt_usage_die("unknown flag '--%s' for '%s'%s (see '%s %s --help')", name, cmd_name(o->cmd), hint, o->prog, cmd_name(o->cmd));
}

/* One "--name[=value]" at argv[*i]; consumes the value from argv[*i + 1] when needed. */
static void parse_flag(const nnrt_model *m, int argc, char **argv, int *i, nnrt_options *o) {
    char name[128];
    const char *arg = argv[*i] + 2, *eq = strchr(arg, '='), *value = eq ? eq + 1 : NULL;
    snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - arg) : (int)strlen(arg), arg);
    const flag *f = NULL;
    for (int k = 0; k < N_FLAGS && !f; k++) if ((flags[k].cmds & o->cmd) && strcmp(flags[k].name, name) == 0) f = &flags[k];
    int hp = f || !(o->cmd & TS) ? -1 : nnrt_find_hparam(m, name);
    if (!f && hp < 0) unknown_flag(m, o, name);
    if (f ? o->given[f - flags] : o->hp_given[hp])
        nnrt_usage_die("--%s is given twice (give each flag once)", name);
    if (f) o->given[f - flags] = 1;
    else o->hp_given[hp] = 1;
    if (f && f->kind == F_BOOL) {
        if (value) nnrt_usage_die("--%s takes no value, got '%s'", name, value);
        *(int *)((char *)o + f->offset) = 1;
        return;
    }
    if (!value) {
        if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) nnrt_usage_die("--%s: missing value", name);
        value = argv[++*i];
    }
    if (f) { set_value(f, value, o); return; }
    if (o->cmd == NNRT_CMD_SEARCH) {  // a spec (a number, a list, uniform:A:B, loguniform:A:B), read by search.c
        o->hp_spec[hp] = value;
        return;
    }
    char *end;
    double x = strtod(value, &end);
    if (!*value || *end || !isfinite(x)) nnrt_usage_die("--%s: expected a number, got '%s'", name, value);
    char range[64];
    if (!nnrt_hparam_in_range(m, hp, x, range, sizeof range))
        nnrt_usage_die("--%s: expected a number in %s, got '%s'", name, range, value);
    o->hp[hp] = x;
}

/* The -x/-y pairs (a -y file, or a CSV's --label-column, not both) and --delimiter. */
static void check_csv_options(nnrt_options *o) {
    const char *c = cmd_name(o->cmd);
    static const char *const pairs[][2] = {{"train-x", "train-y"}, {"test-x", "test-y"}, {"val-x", "val-y"}};
    const char *given[][2] = {{o->train_x, o->train_y}, {o->test_x, o->test_y}, {o->val_x, o->val_y}};
    for (int i = 0; i < 3; i++) {
        if (given[i][1] && o->label_column)
            nnrt_usage_die("--%s: not with --label-column %s (the labels are that column of --%s)", pairs[i][1], o->label_column,
                           pairs[i][0]);
        if (!given[i][0] != !given[i][1] && !(given[i][0] && o->label_column))
            nnrt_usage_die("%s: --%s and --%s go together (or give --label-column C for a .csv that holds the labels)", c,
                           pairs[i][0], pairs[i][1]);
    }
    const char *d = o->delimiter ? o->delimiter : ",";
    if (strcmp(d, "tab") == 0 || strcmp(d, "\\t") == 0) o->csv_delim = '\t';
    else if (strlen(d) == 1 && d[0] != '"' && d[0] != '\n' && d[0] != '\r') o->csv_delim = d[0];
    else nnrt_usage_die("--delimiter: expected one character (not a quote or a newline) or tab, got '%s'", d);
}

/* search's --folds, --jobs and --prune. */
static void check_search_options(nnrt_options *o) {
    if (o->folds == 1) nnrt_usage_die("--folds: expected at least 2 folds (one fold would leave nothing to train on), got 1");
    if (o->folds && (o->val_x || nnrt_flag_given(o, "val-split")))
        nnrt_usage_die("--folds: the folds are the validation sets; not with --%s", o->val_x ? "val-x" : "val-split");
    if (o->folds && (o->early_stop || nnrt_flag_given(o, "reduce-lr-on-plateau")))
        nnrt_usage_die("--folds: not with --%s (each fold has its own validation set, and the final model trained on "
                       "all the data has none)", o->early_stop ? "early-stop" : "reduce-lr-on-plateau");
    if (!o->jobs) o->jobs = 1;
    if (o->jobs > 1 && nnrt_flag_given(o, "threads") && o->threads > 1)
        nnrt_usage_die("--jobs %lld: each trial runs in a process of its own on one thread; not with --threads %lld",
                       (long long)o->jobs, (long long)o->threads);
    if (o->jobs > 1) o->threads = 1;
    if (nnrt_flag_given(o, "prune-factor") && !o->prune) nnrt_usage_die("--prune-factor: needs --prune halving");
    if (o->prune && strcmp(o->prune, "halving") != 0) nnrt_usage_die("--prune: expected halving, got '%s'", o->prune);
    if (nnrt_flag_given(o, "prune-factor") && o->prune_factor < 2)
        nnrt_usage_die("--prune-factor: expected an integer of at least 2, got %lld", (long long)o->prune_factor);
    if (!o->prune_factor) o->prune_factor = 3;
}

/* saliency's and maximize's flags (saliency.c, maximize.c check the unit and the sample against the model and the
   file). */
static void check_insight_options(nnrt_options *o) {
    const char *c = cmd_name(o->cmd);
    if (!o->weights) nnrt_usage_die("%s: needs --weights W (see '%s %s --help')", c, o->prog, c);
    if (o->cmd == NNRT_CMD_SALIENCY && !o->input) nnrt_usage_die("saliency: needs --input X, the file of the sample (see '%s saliency --help')", o->prog);
    if (o->cmd == NNRT_CMD_MAXIMIZE && !o->unit) nnrt_usage_die("maximize: needs --unit U, a class C or LAYER:INDEX (see '%s maximize --help')", o->prog);
    if (!o->output) nnrt_usage_die("%s: needs --output F.png or F.npy (see '%s %s --help')", c, o->prog, c);
    size_t len = strlen(o->output);
    if (len < 4 || (strcmp(o->output + len - 4, ".png") != 0 && strcmp(o->output + len - 4, ".npy") != 0))
        nnrt_usage_die("--output %s: expected a .png (the picture) or .npy (the raw values) file name", o->output);
    if (o->unit && nnrt_flag_given(o, "class")) nnrt_usage_die("saliency: give --class C or --unit U, not both");
}

/* The combinations of flags each command needs. */
static void check_options(const nnrt_model *m, nnrt_options *o) {
    const char *c = cmd_name(o->cmd);
    if (o->batch > m->max_batch)
        nnrt_usage_die("--batch: %lld is more than this model's maximum batch of %d (fixed when it was compiled)", (long long)o->batch, m->max_batch);
    if (o->samples > m->max_batch)
        nnrt_usage_die("--samples: %lld is more than this model's maximum batch of %d", (long long)o->samples, m->max_batch);
    if (o->data && (o->train_x || o->train_y || o->test_x || o->test_y))
        nnrt_usage_die("%s: give either --data or --train-x/--train-y/--test-x/--test-y, not both", c);
    check_csv_options(o);
    if ((o->cmd & (TS | SB)) && !o->data && !o->train_x)
        nnrt_usage_die("%s: needs --data DIR, --train-x F --train-y F, or --train-x F.csv --label-column C (see '%s %s --help')",
                       c, o->prog, c);
    if (o->labels && m->target_kind != NNRT_TARGET_CLASS)
        nnrt_usage_die("predict --labels: model '%s' is not a classifier (its outputs are values, not classes)", m->name);
    check_search_options(o);
    if (o->cmd == NNRT_CMD_SEARCH && !o->folds && !o->val_x && nnrt_flag_given(o, "val-split") && !(o->val_split > 0))
        nnrt_usage_die("search: needs a validation set (--val-split F with F > 0, or --val-x and --val-y) to rank the "
                       "trials: ranking them on the test set would tune to it");
    if (!o->search_on) o->search_on = "val_loss";
    if (strcmp(o->search_on, "val_loss") != 0 && strcmp(o->search_on, "val_acc") != 0)
        nnrt_usage_die("--search-on: expected val_loss or val_acc, got '%s'", o->search_on);
    if (strcmp(o->search_on, "val_acc") == 0 && m->target_kind != NNRT_TARGET_CLASS)
        nnrt_usage_die("--search-on val_acc: model '%s' has no accuracy (it is not a classifier); use val_loss", m->name);
    if (o->cmd == NNRT_CMD_EVAL && !o->data && !o->test_x)
        nnrt_usage_die("eval: needs --data DIR, --test-x F --test-y F, or --test-x F.csv --label-column C (see '%s eval --help')",
                       o->prog);
    if ((o->cmd == NNRT_CMD_EVAL || o->cmd == NNRT_CMD_PREDICT) && !o->weights)
        nnrt_usage_die("%s: needs --weights W (see '%s %s --help')", c, o->prog, c);
    if (o->cmd == NNRT_CMD_PREDICT && (!o->input || !o->output))
        nnrt_usage_die("predict: needs --input X and --output Y (see '%s predict --help')", o->prog);
    if (o->cmd == NNRT_CMD_FILTERS && (!o->weights || !o->output))
        nnrt_usage_die("filters: needs --weights W and --output F.png (see '%s filters --help')", o->prog);
    if (o->cmd == NNRT_CMD_SHOW_BATCH && !o->output)
        nnrt_usage_die("show-batch: needs --output F.png (see '%s show-batch --help')", o->prog);
    if (o->cmd == NNRT_CMD_REPORT && (!o->log || !o->output))
        nnrt_usage_die("report: needs --log M and --output F.html (see '%s report --help')", o->prog);
    if (o->cmd == NNRT_CMD_TRAIN && o->monitor) {
        nnrt_monitor_parse(o->monitor);
        if (!o->log) nnrt_usage_die("--monitor: needs --log M (the statistics go to the JSON Lines log)");
    }
    if ((o->cmd & (FI | SB)) && (strlen(o->output) < 4 || strcmp(o->output + strlen(o->output) - 4, ".png") != 0))
        nnrt_usage_die("--output %s: expected a .png file name", o->output);
    if (o->cmd & (SA | MX)) check_insight_options(o);
    if (o->cmd == NNRT_CMD_PREDICT && !nnrt_predict_format(o->output))
        nnrt_usage_die("--output %s: expected a .npy or .csv file name (the format follows the extension)", o->output);

    if (o->val_x && nnrt_flag_given(o, "val-split")) nnrt_usage_die("train: give either --val-split or --val-x/--val-y, not both");
    if ((o->cmd & TS) && !o->val_x && !o->folds && !nnrt_flag_given(o, "val-split")) {
        o->val_split = NNRT_VAL_SPLIT_DEFAULT;
        o->val_split_default = 1;
    }
    if (o->report_test && !o->data)
        nnrt_usage_die("--report-test: reports the test split of --data DIR; test files given with --test-x/--test-y are "
                       "reported without it");
    if (o->resume && o->init) nnrt_usage_die("train: --resume continues a checkpoint; --init starts from weights: give one");
    if (o->steps && nnrt_flag_given(o, "epochs")) nnrt_usage_die("--steps: give --epochs or --steps, not both");
    if (o->steps && (o->checkpoint || o->resume))
        nnrt_usage_die("--steps: not with --%s (checkpoints are taken at epoch ends, and a step budget ends part-way "
                       "through an epoch; use --epochs)", o->checkpoint ? "checkpoint" : "resume");
    if ((o->early_stop_on || nnrt_flag_given(o, "early-stop-delta")) && !o->early_stop)
        nnrt_usage_die("--%s: needs --early-stop K (the epochs without improvement before training stops)",
                       o->early_stop_on ? "early-stop-on" : "early-stop-delta");
    if (!o->early_stop_on) o->early_stop_on = "val_loss";
    if (strcmp(o->early_stop_on, "val_loss") != 0 && strcmp(o->early_stop_on, "val_acc") != 0)
        nnrt_usage_die("--early-stop-on: expected val_loss or val_acc, got '%s'", o->early_stop_on);
    if (strcmp(o->early_stop_on, "val_acc") == 0 && m->target_kind != NNRT_TARGET_CLASS)
        nnrt_usage_die("--early-stop-on val_acc: model '%s' has no accuracy (it is not a classifier); use val_loss", m->name);
    static const char *const plateau_flags[] = {"plateau-on", "plateau-factor", "plateau-threshold", "plateau-cooldown", "plateau-min-lr"};
    for (size_t i = 0; i < sizeof plateau_flags / sizeof *plateau_flags; i++)
        if (nnrt_flag_given(o, plateau_flags[i]) && !nnrt_flag_given(o, "reduce-lr-on-plateau"))
            nnrt_usage_die("--%s: needs --reduce-lr-on-plateau P (the epochs without improvement it tolerates)", plateau_flags[i]);
    if (!o->plateau_on) o->plateau_on = "val_loss";
    if (strcmp(o->plateau_on, "val_loss") != 0 && strcmp(o->plateau_on, "val_acc") != 0 && strcmp(o->plateau_on, "train_loss") != 0)
        nnrt_usage_die("--plateau-on: expected val_loss, val_acc or train_loss, got '%s'", o->plateau_on);
    if (strcmp(o->plateau_on, "val_acc") == 0 && m->target_kind != NNRT_TARGET_CLASS)
        nnrt_usage_die("--plateau-on val_acc: model '%s' has no accuracy (it is not a classifier); use val_loss", m->name);
    if (o->save_ema && !nnrt_flag_given(o, "ema")) nnrt_usage_die("--save-ema: needs --ema D (the average's decay)");
    // SWA's and --snapshots' combinations: nnrt_swa_check, once a resumed run has taken its checkpoint's
    if (o->augment) nnrt_augment_parse(o->augment, m, &o->aug);
    nnrt_mix_parse(o->mixup, o->cutmix, m, &o->mix);
    if (nnrt_flag_given(o, "reduce-lr-on-plateau") && nnrt_find_hparam(m, "lr") < 0)
        nnrt_usage_die("--reduce-lr-on-plateau: model '%s' has no learning rate hyperparameter (--lr) to reduce", m->name);
}

int nnrt_flag_given(const nnrt_options *o, const char *name) {
    for (int k = 0; k < N_FLAGS; k++) if (strcmp(flags[k].name, name) == 0 && (flags[k].cmds & o->cmd)) return o->given[k];
    return 0;
}

void nnrt_parse_args(const nnrt_model *m, int argc, char **argv, nnrt_options *o) {
    memset(o, 0, sizeof *o);
    o->prog = nnrt_basename(argc > 0 ? argv[0] : m->name);
    if (argc < 2) {
        print_main_help(m, o->prog);
        exit(NNRT_EXIT_USAGE);
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        print_main_help(m, o->prog);
        exit(0);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("%s: trainer of the model '%s', nncc runtime %s\n", o->prog, m->name, NNRT_VERSION);
        exit(0);
    }
    int c = -1;
    for (int i = 0; i < N_COMMANDS; i++) if (strcmp(argv[1], commands[i].name) == 0) c = i;
    if (c < 0)
        nnrt_usage_die("unknown command '%s' (expected train, eval, predict, gradcheck, search, filters, show-batch, doctor, report, saliency or maximize; see '%s --help')", argv[1], o->prog);
    o->cmd = commands[c].cmd;
    o->epochs = m->default_epochs;
    o->batch = m->default_batch;
    o->seed = m->default_seed;
    o->log_every = 50;
    o->samples = 4;
    o->tol = 1e-4;
    o->floor = 1e-4;
    o->hp = nnrt_calloc((size_t)m->n_hparams + 1, sizeof(double));
    o->hp_given = nnrt_calloc((size_t)m->n_hparams + 1, 1);
    o->hp_spec = nnrt_calloc((size_t)m->n_hparams + 1, sizeof *o->hp_spec);
    o->checkpoint_every = 1;
    o->plateau_factor = 0.1;
    o->plateau_threshold = 1e-4;
    if (o->cmd == NNRT_CMD_MAXIMIZE) o->steps = 200;
    o->ascent_lr = 0.1;
    o->l2 = 0.01;
    o->jitter = 1;
    o->blur_every = 4;
    for (int i = 0; i < m->n_hparams; i++) o->hp[i] = m->hparams[i].value;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_cmd_help(m, o->prog, c);
            exit(0);
        }
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0) argv[i] = (char *)"--output";  // the one short flag, as in nncc
        if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == 0)
            nnrt_usage_die("unexpected argument '%s' for '%s' (flags start with --; see '%s %s --help')", argv[i], commands[c].name, o->prog, commands[c].name);
        parse_flag(m, argc, argv, &i, o);
    }
    check_options(m, o);
}

void nnrt_options_free(nnrt_options *o) {
    free(o->hp);
    free(o->hp_given);
    free(o->hp_spec);
    free(o->mix.soft);  // --mixup/--cutmix's soft-target buffer (nnrt_mix_parse)
    o->mix.soft = NULL;
    o->hp = NULL;
    o->hp_given = NULL;
    o->hp_spec = NULL;
}
