/* train.c — the train, eval and predict commands.
 *
 * Training: per epoch, shuffle the sample order (Fisher–Yates on the NNRT_STREAM_SHUFFLE stream) unless
 * --no-shuffle, then step through it in batches of B; the partial last batch is trained, not dropped,
 * so an epoch is ceil(N / B) steps. The batch buffers (two: a step reads one while the worker thread gathers the
 * next batch into the other, nnrt_gather_background) are allocated once, before the loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

// ----------------------------------------------------------------------------
// shared pieces

/* Both splits of an MNIST directory at once: gunzipping the test images on the worker thread while the caller
 * gunzips the training images takes the test set's 0.04 s (of 0.32 s for Fashion-MNIST) off the start. Errors
 * are reported as a sequential load would: the training set's first, then the test set's. */
typedef struct {
    const char *dir;
    const nnrt_model *m;
    nnrt_dataset *train, *test;
    int test_status;
    char test_error[1024];
} idx_dir_job;

static void load_idx_test(void *arg) {
    idx_dir_job *j = arg;
    *j->test = nnrt_load_idx_dir(j->dir, "t10k", j->m);
}

static void load_idx_part(void *arg, int part) {
    idx_dir_job *j = arg;
    if (part == 0) j->test_status = nnrt_try(load_idx_test, j, j->test_error, sizeof j->test_error);
    else *j->train = nnrt_load_idx_dir(j->dir, "train", j->m);
}

/* The train split (required) and the test split (optional) named by the options. */
static int load_splits(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *test) {
    if (o->data && train) {
        idx_dir_job j = {.dir = o->data, .m = m, .train = train, .test = test};
        nnrt_par2(load_idx_part, &j);
        if (j.test_status) nnrt_exit_with(j.test_status, j.test_error);
        return 1;
    }
    if (o->data) {
        *test = nnrt_load_idx_dir(o->data, "t10k", m);
        return 1;
    }
    if (train) *train = nnrt_load_dataset(o->train_x, o->train_y, m);
    if (o->test_x) { *test = nnrt_load_dataset(o->test_x, o->test_y, m); return 1; }
    return 0;
}

static void describe_data(const char *name, const nnrt_dataset *d) {
    double mb = (double)d->x.n * (double)d->x.dim * (d->x.dtype == NNRT_U8 ? 1 : 4) / 1e6;
    printf("data: %s %lld samples from %s (%s, %.1f MB in memory)\n", name, (long long)d->x.n, d->x.path,
           d->x.dtype == NNRT_U8 ? "uint8, scaled by 1/255 per batch" : "float32", mb);
}

static void verbose_setup(const nnrt_model *m) {
    nnrt_blas_describe(stdout);
    printf("model: %s, %zu parameters, %zu optimizer state floats, %zu arena bytes, max batch %d\n", m->name,
           m->params_numel, m->state_numel, m->arena_bytes, m->max_batch);
}

static int argmax(const float *row, int c) {
    int best = 0;
    for (int j = 1; j < c; j++) if (row[j] > row[best]) best = j;
    return best;
}

nnrt_eval_result nnrt_evaluate(nnrt_ctx *ctx, const nnrt_dataset *d, int batch) {
    const nnrt_model *m = ctx->model;
    int classes = m->target_kind == NNRT_TARGET_CLASS;
    float *xb = nnrt_aligned_calloc((size_t)batch * (size_t)m->input_dim * sizeof(float));     // (batch, input_dim)
    void *yb = nnrt_aligned_calloc((size_t)batch * (size_t)m->target_dim * 4);                // (batch) int32 or (batch, target_dim)
    float *out = nnrt_aligned_calloc((size_t)batch * (size_t)m->output_dim * sizeof(float));  // (batch, output_dim)
    int64_t *idx = nnrt_malloc((size_t)batch * sizeof(int64_t));                              // (batch)
    double loss_sum = 0;
    int64_t correct = 0;
    ctx->training = 0;
    for (int64_t start = 0; start < d->x.n; start += batch) {
        int n = (int)(d->x.n - start < batch ? d->x.n - start : batch);
        for (int i = 0; i < n; i++) idx[i] = start + i;
        nnrt_gather_x(&d->x, idx, n, xb);
        nnrt_gather_y(&d->y, idx, n, yb);
        loss_sum += (double)m->eval_batch(ctx, n, xb, yb, out) * n;
        for (int i = 0; classes && i < n; i++) correct += argmax(out + (size_t)i * m->output_dim, m->output_dim) == ((int32_t *)yb)[i];
    }
    free(xb); free(yb); free(out); free(idx);
    return (nnrt_eval_result){loss_sum / (double)d->x.n, classes ? (double)correct / (double)d->x.n : -1};
}

