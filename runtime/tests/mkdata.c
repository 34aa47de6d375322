/* mkdata.c — writes the fixture files the end-to-end tests (e2e.sh) run the toy trainer on.
 * usage: mkdata DIR
 * Class data matches toy_model.c's default build: D = 5 features, C = 3 classes, N = 10 samples, with
 * feature 0 of sample i equal to i (so traces show the batch order). The MNIST layout has 28×28 images. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { N = 10, D = 5, C = 3 };
static char dir[2048];

// ----------------------------------------------------------------------------
// writers

static const char *at(const char *name) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_file(const char *name, const void *buf, size_t n) {
    FILE *f = fopen(at(name), "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) { perror(name); exit(1); }
}

static void write_gz(const char *name, const void *buf, size_t n) {
    gzFile f = gzopen(at(name), "wb");
    if (!f || gzwrite(f, buf, (unsigned)n) != (int)n || gzclose(f) != Z_OK) { perror(name); exit(1); }
}

/* A .npy with the given descr and shape string, e.g. "<f4", "(10, 5)". */
static void write_npy(const char *name, const char *descr, const char *shape, int fortran, const void *data, size_t n) {
    char h[256];
    int len = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, fortran ? "True" : "False", shape);
    int total = (10 + len + 1 + 63) / 64 * 64, hlen = total - 10;
    memset(h + len, ' ', (size_t)(hlen - len));
    h[hlen - 1] = '\n';
    unsigned char *buf = malloc((size_t)total + n);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)(hlen & 0xff);
    buf[9] = (unsigned char)(hlen >> 8);
    memcpy(buf + 10, h, (size_t)hlen);
    memcpy(buf + total, data, n);
    write_file(name, buf, (size_t)total + n);
    free(buf);
}

/* IDX: magic 0x0000 08 ndim, big-endian sizes, then bytes. */
static size_t idx_bytes(unsigned char *out, int ndim, const int *dims, const unsigned char *data, size_t n) {
    size_t k = 0;
    out[k++] = 0; out[k++] = 0; out[k++] = 0x08; out[k++] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        out[k++] = (unsigned char)(dims[i] >> 24); out[k++] = (unsigned char)(dims[i] >> 16);
        out[k++] = (unsigned char)(dims[i] >> 8); out[k++] = (unsigned char)dims[i];
    }
    memcpy(out + k, data, n);
    return k + n;
}

// ----------------------------------------------------------------------------
// the toy data set

static float x[N][D];
static int64_t y[N];

static void make_xy(void) {
    uint64_t s = 12345;
    for (int i = 0; i < N; i++) {
        x[i][0] = (float)i;
        for (int j = 1; j < D; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            x[i][j] = (float)((double)(s >> 11) / 9007199254740992.0 * 2 - 1);
        }
        y[i] = (x[i][1] > x[i][2]) + (x[i][3] > 0.5f);  // in [0, 3)
    }
}

