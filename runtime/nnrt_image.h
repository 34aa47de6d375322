/* nnrt_image.h — pictures from the runtime: PNG output through libpng (png.c) and the grid of filters the filters
 * command draws (filters.c). */
#ifndef NNRT_IMAGE_H
#define NNRT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_model.h"

/* Writes an 8-bit image to path as a PNG, atomically (temp file, fsync, rename): pixels (height, width, channels)
   row-major, channels 1 (gray) or 3 (RGB). Dies naming the file when it cannot be written or is too large. */
void nnrt_png_write(const char *path, int width, int height, int channels, const uint8_t *pixels);
/* The same PNG in memory (malloc'ed, *len bytes; free() it), for a data URI; `what` names it in errors. */
uint8_t *nnrt_png_encode(const char *what, int width, int height, int channels, const uint8_t *pixels, size_t *len);

/* A grid of image tiles, each drawn from one filter (C, h, w) normalized on its own to [0, 255], magnified
   `zoom` times, with a 1-pixel white separator between tiles and around the grid. C of 1 or 3 is one gray or
   RGB tile per filter, in `cols` columns; any other C is one row per filter, a gray tile per channel. */
typedef struct {
    int width, height, channels;   // channels of the image: 1 or 3
    int rows, cols, zoom;
    uint8_t *pixels;               // (height, width, channels); free() it
} nnrt_filter_grid;

/* The grid of n filters (n, C, h, w) row-major; zoom = max(1, 28 / max(h, w)), cols = ceil(sqrt(n)) for C 1 or 3. */
nnrt_filter_grid nnrt_filter_grid_make(const float *w, int n, int C, int h, int w_);
/* The parameter the filters command draws, with its filters' shape (n, C, h, w): the first 4-d parameter (a Conv2d
   weight), else the first 2-d one on the input (a Linear weight) read as the input image; NULL when there is none
   (why says so). */
const nnrt_param *nnrt_filters_param(const nnrt_model *m, int shape[4], char *why, size_t cap);

/* The grid of n images (n, C, H, W) row-major, C 1 or 3, values clamped to [0, 1] and scaled to [0, 255] (not
   normalized per tile: a brightness change must show), zoom = max(1, 64 / max(H, W)), cols = ceil(sqrt(n)), the
   separators of the filter grid (show_batch.c). */
nnrt_filter_grid nnrt_batch_grid_make(const float *x, int n, int C, int H, int W);

#endif