// ----------------------------------------------------------------------------
// train

typedef struct {
    int64_t *order;  // (N) sample indices in this epoch's order
    float *xb[2];    // (B, input_dim), twice: one step's batch, and the next one's being gathered
    void *yb[2];     // (B) int32 labels or (B, target_dim) floats, likewise
    char why[512];   // set when a step's gradients or weights went non-finite while its loss stayed finite
    double first_loss;  // of this run's first step (NaN before it)
    int warned;      // the loss-growth warning was printed
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
    int i = nnrt_find_hparam(ctx->model, "lr");
    char lr[64] = "";
    if (i >= 0) snprintf(lr, sizeof lr, " (--lr %g)", ctx->hp[i]);
    fflush(stdout);
    fprintf(stderr, "warning: the loss grew from %.4g at the first step to %.4g at step %lld, more than %d-fold: training "
                    "is diverging; a smaller learning rate%s usually helps\n", b->first_loss, loss, (long long)ctx->step,
            LOSS_GROWTH_WARN, lr);
}

void nnrt_ema_update(const nnrt_model *m, float *ema, const float *params, double decay, int first) {
    float w = (float)(1.0 - decay), v = (float)decay;  // torch: the weight as the tensors' float, and 1 − weight
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *q = &m->params[i];
        float *e = ema + q->offset;
        const float *x = params + q->offset;
        if (first || q->counter) {
            memcpy(e, x, q->numel * sizeof(float));
        } else if (w < 0.5f) {
            for (size_t k = 0; k < q->numel; k++) e[k] = e[k] + w * (x[k] - e[k]);
        } else {
            for (size_t k = 0; k < q->numel; k++) e[k] = x[k] - (x[k] - e[k]) * v;
        }
    }
}

/* One epoch over `train`; returns the sample-weighted mean of its batch losses. With prof (--profile), the
   gather, the train_step call and the logging of every step are timed into it. A step whose loss is not finite
   ends the epoch there: its loss is logged, *diverged gets the step's index in the epoch (else it is −1), and
   that loss is returned. So does a step whose gradients or updated weights are not finite (b->why says which). With ema (--ema), every finite step updates the moving average (timed with the step). */
static double train_epoch(nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train, train_buffers *b, nnrt_log *log,
                          nnrt_profile *prof, nnrt_ema *ema, int64_t *diverged) {
    const nnrt_model *m = ctx->model;
    int64_t N = train->x.n, B = o->batch;
    double loss_sum = 0;
    *diverged = -1;
    int cur = 0;           // the batch of step s is in b->xb[cur], b->yb[cur]
    int gathered = 0;      // 1 when the previous step gathered it already
    for (int64_t s = 0; s < ctx->steps_per_epoch; s++) {
        int n = (int)(N - s * B < B ? N - s * B : B);
        double t0 = prof ? nnrt_now() : 0;
        if (!gathered) {
            nnrt_gather_x(&train->x, b->order + s * B, n, b->xb[cur]);
            nnrt_gather_y(&train->y, b->order + s * B, n, b->yb[cur]);
        }
        // the next batch, gathered by the worker while it waits during this step (the rest after it)
        int64_t after = N - (s + 1) * B;  // samples left after this batch
        gathered = after > 0;
        if (gathered) nnrt_gather_background(train, b->order + (s + 1) * B, (int)(after < B ? after : B), b->xb[1 - cur], b->yb[1 - cur]);
        double t1 = prof ? nnrt_now() : 0;
        ctx->step++;
        ctx->training = 1;
        float loss = m->train_step(ctx, n, b->xb[cur], b->yb[cur]);
        ctx->training = 0;
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
        watch_loss_growth(ctx, b, loss);
        if (ctx->step % o->log_every == 0) nnrt_log_step(log, ctx->step, ctx->epoch + 1, loss, ctx->lr);
        nnrt_log_bar(log, ctx->epoch + 1, o->epochs, s + 1, ctx->steps_per_epoch, loss);
        if (prof) {
            prof->gather += (t1 - t0) + (t3 - t2);
            prof->step += t2 - t1;
            prof->log += nnrt_now() - t3;
            prof->steps++;
            prof->samples += n;
        }
    }
    nnrt_log_bar_clear(log);
    return loss_sum / (double)N;
}

/* Fails now, not after an hour of training, when the weights file cannot be created. */
static void check_writable(const char *path) {
    nnrt_atomic_abort(nnrt_atomic_open(path));
}

// ----------------------------------------------------------------------------
// validation and resuming

/* The validation set, split off the training set (--val-split) or from files (--val-x/--val-y); 0 if none. */
static int load_validation(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *val) {
    if (o->val_x) { *val = nnrt_load_dataset(o->val_x, o->val_y, m); return 1; }
    if (o->val_split > 0) { nnrt_split_validation(train, o->val_split, o->seed, val); return 1; }
    return 0;
}

