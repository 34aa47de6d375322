/* data.c — data sets: IDX files, picking a loader per file, the checks that tie a file to the model
 * (feature count, label range, sample counts), the MNIST directory layout, and per-batch gathering.
 * Images stay uint8 in memory (60000×784 is 47 MB, not 188 MB) and become float32 one batch at a time, through
 * the input preprocessing (prep.c). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nnrt_compute.h"
#include "nnrt_data.h"
#include "nnrt_io.h"
#include "nnrt_model.h"
#include "nnrt_rng.h"

// ----------------------------------------------------------------------------
// IDX: big-endian magic 0x00 0x00 <type> <ndim>, ndim big-endian u32 sizes, then the data

enum { IDX_UBYTE = 0x08 };

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* want_magic 0 accepts any unsigned-byte IDX file; otherwise the magic must match exactly. */
static nnrt_tensor_file idx_load(const char *path, uint32_t want_magic, const char *kind) {
    nnrt_reader *r = nnrt_reader_open(path);
    unsigned char b[4];
    nnrt_reader_read_exact(r, b, 4, "a 4-byte IDX magic number");
    uint32_t magic = be32(b);
    if (want_magic && magic != want_magic)
        nnrt_die("%s: not an IDX %s file (magic %u, expected %u)", path, kind, magic, want_magic);
    if (b[0] || b[1] || b[3] < 1 || b[3] > 8) nnrt_die("%s: not an IDX file (magic %u)", path, magic);
    if (b[2] != IDX_UBYTE)
        nnrt_die("%s: IDX element type 0x%02x is not supported (expected 0x08, unsigned byte)", path, b[2]);

    nnrt_tensor_file t = {.dtype = NNRT_U8, .ndim = b[3]};
    snprintf(t.dtype_name, sizeof t.dtype_name, "uint8");
    size_t count = 1;
    for (int i = 0; i < t.ndim; i++) {
        nnrt_reader_read_exact(r, b, 4, "the IDX dimension sizes");
        t.shape[i] = be32(b);
        count = nnrt_mul_size(count, (size_t)t.shape[i], path);
    }
    char shape[96], what[160];
    snprintf(what, sizeof what, "%zu bytes of data for shape %s", count,
             nnrt_shape_str(shape, sizeof shape, t.ndim, t.shape));
    t.data = nnrt_reader_read_alloc(r, count, what);
    nnrt_reader_close(r);
    return t;
}

nnrt_tensor_file nnrt_load_idx(const char *path) { return idx_load(path, 0, ""); }

// ----------------------------------------------------------------------------
// any file

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_csv(const char *path) { return ends_with(path, ".csv") || ends_with(path, ".csv.gz"); }

nnrt_tensor_file nnrt_load_any(const char *path, nnrt_role role, int64_t cols, const nnrt_csv_opts *opts) {
    if (is_csv(path)) return nnrt_load_csv(path, role, cols, opts);
    nnrt_reader *r = nnrt_reader_open(path);
    unsigned char magic[6] = {0};
    size_t got = nnrt_reader_read(r, magic, sizeof magic);
    nnrt_reader_close(r);
    if (got == 6 && memcmp(magic, "\x93NUMPY", 6) == 0) return nnrt_load_npy(path);
    if (got >= 4 && magic[0] == 0 && magic[1] == 0) return nnrt_load_idx(path);
    if (got == 0) nnrt_die("%s: empty file", path);
    nnrt_die("%s: unrecognised format (expected .npy, IDX, or .csv by extension)", path);
}

char *nnrt_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, ndim == 1 ? ",)" : ")");
    return buf;
}

// ----------------------------------------------------------------------------
// checks that tie a file to the model

/* A NaN or infinity in the data would train on silently (a ReLU maps NaN to 0), so a file holding one is
   refused, naming the first. */
static void check_finite(const char *path, const nnrt_array *a) {
    if (a->dtype != NNRT_F32) return;
    const float *v = a->data;
    size_t count = (size_t)a->n * (size_t)a->dim;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(v[i]))
            nnrt_die("%s: row %lld, column %lld (counting from 0) is %s; expected finite numbers", path,
                     (long long)(i / (size_t)a->dim), (long long)(i % (size_t)a->dim), isnan(v[i]) ? "NaN" : v[i] > 0 ? "+inf" : "-inf");
}

