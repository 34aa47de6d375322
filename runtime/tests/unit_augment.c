/* unit_augment.c — data augmentation (augment.c): each transform, given its draws, against the NumPy reference's
 * images (Tests/Fixtures/augment.json, written by Tests/Reference/reference_augment.py with the same draws); the
 * draws themselves (reproducible, different across epochs and samples, in range, each augmentation's independent
 * of the others); the batch gather with augmentation (background = foreground, labels kept, eval untouched); and
 * --augment's usage errors. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static void fixture_cases(void) {
    char *text = read_fixture("augment.json");
    CHECK("augment fixture found (Tests/Fixtures/augment.json)", text != NULL);
    if (!text) return;
    int cases = 0, good = 0;
    double worst = 0;
    static double in[4096], want[4096], shape[3];
    static float img[4096];
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"name\"")) continue;
        cases++;
        const char *draw = strstr(line, "\"draw\"");
        int n = fixture_array(line, "input", in, 4096);
        if (fixture_array(line, "shape", shape, 3) != 3 || !draw || n != (int)(shape[0] * shape[1] * shape[2]) ||
            fixture_array(line, "output", want, 4096) != n) continue;
        nnrt_augment a = {.on = 1, .crop = (int)fixture_num(line, "crop"), .flip = (int)fixture_num(line, "flip"),
                          .cutout = (int)fixture_num(line, "cutout"), .jitter = fixture_num(line, "jitter"),
                          .c = (int)shape[0], .h = (int)shape[1], .w = (int)shape[2]};
        nnrt_augment_draw d = {(int)fixture_num(draw, "dy"), (int)fixture_num(draw, "dx"), (int)fixture_num(draw, "flip"),
                               (int)fixture_num(draw, "cy"), (int)fixture_num(draw, "cx"), (int)fixture_num(draw, "contrast_first"),
                               (float)fixture_num(draw, "brightness"), (float)fixture_num(draw, "contrast")};
        for (int i = 0; i < n; i++) img[i] = (float)in[i];
        nnrt_augment_image(&a, &d, img);
        nnrt_augment_erase(&a, &d, img);
        double err = 0;
        for (int i = 0; i < n; i++) err = fmax(err, fabs(img[i] - want[i]));
        worst = fmax(worst, err);
        good += err < 1e-6;
        if (err >= 1e-6) printf("     augment case at '%.60s': max |C - NumPy| = %g\n", line, err);
    }
    free(text);
    printf("     augment: %d fixture cases, max |C - NumPy| = %.3g\n", cases, worst);
    CHECK("augment: every fixture case equals the NumPy reference (max abs error < 1e-6)", cases >= 15 && good == cases);
}

// ----------------------------------------------------------------------------
// the draws

static int same_draw(nnrt_augment_draw a, nnrt_augment_draw b) {
    return a.dy == b.dy && a.dx == b.dx && a.flip == b.flip && a.cy == b.cy && a.cx == b.cx &&
           a.contrast_first == b.contrast_first && a.brightness == b.brightness && a.contrast == b.contrast;
}

static void draws(void) {
    nnrt_augment a = {.on = 1, .crop = 4, .flip = 1, .cutout = 8, .jitter = 0.2, .c = 1, .h = 28, .w = 28, .seed = 42};
    enum { S = 4000 };
    int repro = 1, epoch_differs = 0, seed_differs = 0, in_range = 1, flips = 0, first = 0;
    int crop_seen[9] = {0}, cy_seen[28] = {0};
    for (int64_t s = 0; s < S; s++) {
        a.epoch = 3;
        nnrt_augment_draw d = nnrt_augment_draws(&a, s);
        repro &= same_draw(d, nnrt_augment_draws(&a, s));
        a.epoch = 4;
        epoch_differs += !same_draw(d, nnrt_augment_draws(&a, s));
        a.epoch = 3;
        a.seed = 43;
        seed_differs += !same_draw(d, nnrt_augment_draws(&a, s));
        a.seed = 42;
        in_range &= d.dy >= -4 && d.dy <= 4 && d.dx >= -4 && d.dx <= 4 && d.cy >= 0 && d.cy < 28 && d.cx >= 0 && d.cx < 28 &&
                    d.brightness >= 0.8f && d.brightness <= 1.2f && d.contrast >= 0.8f && d.contrast <= 1.2f;
        crop_seen[d.dy + 4]++;
        cy_seen[d.cy]++;
        flips += d.flip;
        first += d.contrast_first;
    }
    CHECK("augment draws: reproducible for (seed, epoch, sample)", repro);
    CHECK("augment draws: differ across epochs and seeds", epoch_differs == S && seed_differs == S);
    CHECK("augment draws: in range ([-P, P], [0, H), [1-J, 1+J])", in_range);
    int cover = 1;
    for (int i = 0; i < 9; i++) cover &= crop_seen[i] > S / 9 / 2;
    for (int i = 0; i < 28; i++) cover &= cy_seen[i] > S / 28 / 2;
    CHECK("augment draws: every crop offset and cutout row occurs", cover);
    CHECK("augment draws: flip and order each about half the time", abs(flips - S / 2) < S / 20 && abs(first - S / 2) < S / 20);
    // Each augmentation draws from its own word: turning the others off leaves its draws alone.
    nnrt_augment crop_only = a;
    crop_only.flip = crop_only.cutout = 0;
    crop_only.jitter = 0;
    nnrt_augment_draw all = nnrt_augment_draws(&a, 17), one = nnrt_augment_draws(&crop_only, 17);
    CHECK("augment draws: crop's offsets do not depend on the other augmentations",
          all.dy == one.dy && all.dx == one.dx && !one.flip && one.brightness == 1.0f && one.contrast == 1.0f);
}

// ----------------------------------------------------------------------------
// the gather: background equals foreground, labels kept, eval untouched

static void gather(void) {
    enum { R = 50, H = 6, W = 7, D = 2 * H * W, B = 23 };
    static uint8_t pixels[R * D];
    static float fg[B * D], bg[B * D], plain[B * D], want[B * D];
    int32_t labels[R], y_fg[B], y_bg[B];
    int64_t order[B];
    for (int i = 0; i < R * D; i++) pixels[i] = (uint8_t)(i * 37 + 11);
    for (int r = 0; r < R; r++) labels[r] = r % 10;
    for (int b = 0; b < B; b++) order[b] = (b * 11 + 3) % R;
    nnrt_dataset d = {.x = {.dtype = NNRT_U8, .n = R, .dim = D, .data = pixels}, .y = {.dtype = NNRT_I32, .n = R, .dim = 1, .data = labels}};
    nnrt_augment a = {.on = 1, .crop = 2, .flip = 1, .cutout = 3, .jitter = 0.3, .c = 2, .h = H, .w = W, .seed = 9, .epoch = 1};
    nnrt_gather_x_augmented(&d.x, order, B, fg, &a);
    nnrt_gather_y(&d.y, order, B, y_fg);
    nnrt_gather_background(&d, order, B, bg, y_bg, &a);
    nnrt_par_background_finish();
    nnrt_gather_x(&d.x, order, B, plain);
    memcpy(want, plain, sizeof want);
    for (int b = 0; b < B; b++) {  // each row by its own sample index, wherever it sits in the batch
        nnrt_augment_draw dr = nnrt_augment_draws(&a, order[b]);
        nnrt_augment_image(&a, &dr, want + b * D);
        nnrt_augment_erase(&a, &dr, want + b * D);
    }
    CHECK("augmented gather: background equals foreground, x and y", memcmp(fg, bg, sizeof fg) == 0 && memcmp(y_fg, y_bg, sizeof y_fg) == 0);
    CHECK("augmented gather: each row is its sample's transform", memcmp(fg, want, sizeof fg) == 0);
    CHECK("augmented gather: the batch differs from the plain one", memcmp(fg, plain, sizeof fg) != 0);
    int kept = 1;
    for (int b = 0; b < B; b++) kept &= y_bg[b] == labels[order[b]];
    CHECK("augmented gather: labels kept", kept);
    int unit = 1;
    for (int i = 0; i < B * D; i++) unit &= plain[i] == pixels[order[i / D] * D + i % D] / 255.0f;
    CHECK("plain gather (eval, predict) is not augmented", unit);

    // With --normalize: crop, flip and jitter on the scaled image, then the normalization, then cutout (so the
    // erased square is 0, the mean, as torchvision's RandomErasing after Normalize).
    static float fmean[D], fstd[D], normed[B * D];
    for (int i = 0; i < D; i++) { fmean[i] = 0.25f + 0.01f * (float)(i % 7); fstd[i] = 0.5f + 0.02f * (float)(i % 5); }
    nnrt_prep p = {.scale = "auto", .automatic = 1, .mul = 1.0f, .norm = NNRT_NORM_FEATURE, .fmean = fmean, .fstd = fstd};
    nnrt_array xn = d.x;
    xn.prep = &p;
    nnrt_gather_x_augmented(&xn, order, B, normed, &a);
    int ordered = 1, erased = 0;
    for (int b = 0; b < B; b++) {
        float row[D];
        memcpy(row, plain + b * D, sizeof row);
        nnrt_augment_draw dr = nnrt_augment_draws(&a, order[b]);
        nnrt_augment_image(&a, &dr, row);
        for (int i = 0; i < D; i++) row[i] = (row[i] - fmean[i]) / fstd[i];
        nnrt_augment_erase(&a, &dr, row);
        ordered &= memcmp(row, normed + b * D, sizeof row) == 0;
        for (int i = 0; i < D; i++) erased += row[i] == 0.0f;
    }
    CHECK("augmented gather with --normalize: scale, augment, normalize, then cutout", ordered && erased > 0);
}

// ----------------------------------------------------------------------------
// --augment's errors

static const nnrt_model image_model = {
    .name = "img", .input_dim = 3 * 8 * 10, .output_dim = 4, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1,
    .max_batch = 8, .input_rank = 3, .input_shape = {3, 8, 10},
};

static void parse_for(const nnrt_model *m, const char *spec) {
    nnrt_augment a;
    nnrt_augment_parse(spec, m, &a);
}
static void parse(const void *spec) { parse_for(&image_model, spec); }
static void parse_flat(const void *spec) { parse_for(&fake, spec); }

static void parse_errors(void) {
    nnrt_augment a;
    nnrt_augment_parse("jitter:0.2,cutout:8,flip,crop:4", &image_model, &a);
    CHECK("--augment parses in any order", a.on && a.crop == 4 && a.flip && a.cutout == 8 && a.jitter == 0.2 && a.c == 3 && a.h == 8 && a.w == 10);
    nnrt_augment_parse("flip", &image_model, &a);
    CHECK("--augment flip alone", a.on && a.flip && !a.crop && !a.cutout && a.jitter == 0);
    nnrt_augment_parse("none", &fake, &a);
    CHECK("--augment none: off, on any model", !a.on && !a.crop && !a.flip);
    char text[96], err[256];
    nnrt_augment_parse("jitter:0.2,cutout:8,flip,crop:4", &image_model, &a);
    nnrt_augment_format(&a, text, sizeof text);
    nnrt_augment b;
    int back = nnrt_augment_parse_checked(text, &image_model, &b, err, sizeof err);
    CHECK("--augment's stored form: canonical order, shortest numbers, parses back to the same list",
          strcmp(text, "crop:4,flip,cutout:8,jitter:0.2") == 0 && back && b.on && b.crop == 4 && b.flip && b.cutout == 8 &&
          b.jitter == 0.2);
    a.jitter = 0.1 + 0.2;  // not the double nearest 0.3: 17 digits
    nnrt_augment_format(&a, text, sizeof text);
    back = nnrt_augment_parse_checked(text, &image_model, &b, err, sizeof err);
    CHECK("--augment's stored form keeps every bit of J", back && b.jitter == a.jitter && strstr(text, "jitter:0.30000000000000004"));
    a = (nnrt_augment){0};
    nnrt_augment_format(&a, text, sizeof text);
    CHECK("--augment's stored form of nothing is none", strcmp(text, "none") == 0);
    back = nnrt_augment_parse_checked("crop:99", &image_model, &b, err, sizeof err);
    CHECK("a bad list, checked: 0 and the reason, not an exit",
          !back && !b.on && strcmp(err, "crop:P expects the padding P, an integer in [1, 8] (the image's shorter side), got '99'") == 0);
    EXPECT_DIE("--augment none,flip", 2, "--augment: unknown augmentation 'none' (expected crop:P, flip, cutout:S or jitter:J; or none alone)", parse, "none,flip");
    EXPECT_DIE("--augment crop:-1", 2, "--augment: crop:P expects the padding P, an integer in [1, 8] (the image's shorter side), got '-1'", parse, "crop:-1");
    EXPECT_DIE("--augment crop:9", 2, "got '9'", parse, "crop:9");
    EXPECT_DIE("--augment crop", 2, "crop:P expects the padding P", parse, "crop");
    EXPECT_DIE("--augment cutout:0", 2, "--augment: cutout:S expects the side S of the square, an integer in [1, 8]", parse, "cutout:0");
    EXPECT_DIE("--augment jitter:2", 2, "--augment: jitter:J expects J, a number in (0, 1] (factors in [1-J, 1+J]), got '2'", parse, "jitter:2");
    EXPECT_DIE("--augment jitter:0", 2, "got '0'", parse, "jitter:0");
    EXPECT_DIE("--augment jitter:nan", 2, "got 'nan'", parse, "jitter:nan");
    EXPECT_DIE("--augment unknown", 2, "--augment: unknown augmentation 'rotate' (expected crop:P, flip, cutout:S or jitter:J; or none alone)", parse, "flip,rotate:10");
    EXPECT_DIE("--augment duplicate", 2, "--augment: 'flip' is given twice", parse, "flip,crop:2,flip");
    EXPECT_DIE("--augment flip:1", 2, "--augment: flip takes no value", parse, "flip:1");
    EXPECT_DIE("--augment empty item", 2, "--augment: empty item in 'crop:2,,flip'", parse, "crop:2,,flip");
    EXPECT_DIE("--augment on a flat model", 2, "--augment: model 'fake' takes 3 flat features, not images (C, H, W)", parse_flat, "flip");
}

void test_augment(void) {
    fixture_cases();
    draws();
    gather();
    parse_errors();
}

// ----------------------------------------------------------------------------
// show-batch's grid: values clamped and scaled, not normalized per tile; white separators

void test_batch_grid(void) {
    float x[2 * 3 * 2 * 2];  // two RGB images of 2 x 2
    for (int i = 0; i < 24; i++) x[i] = (float)i / 20.0f - 0.1f;  // -0.1 .. 1.05: both clamps occur
    nnrt_filter_grid g = nnrt_batch_grid_make(x, 2, 3, 2, 2);
    // zoom 32 (64 / 2): tiles of 64 x 64, two columns, one row
    CHECK("batch grid: size", g.zoom == 32 && g.cols == 2 && g.rows == 1 && g.width == 2 * 65 + 1 && g.height == 66 && g.channels == 3);
    int ok = 1;
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 2; y++)
                for (int xx = 0; xx < 2; xx++) {
                    float v = x[((i * 3 + c) * 2 + y) * 2 + xx];
                    uint8_t want = (uint8_t)lrintf((v < 0 ? 0 : v > 1 ? 1 : v) * 255.0f);
                    int py = 1 + y * 32 + 31, px = 1 + i * 65 + xx * 32 + 5;  // a pixel inside the magnified one
                    ok &= g.pixels[((size_t)py * g.width + px) * 3 + c] == want;
                }
    CHECK("batch grid: pixels are the clamped values x 255", ok);
    CHECK("batch grid: first pixel clamps -0.1 to 0, a separator is white",
          g.pixels[((size_t)1 * g.width + 1) * 3] == 0 && g.pixels[((size_t)1 * g.width + 65) * 3] == 255 && g.pixels[0] == 255);
    free(g.pixels);
}
