/* fuzz_npy.c — .npy files (raw or gzip-compressed) as features, class labels and dense targets. */
#include "fuzz.h"

static void load(const char *path, int role) {
    nnrt_array a = role == 0 ? nnrt_load_x(path, &fz_class_model)
                 : role == 1 ? nnrt_load_y(path, &fz_class_model) : nnrt_load_y(path, &fz_dense_model);
    nnrt_array_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, "data.npy", load, 3);
    return 0;
}