static NNRT_NORETURN void resume_conflict(const char *path, const char *flag, const char *ours, const char *theirs) {
    nnrt_usage_die("%s%s%s: the checkpoint %s was trained with %s (a resumed run keeps the batch, seed, shuffle and "
                   "validation split of its checkpoint)", flag, *ours ? " " : "", ours, path, theirs);
}

/* The settings of a resumed run: the checkpoint's batch, seed, shuffle, validation split and --epochs unless the
   command line gives them, and then only --epochs and the hyperparameters may differ (a changed hyperparameter
   gives a different run from there on, on purpose; anything else would not be the run that was checkpointed). */
static void resume_options(nnrt_ctx *ctx, const nnrt_options *o, nnrt_options *run, const nnrt_checkpoint *c) {
    char a[64], b[64];
#define SAME(flag, fmt, ours, theirs)                                                                  \
    if (nnrt_flag_given(o, flag) && (ours) != (theirs)) {                                              \
        snprintf(a, sizeof a, fmt, ours); snprintf(b, sizeof b, "--" flag " " fmt, theirs);            \
        resume_conflict(o->resume, "--" flag, a, b);                                                   \
    }
    SAME("batch", "%lld", (long long)o->batch, (long long)c->batch)
    SAME("seed", "%llu", (unsigned long long)o->seed, (unsigned long long)c->seed)
    SAME("val-split", "%g", o->val_split, c->val_split)
#undef SAME
    if (o->no_shuffle && !c->no_shuffle) resume_conflict(o->resume, "--no-shuffle", "", "shuffling");
    if (o->val_x && c->val_split > 0) resume_conflict(o->resume, "--val-x", o->val_x, "--val-split");
    run->batch = c->batch;
    run->seed = c->seed;
    run->no_shuffle = c->no_shuffle;
    if (!o->val_x) run->val_split = c->val_split;
    if (!nnrt_flag_given(o, "epochs")) run->epochs = c->epochs;
    if (!nnrt_flag_given(o, "log-every")) run->log_every = c->log_every;
    if (run->epochs < c->epochs_done)
        nnrt_usage_die("--epochs %lld: the checkpoint %s has already trained %lld epochs", (long long)run->epochs, o->resume,
                       (long long)c->epochs_done);
    for (int i = 0; i < ctx->model->n_hparams; i++) if (o->hp_given[i]) ctx->hp[i] = o->hp[i];
}

static void check_resumed_data(const char *path, const nnrt_checkpoint *c, const nnrt_dataset *train, int64_t n_val) {
    if (c->n_train != train->x.n || c->n_val != n_val)
        nnrt_die("%s: the checkpoint was trained on %lld samples with %lld for validation, but this run has %lld with %lld "
                 "(give the same data and validation flags to resume)", path, (long long)c->n_train, (long long)c->n_val,
                 (long long)train->x.n, (long long)n_val);
}

// ----------------------------------------------------------------------------
// train

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

/* The metrics of d (when there is one) for the weights w, NULL for ctx's own: another set of weights (the moving
   average, an early-stopped trial's best epoch) takes the parameters' place for the evaluation. */
static nnrt_split_metrics evaluate_split_with(nnrt_ctx *ctx, float *w, int has, const nnrt_dataset *d) {
    if (!has) return (nnrt_split_metrics){0, NAN, -1};
    float *own = ctx->params;
    if (w) ctx->params = w;
    nnrt_eval_result r = nnrt_evaluate(ctx, d, ctx->model->max_batch);
    ctx->params = own;
    return (nnrt_split_metrics){1, r.loss, r.acc};
}

static nnrt_split_metrics evaluate_split(nnrt_ctx *ctx, int has, const nnrt_dataset *d) {
    return evaluate_split_with(ctx, NULL, has, d);
}

/* Early stopping (--early-stop K): the state a run starts with, afresh or as its checkpoint left it when that
   watched the same metric (otherwise a resumed run starts counting again, and says so). */
static void early_stop_start(nnrt_early_stop *es, const nnrt_options *run, const nnrt_checkpoint *ck, const nnrt_model *m,
                             int resumed, int quiet) {
    memset(es, 0, sizeof *es);
    if (!run->early_stop) return;
    snprintf(es->on, sizeof es->on, "%s", run->early_stop_on);
    es->best = strcmp(es->on, "val_acc") == 0 ? -INFINITY : INFINITY;
    es->weights = nnrt_malloc(m->params_numel * sizeof(float));
    if (!resumed) return;
    if (strcmp(ck->es.on, es->on) == 0) {
        es->best = ck->es.best;
        es->best_epoch = ck->es.best_epoch;
        es->since = ck->es.since;
        if (ck->es.best_epoch > 0) memcpy(es->weights, ck->es.weights, m->params_numel * sizeof(float));
    } else if (!quiet) {
        printf("early stopping on %s starts afresh: the checkpoint %s\n", es->on,
               ck->es.on[0] ? "watched another metric" : "was trained without --early-stop");
    }
}

