/* unit_train.c — unit tests of what training draws on: the random streams, the shuffle, parameter init,
 * the weights' moving average and softmax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

void test_rng(void) {
    uint64_t a[4], b[4], c[4];
    nnrt_rng_seed(a, 0, 0);
    CHECK("splitmix64 seeding", a[0] == 0xE220A8397B1DCDAFull && a[1] == 0x6E789E6AA1B965F4ull && a[2] == 0x06C45D188009454Full);
    nnrt_rng_seed(a, 42, 1);
    nnrt_rng_seed(b, 42, 1);
    nnrt_rng_seed(c, 42, 2);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = nnrt_rng_next(a), y = nnrt_rng_next(b), z = nnrt_rng_next(c);
        same &= x == y;
        differ += x != z;
    }
    CHECK("rng deterministic per seed", same);
    CHECK("rng streams independent", differ == 1000);

    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    int counts[7] = {0};
    enum { M = 200000 };
    for (int i = 0; i < M; i++) {
        double u = nnrt_rng_uniform(a);
        lo = fmin(lo, u); hi = fmax(hi, u);
        counts[nnrt_rng_below(a, 7)]++;
        double g = nnrt_rng_normal(a);
        sum += g; sum2 += g * g;
    }
    CHECK("uniform in [0,1)", lo >= 0 && hi < 1 && lo < 1e-3 && hi > 1 - 1e-3);
    CHECK("normal mean ~0", fabs(sum / M) < 0.01);
    CHECK("normal var ~1", fabs(sum2 / M - 1) < 0.02);
    int fair = 1;
    for (int k = 0; k < 7; k++) fair &= fabs(counts[k] / (double)M - 1.0 / 7) < 0.005;
    CHECK("below(7) uniform", fair);
    CHECK("below(1) is 0", nnrt_rng_below(a, 1) == 0);
}

void test_shuffle(void) {
    int64_t p[100], q[100], r[100];
    uint64_t a[4], b[4], c[4];
    nnrt_rng_seed(a, 5, NNRT_STREAM_SHUFFLE);
    nnrt_rng_seed(b, 5, NNRT_STREAM_SHUFFLE);
    nnrt_rng_seed(c, 6, NNRT_STREAM_SHUFFLE);
    for (int i = 0; i < 100; i++) p[i] = q[i] = r[i] = i;
    nnrt_rng_shuffle(a, p, 100);
    nnrt_rng_shuffle(b, q, 100);
    nnrt_rng_shuffle(c, r, 100);
    int seen[100] = {0}, perm = 1, moved = 0;
    for (int i = 0; i < 100; i++) { perm &= p[i] >= 0 && p[i] < 100 && !seen[p[i]]; if (p[i] >= 0 && p[i] < 100) seen[p[i]] = 1; moved += p[i] != i; }
    CHECK("shuffle is a permutation", perm && moved > 80);
    CHECK("shuffle deterministic per seed", memcmp(p, q, sizeof p) == 0);
    CHECK("shuffle depends on seed", memcmp(p, r, sizeof p) != 0);
}

void test_init(void) {
    float *w = calloc(fake.params_numel, sizeof(float)), *v = calloc(fake.params_numel, sizeof(float));
    nnrt_init_params(&fake, w, 1);
    nnrt_init_params(&fake, v, 1);
    CHECK("init deterministic", memcmp(w, v, fake.params_numel * sizeof(float)) == 0);
    int in_range = 1;
    for (int i = 0; i < 12; i++) in_range &= w[i] >= -0.5f && w[i] <= 0.5f;
    CHECK("init uniform range", in_range && w[0] != w[1]);
    CHECK("init const", w[12] == 0.25f && w[15] == 0.25f);
    double s = 0, s2 = 0;
    for (int i = 16; i < 4016; i++) { s += w[i]; s2 += (double)w[i] * w[i]; }
    double mean = s / 4000, sd = sqrt(s2 / 4000 - mean * mean);
    CHECK("init normal mean/std", fabs(mean - 2) < 0.2 && fabs(sd - 3) < 0.2);
    CHECK("init zeros", w[4016] == 0);
    nnrt_init_params(&fake, v, 2);
    CHECK("init depends on seed", w[0] != v[0]);
    free(w); free(v);
}

/* nnrt_ema_update (train --ema): the first update copies; later ones move towards the weights, ema ← D·ema +
 * (1 − D)·p (torch's float lerp, in both of its forms: weight 1 − D below 0.5, and not), for parameters and buffers
 * alike, while a step counter is copied. Against the recursion in double over 50 updates: within 1e-5 relative
 * (the float lerp's rounding; a trainer built with -march=native may contract it into an FMA). */
void test_ema(void) {
    static const nnrt_param ps[] = {
        {"0.weight", 1, {3}, 0, 3, NNRT_INIT_ZEROS, 0, 0, 1, 0},
        {"1.running_mean", 1, {2}, 3, 2, NNRT_INIT_ZEROS, 0, 0, 0, 0},
        {"1.num_batches_tracked", 0, {0}, 5, 1, NNRT_INIT_ZEROS, 0, 0, 0, 1},
    };
    static const nnrt_model em = {.name = "ema", .params_numel = 6, .n_params = 3, .params = ps};
    const double decays[] = {0.9, 0.3, 0.0};
    for (int d = 0; d < 3; d++) {
        double decay = decays[d], ref[6] = {0};
        float ema[6] = {0}, p[6];
        int first_copies = 1, close = 1, counter = 1;
        for (int t = 0; t < 50; t++) {
            for (int k = 0; k < 6; k++) p[k] = k == 5 ? (float)(t + 1) : (float)sin(0.3 * t + k) * (float)(k + 1);
            nnrt_ema_update(&em, ema, p, decay, t == 0);
            if (t == 0) first_copies = memcmp(ema, p, sizeof p) == 0;
            counter &= ema[5] == p[5];
            for (int k = 0; k < 5; k++) {
                ref[k] = t == 0 ? p[k] : decay * ref[k] + (1 - decay) * p[k];
                close &= fabs(ema[k] - ref[k]) <= 1e-5 * fmax(1, fabs(ref[k]));
            }
        }
        char name[96];
        snprintf(name, sizeof name, "ema decay %g: the first update copies, the counter is copied", decay);
        CHECK(name, first_copies && counter);
        snprintf(name, sizeof name, "ema decay %g: the double recursion within 1e-5", decay);
        CHECK(name, close && (decay > 0 ? ema[0] != p[0] && ema[3] != p[3] : ema[0] == p[0]));
    }
}

/* nnrt_softmax_rows: stable for a large logit, rows sum to 1. */
void test_softmax(void) {
    float z[4] = {1000, 0, -1, 1};
    nnrt_softmax_rows(z, 2, 2);
    CHECK("softmax stable", z[0] == 1 && z[1] == 0 && fabsf(z[2] + z[3] - 1) < 1e-6f && z[3] > z[2]);
}
