/* toy_model.c — a hand-written model implementing the nnrt_model contract, to test nnrt_main end to end.
 *
 * Default: softmax regression, logits (n, C) = x (n, D) @ Wᵀ (D, C) + b (C), cross-entropy, SGD with
 * momentum and weight decay. Build variants:
 *   -DTOY_DENSE       linear regression with MSE (DENSE targets, target_dim = C)
 *   -DTOY_WRONG_GRAD  loss_grad_f64 returns a bias gradient 10% too large (gradcheck must fail)
 *   -DTOY_MNIST       D = 784 read as (1, 28, 28) images, C = 10, max_batch 256 (for the MNIST directory layout
 *                     and --augment)
 *   -DTOY_DROPOUT     drops a quarter of the logits' gradient elements with masks from ctx->rng (so that
 *                     resuming a checkpoint must restore the generator, as for nncc's Dropout)
 *   -DTOY_LBFGS       full-batch L-BFGS (runtime/lbfgs.c) on softmax regression plus the penalty (l2/2)·‖θ‖² over
 *                     the weight and bias (strictly convex: one minimum), max_batch 16 so that one chunk can hold the
 *                     whole set; train_step leaves the gradients and updates nothing. The strong-Wolfe search, or
 *                     the fixed step with TOY_LINE_SEARCH=none in the environment; L-BFGS's hyperparameters
 *                     (lr 1, max_iter 20, max_eval 0, history_size 10, tolerance_grad 1e-7, tolerance_change 1e-9)
 * Every variant has the input-gradient entry point (saliency, maximize) with two layer outputs: "h_in", the input
 * itself (D features; (1, 28, 28) with TOY_MNIST: a channel), and "h0", the logits (the output): the score
 * Σ seed_in ⊙ x + Σ seed_out ⊙ logits has the input gradient seed_in + seed_out · W, so a class's saliency is
 * its weight row.
 * A non-trainable buffer "seen" (1,) counts the samples trained on, like BatchNorm's counters; with
 * TOY_TRACE=path set, train_step also appends one line per step (step, epoch, steps_per_epoch, n, and
 * feature 0 of each sample) so tests can check the batch order and sizes. The classifiers but TOY_LBFGS have a
 * soft-target step (train_mixed_step, for --mixup and --cutmix) as nncc emits for cross-entropy. The learning rate is --lr,
 * or lr / (1 + k·(step − 1)) with TOY_LR_DECAY=k set (a per-step schedule, torch's InverseTime), and
 * ctx->lr_override in its place when positive (--swa-lr, --snapshots), as nncc's generated schedules do. With
 * TOY_EXIT_AT_STEP=s set, the process ends (status 3, no cleanup) as step s begins: a job killed mid-run, whose
 * last checkpoint is then whatever the previous epoch end wrote. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_model.h"

#ifdef TOY_MNIST
enum { D = 784, C = 10, MAX_B = 256, DEF_B = 128 };
#elif defined TOY_LBFGS
enum { D = 5, C = 3, MAX_B = 16, DEF_B = 4 };
#else
enum { D = 5, C = 3, MAX_B = 8, DEF_B = 4 };
#endif
#define L2_DEFAULT 0.05  // TOY_LBFGS's penalty: --l2's default, and the float64 twin's (gradcheck)
enum { W_OFF = 0, B_OFF = C * D, SEEN_OFF = C * D + C, NUMEL = C * D + C + 1 };
#ifdef TOY_LBFGS
enum { HP_LR, HP_MAX_ITER, HP_MAX_EVAL, HP_HISTORY_SIZE, HP_TOLERANCE_GRAD, HP_TOLERANCE_CHANGE, HP_L2, N_HP };
#else
enum { HP_LR, HP_MOMENTUM, HP_WEIGHT_DECAY, N_HP };
#endif

// ----------------------------------------------------------------------------
// float32 kernels

/* logits (n, C) = x (n, D) @ W (C, D)ᵀ + b (C) */
static void forward(int n, const float *params, const float *x, float *logits) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, C, D, 1.0f, x, D, params + W_OFF, D, 0.0f, logits, C);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < C; j++) logits[i * C + j] += params[B_OFF + j];
}

/* Mean loss over the batch; dlogits (n, C) ← its gradient with respect to logits. */
static float loss_and_dlogits(int n, const float *logits, const void *y, float *dlogits) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + i * C;
        float *dz = dlogits + i * C;
#ifdef TOY_DENSE
        const float *t = (const float *)y + i * C;
        for (int j = 0; j < C; j++) { float e = z[j] - t[j]; loss += (double)e * e; dz[j] = 2.0f * e / (float)(n * C); }
