/* lbfgs.c — full-batch L-BFGS, as torch.optim.LBFGS: one optimizer step per epoch, its closure the loss and
 * gradient over the whole training set, which the model's train_step computes chunk by chunk (a model with
 * model->lbfgs has no update in train_step: it leaves the gradients in ctx->grads). The step is torch's
 * LBFGS.step transcribed: the direction by the two-loop recursion over the last history_size pairs
 * (s = t·d, y = Δg, kept when yᵀs > 1e-10), the scaling H_diag = yᵀs / yᵀy, the run's very first step
 * min(1, 1/‖g‖₁)·lr, then a strong-Wolfe line search (lbfgs_search.c) or the fixed step lr, and torch's stopping
 * tests in torch's order. The history and the direction persist across epochs, as torch's optimizer state does,
 * and across a checkpoint (nnrt_lbfgs_history_get, nnrt_lbfgs_restore; checkpoint.c stores them).
 * The vectors hold the trainable parameters only, in table order: buffers (BatchNorm's running statistics) are
 * what each train_step leaves them, as in torch, and are never rolled back by the line search. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_checkpoint.h"
#include "nnrt_context.h"
#include "nnrt_io.h"
#include "nnrt_lbfgs.h"

struct nnrt_lbfgs {
    nnrt_ctx *ctx;
    const nnrt_dataset *train;
    float *xb;                  // (B, input_dim) a chunk of the training set
    void *yb;                   // (B) or (B, target_dim) its targets
    int64_t B, *order;          // --batch; (N) 0..N−1, the file order
    int gathered;               // 1 once the whole set sits in xb, yb (N ≤ B): gathered once for the run
    size_t n;                   // trainable floats: the length of every vector below
    float *x0;                  // (n) the point the current iteration starts from
    float *g, *g_prev, *d;      // (n) gradient, the previous iteration's gradient, direction
    float *spare[3];            // (n) the line search's gradients
    float *s_new, *y_new;       // (n) the newest pair, before it is kept
    float *chunk;               // (n) one chunk's gradient, when the set takes more than one (N > B)
    float **S, **Y;             // (history_size) pointers to (n) vectors, oldest first: steps and gradient changes
    double *ro, *al;            // (history_size) 1/yᵀs, the two-loop's α
    int64_t history, count;     // history_size; pairs kept
    double t, H_diag;           // the last step length, the initial inverse Hessian's scale
    int64_t n_iter;             // iterations over the run (torch's state["n_iter"])
    char *why;                  // where a non-finite loss or gradient came up
    size_t why_cap;
    nnrt_profile *prof;         // --profile: each train_step call is a step, timed with its gather; NULL: none
};

// ----------------------------------------------------------------------------
// vectors: the trainable parameters, gathered from and scattered to the params arena

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double sum_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m += fabs(v[i]);
    return m;
}

static double max_abs(const float *v, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* flat (n) ← the trainable parts of arena, in table order (from = 1), or the reverse (from = 0). */
static void params_copy(const nnrt_model *m, float *arena, float *flat, int from) {
    size_t k = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable) continue;
        if (from) memcpy(flat + k, arena + p->offset, p->numel * sizeof(float));
        else memcpy(arena + p->offset, flat + k, p->numel * sizeof(float));
        k += p->numel;
    }
}

/* The trainable weights ← x0 + t·d, as torch's p.add_(d, alpha=t) from the saved point. */
static void step_to(nnrt_lbfgs *s, double t) {
    const nnrt_model *m = s->ctx->model;
    float tf = (float)t;
    size_t k = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable) continue;
        float *w = s->ctx->params + p->offset;
        for (size_t j = 0; j < p->numel; j++, k++) w[j] = s->x0[k] + tf * s->d[k];
    }
}

// ----------------------------------------------------------------------------
// the closure: the loss and gradient over the whole training set

/* The name of the first trainable parameter whose part of g is not finite, or NULL. */
static const char *nonfinite_param(const nnrt_model *m, const float *g) {
    size_t k = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nnrt_param *p = &m->params[i];
        if (!p->trainable) continue;
        for (size_t j = 0; j < p->numel; j++)
            if (!isfinite(g[k + j])) return p->name;
        k += p->numel;
    }
    return NULL;
}

