/* train.c — the train command: the epoch loop, its checks for a diverging run, and the end of a run (save,
 * checkpoint). Its options live in their own files: early_stop.c, plateau.c, ema.c, swa.c, resume.c; the data it loads in
 * train_data.c; its evaluation in evaluate.c.
 *
 * Training: per epoch, shuffle the sample order (Fisher–Yates on the NNRT_STREAM_SHUFFLE stream) unless
 * --no-shuffle, then step through it in batches of B; the partial last batch is trained, not dropped,
 * so an epoch is ceil(N / B) steps. The batch buffers (two: a step reads one while the worker thread gathers the
 * next batch into the other, nnrt_gather_background) are allocated once, before the loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_compute.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_dist.h"
#include "nnrt_io.h"
#include "nnrt_lbfgs.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_monitor.h"
#include "nnrt_profile.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

// ----------------------------------------------------------------------------
// steps and epochs

typedef struct {
    int64_t *order;  // (N) sample indices in this epoch's order
    float *xb[2];    // (B, input_dim), twice: one step's batch, and the next one's being gathered
    void *yb[2];     // (B) int32 labels or (B, target_dim) floats, likewise
    char why[512];   // set when a step's gradients or weights went non-finite while its loss stayed finite
    double first_loss;  // of this run's first step (NaN before it)
    int warned;      // the loss-growth warning was printed
    nnrt_lbfgs *lbfgs;  // a full-batch L-BFGS model's history (lbfgs.c), from its first epoch on
    double swa_from;    // --swa-anneal-epochs: the rate SWA's annealing starts from (swa.c; NaN until known)
} train_buffers;

/* 1 when every element is finite. x − x is 0 for a finite x and NaN for NaN or ±inf; OR-ing the comparisons
   (no reassociation of sums) vectorizes. */
static int all_finite(const float *v, size_t n) {
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= (v[i] - v[i]) != 0.0f;
    return !bad;
}

typedef struct { const float *v; size_t n; int finite[2]; } finite_job;

static void finite_half(void *arg, int part) {
    finite_job *j = arg;
    size_t mid = j->n / 2;
    j->finite[part] = part ? all_finite(j->v + mid, j->n - mid) : all_finite(j->v, mid);
}

static const char *nonfinite_word(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return isnan(v[i]) ? "NaN" : v[i] > 0 ? "+inf" : "-inf";
    return NULL;
}

/* After a step whose loss is finite: whether its updated weights are too. A ReLU maps NaN to 0, so a NaN weight
   can leave the loss finite while it spreads. The gradients are not scanned every step: a non-finite gradient
   makes its weights non-finite in the same update (p − lr·g, Adam's m/√v, even at lr 0), and the weights are
   what must never be saved. One pass over the params arena, split over both threads: 13 µs per step for the
   235 k parameters of examples/fashion_mnist_mlp (--profile's "other", best of 5: 0.014 ms against 0.001 ms
   without it), 2 % of its fastest step (0.66 ms). Folding the check into the generated optimizer loop, which
   has the values in registers already, would make it free. When a weight is not
   finite, why names the first parameter (in table order: layer, then tensor) whose gradient or new value is
   not, and it returns 0. */
static int step_finite(const nnrt_ctx *ctx, char *why, size_t cap) {
    const nnrt_model *m = ctx->model;
    finite_job j = {ctx->params, m->params_numel, {0, 0}};
    nnrt_par2(finite_half, &j);
    if (j.finite[0] && j.finite[1]) return 1;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        const char *g = p->trainable ? nonfinite_word(ctx->grads + p->offset, p->numel) : NULL;
        const char *w = nonfinite_word(ctx->params + p->offset, p->numel);
        if (g) { snprintf(why, cap, "the gradient of %s is %s", p->name, g); return 0; }
        if (w) { snprintf(why, cap, "%s became %s in the update (its gradient was finite)", p->name, w); return 0; }
    }
    snprintf(why, cap, "a weight is not finite");
    return 0;
}

/* Adam at a huge learning rate can climb to a loss of 1e20 and stay finite: say so once, when the loss has grown
   by three orders of magnitude over the run's first one. */
