/* checkpoint.c — resumable training checkpoints (train --checkpoint C, train --resume C).
 *
 * A checkpoint is a safetensors file, so torch's safetensors.torch.load_file and this trainer's --init, eval
 * and predict read its weights. It holds
 *   - every parameter under its state_dict name (F32; counters I64), as --save writes them;
 *   - the optimizer's state: for a model that names its state slots (every generated one), a tensor per slot and
 *     trainable parameter, "optimizer.<slot>.<name>" F32 in the parameter's shape (optimizer.m.0.weight,
 *     optimizer.v.0.weight, …: torch's exp_avg and exp_avg_sq of that parameter); otherwise "optimizer.state"
 *     (state_numel) F32, the state arena as is (slots × the params layout). Both are read, the second for
 *     checkpoints of format version 1;
 *   - "train.order" (N) I64: the sample order of the epoch just finished (each epoch shuffles the previous
 *     order in place, so the next order needs it and the shuffle generator);
 *   - __metadata__ strings: "nncc.checkpoint" (format version "2"; "1" had only "optimizer.state"), "model", "params_numel", "state_numel",
 *     "step", "epochs_done", "epochs", "batch", "seed", "log_every", "shuffle" (0/1), "n_train", "n_val", "val_split",
 *     "rng" (ctx->rng, the dropout generator) and "shuffle_rng" as 64 hex digits, "state_slots" (the optimizer's
 *     slots, "m,v"; absent from older checkpoints), and "hp.<name>" for every hyperparameter (%.17g, which
 *     round-trips a double). Loading checks each against the model before anything is used;
 *   - with --early-stop, its state: "early_stop.on" (the metric), "early_stop.best" (%.17g),
 *     "early_stop.best_epoch" and "early_stop.since", and the best epoch's parameters as the tensor
 *     "early_stop.weights" (params_numel) F32;
 *   - with --ema, "ema.count" and the average as the tensor "ema.weights" (params_numel) F32; with --swa-start,
 *     likewise "swa.count" (epochs averaged) and "swa.weights" (the average before update_bn), and SWA's options,
 *     which a resumed run takes unless its command line gives them: "swa.start" (E), "swa.lr" (%.17g) and
 *     "swa.anneal_epochs" (K; the last two absent from older checkpoints, which resume without SWA as before);
 *     with --swa-anneal-epochs once epoch E has begun, "swa.anneal_from" (%.17g), the schedule's rate at the first
 *     step of epoch E, which the annealing starts from (a run resumed inside the annealing needs it); with
 *     --snapshots, "snapshots" (K), likewise taken by a resumed run;
 *   - the data path's options, which a resumed run takes unless its command line gives them: "augment" (--augment's
 *     list as nnrt_augment_format writes it, e.g. "crop:2,flip,cutout:8,jitter:0.2"), "mixup" and "cutmix" (their α,
 *     %.17g), each only when on; older checkpoints, without them, resume without (as they were resumed before).
 *     A value that does not parse, or that the model cannot take, is an error naming the file and the key;
 *   - with --reduce-lr-on-plateau, its state: "plateau.on", "plateau.best" (%.17g), "plateau.bad" and
 *     "plateau.cooldown" (the learning rate is hp.lr);
 *   - for a full-batch L-BFGS model, its history (nnrt_lbfgs_history): "lbfgs.n_iter", "lbfgs.count", "lbfgs.t" and
 *     "lbfgs.H_diag" (%.17g), and the tensors "lbfgs.d" and "lbfgs.g_prev" (n) F32 and, with pairs kept,
 *     "lbfgs.s" and "lbfgs.y" (count, n) F32, n being the trainable floats.
 * Checkpoints are written at epoch ends only, so the data position is "the start of epoch epochs_done + 1".
 * With all of that restored, a resumed run takes bit-identical steps to one that never stopped. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_mixup.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"

enum { META_MAX = 40, VALUE_LEN = 80 };

// ----------------------------------------------------------------------------
// writing

typedef struct {
    nnrt_st_kv items[META_MAX];
    char values[META_MAX][VALUE_LEN];
    int n;
} meta_list;

static void put(meta_list *l, const char *key, const char *fmt, ...) NNRT_PRINTF(3, 4);
static void put(meta_list *l, const char *key, const char *fmt, ...) {
    if (l->n == META_MAX) nnrt_die("internal: too many checkpoint metadata entries");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->values[l->n], VALUE_LEN, fmt, ap);
    va_end(ap);
    l->items[l->n] = (nnrt_st_kv){key, l->values[l->n]};
    l->n++;
}

static void put_rng(meta_list *l, const char *key, const uint64_t s[4]) {
    put(l, key, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, s[0], s[1], s[2], s[3]);
}

/* The optimizer's state slots, "m,v" ("" for none): the optimizer a checkpoint belongs to. */
static const char *slot_list(const nnrt_model *m, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = 0;
    for (int k = 0; k < m->n_state_slots && n < cap; k++) n += (size_t)snprintf(buf + n, cap - n, "%s%s", k ? "," : "", m->state_slots[k]);
    return buf;
}

