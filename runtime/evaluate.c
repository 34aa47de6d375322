/* evaluate.c — the eval command (one set of weights or an ensemble's averaged probabilities) and nnrt_evaluate,
 * the loss and accuracy of a data set, which training runs on its validation and test sets every epoch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

int nnrt_argmax(const float *row, int c) {
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
        for (int i = 0; classes && i < n; i++) correct += nnrt_argmax(out + (size_t)i * m->output_dim, m->output_dim) == ((int32_t *)yb)[i];
    }
    free(xb); free(yb); free(out); free(idx);
    return (nnrt_eval_result){loss_sum / (double)d->x.n, classes ? (double)correct / (double)d->x.n : -1};
}

/* The metrics of d (when there is one) for the weights w, NULL for ctx's own: another set of weights (the moving
   average, an early-stopped trial's best epoch) takes the parameters' place for the evaluation. */
nnrt_split_metrics nnrt_evaluate_split_with(nnrt_ctx *ctx, float *w, int has, const nnrt_dataset *d) {
    if (!has) return (nnrt_split_metrics){0, NAN, -1};
    float *own = ctx->params;
    if (w) ctx->params = w;
    nnrt_eval_result r = nnrt_evaluate(ctx, d, ctx->model->max_batch);
    ctx->params = own;
    return (nnrt_split_metrics){1, r.loss, r.acc};
}

nnrt_split_metrics nnrt_evaluate_split(nnrt_ctx *ctx, int has, const nnrt_dataset *d) {
    return nnrt_evaluate_split_with(ctx, NULL, has, d);
}

int nnrt_cmd_eval(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int k;
    nnrt_data_info info;
    float **w = nnrt_ensemble_load(m, o->weights, &k, &info);
    nnrt_dataset test;
    nnrt_load_splits(o, m, NULL, &test, &info.classes);  // CSV class names map as in training
    if (info.has_prep) {
        test.x.prep = &info.prep;
        nnrt_prep_check_range(&info.prep, &test.x);
    }
    if (o->verbose) { nnrt_verbose_setup(m); nnrt_describe_data("test", &test); }
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
            nnrt_ensemble_batch(ctx, w, k, n, xb, out, avg);
            for (int i = 0; i < n; i++) {
                const float *row = avg + (size_t)i * C;
                if (classes) {
                    int y = ((const int32_t *)yb)[i];
                    sum -= log(fmax((double)row[y], 1e-45));
                    correct += nnrt_argmax(row, C) == y;
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
    nnrt_ensemble_free(w, k);
    nnrt_dataset_free(&test);
    nnrt_data_info_free(&info);
    return 0;
}