/* After an epoch's evaluation: 1 when training should stop (the metric has not improved by more than
   --early-stop-delta for --early-stop epochs). An improvement keeps a copy of the parameters. A NaN metric never
   improves. */
static int early_stop_update(nnrt_early_stop *es, const nnrt_options *run, nnrt_split_metrics val, const nnrt_ctx *ctx) {
    if (!es->on[0]) return 0;
    int acc = strcmp(es->on, "val_acc") == 0;
    double x = acc ? val.acc : val.loss, d = run->early_stop_delta;
    if (acc ? x > es->best + d : x < es->best - d) {
        es->best = x;
        es->best_epoch = ctx->epoch + 1;
        es->since = 0;
        memcpy(es->weights, ctx->params, ctx->model->params_numel * sizeof(float));
    } else {
        es->since++;
    }
    return es->since >= run->early_stop;
}

/* ReduceLROnPlateau (--reduce-lr-on-plateau P): the state a run starts with, afresh or from its checkpoint when that
   watched the same metric. */
static void plateau_start(nnrt_plateau *p, const nnrt_options *o, const nnrt_options *run, const nnrt_checkpoint *ck,
                          int resumed) {
    memset(p, 0, sizeof *p);
    if (!nnrt_flag_given(o, "reduce-lr-on-plateau")) return;
    snprintf(p->on, sizeof p->on, "%s", run->plateau_on);
    p->best = strcmp(p->on, "val_acc") == 0 ? -INFINITY : INFINITY;
    if (resumed && strcmp(ck->plateau.on, p->on) == 0) *p = ck->plateau;
    else if (resumed && !o->quiet)
        printf("reduce-lr-on-plateau on %s starts afresh: the checkpoint %s\n", p->on,
               ck->plateau.on[0] ? "watched another metric" : "was trained without --reduce-lr-on-plateau");
}

/* After an epoch, PyTorch's ReduceLROnPlateau.step(metric) with threshold_mode "rel" and eps 1e-8: an improvement
   is below best·(1 − threshold) (above best·(1 + threshold) for accuracy); during cooldown no epoch counts as bad;
   past `patience` bad epochs the rate becomes max(lr·factor, min_lr) (unless that changes it by 1e-8 or less) and
   the cooldown starts. Returns 1 when it reduced the rate (ctx->hp's "lr", which the next step uses). */
static int plateau_update(nnrt_plateau *p, const nnrt_options *run, nnrt_ctx *ctx, double train_loss, nnrt_split_metrics val) {
    if (!p->on[0]) return 0;
    int acc = strcmp(p->on, "val_acc") == 0;
    double x = strcmp(p->on, "train_loss") == 0 ? train_loss : acc ? val.acc : val.loss, t = run->plateau_threshold;
    if (acc ? x > p->best * (1 + t) : x < p->best * (1 - t)) {
        p->best = x;
        p->bad = 0;
    } else {
        p->bad++;
    }
    if (p->cooldown > 0) {
        p->cooldown--;
        p->bad = 0;
    }
    if (p->bad <= run->plateau) return 0;
    p->cooldown = run->plateau_cooldown;
    p->bad = 0;
    int i = nnrt_find_hparam(ctx->model, "lr");
    double old = ctx->hp[i], lr = fmax(old * run->plateau_factor, run->plateau_min_lr);
    if (old - lr <= 1e-8) return 0;
    ctx->hp[i] = lr;
    return 1;
}

/* The end of a run whose loss stopped being finite (a learning rate too large, say): training more steps would
   only carry NaN on, and the weights would overwrite --save with them. Nothing is saved; a checkpoint written at
   an earlier epoch's end stays as it was. Exit 1. */
