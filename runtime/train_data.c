/* train_data.c — the data sets a command reads: the train and test splits (an MNIST directory or files), the
 * validation set, and what --verbose says about them and the model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_compute.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_train.h"

/* Both splits of an MNIST directory at once: gunzipping the test images on the worker thread while the caller
 * gunzips the training images takes the test set's 0.04 s (of 0.32 s for Fashion-MNIST) off the start. Errors
 * are reported as a sequential load would: the training set's first, then the test set's. */
typedef struct {
    const char *dir;
    const nnrt_model *m;
    nnrt_dataset *train, *test;
    int test_status;
    char test_error[1024];
} idx_dir_job;

static void load_idx_test(void *arg) {
    idx_dir_job *j = arg;
    *j->test = nnrt_load_idx_dir(j->dir, "t10k", j->m);
}

static void load_idx_part(void *arg, int part) {
    idx_dir_job *j = arg;
    if (part == 0) j->test_status = nnrt_try(load_idx_test, j, j->test_error, sizeof j->test_error);
    else *j->train = nnrt_load_idx_dir(j->dir, "train", j->m);
}

nnrt_data_opts nnrt_data_options(const nnrt_options *o, nnrt_classes *classes, int learn) {
    return (nnrt_data_opts){.csv = {o->csv_delim, o->label_column}, .classes = classes, .learn = learn};
}

/* The train split (required) and the test split (optional) named by the options; test NULL: the train split of
   --data alone. */
int nnrt_load_splits(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *test,
                     nnrt_classes *classes) {
    if (o->data && train && !test) {
        *train = nnrt_load_idx_dir(o->data, "train", m);
        return 0;
    }
    if (o->data && train) {
        idx_dir_job j = {.dir = o->data, .m = m, .train = train, .test = test};
        nnrt_par2(load_idx_part, &j);
        if (j.test_status) nnrt_exit_with(j.test_status, j.test_error);
        return 1;
    }
    if (o->data) {
        *test = nnrt_load_idx_dir(o->data, "t10k", m);
        return 1;
    }
    nnrt_data_opts learn = nnrt_data_options(o, classes, 1), use = nnrt_data_options(o, classes, 0);
    if (train) *train = nnrt_load_dataset_with(o->train_x, o->train_y, m, &learn);
    if (o->test_x) { *test = nnrt_load_dataset_with(o->test_x, o->test_y, m, &use); return 1; }
    return 0;
}

void nnrt_describe_data(const char *name, const nnrt_dataset *d) {
    double mb = (double)d->x.n * (double)d->x.dim * (d->x.dtype == NNRT_U8 ? 1 : 4) / 1e6;
    const nnrt_prep *p = d->x.prep;
    char prep[96];
    if (p) snprintf(prep, sizeof prep, "scale %s%s per batch", p->scale,
                    p->norm == NNRT_NORM_FEATURE ? ", standardized per feature" : p->norm == NNRT_NORM_CHANNEL ? ", standardized per channel" : "");
    else snprintf(prep, sizeof prep, "%s", d->x.dtype == NNRT_U8 ? "scaled by 1/255 per batch" : "as it is");
    printf("data: %s %lld samples from %s (%s, %s, %.1f MB in memory)\n", name, (long long)d->x.n, d->x.path,
           d->x.dtype == NNRT_U8 ? "uint8" : "float32", prep, mb);
}

void nnrt_verbose_setup(const nnrt_model *m) {
    nnrt_blas_describe(stdout);
    printf("model: %s, %zu parameters, %zu optimizer state floats, %zu arena bytes, max batch %d\n", m->name,
           m->params_numel, m->state_numel, m->arena_bytes, m->max_batch);
}

/* The validation set, split off the training set (--val-split) or from files (--val-x/--val-y); 0 if none. */
int nnrt_load_validation(const nnrt_options *o, const nnrt_model *m, nnrt_dataset *train, nnrt_dataset *val,
                         nnrt_classes *classes) {
    nnrt_data_opts use = nnrt_data_options(o, classes, 0);
    if (o->val_x) { *val = nnrt_load_dataset_with(o->val_x, o->val_y, m, &use); return 1; }
    if (!(o->val_split > 0)) return 0;
    int64_t n = train->x.n, n_val = (int64_t)llround(o->val_split * (double)n);
    if (o->val_split_default && (n_val < 1 || n_val >= n)) return 0;  // too few samples to hold any out
    nnrt_split_validation(train, o->val_split, o->seed, val);
    return 1;
}

/* A resumed run applies its checkpoint's preprocessing; --scale or --normalize given again must agree with it. */
static void resumed_prep(const nnrt_options *o, const nnrt_model *m, const nnrt_prep *ck, nnrt_prep *p) {
    nnrt_prep given = {0};
    const char *norm = ck->norm == NNRT_NORM_FEATURE ? "feature" : ck->norm == NNRT_NORM_CHANNEL ? "channel" : "none";
    if (o->scale && (!nnrt_prep_set_scale(&given, o->scale) || strcmp(given.scale, ck->scale) != 0))
        nnrt_usage_die("--scale %s: the checkpoint %s was trained with --scale %s (a resumed run keeps its preprocessing)",
                       o->scale, o->resume, ck->scale);
    if (o->normalize && strcmp(o->normalize, norm) != 0)
        nnrt_usage_die("--normalize %s: the checkpoint %s was trained with --normalize %s (a resumed run keeps its "
                       "preprocessing)", o->normalize, o->resume, norm);
    *p = *ck;
    size_t bytes = (size_t)ck->n_stats * sizeof(float);
    p->mean = p->std = p->fmean = p->fstd = NULL;
    if (ck->norm == NNRT_NORM_NONE) return;
    p->mean = memcpy(nnrt_malloc(bytes), ck->mean, bytes);
    p->std = memcpy(nnrt_malloc(bytes), ck->std, bytes);
    nnrt_prep_expand(p, m);
}

void nnrt_train_data_load(const nnrt_options *o, const nnrt_model *m, nnrt_train_data *d, const nnrt_data_info *resumed) {
    memset(d, 0, sizeof *d);
    nnrt_classes *c = &d->info.classes;
    if (resumed && resumed->classes.n > 0) {  // the checkpoint's names: the same file maps to the same classes
        c->n = resumed->classes.n;
        c->names = nnrt_calloc((size_t)c->n, sizeof *c->names);
        for (int i = 0; i < c->n; i++) c->names[i] = strcpy(nnrt_malloc(strlen(resumed->classes.names[i]) + 1), resumed->classes.names[i]);
    }
    // Train reports the test split of --data only when asked (--report-test), as Keras evaluates a test set only
    // in evaluate(): the epoch line's held-out numbers are the validation split's.
    d->has_test = nnrt_load_splits(o, m, &d->train, o->data && !o->report_test ? NULL : &d->test, c);
    d->has_val = nnrt_load_validation(o, m, &d->train, &d->val, c);
    d->info.has_prep = 1;
    if (resumed && resumed->has_prep) resumed_prep(o, m, &resumed->prep, &d->info.prep);
    else nnrt_prep_fit(&d->info.prep, &d->train.x, m, o->scale, o->normalize);
    d->train.x.prep = d->val.x.prep = d->test.x.prep = &d->info.prep;
}

void nnrt_train_data_free(nnrt_train_data *d) {
    nnrt_dataset_free(&d->train);
    if (d->has_test) nnrt_dataset_free(&d->test);
    if (d->has_val) nnrt_dataset_free(&d->val);
    nnrt_data_info_free(&d->info);
}
