/* fuzz_csv.c — CSV files as features, class labels and dense targets, and as one file holding features and a label
 * column (by index and by name, class names learnt as for a training file), with ';' as the delimiter too. */
#include "fuzz.h"

static void load(const char *path, int role) {
    if (role >= 3) {
        nnrt_classes classes = {0};
        nnrt_data_opts o = {.csv = {role == 5 ? ';' : ',', role == 3 ? "-1" : "species"}, .classes = &classes, .learn = 1};
        nnrt_dataset d = nnrt_load_dataset_with(path, NULL, &fz_class_model, &o);
        nnrt_dataset_free(&d);
        nnrt_classes_free(&classes);
        return;
    }
    nnrt_array a = role == 0 ? nnrt_load_x(path, &fz_class_model)
                 : role == 1 ? nnrt_load_y(path, &fz_class_model) : nnrt_load_y(path, &fz_dense_model);
    nnrt_array_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_run(data, size, "data.csv", load, 6);
    return 0;
}
