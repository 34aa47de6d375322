/* search_trials.c — one setting of a search trained once on the validation set or once per fold of a k-fold
 * cross-validation, and a pool of child processes that trains several settings side by side (--jobs).
 *
 * Each run starts from the same place: the parameters from --seed (or --init), zeroed optimizer state, step 0
 * and the model's random stream, so settings differ only in their hyperparameters (and folds only in their data).
 * A fold's input statistics (--normalize) are fitted on its own training part, never on the fold it is scored on.
 *
 * The pool forks one child per setting, at most --jobs at once. The children run single-threaded (cli.c makes
 * --jobs imply --threads 1), so a fork never copies a process with a second thread half-way through a job. A
 * child writes its result (and weights) into an unlinked temporary file and exits; the parent reads it after
 * waitpid. Results are reported in setting order whatever order the children finish in, so a search prints and
 * logs the same with --jobs 1 and --jobs 2. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nnrt_commands.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"
#include "nnrt_search.h"

// ----------------------------------------------------------------------------
// folds

void nnrt_search_assign_folds(int64_t n, int K, uint64_t seed, unsigned char *fold_of) {
    int64_t *perm = nnrt_malloc(nnrt_mul_size((size_t)n, sizeof(int64_t), "folds"));  // (n)
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t rng[4];
    nnrt_rng_seed(rng, seed, NNRT_STREAM_VAL);
    nnrt_rng_shuffle(rng, perm, n);
    for (int k = 0; k < K; k++)
        for (int64_t i = k * n / K; i < (k + 1) * n / K; i++) fold_of[perm[i]] = (unsigned char)k;
    free(perm);
}

/* Fold k of the plan as a run's data: the other folds train, fold k validates. */
static void fold_data(const nnrt_search_plan *p, const nnrt_model *m, int k, nnrt_train_data *f) {
    memset(f, 0, sizeof *f);
    const nnrt_dataset *all = &p->data->train;
    int64_t n = all->x.n, n_val = 0;
    unsigned char *is_val = nnrt_calloc((size_t)n, 1);  // (n)
    for (int64_t i = 0; i < n; i++) n_val += is_val[i] = p->fold_of[i] == k;
    nnrt_dataset_split(all, is_val, n_val, &f->train, &f->val);
    free(is_val);
    f->has_val = 1;
    f->info.has_prep = 1;
    nnrt_prep_fit(&f->info.prep, &f->train.x, m, p->o->scale, p->o->normalize);
    f->train.x.prep = f->val.x.prep = &f->info.prep;
}

// ----------------------------------------------------------------------------
// one setting

/* One training run of hp on data from the seeded start; 1 when it diverged. */
static int train_once(nnrt_ctx *ctx, const nnrt_options *o, const nnrt_train_data *data, const double *hp, int64_t epochs,
                      nnrt_train_result *tr, float *weights) {
    const nnrt_model *m = ctx->model;
    memcpy(ctx->hp, hp, (size_t)m->n_hparams * sizeof(double));
    memset(ctx->state, 0, m->state_numel * sizeof(float));
    ctx->step = 0;
    ctx->epoch = 0;
    nnrt_rng_seed(ctx->rng, o->seed, NNRT_STREAM_MODEL);
    if (ctx->lr_hparam >= 0) ctx->lr = hp[ctx->lr_hparam];
    nnrt_options run = *o;
    run.cmd = NNRT_CMD_TRAIN;
    run.epochs = epochs;
    run.steps = 0;
    run.quiet = 1;
    run.save = NULL;
    run.log = NULL;
    *tr = (nnrt_train_result){.data = data, .weights = weights};
    nnrt_train_run(ctx, &run, tr);
    return tr->diverged;
}

void nnrt_search_run_setting(nnrt_ctx *ctx, const nnrt_search_plan *p, const double *hp, int64_t epochs,
                             nnrt_search_result *r, float *weights) {
    const nnrt_model *m = ctx->model;
    memset(r, 0, sizeof *r);
    double t0 = nnrt_now();
    nnrt_train_result tr;
    float *scratch = nnrt_aligned_calloc(m->params_numel * sizeof(float));  // the weights no one keeps
    if (!p->folds) {
        r->diverged = train_once(ctx, p->o, p->data, hp, epochs, &tr, weights ? weights : scratch);
        free(scratch);
        r->val = tr.val;
        r->epochs = tr.epochs;
        r->seconds = nnrt_now() - t0;
        return;
    }
    double sl = 0, sa = 0;
    r->folds = p->folds;
    for (int k = 0; k < p->folds && !r->diverged; k++) {
        nnrt_train_data f;
        fold_data(p, m, k, &f);
        r->diverged = train_once(ctx, p->o, &f, hp, epochs, &tr, scratch);
        nnrt_train_data_free(&f);
        r->fold_loss[k] = tr.val.loss;
        r->fold_acc[k] = tr.val.acc;
        sl += tr.val.loss;
        sa += tr.val.acc;
        if (tr.epochs > r->epochs) r->epochs = tr.epochs;
    }
    free(scratch);
    r->seconds = nnrt_now() - t0;
    if (r->diverged) return;
    double ml = sl / p->folds, ma = sa / p->folds, vl = 0, va = 0;
    for (int k = 0; k < p->folds; k++) {
        vl += (r->fold_loss[k] - ml) * (r->fold_loss[k] - ml);
        va += (r->fold_acc[k] - ma) * (r->fold_acc[k] - ma);
    }
    int classifier = r->fold_acc[0] >= 0;
    r->val = (nnrt_split_metrics){1, ml, classifier ? ma : -1};
    r->loss_std = sqrt(vl / p->folds);
    r->acc_std = classifier ? sqrt(va / p->folds) : 0;
}

