/* swa.c — train --swa-start E --swa-lr LR (stochastic weight averaging, Izmailov et al. 2018, as PyTorch's
 * torch.optim.swa_utils) and train --snapshots K (snapshot ensembles, Huang et al. 2017): the learning rate they
 * put in the schedule's place (ctx->lr_override, which the generated train_step uses when it is positive), SWA's
 * equal average of the weights and its BatchNorm statistics (update_bn), and the snapshot files.
 *
 * SWA: epochs E, E+1, …, N (1-based) train at LR (torch's SWALR with anneal_epochs=0: the switch is immediate),
 * or with --swa-anneal-epochs K > 0 (SWALR(anneal_epochs=K, anneal_strategy="cos") stepped once per epoch) epoch
 * E + j trains every step at LR·α_j + r·(1 − α_j), α_j = (1 − cos(π·min(1, j/K)))/2, r the schedule's rate at the
 * first step of epoch E (that step takes it from the schedule itself, α_0 = 0; ctx->lr then tells it), so epochs
 * E … E+K−1 anneal and E+K on train at LR. After each epoch from E on, the average of the trainable parameters
 * takes the epoch's weights in with equal weight: avg ← lerp(avg, p, 1/(k+1)) after k epochs (the first copies),
 * torch's get_swa_multi_avg_fn. At the end, update_bn recomputes BatchNorm's running statistics for the average:
 * one pass over the training set in file order, in batches of --batch, without --augment, in training mode (dropout
 * on, its generator restored after), each batch's mean and unbiased variance weighted equally (torch's momentum
 * None) and num_batches_tracked set to the number of batches. The average is what --save writes; the checkpoint keeps the raw weights too.
 *
 * Snapshots: the E epochs are split into K cycles at the epoch boundaries ⌊c·E/K⌋ (c = 0…K), and inside cycle c
 * step u (0-based) of its L steps has the rate lr/2·(1 + cos(π·u/L)), lr the model's --lr: Huang et al.'s
 * α₀/2·(cos(π·mod(t−1, ⌈T/M⌉)/⌈T/M⌉) + 1) when K divides E. The weights at each cycle's end go to
 * W.snapC.safetensors (W the --save path without its .safetensors). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

// ----------------------------------------------------------------------------
// the learning rate

#define NNRT_SWA_PI 3.14159265358979323846

/* The first epoch (0-based) of snapshot cycle c of k over `epochs`. */
static int64_t cycle_start(int64_t c, int64_t k, int64_t epochs) { return c * epochs / k; }

/* The cycle (0-based) that the 0-based epoch e belongs to. */
static int64_t cycle_of(int64_t e, int64_t k, int64_t epochs) {
    int64_t c = 0;
    while (c + 1 < k && cycle_start(c + 1, k, epochs) <= e) c++;
    return c;
}

double nnrt_swa_step_lr(const nnrt_options *run, const nnrt_ctx *ctx, double anneal_from) {
    if (run->swa_start && ctx->epoch + 1 >= run->swa_start) {
        int64_t j = ctx->epoch + 1 - run->swa_start, k = run->swa_anneal_epochs;  // j: epochs since E
        if (j >= k) return run->swa_lr;
        if (isnan(anneal_from)) return 0;  // epoch E's first step: the schedule's rate, which becomes anneal_from
        // SWALR's _cosine_anneal(t) and its rate swa_lr·α + lr0·(1 − α) in closed form (torch recovers lr0 from the
        // previous epoch's rate each step, the same number up to rounding); α_0 = 0 gives anneal_from exactly. An
        // anneal_from of 0 would read as "no override": the schedule's rate, 0 too for schedules that end at 0.
        double a = (1 - cos(NNRT_SWA_PI * (double)j / (double)k)) / 2;
        return run->swa_lr * a + anneal_from * (1 - a);
    }
    if (!run->snapshots) return 0;
    int64_t k = run->snapshots, E = run->epochs, c = cycle_of(ctx->epoch, k, E);
    int64_t first = cycle_start(c, k, E), L = (cycle_start(c + 1, k, E) - first) * ctx->steps_per_epoch;
    int64_t u = (ctx->step - 1) - first * ctx->steps_per_epoch;   // ctx->step: the 1-based step being taken
    return 0.5 * ctx->hp[ctx->lr_hparam] * (1 + cos(NNRT_SWA_PI * (double)u / (double)L));
}