static NNRT_NORETURN void stop_diverged(const nnrt_ctx *ctx, const nnrt_options *o, nnrt_log *log, double loss,
                                        int64_t step_in_epoch, int64_t kept_epoch, const char *why) {
    nnrt_log_close(log);
    char lr[64] = "";
    int i = nnrt_find_hparam(ctx->model, "lr");
    if (i >= 0) snprintf(lr, sizeof lr, " (--lr, now %g)", ctx->hp[i]);
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

int nnrt_cmd_train(nnrt_ctx *ctx, const nnrt_options *o) { return nnrt_train_run(ctx, o, NULL); }

int nnrt_train_run(nnrt_ctx *ctx, const nnrt_options *o, nnrt_train_result *res) {
    const nnrt_model *m = ctx->model;
    int talk = !res || o->verbose;  // the epoch lines and the early-stopping and plateau messages
    nnrt_options run = *o;   // o, with a resumed checkpoint's settings
    nnrt_checkpoint ck = {0};
    if (o->resume) {
        nnrt_checkpoint_load(o->resume, ctx, &ck);
        resume_options(ctx, o, &run, &ck);
    }
    int has_validation = run.val_x || run.val_split > 0;
    if (nnrt_flag_given(o, "reduce-lr-on-plateau") && strncmp(run.plateau_on, "val_", 4) == 0 && !has_validation)
        nnrt_usage_die("--reduce-lr-on-plateau: it watches %s, which needs a validation set (--val-split F, or --val-x and "
                       "--val-y); --plateau-on train_loss watches the training loss instead", run.plateau_on);
    if (run.early_stop && !has_validation)
        nnrt_usage_die("--early-stop: needs a validation set (--val-split F, or --val-x and --val-y): the epoch it keeps "
                       "must not be chosen on the test set");
    if (o->save) check_writable(o->save);
    if (o->save_ema) check_writable(o->save_ema);
    if (o->checkpoint) check_writable(o->checkpoint);
    nnrt_profile prof = {0}, *pr = o->profile ? &prof : NULL;
    if (pr) prof.timer_ns = nnrt_timer_cost_ns();
    double t_load = nnrt_now();
    nnrt_dataset train, test, val;
    int borrowed = res && res->data, has_test, has_val;  // a search's trials share the data it loaded once
    if (borrowed) {
        train = res->data->train, test = res->data->test, val = res->data->val;
        has_test = res->data->has_test, has_val = res->data->has_val;
    } else {
        has_test = load_splits(&run, m, &train, &test);
        has_val = load_validation(&run, m, &train, &val);
    }
    double t_init = nnrt_now();
    if (o->resume) check_resumed_data(o->resume, &ck, &train, has_val ? val.x.n : 0);
    else if (o->init) nnrt_load_safetensors(o->init, m, ctx->params);
    else nnrt_init_params(m, ctx->params, run.seed);
    prof.load = t_init - t_load;
    prof.init = nnrt_now() - t_init;
    if (o->verbose) {
        verbose_setup(m);
        describe_data("train", &train);
        if (has_val) describe_data("validation", &val);
        if (has_test) describe_data("test", &test);
    }
    int64_t N = train.x.n, B = run.batch;
    ctx->steps_per_epoch = (N + B - 1) / B;
    train_buffers b = {
        .order = nnrt_malloc(nnrt_mul_size((size_t)N, sizeof(int64_t), "order")),
        .xb = {nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float)),
               nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float))},
        .yb = {nnrt_aligned_calloc((size_t)B * (size_t)m->target_dim * 4), nnrt_aligned_calloc((size_t)B * (size_t)m->target_dim * 4)},
        .first_loss = NAN,
    };
    if (B < 1 || B > m->max_batch)  // the arena holds max_batch samples: the CLI and the checkpoint loader refuse more
        nnrt_die("internal: batch %lld outside 1..%d", (long long)B, m->max_batch);
    for (int64_t i = 0; i < N; i++) b.order[i] = o->resume ? ck.order[i] : i;
    uint64_t shuffle_rng[4];
    nnrt_rng_seed(shuffle_rng, run.seed, NNRT_STREAM_SHUFFLE);
    if (o->resume) {
        memcpy(shuffle_rng, ck.shuffle_rng, sizeof shuffle_rng);
        if (!o->quiet) printf("resumed %s: %lld of %lld epochs done, step %lld\n", o->resume, (long long)ck.epochs_done,
                              (long long)run.epochs, (long long)ctx->step);
    }
    nnrt_log log;
    nnrt_log_open(&log, o->log, o->quiet, o->resume != NULL);
    nnrt_checkpoint out = {.epochs = run.epochs, .batch = B, .n_train = N, .n_val = has_val ? val.x.n : 0, .seed = run.seed,
                           .log_every = run.log_every, .no_shuffle = run.no_shuffle, .val_split = run.val_split, .order = b.order};
    int64_t saved_at = -1;  // the epoch count of the last checkpoint written
    nnrt_early_stop es;
    early_stop_start(&es, &run, &ck, m, o->resume != NULL, o->quiet);
    nnrt_plateau plateau;
    plateau_start(&plateau, o, &run, &ck, o->resume != NULL);
    nnrt_ema ema = {0};  // the moving average: continued from a checkpoint that has one, else started afresh
    if (nnrt_flag_given(o, "ema")) {
        ema.on = 1;
        ema.weights = nnrt_malloc(m->params_numel * sizeof(float));
        if (o->resume && ck.ema.on) {
            ema.count = ck.ema.count;
            memcpy(ema.weights, ck.ema.weights, m->params_numel * sizeof(float));
        } else if (o->resume && !o->quiet) {
            printf("ema starts afresh: the checkpoint was trained without --ema\n");
        }
    }
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
        double t0 = nnrt_now();
        int64_t diverged;
        double train_loss = train_epoch(ctx, &run, &train, &b, &log, pr, ema.on ? &ema : NULL, &diverged);
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
        ctx->profile = 0;  // evaluation is timed as a whole, apart from the step's kernels
        nnrt_split_metrics vr = evaluate_split(ctx, has_val, &val), tr = evaluate_split(ctx, has_test, &test);
        nnrt_split_metrics evr = {0, NAN, -1}, etr = {0, NAN, -1};
        if (ema.on && ema.count > 0) {  // the same sets with the average in place of the weights
            evr = evaluate_split_with(ctx, ema.weights, has_val, &val);
            etr = evaluate_split_with(ctx, ema.weights, has_test, &test);
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
        double lr_before = plateau.on[0] ? ctx->hp[nnrt_find_hparam(m, "lr")] : 0;
        if (plateau_update(&plateau, &run, ctx, train_loss, vr) && talk) {
            double lr = ctx->hp[nnrt_find_hparam(m, "lr")];
            printf("reduce-lr-on-plateau: %s has not improved on %.4g for %lld epoch%s (patience %lld); --lr %g -> %g\n",
                   plateau.on, plateau.best, (long long)run.plateau + 1, run.plateau ? "s" : "", (long long)run.plateau,
                   lr_before, lr);
        }
        if (plateau.on[0] && ctx->hp[nnrt_find_hparam(m, "lr")] != lr_before)
            nnrt_log_lr_reduced(&log, ctx->epoch + 1, ctx->hp[nnrt_find_hparam(m, "lr")]);
        stop = early_stop_update(&es, &run, vr, ctx);
        if (stop && talk) {
            printf("early stopping: %s has not improved on epoch %lld's %.4f for %lld epoch%s (--early-stop %lld); stopped "
                   "after epoch %lld of %lld\n", es.on, (long long)es.best_epoch, es.best, (long long)es.since,
                   es.since == 1 ? "" : "s", (long long)run.early_stop, (long long)ctx->epoch + 1, (long long)run.epochs);
        }
        if (stop) nnrt_log_early_stop(&log, ctx->epoch + 1, es.on, es.best_epoch, es.best);
        fflush(stdout);
        if (o->checkpoint && ((ctx->epoch + 1) % o->checkpoint_every == 0 || ctx->epoch + 1 == run.epochs || stop)) {
            out.epochs_done = saved_at = ctx->epoch + 1;
            memcpy(out.shuffle_rng, shuffle_rng, sizeof shuffle_rng);
            out.es = es;
            out.plateau = plateau;
            out.ema = ema;
            nnrt_checkpoint_save(o->checkpoint, ctx, &out);
        }
        if (stop) {
            ctx->epoch++;  // epochs done, as when the loop runs out
            break;
        }
    }
    ctx->profile = 0;
    if (o->checkpoint && saved_at != ctx->epoch) {  // no epoch ran: the checkpoint is the starting point
        out.epochs_done = ctx->epoch;
        memcpy(out.shuffle_rng, shuffle_rng, sizeof shuffle_rng);
        out.es = es;
        out.plateau = plateau;
        out.ema = ema;
        nnrt_checkpoint_save(o->checkpoint, ctx, &out);
    }
    if (pr) {
        nnrt_profile_report(stdout, &prof);
        nnrt_profile_kernels_report(stdout, m, ctx->kprof, &prof);
        if (log.jsonl) nnrt_profile_json(log.jsonl, &prof, m, ctx->kprof);
    }
    nnrt_log_close(&log);
    int best = es.on[0] && es.best_epoch > 0;  // --save gets the best epoch's weights (the last if no metric was a number)
    if (res) {
        memcpy(res->weights, best ? es.weights : ctx->params, m->params_numel * sizeof(float));
        res->val = evaluate_split_with(ctx, res->weights, has_val, &val);
        res->epochs = ctx->epoch;
    }
    if (o->save) {
        nnrt_save_safetensors(o->save, m, best ? es.weights : ctx->params);
        if (!o->quiet && best)
            printf("saved %s (the weights of epoch %lld, the best %s: %.4f)\n", o->save, (long long)es.best_epoch, es.on, es.best);
        else if (!o->quiet) printf("saved %s\n", o->save);
    }
    if (o->save_ema) {  // before any step, the average is the weights themselves
        nnrt_save_safetensors(o->save_ema, m, ema.count > 0 ? ema.weights : ctx->params);
        if (!o->quiet) printf("saved %s (the moving average of the weights, decay %g, over %lld steps)\n", o->save_ema, run.ema,
                              (long long)ema.count);
    }
    if (o->checkpoint && !o->quiet) printf("checkpoint %s (%lld epochs, step %lld)\n", o->checkpoint, (long long)ctx->epoch,
                                           (long long)ctx->step);