static void write_npys(void) {
    double x64[N][D];
    unsigned char xu8[N][D], yu8[N];
    int32_t y32[N];
    float t[N][C];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) { x64[i][j] = x[i][j]; xu8[i][j] = (unsigned char)(i * 20 + j); }
        yu8[i] = (unsigned char)y[i];
        y32[i] = (int32_t)y[i];
        for (int j = 0; j < C; j++) t[i][j] = x[i][1 + j] * 2 - 0.5f * (float)j;
    }
    write_npy("x.npy", "<f4", "(10, 5)", 0, x, sizeof x);
    write_npy("x64.npy", "<f8", "(10, 5)", 0, x64, sizeof x64);
    write_npy("xu8.npy", "|u1", "(10, 5)", 0, xu8, sizeof xu8);
    write_npy("x3d.npy", "<f4", "(10, 1, 5)", 0, x, sizeof x);
    write_npy("y.npy", "<i8", "(10,)", 0, y, sizeof y);
    write_npy("y32.npy", "<i4", "(10,)", 0, y32, sizeof y32);
    write_npy("yu8.npy", "|u1", "(10,)", 0, yu8, sizeof yu8);
    write_npy("y2d.npy", "<i8", "(10, 1)", 0, y, sizeof y);
    write_npy("t.npy", "<f4", "(10, 3)", 0, t, sizeof t);
    // bad ones
    write_npy("x_shape.npy", "<f4", "(10, 4)", 0, x, sizeof(float) * 40);
    write_npy("x_fortran.npy", "<f4", "(10, 5)", 1, x, sizeof x);
    write_npy("x_be.npy", ">f4", "(10, 5)", 0, x, sizeof x);
    write_npy("x_i32.npy", "<i4", "(10, 5)", 0, x, sizeof x);
    write_npy("x_c8.npy", "<c8", "(10, 5)", 0, x, sizeof x);
    write_npy("x_trunc.npy", "<f4", "(10, 5)", 0, x, sizeof x - 8);
    write_npy("y_float.npy", "<f4", "(10,)", 0, x, sizeof(float) * 10);
    write_npy("y_short.npy", "<i8", "(9,)", 0, y, sizeof(int64_t) * 9);
    int64_t yb[N];
    memcpy(yb, y, sizeof yb);
    yb[5] = 12;
    write_npy("y_range.npy", "<i8", "(10,)", 0, yb, sizeof yb);
    write_file("empty.npy", "", 0);
    write_file("garbage.bin", "hello world, not data\n", 22);
}

static void write_csvs(void) {
    FILE *a = fopen(at("x.csv"), "w"), *b = fopen(at("x_nohdr.csv"), "w"), *c = fopen(at("y.csv"), "w");
    fprintf(a, "f0,f1,f2,f3,f4\n");
    fprintf(c, "label\n");
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++) {
            fprintf(a, "%s%.9g", j ? "," : "", x[i][j]);
            fprintf(b, "%s%.9g", j ? ", " : "", x[i][j]);
        }
        fprintf(a, "\n");
        fprintf(b, "\r\n");
        fprintf(c, "%d\n", (int)y[i]);
    }
    fclose(a); fclose(b); fclose(c);
    FILE *r = fopen(at("y_ragged.csv"), "w");
    for (int i = 0; i < N; i++) fprintf(r, i == 6 ? "%d,1,2\n" : "%d\n", (int)y[i]);  // line 7
    fclose(r);
    r = fopen(at("y_frac.csv"), "w");
    fprintf(r, "0\n1\n1.5\n");
    fclose(r);
    r = fopen(at("x_text.csv"), "w");
    fprintf(r, "1,2,3,4,5\n1,2,abc,4,5\n");
    fclose(r);
}

static void write_idx(void) {
    unsigned char buf[64 + 20 * 784], xu8[N * D], yu8[N];
    for (int i = 0; i < N; i++) { yu8[i] = (unsigned char)y[i]; for (int j = 0; j < D; j++) xu8[i * D + j] = (unsigned char)(i * 20 + j); }
    int dx[2] = {N, D}, dy[1] = {N};
    size_t n = idx_bytes(buf, 2, dx, xu8, sizeof xu8);
    write_file("x.idx", buf, n);
    write_gz("x.idx.gz", buf, n);
    write_file("x_trunc.idx", buf, n - 3);
    n = idx_bytes(buf, 1, dy, yu8, sizeof yu8);
    write_file("y.idx", buf, n);
    write_gz("y.idx.gz", buf, n);
}

/* dir/name in the MNIST layout: `count` 28×28 images with labels i % 3; raw or gzip. */
static void write_mnist(const char *sub, const char *split, int count, int gz, int swap_magic) {
    static unsigned char img[20 * 784], buf[64 + 20 * 784];
    unsigned char lab[20];
    for (int i = 0; i < count; i++) {
        lab[i] = (unsigned char)(i % 3);
        for (int j = 0; j < 784; j++) img[i * 784 + j] = (unsigned char)((i * 7 + j * (lab[i] + 1)) & 0xff);
    }
    char name[256];
    int di[3] = {count, 28, 28}, dl[1] = {count};
    size_t n = swap_magic ? idx_bytes(buf, 1, dl, lab, (size_t)count) : idx_bytes(buf, 3, di, img, (size_t)count * 784);
    snprintf(name, sizeof name, "%s/%s-images-idx3-ubyte%s", sub, split, gz ? ".gz" : "");
    (gz ? write_gz : write_file)(name, buf, n);
    n = idx_bytes(buf, 1, dl, lab, (size_t)count);
    snprintf(name, sizeof name, "%s/%s-labels-idx1-ubyte%s", sub, split, gz ? "" : ".gz");
    (gz ? write_file : write_gz)(name, buf, n);
}