/* An image model reads each sample as (C, H, W): a file that carries its shape (.npy, IDX) must be (N, C, H, W),
   or (N, H, W) for one channel, so that a flat (N, k) array or a channels-last one is not read as images by
   accident. A CSV row is flat by nature and is read in NCHW order. */
static void check_image_shape(const char *path, const nnrt_tensor_file *t, const nnrt_model *m) {
    if (m->input_rank != 3 || is_csv(path)) return;
    const int *s = m->input_shape;
    int nchw = t->ndim == 4 && t->shape[1] == s[0] && t->shape[2] == s[1] && t->shape[3] == s[2];
    int nhw = s[0] == 1 && t->ndim == 3 && t->shape[1] == s[1] && t->shape[2] == s[2];
    if (nchw || nhw) return;
    char shape[96];
    nnrt_die("%s: expected images of shape (N, %d, %d, %d)%s (NCHW), got %s; reshape a flat array, or transpose a "
             "channels-last one, to NCHW first", path, s[0], s[1], s[2], s[0] == 1 ? " or (N, H, W)" : "",
             nnrt_shape_str(shape, sizeof shape, t->ndim, t->shape));
}

/* The features of a loaded file, checked against the model: dtype, shape (images), count, finite values. */
static nnrt_array x_from(const char *path, nnrt_tensor_file t, const nnrt_model *m) {
    char shape[96];
    if (t.dtype == NNRT_I32)
        nnrt_die("%s: expected float32, float64 or uint8 features, got %s", path, t.dtype_name);
    check_image_shape(path, &t, m);
    int64_t dim = 1;
    for (int i = 1; i < t.ndim; i++) dim = nnrt_mul_dims(dim, t.shape[i], path);
    if (dim != m->input_dim)
        nnrt_die("%s: expected %d features per sample, got shape %s", path, m->input_dim,
                 nnrt_shape_str(shape, sizeof shape, t.ndim, t.shape));
    nnrt_array a = {.path = strdup(path), .dtype = t.dtype, .n = t.shape[0], .dim = dim, .data = t.data};
    check_finite(path, &a);
    return a;
}

/* A CSV table's features as a tensor file (taking them over from the table). */
static nnrt_tensor_file table_x(nnrt_csv_table *c) {
    nnrt_tensor_file t = {.dtype = NNRT_F32, .dtype_name = "float32", .ndim = 2, .shape = {c->rows, c->cols}, .data = c->x};
    c->x = NULL;
    return t;
}

nnrt_array nnrt_load_x_with(const char *path, const nnrt_model *m, const nnrt_data_opts *d) {
    if (d && d->csv.label_column && is_csv(path)) {  // the label column is left out when the file has it
        nnrt_csv_table c = nnrt_csv_read(path, &d->csv, m->input_dim, 1);
        nnrt_array a = x_from(path, table_x(&c), m);
        nnrt_csv_table_free(&c);
        return a;
    }
    return x_from(path, nnrt_load_any(path, NNRT_ROLE_X, m->input_dim, d ? &d->csv : NULL), m);
}

nnrt_array nnrt_load_x(const char *path, const nnrt_model *m) { return nnrt_load_x_with(path, m, NULL); }

void nnrt_check_labels(const char *path, const int32_t *y, int64_t n, int classes) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= classes)
            nnrt_die("%s: label %d at index %lld is outside [0, %d)", path, y[i], (long long)i, classes);
}

static nnrt_array labels_from(const char *path, nnrt_tensor_file t, const nnrt_model *m) {
    char shape[96];
    if (t.dtype == NNRT_F32)
        nnrt_die("%s: expected integer class labels (uint8, int32 or int64), got %s", path, t.dtype_name);
    if (t.ndim > 2 || (t.ndim == 2 && t.shape[1] != 1))
        nnrt_die("%s: expected one label per sample, got shape %s", path, nnrt_shape_str(shape, sizeof shape, t.ndim, t.shape));
    int64_t n = t.shape[0];
    if (t.dtype == NNRT_U8) {  // widen: labels are small, and the kernels take int32
        int32_t *wide = nnrt_malloc(nnrt_mul_size((size_t)n, 4, path));
        for (int64_t i = 0; i < n; i++) wide[i] = ((uint8_t *)t.data)[i];
        free(t.data);
        t.data = wide;
    }
    nnrt_check_labels(path, t.data, n, m->output_dim);
    return (nnrt_array){.path = strdup(path), .dtype = NNRT_I32, .n = n, .dim = 1, .data = t.data};
}