done:
    if (res && res->diverged) nnrt_log_close(&log);
    free(b.order); free(b.xb[0]); free(b.xb[1]); free(b.yb[0]); free(b.yb[1]); free(ck.order);
    free(es.weights); free(ck.es.weights); free(ema.weights); free(ck.ema.weights);
    if (!borrowed) {
        nnrt_dataset_free(&train);
        if (has_test) nnrt_dataset_free(&test);
        if (has_val) nnrt_dataset_free(&val);
    }
    return 0;
}

void nnrt_train_data_load(const nnrt_options *o, const nnrt_model *m, nnrt_train_data *d) {
    memset(d, 0, sizeof *d);
    d->has_test = load_splits(o, m, &d->train, &d->test);
    d->has_val = load_validation(o, m, &d->train, &d->val);
}

void nnrt_train_data_free(nnrt_train_data *d) {
    nnrt_dataset_free(&d->train);
    if (d->has_test) nnrt_dataset_free(&d->test);
    if (d->has_val) nnrt_dataset_free(&d->val);
}

// ----------------------------------------------------------------------------
// eval and predict

/* --weights A,B,…: the files of an ensemble (one file: a list of one). Each is loaded (strictly) into an array of
   its own; *count gets how many. A path may not be empty. */
static float **load_members(const nnrt_model *m, const char *list, int *count) {
    int k = 1;
    for (const char *c = list; *c; c++) k += *c == ',';
    float **w = nnrt_calloc((size_t)k, sizeof *w);
    const char *p = list;
    for (int i = 0; i < k; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0) nnrt_usage_die("--weights: an empty path in '%s' (an ensemble is --weights A,B,…)", list);
        char *path = nnrt_malloc(len + 1);
        memcpy(path, p, len);
        path[len] = 0;
        w[i] = nnrt_aligned_calloc(m->params_numel * sizeof(float));
        nnrt_load_safetensors(path, m, w[i]);
        free(path);
        p = comma ? comma + 1 : p + len;
    }
    *count = k;
    return w;
}