// ----------------------------------------------------------------------------
// the pool of child processes

typedef struct {
    pid_t pid;          // 0: the slot is free
    int64_t k;          // the setting it runs
    FILE *out;          // its result, written by the child
} child;

static void write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    for (off_t at = 0; len > 0;) {
        ssize_t w = pwrite(fd, p, len, at);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) nnrt_die("search: cannot write a trial's result to a temporary file: %s", strerror(errno));
        p += w, at += w, len -= (size_t)w;
    }
}

static void read_all(int fd, void *buf, size_t len, off_t at) {
    char *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, at);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) nnrt_die("search: a trial's result is incomplete (%s)", r < 0 ? strerror(errno) : "short file");
        p += r, at += r, len -= (size_t)r;
    }
}

/* In the child: train setting k, write the result and weights, exit. Never returns. */
static NNRT_NORETURN void child_main(nnrt_ctx *ctx, const nnrt_search_plan *p, const double *hp, int64_t epochs,
                                     int want_weights, int fd, pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the search was killed: so are its trials (KILL: a sanitizer may defer TERM)
    if (getppid() != parent) _exit(NNRT_EXIT_FAIL);  // it died before that was set
    const nnrt_model *m = ctx->model;
    nnrt_search_result r;
    float *w = want_weights ? nnrt_aligned_calloc(m->params_numel * sizeof(float)) : NULL;
    nnrt_search_run_setting(ctx, p, hp, epochs, &r, w);
    char *buf = nnrt_malloc(sizeof r + (w ? m->params_numel * sizeof(float) : 0));
    memcpy(buf, &r, sizeof r);
    if (w) memcpy(buf + sizeof r, w, m->params_numel * sizeof(float));
    write_all(fd, buf, sizeof r + (w ? m->params_numel * sizeof(float) : 0));
    fflush(NULL);
    _exit(0);
}

/* Stops every running child, then exits as the failed one did. */
static NNRT_NORETURN void fail_all(child *c, int64_t jobs, int64_t k, int status) {
    for (int64_t j = 0; j < jobs; j++) if (c[j].pid > 0) kill(c[j].pid, SIGTERM);
    for (int64_t j = 0; j < jobs; j++) if (c[j].pid > 0) waitpid(c[j].pid, NULL, 0);
    if (WIFSIGNALED(status))
        nnrt_die("search: trial %lld's process was killed by signal %d; the search stops", (long long)k + 1, WTERMSIG(status));
    char msg[160];
    snprintf(msg, sizeof msg, "search: trial %lld failed (exit status %d, its error above); the search stops",
             (long long)k + 1, WEXITSTATUS(status));
    nnrt_exit_with(WEXITSTATUS(status), msg);
}

void nnrt_search_run_settings(nnrt_ctx *ctx, const nnrt_search_plan *p, int64_t jobs, double *const *hps, int64_t n,
                              int64_t epochs, nnrt_search_result *results, float *const *weights,
                              void (*done)(int64_t k, void *arg), void *arg) {
    if (jobs <= 1) {
        for (int64_t k = 0; k < n; k++) {
            nnrt_search_run_setting(ctx, p, hps[k], epochs, &results[k], weights ? weights[k] : NULL);
            done(k, arg);
        }
        return;
    }
    const size_t wbytes = ctx->model->params_numel * sizeof(float);
    child *c = nnrt_calloc((size_t)jobs, sizeof *c);
    unsigned char *finished = nnrt_calloc((size_t)n, 1);  // (n)
    int64_t next = 0, reported = 0, running = 0;
    while (reported < n) {
        while (running < jobs && next < n) {  // start settings while there are free slots
            int64_t j = 0;
            while (c[j].pid) j++;
            c[j].k = next;
            c[j].out = tmpfile();
            if (!c[j].out) nnrt_die("search: cannot create a temporary file for a trial's result: %s", strerror(errno));
            fflush(NULL);  // a child must not write out the parent's buffered lines a second time
            pid_t self = getpid(), pid = fork();
            if (pid < 0) nnrt_die("search: cannot start a process for trial %lld: %s", (long long)next + 1, strerror(errno));
            if (pid == 0) child_main(ctx, p, hps[next], epochs, weights != NULL, fileno(c[j].out), self);
            c[j].pid = pid;
            next++, running++;
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0 && errno == EINTR) continue;
        if (pid < 0) nnrt_die("search: waiting for the trials' processes: %s", strerror(errno));
        int64_t j = 0;
        while (j < jobs && c[j].pid != pid) j++;
        if (j == jobs) continue;  // not one of ours
        c[j].pid = 0;
        running--;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_all(c, jobs, c[j].k, status);
        int fd = fileno(c[j].out);
        read_all(fd, &results[c[j].k], sizeof results[c[j].k], 0);
        if (weights) read_all(fd, weights[c[j].k], wbytes, (off_t)sizeof results[c[j].k]);
        fclose(c[j].out);
        finished[c[j].k] = 1;
        while (reported < n && finished[reported]) done(reported++, arg);
    }
    free(finished);
    free(c);
}
