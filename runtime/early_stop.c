/* early_stop.c — train --early-stop K: stop when the validation metric has not improved for K epochs, keeping
 * the best epoch's weights (what --save writes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

/* Early stopping (--early-stop K): the state a run starts with, afresh or as its checkpoint left it when that
   watched the same metric (otherwise a resumed run starts counting again, and says so). */
void nnrt_early_stop_start(nnrt_early_stop *es, const nnrt_options *run, const nnrt_checkpoint *ck, const nnrt_model *m,
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
int nnrt_early_stop_update(nnrt_early_stop *es, const nnrt_options *run, nnrt_split_metrics val, const nnrt_ctx *ctx) {
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