void nnrt_swa_step_taken(const nnrt_options *run, const nnrt_ctx *ctx, double *anneal_from) {
    if (run->swa_anneal_epochs > 0 && isnan(*anneal_from) && ctx->epoch + 1 == run->swa_start) *anneal_from = ctx->lr;
}

double nnrt_swa_anneal_from(const nnrt_options *run, const nnrt_checkpoint *ck, int resumed) {
    int64_t first = resumed ? ck->epochs_done + 1 : 1;  // the run's first epoch (1-based)
    if (!run->swa_anneal_epochs || first <= run->swa_start || first >= run->swa_start + run->swa_anneal_epochs) return NAN;
    // resumed inside the annealing, after epoch E's first step: the rate it started from is the checkpoint's
    if (ck->swa.on && ck->swa_start == run->swa_start && !isnan(ck->swa_anneal_from)) return ck->swa_anneal_from;
    nnrt_usage_die("--swa-anneal-epochs %lld: the checkpoint %s ends inside the annealing from epoch %lld (at epoch %lld) but "
                   "holds no rate it started from (it was trained without --swa-anneal-epochs or with another --swa-start); "
                   "resume it with the SWA flags it was trained with", (long long)run->swa_anneal_epochs, run->resume,
                   (long long)run->swa_start, (long long)ck->epochs_done);
}

/* For a usage error of a resumed run: the SWA and snapshot options its checkpoint gave ("; the checkpoint c.ck gave
   --swa-start 3 --swa-lr 0.02"), else "". */
static const char *from_checkpoint(const nnrt_options *run, char *buf, size_t cap) {
    char list[192];
    int n = 0;
    list[0] = buf[0] = 0;
    if (!run->resume) return buf;
    if (run->swa_start && !nnrt_flag_given(run, "swa-start"))
        n += snprintf(list + n, sizeof list - (size_t)n, " --swa-start %lld", (long long)run->swa_start);
    if (run->swa_lr > 0 && !nnrt_flag_given(run, "swa-lr")) n += snprintf(list + n, sizeof list - (size_t)n, " --swa-lr %g", run->swa_lr);
    if (run->swa_anneal_epochs && !nnrt_flag_given(run, "swa-anneal-epochs"))
        n += snprintf(list + n, sizeof list - (size_t)n, " --swa-anneal-epochs %lld", (long long)run->swa_anneal_epochs);
    if (run->snapshots && !nnrt_flag_given(run, "snapshots"))
        n += snprintf(list + n, sizeof list - (size_t)n, " --snapshots %lld", (long long)run->snapshots);
    if (n) snprintf(buf, cap, "; the checkpoint %s gave%s", run->resume, list);
    return buf;
}

void nnrt_swa_check(const nnrt_options *run, const nnrt_model *m) {
    char ck[320];
    from_checkpoint(run, ck, sizeof ck);
    if (!run->resume && nnrt_flag_given(run, "swa-start") && !run->swa_start)
        nnrt_usage_die("--swa-start 0: turns a checkpoint's SWA off at --resume only; SWA starts at an epoch E >= 1");
    if (!run->resume && nnrt_flag_given(run, "snapshots") && !run->snapshots)
        nnrt_usage_die("--snapshots 0: turns a checkpoint's snapshot ensemble off at --resume only; give K >= 1 cycles");
    if (!run->swa_start != !(run->swa_lr > 0))
        nnrt_usage_die("--%s: needs --%s too (SWA trains at --swa-lr LR from epoch --swa-start E on)%s",
                       run->swa_start ? "swa-start" : "swa-lr", run->swa_start ? "swa-lr LR" : "swa-start E", ck);
    if (nnrt_flag_given(run, "swa-anneal-epochs") && !run->swa_start)
        nnrt_usage_die("--swa-anneal-epochs: needs --swa-start E and --swa-lr LR (it anneals the rate towards LR from epoch E)%s", ck);
    if (run->snapshots && run->swa_start) nnrt_usage_die("--snapshots: not with --swa-start (each sets the learning rate)%s", ck);
    if (run->snapshots && !run->save) nnrt_usage_die("--snapshots: needs --save W (the snapshots go to W.snap1.safetensors, …)%s", ck);
    if ((run->swa_start || run->snapshots) && run->early_stop)
        nnrt_usage_die("--%s: not with --early-stop (which saves the best epoch's weights instead)%s",
                       run->swa_start ? "swa-start" : "snapshots", ck);
    if ((run->swa_start || run->snapshots) && nnrt_find_hparam(m, "lr") < 0)
        nnrt_usage_die("--%s: model '%s' has no learning rate hyperparameter (--lr)", run->swa_start ? "swa-start" : "snapshots",
                       m->name);
}