/* The mean loss over the training set at the current weights, its gradient into g (n); t is the step length
   they are at along d, for messages (−1: the step's start). Not finite (NaN when only the gradient is not): why
   says which. */
static double full_batch(nnrt_lbfgs *s, float *g, double t) {
    nnrt_ctx *ctx = s->ctx;
    const nnrt_model *m = ctx->model;
    int64_t N = s->train->x.n;
    double loss = 0;
    for (int64_t i = 0; i < N; i += s->B) {
        int n = (int)(N - i < s->B ? N - i : s->B);
        double t0 = s->prof ? nnrt_now() : 0;
        if (!s->gathered) {
            nnrt_gather_x(&s->train->x, s->order + i, n, s->xb);
            nnrt_gather_y(&s->train->y, s->order + i, n, s->yb);
        }
        double t1 = s->prof ? nnrt_now() : 0;
        ctx->training = 1;
        float l = m->train_step(ctx, n, s->xb, s->yb);
        ctx->training = 0;
        if (s->prof) {
            s->prof->gather += t1 - t0;
            s->prof->step += nnrt_now() - t1;
            s->prof->steps++;
            s->prof->samples += n;
        }
        loss += (double)n / (double)N * l;
        if (n == N) params_copy(m, ctx->grads, g, 1);
        else {  // g ← Σ (n_chunk/N)·g_chunk
            params_copy(m, ctx->grads, s->chunk, 1);
            float w = (float)n / (float)N;
            for (size_t k = 0; k < s->n; k++) g[k] = (i == 0 ? 0 : g[k]) + w * s->chunk[k];
        }
    }
    s->gathered = N <= s->B;
    const char *bad = isfinite(loss) ? nonfinite_param(m, g) : NULL;
    char at[64] = "at the weights the step started from";
    if (t >= 0) snprintf(at, sizeof at, "at step length t = %g along the direction", t);
    if (!isfinite(loss)) snprintf(s->why, s->why_cap, "the loss %s is %s", at, isnan(loss) ? "NaN" : "inf");
    else if (bad) snprintf(s->why, s->why_cap, "the gradient of %s %s is not finite", bad, at);
    return bad ? NAN : loss;
}

/* The line search's objective: the loss at x0 + t·d. */
static double along(void *arg, double t, float *g) {
    nnrt_lbfgs *s = arg;
    step_to(s, t);
    return full_batch(s, g, t);
}

// ----------------------------------------------------------------------------
// the direction: the two-loop recursion

/* Keeps the pair (s_new, y_new) as the newest, dropping the oldest when history_size are kept. */
static void keep_pair(nnrt_lbfgs *s, double ys) {
    float *sv = s->s_new, *yv = s->y_new;
    if (s->count == s->history) {  // the oldest pair's vectors become the next scratch
        s->s_new = s->S[0], s->y_new = s->Y[0];
        memmove(s->S, s->S + 1, (size_t)(s->count - 1) * sizeof *s->S);
        memmove(s->Y, s->Y + 1, (size_t)(s->count - 1) * sizeof *s->Y);
        memmove(s->ro, s->ro + 1, (size_t)(s->count - 1) * sizeof *s->ro);
        s->count--;
    } else {
        s->s_new = nnrt_malloc(s->n * sizeof(float));
        s->y_new = nnrt_malloc(s->n * sizeof(float));
    }
    s->S[s->count] = sv, s->Y[s->count] = yv, s->ro[s->count] = 1.0 / ys;
    s->count++;
}

/* d ← −H·g: the run's first iteration steps along −g and starts the history; later ones first keep the pair of
   the last step (s = t·d, y = g − g_prev) when yᵀs > 1e-10, then run the two-loop recursion. */