void nnrt_checkpoint_save(const char *path, const nnrt_ctx *ctx, const nnrt_checkpoint *c) {
    const nnrt_model *m = ctx->model;
    meta_list l = {.n = 0};
    put(&l, NNRT_CHECKPOINT_KEY, "2");
    put(&l, "model", "%s", m->name);
    put(&l, "params_numel", "%zu", m->params_numel);
    put(&l, "state_numel", "%zu", m->state_numel);
    put(&l, "step", "%lld", (long long)ctx->step);
    put(&l, "epochs_done", "%lld", (long long)c->epochs_done);
    put(&l, "epochs", "%lld", (long long)c->epochs);
    put(&l, "batch", "%lld", (long long)c->batch);
    put(&l, "seed", "%llu", (unsigned long long)c->seed);
    put(&l, "log_every", "%lld", (long long)c->log_every);
    put(&l, "shuffle", "%d", !c->no_shuffle);
    put(&l, "n_train", "%lld", (long long)c->n_train);
    put(&l, "n_val", "%lld", (long long)c->n_val);
    put(&l, "val_split", "%.17g", c->val_split);
    put_rng(&l, "rng", ctx->rng);
    put_rng(&l, "shuffle_rng", c->shuffle_rng);
    char slot_names_list[VALUE_LEN];
    put(&l, "state_slots", "%s", slot_list(m, slot_names_list, sizeof slot_names_list));
    int es = c->es.on[0] != 0;
    if (es) {
        put(&l, "early_stop.on", "%s", c->es.on);
        put(&l, "early_stop.best", "%.17g", c->es.best);
        put(&l, "early_stop.best_epoch", "%lld", (long long)c->es.best_epoch);
        put(&l, "early_stop.since", "%lld", (long long)c->es.since);
    }
    if (c->ema.on) put(&l, "ema.count", "%lld", (long long)c->ema.count);
    if (c->swa.on) {
        put(&l, "swa.count", "%lld", (long long)c->swa.count);
        put(&l, "swa.start", "%lld", (long long)c->swa_start);
        put(&l, "swa.lr", "%.17g", c->swa_lr);
        put(&l, "swa.anneal_epochs", "%lld", (long long)c->swa_anneal_epochs);
        if (!isnan(c->swa_anneal_from)) put(&l, "swa.anneal_from", "%.17g", c->swa_anneal_from);
    }
    if (c->snapshots) put(&l, "snapshots", "%lld", (long long)c->snapshots);
    if (c->aug.on) {
        char list[VALUE_LEN];
        nnrt_augment_format(&c->aug, list, sizeof list);
        put(&l, "augment", "%s", list);
    }
    if (c->mixup > 0) put(&l, "mixup", "%.17g", c->mixup);
    if (c->cutmix > 0) put(&l, "cutmix", "%.17g", c->cutmix);
    if (c->plateau.on[0]) {
        put(&l, "plateau.on", "%s", c->plateau.on);
        put(&l, "plateau.best", "%.17g", c->plateau.best);
        put(&l, "plateau.bad", "%lld", (long long)c->plateau.bad);
        put(&l, "plateau.cooldown", "%lld", (long long)c->plateau.cooldown);
    }
    const nnrt_lbfgs_history *lb = &c->lbfgs;
    if (lb->on) {
        put(&l, NNRT_CHECKPOINT_LBFGS "n_iter", "%lld", (long long)lb->n_iter);
        put(&l, NNRT_CHECKPOINT_LBFGS "count", "%lld", (long long)lb->count);
        put(&l, NNRT_CHECKPOINT_LBFGS "t", "%.17g", lb->t);
        put(&l, NNRT_CHECKPOINT_LBFGS "H_diag", "%.17g", lb->H_diag);
    }
    // The hyperparameters' keys are allocated: their names are the model's; so are the data's (weights.c).
    nnrt_st_kv *data_kv;
    int n_data = nnrt_data_info_meta(&c->info, &data_kv);
    int n_fixed = l.n, n_meta = l.n + m->n_hparams + n_data;
    nnrt_st_kv *meta = nnrt_calloc((size_t)n_meta, sizeof *meta);
    memcpy(meta + l.n + m->n_hparams, data_kv, (size_t)n_data * sizeof *meta);
    char (*hp_keys)[96] = nnrt_calloc((size_t)m->n_hparams + 1, sizeof *hp_keys);
    char (*hp_vals)[32] = nnrt_calloc((size_t)m->n_hparams + 1, sizeof *hp_vals);
    memcpy(meta, l.items, (size_t)n_fixed * sizeof *meta);
    for (int i = 0; i < m->n_hparams; i++) {
        snprintf(hp_keys[i], sizeof hp_keys[i], "hp.%s", m->hparams[i].name);
        snprintf(hp_vals[i], sizeof hp_vals[i], "%.17g", ctx->hp[i]);
        meta[n_fixed + i] = (nnrt_st_kv){hp_keys[i], hp_vals[i]};
    }
    int slots = m->n_state_slots, n_extra = 0;
    nnrt_st_extra *extra = nnrt_calloc((size_t)(8 + (slots ? slots * m->n_params : 1)), sizeof *extra);
    char (*slot_names)[320] = nnrt_calloc((size_t)(slots * m->n_params + 1), sizeof *slot_names);
    for (int k = 0; k < slots; k++)
        for (int i = 0; i < m->n_params; i++) {
            const nnrt_param *p = &m->params[i];
            if (!p->trainable) continue;  // the optimizer never touches a buffer's slots: they stay zero
            char *name = slot_names[k * m->n_params + i];
            snprintf(name, sizeof *slot_names, "%s%s.%s", NNRT_CHECKPOINT_SLOT_PREFIX, m->state_slots[k], p->name);
            extra[n_extra++] = (nnrt_st_extra){name, 0, (int64_t)p->numel, ctx->state + (size_t)k * m->params_numel + p->offset,
                                               p->ndim, p->shape};
        }
    if (!slots) extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_STATE, 0, (int64_t)m->state_numel, ctx->state, 0, NULL};
    extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_ORDER, 1, c->n_train, c->order, 0, NULL};
    if (es && c->es.best_epoch > 0) extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_BEST, 0, (int64_t)m->params_numel, c->es.weights, 0, NULL};
    if (c->ema.on) extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_EMA, 0, (int64_t)m->params_numel, c->ema.weights, 0, NULL};
    if (c->swa.on) extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_SWA, 0, (int64_t)m->params_numel, c->swa.weights, 0, NULL};
    int64_t pairs_shape[2] = {lb->count, lb->n};
    if (lb->on) {
        extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_LBFGS "d", 0, lb->n, lb->d, 0, NULL};
        extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_LBFGS "g_prev", 0, lb->n, lb->g_prev, 0, NULL};
    }
    if (lb->on && lb->count > 0) {
        extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_LBFGS "s", 0, lb->count * lb->n, lb->s, 2, pairs_shape};
        extra[n_extra++] = (nnrt_st_extra){NNRT_CHECKPOINT_LBFGS "y", 0, lb->count * lb->n, lb->y, 2, pairs_shape};
    }
    nnrt_write_safetensors(path, m, ctx->params, meta, n_meta, extra, n_extra);
    free(extra);
    free(slot_names);
    free(meta);
    nnrt_st_kv_free(data_kv, n_data);
    free(hp_keys);
    free(hp_vals);
}