#else
        int label = ((const int32_t *)y)[i];
        float mx = z[0];
        for (int j = 1; j < C; j++) mx = z[j] > mx ? z[j] : mx;
        double sum = 0;
        for (int j = 0; j < C; j++) sum += exp((double)(z[j] - mx));
        loss += log(sum) - (double)(z[label] - mx);
        for (int j = 0; j < C; j++) dz[j] = (float)(exp((double)(z[j] - mx)) / sum / n) - (j == label ? 1.0f / (float)n : 0.0f);
#endif
    }
#ifdef TOY_DENSE
    return (float)(loss / (double)(n * C));
#else
    return (float)(loss / n);
#endif
}

#ifndef TOY_DENSE
/* The soft-target cross-entropy, mean over the batch of −Σ_j T_ij·log softmax(z_i)_j; dlogits ← (softmax − T)/n. */
static float soft_loss_and_dlogits(int n, const float *logits, const float *t, float *dlogits) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + i * C, *ti = t + i * C;
        float *dz = dlogits + i * C;
        float mx = z[0];
        for (int j = 1; j < C; j++) mx = z[j] > mx ? z[j] : mx;
        double sum = 0;
        for (int j = 0; j < C; j++) sum += exp((double)(z[j] - mx));
        for (int j = 0; j < C; j++) {
            loss -= (double)ti[j] * ((double)(z[j] - mx) - log(sum));
            dz[j] = (float)(exp((double)(z[j] - mx)) / sum / n) - ti[j] / (float)n;
        }
    }
    return (float)(loss / n);
}
#endif

/* gb (C) ← the column sums of dlogits (n, C) */
static void bias_grad(int n, const float *dlogits, float *gb) {
    for (int j = 0; j < C; j++) { gb[j] = 0; for (int i = 0; i < n; i++) gb[j] += dlogits[i * C + j]; }
}

#ifndef TOY_LBFGS
/* SGD with momentum and weight decay (PyTorch's form), on the trainable params only (not "seen"). */
static void sgd_update(float *p, const float *g, float *v, float lr, float mom, float wd) {
    for (int k = 0; k < SEEN_OFF; k++) {
        float gk = g[k] + wd * p[k];
        v[k] = mom * v[k] + gk;
        p[k] -= lr * v[k];
    }
}
#endif

static void trace(const nnrt_ctx *ctx, int n, const float *x) {
    static FILE *f;
    const char *path = getenv("TOY_TRACE");
    if (!path) return;
    if (!f && !(f = fopen(path, "a"))) return;
    fprintf(f, "step %lld epoch %lld spe %lld n %d x0", (long long)ctx->step, (long long)ctx->epoch,
            (long long)ctx->steps_per_epoch, n);
    for (int i = 0; i < n; i++) fprintf(f, " %g", x[i * D]);
    fprintf(f, "\n");
    fflush(f);
}

#ifndef TOY_LBFGS
/* The learning rate of the step ctx->step: the override, else the schedule's. */
static double step_lr(const nnrt_ctx *ctx) {
    if (ctx->lr_override > 0) return ctx->lr_override;
    const char *k = getenv("TOY_LR_DECAY");
    double lr = ctx->hp[HP_LR];
    return k ? lr / (1 + atof(k) * (double)(ctx->step - 1)) : lr;
}
#endif

/* One step on labels y, or on soft targets y (n, C) when soft. */
static float step(nnrt_ctx *ctx, int n, const float *x, const void *y, int soft) {
#ifdef TOY_LBFGS
    int64_t first_step = 0;  // L-BFGS evaluates the run's first point before its first iteration (step 0)
#else
    int64_t first_step = 1;
#endif
    if (!ctx->training || ctx->step < first_step || n < 1 || n > MAX_B) abort();
    const char *kill_at = getenv("TOY_EXIT_AT_STEP");
    if (kill_at && ctx->step == atoll(kill_at)) _Exit(3);
    trace(ctx, n, x);
    float *logits = ctx->arena, *dlogits = logits + MAX_B * C;  // (MAX_B, C) each
    // Each kernel is wrapped in NNRT_PROF with its kind, as nncc's generated code does (for --profile).
    NNRT_PROF(ctx, NNRT_PROF_GEMM, forward(n, ctx->params, x, logits));
    float loss;
#ifdef TOY_DENSE
    if (soft) abort();
    NNRT_PROF(ctx, NNRT_PROF_ROWWISE, loss = loss_and_dlogits(n, logits, y, dlogits));
#else
    if (soft) NNRT_PROF(ctx, NNRT_PROF_ROWWISE, loss = soft_loss_and_dlogits(n, logits, y, dlogits));
    else NNRT_PROF(ctx, NNRT_PROF_ROWWISE, loss = loss_and_dlogits(n, logits, y, dlogits));
#endif
#ifdef TOY_DROPOUT
    for (int k = 0; k < n * C; k++) dlogits[k] = nnrt_rng_uniform(ctx->rng) < 0.25 ? 0.0f : dlogits[k] / 0.75f;
#endif
    float *g = ctx->grads;
    NNRT_PROF(ctx, NNRT_PROF_GEMM, cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, C, D, n, 1.0f, dlogits, C, x, D, 0.0f, g + W_OFF, D));
    NNRT_PROF(ctx, NNRT_PROF_ELEMENTWISE, bias_grad(n, dlogits, g + B_OFF));
