/* ema.c — train --ema: the exponential moving average of the weights, updated after every finite step; and the
 * lerp both averages share (swa.c's equal average takes the weight 1/(k+1)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_cli.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

void nnrt_average_update(const nnrt_model *m, float *avg, const float *params, float w, float v, int first, int buffers) {
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *q = &m->params[i];
        float *e = avg + q->offset;
        const float *x = params + q->offset;
        if (first || q->counter || (!buffers && !q->trainable)) {
            memcpy(e, x, q->numel * sizeof(float));
        } else if (w < 0.5f) {
            for (size_t k = 0; k < q->numel; k++) e[k] = e[k] + w * (x[k] - e[k]);
        } else {
            for (size_t k = 0; k < q->numel; k++) e[k] = x[k] - (x[k] - e[k]) * v;
        }
    }
}

void nnrt_ema_update(const nnrt_model *m, float *ema, const float *params, double decay, int first) {
    // torch: the weight as the tensors' float, and 1 − weight
    nnrt_average_update(m, ema, params, (float)(1.0 - decay), (float)decay, first, 1);
}

void nnrt_ema_start(nnrt_ema *ema, const nnrt_options *o, const nnrt_checkpoint *ck, const nnrt_model *m) {
    memset(ema, 0, sizeof *ema);
    if (!nnrt_flag_given(o, "ema")) return;
    ema->on = 1;
    ema->weights = nnrt_malloc(m->params_numel * sizeof(float));
    if (o->resume && ck->ema.on) {
        ema->count = ck->ema.count;
        memcpy(ema->weights, ck->ema.weights, m->params_numel * sizeof(float));
    } else if (o->resume && !o->quiet) {
        printf("ema starts afresh: the checkpoint was trained without --ema\n");
    }
}