// ----------------------------------------------------------------------------
// reading

static NNRT_NORETURN void bad_field(const char *path, const char *key, const char *found, const char *expected) {
    nnrt_die("%s: checkpoint field '%s' is %s, expected %s", path, key, found, expected);
}

static const char *need(const nnrt_st *f, const char *path, const char *key) {
    const char *v = nnrt_st_meta(f, key);
    if (!v) nnrt_die("%s: corrupt checkpoint (no '%s' in its metadata)", path, key);
    return v;
}

static int64_t need_i64(const nnrt_st *f, const char *path, const char *key, int64_t min) {
    const char *v = need(f, path, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < min)
        nnrt_die("%s: corrupt checkpoint (metadata '%s' is '%s', expected an integer >= %lld)", path, key, v, (long long)min);
    return x;
}

static uint64_t need_u64(const nnrt_st *f, const char *path, const char *key) {
    const char *v = need(f, path, key);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *v == '-' || *end || errno) nnrt_die("%s: corrupt checkpoint (metadata '%s' is '%s', expected an integer >= 0)", path, key, v);
    return x;
}

static double need_f64(const nnrt_st *f, const char *path, const char *key) {
    const char *v = need(f, path, key);
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end) nnrt_die("%s: corrupt checkpoint (metadata '%s' is '%s', expected a number)", path, key, v);
    return x;
}

