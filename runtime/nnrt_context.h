/* nnrt_context.h — the model's context (context.c: the arenas allocated once, parameter init, the model's tables
 * checked) and its hyperparameters by name (hparams.c). Below the commands and the CLI; above io and rng. */
#ifndef NNRT_CONTEXT_H
#define NNRT_CONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt_model.h"

// ----------------------------------------------------------------------------
// the context (context.c)

/* Allocates params/grads/state/arena for m (zeroed, 64-byte aligned); ctx->hp from hp (n_hparams values; NULL:
   the model's defaults) and ctx->rng from the NNRT_STREAM_MODEL stream of seed. */
void nnrt_ctx_init(nnrt_ctx *ctx, const nnrt_model *m, const double *hp, uint64_t seed);
void nnrt_ctx_free(nnrt_ctx *ctx);
/* Fills every parameter per its init rule from the NNRT_STREAM_INIT stream of seed. */
void nnrt_init_params(const nnrt_model *m, float *params, uint64_t seed);
/* Dies unless the model's sizes and tables are consistent: the parts of the contract a miscompiled model could
   get wrong, checked before they are trusted. */
void nnrt_check_model(const nnrt_model *m);
/* In-place softmax of each row of z (n, c), computed stably (max subtracted). */
void nnrt_softmax_rows(float *z, int64_t n, int c);

// ----------------------------------------------------------------------------
// hyperparameters by name (hparams.c)

/* The values a number takes: lo..hi, each end included unless open. */
typedef struct {
    double lo, hi;
    int lo_open, hi_open;
    const char *words;  // how an error states the upper bound ("a fraction between 0 and 1"), or NULL
} nnrt_range;
int nnrt_range_contains(const nnrt_range *r, double x);
/* "[1, 1000000000]", "(0, 1)", "[0, inf)". */
void nnrt_range_str(const nnrt_range *r, char *buf, size_t cap);
/* A hyperparameter's name as its flag spells it: "weight_decay" → "weight-decay". */
void nnrt_flag_spelling(const char *name, char *out, size_t cap);
/* Index of the model's hyperparameter spelled `name` on the command line (dashes: "weight-decay"), or -1. */
int nnrt_find_hparam(const nnrt_model *m, const char *name);
/* 1 when x is a value hyperparameter i takes (a table of ranges, by name); range gets it as "[0, inf)". */
int nnrt_hparam_in_range(const nnrt_model *m, int i, double x, char *range, size_t cap);

#endif
