/* rng.c — the runtime's random numbers.
 *
 * Generator: xoshiro256** (Blackman & Vigna, 2018): 256 bits of state, period 2^256 − 1, passes
 * BigCrush, a few cycles per number. Its state is seeded by running splitmix64 from
 * seed + stream·φ (φ = 0x9E3779B97F4A7C15), which turns nearby seeds into unrelated states and never
 * yields the all-zero state. Each consumer (init, shuffle, the model's dropout, gradcheck) gets its own
 * stream of the user's --seed, so that changing one of them does not perturb the others.
 */
#include <math.h>

#include "nnrt_rng.h"

// ----------------------------------------------------------------------------
// splitmix64 and xoshiro256**

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void nnrt_rng_seed(uint64_t s[4], uint64_t seed, uint64_t stream) {
    uint64_t x = seed + stream * 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

/* splitmix64's finalizer alone: a bijection of 64-bit words that spreads every input bit over the output. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A generator keyed by (seed, stream, i, j), counter-based: the key is a chain of bijections, each step xor-ing in
   one counter, so that nearby counters (sample 7 and 8, epoch 0 and 1) give unrelated states. */
void nnrt_rng_seed_at(uint64_t s[4], uint64_t seed, uint64_t stream, uint64_t i, uint64_t j) {
    uint64_t x = mix64(seed + stream * 0x9E3779B97F4A7C15ull);
    x = mix64(x ^ i) + 0x9E3779B97F4A7C15ull;
    x = mix64(x ^ j);
    for (int k = 0; k < 4; k++) s[k] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t nnrt_rng_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

// ----------------------------------------------------------------------------
// distributions

double nnrt_rng_uniform(uint64_t s[4]) {
    return (double)(nnrt_rng_next(s) >> 11) * 0x1.0p-53;
}

/* Box–Muller, one value per call (no cached second value, so the state is just s). */
double nnrt_rng_normal(uint64_t s[4]) {
    double u1 = 1.0 - nnrt_rng_uniform(s);  // (0, 1]: log is finite
    double u2 = nnrt_rng_uniform(s);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Lemire's multiply-shift with rejection: exactly uniform in [0, n). */
uint64_t nnrt_rng_below(uint64_t s[4], uint64_t n) {
    unsigned __int128 m = (unsigned __int128)nnrt_rng_next(s) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        uint64_t threshold = (0 - n) % n;
        while (low < threshold) {
            m = (unsigned __int128)nnrt_rng_next(s) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void nnrt_rng_shuffle(uint64_t s[4], int64_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nnrt_rng_below(s, (uint64_t)i + 1);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