static void need_rng(const nnrt_st *f, const char *path, const char *key, uint64_t s[4]) {
    const char *v = need(f, path, key);
    int ok = strlen(v) == 64 && strspn(v, "0123456789abcdef") == 64;
    for (int i = 0; ok && i < 4; i++) {
        char word[17];
        memcpy(word, v + 16 * i, 16);
        word[16] = 0;
        s[i] = strtoull(word, NULL, 16);
    }
    if (!ok || (s[0] | s[1] | s[2] | s[3]) == 0)
        nnrt_die("%s: corrupt checkpoint (metadata '%s' is not a generator state of 64 hex digits)", path, key);
}

/* Every number of the checkpoint that sizes or indexes something, against this trainer's model, before anything
   is used: a batch above the compiled maximum would overflow the arena. */
static void check_fields(const char *path, const nnrt_ctx *ctx, const nnrt_checkpoint *c, const nnrt_st *f) {
    const nnrt_model *m = ctx->model;
    char found[64], want[160];
    if (c->batch > m->max_batch) {
        snprintf(found, sizeof found, "%lld", (long long)c->batch);
        snprintf(want, sizeof want, "1 to %d (this model's compiled maximum batch)", m->max_batch);
        bad_field(path, "batch", found, want);
    }
    if (c->epochs_done > c->epochs) {
        snprintf(found, sizeof found, "%lld", (long long)c->epochs_done);
        snprintf(want, sizeof want, "at most its 'epochs', %lld", (long long)c->epochs);
        bad_field(path, "epochs_done", found, want);
    }
    const struct { const char *key; int64_t v, lo, hi; } ints[] = {
        {"epochs", c->epochs, 1, 1000000000}, {"log_every", c->log_every, 1, 1000000000},
        {"n_val", c->n_val, 0, INT64_MAX / 8},
        {"n_train", c->n_train, 1, INT64_MAX / 8},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (ints[i].v < ints[i].lo || ints[i].v > ints[i].hi) {
            snprintf(found, sizeof found, "%lld", (long long)ints[i].v);
            snprintf(want, sizeof want, "%lld to %lld", (long long)ints[i].lo, (long long)ints[i].hi);
            bad_field(path, ints[i].key, found, want);
        }
    if (!(c->val_split >= 0 && c->val_split < 1)) {
        snprintf(found, sizeof found, "%.17g", c->val_split);
        bad_field(path, "val_split", found, "a fraction in [0, 1)");
    }
    for (int i = 0; i < m->n_hparams; i++) {
        char key[96], range[64];
        snprintf(key, sizeof key, "hp.%s", m->hparams[i].name);
        if (!nnrt_hparam_in_range(m, i, ctx->hp[i], range, sizeof range)) {
            snprintf(found, sizeof found, "%.17g", ctx->hp[i]);
            snprintf(want, sizeof want, "a number in %s", range);
            bad_field(path, key, found, want);
        }
    }
    // The optimizer: its slots (written since format 2 gained them) and no hyperparameter this model lacks.
    const char *slots = nnrt_st_meta(f, "state_slots");
    char ours[VALUE_LEN];
    slot_list(m, ours, sizeof ours);
    if (slots && strcmp(slots, ours) != 0) {
        snprintf(found, sizeof found, "'%.40s'", slots);
        snprintf(want, sizeof want, "'%.60s' (the optimizer state of this model)", ours);
        bad_field(path, "state_slots", found, want);
    }
    for (int k = 0; k < nnrt_st_meta_count(f); k++) {
        const char *key = nnrt_st_meta_key(f, k);
        if (strncmp(key, "hp.", 3) != 0) continue;
        int known = 0;
        for (int i = 0; i < m->n_hparams && !known; i++) known = strcmp(key + 3, m->hparams[i].name) == 0;
        if (!known) nnrt_die("%s: checkpoint field '%.60s' is a hyperparameter this model does not have (another optimizer or "
                             "schedule wrote this checkpoint)", path, key);
    }
}

/* NaN or infinity in a tensor a checkpoint restores: the run it was written from never saved one. */
static void check_finite(const char *path, const char *what, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) nnrt_die("%s: checkpoint tensor '%s' holds %s at element %zu, expected finite values", path, what,
                                      isnan(v[i]) ? "NaN" : "an infinity", i);
}

