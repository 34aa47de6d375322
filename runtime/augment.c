/* augment.c — data augmentation of training images: random crop with zero padding, horizontal flip, cutout and
 * brightness/contrast jitter, with torchvision's semantics (RandomCrop(size, padding=P), RandomHorizontalFlip(),
 * ColorJitter(brightness=J, contrast=J)) and DeVries & Taylor's cutout (2017). The loader applies them to each
 * training batch as it gathers it (data.c), never to evaluation or predict.
 *
 * A sample's draws come from its own generator, nnrt_rng_seed_at(seed, NNRT_STREAM_AUGMENT, epoch, sample): a pure
 * function of (seed, epoch, sample index), so neither the thread that gathers a row nor the batch it lands in
 * changes what happens to it. Each draw takes one fixed word of that generator (an integer below n is the high
 * word of word·n, Lemire's method without the rejection step: its bias, n / 2^64, is far below anything a run
 * could show). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_augment.h"
#include "nnrt_io.h"
#include "nnrt_rng.h"

// ----------------------------------------------------------------------------
// parsing --augment

static const char *const USAGE = "crop:P, flip, cutout:S or jitter:J";

/* The integer value v of item `name:X`, in [1, hi] (the image's shorter side); -1 with the error in err. */
static int int_value(const char *name, const char *v, int hi, const char *what, char *err, size_t cap) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < 1 || x > hi) {
        snprintf(err, cap, "%s expects %s, an integer in [1, %d] (the image's shorter side), got '%s'", name, what, hi, v ? v : "");
        return -1;
    }
    return (int)x;
}

/* The list parsed into a; 0 with the reason in err (which the callers prefix with the flag or the file). */
static int parse_list(const char *spec, const nnrt_model *m, nnrt_augment *a, char *err, size_t cap) {
    memset(a, 0, sizeof *a);
    if (strcmp(spec, "none") == 0) return 1;  // off: what a resumed run gives to drop its checkpoint's list
    if (m->input_rank != 3) {
        snprintf(err, cap, "model '%s' takes %d flat features, not images (C, H, W); augmentation applies to image models "
                 "only", m->name, m->input_dim);
        return 0;
    }
    a->c = m->input_shape[0];
    a->h = m->input_shape[1];
    a->w = m->input_shape[2];
    int side = a->h < a->w ? a->h : a->w;
    size_t len = strlen(spec) + 1;
    char *copy = nnrt_malloc(len), *rest = copy;
    memcpy(copy, spec, len);
    int seen[4] = {0, 0, 0, 0}, ok = 1;
    while (ok) {
        char *item = rest, *comma = strchr(rest, ',');
        if (comma) *comma = 0;
        char *v = strchr(item, ':');
        if (v) *v++ = 0;
        static const char *const names[4] = {"crop", "flip", "cutout", "jitter"};
        int k = 0;
        while (k < 4 && strcmp(item, names[k]) != 0) k++;
        if (!*item) {
            snprintf(err, cap, "empty item in '%s' (expected a comma-separated list of %s)", spec, USAGE);
            ok = 0;
        } else if (k == 4) {
            snprintf(err, cap, "unknown augmentation '%s' (expected %s; or none alone)", item, USAGE);
            ok = 0;
        } else if (seen[k]++) {
            snprintf(err, cap, "'%s' is given twice", item);
            ok = 0;
        } else if (k == 0) {
            ok = (a->crop = int_value("crop:P", v, side, "the padding P", err, cap)) > 0;
        } else if (k == 2) {
            ok = (a->cutout = int_value("cutout:S", v, side, "the side S of the square", err, cap)) > 0;
        } else if (k == 1) {
            if (v) snprintf(err, cap, "flip takes no value (it mirrors with probability 0.5), got 'flip:%s'", v);
            ok = !v;
            a->flip = 1;
        } else {
            char *end;
            double j = v ? strtod(v, &end) : NAN;
            ok = v && *v && !*end && j > 0 && j <= 1;
            if (!ok) snprintf(err, cap, "jitter:J expects J, a number in (0, 1] (factors in [1-J, 1+J]), got '%s'", v ? v : "");
            a->jitter = j;
        }
        if (!comma) break;
        rest = comma + 1;
    }
    free(copy);
    a->on = ok;
    return ok;
}

void nnrt_augment_parse(const char *spec, const nnrt_model *m, nnrt_augment *a) {
    char err[256];
    if (!parse_list(spec, m, a, err, sizeof err)) nnrt_usage_die("--augment: %s", err);
}

int nnrt_augment_parse_checked(const char *spec, const nnrt_model *m, nnrt_augment *a, char *err, size_t cap) {
    return parse_list(spec, m, a, err, cap);
}

/* x as the shortest of %.15g and %.17g that reads back as x. */
static void print_number(char *buf, size_t cap, double x) {
    snprintf(buf, cap, "%.15g", x);
    if (strtod(buf, NULL) != x) snprintf(buf, cap, "%.17g", x);
}

void nnrt_augment_format(const nnrt_augment *a, char *buf, size_t cap) {
    char jitter[32];
    print_number(jitter, sizeof jitter, a->jitter);
    size_t n = 0;
    buf[0] = 0;
#define ITEM(on, ...) if ((on) && n < cap) n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__)
    ITEM(a->crop, "%scrop:%d", n ? "," : "", a->crop);
    ITEM(a->flip, "%sflip", n ? "," : "");
    ITEM(a->cutout, "%scutout:%d", n ? "," : "", a->cutout);
    ITEM(a->jitter > 0, "%sjitter:%s", n ? "," : "", jitter);
#undef ITEM
    if (!n) snprintf(buf, cap, "none");
}