nnrt_array nnrt_load_y_with(const char *path, const nnrt_model *m, const nnrt_data_opts *d) {
    int classes = m->target_kind == NNRT_TARGET_CLASS;
    nnrt_tensor_file t = nnrt_load_any(path, classes ? NNRT_ROLE_LABELS : NNRT_ROLE_TARGETS, classes ? 1 : m->target_dim,
                                       d ? &d->csv : NULL);
    if (classes) return labels_from(path, t, m);
    char shape[96];
    if (t.dtype != NNRT_F32) nnrt_die("%s: expected float32 or float64 targets, got %s", path, t.dtype_name);
    int64_t dim = 1;
    for (int i = 1; i < t.ndim; i++) dim = nnrt_mul_dims(dim, t.shape[i], path);
    if (dim != m->target_dim)
        nnrt_die("%s: expected %d target values per sample, got shape %s", path, m->target_dim,
                 nnrt_shape_str(shape, sizeof shape, t.ndim, t.shape));
    nnrt_array a = {.path = strdup(path), .dtype = NNRT_F32, .n = t.shape[0], .dim = dim, .data = t.data};
    check_finite(path, &a);
    return a;
}

nnrt_array nnrt_load_y(const char *path, const nnrt_model *m) { return nnrt_load_y_with(path, m, NULL); }

void nnrt_array_free(nnrt_array *a) {
    free(a->data);
    free((char *)a->path);
    a->data = NULL;
    a->path = NULL;
}

// ----------------------------------------------------------------------------
// data sets

static void check_counts(const nnrt_dataset *d) {
    if (d->x.n != d->y.n)
        nnrt_die("%s has %lld samples but %s has %lld", d->x.path, (long long)d->x.n, d->y.path, (long long)d->y.n);
    if (d->x.n == 0) nnrt_die("%s: no samples", d->x.path);
}

nnrt_dataset nnrt_load_dataset_with(const char *x_path, const char *y_path, const nnrt_model *m, const nnrt_data_opts *o) {
    if (y_path) {
        nnrt_dataset d = {.x = nnrt_load_x_with(x_path, m, o), .y = nnrt_load_y_with(y_path, m, o)};
        check_counts(&d);
        return d;
    }
    if (!o || !o->csv.label_column) nnrt_die("%s: no labels (give its -y file, or --label-column for a CSV that holds them)", x_path);
    if (!is_csv(x_path))
        nnrt_die("%s: --label-column %s: expected a .csv file (a label column is a CSV's; give the labels of .npy or IDX "
                 "inputs as a -y file)", x_path, o->csv.label_column);
    nnrt_csv_table c = nnrt_csv_read(x_path, &o->csv, m->input_dim, 0);
    nnrt_dataset d = {.y = nnrt_labels_from_table(x_path, &c, m, o)};
    d.x = x_from(x_path, table_x(&c), m);
    nnrt_csv_table_free(&c);
    check_counts(&d);
    return d;
}

nnrt_dataset nnrt_load_dataset(const char *x_path, const char *y_path, const nnrt_model *m) {
    return nnrt_load_dataset_with(x_path, y_path, m, NULL);
}

/* dir/name, or dir/name.gz when only that exists (free it). */
static char *idx_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 8;
    char *raw = nnrt_malloc(n), *gz = nnrt_malloc(n);
    snprintf(raw, n, "%s/%s", dir, name);
    snprintf(gz, n, "%s/%s.gz", dir, name);
    if (nnrt_file_exists(raw)) { free(gz); return raw; }
    if (nnrt_file_exists(gz)) { free(raw); return gz; }
    nnrt_die("%s: no %s or %s.gz (expected the MNIST IDX layout: train-images-idx3-ubyte, "
             "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)", dir, name, name);
}

nnrt_dataset nnrt_load_idx_dir(const char *dir, const char *split, const nnrt_model *m) {
    if (m->target_kind != NNRT_TARGET_CLASS) nnrt_die("--data: the MNIST layout holds class labels, but this model has dense targets");
    struct stat st;
    if (stat(dir, &st) != 0) nnrt_die("--data %s: the directory does not exist (%s)", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) nnrt_die("--data %s: not a directory (expected one in the MNIST IDX layout)", dir);
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", split);
    char *xp = idx_path(dir, name);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", split);
    char *yp = idx_path(dir, name);

    nnrt_tensor_file x = idx_load(xp, 2051, "image"), y = idx_load(yp, 2049, "label");
    int64_t dim = nnrt_mul_dims(x.shape[1], x.shape[2], xp);
    char shape[96];
    if (dim != m->input_dim)
        nnrt_die("%s: expected %d features per sample, got shape %s", xp, m->input_dim, nnrt_shape_str(shape, sizeof shape, 3, x.shape));
    nnrt_dataset d = {.x = {.path = xp, .dtype = NNRT_U8, .n = x.shape[0], .dim = dim, .data = x.data},
                      .y = labels_from(yp, y, m)};
    free(yp);  // labels_from kept a copy
    check_counts(&d);
    return d;
}