static void gz_copy(const char *from, const char *to) {
    static unsigned char buf[1 << 16];
    FILE *f = fopen(at(from), "rb");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    write_gz(to, buf, n);
}

/* Hostile inputs (hostile.sh): sizes a header claims but the file does not hold, and values that are not finite. */
static void write_hostile(void) {
    // IDX: 16 bytes whose header asks for 2^32-1 × 2^16 × 2^16 bytes (18 EB); raw and gzip
    unsigned char idx[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0};
    write_file("huge.idx", idx, sizeof idx);
    write_gz("huge.idx.gz", idx, sizeof idx);
    // IDX and .npy whose dimensions overflow int64 when multiplied, with a zero first so the element count is 0
    unsigned char idx0[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_file("zero_overflow.idx", idx0, sizeof idx0);
    write_npy("zero_overflow.npy", "<f4", "(0, 4294967296, 4294967296)", 0, "", 0);
    write_npy("huge.npy", "<f4", "(1000000000000, 5)", 0, x, sizeof x);
    gz_copy("huge.npy", "huge.npy.gz");
    // NaN at row 3, column 2; float64 1e300 (infinite as float32) at row 7, column 4
    float xn[N][D];
    double x64[N][D];
    memcpy(xn, x, sizeof xn);
    for (int i = 0; i < N; i++) for (int j = 0; j < D; j++) x64[i][j] = x[i][j];
    xn[3][2] = 0.0f / 0.0f;
    x64[7][4] = 1e300;
    write_npy("x_nan.npy", "<f4", "(10, 5)", 0, xn, sizeof xn);
    write_npy("x_inf64.npy", "<f8", "(10, 5)", 0, x64, sizeof x64);
    float tn[N][C] = {{0}};
    tn[4][1] = -1.0f / 0.0f;
    write_npy("t_inf.npy", "<f4", "(10, 3)", 0, tn, sizeof tn);
    FILE *f = fopen(at("x_nan.csv"), "w");
    fprintf(f, "f0,f1,f2,f3,f4\n");
    for (int i = 0; i < N; i++) fprintf(f, i == 4 ? "%d,1,2,nan,4\n" : "%d,1,2,3,4\n", i);  // line 6, column 4
    fclose(f);
    // a valid CSV of 784 columns (toy_mnist's images) with a million trailing blank lines: the loader once sized
    // its buffer by newlines, 3.1 GB
    f = fopen(at("x_blank784.csv"), "w");
    for (int i = 0; i < N; i++) for (int j = 0; j < 784; j++) fprintf(f, j < 783 ? "%d," : "%d\n", (i + j) % 7);
    for (int i = 0; i < 1000000; i++) fputc('\n', f);
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: mkdata DIR\n"); return 2; }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    make_xy();
    write_npys();
    write_csvs();
    write_idx();
    write_hostile();
    char cmd[3 * sizeof dir + 64];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/mnist' '%s/mnist_bad' '%s/mnist_badtest'", dir, dir, dir);
    if (system(cmd) != 0) return 1;
    write_mnist("mnist", "train", 20, 0, 0);
    write_mnist("mnist", "t10k", 10, 1, 0);
    write_mnist("mnist_bad", "train", 20, 0, 1);
    write_mnist("mnist_bad", "t10k", 10, 0, 0);
    write_mnist("mnist_badtest", "train", 20, 1, 0);  // the test set loads on the worker thread: its error too
    write_mnist("mnist_badtest", "t10k", 10, 0, 1);
    return 0;
}
