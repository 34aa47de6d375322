/* unit_io.c — unit tests of io.c: atomic output, nnrt_try, the clock. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "unit.h"

static void die_mid_write(const void *p) {
    nnrt_atomic *a = nnrt_atomic_open(at("partial.bin"));
    nnrt_atomic_write(a, "abc", 3);
    nnrt_die("simulated failure");
}

static int count_tmp(void) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q tmp", work);
    return system(cmd) == 0;
}

void test_atomic(void) {
    nnrt_atomic *a = nnrt_atomic_open(at("out.bin"));
    nnrt_atomic_write(a, "hello", 5);
    CHECK("atomic: nothing before commit", access(at("out.bin"), F_OK) != 0 && count_tmp());
    nnrt_atomic_commit(a);
    size_t n;
    char *s = nnrt_read_all(at("out.bin"), &n);
    CHECK("atomic: content after commit", n == 5 && strcmp(s, "hello") == 0 && !count_tmp());
    free(s);
    a = nnrt_atomic_open(at("out.bin"));
    nnrt_atomic_write(a, "xx", 2);
    nnrt_atomic_abort(a);
    s = nnrt_read_all(at("out.bin"), &n);
    CHECK("atomic: abort keeps the old file", n == 5 && !count_tmp());
    free(s);
    EXPECT_DIE("atomic: die removes the temp file", 1, "error: simulated failure", die_mid_write, NULL);
    CHECK("atomic: no partial file after die", access(at("partial.bin"), F_OK) != 0 && !count_tmp());
}

/* nnrt_try: a fatal error inside it comes back as its status and message; afterwards errors are fatal again. */
static void try_fails(void *arg) { nnrt_die("%s: bad %d", (const char *)arg, 7); }
static void try_usage(void *arg) { (void)arg; nnrt_usage_die("--x: wrong"); }
static void try_ok(void *arg) { *(int *)arg = 42; }

void test_try(void) {
    char msg[64] = "";
    int status = nnrt_try(try_fails, (void *)"f.bin", msg, sizeof msg);
    CHECK("try returns a fatal error's status and message", status == NNRT_EXIT_FAIL && strcmp(msg, "f.bin: bad 7") == 0);
    status = nnrt_try(try_usage, NULL, msg, sizeof msg);
    CHECK("try returns a usage error's status", status == NNRT_EXIT_USAGE && strcmp(msg, "--x: wrong") == 0);
    int v = 0;
    char tiny[4] = "zz";
    status = nnrt_try(try_ok, &v, tiny, sizeof tiny);
    CHECK("try returns 0 when the function returns", status == 0 && v == 42 && strcmp(tiny, "zz") == 0);
    status = nnrt_try(try_fails, (void *)"long_name", tiny, sizeof tiny);
    CHECK("try truncates the message to its buffer", status == NNRT_EXIT_FAIL && strcmp(tiny, "lon") == 0);
}

/* The monotonic clock does not go back. */
void test_clock(void) {
    double t0 = nnrt_now();
    CHECK("monotonic clock", nnrt_now() >= t0);
}
