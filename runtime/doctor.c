/* doctor.c — the doctor command: the babysitting checks of the lectures, on the user's model, data and
 * hyperparameters, in seconds. Each check prints a verdict with the number behind it; a failing one says what it
 * usually means. Exit 0 when no check failed (a skipped one does not fail), 1 otherwise (docs/trainer.md).
 *
 *   initial loss   the loss at init on up to 1024 samples against log(C) (a classifier) or, for a regression, against
 *                  the loss of predicting 0 (the labels' mean² + variance): within 25 % of log(C), at most 4× that;
 *   overfit        from init, up to --steps (default 200) steps on two batches of min(--batch, 32) samples: the
 *                  training accuracy on them reaches 99 % (a regression: the loss falls to a tenth);
 *   gradcheck      gradcheck's float64 check at init (--samples, --tol, --floor);
 *   update ratio   ‖ΔW‖/‖W‖ of every weight (2-d or more) at the 5th step of normal training: in [1e-5, 0.3]
 *                  (see RATIO_HI);
 *   learning       the held-out loss after --steps steps of normal training: for a classifier below the initial one
 *                  with an accuracy of at least twice chance; for a regression an R² of at least 0.1 against the
 *                  held-out labels' variance;
 *   dead units     after init, the fraction of each ReLU's units that are 0 on every sample of a batch, and of each
 *                  tanh's or sigmoid's values that are saturated: at most 50 % (needs 'nncc compile --monitor');
 *   lr range test  Smith's: the learning rate from 1e-7 up ×10^(8/100) per step for 100 steps (or until the smoothed
 *                  loss passes 4× its minimum); suggests a tenth of the rate at the smoothed minimum (--lr-curve F.svg
 *                  draws the curve). It fails when the smoothed loss never fell by 10 %, or --lr is past the minimum. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_doctor.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_monitor.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

enum { HELD_OUT_MAX = 1024, OVERFIT_BATCH = 32, RATIO_STEP = 5 };
/* The update ratios that pass at RATIO_STEP. The lectures' 1e-3 is a steady-state figure for large layers; at step 5
   a small layer under SGD with momentum 0.9 at lr 0.1 moves by about 0.12 and trains well (DoctorTests' healthy MLP),
   Adam moves every weight by about lr (0.01–0.03 for the Fashion-MNIST MLP at 1e-3), while --lr 10 moves by 1.5–2. */
static const double RATIO_LO = 1e-5, RATIO_HI = 0.3;

// ----------------------------------------------------------------------------
// the checks

static void check_initial_loss(nnrt_doctor *d) {
    const nnrt_model *m = d->ctx->model;
    nnrt_doctor_reset(d);
    double acc, loss = nnrt_doctor_loss(d, d->order, d->held_out, &acc);
    d->initial_loss = loss;
    if (m->target_kind == NNRT_TARGET_CLASS) {
        double want = log((double)m->output_dim);
        int ok = fabs(loss - want) <= 0.25 * want;
        nnrt_doctor_verdict(d, "initial loss", ok, "a bad init: the weights are too large (or too small) and the first "
                            "logits are far from uniform; or the loss does not see the labels it should",
                            "%.4g vs log(%d) = %.4g (ratio %.2f; within 0.75..1.25 expected), on %lld samples", loss,
                            m->output_dim, want, loss / want, (long long)d->held_out);
        return;
    }
    double mean_sq = 0, var = 0;
    int t = m->target_dim;
    double *s = nnrt_calloc((size_t)t, sizeof(double)), *s2 = nnrt_calloc((size_t)t, sizeof(double));
    for (int64_t at = 0; at < d->held_out; at += d->batch) {
        int n = (int)(d->held_out - at < d->batch ? d->held_out - at : d->batch);
        nnrt_gather_y(&d->train->y, d->order + at, n, d->yb);
        for (int64_t i = 0; i < (int64_t)n * t; i++) {
            double y = ((float *)d->yb)[i];
            s[i % t] += y;
            s2[i % t] += y * y;
        }
    }
    for (int j = 0; j < t; j++) {
        double mu = s[j] / (double)d->held_out;
        var += (s2[j] / (double)d->held_out - mu * mu) / t;
        mean_sq += mu * mu / t;
    }
    free(s);
    free(s2);
    double want = var + mean_sq;
    d->label_var = var;
    int ok = loss <= 4 * want + 1e-12;  // PyTorch's init gives outputs of variance about 0.5: sine_regression starts at 2.1×
    nnrt_doctor_verdict(d, "initial loss", ok, "a bad init: the weights are too large, so the first outputs are far "
                        "from 0; or the targets need scaling", "%.4g vs %.4g, the loss of predicting 0 (label variance %.4g "
                        "+ mean² %.4g; at most 4× that expected)", loss, want, var, mean_sq);
}

