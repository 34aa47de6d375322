/* fuzz_checkpoint.c — checkpoints (--resume) against fz_class_model: the metadata, the optimizer's slots, the
 * sample order and the state of early stopping, the moving average and reduce-on-plateau; and against
 * fz_lbfgs_model: L-BFGS's history. */
#include "fuzz.h"

static void load(const char *path, int role) {
    float params[32], grads[32], state[32];
    double hp[8];
    nnrt_ctx ctx = {.model = role ? &fz_lbfgs_model : &fz_class_model, .params = params, .grads = grads, .state = state,
                    .hp = hp};
    nnrt_checkpoint c;
    nnrt_checkpoint_load(path, &ctx, &c);  // what it allocated, fz_run frees
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, "c.ck", load, 2);
    return 0;
}
