/* search.c — `TRAINER search`: hyperparameter search, one training run per setting, ranked on the validation set.
 *
 * Each hyperparameter flag takes a spec: a number (fixed), a list "X,Y,…" (grid values), "uniform:A:B" or
 * "loguniform:A:B" (0 < A < B; log-uniform as the lectures advise for learning rates and decays). With numbers and
 * lists only, the search is the whole grid, in order (the first hyperparameter slowest); with a distribution it is
 * a random search of --trials draws (Bergstra and Bengio's case for it: the hyperparameters that matter get as many
 * distinct values as there are trials), lists drawn from evenly, from the NNRT_STREAM_SEARCH stream of --seed.
 * Every trial starts from the same init, data order and dropout stream (--seed), so trials differ only in their
 * hyperparameters, and runs nnrt_train_run with the train flags given. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_cli.h"
#include "nnrt_commands.h"
#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"
#include "nnrt_safetensors.h"
#include "nnrt_search.h"

typedef enum { SPEC_LIST, SPEC_UNIFORM, SPEC_LOGUNIFORM } spec_kind;

typedef struct {
    spec_kind kind;
    double a, b;        // the bounds of a distribution
    double *values;     // a list's values (a number is a list of one)
    int n;
} spec;

enum { MAX_TRIALS = 100000 };

static double number(const char *flag, const char *text, const char *s, const char *end) {
    char buf[64], *stop;
    size_t len = (size_t)(end - s);
    if (len == 0 || len >= sizeof buf) goto bad;
    memcpy(buf, s, len);
    buf[len] = 0;
    double x = strtod(buf, &stop);
    if (*stop || !isfinite(x)) goto bad;
    return x;
bad:
    nnrt_usage_die("--%s: expected a number, a list X,Y,…, uniform:A:B or loguniform:A:B, got '%s'", flag, text);
}

/* Every value a spec can give must be one the hyperparameter takes (its range, as for train). */
static void check_spec_range(const nnrt_model *m, int i, const char *flag, const char *text, const spec *sp) {
    char range[64];
    int ok = 1;
    if (sp->kind == SPEC_LIST) for (int k = 0; k < sp->n; k++) ok &= nnrt_hparam_in_range(m, i, sp->values[k], range, sizeof range);
    else ok = nnrt_hparam_in_range(m, i, sp->a, range, sizeof range) && nnrt_hparam_in_range(m, i, sp->b, range, sizeof range);
    if (!ok) nnrt_usage_die("--%s: '%s' gives values outside %s", flag, text, range);
}

static spec parse_spec(const char *flag, const char *text) {
    spec sp = {SPEC_LIST, 0, 0, NULL, 0};
    int uniform = strncmp(text, "uniform:", 8) == 0, log_uniform = strncmp(text, "loguniform:", 11) == 0;
    if (uniform || log_uniform) {
        const char *a = text + (uniform ? 8 : 11), *colon = strchr(a, ':');
        if (!colon) nnrt_usage_die("--%s: expected %s:A:B, got '%s'", flag, uniform ? "uniform" : "loguniform", text);
        sp.kind = uniform ? SPEC_UNIFORM : SPEC_LOGUNIFORM;
        sp.a = number(flag, text, a, colon);
        sp.b = number(flag, text, colon + 1, colon + 1 + strlen(colon + 1));
        if (!(sp.a < sp.b)) nnrt_usage_die("--%s: '%s' needs A < B", flag, text);
        if (log_uniform && !(sp.a > 0)) nnrt_usage_die("--%s: '%s' needs 0 < A (it draws log x evenly)", flag, text);
        return sp;
    }
    for (const char *c = text; *c; c++) sp.n += *c == ',';
    sp.n++;
    sp.values = nnrt_calloc((size_t)sp.n, sizeof(double));
    const char *p = text;
    for (int i = 0; i < sp.n; i++) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        sp.values[i] = number(flag, text, p, end);
        p = end + 1;
    }
    return sp;
}