static void direction(nnrt_lbfgs *s) {
    size_t n = s->n;
    if (s->n_iter == 1) {
        for (size_t k = 0; k < n; k++) s->d[k] = -s->g[k];
        s->count = 0;
        s->H_diag = 1;
        return;
    }
    float tf = (float)s->t;
    for (size_t k = 0; k < n; k++) s->y_new[k] = s->g[k] - s->g_prev[k], s->s_new[k] = s->d[k] * tf;
    double ys = dot(s->y_new, s->s_new, n);
    if (ys > 1e-10) {
        double yy = dot(s->y_new, s->y_new, n);
        keep_pair(s, ys);
        s->H_diag = ys / yy;
    }
    float *q = s->d;  // q ← −g, then the first loop, newest pair first
    for (size_t k = 0; k < n; k++) q[k] = -s->g[k];
    for (int64_t i = s->count - 1; i >= 0; i--) {
        s->al[i] = dot(s->S[i], q, n) * s->ro[i];
        float a = (float)s->al[i];
        for (size_t k = 0; k < n; k++) q[k] -= a * s->Y[i][k];
    }
    float h = (float)s->H_diag;  // r ← H_diag·q, then the second loop, oldest pair first
    for (size_t k = 0; k < n; k++) q[k] *= h;
    for (int64_t i = 0; i < s->count; i++) {
        double be = dot(s->Y[i], q, n) * s->ro[i];
        float c = (float)(s->al[i] - be);
        for (size_t k = 0; k < n; k++) q[k] += c * s->S[i][k];
    }
}

// ----------------------------------------------------------------------------
// the step

/* A hyperparameter that counts (max_iter, max_eval, history_size): a whole number, from --NAME. */
static int64_t count_hparam(const nnrt_ctx *ctx, const char *flag) {
    int i = nnrt_find_hparam(ctx->model, flag);
    if (i < 0) nnrt_die("internal: an L-BFGS model without the hyperparameter --%s", flag);
    double v = ctx->hp[i];
    if (v != floor(v) || v > 1e15) nnrt_usage_die("--%s: L-BFGS counts it in whole numbers, got %g", flag, v);
    return (int64_t)v;
}

static double real_hparam(const nnrt_ctx *ctx, const char *flag) {
    int i = nnrt_find_hparam(ctx->model, flag);
    if (i < 0) nnrt_die("internal: an L-BFGS model without the hyperparameter --%s", flag);
    return ctx->hp[i];
}

void nnrt_lbfgs_check_flags(const nnrt_options *o) {
    const char *why = "";
    if (o->steps) why = "--steps: L-BFGS takes one step per epoch over the whole training set; give --epochs";
    else if (nnrt_flag_given(o, "ema")) why = "--ema: L-BFGS takes one step per epoch; a moving average of its weights is not supported";
    else if (o->aug.on) why = "--augment: L-BFGS evaluates the same training set at every step of its line search; drop --augment";
    else if (o->swa_start)
        why = "--swa-start: L-BFGS's steps come from its line search and --lr, not from --swa-lr; SWA is not supported";
    else if (o->snapshots)
        why = "--snapshots: L-BFGS's steps come from its line search and --lr, not from a cosine schedule; snapshot "
              "ensembles are not supported";
    if (*why) nnrt_usage_die("%s", why);
}

static nnrt_lbfgs *lbfgs_new(nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train, float *xb, void *yb) {
    const nnrt_model *m = ctx->model;
    nnrt_lbfgs *s = nnrt_calloc(1, sizeof *s);
    *s = (nnrt_lbfgs){.ctx = ctx, .train = train, .xb = xb, .yb = yb, .B = o->batch,
                      .history = count_hparam(ctx, "history-size")};
    if (s->history < 1) nnrt_usage_die("--history-size: L-BFGS keeps at least 1 pair, got %lld", (long long)s->history);
    for (int i = 0; i < m->n_params; i++) s->n += m->params[i].trainable ? m->params[i].numel : 0;
    int64_t N = train->x.n;
    s->order = nnrt_malloc(nnrt_mul_size((size_t)N, sizeof(int64_t), "order"));
    for (int64_t i = 0; i < N; i++) s->order[i] = i;
    float **vs[] = {&s->x0, &s->g, &s->g_prev, &s->d, &s->spare[0], &s->spare[1], &s->spare[2], &s->s_new, &s->y_new};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) *vs[i] = nnrt_calloc(s->n ? s->n : 1, sizeof(float));
    if (N > s->B) s->chunk = nnrt_calloc(s->n ? s->n : 1, sizeof(float));
    s->S = nnrt_calloc((size_t)s->history, sizeof *s->S);
    s->Y = nnrt_calloc((size_t)s->history, sizeof *s->Y);
    s->ro = nnrt_calloc((size_t)s->history, sizeof *s->ro);
    s->al = nnrt_calloc((size_t)s->history, sizeof *s->al);
    return s;
}

