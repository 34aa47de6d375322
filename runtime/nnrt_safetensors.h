/* nnrt_safetensors.h — safetensors files (safetensors.c): the weights PyTorch loads, and the general reader and
 * writer checkpoints use; and the input preprocessing and class names a weights file keeps (weights.c). */
#ifndef NNRT_SAFETENSORS_H
#define NNRT_SAFETENSORS_H

#include <stdint.h>

#include "nnrt_data.h"
#include "nnrt_model.h"

/* Writes the params arena as F32 tensors named and shaped by the model's table (nothing else). */
void nnrt_save_safetensors(const char *path, const nnrt_model *m, const float *params);
/* Strict load: every param present with its exact shape and dtype F32, no unexpected keys
   (__metadata__ is allowed; so is a checkpoint's training state). Dies naming the file and the tensor otherwise. */
void nnrt_load_safetensors(const char *path, const nnrt_model *m, float *params);

/* The general writer behind both: the params, then extra 1-D tensors, with string metadata (besides
   "format":"pt"), atomically. */
typedef struct { const char *key, *value; } nnrt_st_kv;
/* A tensor beside the parameters: F32 or I64, of shape (numel), or of shape[0..ndim) when ndim > 0. */
typedef struct { const char *name; int i64; int64_t numel; const void *data; int ndim; const int64_t *shape; } nnrt_st_extra;
void nnrt_write_safetensors(const char *path, const nnrt_model *m, const float *params, const nnrt_st_kv *meta,
                            int n_meta, const nnrt_st_extra *extra, int n_extra);

/* The general reader: nnrt_st_read parses and checks the header (dying on a corrupt file); the others take
   tensors out of it, each at most once, checking dtype, shape and bounds. */
typedef struct nnrt_st nnrt_st;
nnrt_st *nnrt_st_read(const char *path);
/* nnrt_st_read in two steps (st_read.c), for bytes already in memory: an empty reader named path (for messages),
   then the parse of buf (len bytes), which must outlive the reader; nnrt_st_free frees buf when owned. A fatal
   error leaves f for nnrt_st_free to free what it holds (the exported library's nnrt_die returns). */
nnrt_st *nnrt_st_new(const char *path);
void nnrt_st_parse(nnrt_st *f, const char *buf, size_t len, int owned);
const char *nnrt_st_meta(const nnrt_st *f, const char *key);             /* a string of __metadata__, or NULL */
int nnrt_st_meta_count(const nnrt_st *f);                                /* the strings of __metadata__, */
const char *nnrt_st_meta_key(const nnrt_st *f, int i);                   /* and the key of each */
void nnrt_st_load_params(nnrt_st *f, const nnrt_model *m, float *params); /* every param, strictly */
/* The bytes of a 1-D tensor, NULL when absent. Not necessarily aligned for its type: memcpy them. */
const void *nnrt_st_tensor(nnrt_st *f, const char *name, int i64, int64_t numel);
/* The same for a tensor of shape[0..ndim). */
const void *nnrt_st_tensor_shaped(nnrt_st *f, const char *name, int i64, int ndim, const int64_t *shape);
void nnrt_st_check_unexpected(const nnrt_st *f, const nnrt_model *m);    /* dies on a tensor nobody took */
void nnrt_st_free(nnrt_st *f);
const char *nnrt_st_path(const nnrt_st *f);
/* nnrt_load_safetensors on a file already read: every parameter, strictly, a checkpoint's training state allowed. */
void nnrt_st_load_weights(nnrt_st *f, const nnrt_model *m, float *params);

// ----------------------------------------------------------------------------
// the data a weights file was trained on (weights.c)

/* What a weights file says about the data its model was trained on (weights.c), in its __metadata__ strings, which
   torch's load_file ignores: the input preprocessing ("input.scale", "input.normalize", "input.mean", "input.std",
   "input.max") and the class names ("classes", "class.0", …). */
typedef struct {
    int has_prep;               // 0: a file without it (older, or torch's): the loader's defaults apply
    nnrt_prep prep;
    nnrt_classes classes;
} nnrt_data_info;
/* d's metadata entries as a new array *kv of allocated strings (nothing for a d without either); returns how
   many. nnrt_st_kv_free frees them. */
int nnrt_data_info_meta(const nnrt_data_info *d, nnrt_st_kv **kv);
void nnrt_st_kv_free(nnrt_st_kv *kv, int n);
/* Reads d from a file's metadata, checking every entry against the model (dies naming the file and the key). */
void nnrt_data_info_read(const nnrt_st *f, const nnrt_model *m, nnrt_data_info *d);
void nnrt_data_info_free(nnrt_data_info *d);
/* Weights (params) with d's metadata; d NULL: none. */
void nnrt_save_weights(const char *path, const nnrt_model *m, const float *params, const nnrt_data_info *d);
/* nnrt_load_safetensors, also reading d (when not NULL). */
void nnrt_load_weights(const char *path, const nnrt_model *m, float *params, nnrt_data_info *d);

#endif
