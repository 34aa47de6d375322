/* fuzz_safetensors.c — weights files (--init, --weights): the strict reader, against fz_class_model. */
#include "fuzz.h"

static void load(const char *path, int role) {
    float params[32];
    nnrt_load_safetensors(path, &fz_class_model, params);
    (void)role;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, "w.safetensors", load, 1);
    return 0;
}