void nnrt_lbfgs_history_get(const nnrt_lbfgs *s, const nnrt_model *m, nnrt_lbfgs_history *h) {
    memset(h, 0, sizeof *h);
    h->on = 1;
    for (int i = 0; i < m->n_params; i++) h->n += m->params[i].trainable ? (int64_t)m->params[i].numel : 0;
    h->H_diag = 1;  // before a pair is kept, as direction() starts it
    h->d = nnrt_calloc((size_t)h->n + 1, sizeof(float));
    h->g_prev = nnrt_calloc((size_t)h->n + 1, sizeof(float));
    if (!s) return;  // no epoch ran: the history is empty
    size_t bytes = s->n * sizeof(float);
    h->n_iter = s->n_iter, h->count = s->count, h->t = s->t, h->H_diag = s->H_diag;
    memcpy(h->d, s->d, bytes);
    memcpy(h->g_prev, s->g_prev, bytes);
    if (s->count == 0) return;
    h->s = nnrt_malloc(nnrt_mul_size((size_t)s->count, bytes, "the L-BFGS history"));
    h->y = nnrt_malloc(nnrt_mul_size((size_t)s->count, bytes, "the L-BFGS history"));
    for (int64_t i = 0; i < s->count; i++) {
        memcpy(h->s + (size_t)i * s->n, s->S[i], bytes);
        memcpy(h->y + (size_t)i * s->n, s->Y[i], bytes);
    }
}

void nnrt_lbfgs_restore(nnrt_lbfgs **state, nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train, float *xb,
                        void *yb, const nnrt_lbfgs_history *h) {
    nnrt_lbfgs *s = *state = lbfgs_new(ctx, o, train, xb, yb);
    if ((int64_t)s->n != h->n) nnrt_die("internal: an L-BFGS history of %lld floats for %zu", (long long)h->n, s->n);
    size_t bytes = s->n * sizeof(float);
    s->n_iter = h->n_iter, s->t = h->t, s->H_diag = h->H_diag;
    memcpy(s->d, h->d, bytes);
    memcpy(s->g_prev, h->g_prev, bytes);
    // the newest history_size pairs (all of them unless --history-size is smaller now), each with its ρ = 1 / yᵀs
    int64_t first = h->count > s->history ? h->count - s->history : 0;
    for (int64_t i = first; i < h->count; i++) {
        float *sv = nnrt_malloc(bytes + 1), *yv = nnrt_malloc(bytes + 1);
        memcpy(sv, h->s + (size_t)i * s->n, bytes);
        memcpy(yv, h->y + (size_t)i * s->n, bytes);
        double ys = dot(yv, sv, s->n);   // as keep_pair's caller computed it: the same sum, the same bits
        if (!(ys > 1e-10))
            nnrt_die("%s: corrupt checkpoint (L-BFGS pair %lld has yᵀs = %g, not above 1e-10)", o->resume, (long long)i, ys);
        s->S[s->count] = sv, s->Y[s->count] = yv, s->ro[s->count] = 1.0 / ys;
        s->count++;
    }
}

void nnrt_lbfgs_free(nnrt_lbfgs *s) {
    if (!s) return;
    for (int64_t i = 0; i < s->count; i++) free(s->S[i]), free(s->Y[i]);
    float *vs[] = {s->x0, s->g, s->g_prev, s->d, s->spare[0], s->spare[1], s->spare[2], s->s_new, s->y_new, s->chunk};
    for (size_t i = 0; i < sizeof vs / sizeof *vs; i++) free(vs[i]);
    free(s->S), free(s->Y), free(s->ro), free(s->al), free(s->order), free(s);
}

/* Moves the weights from x0 along d (which starts at loss *loss with gradient g and gᵀd = gtd): the strong-Wolfe
   step, or the fixed step t followed by the loss and gradient there unless it is the step's last iteration.
   Updates *loss, g and s->t; returns the evaluations it took, or −1 (weights back at x0) when one was not finite. */
