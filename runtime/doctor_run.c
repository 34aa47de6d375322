/* doctor_run.c — the doctor's short runs (nnrt_doctor.h): the weights a check starts from, one training step, the
 * loss and accuracy of a set of samples, and the verdict lines every check prints (doctor.c, doctor_lr.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnrt_context.h"
#include "nnrt_data.h"
#include "nnrt_doctor.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

void nnrt_doctor_reset(nnrt_doctor *d) {
    nnrt_ctx *ctx = d->ctx;
    const nnrt_model *m = ctx->model;
    if (d->o->init) nnrt_load_safetensors(d->o->init, m, ctx->params);
    else nnrt_init_params(m, ctx->params, d->o->seed);
    memset(ctx->state, 0, m->state_numel * sizeof(float));
    memcpy(ctx->hp, d->o->hp, (size_t)m->n_hparams * sizeof(double));
    ctx->step = 0;
    ctx->epoch = 0;
    nnrt_rng_seed(ctx->rng, d->o->seed, NNRT_STREAM_MODEL);
}

/* The mean loss and accuracy (−1 for a regression) of the k samples order[0..k) in eval mode. */
double nnrt_doctor_loss(nnrt_doctor *d, const int64_t *order, int64_t k, double *acc) {
    nnrt_ctx *ctx = d->ctx;
    const nnrt_model *m = ctx->model;
    double sum = 0;
    int64_t right = 0;
    for (int64_t s = 0; s < k; s += d->batch) {
        int n = (int)(k - s < d->batch ? k - s : d->batch);
        nnrt_gather_x(&d->train->x, order + s, n, d->xb);
        nnrt_gather_y(&d->train->y, order + s, n, d->yb);
        sum += (double)m->eval_batch(ctx, n, d->xb, d->yb, d->out) * n;
        for (int i = 0; m->target_kind == NNRT_TARGET_CLASS && i < n; i++)
            right += nnrt_argmax(d->out + (size_t)i * m->output_dim, m->output_dim) == ((int32_t *)d->yb)[i];
    }
    *acc = m->target_kind == NNRT_TARGET_CLASS ? (double)right / (double)k : -1;
    return sum / (double)k;
}

/* One training step on the n samples order[0..n); its loss. */
double nnrt_doctor_step(nnrt_doctor *d, const int64_t *order, int n) {
    nnrt_gather_x(&d->train->x, order, n, d->xb);
    nnrt_gather_y(&d->train->y, order, n, d->yb);
    d->ctx->step++;
    d->ctx->training = 1;
    float loss = d->ctx->model->train_step(d->ctx, n, d->xb, d->yb);
    d->ctx->training = 0;
    return loss;
}

void nnrt_doctor_verdict(nnrt_doctor *d, const char *check, int status, const char *meaning, const char *fmt, ...) {
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    static const char *const words[] = {"FAIL", "PASS", "SKIP"};
    printf("%-4s  %-14s %s\n", words[status], check, what);
    if (status == NNRT_CHECK_FAIL && meaning) printf("      %-14s usually: %s\n", "", meaning);
    if (status == NNRT_CHECK_FAIL) d->failed++;
    fflush(stdout);
}