enum { LOSS_GROWTH_WARN = 1000 };
static void watch_loss_growth(const nnrt_ctx *ctx, train_buffers *b, double loss) {
    if (isnan(b->first_loss)) { b->first_loss = loss; return; }
    if (b->warned || !(loss > LOSS_GROWTH_WARN * fmax(b->first_loss, 1e-3))) return;
    b->warned = 1;
    char lr[64] = "";
    if (ctx->lr_hparam >= 0) snprintf(lr, sizeof lr, " (--lr %g)", ctx->hp[ctx->lr_hparam]);
    fflush(stdout);
    fprintf(stderr, "warning: the loss grew from %.4g at the first step to %.4g at step %lld, more than %d-fold: training "
                    "is diverging; a smaller learning rate%s usually helps\n", b->first_loss, loss, (long long)ctx->step,
            LOSS_GROWTH_WARN, lr);
}

/* One epoch over `train` (with --steps, the budget's last epoch stops part-way); returns the sample-weighted mean
   of its batch losses. With prof (--profile), the
   gather, the train_step call and the logging of every step are timed into it. A step whose loss is not finite
   ends the epoch there: its loss is logged, *diverged gets the step's index in the epoch (else it is −1), and
   that loss is returned. So does a step whose gradients or updated weights are not finite (b->why says which). With ema (--ema), every finite step updates the moving average (timed with the step). */
static double train_epoch(nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train, train_buffers *b, nnrt_log *log,
                          nnrt_profile *prof, nnrt_ema *ema, int64_t *diverged) {
    const nnrt_model *m = ctx->model;
    if (m->lbfgs) return nnrt_lbfgs_epoch(&b->lbfgs, ctx, o, train, b->xb[0], b->yb[0], log, prof, diverged, b->why, sizeof b->why);
    int64_t N = train->x.n, B = o->batch, steps = ctx->steps_per_epoch, samples = 0;
    if (o->steps && o->steps - ctx->step < steps) steps = o->steps - ctx->step;  // --steps: the budget's last epoch
    double loss_sum = 0;
    *diverged = -1;
    int cur = 0;           // the batch of step s is in b->xb[cur], b->yb[cur]
    int gathered = 0;      // 1 when the previous step gathered it already
    nnrt_augment aug = o->aug;  // --augment: a function of (seed, epoch, sample), applied as each batch is gathered
    aug.seed = o->seed;
    aug.epoch = ctx->epoch;
    const nnrt_augment *augment = aug.on ? &aug : NULL;
    nnrt_mix mix = o->mix;  // --mixup/--cutmix: a function of (seed, epoch, step), applied to the gathered copy
    mix.seed = o->seed;
    mix.epoch = ctx->epoch;
    for (int64_t s = 0; s < steps; s++) {
        int n = (int)(N - s * B < B ? N - s * B : B);
        int64_t lo;  // under mpirun this rank trains samples [lo, lo + mine) of the batch (nnrt_dist.h); else all n
        int mine;
        nnrt_dist_shard(n, &lo, &mine);
        double t0 = prof ? nnrt_now() : 0;
        if (!gathered) {
            nnrt_gather_x_augmented(&train->x, b->order + s * B + lo, mine, b->xb[cur], augment);
            nnrt_gather_y(&train->y, b->order + s * B + lo, mine, b->yb[cur]);
        }
        // the next batch, gathered by the worker while it waits during this step (the rest after it)
        int64_t after = s + 1 < steps ? N - (s + 1) * B : 0;  // samples left after this batch
        gathered = after > 0;
        if (gathered) {
            int64_t next_lo;
            int next_mine;
            nnrt_dist_shard(after < B ? after : B, &next_lo, &next_mine);
            nnrt_gather_background(train, b->order + (s + 1) * B + next_lo, next_mine, b->xb[1 - cur], b->yb[1 - cur], augment);
        }
        double t1 = prof ? nnrt_now() : 0;
        ctx->step++;
        ctx->lr_override = nnrt_swa_step_lr(o, ctx, b->swa_from);  // --swa-lr, --snapshots: in the schedule's place (0: none)
        ctx->training = 1;
        nnrt_dist_step_begin(ctx, n);
        // the global batch's loss: train_step, its twin with --monitor, or the soft-target step (--mixup, --cutmix;
        // under mpirun each rank mixes within its own part of the batch)
        float loss = nnrt_dist_step_end(mix.on ? nnrt_mix_step(ctx, &mix, s, mine, b->xb[cur], b->yb[cur])
                                               : nnrt_monitor_train_step(ctx, mine, b->xb[cur], b->yb[cur]));
        ctx->training = 0;
        nnrt_swa_step_taken(o, ctx, &b->swa_from);
        int finite = isfinite(loss) && step_finite(ctx, b->why, sizeof b->why);
        if (ema && finite) nnrt_ema_update(m, ema->weights, ctx->params, o->ema, ema->count++ == 0);
        double t2 = prof ? nnrt_now() : 0;
        if (gathered) nnrt_par_background_finish();
        double t3 = prof ? nnrt_now() : 0;
        cur ^= gathered;
        if (!finite) {
            nnrt_log_step(log, ctx->step, ctx->epoch + 1, loss, ctx->lr);
            nnrt_log_bar_clear(log);
            *diverged = s;
            return loss;
        }
        loss_sum += (double)loss * n;
        samples += n;
        watch_loss_growth(ctx, b, loss);
        if (ctx->step % o->log_every == 0) nnrt_log_step(log, ctx->step, ctx->epoch + 1, loss, ctx->lr);
        nnrt_log_bar(log, ctx->epoch + 1, o->epochs, s + 1, steps, loss);
        if (prof) {
            prof->gather += (t1 - t0) + (t3 - t2);
            prof->step += t2 - t1;
            prof->log += nnrt_now() - t3;
            prof->steps++;
            prof->samples += n;
        }
    }
    nnrt_log_bar_clear(log);
    return loss_sum / (double)samples;
}

