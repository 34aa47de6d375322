/* profile.c — `train --profile`: where a training run's time goes.
 *
 * Two sources of numbers:
 *   - inside train_step, the generated code wraps every kernel call in NNRT_PROF (nnrt_model.h), which adds
 *     the call's seconds to ctx->prof[kind] while ctx->profile is set;
 *   - around it, train.c times its own parts: the train_step call as a whole, the batch gather (sample
 *     rows copied and uint8 converted to float: the first batch of an epoch, and what of each later one the
 *     worker thread did not gather during the previous step), per-step logging and the progress bar, the shuffle, the
 *     test-set evaluation, and once per run the data load and the parameter init.
 * "other inside the step" is the train_step call minus its kernels: scalar code between the kernels
 * (the Adam bias corrections, pow), call overhead, and the timer calls themselves.
 *
 * Counters are never reset: nnrt_profile holds totals since the start of training. The per-epoch lines
 * are differences of two snapshots, and the final report divides the totals by steps and epochs. */
#include <stdlib.h>
#include <string.h>

#include "nnrt_io.h"
#include "nnrt_log.h"
#include "nnrt_model.h"
#include "nnrt_profile.h"

void nnrt_profile_take_kernels(nnrt_profile *p, nnrt_ctx *ctx) {
    for (int k = 0; k < NNRT_PROF_KINDS; k++) {
        p->kernel[k] += ctx->prof[k];
        ctx->prof[k] = 0;
    }
}

double nnrt_profile_other(const nnrt_profile *p) {
    double inside = 0;
    for (int k = 0; k < NNRT_PROF_KINDS; k++) inside += p->kernel[k];
    double other = p->step - inside;
    return other > 0 ? other : 0;  // rounding of nested clocks can make it a hair negative
}

nnrt_profile nnrt_profile_diff(const nnrt_profile *now, const nnrt_profile *before) {
    nnrt_profile d = *now;
    d.steps -= before->steps;
    d.samples -= before->samples;
    d.epochs -= before->epochs;
    for (int k = 0; k < NNRT_PROF_KINDS; k++) d.kernel[k] -= before->kernel[k];
    d.step -= before->step;
    d.gather -= before->gather;
    d.log -= before->log;
    d.train -= before->train;
    d.shuffle -= before->shuffle;
    d.eval -= before->eval;
    return d;
}

static double per(double total, int64_t count) { return count > 0 ? total / (double)count : 0; }
static double pct(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0; }

void nnrt_profile_epoch_line(FILE *f, const nnrt_profile *e) {
    double ms = 1e3 / (double)(e->steps > 0 ? e->steps : 1);
    fprintf(f, "  profile: step %.3f ms = gemm %.3f + elementwise %.3f + row-wise %.3f + optimizer %.3f + other %.3f;"
               " gather %.3f ms/step; eval %.3f s\n",
            e->step * ms, e->kernel[NNRT_PROF_GEMM] * ms, e->kernel[NNRT_PROF_ELEMENTWISE] * ms,
            e->kernel[NNRT_PROF_ROWWISE] * ms, e->kernel[NNRT_PROF_OPTIMIZER] * ms, nnrt_profile_other(e) * ms,
            e->gather * ms, e->eval);
    if (e->kernel[NNRT_PROF_CONV] + e->kernel[NNRT_PROF_CONV_BACKWARD] + e->kernel[NNRT_PROF_POOL] > 0)
        fprintf(f, "  profile: + window kernels: conv forward %.3f + conv backward %.3f + pooling %.3f ms/step\n",
                e->kernel[NNRT_PROF_CONV] * ms, e->kernel[NNRT_PROF_CONV_BACKWARD] * ms, e->kernel[NNRT_PROF_POOL] * ms);
}

