/* nnrt_lib.h — the exported inference library's model-independent half (nnrt_lib.c): a loaded model (weights,
 * input preprocessing, activation arena) behind a handle, and the calls the generated <name>.c wraps as its public
 * API (<name>_load_file, <name>_load_memory, <name>_predict, <name>_free).
 *
 * `nncc compile --emit=library` copies this folder and the runtime's compute files (the GEMM, convolutions, pooling,
 * softmax, the input preprocessing) beside the generated C; nothing here is part of libnnrt, the trainers' runtime.
 * The predict kernels are the trainer's own (the same generated code, against nnrt_model.h), so a handle's
 * probabilities equal `trainer predict`'s bit for bit on the same GEMM kernels (docs/library.md).
 *
 * No global state: everything a call reads or writes is in its handle or on its stack. One handle serves one
 * thread at a time; two handles are independent. The one process-wide value is gemm.c's choice of kernel set, decided
 * once (atomically) from the CPU and NNRT_GEMM. */
#ifndef NNRT_LIB_H
#define NNRT_LIB_H

#include <stddef.h>

#include "nnrt_model.h"

/* What a call returns: 0, or the kind of failure (the message says which file, tensor or argument). */
enum {
    NNRT_LIB_OK = 0,
    NNRT_LIB_ERR_IO = 1,        /* the weights file cannot be opened or read */
    NNRT_LIB_ERR_FORMAT = 2,    /* not a safetensors file, or a corrupt one (truncated, bad header) */
    NNRT_LIB_ERR_WEIGHTS = 3,   /* a valid file that does not fit this model: a missing, extra or misshapen tensor,
                                   a non-finite weight, bad preprocessing metadata */
    NNRT_LIB_ERR_ARG = 4,       /* a NULL pointer, n < 0, a bad NNRT_GEMM in the environment */
    NNRT_LIB_ERR_NOMEM = 5,
    NNRT_LIB_ERR_INTERNAL = 6,  /* a check inside the kernels failed: a bug, please report it */
};

typedef struct nnrt_lib nnrt_lib;

/* Loads the weights of model m from a safetensors file (the trainer's --save output, or a checkpoint) or from
   len bytes in memory (copied: buf may be freed after the call). On success *out is a new handle and the result
   is 0; otherwise *out is NULL, the result is an NNRT_LIB_ERR_* code and msg (cap bytes, may be NULL) holds one
   line saying what is wrong. Nothing is printed. */
int nnrt_lib_load_file(const nnrt_model *m, const char *path, nnrt_lib **out, char *msg, size_t cap);
int nnrt_lib_load_memory(const nnrt_model *m, const void *buf, size_t len, nnrt_lib **out, char *msg, size_t cap);
/* probs (n, output_dim) ← the model's softmax probabilities (a classifier; a regression model's outputs) for
   x (n, input_dim), row-major float32, after the weights file's input preprocessing. Any n ≥ 0: batches of at
   most max_batch rows run in turn. 0, or an error code with its message in nnrt_lib_message(h). */
int nnrt_lib_predict(nnrt_lib *h, const float *x, int n, float *probs);
/* The message of h's last failed call ("" when none). Owned by h. */
const char *nnrt_lib_message(const nnrt_lib *h);
/* Frees h and everything it owns; NULL is fine. */
void nnrt_lib_free(nnrt_lib *h);

#endif
