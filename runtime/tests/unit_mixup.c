/* unit_mixup.c — mixup and CutMix (mixup.c): the mixed batch, CutMix's box and λ and the soft targets for fixed
 * draws, against the NumPy reference (Tests/Fixtures/mixup.json, written by Tests/Reference/reference_mixup.py); the
 * Beta(α, α) sampler's moments; the draws (reproducible, per epoch and step, in range, the switch of both methods);
 * and the usage errors of --mixup and --cutmix. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static float mixed_step_called(nnrt_ctx *ctx, int n, const float *x, const void *y) { return 0; }

static const nnrt_model image_model = {
    .name = "img", .input_dim = 3 * 8 * 10, .output_dim = 4, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1,
    .max_batch = 8, .input_rank = 3, .input_shape = {3, 8, 10}, .train_mixed_step = mixed_step_called,
};
static const nnrt_model flat_model = {
    .name = "flat", .input_dim = 6, .output_dim = 3, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1,
    .max_batch = 8, .train_mixed_step = mixed_step_called,
};

/* The largest |got − want| over n values. */
static double worst_diff(const float *got, const double *want, int n) {
    double w = 0;
    for (int i = 0; i < n; i++) w = fmax(w, fabs((double)got[i] - want[i]));
    return w;
}

/* One mixup or CutMix case of the fixture: the batch and soft targets after nnrt_mix_batch with its draws. */
static int fixture_case(const char *line, double *worst) {
    static double x[4096], want[4096], soft[512], y[64], shape[3], box[4];
    static float xb[4096];
    static int32_t labels[64];
    int cut = strstr(line, "\"kind\": \"cutmix\"") != NULL;
    int n = (int)fixture_num(line, "n"), k = (int)fixture_num(line, "k"), size = fixture_array(line, "x", x, 4096);
    if (fixture_array(line, "y", y, 64) != n || fixture_array(line, "out", want, 4096) != size ||
        fixture_array(line, "soft", soft, 512) != n * k || n <= 0 || size % n) return 0;
    int dim = size / n;
    float t[512];
    nnrt_mix mx = {.on = 1, .k = k, .soft = t};
    nnrt_mix_draw d = {.lam = fixture_num(line, "lam")};
    if (cut) {
        if (fixture_array(line, "shape", shape, 3) != 3 || fixture_array(line, "box", box, 4) != 4) return 0;
        mx.c = (int)shape[0], mx.h = (int)shape[1], mx.w = (int)shape[2];
        d.cutmix = 1;
        nnrt_cutmix_box(mx.h, mx.w, d.lam, (int)fixture_num(line, "cy"), (int)fixture_num(line, "cx"), &d);
        if (d.y0 != (int)box[0] || d.y1 != (int)box[1] || d.x0 != (int)box[2] || d.x1 != (int)box[3]) return 0;
        if (fabs(d.lam - fixture_num(line, "lam_box")) > 1e-12) return 0;
    }
    for (int i = 0; i < size; i++) xb[i] = (float)x[i];
    for (int i = 0; i < n; i++) labels[i] = (int32_t)y[i];
    nnrt_mix_batch(&mx, &d, n, dim, xb, labels);
    *worst = fmax(*worst, fmax(worst_diff(xb, want, size), worst_diff(t, soft, n * k)));
    return 1;
}

static void fixture_cases(void) {
    char *text = read_fixture("mixup.json");
    CHECK("mixup fixture found (Tests/Fixtures/mixup.json)", text != NULL);
    if (!text) return;
    int cases = 0, good = 0;
    double worst = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"kind\": \"mixup\"") && !strstr(line, "\"kind\": \"cutmix\"")) continue;
        cases++;
        good += fixture_case(line, &worst);
    }
    free(text);
    CHECK("mixup and CutMix fixture cases: box, λ, batch and soft targets as the NumPy reference (within 1e-6)",
          cases == 6 && good == cases && worst <= 1e-6);
}

