/* unit_log.c — unit tests of the reports: --profile's tables and JSON, JSON numbers. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

/* Prints through fn into a string (open_memstream), so tests can look at exact report lines. Not inlined: GCC's
 * -Wdangling-pointer then takes pointers into the string for pointers to the local `buf`. */
__attribute__((noinline)) static char *capture(void (*fn)(FILE *, const nnrt_profile *), const nnrt_profile *p) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(f, p);
    fclose(f);
    return buf;
}

static void profile_json_by_kind(FILE *f, const nnrt_profile *p) { nnrt_profile_json(f, p, NULL, NULL); }

/* The per-kernel table and JSON of a made-up model with two timed calls (the second a pair). */
static const char *const fake_kernel_names[] = {"k0_matmul_add_relu", "k10_matmul + k11_matmul"};
static const nnrt_model fake_timed_model = {.name = "fake", .n_train_kernels = 2, .train_kernels = fake_kernel_names};
static double fake_kprof[2] = {0.1, 0.3};
static void kernels_report(FILE *f, const nnrt_profile *p) { nnrt_profile_kernels_report(f, &fake_timed_model, fake_kprof, p); }
static void kernels_json(FILE *f, const nnrt_profile *p) { nnrt_profile_json(f, p, &fake_timed_model, fake_kprof); }

/* The kernels a fake train_step would report through NNRT_PROF, with and without ctx->profile. */
static void fake_kernel(volatile double *sink) { for (int i = 0; i < 20000; i++) *sink += i; }

