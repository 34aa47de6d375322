/* nnrt_mixup.h — mixup and CutMix of training batches (mixup.c): train --mixup α, --cutmix α.
 * Per batch, as timm's Mixup in batch mode: λ ~ Beta(α, α); sample i is paired with sample n−1−i of the same batch
 * (the flipped batch; the shuffle already made the batch a random sample, so the pairs are random); mixup blends the
 * whole inputs, CutMix swaps a box of area ≈ (1−λ)·H·W between the pair and recomputes λ from the box after clipping.
 * The target is the soft label λ·onehot(yᵢ) + (1−λ)·onehot(y_{n−1−i}), trained by the model's train_mixed_step.
 * The draws come from a generator keyed by (seed, epoch, step in the epoch) on stream NNRT_STREAM_MIX, so a run is
 * reproducible and a resumed run draws what an uninterrupted one would. docs/trainer.md has the exact semantics. */
#ifndef NNRT_MIXUP_H
#define NNRT_MIXUP_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_model.h"

typedef struct {
    int on;                 // --mixup or --cutmix given with α > 0
    double mixup, cutmix;   // their α (0: off); with both, each batch picks one with probability 1/2
    int c, h, w;            // the image shape (CutMix), h = 0 for feature vectors
    int k;                  // the classes
    float *soft;            // (max_batch, k): the current batch's soft targets
    uint64_t seed;          // --seed (train sets it)
    int64_t epoch;          // 0-based (train sets it before each epoch)
} nnrt_mix;

/* One batch's draws: the method, λ (for CutMix the area kept, after clipping the box), and CutMix's box, rows
   [y0, y1) and columns [x0, x1) of every channel. */
typedef struct {
    int cutmix;
    double lam;
    int y0, y1, x0, x1;
} nnrt_mix_draw;

/* Checks --mixup and --cutmix for model m and fills x (soft-target buffer allocated) when either is on; a usage
   error (exit 2) naming the flag for a model without a soft-target step or CutMix on a model without images. */
void nnrt_mix_parse(double mixup, double cutmix, const nnrt_model *m, nnrt_mix *x);
/* Those checks without dying: NULL when model m takes the α given (or both are 0), else the name of the flag at fault
   ("mixup" or "cutmix") with the reason in why (a checkpoint's keys are named alike). */
const char *nnrt_mix_unsupported(double mixup, double cutmix, const nnrt_model *m, char *why, size_t cap);
/* A Beta(a, a) variate, a > 0 (the ratio of two Gamma(a) variates, Marsaglia–Tsang). */
double nnrt_beta_symmetric(uint64_t s[4], double a);
/* CutMix's box for λ and centre (cy, cx), as timm's rand_bbox: sides ⌊H·√(1−λ)⌋ and ⌊W·√(1−λ)⌋, the half-sides
   (rounded down) each way from the centre, clipped to the image; d->lam becomes 1 − box area / (H·W). */
void nnrt_cutmix_box(int h, int w, double lam, int cy, int cx, nnrt_mix_draw *d);
/* The draws of step `step` (0-based in x->epoch). */
nnrt_mix_draw nnrt_mix_draws(const nnrt_mix *x, int64_t step);
/* Mixes the batch xb (n, dim) in place by d and writes its soft targets (n, k) into x->soft from the labels y. */
void nnrt_mix_batch(const nnrt_mix *x, const nnrt_mix_draw *d, int n, int dim, float *xb, const int32_t *y);
/* One training step on the mixed batch: draws, mixing, then the model's train_mixed_step. */
float nnrt_mix_step(nnrt_ctx *ctx, const nnrt_mix *x, int64_t step, int n, float *xb, const void *y);

#endif