static void check_overfit(nnrt_doctor *d) {
    const nnrt_model *m = d->ctx->model;
    nnrt_doctor_reset(d);
    int b = d->batch < OVERFIT_BATCH ? d->batch : OVERFIT_BATCH;
    int64_t k = 2 * (int64_t)b < d->n_train ? 2 * (int64_t)b : d->n_train;
    const int64_t *set = d->order + d->held_out;  // the first samples of the training part
    double acc, start = nnrt_doctor_loss(d, set, k, &acc), loss = start;
    int64_t reached = -1;
    for (int64_t s = 1; s <= d->steps && reached < 0; s++) {
        int64_t at = (s - 1) % 2 * b;
        int n = (int)(k - at < b ? k - at : b);
        if (n <= 0) { at = 0; n = (int)k; }
        if (!isfinite(nnrt_doctor_step(d, set + at, n))) { loss = NAN; break; }
        if (s % 10 == 0 || s == d->steps) {
            loss = nnrt_doctor_loss(d, set, k, &acc);
            if (m->target_kind == NNRT_TARGET_CLASS ? acc >= 0.99 : loss <= 0.1 * start) reached = s;
        }
    }
    const char *meaning = "the learning rate is too low (or so high the loss diverges), the model cannot fit even these "
                          "samples, or a bug in the data pipeline";
    if (!isfinite(loss))
        nnrt_doctor_verdict(d, "overfit", NNRT_CHECK_FAIL, "the learning rate is too high: the loss diverged",
                            "the loss became non-finite while fitting %lld samples", (long long)k);
    else if (m->target_kind == NNRT_TARGET_CLASS)
        nnrt_doctor_verdict(d, "overfit", reached > 0, meaning, reached > 0 ? "%lld samples fitted to %.0f%% accuracy in %lld steps (loss %.3g from %.3g)"
                            : "%lld samples reached only %.0f%% accuracy in %lld steps (loss %.3g from %.3g)",
                            (long long)k, 100 * acc, (long long)(reached > 0 ? reached : d->steps), loss, start);
    else
        nnrt_doctor_verdict(d, "overfit", reached > 0, meaning, "%lld samples: loss %.3g from %.3g in %lld steps (a tenth "
                            "expected)", (long long)k, loss, start, (long long)(reached > 0 ? reached : d->steps));
}

static void check_gradcheck(nnrt_doctor *d) {
    nnrt_doctor_reset(d);
    double worst = nnrt_gradcheck_worst(d->ctx, d->o, 0);
    nnrt_doctor_verdict(d, "gradcheck", worst <= d->o->tol, "a bug in a gradient: a custom op, or a miscompile "
                        "(compare with 'nncc compile --no-fusion')", "worst relative error %.3g %s %.3g on %lld samples",
                        worst, worst <= d->o->tol ? "≤" : ">", d->o->tol, (long long)d->o->samples);
}

/* Normal training for --steps steps on the training part, in order of the permutation: the update ratio of every
   weight at step RATIO_STEP, then the held-out loss and accuracy. */
