/* nnrt_model.h — the contract between a trainer's generated C (written by nncc) and runtime/.
 *
 * nncc emits one C file per model. It holds the kernels, a table of parameters and hyperparameters,
 * and one `nnrt_model` value naming the entry points. Its `main` is one line:
 *
 *     int main(int argc, char **argv) { return nnrt_main(&MODEL, argc, argv); }
 *
 * Everything else (command line, data loading, the epoch loop, logging, weights files, gradcheck,
 * the BLAS setup) lives in runtime/ and is the same for every model.
 *
 * Arenas (all float32 unless said otherwise, laid out by nncc's memory plan):
 *   params  (params_numel)  every parameter and buffer, in table order, contiguous;
 *   grads   (params_numel)  the gradient of each parameter, same layout as params;
 *   state   (state_numel)   optimizer state (momentum, Adam moments, …), `state_slots` copies of the params layout;
 *   arena   (arena_bytes)   activations and temporaries, sized for max_batch samples.
 */
#ifndef NNRT_MODEL_H
#define NNRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    NNRT_INIT_ZEROS = 0,
    NNRT_INIT_CONST = 1,    /* every element = a */
    NNRT_INIT_UNIFORM = 2,  /* U(a, b) */
    NNRT_INIT_NORMAL = 3,   /* N(mean a, std b) */
} nnrt_init_kind;

typedef struct {
    const char *name;       /* PyTorch state_dict key, e.g. "0.weight" */
    int ndim;
    int64_t shape[4];       /* PyTorch layout: Linear weight is (out, in) */
    size_t offset;          /* in floats, inside the params (and grads) arena */
    size_t numel;
    nnrt_init_kind init;
    double init_a, init_b;
    int trainable;          /* 0 for buffers (BatchNorm running stats): saved and loaded, never updated by the optimizer */
    int counter;            /* 1 for a step counter (PyTorch's num_batches_tracked): a float in the arena, I64 on disk */
} nnrt_param;

/* A run-time scalar the generated code reads from ctx->hp[i]; the trainer accepts --NAME VALUE for each
   (underscores in NAME become dashes on the command line, e.g. weight_decay → --weight-decay). */
typedef struct {
    const char *name;       /* "lr", "momentum", "beta1", … */
    double value;           /* default, from the DSL */
    const char *help;
} nnrt_hparam;

enum { NNRT_TARGET_CLASS = 0,  /* y is int32 class indices in [0, output_dim) */
       NNRT_TARGET_DENSE = 1 }; /* y is float32 (n, target_dim) */

/* A layer's output the input-gradient entry point takes a seed for (saliency, maximize): named as the generated C
   names it ("h8" for the output of module 8 of a Sequential, "h3_0" inside a nested one; "output" for a model
   output without such a name). */
typedef struct {
    const char *name;
    int rank;               /* per-sample dimensions: 1 for features (k), 3 for a convolution's (C, H, W) */
    int shape[4];
    size_t numel;           /* floats per sample */
    int is_output;          /* the model's output: a classifier's logits */
} nnrt_layer_output;

typedef struct nnrt_model nnrt_model;

typedef struct {
    const nnrt_model *model;
    float *params, *grads, *state;
    void *arena;            /* arena_bytes, 64-byte aligned */
    double *hp;             /* n_hparams current values (defaults, then command-line overrides) */
    int64_t step;           /* 1-based index of the update train_step is taking (with lbfgs: the iterations taken so
                               far, 0 at a run's first evaluation) */
    int64_t epoch;          /* 0-based epoch */
    int64_t steps_per_epoch;
    double lr;              /* set by train_step: the learning rate it actually used (after the schedule) */
    double lr_override;     /* > 0: the learning rate train_step uses instead of the schedule's (--swa-lr, --snapshots;
                               swa.c); 0: the schedule's */
    int lr_hparam;          /* the index in hp of the base learning rate "lr" (--lr, what --reduce-lr-on-plateau
                               lowers; the generated C's HP_LR), found once by nnrt_ctx_init; -1 when there is none */
    uint64_t rng[4];        /* seeded generator state for random ops (dropout) */
    int training;           /* 1 inside train_step, 0 in eval/predict */
    int profile;            /* set by --profile: the generated code then times each kernel call into prof[] */
    double prof[8];         /* seconds spent per NNRT_PROF_* kind since the last reset */
    double *kprof;          /* (model->n_train_kernels) seconds per timed call of train_step since the start */
    struct nnrt_monitor *monitor;  /* the statistics train_step_monitor's activations go to (monitor.c); NULL: none */
} nnrt_ctx;