/* The settings of trial t (0-based) into hp: grid (mixed radix over the lists, the first slowest) or a draw. */
static void trial_values(const nnrt_model *m, const spec *specs, const unsigned char *given, int random, int64_t t,
                         uint64_t rng[4], double *hp) {
    int64_t rest = t;
    for (int i = m->n_hparams - 1; !random && i >= 0; i--) {  // the last hyperparameter fastest
        if (!given[i]) continue;
        hp[i] = specs[i].values[rest % specs[i].n];
        rest /= specs[i].n;
    }
    for (int i = 0; random && i < m->n_hparams; i++) {
        if (!given[i]) continue;
        const spec *sp = &specs[i];
        double u = nnrt_rng_uniform(rng);
        if (sp->kind == SPEC_UNIFORM) hp[i] = sp->a + (sp->b - sp->a) * u;
        else if (sp->kind == SPEC_LOGUNIFORM) hp[i] = exp(log(sp->a) + (log(sp->b) - log(sp->a)) * u);
        else hp[i] = sp->values[(int)(u * sp->n) < sp->n ? (int)(u * sp->n) : sp->n - 1];
    }
}

static void print_setting(FILE *f, const nnrt_model *m, const unsigned char *given, const double *hp) {
    for (int i = 0; i < m->n_hparams; i++) {
        if (!given[i]) continue;
        char name[64];
        nnrt_flag_spelling(m->hparams[i].name, name, sizeof name);
        fprintf(f, "  --%s %.6g", name, hp[i]);
    }
}

static void json_setting(FILE *f, const nnrt_model *m, const unsigned char *given, const double *hp) {
    fputs("\"hparams\":{", f);
    for (int i = 0, first = 1; i < m->n_hparams; i++) {
        if (!given[i]) continue;
        fprintf(f, "%s\"%s\":", first ? "" : ",", m->hparams[i].name);
        nnrt_json_number(f, hp[i]);
        first = 0;
    }
    fputc('}', f);
}