/* Fails now, not after an hour of training, when the weights file cannot be created. */
static void check_writable(const char *path) {
    nnrt_atomic_abort(nnrt_atomic_open(path));
}

// ----------------------------------------------------------------------------
// the run

/* "  val_loss X  val_acc Y  test_loss Z  test_acc W" for the sets evaluated. */
static void print_metrics(nnrt_split_metrics val, nnrt_split_metrics test) {
    if (val.has) printf("  val_loss %.4f", val.loss);
    if (val.has && val.acc >= 0) printf("  val_acc %.4f", val.acc);
    if (test.has) printf("  test_loss %.4f", test.loss);
    if (test.has && test.acc >= 0) printf("  test_acc %.4f", test.acc);
}

/* Prints and logs an epoch's line: train loss, then the validation and test sets' loss (and accuracy); with --ema,
   a second line with the moving average's. */
static void report_epoch(nnrt_log *log, const nnrt_ctx *ctx, int64_t epochs, double train_loss, nnrt_split_metrics val,
                         nnrt_split_metrics test, nnrt_split_metrics ema_val, nnrt_split_metrics ema_test, double seconds,
                         int print) {
    nnrt_log_epoch(log, ctx->epoch + 1, train_loss, val, test, ema_val, ema_test, seconds);
    if (!print) return;
    printf("epoch %lld/%lld  train_loss %.4f", (long long)ctx->epoch + 1, (long long)epochs, train_loss);
    print_metrics(val, test);
    printf("  %.2fs\n", seconds);
    if (ema_val.has || ema_test.has) {
        printf("  ema:");
        print_metrics(ema_val, ema_test);
        printf("\n");
    }
}

/* The end of a run whose loss stopped being finite (a learning rate too large, say): training more steps would
   only carry NaN on, and the weights would overwrite --save with them. Nothing is saved; a checkpoint written at
   an earlier epoch's end stays as it was. Exit 1. */