/* An average of the weights (--ema, --swa-start) when the checkpoint has its count: the count and the tensor. */
static void load_average(nnrt_st *f, const char *path, const nnrt_model *m, const char *count, const char *key,
                         nnrt_ema *a) {
    if (!nnrt_st_meta(f, count)) return;
    a->on = 1;
    a->count = need_i64(f, path, count, 0);
    const void *avg = nnrt_st_tensor(f, key, 0, (int64_t)m->params_numel);
    if (!avg) nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, key);
    a->weights = nnrt_malloc(m->params_numel * sizeof(float));
    memcpy(a->weights, avg, m->params_numel * sizeof(float));
    check_finite(path, key, a->weights, m->params_numel);
}

void nnrt_lbfgs_history_free(nnrt_lbfgs_history *h) {
    free(h->d), free(h->g_prev), free(h->s), free(h->y);
    memset(h, 0, sizeof *h);
}

/* A tensor of the L-BFGS history: numel F32 (shaped (rows, n) when rows ≥ 0), copied out, finite. */
static float *lbfgs_tensor(nnrt_st *f, const char *path, const char *name, int64_t rows, int64_t n) {
    int64_t shape[2] = {rows, n};
    const void *t = rows >= 0 ? nnrt_st_tensor_shaped(f, name, 0, 2, shape) : nnrt_st_tensor(f, name, 0, n);
    if (!t) nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, name);
    size_t numel = (size_t)(rows >= 0 ? rows : 1) * (size_t)n;
    float *v = nnrt_malloc(numel * sizeof(float) + 1);
    memcpy(v, t, numel * sizeof(float));
    check_finite(path, name, v, numel);
    return v;
}

/* An L-BFGS model's history; a checkpoint without one (written before checkpoints kept it) cannot be resumed. */
static void load_lbfgs(nnrt_st *f, const char *path, const nnrt_model *m, nnrt_lbfgs_history *h) {
    if (!nnrt_st_meta(f, NNRT_CHECKPOINT_LBFGS "n_iter"))
        nnrt_die("%s: the checkpoint has no L-BFGS history (an older trainer wrote it), so the run cannot continue its "
                 "trajectory; train from the start, or from '--init %s'", path, path);
    h->on = 1;
    for (int i = 0; i < m->n_params; i++) h->n += m->params[i].trainable ? (int64_t)m->params[i].numel : 0;
    h->n_iter = need_i64(f, path, NNRT_CHECKPOINT_LBFGS "n_iter", 0);
    h->count = need_i64(f, path, NNRT_CHECKPOINT_LBFGS "count", 0);
    h->t = need_f64(f, path, NNRT_CHECKPOINT_LBFGS "t");
    h->H_diag = need_f64(f, path, NNRT_CHECKPOINT_LBFGS "H_diag");
    if (h->count > h->n_iter)
        nnrt_die("%s: corrupt checkpoint (L-BFGS keeps %lld pairs after %lld iterations)", path, (long long)h->count,
                 (long long)h->n_iter);
    if (!isfinite(h->t) || !(h->H_diag > 0 && isfinite(h->H_diag)))
        nnrt_die("%s: corrupt checkpoint (L-BFGS's step length %g or scale H_diag %g is not a finite number, the scale "
                 "positive)", path, h->t, h->H_diag);
    h->d = lbfgs_tensor(f, path, NNRT_CHECKPOINT_LBFGS "d", -1, h->n);
    h->g_prev = lbfgs_tensor(f, path, NNRT_CHECKPOINT_LBFGS "g_prev", -1, h->n);
    if (h->count > 0) {
        h->s = lbfgs_tensor(f, path, NNRT_CHECKPOINT_LBFGS "s", h->count, h->n);
        h->y = lbfgs_tensor(f, path, NNRT_CHECKPOINT_LBFGS "y", h->count, h->n);
    }
}

