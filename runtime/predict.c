/* predict.c — the predict command: the model's outputs (a classifier's softmax probabilities) for every row of
 * --input, averaged over an ensemble, written as .npy or .csv. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

int nnrt_cmd_predict(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int k;
    float **w = nnrt_ensemble_load(m, o->weights, &k);  // more than one: the ensemble's averaged probabilities (outputs)
    nnrt_array x = nnrt_load_x(o->input, m);
    if (o->verbose) nnrt_verbose_setup(m);
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
        nnrt_ensemble_batch(ctx, w, k, n, xb, out, avg);  // one member: its own probabilities (outputs)
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
    nnrt_ensemble_free(w, k);
    nnrt_array_free(&x);
    return 0;
}
