/* unit_data.c — unit tests of the data loaders (.npy, IDX, CSV), their errors, and batch gathering. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <sys/stat.h>

#include "unit.h"

void test_npy(void) {
    nnrt_atomic *a = nnrt_npy_begin(at("r.npy"), 2, 3);
    float v[6] = {1, 2, 3, 4, 5, -6.5f};
    nnrt_atomic_write(a, v, sizeof v);
    nnrt_atomic_commit(a);
    nnrt_tensor_file t = nnrt_load_npy(at("r.npy"));
    CHECK("npy round trip", t.dtype == NNRT_F32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3 && memcmp(t.data, v, sizeof v) == 0);
    free(t.data);
    struct stat st;
    stat(at("r.npy"), &st);
    CHECK("npy header aligned to 64", (st.st_size - 24) % 64 == 0);

    // version 2.0 header (u32 length), int64 labels → int32
    unsigned char buf[128 + 24] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 116, 0, 0, 0};
    memset(buf + 12, ' ', 116);
    const char *dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
    memcpy(buf + 12, dict, strlen(dict));
    buf[127] = '\n';
    int64_t labels[3] = {7, 0, 5000000000LL};
    memcpy(buf + 128, labels, sizeof labels);
    write_bytes(at("v2.npy"), buf, sizeof buf);
    t = nnrt_load_npy(at("v2.npy"));
    int32_t *y = t.data;
    CHECK("npy v2 int64 → int32 (clamped)", t.dtype == NNRT_I32 && t.shape[0] == 3 && y[0] == 7 && y[1] == 0 && y[2] == INT32_MAX);
    free(t.data);
}

static void write_gz(const char *path, const void *buf, size_t n) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, buf, (unsigned)n);
    gzclose(f);
}

void test_idx(void) {
    unsigned char buf[4 + 12 + 24] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    for (int i = 0; i < 24; i++) buf[16 + i] = (unsigned char)(i * 10);
    write_bytes(at("a.idx"), buf, sizeof buf);
    write_gz(at("a.idx.gz"), buf, sizeof buf);
    nnrt_tensor_file t = nnrt_load_idx(at("a.idx")), g = nnrt_load_any(at("a.idx.gz"), NNRT_ROLE_X, 0, NULL);
    CHECK("idx raw", t.dtype == NNRT_U8 && t.ndim == 3 && t.shape[0] == 2 && t.shape[2] == 4 && ((uint8_t *)t.data)[23] == 230);
    CHECK("idx gz", g.ndim == 3 && memcmp(t.data, g.data, 24) == 0);
    free(t.data); free(g.data);
}

void test_csv(void) {
    write_bytes(at("h.csv"), "a,b,c\n1,2,3\n\n4.5, -5e1 ,6\r\n", 27);
    nnrt_tensor_file t = nnrt_load_csv(at("h.csv"), NNRT_ROLE_X, 0, NULL);
    float *x = t.data;
    CHECK("csv header skipped", t.shape[0] == 2 && t.shape[1] == 3 && x[0] == 1 && x[3] == 4.5f && x[4] == -50 && x[5] == 6);
    free(t.data);
    write_bytes(at("n.csv"), "1\n2\n0", 5);
    t = nnrt_load_csv(at("n.csv"), NNRT_ROLE_LABELS, 1, NULL);
    int32_t *y = t.data;
    CHECK("csv labels, no header, no final newline", t.dtype == NNRT_I32 && t.shape[0] == 3 && y[0] == 1 && y[2] == 0);
    free(t.data);
}

static void die_csv_cols(const void *p) { nnrt_load_csv(at("h.csv"), NNRT_ROLE_X, 4, NULL); }
static void die_labels(const void *p) { int32_t y[3] = {0, 3, 1}; nnrt_check_labels("l.npy", y, 3, 3); }
static void die_missing(const void *p) { nnrt_load_any(at("nope.npy"), NNRT_ROLE_X, 0, NULL); }

void test_gather(void) {
    uint8_t u[3 * 2] = {0, 255, 51, 102, 1, 2};
    nnrt_array x = {.path = "u", .dtype = NNRT_U8, .n = 3, .dim = 2, .data = u};
    int64_t idx[2] = {2, 0};
    float out[4];
    nnrt_gather_x(&x, idx, 2, out);
    CHECK("gather u8 / 255", out[0] == 1.0f / 255.0f && out[1] == 2.0f / 255.0f && out[2] == 0 && out[3] == 1.0f);
    {   // every byte value, in rows of 784 (vector body and remainder), bit-exact against a scalar i / 255.0f
        enum { DIM = 784, ROWS = 3 };
        static uint8_t big[ROWS * DIM];
        static float got[2 * DIM];
        for (int i = 0; i < ROWS * DIM; i++) big[i] = (uint8_t)(i * 7 + i / DIM);
        nnrt_array bx = {.dtype = NNRT_U8, .n = ROWS, .dim = DIM, .data = big};
        int64_t bidx[2] = {2, 0};
        nnrt_gather_x(&bx, bidx, 2, got);
        int exact = 1, seen[256] = {0};
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < DIM; j++) {
                volatile float byte = (float)big[bidx[r] * DIM + j], want = byte / 255.0f;
                exact &= memcmp(&got[r * DIM + j], (const void *)&want, sizeof(float)) == 0;
                seen[big[bidx[r] * DIM + j]] = 1;
            }
        int all = 1;
        for (int i = 0; i < 256; i++) all &= seen[i];
        CHECK("gather u8 every byte exact", exact && all);
    }
    int32_t labels[3] = {4, 5, 6}, lo[2];
    nnrt_array y = {.path = "y", .dtype = NNRT_I32, .n = 3, .dim = 1, .data = labels};
    nnrt_gather_y(&y, idx, 2, lo);
    CHECK("gather labels", lo[0] == 6 && lo[1] == 4);
}

/* nnrt_shape_str, and the loaders' one-line errors: a CSV row of the wrong width, a label out of range, a missing
 * file. */
void test_data_errors(void) {
    char buf[64];
    CHECK("shape_str", strcmp(nnrt_shape_str(buf, sizeof buf, 2, (int64_t[]){10, 5}), "(10, 5)") == 0 &&
                           strcmp(nnrt_shape_str(buf, sizeof buf, 1, (int64_t[]){3}), "(3,)") == 0);
    EXPECT_DIE("csv column count", 1, "h.csv:2: expected 4 columns, got 3", die_csv_cols, NULL);
    EXPECT_DIE("label range", 1, "l.npy: label 3 at index 1 is outside [0, 3)", die_labels, NULL);
    EXPECT_DIE("missing file", 1, "nope.npy: No such file or directory", die_missing, NULL);
}
