/* nnrt_augment.h — data augmentation of training images (augment.c): train --augment crop:P,flip,cutout:S,jitter:J.
 * Each sample's transform is a pure function of (seed, epoch, sample index, image): its random draws come from a
 * generator keyed by those (NNRT_STREAM_AUGMENT, nnrt_rng_seed_at), so runs are reproducible whatever the thread
 * or the batch order. docs/data.md has the exact semantics. */
#ifndef NNRT_AUGMENT_H
#define NNRT_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_model.h"

typedef struct {
    int on;             // any augmentation given
    int crop;           // RandomCrop(padding=P) with zero padding: P (0: off)
    int flip;           // RandomHorizontalFlip(p=0.5)
    int cutout;         // the side S of the square cutout erases (0: off)
    double jitter;      // ColorJitter(brightness=J, contrast=J): J (0: off)
    int c, h, w;        // the image shape (C, H, W)
    uint64_t seed;      // --seed (train sets it)
    int64_t epoch;      // 0-based (train sets it before each epoch)
} nnrt_augment;

/* One sample's draws. Every field is drawn whichever augmentations are on, each from its own word of the sample's
   generator, so turning one augmentation on or off leaves the others' draws as they were. */
typedef struct {
    int dy, dx;             // crop: output pixel (y, x) is input pixel (y + dy, x + dx), 0 outside; in [−P, P]
    int flip;               // 1: mirror left-right (after the crop)
    int cy, cx;             // cutout's centre, in [0, H) × [0, W)
    int contrast_first;     // jitter's order (ColorJitter applies its transforms in a random order)
    float brightness, contrast;  // jitter's factors, uniform in [1 − J, 1 + J)
} nnrt_augment_draw;

/* Parses --augment's list for model m into a (a->seed and a->epoch left 0); "none" alone is off (a->on 0). A usage
   error (exit 2) naming --augment for an unknown or repeated name, a value out of range, or a model whose input is
   not an image. */
void nnrt_augment_parse(const char *spec, const nnrt_model *m, nnrt_augment *a);
/* The same without dying: 0 with the reason in err (a checkpoint's "augment" names its file and key instead). */
int nnrt_augment_parse_checked(const char *spec, const nnrt_model *m, nnrt_augment *a, char *err, size_t cap);
/* The list a stands for, in the order crop, flip, cutout, jitter ("none" when off), which parses back to the same
   a: what a checkpoint stores. */
void nnrt_augment_format(const nnrt_augment *a, char *buf, size_t cap);
/* The draws of sample `sample` (its index in the training set) in a->epoch. */
nnrt_augment_draw nnrt_augment_draws(const nnrt_augment *a, int64_t sample);
/* img (C, H, W) in place: crop, flip, then jitter (values clamped to [0, 1] as torchvision does for float
   images), each when on. Before any normalization, as torchvision's transforms before ToTensor/Normalize. */
void nnrt_augment_image(const nnrt_augment *a, const nnrt_augment_draw *d, float *img);
/* img (C, H, W) in place: cutout's square set to 0, when on. After normalization, where 0 is the mean. */
void nnrt_augment_erase(const nnrt_augment *a, const nnrt_augment_draw *d, float *img);

#endif