void test_profile(void) {
    nnrt_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    volatile double sink = 0;
    NNRT_PROF(&ctx, NNRT_PROF_GEMM, fake_kernel(&sink));
    CHECK("prof-off-no-time", ctx.prof[NNRT_PROF_GEMM] == 0 && sink > 0);
    ctx.profile = 1;
    NNRT_PROF(&ctx, NNRT_PROF_GEMM, fake_kernel(&sink));
    NNRT_PROF(&ctx, NNRT_PROF_OPTIMIZER, fake_kernel(&sink));
    CHECK("prof-on-times-kind", ctx.prof[NNRT_PROF_GEMM] > 0 && ctx.prof[NNRT_PROF_OPTIMIZER] > 0 &&
                                    ctx.prof[NNRT_PROF_ELEMENTWISE] == 0 && ctx.prof[NNRT_PROF_ROWWISE] == 0);

    nnrt_profile p = {0};
    p.kernel[NNRT_PROF_GEMM] = 5;  // leftovers from before are added to, not overwritten
    double g = ctx.prof[NNRT_PROF_GEMM];
    nnrt_profile_take_kernels(&p, &ctx);
    CHECK("prof-take-adds", p.kernel[NNRT_PROF_GEMM] == 5 + g && ctx.prof[NNRT_PROF_GEMM] == 0 && ctx.prof[NNRT_PROF_OPTIMIZER] == 0);

    // A made-up run: 2 epochs of 100 steps, 1 s of train_step of which 0.5 gemm, 0.1 elementwise,
    // 0.05 row-wise, 0.2 optimizer (so 0.15 other); 0.2 s gather, 0.04 s logging, 1.25 s timed.
    nnrt_profile r = {.epochs = 2, .steps = 100, .samples = 12800, .kernel = {0.5, 0.1, 0.05, 0.2}, .step = 1.0,
                      .gather = 0.2, .log = 0.04, .train = 1.25, .shuffle = 0.002, .eval = 0.06, .load = 0.3,
                      .init = 0.01, .timer_ns = 20};
    CHECK("prof-other", fabs(nnrt_profile_other(&r) - 0.15) < 1e-12);
    nnrt_profile over = r;
    over.kernel[NNRT_PROF_GEMM] = 1.2;
    CHECK("prof-other-clamped", nnrt_profile_other(&over) == 0);
    char *out = capture(nnrt_profile_report, &r);
    CHECK("prof-report-head", strstr(out, "profile: 2 epochs, 100 steps, 128.0 samples per step") != NULL);
    CHECK("prof-report-gemm", strstr(out, "gemm (+ fused epilogues)         5.000     50.0     0.250") != NULL);
    CHECK("prof-report-other", strstr(out, "other inside the step            1.500     15.0     0.075") != NULL);
    CHECK("prof-report-total", strstr(out, "train_step total                10.000    100.0     0.500") != NULL);
    CHECK("prof-report-share-of-epoch", strstr(out, "train_step                      10.000     80.0     0.500") != NULL);
    CHECK("prof-report-gather", strstr(out, "batch gather + uint8->float      2.000     16.0     0.100") != NULL);
    CHECK("prof-report-loop", strstr(out, "loop overhead                    0.100      0.8     0.005") != NULL);
    CHECK("prof-report-outside", strstr(out, "shuffle 0.0010 s/epoch, test evaluation 0.0300 s/epoch") != NULL &&
                                     strstr(out, "data load 0.3000 s, parameter init 0.0100 s; one timer read costs 20 ns") != NULL);
    free(out);
    out = capture(profile_json_by_kind, &r);
    const char *want = "{\"profile\":{\"epochs\":2,\"steps\":100,\"samples\":12800,\"gemm_s\":0.5,"
                       "\"elementwise_s\":0.1,\"rowwise_s\":0.05,\"optimizer_s\":0.2,\"other_in_step_s\":0.15,\"step_s\":1,";
    CHECK("prof-json", strncmp(out, want, strlen(want)) == 0 &&
                           strstr(out, ",\"timer_ns\":20}}\n") != NULL);
    char eta[32];
    nnrt_eta(eta, sizeof eta, 10, 420);
    CHECK("eta-minutes", strcmp(eta, "0m42s") != 0 && strcmp(eta, "42s") == 0);
    nnrt_eta(eta, sizeof eta, 2, 425);
    CHECK("eta-minutes-seconds", strcmp(eta, "3m32s") == 0);
    nnrt_eta(eta, sizeof eta, 0, 10);
    CHECK("eta-before-a-rate", strcmp(eta, "?") == 0);
    CHECK("prof-json-window", strstr(out, ",\"conv_s\":0,\"conv_backward_s\":0,\"pool_s\":0,") != NULL);
    free(out);

    out = capture(kernels_report, &r);
    const char *slow = strstr(out, "k10_matmul + k11_matmul"), *fast = strstr(out, "k0_matmul_add_relu");
    CHECK("prof-kernels-report", slow && fast && slow < fast && strstr(slow, "3.000     30.0") && strstr(fast, "1.000     10.0"));
    free(out);
    out = capture(kernels_json, &r);
    CHECK("prof-kernels-json", strstr(out, ",\"kernels_s\":{\"k0_matmul_add_relu\":0.1,\"k10_matmul + k11_matmul\":0.3}}}\n") != NULL);
    free(out);
    double kp[3] = {0, 0, 0};
    nnrt_ctx kc;
    memset(&kc, 0, sizeof kc);
    kc.kprof = kp;
    NNRT_PROF_AT(&kc, NNRT_PROF_GEMM, 1, fake_kernel(&sink));
    CHECK("prof-at-off", kp[1] == 0 && kc.prof[NNRT_PROF_GEMM] == 0);
    kc.profile = 1;
    NNRT_PROF_AT(&kc, NNRT_PROF_GEMM, 1, fake_kernel(&sink));
    CHECK("prof-at-on", kp[1] > 0 && kp[1] == kc.prof[NNRT_PROF_GEMM] && kp[0] == 0 && kp[2] == 0);

    nnrt_profile before = r;
    r.epochs = 3; r.steps = 150; r.samples = 19200; r.step = 1.6; r.kernel[NNRT_PROF_GEMM] = 0.9; r.gather = 0.25; r.eval = 0.09;
    nnrt_profile e = nnrt_profile_diff(&r, &before);
    CHECK("prof-diff", e.epochs == 1 && e.steps == 50 && e.samples == 6400 && fabs(e.step - 0.6) < 1e-12 &&
                           fabs(e.kernel[NNRT_PROF_GEMM] - 0.4) < 1e-12 && e.kernel[NNRT_PROF_OPTIMIZER] == 0 && e.load == 0.3);
    out = capture(nnrt_profile_epoch_line, &e);
    CHECK("prof-epoch-line", strcmp(out, "  profile: step 12.000 ms = gemm 8.000 + elementwise 0.000 + row-wise 0.000 + "
                                         "optimizer 0.000 + other 4.000; gather 1.000 ms/step; eval 0.030 s\n") == 0);
    free(out);

    nnrt_profile empty = {0};  // no steps (--epochs 0): no division by zero
    out = capture(nnrt_profile_report, &empty);
    CHECK("prof-empty", strstr(out, "nan") == NULL && strstr(out, "inf") == NULL && strstr(out, "0 epochs, 0 steps") != NULL);
    free(out);
    double ns = nnrt_timer_cost_ns();
    CHECK("prof-timer-cost", ns > 0 && ns < 100000);
}

/* nnrt_json_number: null for NaN, a float32 printed so that it reads back as itself. */
void test_json_number(void) {
    FILE *f = fopen(at("num.txt"), "w");
    nnrt_json_number(f, NAN);
    fputc(' ', f);
    nnrt_json_number(f, 0.1f);
    fclose(f);
    size_t n;
    char *s = nnrt_read_all(at("num.txt"), &n);
    CHECK("json numbers: null for NaN, float32 round trip", strcmp(s, "null 0.100000001") == 0);
    free(s);
}