/* What the generated code reports for --profile: each kernel call is wrapped in NNRT_PROF with its kind. */
enum { NNRT_PROF_GEMM = 0,         /* nnrt_sgemm and its epilogue loop */
       NNRT_PROF_ELEMENTWISE = 1,  /* fused elementwise loops and reductions */
       NNRT_PROF_ROWWISE = 2,      /* softmax, cross-entropy and other row-wise kernels */
       NNRT_PROF_OPTIMIZER = 3,    /* the optimizer update */
       NNRT_PROF_CONV = 4,         /* convolutions, forward (nnrt_window.h) */
       NNRT_PROF_CONV_BACKWARD = 5,/* the convolutions' input, weight and bias gradients */
       NNRT_PROF_POOL = 6,         /* pooling, forward and backward */
       NNRT_PROF_KINDS = 7 };

double nnrt_now(void);  /* monotonic seconds */
double nnrt_rng_uniform(uint64_t s[4]);  /* [0, 1) from the seeded xoshiro256** state, e.g. ctx->rng (dropout) */
/* Runs fn(arg, 0) on the trainer's worker thread and fn(arg, 1) on the caller; returns when both are done.
   With one thread (--threads 1, or one core) it runs both on the caller, in order 0 then 1. */
void nnrt_par2(void (*fn)(void *arg, int part), void *arg);
/* Runs fn(arg, c) for every chunk c in [0, count) (count ≤ 64) on both threads: the worker from chunk 0 up, the
   caller from count − 1 down, until they meet; returns when all are done. With one thread, in order on the
   caller. Chunks must write disjoint memory, so that the result does not depend on which thread runs which. */
void nnrt_par_chunks(void (*fn)(void *arg, int chunk), void *arg, int count);

/* C = op(A) · op(B) in single precision, row-major (gemm.c): our AVX-512 or AVX2 kernels where the CPU has
   them, OpenBLAS's cblas_sgemm elsewhere or with NNRT_GEMM=blas. A is M×K (K×M when transA), B is K×N (N×K when
   transB), C is M×N; lda, ldb and ldc are row strides. C is overwritten (beta 0). */
void nnrt_sgemm(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                float *C, int ldc);

/* Called by the train_step of a trainer built with `nncc compile --mpi` (dist.c), and by no other: after the last
   kernel that writes the gradient of the parameter at offset off (numel floats), so that its bucket's allreduce can
   start while backward goes on; and once before the optimizer update, which must see the averaged gradients. */
void nnrt_dist_grad_ready(nnrt_ctx *ctx, size_t off, size_t numel);
void nnrt_dist_grads_wait(nnrt_ctx *ctx);

/* NNRT_PROF, and the call's seconds also go to ctx->kprof[id] (train_step's calls: --profile's per-kernel table). */
#define NNRT_PROF_AT(ctx, kind, id, call)                             \
    do {                                                             \
        if ((ctx)->profile) {                                        \
            double nnrt_t0_ = nnrt_now();                            \
            call;                                                    \
            double nnrt_dt_ = nnrt_now() - nnrt_t0_;                 \
            (ctx)->prof[kind] += nnrt_dt_;                           \
            if ((ctx)->kprof) (ctx)->kprof[id] += nnrt_dt_;          \
        } else {                                                     \
            call;                                                    \
        }                                                            \
    } while (0)

#define NNRT_PROF(ctx, kind, call)                                   \
    do {                                                             \
        if ((ctx)->profile) {                                        \
            double nnrt_t0_ = nnrt_now();                            \
            call;                                                    \
            (ctx)->prof[kind] += nnrt_now() - nnrt_t0_;              \
        } else {                                                     \
            call;                                                    \
        }                                                            \
    } while (0)

struct nnrt_model {
    const char *name;               /* the model file's stem, for messages */
    int input_dim;                  /* float features per sample (flattened) */
    int output_dim;                 /* model outputs per sample */
    int target_kind;                /* NNRT_TARGET_CLASS or NNRT_TARGET_DENSE */
    int target_dim;                 /* 1 for CLASS; floats per sample for DENSE */
    int max_batch;                  /* the arena holds this many samples */
    size_t params_numel, state_numel, arena_bytes;
    int n_params;
    const nnrt_param *params;
    int n_hparams;
    const nnrt_hparam *hparams;
    int default_batch, default_epochs;
    uint64_t default_seed;

