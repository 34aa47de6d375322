/* fuzz.h — what every fuzz target of runtime/fuzz/ shares (see README.md there).
 *
 * A target writes the input to a file (the loaders take paths), runs a loader under nnrt_try (a fatal error
 * then returns its status instead of exiting), and frees whatever is left: the runtime is compiled for fuzzing
 * with malloc, calloc, realloc, aligned_alloc, free, strdup, gzopen and gzclose renamed to the fz_ functions
 * below (build.sh), which keep every live block and gzFile in a list, so that an input whose loader dies half
 * way leaks nothing into the next. */
#ifndef NNRT_FUZZ_H
#define NNRT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "nnrt.h"

/* Writes data[0..size) to a file named `name` (its extension picks the loader), then for each role 0..roles-1
   runs fn(path, role) and frees every block and closes every gzFile the runtime left open. A loader's error must
   be a bad-file error (exit status 1) naming the file; anything else aborts (a crash for the fuzzer). */
void fz_run(const uint8_t *data, size_t size, const char *name, void (*fn)(const char *path, int role), int roles);

/* The model the loaders check files against, runtime/tests/toy_model.c's (so that its trainer writes the seeds):
   softmax regression of 5 features into 3 classes (weight (3, 5), bias (3), a counter "seen"), SGD with lr,
   momentum and weight_decay, the optimizer state as one arena, max batch 8; its dense twin; and its L-BFGS twin
   (toy_model.c -DTOY_LBFGS: L-BFGS's hyperparameters, no state arena, max batch 16). */
extern const nnrt_model fz_class_model, fz_dense_model, fz_lbfgs_model;

#endif