/* The data path's options (--augment, --mixup, --cutmix) a resumed run takes from its checkpoint, checked against
   the model as the flags would be; absent keys leave them off. */
static void load_data_options(const nnrt_st *f, const char *path, const nnrt_model *m, nnrt_checkpoint *c) {
    char why[256];
    const char *list = nnrt_st_meta(f, "augment");
    if (list) {
        if (!nnrt_augment_parse_checked(list, m, &c->aug, why, sizeof why))
            nnrt_die("%s: corrupt checkpoint (metadata 'augment' is '%.80s': %s)", path, list, why);
        nnrt_augment_format(&c->aug, c->augment, sizeof c->augment);
    }
    const char *keys[2] = {"mixup", "cutmix"};
    double *alpha[2] = {&c->mixup, &c->cutmix};
    for (int i = 0; i < 2; i++) {
        if (!nnrt_st_meta(f, keys[i])) continue;
        *alpha[i] = need_f64(f, path, keys[i]);
        if (!(*alpha[i] >= 0 && isfinite(*alpha[i]))) bad_field(path, keys[i], need(f, path, keys[i]), "a non-negative number (its α)");
    }
    const char *bad = nnrt_mix_unsupported(c->mixup, c->cutmix, m, why, sizeof why);
    if (bad) nnrt_die("%s: corrupt checkpoint (metadata '%s' is '%s', but %s)", path, bad, need(f, path, bad), why);
}

/* An optional integer key from lo to hi, a bound its 'epochs' set (checked already), 0 when absent. */
static int64_t epochs_key(const nnrt_st *f, const char *path, const char *key, int64_t lo, int64_t hi, const char *what) {
    if (!nnrt_st_meta(f, key)) return 0;
    int64_t x = need_i64(f, path, key, lo);
    if (x > hi) {
        char want[160];
        snprintf(want, sizeof want, "%s from %lld to %lld (within its 'epochs')", what, (long long)lo, (long long)hi);
        bad_field(path, key, need(f, path, key), want);
    }
    return x;
}

/* SWA's options (--swa-start, --swa-lr, --swa-anneal-epochs; swa.lr is absent from checkpoints written before a
   resumed run took them, which then resume without SWA unless the flags are given again), the rate its annealing
   started from, and --snapshots: each checked against the checkpoint's epochs, as the flags are against --epochs. */
static void load_swa_options(const nnrt_st *f, const char *path, nnrt_checkpoint *c) {
    c->swa_start = epochs_key(f, path, "swa.start", 1, c->epochs, "an epoch");
    if (nnrt_st_meta(f, "swa.lr")) {
        if (!c->swa_start) nnrt_die("%s: corrupt checkpoint (metadata 'swa.lr' without 'swa.start')", path);
        c->swa_lr = need_f64(f, path, "swa.lr");
        if (!(c->swa_lr > 0 && isfinite(c->swa_lr)))
            bad_field(path, "swa.lr", need(f, path, "swa.lr"), "a learning rate (a finite number > 0)");
    }
    c->swa_anneal_epochs = epochs_key(f, path, "swa.anneal_epochs", 0, c->epochs - (c->swa_start ? c->swa_start : 1) + 1,
                                      "a number of epochs");
    c->swa_anneal_from = NAN;
    if (nnrt_st_meta(f, "swa.anneal_from")) {
        c->swa_anneal_from = need_f64(f, path, "swa.anneal_from");
        if (!(c->swa_anneal_from >= 0 && isfinite(c->swa_anneal_from)))
            bad_field(path, "swa.anneal_from", need(f, path, "swa.anneal_from"), "a learning rate (a finite number >= 0)");
    }
    c->snapshots = epochs_key(f, path, "snapshots", 1, c->epochs, "a number of cycles");
}