#ifdef TOY_LBFGS
    // the penalty (l2/2)·‖θ‖² on the loss and l2·θ on the gradient; runtime/lbfgs.c updates the weights
    double l2 = ctx->hp[HP_L2], sq = 0;
    for (int k = 0; k < SEEN_OFF; k++) sq += (double)ctx->params[k] * ctx->params[k], g[k] += (float)l2 * ctx->params[k];
    loss += (float)(0.5 * l2 * sq);
#else
    double lr = step_lr(ctx), mom = ctx->hp[HP_MOMENTUM], wd = ctx->hp[HP_WEIGHT_DECAY];
    NNRT_PROF(ctx, NNRT_PROF_OPTIMIZER, sgd_update(ctx->params, g, ctx->state, (float)lr, (float)mom, (float)wd));
    ctx->lr = lr;
#endif
    ctx->params[SEEN_OFF] += (float)n;
    return loss;
}

static float toy_train_step(nnrt_ctx *ctx, int n, const float *x, const void *y) { return step(ctx, n, x, y, 0); }
#if !defined TOY_DENSE && !defined TOY_LBFGS  // nncc gives a full-batch L-BFGS model no soft-target step
static float toy_train_mixed_step(nnrt_ctx *ctx, int n, const float *x, const void *y) { return step(ctx, n, x, y, 1); }
#endif

static float toy_eval_batch(nnrt_ctx *ctx, int n, const float *x, const void *y, float *out) {
    if (ctx->training || ctx->profile) abort();  // --profile times the evaluation as a whole, not its kernels
    float *dlogits = (float *)ctx->arena + MAX_B * C;
    forward(n, ctx->params, x, out);
    return loss_and_dlogits(n, out, y, dlogits);
}

static void toy_predict(nnrt_ctx *ctx, int n, const float *x, float *out) {
    if (ctx->training) abort();
    forward(n, ctx->params, x, out);
}

// ----------------------------------------------------------------------------
// float64 twin

static double toy_loss_grad_f64(const double *p, double *g, void *arena64, int n, const double *x, const void *y) {
    double *z = arena64;  // (MAX_B, C)
    double loss = 0;
    memset(g, 0, sizeof(double) * NUMEL);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < C; j++) {
            z[i * C + j] = p[B_OFF + j];
            for (int k = 0; k < D; k++) z[i * C + j] += x[i * D + k] * p[W_OFF + j * D + k];
        }
        for (int j = 0; j < C; j++) {
            double dz;
#ifdef TOY_DENSE
            double e = z[i * C + j] - ((const double *)y)[i * C + j];
            loss += e * e / (n * C);
            dz = 2 * e / (n * C);
#else
            int label = ((const int32_t *)y)[i];
            double mx = z[i * C];
            for (int k = 1; k < C; k++) mx = fmax(mx, z[i * C + k]);
            double sum = 0;
            for (int k = 0; k < C; k++) sum += exp(z[i * C + k] - mx);
            if (j == 0) loss += (log(sum) - (z[i * C + label] - mx)) / n;
            dz = (exp(z[i * C + j] - mx) / sum - (j == label)) / n;
#endif
            for (int k = 0; k < D; k++) g[W_OFF + j * D + k] += dz * x[i * D + k];
            g[B_OFF + j] += dz;
        }
    }
#ifdef TOY_WRONG_GRAD
    for (int j = 0; j < C; j++) g[B_OFF + j] *= 1.1;
#endif
#ifdef TOY_LBFGS
    for (int k = 0; k < SEEN_OFF; k++) loss += 0.5 * L2_DEFAULT * p[k] * p[k], g[k] += L2_DEFAULT * p[k];
#endif
    return loss;
}