static NNRT_NORETURN void stop_diverged(const nnrt_ctx *ctx, const nnrt_options *o, nnrt_log *log, double loss,
                                        int64_t step_in_epoch, int64_t kept_epoch, const char *why) {
    nnrt_log_close(log);
    char lr[64] = "";
    if (ctx->lr_hparam >= 0) snprintf(lr, sizeof lr, " (--lr, now %g)", ctx->hp[ctx->lr_hparam]);
    char kept[1024] = "";
    if (o->save) snprintf(kept, sizeof kept, "; %s was not written", o->save);
    if (o->checkpoint && kept_epoch >= 0)
        snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "; the checkpoint %s keeps epoch %lld (--resume it with other hyperparameters)",
                 o->checkpoint, (long long)kept_epoch);
    else if (o->checkpoint)
        snprintf(kept + strlen(kept), sizeof kept - strlen(kept), "; no checkpoint was written in this run");
    if (isfinite(loss))  // the loss was finite, a gradient or weight was not
        nnrt_die("training diverged: at step %lld (epoch %lld, batch %lld of %lld) %s, so training stopped%s. "
                 "A smaller learning rate%s usually helps", (long long)ctx->step, (long long)ctx->epoch + 1,
                 (long long)step_in_epoch + 1, (long long)ctx->steps_per_epoch, why, kept, lr);
    nnrt_die("training diverged: the loss of step %lld (epoch %lld, batch %lld of %lld) is %s, so training stopped%s. "
             "A smaller learning rate%s usually helps", (long long)ctx->step, (long long)ctx->epoch + 1,
             (long long)step_in_epoch + 1, (long long)ctx->steps_per_epoch, isnan(loss) ? "NaN" : loss > 0 ? "+inf" : "-inf",
             kept, lr);
}

/* Writes the checkpoint: out holds the run's settings; the rest is the state of the epoch loop after epochs_done
   epochs (and from b, SWA's annealing start and an L-BFGS model's history, b->lbfgs: NULL before its first epoch). */
static void write_checkpoint(const char *path, const nnrt_ctx *ctx, nnrt_checkpoint *out, int64_t epochs_done,
                             const uint64_t shuffle_rng[4], const nnrt_early_stop *es, const nnrt_plateau *plateau,
                             const nnrt_ema *ema, const nnrt_ema *swa, const train_buffers *b) {
    out->epochs_done = epochs_done;
    memcpy(out->shuffle_rng, shuffle_rng, sizeof out->shuffle_rng);
    out->es = *es;
    out->plateau = *plateau;
    out->ema = *ema;
    out->swa = *swa;
    out->swa_anneal_from = b->swa_from;
    if (ctx->model->lbfgs) nnrt_lbfgs_history_get(b->lbfgs, ctx->model, &out->lbfgs);
    nnrt_checkpoint_save(path, ctx, out);
    nnrt_lbfgs_history_free(&out->lbfgs);
}

int nnrt_cmd_train(nnrt_ctx *ctx, const nnrt_options *o) { return nnrt_train_run(ctx, o, NULL); }