void nnrt_dataset_free(nnrt_dataset *d) {
    nnrt_array_free(&d->x);
    nnrt_array_free(&d->y);
}

/* Rows of a where keep[i] == want, in order, as a new array. */
static nnrt_array take_rows(const nnrt_array *a, const unsigned char *keep, int want, int64_t count, const char *suffix) {
    size_t row = (size_t)a->dim * (a->dtype == NNRT_U8 ? 1 : 4);
    char *out = nnrt_malloc(nnrt_mul_size((size_t)count, row, a->path)), *dst = out;
    for (int64_t i = 0; i < a->n; i++)
        if (keep[i] == want) { memcpy(dst, (const char *)a->data + (size_t)i * row, row); dst += row; }
    size_t len = strlen(a->path) + strlen(suffix) + 1;
    char *path = nnrt_malloc(len);
    snprintf(path, len, "%s%s", a->path, suffix);
    return (nnrt_array){.path = path, .dtype = a->dtype, .n = count, .dim = a->dim, .data = out};
}

void nnrt_dataset_split(const nnrt_dataset *d, const unsigned char *is_val, int64_t n_val, nnrt_dataset *train,
                        nnrt_dataset *val) {
    int64_t n = d->x.n;
    *train = (nnrt_dataset){take_rows(&d->x, is_val, 0, n - n_val, " (training part)"), take_rows(&d->y, is_val, 0, n - n_val, " (training part)")};
    *val = (nnrt_dataset){take_rows(&d->x, is_val, 1, n_val, " (validation part)"), take_rows(&d->y, is_val, 1, n_val, " (validation part)")};
}

void nnrt_split_validation(nnrt_dataset *d, double fraction, uint64_t seed, nnrt_dataset *val) {
    int64_t n = d->x.n, n_val = (int64_t)llround(fraction * (double)n);
    if (n_val < 1 || n_val >= n)
        nnrt_die("%s: --val-split %g of %lld samples leaves %lld for validation and %lld for training (each needs at least 1)",
                 d->x.path, fraction, (long long)n, (long long)n_val, (long long)(n - n_val));
    int64_t *perm = nnrt_malloc(nnrt_mul_size((size_t)n, sizeof(int64_t), "validation split"));  // (n)
    unsigned char *is_val = nnrt_calloc((size_t)n, 1);                                            // (n)
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t rng[4];
    nnrt_rng_seed(rng, seed, NNRT_STREAM_VAL);
    nnrt_rng_shuffle(rng, perm, n);
    for (int64_t i = 0; i < n_val; i++) is_val[perm[i]] = 1;
    nnrt_dataset train;
    nnrt_dataset_split(d, is_val, n_val, &train, val);
    nnrt_dataset_free(d);
    *d = train;
    free(perm);
    free(is_val);
}

// ----------------------------------------------------------------------------
// gathering a batch

/* Without a nnrt_prep (a file's own loader defaults): uint8 / 255, exactly what torchvision's ToTensor computes (a
   true division, not a multiply by 1/255, which rounds differently for some bytes; the loop vectorizes: 43 µs for
   a batch of 128 random rows of 784 bytes against 100 µs for a 256-entry table), floats as they are. */
static const nnrt_prep automatic = {.scale = "auto", .automatic = 1, .mul = 1.0f};

/* Rows b0..b1 of the batch, prepared as --scale and --normalize say; with aug (training with --augment), each
   row is augmented as it lands: crop, flip and jitter on the scaled values (in [0, 1] for images), then the
   normalization, then cutout, whose zeros are the mean (torchvision's order: the geometric and colour transforms
   before ToTensor/Normalize, erasing after). */