/* The checks that reject a checkpoint written by another model, before any tensor is trusted. */
static void check_same_model(const nnrt_st *f, const char *path, const nnrt_model *m) {
    const char *name = need(f, path, "model");
    int64_t pn = need_i64(f, path, "params_numel", 0), sn = need_i64(f, path, "state_numel", 0);
    if (strcmp(name, m->name) != 0 || (size_t)pn != m->params_numel || (size_t)sn != m->state_numel)
        nnrt_die("%s: checkpoint of model '%s' (%lld parameters, %lld optimizer state floats), but this trainer is '%s' "
                 "(%zu, %zu)", path, name, (long long)pn, (long long)sn, m->name, m->params_numel, m->state_numel);
    for (int i = 0; i < m->n_hparams; i++) {
        char key[96];
        snprintf(key, sizeof key, "hp.%s", m->hparams[i].name);
        if (!nnrt_st_meta(f, key))
            nnrt_die("%s: checkpoint of another model '%s' (it has no hyperparameter '%s')", path, name, m->hparams[i].name);
    }
}

void nnrt_checkpoint_load(const char *path, nnrt_ctx *ctx, nnrt_checkpoint *c) {
    const nnrt_model *m = ctx->model;
    nnrt_st *f = nnrt_st_read(path);
    const char *version = nnrt_st_meta(f, NNRT_CHECKPOINT_KEY);
    if (!version)
        nnrt_die("%s: not a checkpoint (weights only, no training state; '--init %s' starts from its weights)", path, path);
    if (strcmp(version, "1") != 0 && strcmp(version, "2") != 0)
        nnrt_die("%s: checkpoint format version '%s' is not supported (expected 1 or 2)", path, version);
    check_same_model(f, path, m);
    memset(c, 0, sizeof *c);
    ctx->step = need_i64(f, path, "step", 0);
    c->epochs_done = need_i64(f, path, "epochs_done", 0);
    c->epochs = need_i64(f, path, "epochs", 0);
    c->batch = need_i64(f, path, "batch", 1);
    c->seed = need_u64(f, path, "seed");
    c->log_every = need_i64(f, path, "log_every", 1);
    int64_t shuffle = need_i64(f, path, "shuffle", 0);
    if (shuffle > 1) bad_field(path, "shuffle", need(f, path, "shuffle"), "0 or 1");
    c->no_shuffle = !shuffle;
    c->n_train = need_i64(f, path, "n_train", 1);
    c->n_val = need_i64(f, path, "n_val", 0);
    c->val_split = need_f64(f, path, "val_split");
    need_rng(f, path, "rng", ctx->rng);
    need_rng(f, path, "shuffle_rng", c->shuffle_rng);
    nnrt_data_info_read(f, m, &c->info);
    for (int i = 0; i < m->n_hparams; i++) {
        char key[96];
        snprintf(key, sizeof key, "hp.%s", m->hparams[i].name);
        ctx->hp[i] = need_f64(f, path, key);
    }
    check_fields(path, ctx, c, f);

    const char *on = nnrt_st_meta(f, "early_stop.on");
    if (on) {
        if (strcmp(on, "val_loss") != 0 && strcmp(on, "val_acc") != 0)
            nnrt_die("%s: corrupt checkpoint (metadata 'early_stop.on' is '%s', expected val_loss or val_acc)", path, on);
        snprintf(c->es.on, sizeof c->es.on, "%s", on);
        c->es.best = need_f64(f, path, "early_stop.best");
        c->es.best_epoch = need_i64(f, path, "early_stop.best_epoch", 0);
        c->es.since = need_i64(f, path, "early_stop.since", 0);
        if (c->es.best_epoch > c->epochs_done || c->es.best_epoch + c->es.since > c->epochs_done)
            nnrt_die("%s: corrupt checkpoint (early stopping's best epoch %lld and %lld epochs since do not fit in its %lld epochs)",
                     path, (long long)c->es.best_epoch, (long long)c->es.since, (long long)c->epochs_done);
    }

    const char *pon = nnrt_st_meta(f, "plateau.on");
    if (pon) {
        if (strcmp(pon, "val_loss") != 0 && strcmp(pon, "val_acc") != 0 && strcmp(pon, "train_loss") != 0)
            nnrt_die("%s: corrupt checkpoint (metadata 'plateau.on' is '%s', expected val_loss, val_acc or train_loss)", path, pon);
        snprintf(c->plateau.on, sizeof c->plateau.on, "%s", pon);
        c->plateau.best = need_f64(f, path, "plateau.best");
        c->plateau.bad = need_i64(f, path, "plateau.bad", 0);
        c->plateau.cooldown = need_i64(f, path, "plateau.cooldown", 0);
    }

    load_swa_options(f, path, c);
    load_data_options(f, path, m, c);

    nnrt_st_load_params(f, m, ctx->params);  // which refuses weights that are not finite
    load_average(f, path, m, "ema.count", NNRT_CHECKPOINT_EMA, &c->ema);
    load_average(f, path, m, "swa.count", NNRT_CHECKPOINT_SWA, &c->swa);
    if (m->lbfgs) load_lbfgs(f, path, m, &c->lbfgs);
    if (on && c->es.best_epoch > 0) {
        const void *best = nnrt_st_tensor(f, NNRT_CHECKPOINT_BEST, 0, (int64_t)m->params_numel);
        if (!best) nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, NNRT_CHECKPOINT_BEST);
        c->es.weights = nnrt_malloc(m->params_numel * sizeof(float));
        memcpy(c->es.weights, best, m->params_numel * sizeof(float));
        check_finite(path, NNRT_CHECKPOINT_BEST, c->es.weights, m->params_numel);
    }
    // The optimizer's state: the whole arena (format 1, or a model without slot names), else a tensor per slot
    // and trainable parameter.
    const void *state = nnrt_st_tensor(f, NNRT_CHECKPOINT_STATE, 0, (int64_t)m->state_numel);
    if (state) {
        memcpy(ctx->state, state, m->state_numel * sizeof(float));
    } else if (m->n_state_slots > 0) {
        memset(ctx->state, 0, m->state_numel * sizeof(float));
        for (int k = 0; k < m->n_state_slots; k++)
            for (int i = 0; i < m->n_params; i++) {
                const nnrt_param *p = &m->params[i];
                if (!p->trainable) continue;
                char name[320];
                snprintf(name, sizeof name, "%s%s.%s", NNRT_CHECKPOINT_SLOT_PREFIX, m->state_slots[k], p->name);
                int64_t flat[1] = {(int64_t)p->numel};
                const void *t = nnrt_st_tensor_shaped(f, name, 0, p->ndim > 0 ? p->ndim : 1, p->ndim > 0 ? p->shape : flat);
                if (!t) nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, name);
                memcpy(ctx->state + (size_t)k * m->params_numel + p->offset, t, p->numel * sizeof(float));
            }
    } else {
        nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, NNRT_CHECKPOINT_STATE);
    }
    check_finite(path, "optimizer state", ctx->state, m->state_numel);
    const void *order = nnrt_st_tensor(f, NNRT_CHECKPOINT_ORDER, 1, c->n_train);
    if (!order) nnrt_die("%s: corrupt checkpoint (no tensor '%s')", path, NNRT_CHECKPOINT_ORDER);
    nnrt_st_check_unexpected(f, m);
    c->order = nnrt_malloc(nnrt_mul_size((size_t)c->n_train, sizeof(int64_t), path));
    memcpy(c->order, order, (size_t)c->n_train * sizeof(int64_t));
    unsigned char *seen = nnrt_calloc((size_t)c->n_train, 1);  // the order must be a permutation of 0..n_train-1
    for (int64_t i = 0; i < c->n_train; i++) {
        int64_t k = c->order[i];
        if (k < 0 || k >= c->n_train || seen[k]) nnrt_die("%s: corrupt checkpoint ('%s' is not a permutation)", path, NNRT_CHECKPOINT_ORDER);
        seen[k] = 1;
    }
    free(seen);
    nnrt_st_free(f);
}
