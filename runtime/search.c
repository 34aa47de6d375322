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

static void json_metrics(FILE *f, nnrt_split_metrics v) {
    fputs(",\"val_loss\":", f);
    nnrt_json_number(f, v.loss);
    if (v.acc >= 0) {
        fputs(",\"val_acc\":", f);
        nnrt_json_number(f, v.acc);
    }
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
    int acc = strcmp(o->search_on, "val_acc") == 0;
    if (o->save) nnrt_atomic_abort(nnrt_atomic_open(o->save));  // fail now, not after the last trial
    FILE *log = NULL;
    if (o->log) {
        log = fopen(o->log, "w");
        if (!log) nnrt_die("%s: cannot write the search log: %s", o->log, strerror(errno));
    }
    printf("search: %s of %lld trials, %lld epochs each, ranked by %s\n", random ? "random search" : "grid",
           (long long)trials, (long long)o->epochs, o->search_on);
    nnrt_train_data data;  // loaded once: every trial trains on the same sets
    nnrt_train_data_load(o, m, &data, NULL);
    uint64_t rng[4];
    nnrt_rng_seed(rng, o->seed, NNRT_STREAM_SEARCH);
    double *hp = nnrt_calloc((size_t)m->n_hparams + 1, sizeof(double)), *best_hp = nnrt_calloc((size_t)m->n_hparams + 1, sizeof(double));
    float *weights = nnrt_aligned_calloc(m->params_numel * sizeof(float)), *best_w = nnrt_aligned_calloc(m->params_numel * sizeof(float));
    int64_t best = -1;
    nnrt_split_metrics best_val = {0, NAN, -1};
    for (int64_t t = 0; t < trials; t++) {
        memcpy(hp, o->hp, (size_t)m->n_hparams * sizeof(double));
        trial_values(m, specs, given, random, t, rng, hp);
        // a fresh start: the run initialises the parameters (--seed, or --init); optimizer state, step and rng here
        memcpy(ctx->hp, hp, (size_t)m->n_hparams * sizeof(double));
        memset(ctx->state, 0, m->state_numel * sizeof(float));
        ctx->step = 0;
        ctx->epoch = 0;
        nnrt_rng_seed(ctx->rng, o->seed, NNRT_STREAM_MODEL);
        int lr = nnrt_find_hparam(m, "lr");
        if (lr >= 0) ctx->lr = hp[lr];
        nnrt_options run = *o;
        run.cmd = NNRT_CMD_TRAIN;
        run.trial = t + 1;
        run.quiet = 1;
        run.save = NULL;
        run.log = NULL;
        nnrt_train_result r = {.data = &data, .weights = weights};
        double t0 = nnrt_now();
        nnrt_train_run(ctx, &run, &r);
        double seconds = nnrt_now() - t0;
        printf("trial %lld/%lld", (long long)t + 1, (long long)trials);
        print_setting(stdout, m, given, hp);
        double x = acc ? r.val.acc : r.val.loss;
        if (r.diverged) printf("  diverged (the loss stopped being finite)");
        else {
            printf("  val_loss %.4f", r.val.loss);
            if (r.val.acc >= 0) printf("  val_acc %.4f", r.val.acc);
            printf("  (%lld epoch%s)", (long long)r.epochs, r.epochs == 1 ? "" : "s");
        }
        printf("  %.2fs\n", seconds);
        fflush(stdout);
        if (log) {
            fprintf(log, "{\"trial\":%lld,", (long long)t + 1);
            json_setting(log, m, given, hp);
            if (r.diverged) fputs(",\"diverged\":true", log);
            else {
                json_metrics(log, r.val);
                fprintf(log, ",\"epochs\":%lld", (long long)r.epochs);
            }
            fputs(",\"seconds\":", log);
            nnrt_json_number(log, seconds);
            fputs("}\n", log);
            fflush(log);
        }
        double b = acc ? best_val.acc : best_val.loss;
        if (!r.diverged && isfinite(x) && (best < 0 || (acc ? x > b : x < b))) {
            best = t;
            best_val = r.val;
            memcpy(best_hp, hp, (size_t)m->n_hparams * sizeof(double));
            memcpy(best_w, weights, m->params_numel * sizeof(float));
        }
    }
    if (best < 0) {
        if (log) fclose(log);
        nnrt_die("search: no trial finished with a finite %s (every one diverged?)%s%s", o->search_on,
                 o->save ? "; nothing was written to " : "", o->save ? o->save : "");
    }
    printf("best: trial %lld", (long long)best + 1);
    print_setting(stdout, m, given, best_hp);
    printf("  val_loss %.4f", best_val.loss);
    if (best_val.acc >= 0) printf("  val_acc %.4f", best_val.acc);
    printf("\n");
    if (log) {
        fprintf(log, "{\"best\":{\"trial\":%lld,", (long long)best + 1);
        json_setting(log, m, given, best_hp);
        json_metrics(log, best_val);
        fputs("}}\n", log);
        fclose(log);
    }
    if (o->save) {
        nnrt_save_weights(o->save, m, best_w, &data.info);
        if (!o->quiet) printf("saved %s (trial %lld's weights)\n", o->save, (long long)best + 1);
    }
    nnrt_train_data_free(&data);  // after the save: the weights file keeps the data's preprocessing and class names
    for (int i = 0; i < m->n_hparams; i++) free(specs[i].values);
    free(specs); free(given); free(hp); free(best_hp); free(weights); free(best_w);
    return 0;
}
