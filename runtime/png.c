/* png.c — PNG output through libpng: 8-bit gray or RGB, written through the runtime's atomic output (a temp file
 * renamed into place), so a failed write leaves nothing behind. */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_image.h"
#include "nnrt_io.h"

/* libpng's own limit on a side (png_set_user_limits' default), stated here so that the error says it. */
enum { PNG_MAX_SIDE = 1000000 };

typedef struct {
    const char *path;
    nnrt_atomic *out;       // the file, or NULL: the bytes go to mem
    uint8_t *mem;
    size_t len, cap;
} png_sink;

static void on_error(png_structp png, png_const_charp msg) {
    png_sink *s = png_get_error_ptr(png);
    nnrt_die("%s: cannot write the PNG (libpng: %s)", s->path, msg);  // removes the temp file; never returns
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void on_write(png_structp png, png_bytep data, size_t n) {
    png_sink *s = png_get_io_ptr(png);
    if (s->out) { nnrt_atomic_write(s->out, data, n); return; }
    if (s->len + n > s->cap) {
        s->cap = 2 * (s->len + n);
        s->mem = realloc(s->mem, s->cap);
        if (!s->mem) nnrt_die("%s: out of memory", s->path);
    }
    memcpy(s->mem + s->len, data, n);
    s->len += n;
}

static void on_flush(png_structp png) { (void)png; }

/* Encodes the image into s: its file when s->out is set (opened here from s->path), else s->mem. */
static void encode(png_sink *s, int to_file, int width, int height, int channels, const uint8_t *pixels) {
    const char *path = s->path;
    if (channels != 1 && channels != 3) nnrt_die("internal: %s: a PNG of %d channels (expected 1 or 3)", path, channels);
    if (width <= 0 || height <= 0 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE)
        nnrt_die("%s: an image of %d x %d pixels cannot be a PNG (each side 1 to %d)", path, width, height, PNG_MAX_SIDE);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) nnrt_die("%s: cannot write the PNG (libpng could not start)", path);
    if (to_file) s->out = nnrt_atomic_open(path);
    png_set_write_fn(png, s, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)width * (size_t)channels;
    for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
}

void nnrt_png_write(const char *path, int width, int height, int channels, const uint8_t *pixels) {
    png_sink s = {.path = path};
    encode(&s, 1, width, height, channels, pixels);
    nnrt_atomic_commit(s.out);
}

uint8_t *nnrt_png_encode(const char *what, int width, int height, int channels, const uint8_t *pixels, size_t *len) {
    png_sink s = {.path = what};
    encode(&s, 0, width, height, channels, pixels);
    *len = s.len;
    return s.mem;
}
