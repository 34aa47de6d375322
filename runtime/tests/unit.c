/* unit.c — the harness of test_unit, the runtime's unit tests (unit_*.c, through nnrt.h; the trainer-level tests
 * are the e2e*.sh scripts): CHECK, fatal paths run in a forked child (EXPECT_DIE), a work folder, a fake model, and
 * main, which runs every test in a fixed order.
 * usage: test_unit WORK_DIR    prints "ok <name>" / "FAIL <name>: …" and "unit: P passed, F failed". */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#define NNRT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NNRT_TEST_ASAN 1
#endif
#endif
#ifdef NNRT_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#endif

int passed, failed;
char work[2048];

void check_at(const char *file, int line, const char *name, int ok, const char *expr) {
    if (ok) { passed++; printf("ok   %s\n", name); }
    else { failed++; printf("FAIL %s (%s:%d): %s\n", name, file, line, expr); }
}

const char *at(const char *name) {
    static char path[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", work, name);
    return path[k];
}

void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

void expect_die_at(const char *file, int line, const char *name, int code, const char *want,
                          void (*fn)(const void *), const void *arg) {
#ifdef __SANITIZE_THREAD__
    // A child forked while the worker thread runs can hang inside TSan's runtime (its locks are copied in whatever
    // state the worker left them; 2 of 3 runs did). The plain and ASan builds run these checks.
    if (nnrt_parallel_threads() == 2) {
        printf("skip %s: a fork beside the worker thread under ThreadSanitizer (checked in the other builds)\n", name);
        (void)file; (void)line; (void)code; (void)want; (void)fn; (void)arg;
        return;
    }
#endif
    int fd[2];
    if (pipe(fd) != 0) abort();
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
#ifdef NNRT_TEST_ASAN
        __lsan_disable();  // a fatal error exits with its buffers still allocated, on purpose
#endif
        dup2(fd[1], 2);
        close(fd[0]);
        fn(arg);
        _exit(0);
    }
    close(fd[1]);
    char err[4096] = {0};
    size_t n = 0;
    ssize_t got;
    while (n + 1 < sizeof err && (got = read(fd[0], err + n, sizeof err - 1 - n)) > 0) n += (size_t)got;
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) == code && strstr(err, want);
    check_at(file, line, name, ok, want);
    if (!ok) printf("     status %d, stderr: %s\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
}

// ----------------------------------------------------------------------------
// a fake model for loaders, init and safetensors

static const nnrt_param fake_params[] = {
    {"0.weight", 2, {4, 3}, 0, 12, NNRT_INIT_UNIFORM, -0.5, 0.5, 1},
    {"0.bias", 1, {4}, 12, 4, NNRT_INIT_CONST, 0.25, 0, 1},
    {"1.running_var", 1, {4000}, 16, 4000, NNRT_INIT_NORMAL, 2.0, 3.0, 0},
    {"2.z", 0, {0}, 4016, 1, NNRT_INIT_ZEROS, 0, 0, 1},
};
const nnrt_model fake = {
    .name = "fake", .input_dim = 3, .output_dim = 4, .target_kind = NNRT_TARGET_CLASS, .target_dim = 1,
    .max_batch = 8, .params_numel = 4017, .n_params = 4, .params = fake_params,
};

// ----------------------------------------------------------------------------
// fixtures: one case per line, keys in a fixed order (augment.json, mixup.json)

double fixture_num(const char *line, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(line, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

int fixture_array(const char *line, const char *key, double *out, int cap) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\": [", key);
    const char *p = strstr(line, k);
    if (!p) return -1;
    p += strlen(k);
    int n = 0;
    while (*p != ']' && n < cap) {
        char *end;
        out[n++] = strtod(p, &end);
        p = end;
        while (*p == ',' || *p == ' ') p++;
    }
    return n;
}

/* Found from this file's path (run.sh compiles it by its absolute path). */
char *read_fixture(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    snprintf(slash, sizeof path - (size_t)(slash - path), "/../../Tests/Fixtures/%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    s[fread(s, 1, (size_t)len, f)] = 0;
    fclose(f);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: test_unit WORK_DIR\n"); return 2; }
    snprintf(work, sizeof work, "%s", argv[1]);
    mkdir(work, 0755);
    // One OpenBLAS thread, as every trainer runs it (blas.c). Its own thread pool is not instrumented, so under
    // TSan its workers' writes to C would be reported as races with the test's malloc.
    openblas_set_num_threads(1);
    test_rng();
    test_ema();
    test_shuffle();
    test_init();
    test_npy();
    test_idx();
    test_csv();
    test_user_data();
    test_gather();
    test_augment();
    test_mixup();
    test_batch_grid();
    test_safetensors();
    test_safetensors_general();
    test_atomic();
    test_softmax();
    test_data_errors();
    test_json_number();
    test_clock();
    test_blas_core();
    test_try();
    test_denormals();
    test_parallel();
    test_chunks();
    test_gemm();
    test_profile();
    test_png();
    test_act_stats();
    test_report_text();
    printf("unit: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
