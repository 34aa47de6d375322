/* unit_image.c — pictures: PNGs written by png.c read back with libpng's own reader, and the filter grid's layout,
 * normalization and separators (filters.c). */
#define _POSIX_C_SOURCE 200809L
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static void png_zero_width(const void *path) { uint8_t px = 0; nnrt_png_write(path, 0, 1, 1, &px); }
static void grid_too_large(const void *arg) {
    (void)arg;
    static float w[2] = {0, 1};
    nnrt_filter_grid_make(w, 1, 1, 1, 2000000);  // a 1 x 2000000 filter: wider than a PNG may be
}

/* Reads a PNG back with libpng's own reader; *w, *h get its size. NULL if it cannot be read as `format`. */
static uint8_t *png_read(const char *path, unsigned format, int *w, int *h) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) return NULL;
    img.format = format;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) { free(px); return NULL; }
    *w = (int)img.width, *h = (int)img.height;
    return px;
}

void test_png(void) {
    uint8_t gray[3 * 5], rgb[2 * 4 * 3];
    for (int i = 0; i < 15; i++) gray[i] = (uint8_t)(i * 17);
    for (int i = 0; i < 24; i++) rgb[i] = (uint8_t)(255 - i * 10);
    int w = 0, h = 0;
    nnrt_png_write(at("g.png"), 5, 3, 1, gray);
    uint8_t *back = png_read(at("g.png"), PNG_FORMAT_GRAY, &w, &h);
    CHECK("png gray reads back with libpng", back && w == 5 && h == 3 && memcmp(back, gray, sizeof gray) == 0);
    free(back);
    nnrt_png_write(at("c.png"), 4, 2, 3, rgb);
    back = png_read(at("c.png"), PNG_FORMAT_RGB, &w, &h);
    CHECK("png RGB reads back with libpng", back && w == 4 && h == 2 && memcmp(back, rgb, sizeof rgb) == 0);
    free(back);
    EXPECT_DIE("png of width 0", 1, "z.png: an image of 0 x 1 pixels cannot be a PNG", png_zero_width, at("z.png"));
    CHECK("png: no file after an error", !nnrt_file_exists(at("z.png")));

    // Two 1 x 1 x 2 filters: [-1, 3] spans 0..255; [2, 2] is constant (128). zoom 14, so 14 x 28 tiles, 2 columns.
    float f[4] = {-1, 3, 2, 2};
    nnrt_filter_grid g = nnrt_filter_grid_make(f, 2, 1, 1, 2);
    CHECK("grid size", g.zoom == 14 && g.cols == 2 && g.rows == 1 && g.width == 2 * 29 + 1 && g.height == 16 && g.channels == 1);
    const uint8_t *p = g.pixels;
    CHECK("grid separators white", p[0] == 255 && p[g.width] == 255 && p[15 * g.width + 5] == 255 && p[3 * g.width + 29] == 255);
    CHECK("grid filter 0 normalized", p[g.width + 1] == 0 && p[14 * g.width + 14] == 0 && p[g.width + 15] == 255 && p[14 * g.width + 28] == 255);
    CHECK("grid constant filter mid-gray", p[g.width + 30] == 128 && p[14 * g.width + 57] == 128);
    free(g.pixels);
    EXPECT_DIE("grid too large for a PNG", 1, "more than a PNG's 1000000 a side", grid_too_large, NULL);
}
