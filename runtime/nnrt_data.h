/* nnrt_data.h — arrays and data sets (data.c, npy.c, csv.c): IDX, .npy and CSV files, the checks against the
 * model, the MNIST layout, validation splits and batch gathering. */
#ifndef NNRT_DATA_H
#define NNRT_DATA_H

#include <stdint.h>

#include "nnrt_augment.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

typedef enum { NNRT_U8 = 0, NNRT_I32 = 1, NNRT_F32 = 2 } nnrt_dtype;

/* A 2-D array (n, dim) as loaded from a file. Images stay uint8 (converted per batch). */
typedef struct {
    const char *path;   // owned copy, for messages
    nnrt_dtype dtype;
    int64_t n, dim;
    void *data;         // (n, dim) of dtype
} nnrt_array;

typedef enum { NNRT_ROLE_X = 0, NNRT_ROLE_LABELS = 1, NNRT_ROLE_TARGETS = 2 } nnrt_role;

/* Raw contents of a file before role checks: dims as stored, data as u8/i32/f32. */
typedef struct {
    nnrt_dtype dtype;       // float64 becomes F32, int64 becomes I32 (clamped) at load
    char dtype_name[16];    // as stored: "float64", "uint8", … (for messages)
    int ndim;
    int64_t shape[8];
    void *data;             // shape, row-major
} nnrt_tensor_file;

nnrt_tensor_file nnrt_load_npy(const char *path);
nnrt_tensor_file nnrt_load_idx(const char *path);
/* cols > 0: every row must have that many columns; else the first row sets the count. */
nnrt_tensor_file nnrt_load_csv(const char *path, nnrt_role role, int64_t cols);
/* Picks the loader by extension (.csv) or magic (.npy, IDX); gzip is read transparently. */
nnrt_tensor_file nnrt_load_any(const char *path, nnrt_role role, int64_t cols);

/* Loads and checks: x → (n, input_dim) u8/f32; labels → (n, 1) i32 in [0, output_dim);
   targets → (n, target_dim) f32. */
nnrt_array nnrt_load_x(const char *path, const nnrt_model *m);
nnrt_array nnrt_load_y(const char *path, const nnrt_model *m);
void nnrt_array_free(nnrt_array *a);
void nnrt_check_labels(const char *path, const int32_t *y, int64_t n, int classes);
char *nnrt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

typedef struct { nnrt_array x, y; } nnrt_dataset;

/* x and y for one split; checks that their counts match. */
nnrt_dataset nnrt_load_dataset(const char *x_path, const char *y_path, const nnrt_model *m);
/* The MNIST IDX layout in dir: split is "train" or "t10k"; prefers the raw file over .gz. */
nnrt_dataset nnrt_load_idx_dir(const char *dir, const char *split, const nnrt_model *m);
void nnrt_dataset_free(nnrt_dataset *d);
/* Moves round(fraction·N) samples of d, chosen by the NNRT_STREAM_VAL stream of seed, into *val; both keep the
   file's order. Dies unless both parts get at least one sample. */
void nnrt_split_validation(nnrt_dataset *d, double fraction, uint64_t seed, nnrt_dataset *val);

/* x_out (n, input_dim) ← rows idx[0..n) of x, uint8 scaled by 1/255. */
void nnrt_gather_x(const nnrt_array *x, const int64_t *idx, int n, float *x_out);
/* The same with each row augmented by aug (training's --augment; NULL: none), as a function of its sample index. */
void nnrt_gather_x_augmented(const nnrt_array *x, const int64_t *idx, int n, float *x_out, const nnrt_augment *aug);
/* y_out ← rows idx[0..n) of y: int32 (n) labels or float (n, target_dim). */
void nnrt_gather_y(const nnrt_array *y, const int64_t *idx, int n, void *y_out);
/* Both (x augmented by aug unless NULL), as background work for the worker's idle time (nnrt_par_background): the
   caller must call nnrt_par_background_finish before it reads x_out or y_out, or gathers another batch this way;
   *aug must live until then. */
void nnrt_gather_background(const nnrt_dataset *d, const int64_t *idx, int n, float *x_out, void *y_out, const nnrt_augment *aug);

/* Streams a float32 .npy of shape (rows, cols) through an atomic output. */
nnrt_atomic *nnrt_npy_begin(const char *path, int64_t rows, int64_t cols);
/* predict's output format by the file name's extension: 'n' (.npy), 'c' (.csv, a header row, then one row per
   sample), 0 for anything else. */
int nnrt_predict_format(const char *path);

#endif
