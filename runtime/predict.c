/* predict.c — the predict command: the model's outputs (a classifier's softmax probabilities, or with --labels its
 * predicted class) for every row of --input, averaged over an ensemble, written as .npy or .csv. The inputs go
 * through the weights' preprocessing; a CSV's --label-column, when the file has it, is left out. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

/* A CSV cell: the text as it is, or in double quotes (quotes doubled) when it holds a comma, a quote or a line
   break, so that a class name reads back as itself. */
static void write_cell(nnrt_atomic *f, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) { nnrt_atomic_write(f, s, strlen(s)); return; }
    nnrt_atomic_write(f, "\"", 1);
    for (const char *p = s; *p; p++) nnrt_atomic_write(f, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
    nnrt_atomic_write(f, "\"", 1);
}

/* One batch's rows of avg (n, C): probabilities or outputs (%.9g: every float32 reads back as itself), or with
   labels each row's class, by name when names is not NULL. */
static void write_rows(nnrt_atomic *f, int csv, int labels, const nnrt_classes *names, const float *avg, int n, int C) {
    char cell[40];
    if (!csv && !labels) { nnrt_atomic_write(f, avg, (size_t)n * (size_t)C * sizeof(float)); return; }
    for (int i = 0; i < n; i++) {
        const float *row = avg + (size_t)i * C;
        if (labels) {
            int32_t k = nnrt_argmax(row, C);
            if (!csv) { nnrt_atomic_write(f, &k, sizeof k); continue; }
            if (names && k < names->n) write_cell(f, names->names[k]);
            else nnrt_atomic_write(f, cell, (size_t)snprintf(cell, sizeof cell, "%d", k));
            nnrt_atomic_write(f, "\n", 1);
            continue;
        }
        for (int j = 0; j < C; j++)
            nnrt_atomic_write(f, cell, (size_t)snprintf(cell, sizeof cell, "%.9g%s", (double)row[j], j + 1 < C ? "," : "\n"));
    }
}

int nnrt_cmd_predict(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    int k;
    nnrt_data_info info;
    float **w = nnrt_ensemble_load(m, o->weights, &k, &info);  // more than one: the ensemble's averaged probabilities (outputs)
    nnrt_data_opts opts = nnrt_data_options(o, &info.classes, 0);
    nnrt_array x = nnrt_load_x_with(o->input, m, &opts);
    if (info.has_prep) {
        x.prep = &info.prep;
        nnrt_prep_check_range(&info.prep, &x);
    }
    if (o->verbose) nnrt_verbose_setup(m);
    int B = (int)o->batch, C = m->output_dim;
    float *xb = nnrt_aligned_calloc((size_t)B * (size_t)m->input_dim * sizeof(float));  // (B, input_dim)
    float *out = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float));             // (B, C)
    float *avg = nnrt_aligned_calloc((size_t)B * (size_t)C * sizeof(float));             // (B, C)
    int64_t *idx = nnrt_malloc((size_t)B * sizeof(int64_t));                            // (B)
    int csv = nnrt_predict_format(o->output) == 'c';
    const char *what = m->target_kind == NNRT_TARGET_CLASS ? "prob" : "output";
    nnrt_atomic *f = csv ? nnrt_atomic_open(o->output) : o->labels ? nnrt_npy_begin_i32(o->output, x.n) : nnrt_npy_begin(o->output, x.n, C);
    char cell[40];
    if (csv && o->labels) nnrt_atomic_write(f, "label\n", 6);
    for (int j = 0; csv && !o->labels && j < C; j++) {  // header: prob_0,prob_1,… (classes) or output_0,… (dense outputs)
        int len = snprintf(cell, sizeof cell, "%s%s_%d", j ? "," : "", what, j);
        nnrt_atomic_write(f, cell, (size_t)len);
    }
    if (csv && !o->labels) nnrt_atomic_write(f, "\n", 1);
    ctx->training = 0;
    for (int64_t start = 0; start < x.n; start += B) {
        int n = (int)(x.n - start < B ? x.n - start : B);
        for (int i = 0; i < n; i++) idx[i] = start + i;
        nnrt_gather_x(&x, idx, n, xb);
        nnrt_ensemble_batch(ctx, w, k, n, xb, out, avg);  // one member: its own probabilities (outputs)
        write_rows(f, csv, o->labels, info.classes.n ? &info.classes : NULL, avg, n, C);
    }
    nnrt_atomic_commit(f);
    if (!o->quiet && o->labels)
        printf("wrote %s (%lld) predicted class %s%s\n", o->output, (long long)x.n, csv && info.classes.n ? "names" : "indices",
               k > 1 ? " of the ensemble's averaged probabilities" : "");
    else if (!o->quiet)
        printf("wrote %s (%lld, %d) %s%s\n", o->output, (long long)x.n, C,
               m->target_kind == NNRT_TARGET_CLASS ? "probabilities" : "outputs", k > 1 ? ", averaged over the ensemble" : "");
    free(xb); free(out); free(avg); free(idx);
    nnrt_ensemble_free(w, k);
    nnrt_array_free(&x);
    nnrt_data_info_free(&info);
    return 0;
}