static int64_t move(nnrt_lbfgs *s, double *loss, double gtd, double tol_change, int last) {
    if (s->ctx->model->lbfgs == NNRT_LBFGS_STRONG_WOLFE) {
        nnrt_line ls = {along, s, s->n, s->d, {s->spare[0], s->spare[1], s->spare[2]}};
        nnrt_line_result r = nnrt_strong_wolfe(&ls, s->t, *loss, s->g, gtd, tol_change);
        if (!isfinite(r.f)) {
            params_copy(s->ctx->model, s->ctx->params, s->x0, 0);  // back to the last point accepted
            return -1;
        }
        if (r.g != s->g) memcpy(s->g, r.g, s->n * sizeof(float));
        *loss = r.f, s->t = r.t;
        step_to(s, s->t);
        return r.evals;
    }
    step_to(s, s->t);
    if (last) return 0;  // torch evaluates the last iteration's point at the next step
    double f = full_batch(s, s->g, s->t);
    if (!isfinite(f)) {
        params_copy(s->ctx->model, s->ctx->params, s->x0, 0);
        return -1;
    }
    *loss = f;
    return 1;
}

double nnrt_lbfgs_epoch(nnrt_lbfgs **state, nnrt_ctx *ctx, const nnrt_options *o, const nnrt_dataset *train,
                        float *xb, void *yb, nnrt_log *log, nnrt_profile *prof, int64_t *diverged, char *why, size_t cap) {
    if (!*state) *state = lbfgs_new(ctx, o, train, xb, yb);
    nnrt_lbfgs *s = *state;
    s->why = why, s->why_cap = cap, s->prof = prof;
    int64_t max_iter = count_hparam(ctx, "max-iter"), max_eval = count_hparam(ctx, "max-eval");
    if (max_iter < 1) nnrt_usage_die("--max-iter: L-BFGS takes at least 1 iteration per step, got %lld", (long long)max_iter);
    if (max_eval == 0) max_eval = max_iter * 5 / 4;  // torch's default
    double lr = ctx->hp[ctx->lr_hparam], tol_grad = real_hparam(ctx, "tolerance-grad");
    double tol_change = real_hparam(ctx, "tolerance-change");
    ctx->lr = lr;
    ctx->steps_per_epoch = 1;  // for messages: a step of L-BFGS is an epoch's one "batch"
    *diverged = -1;
    params_copy(ctx->model, ctx->params, s->x0, 1);
    double orig_loss = full_batch(s, s->g, -1), loss = orig_loss;
    if (!isfinite(orig_loss)) {  // NaN also for a gradient that is not finite: why says which
        *diverged = 0;
        return orig_loss;
    }
    int64_t evals = 1;
    if (max_abs(s->g, s->n) <= tol_grad) return orig_loss;  // optimal already
    for (int64_t n_iter = 1; n_iter <= max_iter; n_iter++) {
        s->n_iter++;
        ctx->step++;
        double t_log = prof ? nnrt_now() : 0;
        if (ctx->step % o->log_every == 0) nnrt_log_step(log, ctx->step, ctx->epoch + 1, loss, lr);
        nnrt_log_bar(log, ctx->epoch + 1, o->epochs, n_iter, max_iter, loss);
        if (prof) prof->log += nnrt_now() - t_log;
        direction(s);
        memcpy(s->g_prev, s->g, s->n * sizeof(float));
        double prev_loss = loss;
        s->t = s->n_iter == 1 ? fmin(1.0, 1.0 / sum_abs(s->g, s->n)) * lr : lr;
        double gtd = dot(s->g, s->d, s->n);
        if (gtd > -tol_change) break;  // not a descent direction any more
        params_copy(ctx->model, ctx->params, s->x0, 1);
        int64_t took = move(s, &loss, gtd, tol_change, n_iter == max_iter);
        if (took < 0) {
            *diverged = 0;
            break;
        }
        evals += took;
        if (n_iter == max_iter || evals >= max_eval) break;
        if (max_abs(s->g, s->n) <= tol_grad) break;                              // optimal
        if (max_abs(s->d, s->n) * fabs(s->t) <= tol_change) break;                 // the step is too small
        if (fabs(loss - prev_loss) < tol_change) break;                            // the loss hardly changed
    }
    nnrt_log_bar_clear(log);
    return orig_loss;
}