/* Beta(α, α) has mean 1/2 and variance 1/(4(2α + 1)); 20000 draws give them within a few standard errors. */
static void beta_moments(void) {
    const double alphas[] = {0.2, 1.0, 2.5};
    int ok = 1;
    for (int a = 0; a < 3; a++) {
        uint64_t s[4];
        nnrt_rng_seed(s, 5, 99);
        double sum = 0, sq = 0, lo = 1, hi = 0;
        const int N = 20000;
        for (int i = 0; i < N; i++) {
            double v = nnrt_beta_symmetric(s, alphas[a]);
            sum += v, sq += v * v, lo = fmin(lo, v), hi = fmax(hi, v);
        }
        double mean = sum / N, var = sq / N - mean * mean, want = 1 / (4 * (2 * alphas[a] + 1));
        ok &= fabs(mean - 0.5) < 0.01 && fabs(var - want) < 0.05 * want && lo >= 0 && hi <= 1;
    }
    CHECK("Beta(α, α) draws: mean 1/2 and variance 1/(4(2α+1)) within 2 % and 5 % (α = 0.2, 1, 2.5)", ok);
}

static void draws(void) {
    float t[64];
    nnrt_mix both = {.on = 1, .mixup = 0.4, .cutmix = 1.0, .c = 3, .h = 8, .w = 10, .k = 4, .soft = t, .seed = 3, .epoch = 2};
    nnrt_mix_draw a = nnrt_mix_draws(&both, 5), b = nnrt_mix_draws(&both, 5);
    CHECK("mix draws are reproducible for (seed, epoch, step)", memcmp(&a, &b, sizeof a) == 0);
    int cut = 0, differ = 0, in_range = 1;
    for (int s = 0; s < 200; s++) {
        nnrt_mix_draw d = nnrt_mix_draws(&both, s);
        cut += d.cutmix;
        differ |= d.lam != a.lam;
        in_range &= d.lam >= 0 && d.lam <= 1;
        if (d.cutmix) in_range &= 0 <= d.y0 && d.y0 <= d.y1 && d.y1 <= 8 && 0 <= d.x0 && d.x0 <= d.x1 && d.x1 <= 10;
    }
    CHECK("mix draws differ across steps and stay in range", differ && in_range);
    CHECK("with --mixup and --cutmix, about half the batches are CutMix", cut > 70 && cut < 130);
    nnrt_mix other = both;
    other.epoch = 3;
    nnrt_mix_draw c = nnrt_mix_draws(&other, 5);
    CHECK("mix draws differ across epochs", c.lam != a.lam);
    nnrt_mix only = both;
    only.cutmix = 0;
    int none = 0;
    for (int s = 0; s < 50; s++) none += nnrt_mix_draws(&only, s).cutmix;
    CHECK("--mixup alone never draws CutMix", none == 0);
}

static void parse_flat(const void *a) {
    const double *ab = a;
    nnrt_mix x;
    nnrt_mix_parse(ab[0], ab[1], &flat_model, &x);
}
static void parse_hard(const void *a) {
    const double *ab = a;
    nnrt_mix x;
    nnrt_mix_parse(ab[0], ab[1], &fake, &x);
}

static void parse_errors(void) {
    nnrt_mix x;
    nnrt_mix_parse(0, 0, &image_model, &x);
    CHECK("no --mixup or --cutmix: off", !x.on && !x.soft);
    nnrt_mix_parse(0.2, 1.0, &image_model, &x);
    CHECK("--mixup and --cutmix on an image classifier", x.on && x.mixup == 0.2 && x.cutmix == 1.0 && x.h == 8 && x.w == 10 && x.soft);
    free(x.soft);
    nnrt_mix_parse(0.2, 0, &flat_model, &x);
    CHECK("--mixup on feature vectors", x.on && x.h == 0 && x.k == 3);
    free(x.soft);
    static const double cut[2] = {0, 1.0}, mix[2] = {0.4, 0};
    EXPECT_DIE("--cutmix on feature vectors", 2, "--cutmix: model 'flat' takes 6 flat features, not images (C, H, W)", parse_flat, cut);
    EXPECT_DIE("--mixup without a soft-target step", 2, "--mixup: model 'fake' has no soft-target training step", parse_hard, mix);
}

void test_mixup(void) {
    fixture_cases();
    beta_moments();
    draws();
    parse_errors();
}