// ----------------------------------------------------------------------------
// the draws

static int below(uint64_t word, uint64_t n) { return (int)(((unsigned __int128)word * n) >> 64); }
static double unit(uint64_t word) { return (double)(word >> 11) * 0x1.0p-53; }

nnrt_augment_draw nnrt_augment_draws(const nnrt_augment *a, int64_t sample) {
    uint64_t s[4], w[8];
    nnrt_rng_seed_at(s, a->seed, NNRT_STREAM_AUGMENT, (uint64_t)a->epoch, (uint64_t)sample);
    for (int k = 0; k < 8; k++) w[k] = nnrt_rng_next(s);
    nnrt_augment_draw d = {0, 0, 0, 0, 0, 0, 1.0f, 1.0f};
    if (a->crop) {  // torchvision draws the crop's corner i in [0, 2P]; dy = i − P
        d.dy = below(w[0], 2 * (uint64_t)a->crop + 1) - a->crop;
        d.dx = below(w[1], 2 * (uint64_t)a->crop + 1) - a->crop;
    }
    if (a->flip) d.flip = unit(w[2]) < 0.5;  // torch.rand(1) < p
    if (a->cutout) {
        d.cy = below(w[3], (uint64_t)a->h);
        d.cx = below(w[4], (uint64_t)a->w);
    }
    if (a->jitter > 0) {
        d.contrast_first = (int)(w[5] >> 63);
        d.brightness = (float)(1 - a->jitter + 2 * a->jitter * unit(w[6]));
        d.contrast = (float)(1 - a->jitter + 2 * a->jitter * unit(w[7]));
    }
    return d;
}

// ----------------------------------------------------------------------------
// the transforms

/* Row y of every channel ← input row y + dy shifted by dx (zeros outside), then mirrored. In place: rows are
   visited so that each reads a row not yet written (ascending when dy ≥ 0, else descending). */
static void crop_flip(const nnrt_augment *a, const nnrt_augment_draw *d, float *img) {
    int H = a->h, W = a->w, dx = d->dx;
    for (int c = 0; c < a->c; c++) {
        float *ch = img + (size_t)c * H * W;
        for (int k = 0; k < H; k++) {
            int y = d->dy >= 0 ? k : H - 1 - k, sy = y + d->dy;
            float *row = ch + (size_t)y * W;
            if (sy < 0 || sy >= H || dx >= W || dx <= -W) {
                memset(row, 0, sizeof(float) * (size_t)W);
            } else if (dx >= 0) {  // row[x] = src[x + dx] for x < W − dx
                memmove(row, ch + (size_t)sy * W + dx, sizeof(float) * (size_t)(W - dx));
                memset(row + W - dx, 0, sizeof(float) * (size_t)dx);
            } else {               // row[x] = src[x + dx] for x ≥ −dx
                memmove(row - dx, ch + (size_t)sy * W, sizeof(float) * (size_t)(W + dx));
                memset(row, 0, sizeof(float) * (size_t)-dx);
            }
            if (d->flip)
                for (int i = 0, j = W - 1; i < j; i++, j--) { float t = row[i]; row[i] = row[j]; row[j] = t; }
        }
    }
}

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

/* torchvision's adjust_brightness on a float image: _blend(img, 0, f) = clamp(f·img, 0, 1). */
static void brightness(float *img, size_t n, float f) {
    for (size_t i = 0; i < n; i++) img[i] = clamp01(f * img[i]);
}

/* torchvision's adjust_contrast: _blend(img, m, f) = clamp(f·img + (1 − f)·m, 0, 1), m the mean of the image's
   grayscale (0.2989 R + 0.587 G + 0.114 B) for three channels, else of all its values (torchvision refuses channel
   counts other than 1 and 3). The mean is summed in double. */
static void contrast(const nnrt_augment *a, float *img, float f) {
    size_t hw = (size_t)a->h * a->w, n = hw * a->c;
    double sum = 0;
    if (a->c == 3)
        for (size_t i = 0; i < hw; i++) sum += 0.2989f * img[i] + 0.587f * img[hw + i] + 0.114f * img[2 * hw + i];
    else
        for (size_t i = 0; i < n; i++) sum += img[i];
    float m = (float)(sum / (double)(a->c == 3 ? hw : n)), add = (1.0f - f) * m;
    for (size_t i = 0; i < n; i++) img[i] = clamp01(f * img[i] + add);
}

void nnrt_augment_image(const nnrt_augment *a, const nnrt_augment_draw *d, float *img) {
    if (a->crop || d->flip) crop_flip(a, d, img);
    if (a->jitter > 0) {
        size_t n = (size_t)a->c * a->h * a->w;
        if (d->contrast_first) contrast(a, img, d->contrast);
        brightness(img, n, d->brightness);
        if (!d->contrast_first) contrast(a, img, d->contrast);
    }
}

/* The square [cy − S/2, cy − S/2 + S) × [cx − S/2, cx − S/2 + S) clipped to the image, on every channel. */
void nnrt_augment_erase(const nnrt_augment *a, const nnrt_augment_draw *d, float *img) {
    if (!a->cutout) return;
    int y0 = d->cy - a->cutout / 2, x0 = d->cx - a->cutout / 2, y1 = y0 + a->cutout, x1 = x0 + a->cutout;
    if (y0 < 0) y0 = 0;
    if (x0 < 0) x0 = 0;
    if (y1 > a->h) y1 = a->h;
    if (x1 > a->w) x1 = a->w;
    for (int c = 0; c < a->c; c++)
        for (int y = y0; y < y1; y++) memset(img + ((size_t)c * a->h + y) * a->w + x0, 0, sizeof(float) * (size_t)(x1 - x0));
}
