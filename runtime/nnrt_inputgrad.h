/* nnrt_inputgrad.h — the gradient of one unit with respect to the model's input (inputgrad.c), what saliency.c and
 * maximize.c are built on: the unit a command line names, the seeds the generated entry point `input_grad` takes
 * (nnrt_model.h), and the pictures of an input-shaped array. */
#ifndef NNRT_INPUTGRAD_H
#define NNRT_INPUTGRAD_H

#include <stdint.h>

#include "nnrt_data.h"
#include "nnrt_model.h"

/* A unit: one feature of a layer's output, or one channel of a (C, H, W) output, whose value is then the channel's
   mean over H × W. */
typedef struct {
    int layer;              // index into model->layer_outputs
    int index;              // the feature, or the channel
    int channel;            // 1 when index is a channel
    char text[80];          // as the command line gave it, for messages
} nnrt_unit;

/* --unit's text: "C" (class C: unit C of the model's output) or "LAYER:INDEX", LAYER being a layer output's name
   (h8, h3_0) or its module's index path (8, 3.0). A mistake is a usage error naming the flag (exit 2): an unknown
   layer lists the model's layers, an index out of range gives the range. */
nnrt_unit nnrt_unit_parse(const nnrt_model *m, const char *text);
/* The model output's unit C (saliency --class C); out of range, a usage error naming `flag`. */
nnrt_unit nnrt_unit_output(const nnrt_model *m, int64_t c, const char *flag);
/* "class 3 (the output h4)", "unit 17 of h8 (128)", "channel 5 of h4 (64, 14, 14), its mean". */
void nnrt_unit_describe(const nnrt_model *m, const nnrt_unit *u, char *buf, size_t cap);

/* What the input-gradient entry point needs for one sample: its arena and a seed per layer output, all zero but
   the unit's (a one-hot, or 1/(H·W) over a channel's plane). */
typedef struct {
    const nnrt_model *m;
    void *arena;            // input_grad_arena_bytes
    float *seed, *zeros;    // (the unit's layer's numel), (the largest numel)
    const float **seeds;    // (n_layer_outputs)
} nnrt_input_grad;

void nnrt_input_grad_init(nnrt_input_grad *g, const nnrt_model *m, const nnrt_unit *u);
/* The unit's value at one sample x (input_dim), and its gradient with respect to x into dx (input_dim), in eval
   mode with the weights in ctx->params. */
float nnrt_input_grad_run(nnrt_input_grad *g, nnrt_ctx *ctx, const float *x, float *dx);
void nnrt_input_grad_free(nnrt_input_grad *g);

/* The input as an image (C, H, W): an image model's input shape, or (1, s, s) for s² features (784 → 28 × 28).
   0 when the input is neither. */
int nnrt_input_image(const nnrt_model *m, int shape[3]);
/* x (input_dim), a model input, back in the scaled units before --normalize (x·std + mean per feature). */
void nnrt_unnormalize(const nnrt_prep *p, const nnrt_model *m, float *x);

/* A row of tiles of one (C, H, W) size, magnified to about 112 pixels a side, with the filter grid's 1-pixel white
   separators: each tile an image normalized on its own to [0, 255] (gray for C ≠ 3: one tile per channel; RGB for
   C = 3), or a heat map of non-negative values over (H, W) scaled by their maximum (black, red, yellow, white). */
typedef struct {
    int C, H, W, zoom, channels;   // channels of the picture: 3 when it has a heat map or an RGB tile
    int tiles, next;               // tiles in all; the next one to draw
    int width, height;
    uint8_t *pixels;               // (height, width, channels)
} nnrt_picture;

nnrt_picture nnrt_picture_new(int C, int H, int W, int images, int heat_maps);
void nnrt_picture_image(nnrt_picture *p, const float *x);      // the next tile(s): x (C, H, W)
void nnrt_picture_heat(nnrt_picture *p, const float *h);       // the next tile: h (H, W), ≥ 0
void nnrt_picture_free(nnrt_picture *p);

/* Writes a (1, n) float32 .npy (the raw values saliency and maximize write for F.npy). */
void nnrt_write_row_npy(const char *path, const float *x, int64_t n);
/* Whether path ends in .npy. */
int nnrt_is_npy(const char *path);

#endif