static void check_learning(nnrt_doctor *d) {
    nnrt_ctx *ctx = d->ctx;
    const nnrt_model *m = ctx->model;
    nnrt_doctor_reset(d);
    float *before = nnrt_malloc(m->params_numel * sizeof(float) + 1);
    nnrt_param_stats *ps = nnrt_calloc((size_t)m->n_params + 1, sizeof *ps);
    int64_t s = 1, diverged = 0, at = 0;
    for (; s <= d->steps && !diverged; s++) {
        if (at + d->batch > d->n_train) at = 0;
        int n = (int)(d->n_train < d->batch ? d->n_train : d->batch);
        if (s == RATIO_STEP) memcpy(before, ctx->params, m->params_numel * sizeof(float));
        diverged = !isfinite(nnrt_doctor_step(d, d->order + d->held_out + at, n));
        if (s == RATIO_STEP && !diverged) nnrt_param_stats_compute(m, before, ctx->params, ctx->grads, ps);
        at += n;
    }
    // the update ratio
    char worst[256] = "", all[512] = "";
    int ok = !diverged || s > RATIO_STEP + 1;
    for (int i = 0; i < m->n_params && ok; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable || p->ndim < 2) continue;
        double r = ps[i].update_ratio;
        size_t len = strlen(all);
        snprintf(all + len, sizeof all - len, "%s%s %.2g", len ? ", " : "", p->name, r);
        if (!(r >= RATIO_LO && r <= RATIO_HI) && !worst[0])
            snprintf(worst, sizeof worst, "%s's %.3g is too %s", p->name, r, r > RATIO_HI || isnan(r) ? "high" : "low");
    }
    if (!ok)
        nnrt_doctor_verdict(d, "update ratio", NNRT_CHECK_FAIL, "the learning rate is too high: the loss diverged",
                            "the loss became non-finite before step %d", RATIO_STEP);
    else
        nnrt_doctor_verdict(d, "update ratio", !worst[0], worst[0] && strstr(worst, "high") ? "the learning rate is too high "
                            "(or the init too small): updates this large overshoot" : "the learning rate is too low: "
                            "the weights barely move", "at step %d: %s%s%s (‖ΔW‖/‖W‖; %g..%g expected)",
                            RATIO_STEP, all, worst[0] ? "; " : "", worst, RATIO_LO, RATIO_HI);
    free(before);
    free(ps);
    // what it learned
    double acc, loss = diverged ? NAN : nnrt_doctor_loss(d, d->order, d->held_out, &acc);
    if (!isfinite(loss)) {
        nnrt_doctor_verdict(d, "learning", NNRT_CHECK_FAIL, "the learning rate is too high: the loss diverged",
                            "the loss became non-finite within %lld steps", (long long)d->steps);
    } else if (m->target_kind == NNRT_TARGET_CLASS) {
        double chance = 1.0 / m->output_dim;
        int good = loss < d->initial_loss && acc >= 2 * chance;
        nnrt_doctor_verdict(d, "learning", good, "labels that do not match their inputs (shuffled, or misaligned with the "
                            "images), or a learning rate far too low or too high", "after %lld steps: held-out loss %.4g "
                            "(from %.4g), accuracy %.3f (chance %.3f; twice chance expected)", (long long)d->steps, loss,
                            d->initial_loss, acc, chance);
    } else {
        // R² against the held-out labels' own variance: predicting their mean scores 0, shuffled targets about that
        double r2 = d->label_var > 0 ? 1 - loss / d->label_var : 0;
        nnrt_doctor_verdict(d, "learning", r2 >= 0.1, "targets that do not match their inputs (shuffled), or a learning "
                            "rate far too low or too high", "after %lld steps: held-out loss %.4g (from %.4g), R² %.3f against "
                            "the label variance %.4g (at least 0.1 expected)", (long long)d->steps, loss, d->initial_loss, r2,
                            d->label_var);
    }
}

/* The instrumented step at init on one batch, its update undone: each activation's dead or saturated units. */
static void check_dead_units(nnrt_doctor *d) {
    nnrt_ctx *ctx = d->ctx;
    const nnrt_model *m = ctx->model;
    if (!m->train_step_monitor) {
        nnrt_doctor_verdict(d, "dead units", NNRT_CHECK_SKIP, NULL, "the trainer has no activation statistics: compile "
                            "the model with 'nncc compile --monitor'");
        return;
    }
    nnrt_doctor_reset(d);
    nnrt_monitor mon;
    nnrt_monitor_start(&mon, ctx, 1, NULL);
    int n = (int)(d->n_train < d->batch ? d->n_train : d->batch);
    ctx->step = 1;
    ctx->training = 1;
    nnrt_gather_x(&d->train->x, d->order + d->held_out, n, d->xb);
    nnrt_gather_y(&d->train->y, d->order + d->held_out, n, d->yb);
    m->train_step_monitor(ctx, n, d->xb, d->yb);
    ctx->training = 0;
    char all[512] = "", worst[256] = "";
    int measured = 0;
    for (int i = 0; i < mon.n_acts; i++) {
        const nnrt_act_stats *a = &mon.acts[i];
        int relu = strcmp(a->kind, "relu") == 0;
        if (!relu && strcmp(a->kind, "tanh") != 0 && strcmp(a->kind, "sigmoid") != 0) continue;
        double f = relu ? a->frac_dead : a->frac_saturated;
        size_t len = strlen(all);
        snprintf(all + len, sizeof all - len, "%s%s (%s) %.0f%% %s", len ? ", " : "", a->name, a->kind, 100 * f,
                 relu ? "dead" : "saturated");
        if (f > 0.5 && !worst[0]) snprintf(worst, sizeof worst, "; %s is over 50%%", a->name);
        measured++;
    }
    nnrt_monitor_stop(&mon, ctx);
    if (!measured)
        nnrt_doctor_verdict(d, "dead units", NNRT_CHECK_SKIP, NULL, "no ReLU, tanh or sigmoid activation is stored");
    else
        nnrt_doctor_verdict(d, "dead units", !worst[0], "a bad init: weights too large saturate tanh and sigmoid, a "
                            "large negative bias (or a high learning rate) kills ReLUs", "after init on %d samples: %s%s",
                            n, all, worst);
}