    /* One training step on a batch of n ≤ max_batch samples: forward, loss, backward, optimizer update (with
       lbfgs set, no update: the gradients are left in grads). Returns the mean loss of the batch computed before
       the update (what PyTorch's loss.item() reports). */
    float (*train_step)(nnrt_ctx *ctx, int n, const float *x, const void *y);
    /* Loss of a batch without updating; writes the model outputs (n, output_dim) to out. */
    float (*eval_batch)(nnrt_ctx *ctx, int n, const float *x, const void *y, float *out);
    /* Model outputs (n, output_dim) only. */
    void (*predict)(nnrt_ctx *ctx, int n, const float *x, float *out);
    /* Float64 twin used by gradcheck: loss of the batch at params64, and its gradient into grads64
       (same layout as the float32 arenas). arena64 holds arena64_bytes. Runs in eval mode for random ops. */
    double (*loss_grad_f64)(const double *params64, double *grads64, void *arena64,
                            int n, const double *x, const void *y);
    size_t arena64_bytes;
    /* The names of train_step's timed calls (NNRT_PROF_AT ids 0..n_train_kernels−1), for --profile's
       per-kernel table; 0 and NULL when the model times only by kind. */
    int n_train_kernels;
    const char *const *train_kernels;
    /* The optimizer's state slots, in arena order ("m", "v", …): slot k of parameter p lives at
       state[k·params_numel + p.offset]. Checkpoints store them per slot and trainable parameter as
       "optimizer.<slot>.<name>"; 0 and NULL keep the arena whole ("optimizer.state"). */
    int n_state_slots;
    const char *const *state_slots;
    /* An image model's per-sample input shape (C, H, W), read in row-major NCHW order: input_rank 3. 0 (the
       default) for a flat feature vector of input_dim. Files that carry a shape (.npy, IDX) must match it. */
    int input_rank;
    int input_shape[3];
    /* NNRT_LBFGS_*: the model trains with full-batch L-BFGS (runtime/lbfgs.c), and train_step computes the loss and
       the gradients into grads without updating anything. 0 (the default): train_step updates the weights. */
    int lbfgs;
    /* `nncc compile --monitor`: train_step with each forward activation handed to nnrt_monitor_act right after the
       kernel that writes it (the arena reuses its bytes later); NULL when compiled without it. */
    float (*train_step_monitor)(nnrt_ctx *ctx, int n, const float *x, const void *y);
    /* train_step against soft targets y (n, output_dim) of float rows that sum to 1, for --mixup and --cutmix;
       NULL unless the model is a classifier trained with plain cross-entropy (Graph.withSoftLabels). */
    float (*train_mixed_step)(nnrt_ctx *ctx, int n, const float *x, const void *y);
    /* The input gradient in eval mode (saliency, maximize): score = Σ_k Σ seeds[k] ⊙ (layer_outputs[k]'s value) over
       the n samples, returned, and d score / d x (n, input_dim) into out; seeds[k] is (n, layer_outputs[k].numel).
       arena holds input_grad_arena_bytes; n ≤ input_grad_max_batch. */
    float (*input_grad)(nnrt_ctx *ctx, void *arena, int n, const float *x, const float *const *seeds, float *out);
    size_t input_grad_arena_bytes;
    int input_grad_max_batch;
    int n_layer_outputs;
    const nnrt_layer_output *layer_outputs;
    /* A forward pass in training mode over n samples that writes each BatchNorm's batch mean and unbiased variance
       into its running buffers (params arena), updating nothing else but dropout's generator; the runtime averages
       them over the batches (SWA's update_bn, swa.c). NULL for a model without running statistics. */
    void (*update_bn)(nnrt_ctx *ctx, int n, const float *x);
};

enum { NNRT_LBFGS_FIXED_STEP = 1,     /* a step of lr along the direction (torch's line_search_fn=None) */
       NNRT_LBFGS_STRONG_WOLFE = 2 }; /* torch's line_search_fn="strong_wolfe" */

/* Called by train_step_monitor: the statistics of activation `name`, (n, per_sample) floats at v, into ctx->monitor
   (nothing when that is NULL); kind is what computed it: "relu", "tanh", "sigmoid" or "" (anything else). */
void nnrt_monitor_act(nnrt_ctx *ctx, const char *name, const char *kind, const float *v, int n, int per_sample);

int nnrt_main(const nnrt_model *model, int argc, char **argv);

#endif
