/* unit.h — the harness the unit tests (unit_*.c) share: CHECK, EXPECT_DIE, a work folder, a fake model, and every
 * test function, which unit.c's main runs in order. */
#ifndef NNRT_UNIT_H
#define NNRT_UNIT_H

#include <stdio.h>

#include "nnrt.h"

extern int passed, failed;
extern char work[2048];  // the folder test files go to

#define CHECK(name, cond) check_at(__FILE__, __LINE__, name, (cond), #cond)
void check_at(const char *file, int line, const char *name, int ok, const char *expr);
/* work/name, in one of four rotating buffers. */
const char *at(const char *name);
void write_bytes(const char *path, const void *buf, size_t n);
/* Runs fn(arg) in a child; checks that it exits with `code` and that stderr contains `want`. */
#define EXPECT_DIE(name, code, want, fn, arg) expect_die_at(__FILE__, __LINE__, name, code, want, fn, arg)
void expect_die_at(const char *file, int line, const char *name, int code, const char *want, void (*fn)(const void *),
                   const void *arg);

/* A model of four parameters (4017 floats: a weight, a bias, a buffer, a scalar) for loaders, init and safetensors. */
extern const nnrt_model fake;

void test_rng(void);           // unit_train.c
void test_shuffle(void);
void test_init(void);
void test_ema(void);
void test_softmax(void);
void test_npy(void);           // unit_data.c
void test_idx(void);
void test_csv(void);
void test_gather(void);
void test_data_errors(void);
void test_user_data(void);     // unit_user_data.c
void test_safetensors(void);   // unit_safetensors.c
void test_safetensors_general(void);
void test_atomic(void);        // unit_io.c
void test_try(void);
void test_clock(void);
void test_json_number(void);   // unit_log.c
void test_profile(void);
void test_denormals(void);     // unit_parallel.c
void test_blas_core(void);
void test_parallel(void);
void test_chunks(void);
void test_gemm(void);          // unit_gemm.c
void test_augment(void);       // unit_augment.c
void test_batch_grid(void);
void test_png(void);           // unit_image.c
void test_act_stats(void);     // unit_monitor.c
void test_report_text(void);
void test_mixup(void);         // unit_mixup.c

/* Fixtures (Tests/Fixtures/NAME, one case per line): the file's text (NULL if missing), the number after "key":
   in a line (NAN if absent), the array after "key": [ into out (at most cap values; the count, −1 if absent). */
char *read_fixture(const char *name);
double fixture_num(const char *line, const char *key);
int fixture_array(const char *line, const char *key, double *out, int cap);

#endif