static void free_members(float **w, int k) {
    for (int i = 0; i < k; i++) free(w[i]);
    free(w);
}

/* The ensemble's output for a batch: the members' softmax probabilities (classifiers) or outputs (regression),
   averaged into avg (n, output_dim); out is scratch of the same size. */
static void ensemble_batch(nnrt_ctx *ctx, float **w, int k, int n, const float *xb, float *out, float *avg) {
    const nnrt_model *m = ctx->model;
    size_t cells = (size_t)n * (size_t)m->output_dim;
    float *own = ctx->params;
    memset(avg, 0, cells * sizeof(float));
    for (int i = 0; i < k; i++) {
        ctx->params = w[i];
        m->predict(ctx, n, xb, out);
        if (m->target_kind == NNRT_TARGET_CLASS) nnrt_softmax_rows(out, n, m->output_dim);
        for (size_t c = 0; c < cells; c++) avg[c] += out[c];
    }
    ctx->params = own;
    for (size_t c = 0; c < cells; c++) avg[c] /= (float)k;
}

int nnrt_cmd_eval(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int k;
    float **w = load_members(m, o->weights, &k);
    nnrt_dataset test;
    load_splits(o, m, NULL, &test);
    if (o->verbose) { verbose_setup(m); describe_data("test", &test); }
    float *own = ctx->params;
    for (int i = 0; i < k; i++) {  // each member as a model of its own (its loss is its criterion's)
        ctx->params = w[i];
        nnrt_eval_result r = nnrt_evaluate(ctx, &test, (int)o->batch);
        if (o->json) {  // the loss at full precision: a small cross-entropy's digits are what tell kernels apart
            printf("{");
            if (k > 1) printf("\"member\":%d,", i + 1);
            printf("\"test_loss\":%.17g", r.loss);
            if (r.acc >= 0) printf(",\"test_acc\":%.17g", r.acc);
            printf("}\n");
            continue;
        }
        if (k > 1) printf("member %d: ", i + 1);
        printf("test_loss %.4f", r.loss);
        if (r.acc >= 0) printf("  test_acc %.4f", r.acc);
        printf("\n");
    }
    ctx->params = own;
    if (k > 1) {  // the ensemble: NLL and accuracy of the averaged probabilities, or the MSE of the averaged outputs
        int B = (int)o->batch, C = m->output_dim, classes = m->target_kind == NNRT_TARGET_CLASS;
        float *xb = nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float));
        void *yb = nnrt_aligned_calloc((size_t)B * (size_t)m->target_dim * 4);
        float *out = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float)), *avg = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float));
        int64_t *idx = nnrt_malloc((size_t)B * sizeof(int64_t)), correct = 0;
        double sum = 0;
        ctx->training = 0;
        for (int64_t start = 0; start < test.x.n; start += B) {
            int n = (int)(test.x.n - start < B ? test.x.n - start : B);
            for (int i = 0; i < n; i++) idx[i] = start + i;
            nnrt_gather_x(&test.x, idx, n, xb);
            nnrt_gather_y(&test.y, idx, n, yb);
            ensemble_batch(ctx, w, k, n, xb, out, avg);
            for (int i = 0; i < n; i++) {
                const float *row = avg + (size_t)i * C;
                if (classes) {
                    int y = ((const int32_t *)yb)[i];
                    sum -= log(fmax((double)row[y], 1e-45));
                    correct += argmax(row, C) == y;
                } else {
                    for (int j = 0; j < C; j++) {
                        double d = (double)row[j] - ((const float *)yb)[(size_t)i * C + j];
                        sum += d * d;
                    }
                }
            }
        }
        if (o->json && classes)
            printf("{\"ensemble\":%d,\"test_nll\":%.17g,\"test_acc\":%.17g}\n", k, sum / (double)test.x.n, (double)correct / (double)test.x.n);
        else if (o->json)
            printf("{\"ensemble\":%d,\"test_mse\":%.17g}\n", k, sum / ((double)test.x.n * C));
        else if (classes)
            printf("ensemble of %d (probabilities averaged): test_nll %.4f  test_acc %.4f\n", k, sum / (double)test.x.n,
                   (double)correct / (double)test.x.n);
        else
            printf("ensemble of %d (outputs averaged): test_mse %.4f\n", k, sum / ((double)test.x.n * C));
        free(xb); free(yb); free(out); free(avg); free(idx);
    }
    free_members(w, k);
    nnrt_dataset_free(&test);
    return 0;
}