void nnrt_profile_report(FILE *f, const nnrt_profile *p) {
    int64_t S = p->steps, E = p->epochs;
    static const char *names[NNRT_PROF_KINDS] = {"gemm (+ fused epilogues)", "elementwise", "row-wise (softmax, CE)",
                                                 "optimizer update", "conv forward", "conv backward",
                                                 "pooling (forward, backward)"};
    fprintf(f, "profile: %lld epoch%s, %lld steps, %.1f samples per step; totals since the start of training,\n"
               "shown per step and per epoch (counters are not reset between epochs)\n",
            (long long)E, E == 1 ? "" : "s", (long long)S, per((double)p->samples, S));
    fprintf(f, "  %-30s %9s %8s %9s\n", "inside train_step", "ms/step", "% step", "s/epoch");
    for (int k = 0; k < NNRT_PROF_KINDS; k++)
        fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", names[k], per(p->kernel[k], S) * 1e3, pct(p->kernel[k], p->step),
                per(p->kernel[k], E));
    double other = nnrt_profile_other(p);
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "other inside the step", per(other, S) * 1e3, pct(other, p->step), per(other, E));
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "train_step total", per(p->step, S) * 1e3, pct(p->step, p->step), per(p->step, E));
    double loop = p->train - p->step - p->gather - p->log;
    if (loop < 0) loop = 0;
    fprintf(f, "  %-30s %9s %8s %9s\n", "training epoch (as logged)", "ms/step", "% epoch", "s/epoch");
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "train_step", per(p->step, S) * 1e3, pct(p->step, p->train), per(p->step, E));
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "batch gather + uint8->float", per(p->gather, S) * 1e3, pct(p->gather, p->train), per(p->gather, E));
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "step log + progress bar", per(p->log, S) * 1e3, pct(p->log, p->train), per(p->log, E));
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "loop overhead", per(loop, S) * 1e3, pct(loop, p->train), per(loop, E));
    fprintf(f, "    %-28s %9.3f %8.1f %9.3f\n", "epoch total", per(p->train, S) * 1e3, pct(p->train, p->train), per(p->train, E));
    fprintf(f, "  outside the timed epoch: shuffle %.4f s/epoch, test evaluation %.4f s/epoch;\n"
               "  once: data load %.4f s, parameter init %.4f s; one timer read costs %.0f ns\n",
            per(p->shuffle, E), per(p->eval, E), p->load, p->init, p->timer_ns);
}

/* Indices of the model's timed calls, slowest first. */
static int *by_time(const nnrt_model *m, const double *kprof) {
    int n = m->n_train_kernels, *order = nnrt_calloc((size_t)(n > 0 ? n : 1), sizeof(int));
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)  // insertion sort: a few dozen entries
        for (int j = i; j > 0 && kprof[order[j]] > kprof[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return order;
}

void nnrt_profile_kernels_report(FILE *f, const nnrt_model *m, const double *kprof, const nnrt_profile *p) {
    if (!kprof || m->n_train_kernels <= 0) return;
    int64_t S = p->steps;
    fprintf(f, "  %-46s %9s %8s\n", "train_step, call by call (slowest first)", "ms/step", "% step");
    int *order = by_time(m, kprof);
    for (int i = 0; i < m->n_train_kernels; i++) {
        int k = order[i];
        fprintf(f, "    %-44s %9.3f %8.1f\n", m->train_kernels[k], per(kprof[k], S) * 1e3, pct(kprof[k], p->step));
    }
    free(order);
}

void nnrt_profile_json(FILE *f, const nnrt_profile *p, const nnrt_model *m, const double *kprof) {
    fprintf(f, "{\"profile\":{\"epochs\":%lld,\"steps\":%lld,\"samples\":%lld", (long long)p->epochs, (long long)p->steps,
            (long long)p->samples);
    const struct { const char *name; double v; } fields[] = {
        {"gemm", p->kernel[NNRT_PROF_GEMM]},       {"elementwise", p->kernel[NNRT_PROF_ELEMENTWISE]},
        {"rowwise", p->kernel[NNRT_PROF_ROWWISE]}, {"optimizer", p->kernel[NNRT_PROF_OPTIMIZER]},
        {"other_in_step", nnrt_profile_other(p)},  {"step", p->step},
        {"gather", p->gather},                     {"log", p->log},
        {"train", p->train},                       {"shuffle", p->shuffle},
        {"eval", p->eval},                         {"load", p->load},
        {"init", p->init},
        {"conv", p->kernel[NNRT_PROF_CONV]},       {"conv_backward", p->kernel[NNRT_PROF_CONV_BACKWARD]},
        {"pool", p->kernel[NNRT_PROF_POOL]},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        fprintf(f, ",\"%s_s\":", fields[i].name);
        nnrt_json_number(f, fields[i].v);
    }
    fputs(",\"timer_ns\":", f);
    nnrt_json_number(f, p->timer_ns);
    if (kprof && m && m->n_train_kernels > 0) {  // seconds per timed call of train_step, by name
        fputs(",\"kernels_s\":{", f);
        for (int k = 0; k < m->n_train_kernels; k++) {
            fprintf(f, "%s", k ? "," : "");
            nnrt_json_string(f, m->train_kernels[k]);
            fputc(':', f);
            nnrt_json_number(f, kprof[k]);
        }
        fputc('}', f);
    }
    fputs("}}\n", f);
}

double nnrt_timer_cost_ns(void) {
    enum { N = 2000 };
    double best = 1e9;
    for (int round = 0; round < 5; round++) {  // the best of a few rounds: a preemption inflates one
        double t0 = nnrt_now(), t = t0;
        for (int i = 0; i < N; i++) t = nnrt_now();
        double ns = (t - t0) / N * 1e9;
        if (ns < best) best = ns;
    }
    return best;
}