void nnrt_swa_check_epochs(const nnrt_options *run, int64_t steps_per_epoch) {
    char last[160], ck[320];
    from_checkpoint(run, ck, sizeof ck);
    if (run->steps)
        snprintf(last, sizeof last, "--steps %lld: epoch %lld is the last, at %lld steps per epoch", (long long)run->steps,
                 (long long)run->epochs, (long long)steps_per_epoch);
    else
        snprintf(last, sizeof last, "--epochs %lld", (long long)run->epochs);
    if (run->swa_start && run->swa_start > run->epochs)
        nnrt_usage_die("--swa-start %lld: past the last epoch (%s); SWA averages the epochs from E to the last%s",
                       (long long)run->swa_start, last, ck);
    if (run->swa_anneal_epochs && run->swa_start + run->swa_anneal_epochs - 1 > run->epochs)
        nnrt_usage_die("--swa-anneal-epochs %lld: the annealing epochs %lld-%lld run past the last epoch (%s)%s",
                       (long long)run->swa_anneal_epochs, (long long)run->swa_start,
                       (long long)(run->swa_start + run->swa_anneal_epochs - 1), last, ck);
    if (run->snapshots > run->epochs)
        nnrt_usage_die("--snapshots %lld: more cycles than epochs (%s); each cycle ends at an epoch end%s", (long long)run->snapshots,
                       last, ck);
}

// ----------------------------------------------------------------------------
// the average and the snapshots

void nnrt_swa_start(nnrt_ema *swa, const nnrt_options *run, const nnrt_checkpoint *ck, const nnrt_model *m) {
    memset(swa, 0, sizeof *swa);
    if (!run->swa_start) {
        if (run->resume && ck->swa.count > 0 && nnrt_flag_given(run, "swa-start") && !run->quiet)
            printf("swa: off (--swa-start 0); the checkpoint's average of %lld epoch%s is dropped\n", (long long)ck->swa.count,
                   ck->swa.count == 1 ? "" : "s");
        return;
    }
    swa->on = 1;
    swa->weights = nnrt_malloc(m->params_numel * sizeof(float));
    if (run->resume && ck->swa.on) {
        swa->count = ck->swa.count;
        memcpy(swa->weights, ck->swa.weights, m->params_numel * sizeof(float));
    }
    if (run->resume && swa->count == 0 && ck->epochs_done >= run->swa_start && !run->quiet) {
        if (ck->swa.on) printf("swa starts afresh: the checkpoint averaged no epoch (its --swa-start was %lld)\n", (long long)ck->swa_start);
        else printf("swa starts afresh: the checkpoint was trained without --swa-start\n");
    }
}

/* W.snapC.safetensors for --save W(.safetensors). */
static void snapshot_path(char *out, size_t cap, const char *save, int64_t c) {
    size_t n = strlen(save);
    const char *ext = ".safetensors";
    size_t e = strlen(ext);
    int has = n > e && strcmp(save + n - e, ext) == 0;
    snprintf(out, cap, "%.*s.snap%lld%s", (int)(has ? n - e : n), save, (long long)c, ext);
}

void nnrt_swa_epoch_end(nnrt_ema *swa, const nnrt_options *run, const nnrt_ctx *ctx, const nnrt_data_info *info) {
    const nnrt_model *m = ctx->model;
    if (swa->on && ctx->epoch + 1 >= run->swa_start) {
        double w = 1.0 / (double)(swa->count + 1);
        nnrt_average_update(m, swa->weights, ctx->params, (float)w, (float)(1 - w), swa->count == 0, 0);
        swa->count++;
    }
    if (!run->snapshots) return;
    int64_t c = cycle_of(ctx->epoch, run->snapshots, run->epochs);
    if (cycle_start(c + 1, run->snapshots, run->epochs) != ctx->epoch + 1) return;   // not the cycle's last epoch
    char path[4096];
    snapshot_path(path, sizeof path, run->save, c + 1);
    nnrt_save_weights(path, m, ctx->params, info);
    if (!run->quiet) printf("snapshot %lld of %lld: %s\n", (long long)c + 1, (long long)run->snapshots, path);
}