// ----------------------------------------------------------------------------
// the command

int nnrt_cmd_doctor(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    nnrt_train_data data;
    nnrt_train_data_load(o, m, &data, NULL);
    nnrt_doctor d = {.ctx = ctx, .o = o, .train = &data.train, .batch = (int)o->batch, .steps = o->steps ? o->steps : 200};
    int64_t N = data.train.x.n;
    if (N < 2) nnrt_die("doctor: the training set has %lld samples; at least 2 are needed", (long long)N);
    d.order = nnrt_malloc((size_t)N * sizeof(int64_t));
    for (int64_t i = 0; i < N; i++) d.order[i] = i;
    uint64_t rng[4];
    nnrt_rng_seed(rng, o->seed, NNRT_STREAM_SHUFFLE);
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)nnrt_rng_below(rng, (uint64_t)i + 1), t = d.order[i];
        d.order[i] = d.order[j];
        d.order[j] = t;
    }
    d.held_out = N / 5 < HELD_OUT_MAX ? (N / 5 > 0 ? N / 5 : 1) : HELD_OUT_MAX;
    d.n_train = N - d.held_out;
    ctx->steps_per_epoch = (d.n_train + d.batch - 1) / d.batch;
    d.xb = nnrt_malloc((size_t)d.batch * (size_t)m->input_dim * sizeof(float));
    d.yb = nnrt_malloc((size_t)d.batch * (size_t)m->target_dim * 4);
    d.out = nnrt_malloc((size_t)d.batch * (size_t)m->output_dim * sizeof(float));
    double t0 = nnrt_now();
    printf("doctor: model '%s', %lld training samples (%lld held out), batch %d\n", m->name, (long long)N,
           (long long)d.held_out, d.batch);
    // A full-batch L-BFGS model's train_step updates nothing (runtime/lbfgs.c does, over the whole set): the checks
    // that take optimizer steps would fail for no fault of the model.
    const char *lbfgs = "the model trains with full-batch L-BFGS, whose update is no single step: a few epochs of "
                        "'train' show whether it learns";
    check_initial_loss(&d);
    if (m->lbfgs) nnrt_doctor_verdict(&d, "overfit", NNRT_CHECK_SKIP, NULL, "%s", lbfgs);
    else check_overfit(&d);
    check_gradcheck(&d);
    if (m->lbfgs) {
        nnrt_doctor_verdict(&d, "update ratio", NNRT_CHECK_SKIP, NULL, "%s", lbfgs);
        nnrt_doctor_verdict(&d, "learning", NNRT_CHECK_SKIP, NULL, "%s", lbfgs);
    } else {
        check_learning(&d);
    }
    check_dead_units(&d);
    if (m->lbfgs) nnrt_doctor_verdict(&d, "lr range test", NNRT_CHECK_SKIP, NULL, "%s", lbfgs);
    else nnrt_doctor_lr_range(&d);
    printf("doctor: %s (%.1fs)\n", d.failed ? "some checks failed" : "all checks passed", nnrt_now() - t0);
    free(d.order);
    free(d.xb);
    free(d.yb);
    free(d.out);
    nnrt_train_data_free(&data);
    return d.failed ? NNRT_EXIT_FAIL : 0;
}
