/* ensemble.c — the weights of eval's and predict's --weights A,B,… and the ensemble's averaged output. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_safetensors.h"
#include "nnrt_train.h"

/* Whether two members prepare their inputs alike (the training range, for the warning only, may differ). */
static int same_data(const nnrt_data_info *a, const nnrt_data_info *b) {
    if (a->has_prep != b->has_prep || a->classes.n != b->classes.n) return 0;
    for (int i = 0; i < a->classes.n; i++) if (strcmp(a->classes.names[i], b->classes.names[i]) != 0) return 0;
    if (!a->has_prep) return 1;
    const nnrt_prep *p = &a->prep, *q = &b->prep;
    size_t bytes = (size_t)p->n_stats * sizeof(float);
    return strcmp(p->scale, q->scale) == 0 && p->norm == q->norm &&
           (p->norm == NNRT_NORM_NONE || (memcmp(p->mean, q->mean, bytes) == 0 && memcmp(p->std, q->std, bytes) == 0));
}

/* --weights A,B,…: the files of an ensemble (one file: a list of one). Each is loaded (strictly) into an array of
   its own; *count gets how many. A path may not be empty. *info gets the first member's data metadata; every
   other member must have the same (an ensemble's inputs go through one preprocessing). */
float **nnrt_ensemble_load(const nnrt_model *m, const char *list, int *count, nnrt_data_info *info) {
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
        nnrt_data_info member;
        nnrt_load_weights(path, m, w[i], i ? &member : info);
        if (i && !same_data(info, &member))
            nnrt_usage_die("--weights %s: its input preprocessing or class names differ from the first member's (an "
                           "ensemble's inputs go through one; train the members with the same --scale, --normalize and "
                           "training split, e.g. --val-x files)", path);
        if (i) nnrt_data_info_free(&member);
        free(path);
        p = comma ? comma + 1 : p + len;
    }
    *count = k;
    return w;
}

void nnrt_ensemble_free(float **w, int k) {
    for (int i = 0; i < k; i++) free(w[i]);
    free(w);
}

/* The ensemble's output for a batch: the members' softmax probabilities (classifiers) or outputs (regression),
   averaged into avg (n, output_dim); out is scratch of the same size. */
void nnrt_ensemble_batch(nnrt_ctx *ctx, float **w, int k, int n, const float *xb, float *out, float *avg) {
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