// ----------------------------------------------------------------------------
// update_bn

void nnrt_update_bn(nnrt_ctx *ctx, float *weights, const nnrt_dataset *train, int64_t batch) {
    const nnrt_model *m = ctx->model;
    if (!m->update_bn) return;
    int64_t N = train->x.n;
    double *sum = nnrt_calloc(m->params_numel, sizeof(double));
    int64_t *idx = nnrt_malloc((size_t)batch * sizeof(int64_t));
    float *xb = nnrt_aligned_calloc((size_t)batch * (size_t)m->input_dim * sizeof(float));
    float *own = ctx->params;
    uint64_t rng[4];
    memcpy(rng, ctx->rng, sizeof rng);
    ctx->params = weights;
    int64_t batches = 0;
    for (int64_t s = 0; s < N; s += batch, batches++) {
        int n = (int)(N - s < batch ? N - s : batch);
        for (int i = 0; i < n; i++) idx[i] = s + i;
        nnrt_gather_x_augmented(&train->x, idx, n, xb, NULL);
        m->update_bn(ctx, n, xb);   // writes the batch's statistics into the running buffers of `weights`
        for (int i = 0; i < m->n_params; i++) {
            const nnrt_param *q = &m->params[i];
            if (q->trainable || q->counter) continue;
            for (size_t k = 0; k < q->numel; k++) sum[q->offset + k] += weights[q->offset + k];
        }
    }
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *q = &m->params[i];
        if (q->trainable) continue;
        for (size_t k = 0; k < q->numel; k++)
            weights[q->offset + k] = q->counter ? (float)batches : (float)(sum[q->offset + k] / (double)batches);
    }
    ctx->params = own;
    memcpy(ctx->rng, rng, sizeof rng);
    free(sum); free(idx); free(xb);
}

void nnrt_swa_finish(nnrt_ctx *ctx, nnrt_ema *swa, const nnrt_options *run, const nnrt_train_data *data, nnrt_log *log,
                     int talk) {
    if (!swa->on || swa->count == 0) return;
    nnrt_update_bn(ctx, swa->weights, &data->train, run->batch);
    nnrt_split_metrics v = nnrt_evaluate_split_with(ctx, swa->weights, data->has_val, &data->val);
    nnrt_split_metrics t = nnrt_evaluate_split_with(ctx, swa->weights, data->has_test, &data->test);
    // Every epoch from the first averaged one to the last one run is in the average, so the first is the epochs done
    // minus the count: --swa-start, unless a resume started the average afresh after it.
    int64_t first = ctx->epoch - swa->count + 1;
    if (talk) {
        printf("swa: the average of epochs %lld-%lld (%lld)%s:", (long long)first, (long long)ctx->epoch, (long long)swa->count,
               ctx->model->update_bn ? ", BatchNorm statistics recomputed" : "");
        if (v.has) printf("  val_loss %.4f", v.loss);
        if (v.has && v.acc >= 0) printf("  val_acc %.4f", v.acc);
        if (t.has) printf("  test_loss %.4f", t.loss);
        if (t.has && t.acc >= 0) printf("  test_acc %.4f", t.acc);
        printf("\n");
    }
    if (!log->jsonl) return;
    fprintf(log->jsonl, "{\"swa\":{\"start\":%lld,\"epochs\":%lld", (long long)first, (long long)swa->count);
    const char *names[4] = {"val_loss", "val_acc", "test_loss", "test_acc"};
    double vals[4] = {v.loss, v.acc, t.loss, t.acc};
    int has[4] = {v.has, v.has && v.acc >= 0, t.has, t.has && t.acc >= 0};
    for (int i = 0; i < 4; i++) {
        if (!has[i]) continue;
        fprintf(log->jsonl, ",\"%s\":", names[i]);
        nnrt_json_number(log->jsonl, vals[i]);
    }
    fputs("}}\n", log->jsonl);
    fflush(log->jsonl);
}
