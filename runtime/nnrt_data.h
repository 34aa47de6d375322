/* nnrt_data.h — arrays and data sets (data.c, npy.c, csv.c, labels.c, prep.c): IDX, .npy and CSV files (with a
 * label column of class names), the checks against the model, the MNIST layout, validation splits, the input
 * preprocessing and batch gathering. */
#ifndef NNRT_DATA_H
#define NNRT_DATA_H

#include <stdint.h>

#include "nnrt_augment.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

typedef enum { NNRT_U8 = 0, NNRT_I32 = 1, NNRT_F32 = 2 } nnrt_dtype;

/* Input preprocessing (prep.c): x' = (x·scale − mean) / std for every sample, computed on the training split and
   kept in the weights file, so that train, eval, predict and a resumed run apply the same. */
typedef enum { NNRT_NORM_NONE = 0, NNRT_NORM_FEATURE = 1, NNRT_NORM_CHANNEL = 2 } nnrt_norm;
typedef struct {
    char scale[32];         // as given: "auto", "1/255" or a number
    int automatic;          // "auto": uint8 / 255 and floats as they are, whichever the file (torchvision's ToTensor)
    float div, mul;         // else x / div when the scale is 1/D (torchvision's exact division), else x · mul (div 0)
    nnrt_norm norm;
    int64_t n_stats;        // input_dim (feature), channels (channel) or 0 (none)
    float *mean, *std;      // (n_stats)
    float *fmean, *fstd;    // (input_dim) each feature's statistics (its channel's, for channel)
    double max_abs;         // the training inputs' largest |x·scale|; 0: unknown (no range warning)
} nnrt_prep;
enum { NNRT_PREP_RANGE = 10 };  // eval and predict warn when their inputs' largest |x·scale| is 10× off the training's

/* A 2-D array (n, dim) as loaded from a file. Images stay uint8 (converted per batch). */
typedef struct {
    const char *path;   // owned copy, for messages
    nnrt_dtype dtype;
    int64_t n, dim;
    void *data;         // (n, dim) of dtype
    const nnrt_prep *prep;  // what the batch gather applies; NULL: uint8 / 255, floats as they are
} nnrt_array;

/* scale "auto" (or NULL): uint8 / 255, floats as they are, in every file; norm "none" (or NULL), "feature" or
   "channel". Fits p's statistics on x (the training split); a bad --scale or --normalize is a usage error. */
void nnrt_prep_fit(nnrt_prep *p, const nnrt_array *x, const nnrt_model *m, const char *scale, const char *norm);
/* Parsers for the flags and the metadata: 0 when the text is not a scale ("auto", "1/255", a positive number) or a
   mode. */
int nnrt_prep_set_scale(nnrt_prep *p, const char *text);
int nnrt_prep_set_norm(nnrt_prep *p, const char *text, const nnrt_model *m);
/* Fills fmean/fstd from mean/std (after mean and std are set). */
void nnrt_prep_expand(nnrt_prep *p, const nnrt_model *m);
void nnrt_prep_free(nnrt_prep *p);
// The two halves of nnrt_prep_row, for the batch gather's augmentation between them: the scale alone, then the
// normalization of the scaled row in place.
void nnrt_prep_scale_row(const nnrt_prep *p, const nnrt_array *x, int64_t row, float *dst);
void nnrt_prep_normalize_row(const nnrt_prep *p, const nnrt_array *x, float *dst);
/* dst (dim) ← row `row` of x, preprocessed. */
void nnrt_prep_row(const nnrt_prep *p, const nnrt_array *x, int64_t row, float *dst);
/* The largest |x·scale| of an array. */
double nnrt_prep_max_abs(const nnrt_prep *p, const nnrt_array *x);
/* One warning line on stderr, naming x's file, when its range is NNRT_PREP_RANGE times off the training inputs'. */
void nnrt_prep_check_range(const nnrt_prep *p, const nnrt_array *x);

typedef enum { NNRT_ROLE_X = 0, NNRT_ROLE_LABELS = 1, NNRT_ROLE_TARGETS = 2 } nnrt_role;

/* Raw contents of a file before role checks: dims as stored, data as u8/i32/f32. */
typedef struct {
    nnrt_dtype dtype;       // float64 becomes F32, int64 becomes I32 (clamped) at load
    char dtype_name[16];    // as stored: "float64", "uint8", … (for messages)
    int ndim;
    int64_t shape[8];
    void *data;             // shape, row-major
} nnrt_tensor_file;

/* How CSV files are read (csv.c): --delimiter and --label-column. */
typedef struct {
    char delimiter;             // 0 or ',' for commas
    const char *label_column;   // NULL, a header name, or a 0-based index (negative counts from the end)
} nnrt_csv_opts;

/* A CSV file's rows: its numeric columns as float32 (int32 for a plain labels file), and its label column's fields
   as text. */