int nnrt_train_run(nnrt_ctx *ctx, const nnrt_options *o, nnrt_train_result *res) {
    const nnrt_model *m = ctx->model;
    int talk = !res || o->verbose;  // the epoch lines and the early-stopping and plateau messages
    nnrt_options run = *o;   // o, with a resumed checkpoint's settings
    nnrt_checkpoint ck = {0};
    if (m->lbfgs) nnrt_lbfgs_check_flags(o);
    if (o->resume) {
        nnrt_checkpoint_load(o->resume, ctx, &ck);
        nnrt_resume_options(ctx, o, &run, &ck);
    }
    // A search's trial runs on the data it is given (a fold's, say), whatever the flags say.
    int has_validation = res && res->data ? res->data->has_val : run.val_x || run.val_split > 0;
    if (nnrt_flag_given(o, "reduce-lr-on-plateau") && strncmp(run.plateau_on, "val_", 4) == 0 && !has_validation)
        nnrt_usage_die("--reduce-lr-on-plateau: it watches %s, which needs a validation set (--val-split F, or --val-x and "
                       "--val-y); --plateau-on train_loss watches the training loss instead", run.plateau_on);
    if (run.early_stop && !has_validation)
        nnrt_usage_die("--early-stop: needs a validation set (--val-split F, or --val-x and --val-y): the epoch it keeps "
                       "must not be chosen on the test set");
    nnrt_swa_check(&run, m);
    if (!run.steps) nnrt_swa_check_epochs(&run, 0);  // with --steps, below: the epochs follow from the data's size
    if (o->save) check_writable(o->save);
    if (o->save_ema) check_writable(o->save_ema);
    if (o->checkpoint) check_writable(o->checkpoint);
    nnrt_profile prof = {0}, *pr = o->profile ? &prof : NULL;
    if (pr) prof.timer_ns = nnrt_timer_cost_ns();
    double t_load = nnrt_now();
    int borrowed = res && res->data;  // a search's trials share the data it loaded once
    nnrt_train_data own;
    if (!borrowed) nnrt_train_data_load(&run, m, &own, o->resume ? &ck.info : NULL);
    const nnrt_train_data *data = borrowed ? res->data : &own;
    nnrt_dataset train = data->train, test = data->test, val = data->val;
    int has_test = data->has_test, has_val = data->has_val;
    if (has_validation && !has_val && (run.early_stop || (nnrt_flag_given(o, "reduce-lr-on-plateau") && strncmp(run.plateau_on, "val_", 4) == 0)))
        nnrt_usage_die("--%s: the training set's %lld samples are too few for the default validation split of %g; give "
                       "--val-x and --val-y", run.early_stop ? "early-stop" : "reduce-lr-on-plateau", (long long)train.x.n,
                       NNRT_VAL_SPLIT_DEFAULT);
    double t_init = nnrt_now();
    if (o->resume) nnrt_check_resumed_data(o->resume, &ck, &train, has_val ? val.x.n : 0);
    else if (o->init) nnrt_load_safetensors(o->init, m, ctx->params);
    else nnrt_init_params(m, ctx->params, run.seed);
    prof.load = t_init - t_load;
    prof.init = nnrt_now() - t_init;
    if (o->verbose) {
        nnrt_verbose_setup(m);
        nnrt_describe_data("train", &train);
        if (has_val) nnrt_describe_data("validation", &val);
        if (has_test) nnrt_describe_data("test", &test);
    }
    int64_t N = train.x.n, B = run.batch;
    ctx->steps_per_epoch = (N + B - 1) / B;
    if (run.steps) {
        run.epochs = (run.steps + ctx->steps_per_epoch - 1) / ctx->steps_per_epoch;  // the last may stop part-way
        nnrt_swa_check_epochs(&run, ctx->steps_per_epoch);
    }
    train_buffers b = {
        .order = nnrt_malloc(nnrt_mul_size((size_t)N, sizeof(int64_t), "order")),
        .xb = {nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float)),
               nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float))},
        .yb = {nnrt_aligned_calloc((size_t)B * (size_t)m->target_dim * 4), nnrt_aligned_calloc((size_t)B * (size_t)m->target_dim * 4)},
        .first_loss = NAN,
        .swa_from = nnrt_swa_anneal_from(&run, &ck, o->resume != NULL),
    };
    if (B < 1 || B > m->max_batch)  // the arena holds max_batch samples: the CLI and the checkpoint loader refuse more
        nnrt_die("internal: batch %lld outside 1..%d", (long long)B, m->max_batch);
    for (int64_t i = 0; i < N; i++) b.order[i] = o->resume ? ck.order[i] : i;
    if (o->resume && m->lbfgs) nnrt_lbfgs_restore(&b.lbfgs, ctx, &run, &train, b.xb[0], b.yb[0], &ck.lbfgs);
    uint64_t shuffle_rng[4];
    nnrt_rng_seed(shuffle_rng, run.seed, NNRT_STREAM_SHUFFLE);
    if (o->resume) {
        memcpy(shuffle_rng, ck.shuffle_rng, sizeof shuffle_rng);
        nnrt_resume_report(ctx, o, &run, &ck);
    }
    nnrt_log log;
    nnrt_log_open(&log, o->log, o->quiet, o->resume != NULL);
    nnrt_monitor mon;
    if (o->monitor && !res) nnrt_monitor_start(&mon, ctx, nnrt_monitor_parse(o->monitor), log.jsonl);
    nnrt_checkpoint out = {.epochs = run.epochs, .batch = B, .n_train = N, .n_val = has_val ? val.x.n : 0, .seed = run.seed,
                           .log_every = run.log_every, .no_shuffle = run.no_shuffle, .val_split = run.val_split, .order = b.order,
                           .info = data->info, .swa_start = run.swa_start, .swa_lr = run.swa_lr,
                           .swa_anneal_epochs = run.swa_anneal_epochs, .snapshots = run.snapshots, .aug = run.aug,
                           .mixup = run.mix.mixup, .cutmix = run.mix.cutmix};
    int64_t saved_at = -1;  // the epoch count of the last checkpoint written
    nnrt_early_stop es;
    nnrt_early_stop_start(&es, &run, &ck, m, o->resume != NULL, o->quiet);
    nnrt_plateau plateau;
    nnrt_plateau_start(&plateau, o, &run, &ck, o->resume != NULL);
    nnrt_ema ema;
    nnrt_ema_start(&ema, o, &ck, m);
    nnrt_ema swa;
    nnrt_swa_start(&swa, &run, &ck, m);
    // A checkpoint written where early stopping stopped (or past it, with a smaller --early-stop now) stays stopped:
    // a resumed run stops where one that never stopped would.
    int stop = es.on[0] && es.best_epoch > 0 && es.since >= run.early_stop;
    if (stop && talk)
        printf("early stopping: %s has not improved on epoch %lld's %.4f for %lld epoch%s (--early-stop %lld); the "
               "checkpoint stopped after epoch %lld\n", es.on, (long long)es.best_epoch, es.best, (long long)es.since,
               es.since == 1 ? "" : "s", (long long)run.early_stop, (long long)ck.epochs_done);

    ctx->profile = o->profile;  // the generated kernels time themselves into ctx->prof[]
    for (ctx->epoch = ck.epochs_done; !stop && ctx->epoch < run.epochs; ctx->epoch++) {
        nnrt_profile before = prof;
        double t_shuffle = nnrt_now();
        if (!run.no_shuffle) nnrt_rng_shuffle(shuffle_rng, b.order, N);
        nnrt_dist_epoch_begin(ctx);  // under mpirun: each rank's dropout stream
        double t0 = nnrt_now();
        int64_t diverged;
        double train_loss = train_epoch(ctx, &run, &train, &b, &log, pr, ema.on ? &ema : NULL, &diverged);
        nnrt_dist_epoch_end(ctx);  // under mpirun: rank 0's BatchNorm running statistics everywhere
        if (diverged >= 0 && res) {
            if (talk && isfinite(train_loss)) printf("at step %lld %s: the trial stops\n", (long long)ctx->step, b.why);
            else if (talk) printf("the loss of step %lld is not finite: the trial stops\n", (long long)ctx->step);
            res->diverged = 1;
            goto done;
        }
        if (diverged >= 0)  // the checkpoint kept: this run's last, or the one it resumed when it writes there too
            stop_diverged(ctx, o, &log, train_loss, diverged,
                          saved_at >= 0 ? saved_at : o->resume && o->checkpoint && strcmp(o->resume, o->checkpoint) == 0 ? ck.epochs_done : -1,
                          b.why);
        double seconds = nnrt_now() - t0;
        nnrt_swa_epoch_end(&swa, &run, ctx, &data->info);
        ctx->profile = 0;  // evaluation is timed as a whole, apart from the step's kernels
        nnrt_split_metrics vr = nnrt_evaluate_split(ctx, has_val, &val), tr = nnrt_evaluate_split(ctx, has_test, &test);
        nnrt_split_metrics evr = {0, NAN, -1}, etr = {0, NAN, -1};
        if (ema.on && ema.count > 0) {  // the same sets with the average in place of the weights
            evr = nnrt_evaluate_split_with(ctx, ema.weights, has_val, &val);
            etr = nnrt_evaluate_split_with(ctx, ema.weights, has_test, &test);
        }
        ctx->profile = o->profile;
        if (pr) {
            nnrt_profile_take_kernels(pr, ctx);
            prof.shuffle += t0 - t_shuffle;
            prof.train += seconds;
            prof.eval += nnrt_now() - t0 - seconds;
            prof.epochs++;
        }
        report_epoch(&log, ctx, run.epochs, train_loss, vr, tr, evr, etr, seconds, talk);
        if (pr) {
            nnrt_profile e = nnrt_profile_diff(&prof, &before);
            nnrt_profile_epoch_line(stdout, &e);
        }
        double lr_before = plateau.on[0] ? ctx->hp[ctx->lr_hparam] : 0;
        if (nnrt_plateau_update(&plateau, &run, ctx, train_loss, vr) && talk) {
            double lr = ctx->hp[ctx->lr_hparam];
            printf("reduce-lr-on-plateau: %s has not improved on %.4g for %lld epoch%s (patience %lld); --lr %g -> %g\n",
                   plateau.on, plateau.best, (long long)run.plateau + 1, run.plateau ? "s" : "", (long long)run.plateau,
                   lr_before, lr);
        }
        if (plateau.on[0] && ctx->hp[ctx->lr_hparam] != lr_before)
            nnrt_log_lr_reduced(&log, ctx->epoch + 1, ctx->hp[ctx->lr_hparam]);
        stop = nnrt_early_stop_update(&es, &run, vr, ctx);
        if (stop && talk) {
            printf("early stopping: %s has not improved on epoch %lld's %.4f for %lld epoch%s (--early-stop %lld); stopped "
                   "after epoch %lld of %lld\n", es.on, (long long)es.best_epoch, es.best, (long long)es.since,
                   es.since == 1 ? "" : "s", (long long)run.early_stop, (long long)ctx->epoch + 1, (long long)run.epochs);
        }
        if (stop) nnrt_log_early_stop(&log, ctx->epoch + 1, es.on, es.best_epoch, es.best);
        fflush(stdout);
        if (o->checkpoint && ((ctx->epoch + 1) % o->checkpoint_every == 0 || ctx->epoch + 1 == run.epochs || stop))
            write_checkpoint(o->checkpoint, ctx, &out, saved_at = ctx->epoch + 1, shuffle_rng, &es, &plateau, &ema, &swa, &b);
        if (stop) {
            ctx->epoch++;  // epochs done, as when the loop runs out
            break;
        }
    }
    ctx->profile = 0;
    nnrt_dist_check_same(ctx);  // under mpirun: every rank holds the same weights, bit for bit
    if (o->checkpoint && saved_at != ctx->epoch)  // no epoch ran: the checkpoint is the starting point
        write_checkpoint(o->checkpoint, ctx, &out, ctx->epoch, shuffle_rng, &es, &plateau, &ema, &swa, &b);
    nnrt_swa_finish(ctx, &swa, &run, data, &log, talk);  // update_bn and the average's metrics
    if (pr) {
        nnrt_profile_report(stdout, &prof);
        nnrt_profile_kernels_report(stdout, m, ctx->kprof, &prof);
        if (log.jsonl) nnrt_profile_json(log.jsonl, &prof, m, ctx->kprof);
    }
    if (ctx->monitor) nnrt_monitor_stop(&mon, ctx);
    nnrt_log_close(&log);
    int best = es.on[0] && es.best_epoch > 0;  // --save gets the best epoch's weights (the last if no metric was a number)
    float *saved = best ? es.weights : swa.count > 0 ? swa.weights : ctx->params;  // or SWA's average
    if (res) {
        memcpy(res->weights, best ? es.weights : ctx->params, m->params_numel * sizeof(float));
        res->val = nnrt_evaluate_split_with(ctx, res->weights, has_val, &val);
        res->epochs = ctx->epoch;
    }
    if (o->save) {
        nnrt_save_weights(o->save, m, saved, &data->info);
        if (!o->quiet && swa.count > 0) printf("saved %s (SWA: the average of %lld epochs)\n", o->save, (long long)swa.count);
        else if (!o->quiet && best)
            printf("saved %s (the weights of epoch %lld, the best %s: %.4f)\n", o->save, (long long)es.best_epoch, es.on, es.best);
        else if (!o->quiet) printf("saved %s\n", o->save);
    }
    if (o->save_ema) {  // before any step, the average is the weights themselves
        nnrt_save_weights(o->save_ema, m, ema.count > 0 ? ema.weights : ctx->params, &data->info);
        if (!o->quiet) printf("saved %s (the moving average of the weights, decay %g, over %lld steps)\n", o->save_ema, run.ema,
                              (long long)ema.count);
    }
    if (o->checkpoint && !o->quiet) printf("checkpoint %s (%lld epochs, step %lld)\n", o->checkpoint, (long long)ctx->epoch,
                                           (long long)ctx->step);
done:
    if (res && res->diverged) nnrt_log_close(&log);
    free(b.order); free(b.xb[0]); free(b.xb[1]); free(b.yb[0]); free(b.yb[1]); free(ck.order);
    free(es.weights); free(ck.es.weights); free(ema.weights); free(ck.ema.weights);
    nnrt_lbfgs_free(b.lbfgs);
    nnrt_lbfgs_history_free(&ck.lbfgs);
    free(swa.weights); free(ck.swa.weights);
    nnrt_data_info_free(&ck.info);
    nnrt_resume_free(o, &run);
    if (!borrowed) nnrt_train_data_free(&own);
    return 0;
}