int nnrt_cmd_predict(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int k;
    float **w = load_members(m, o->weights, &k);  // more than one: the ensemble's averaged probabilities (outputs)
    nnrt_array x = nnrt_load_x(o->input, m);
    if (o->verbose) verbose_setup(m);
    int B = (int)o->batch, C = m->output_dim;
    float *xb = nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float));  // (B, input_dim)
    float *out = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float));             // (B, C)
    float *avg = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float));             // (B, C)
    int64_t *idx = nnrt_malloc((size_t)B * sizeof(int64_t));                            // (B)
    int csv = nnrt_predict_format(o->output) == 'c';
    const char *what = m->target_kind == NNRT_TARGET_CLASS ? "prob" : "output";
    nnrt_atomic *f = csv ? nnrt_atomic_open(o->output) : nnrt_npy_begin(o->output, x.n, C);
    char cell[40];
    for (int j = 0; csv && j < C; j++) {  // header: prob_0,prob_1,… (classes) or output_0,… (dense outputs)
        int len = snprintf(cell, sizeof cell, "%s%s_%d", j ? "," : "", what, j);
        nnrt_atomic_write(f, cell, (size_t)len);
    }
    if (csv) nnrt_atomic_write(f, "\n", 1);
    ctx->training = 0;
    for (int64_t start = 0; start < x.n; start += B) {
        int n = (int)(x.n - start < B ? x.n - start : B);
        for (int i = 0; i < n; i++) idx[i] = start + i;
        nnrt_gather_x(&x, idx, n, xb);
        ensemble_batch(ctx, w, k, n, xb, out, avg);  // one member: its own probabilities (outputs)
        if (!csv) {
            nnrt_atomic_write(f, avg, (size_t)n * (size_t)C * sizeof(float));
            continue;
        }
        for (int i = 0; i < n; i++)  // %.9g: every float32 reads back as itself
            for (int j = 0; j < C; j++) {
                int len = snprintf(cell, sizeof cell, "%.9g%s", (double)avg[(size_t)i * C + j], j + 1 < C ? "," : "\n");
                nnrt_atomic_write(f, cell, (size_t)len);
            }
    }
    nnrt_atomic_commit(f);
    if (!o->quiet) printf("wrote %s (%lld, %d) %s%s\n", o->output, (long long)x.n, C,
                          m->target_kind == NNRT_TARGET_CLASS ? "probabilities" : "outputs", k > 1 ? ", averaged over the ensemble" : "");
    free(xb); free(out); free(avg); free(idx);
    free_members(w, k);
    nnrt_array_free(&x);
    return 0;
}
