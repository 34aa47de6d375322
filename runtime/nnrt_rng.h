/* nnrt_rng.h — random numbers (rng.c): xoshiro256** seeded through splitmix64, one stream per consumer. */
#ifndef NNRT_RNG_H
#define NNRT_RNG_H

#include <stdint.h>

/* Seeds s[4] from (seed, stream); different streams give independent sequences. */
void nnrt_rng_seed(uint64_t s[4], uint64_t seed, uint64_t stream);
/* Seeds s[4] from (seed, stream) and two counters, e.g. (epoch, sample): a stream per item, so that what an item
   draws does not depend on the order items are visited in, or on which thread visits them. */
void nnrt_rng_seed_at(uint64_t s[4], uint64_t seed, uint64_t stream, uint64_t i, uint64_t j);
uint64_t nnrt_rng_next(uint64_t s[4]);
double nnrt_rng_uniform(uint64_t s[4]);          /* [0, 1), 53 random bits */
double nnrt_rng_normal(uint64_t s[4]);           /* N(0, 1) */
uint64_t nnrt_rng_below(uint64_t s[4], uint64_t n);  /* uniform in [0, n), unbiased; n > 0 */
void nnrt_rng_shuffle(uint64_t s[4], int64_t *a, int64_t n);  /* Fisher–Yates */

/* The streams nnrt_main draws from, so that e.g. changing --no-shuffle leaves the init alone. */
enum { NNRT_STREAM_INIT = 1, NNRT_STREAM_SHUFFLE = 2, NNRT_STREAM_MODEL = 3, NNRT_STREAM_GRADCHECK = 4, NNRT_STREAM_VAL = 5,
       NNRT_STREAM_SEARCH = 6, NNRT_STREAM_AUGMENT = 7, NNRT_STREAM_MIX = 8 /* --mixup/--cutmix, per (epoch, step) */,
       NNRT_STREAM_MAXIMIZE = 9 };

#endif
