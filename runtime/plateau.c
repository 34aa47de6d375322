/* plateau.c — train --reduce-lr-on-plateau P: PyTorch's ReduceLROnPlateau on a watched metric. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_context.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

/* ReduceLROnPlateau (--reduce-lr-on-plateau P): the state a run starts with, afresh or from its checkpoint when that
   watched the same metric. */
void nnrt_plateau_start(nnrt_plateau *p, const nnrt_options *o, const nnrt_options *run, const nnrt_checkpoint *ck,
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
int nnrt_plateau_update(nnrt_plateau *p, const nnrt_options *run, nnrt_ctx *ctx, double train_loss, nnrt_split_metrics val) {
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