// ----------------------------------------------------------------------------
// the input gradient: score = Σ seed_in ⊙ x + Σ seed_out ⊙ logits, d score / d x = seed_in + seed_out · W

static const nnrt_layer_output layer_outputs[] = {
#ifdef TOY_MNIST
    {"h_in", 3, {1, 28, 28}, D, 0},
#else
    {"h_in", 1, {D}, D, 0},
#endif
    {"h0", 1, {C}, C, 1},
};

static float toy_input_grad(nnrt_ctx *ctx, void *arena, int n, const float *x, const float *const *seeds, float *out) {
    if (ctx->training || n < 1 || n > MAX_B) abort();
    float *logits = arena;  // (MAX_B, C)
    forward(n, ctx->params, x, logits);
    double score = 0;
    for (int i = 0; i < n * D; i++) score += (double)seeds[0][i] * x[i];
    for (int i = 0; i < n * C; i++) score += (double)seeds[1][i] * logits[i];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, D, C, 1.0f, seeds[1], C, ctx->params + W_OFF, D, 0.0f, out, D);
    for (int i = 0; i < n * D; i++) out[i] += seeds[0][i];
    return (float)score;
}

// ----------------------------------------------------------------------------
// the model

static const nnrt_param params[] = {
    {"weight", 2, {C, D}, W_OFF, C * D, NNRT_INIT_UNIFORM, -0.4, 0.4, 1},
    {"bias", 1, {C}, B_OFF, C, NNRT_INIT_ZEROS, 0, 0, 1},
    {"seen", 1, {1}, SEEN_OFF, 1, NNRT_INIT_ZEROS, 0, 0, 0},
};
#ifdef TOY_LBFGS
static const nnrt_hparam hparams[] = {
    {"lr", 1.0, "L-BFGS's first step length"},
    {"max_iter", 20, "iterations per step"},
    {"max_eval", 0, "loss evaluations per step (0: max_iter·5/4)"},
    {"history_size", 10, "(s, y) pairs kept"},
    {"tolerance_grad", 1e-7, "stop when max |g| is below"},
    {"tolerance_change", 1e-9, "stop when the loss or step changes less"},
    {"l2", L2_DEFAULT, "the penalty (l2/2)·‖θ‖² added to the loss"},
};
#else
static const nnrt_hparam hparams[] = {
    {"lr", 0.1, "learning rate"},
    {"momentum", 0.0, "SGD momentum"},
    {"weight_decay", 0.0, "L2 penalty"},
};
#endif

static const nnrt_model MODEL = {
    .name = "toy",
    .input_dim = D,
    .output_dim = C,
#ifdef TOY_DENSE
    .target_kind = NNRT_TARGET_DENSE,
    .target_dim = C,
#else
    .target_kind = NNRT_TARGET_CLASS,
    .target_dim = 1,
#endif
    .max_batch = MAX_B,
    .params_numel = NUMEL,
#ifdef TOY_LBFGS
    .state_numel = 0,  // L-BFGS keeps its state in runtime/lbfgs.c, as nncc's L-BFGS models
#else
    .state_numel = NUMEL,
#endif
    .arena_bytes = 2 * MAX_B * C * sizeof(float),
    .n_params = 3,
    .params = params,
    .n_hparams = N_HP,
    .hparams = hparams,
    .default_batch = DEF_B,
    .default_epochs = 2,
    .default_seed = 42,
#ifdef TOY_MNIST
    .input_rank = 3,
    .input_shape = {1, 28, 28},
#endif
    .train_step = toy_train_step,
#if !defined TOY_DENSE && !defined TOY_LBFGS
    .train_mixed_step = toy_train_mixed_step,
#endif
    .eval_batch = toy_eval_batch,
    .predict = toy_predict,
    .loss_grad_f64 = toy_loss_grad_f64,
    .arena64_bytes = MAX_B * C * sizeof(double),
    .input_grad = toy_input_grad,
    .input_grad_arena_bytes = MAX_B * C * sizeof(float),
    .input_grad_max_batch = MAX_B,
    .n_layer_outputs = 2,
    .layer_outputs = layer_outputs,
#ifdef TOY_LBFGS
    .lbfgs = NNRT_LBFGS_STRONG_WOLFE,
#endif
};

int main(int argc, char **argv) {
    nnrt_model m = MODEL;
    const char *ls = getenv("TOY_LINE_SEARCH");
    if (m.lbfgs && ls && strcmp(ls, "none") == 0) m.lbfgs = NNRT_LBFGS_FIXED_STEP;
    return nnrt_main(&m, argc, argv);
}