typedef struct {
    int64_t rows, cols;         // data rows; columns besides the label column
    float *x;                   // (rows, cols)
    char **labels;              // (rows) the label column's fields, unquoted; NULL when the file has none
    long *lines;                // (rows) each row's line in the file, for messages
    char label_name[64];        // the label column as messages name it: 'species' (from the header) or 4 (an index)
} nnrt_csv_table;

/* Reads a CSV with a label column (opts->label_column, or none). cols > 0: the feature columns it must have (else
   the first row decides). With `optional`, a file without the label column (no such header name; for an index,
   a first row of exactly cols fields) is all features. */
nnrt_csv_table nnrt_csv_read(const char *path, const nnrt_csv_opts *opts, int64_t cols, int optional);
void nnrt_csv_table_free(nnrt_csv_table *t);

nnrt_tensor_file nnrt_load_npy(const char *path);
nnrt_tensor_file nnrt_load_idx(const char *path);
/* cols > 0: every row must have that many columns; else the first row sets the count. opts: the delimiter (NULL:
   commas); its label column is not used. */
nnrt_tensor_file nnrt_load_csv(const char *path, nnrt_role role, int64_t cols, const nnrt_csv_opts *opts);
/* Picks the loader by extension (.csv) or magic (.npy, IDX); gzip is read transparently. */
nnrt_tensor_file nnrt_load_any(const char *path, nnrt_role role, int64_t cols, const nnrt_csv_opts *opts);

/* The class names of a classifier whose CSV label column holds names (labels.c): distinct, in sorted (byte) order,
   class k being names[k]. n 0: labels are class indices. */
typedef struct {
    int n;
    char **names;               // (n)
} nnrt_classes;
void nnrt_classes_free(nnrt_classes *c);

/* What the loaders need besides the model: how to read CSV, and the class names labels map to. */
typedef struct {
    nnrt_csv_opts csv;
    nnrt_classes *classes;      // in: names known (n > 0) or not; out: the names a `learn` file's labels set
    int learn;                  // the training file: its label column's names become the classes
} nnrt_data_opts;

/* Loads and checks: x → (n, input_dim) u8/f32; labels → (n, 1) i32 in [0, output_dim);
   targets → (n, target_dim) f32. The _with forms take CSV options: a CSV x file's label column, when the file has
   it, is left out of the features. */
nnrt_array nnrt_load_x(const char *path, const nnrt_model *m);
nnrt_array nnrt_load_y(const char *path, const nnrt_model *m);
nnrt_array nnrt_load_x_with(const char *path, const nnrt_model *m, const nnrt_data_opts *d);
nnrt_array nnrt_load_y_with(const char *path, const nnrt_model *m, const nnrt_data_opts *d);
void nnrt_array_free(nnrt_array *a);
void nnrt_check_labels(const char *path, const int32_t *y, int64_t n, int classes);
char *nnrt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);
/* The labels (or dense targets) of a CSV table's label column (labels.c): class names through d->classes (learnt
   from a `learn` file whose labels are not all integers), integers as class indices. Dies naming the file, row
   and value of an unknown name. */
nnrt_array nnrt_labels_from_table(const char *path, const nnrt_csv_table *t, const nnrt_model *m, const nnrt_data_opts *d);

typedef struct { nnrt_array x, y; } nnrt_dataset;

/* x and y for one split; checks that their counts match. */
nnrt_dataset nnrt_load_dataset(const char *x_path, const char *y_path, const nnrt_model *m);
/* The same with CSV options; y_path NULL: the labels are x_path's label column (d->csv.label_column). */
nnrt_dataset nnrt_load_dataset_with(const char *x_path, const char *y_path, const nnrt_model *m, const nnrt_data_opts *d);
/* The MNIST IDX layout in dir: split is "train" or "t10k"; prefers the raw file over .gz. */
nnrt_dataset nnrt_load_idx_dir(const char *dir, const char *split, const nnrt_model *m);
void nnrt_dataset_free(nnrt_dataset *d);
/* Moves round(fraction·N) samples of d, chosen by the NNRT_STREAM_VAL stream of seed, into *val; both keep the
   file's order. Dies unless both parts get at least one sample. */
void nnrt_split_validation(nnrt_dataset *d, double fraction, uint64_t seed, nnrt_dataset *val);
/* The rows of d with is_val[i] == 0 into *train and the n_val others into *val, in order, as new arrays. */
void nnrt_dataset_split(const nnrt_dataset *d, const unsigned char *is_val, int64_t n_val, nnrt_dataset *train,
                        nnrt_dataset *val);

/* x_out (n, input_dim) ← rows idx[0..n) of x, preprocessed by x->prep (NULL: uint8 scaled by 1/255). */
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
/* The same for int32 values of shape (rows,) (predict --labels). */
nnrt_atomic *nnrt_npy_begin_i32(const char *path, int64_t rows);
/* predict's output format by the file name's extension: 'n' (.npy), 'c' (.csv, a header row, then one row per
   sample), 0 for anything else. */
int nnrt_predict_format(const char *path);

#endif