static int by_trial(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* --save: the best trial's weights; with --folds, which leave no single model, the best setting trained again on
   the whole training set for --epochs (scikit-learn's refit=True). */
static void save_best(nnrt_ctx *ctx, const nnrt_search_plan *plan, const double *hp, const float *w, int64_t t) {
    const nnrt_options *o = plan->o;
    const nnrt_model *m = ctx->model;
    if (w) {
        nnrt_save_weights(o->save, m, w, &plan->data->info);
        if (!o->quiet) printf("saved %s (trial %lld's weights)\n", o->save, (long long)t + 1);
        return;
    }
    float *all = nnrt_aligned_calloc(m->params_numel * sizeof(float));
    nnrt_search_plan whole = *plan;
    whole.folds = 0;
    nnrt_search_result r;
    nnrt_search_run_setting(ctx, &whole, hp, o->epochs, &r, all);
    if (r.diverged) nnrt_die("search: trial %lld's setting diverged when trained on the whole training set; nothing was "
                             "written to %s", (long long)t + 1, o->save);
    nnrt_save_weights(o->save, m, all, &plan->data->info);
    if (!o->quiet) printf("saved %s (trial %lld's setting trained on all %lld training samples for %lld epochs)\n", o->save,
                          (long long)t + 1, (long long)plan->data->train.x.n, (long long)o->epochs);
    free(all);
}

static void json_metrics(FILE *f, const nnrt_search_result *r) {
    fputs(",\"val_loss\":", f);
    nnrt_json_number(f, r->val.loss);
    if (r->val.acc >= 0) {
        fputs(",\"val_acc\":", f);
        nnrt_json_number(f, r->val.acc);
    }
    if (!r->folds) return;
    fputs(",\"val_loss_std\":", f);
    nnrt_json_number(f, r->loss_std);
    if (r->val.acc >= 0) {
        fputs(",\"val_acc_std\":", f);
        nnrt_json_number(f, r->acc_std);
    }
    fputs(",\"folds\":[", f);
    for (int k = 0; k < r->folds; k++) {
        fputs(k ? ",{\"val_loss\":" : "{\"val_loss\":", f);
        nnrt_json_number(f, r->fold_loss[k]);
        if (r->val.acc >= 0) {
            fputs(",\"val_acc\":", f);
            nnrt_json_number(f, r->fold_acc[k]);
        }
        fputc('}', f);
    }
    fputc(']', f);
}

static void print_metrics(const nnrt_search_result *r) {
    printf("  val_loss %.4f", r->val.loss);
    if (r->folds) printf(" ± %.4f", r->loss_std);
    if (r->val.acc >= 0) printf("  val_acc %.4f", r->val.acc);
    if (r->folds && r->val.acc >= 0) printf(" ± %.4f", r->acc_std);
}

/* What the report of each finished setting needs: the rung's settings in order, and where they go. */
typedef struct {
    const nnrt_model *m;
    const unsigned char *given;
    FILE *log;
    int rung, rungs;                    // 1-based; rungs 1: no pruning
    int64_t trials;
    const int64_t *ids;                 // (n) the trial number (0-based) of each setting of the rung
    double *const *hps;                 // (n)
    const nnrt_search_result *results;  // (n)
} rung_report;

/* One console line and one JSON line for setting k of the rung. */
static void report_setting(int64_t k, void *arg) {
    const rung_report *rr = arg;
    const nnrt_search_result *r = &rr->results[k];
    int64_t t = rr->ids[k];
    printf("trial %lld/%lld", (long long)t + 1, (long long)rr->trials);
    print_setting(stdout, rr->m, rr->given, rr->hps[k]);
    if (r->diverged) printf("  diverged (the loss stopped being finite)");
    else {
        print_metrics(r);
        printf("  (%lld epoch%s%s)", (long long)r->epochs, r->epochs == 1 ? "" : "s", r->folds ? " per fold" : "");
    }
    printf("  %.2fs\n", r->seconds);
    fflush(stdout);
    if (!rr->log) return;
    fprintf(rr->log, "{\"trial\":%lld,", (long long)t + 1);
    if (rr->rungs > 1) fprintf(rr->log, "\"rung\":%d,", rr->rung);
    json_setting(rr->log, rr->m, rr->given, rr->hps[k]);
    if (r->diverged) fputs(",\"diverged\":true", rr->log);
    else {
        json_metrics(rr->log, r);
        fprintf(rr->log, ",\"epochs\":%lld", (long long)r->epochs);
    }
    fputs(",\"seconds\":", rr->log);
    nnrt_json_number(rr->log, r->seconds);
    fputs("}\n", rr->log);
    fflush(rr->log);
}

/* The ranking key of a result: lower is better; a diverged or non-finite one last. */
static double rank_key(const nnrt_search_result *r, int acc) {
    double x = acc ? -r->val.acc : r->val.loss;
    return r->diverged || !isfinite(x) ? INFINITY : x;
}

typedef struct { double key; int64_t k; } ranked;

static int by_key(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;  // ties: the earlier trial first
}

/* Successive halving's budgets (Jamieson and Talwalkar 2016): the last rung trains --epochs E, each rung before it
   E / factor^i epochs (integer division), down to the smallest that is still at least one epoch. */
static int halving_budgets(int64_t epochs, int64_t factor, int64_t *budgets, int cap) {
    int n = 0;
    for (int64_t b = epochs; b >= 1 && n < cap; b /= factor) budgets[n++] = b;
    for (int i = 0; i < n / 2; i++) { int64_t t = budgets[i]; budgets[i] = budgets[n - 1 - i]; budgets[n - 1 - i] = t; }
    return n;
}

int nnrt_cmd_search(nnrt_ctx *ctx, const nnrt_options *o) {
    const nnrt_model *m = ctx->model;
    spec *specs = nnrt_calloc((size_t)m->n_hparams + 1, sizeof *specs);
    unsigned char *given = nnrt_calloc((size_t)m->n_hparams + 1, 1);
    int random = 0, searched = 0;
    int64_t grid = 1;
    for (int i = 0; i < m->n_hparams; i++) {
        if (!o->hp_spec[i]) continue;
        char name[64];
        nnrt_flag_spelling(m->hparams[i].name, name, sizeof name);
        specs[i] = parse_spec(name, o->hp_spec[i]);
        check_spec_range(m, i, name, o->hp_spec[i], &specs[i]);
        given[i] = 1;
        random |= specs[i].kind != SPEC_LIST;
        searched |= specs[i].kind != SPEC_LIST || specs[i].n > 1;
        if (specs[i].kind == SPEC_LIST) grid = grid * specs[i].n > MAX_TRIALS ? MAX_TRIALS + 1 : grid * specs[i].n;
    }
    if (!searched)
        nnrt_usage_die("search: no hyperparameter to search; give one a list (--lr 1e-3,3e-3) or a distribution "
                       "(--lr loguniform:1e-4:1e-2) (see '%s search --help')", o->prog);
    if (random && !o->trials)
        nnrt_usage_die("search: a random search needs --trials N (the number of draws)");
    if (!random && o->trials)
        nnrt_usage_die("--trials: every spec is a list, so the search is the whole grid of %lld settings; give a "
                       "uniform: or loguniform: spec for a random search", (long long)grid);
    if (!random && grid > MAX_TRIALS) nnrt_usage_die("search: the grid has more than %d settings", MAX_TRIALS);
    int64_t trials = random ? o->trials : grid;
    int64_t budgets[64] = {o->epochs};
    int rungs = o->prune ? halving_budgets(o->epochs, o->prune_factor, budgets, 64) : 1;
    if (o->prune && rungs < 2)
        nnrt_usage_die("--prune halving: --epochs %lld leaves one rung; successive halving needs --epochs of at least "
                       "--prune-factor (%lld)", (long long)o->epochs, (long long)o->prune_factor);
    int acc = strcmp(o->search_on, "val_acc") == 0;
    if (o->save) nnrt_atomic_abort(nnrt_atomic_open(o->save));  // fail now, not after the last trial
    FILE *log = NULL;
    if (o->log) {
        log = fopen(o->log, "w");
        if (!log) nnrt_die("%s: cannot write the search log: %s", o->log, strerror(errno));
    }
    printf("search: %s of %lld trials, %lld epochs each, ranked by %s", random ? "random search" : "grid",
           (long long)trials, (long long)o->epochs, o->search_on);
    if (o->folds) printf(" (mean of %lld-fold cross-validation)", (long long)o->folds);
    if (rungs > 1) {
        printf("; successive halving over %d rungs of", rungs);
        for (int i = 0; i < rungs; i++) printf("%s%lld", i ? ", " : " ", (long long)budgets[i]);
        printf(" epochs, keeping the best 1/%lld at each", (long long)o->prune_factor);
    }
    if (o->jobs > 1) printf("; %lld processes", (long long)o->jobs);
    printf("\n");
    nnrt_train_data data;  // loaded once: every trial trains on the same sets
    nnrt_train_data_load(o, m, &data, NULL);
    nnrt_search_plan plan = {.o = o, .data = &data, .folds = (int)o->folds};
    unsigned char *fold_of = NULL;
    if (o->folds) {
        if (o->folds > data.train.x.n)
            nnrt_usage_die("--folds %lld: the training set has only %lld samples", (long long)o->folds, (long long)data.train.x.n);
        fold_of = nnrt_malloc((size_t)data.train.x.n);
        nnrt_search_assign_folds(data.train.x.n, (int)o->folds, o->seed, fold_of);
        plan.fold_of = fold_of;
    }
    uint64_t rng[4];
    nnrt_rng_seed(rng, o->seed, NNRT_STREAM_SEARCH);
    double **hps = nnrt_calloc((size_t)trials, sizeof *hps);  // (trials) every setting, drawn in trial order
    for (int64_t t = 0; t < trials; t++) {
        hps[t] = nnrt_calloc((size_t)m->n_hparams + 1, sizeof(double));
        memcpy(hps[t], o->hp, (size_t)m->n_hparams * sizeof(double));
        trial_values(m, specs, given, random, t, rng, hps[t]);
    }
    int64_t n = trials, *ids = nnrt_calloc((size_t)trials, sizeof *ids);
    for (int64_t t = 0; t < trials; t++) ids[t] = t;
    double **rung_hps = nnrt_calloc((size_t)trials, sizeof *rung_hps);
    nnrt_search_result *results = nnrt_calloc((size_t)trials, sizeof *results);
    ranked *order = nnrt_calloc((size_t)trials, sizeof *order);
    int keep_weights = o->save && !o->folds;  // the best trial's weights are what --save writes
    float **weights = NULL;
    for (int r = 0; r < rungs; r++) {
        int last = r == rungs - 1;
        if (r > 0) printf("rung %d/%d: the best %lld, %lld epochs each\n", r + 1, rungs, (long long)n, (long long)budgets[r]);
        else if (rungs > 1) printf("rung 1/%d: %lld trials, %lld epoch%s each\n", rungs, (long long)n, (long long)budgets[0],
                                   budgets[0] == 1 ? "" : "s");
        for (int64_t k = 0; k < n; k++) rung_hps[k] = hps[ids[k]];
        if (last && keep_weights) {
            weights = nnrt_calloc((size_t)n, sizeof *weights);
            for (int64_t k = 0; k < n; k++) weights[k] = nnrt_aligned_calloc(m->params_numel * sizeof(float));
        }
        rung_report rr = {m, given, log, r + 1, rungs, trials, ids, rung_hps, results};
        nnrt_search_run_settings(ctx, &plan, o->jobs, rung_hps, n, budgets[r], results, weights, report_setting, &rr);
        for (int64_t k = 0; k < n; k++) order[k] = (ranked){rank_key(&results[k], acc), k};
        qsort(order, (size_t)n, sizeof *order, by_key);
        if (last) break;
        int64_t keep = n / o->prune_factor > 0 ? n / o->prune_factor : 1;
        int64_t *next = nnrt_calloc((size_t)keep, sizeof *next);
        for (int64_t k = 0; k < keep; k++) next[k] = ids[order[k].k];
        qsort(next, (size_t)keep, sizeof *next, by_trial);  // a rung runs its settings in trial order
        memcpy(ids, next, (size_t)keep * sizeof *ids);
        free(next);
        n = keep;
        if (n == 1 && r < rungs - 2) {  // one left: straight to the full budget
            budgets[r + 1] = budgets[rungs - 1];
            rungs = r + 2;
        }
    }
    const nnrt_search_result *best = &results[order[0].k];
    if (!isfinite(order[0].key)) {
        if (log) fclose(log);
        nnrt_die("search: no trial finished with a finite %s (every one diverged?)%s%s", o->search_on,
                 o->save ? "; nothing was written to " : "", o->save ? o->save : "");
    }
    const double *best_hp = hps[ids[order[0].k]];
    printf("best: trial %lld", (long long)ids[order[0].k] + 1);
    print_setting(stdout, m, given, best_hp);
    print_metrics(best);
    printf("\n");
    if (log) {
        fprintf(log, "{\"best\":{\"trial\":%lld,", (long long)ids[order[0].k] + 1);
        json_setting(log, m, given, best_hp);
        json_metrics(log, best);
        fputs("}}\n", log);
        fclose(log);
    }
    if (o->save) save_best(ctx, &plan, best_hp, weights ? weights[order[0].k] : NULL, ids[order[0].k]);
    nnrt_train_data_free(&data);  // after the save: the weights file keeps the data's preprocessing and class names
    for (int i = 0; i < m->n_hparams; i++) free(specs[i].values);
    for (int64_t t = 0; t < trials; t++) free(hps[t]);
    for (int64_t k = 0; weights && k < n; k++) free(weights[k]);
    free(specs); free(given); free(hps); free(ids); free(rung_hps); free(results); free(order); free(weights); free(fold_of);
    return 0;
}