static void gather_rows(const nnrt_array *x, const int64_t *idx, int b0, int b1, float *x_out, const nnrt_augment *aug) {
    const nnrt_prep *p = x->prep ? x->prep : &automatic;
    for (int b = b0; b < b1; b++) {
        float *dst = x_out + (size_t)b * (size_t)x->dim;
        if (!aug) { nnrt_prep_row(p, x, idx[b], dst); continue; }
        nnrt_augment_draw draw = nnrt_augment_draws(aug, idx[b]);
        nnrt_prep_scale_row(p, x, idx[b], dst);
        nnrt_augment_image(aug, &draw, dst);
        nnrt_prep_normalize_row(p, x, dst);
        nnrt_augment_erase(aug, &draw, dst);
    }
}

/* Asks for rows b0..b1 to be brought into this core's cache, without waiting for them. */
static void prefetch_rows(const nnrt_array *x, const int64_t *idx, int b0, int b1) {
    size_t row = (size_t)x->dim * (x->dtype == NNRT_U8 ? 1 : sizeof(float));
    for (int b = b0; b < b1; b++) {
        const char *p = (const char *)x->data + (size_t)idx[b] * row;
        for (size_t off = 0; off < row; off += 64) __builtin_prefetch(p + off, 0, 2);
    }
}

static void gather_y_rows(const nnrt_array *y, const int64_t *idx, int b0, int b1, void *y_out) {
    size_t row = (size_t)y->dim * 4;  // int32 labels or float targets: 4 bytes each
    for (int b = b0; b < b1; b++)
        memcpy((char *)y_out + (size_t)b * row, (const char *)y->data + (size_t)idx[b] * row, row);
}

typedef struct { const nnrt_array *x; const int64_t *idx; int n; float *out; const nnrt_augment *aug; } gather_job;

static void gather_half(void *arg, int part) {
    const gather_job *j = arg;
    int mid = j->n / 2;
    gather_rows(j->x, j->idx, part ? mid : 0, part ? j->n : mid, j->out, j->aug);
}

/* A large batch is gathered by both threads, half the rows each: the rows are random, so the copy is bound by
   cache misses, which two cores overlap. */
void nnrt_gather_x_augmented(const nnrt_array *x, const int64_t *idx, int n, float *x_out, const nnrt_augment *aug) {
    if ((size_t)n * (size_t)x->dim < 32768) {
        gather_rows(x, idx, 0, n, x_out, aug);
        return;
    }
    gather_job j = {x, idx, n, x_out, aug};
    nnrt_par2(gather_half, &j);
}

void nnrt_gather_x(const nnrt_array *x, const int64_t *idx, int n, float *x_out) { nnrt_gather_x_augmented(x, idx, n, x_out, NULL); }

void nnrt_gather_y(const nnrt_array *y, const int64_t *idx, int n, void *y_out) { gather_y_rows(y, idx, 0, n, y_out); }

/* The batch after the current one, gathered as background work (nnrt_par_background) in pieces of a few rows,
   each of which first asks for the next piece's rows. One at a time: the job lives in a static struct. A piece
   should take about a microsecond (a job posted meanwhile waits for it): four plain rows of 784 bytes do, but an
   augmented 28×28 row alone takes about 1 µs of CPU (bench/augment_cost.c), so augmented pieces are one row. */
enum { GATHER_PIECE_ROWS = 4 };
static struct { const nnrt_array *x, *y; const int64_t *idx; int n, rows; float *x_out; void *y_out; const nnrt_augment *aug; } next_batch;

static void gather_piece(void *unused, int piece) {
    (void)unused;
    int rows = next_batch.rows, n = next_batch.n;
    int b0 = piece * rows, b1 = b0 + rows < n ? b0 + rows : n, p1 = b1 + rows < n ? b1 + rows : n;
    prefetch_rows(next_batch.x, next_batch.idx, b1, p1);
    gather_rows(next_batch.x, next_batch.idx, b0, b1, next_batch.x_out, next_batch.aug);
    gather_y_rows(next_batch.y, next_batch.idx, b0, b1, next_batch.y_out);
}

void nnrt_gather_background(const nnrt_dataset *d, const int64_t *idx, int n, float *x_out, void *y_out, const nnrt_augment *aug) {
    next_batch.x = &d->x;
    next_batch.y = &d->y;
    next_batch.idx = idx;
    next_batch.n = n;
    next_batch.x_out = x_out;
    next_batch.y_out = y_out;
    next_batch.aug = aug;
    next_batch.rows = aug ? 1 : GATHER_PIECE_ROWS;
    nnrt_par_background(gather_piece, NULL, (n + next_batch.rows - 1) / next_batch.rows);
}
