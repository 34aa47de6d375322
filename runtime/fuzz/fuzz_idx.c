/* fuzz_idx.c — IDX files, raw or gzip-compressed (zlib reads either): as features and as labels (nnrt_load_x,
 * nnrt_load_y), and as the images of an MNIST directory (nnrt_load_idx_dir, beside a valid labels file). */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"

static void load(const char *path, int role) {
    nnrt_array a = role ? nnrt_load_y(path, &fz_class_model) : nnrt_load_x(path, &fz_class_model);
    nnrt_array_free(&a);
}

/* path is <dir>/train-images-idx3-ubyte; <dir>/train-labels-idx1-ubyte holds 10 labels. */
static void load_dir(const char *path, int role) {
    char dir[512];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
    char labels[600];
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", dir);
    FILE *f = fopen(labels, "wb");
    static const unsigned char idx[18] = {0, 0, 8, 1, 0, 0, 0, 10, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
    if (!f || fwrite(idx, 1, sizeof idx, f) != sizeof idx || fclose(f) != 0) return;
    nnrt_dataset d = nnrt_load_idx_dir(dir, "train", &fz_class_model);
    nnrt_dataset_free(&d);
    (void)role;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, "data.idx", load, 2);
    fz_run(data, size, "train-images-idx3-ubyte", load_dir, 1);
    return 0;
}
