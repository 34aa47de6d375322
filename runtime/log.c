/* log.c — what a training run reports:
 *   - JSON Lines metrics (--log): {"step":S,"epoch":E,"loss":L,"lr":LR} every --log-every steps and
 *     {"epoch":E,"train_loss":…,"val_loss":…,"val_acc":…,"test_loss":…,"test_acc":…,"seconds":…} per epoch
 *     (val_ with a validation split, test_ with a test set, _acc for classifiers); floats as %.9g so
 *     float32 values round-trip; non-finite values as null (JSON has no NaN); flushed per line.
 *   - a progress bar on stderr, redrawn in place, when stderr is a terminal; otherwise a plain progress line
 *     every 10 s (NNRT_PROGRESS_SECONDS overrides), so a long run piped to a file still shows it is alive;
 *     neither with --quiet. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnrt_io.h"
#include "nnrt_log.h"

// ----------------------------------------------------------------------------
// JSON Lines

void nnrt_json_number(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

void nnrt_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

void nnrt_log_open(nnrt_log *l, const char *jsonl_path, int quiet, int append) {
    memset(l, 0, sizeof *l);
    if (jsonl_path) {
        l->jsonl = fopen(jsonl_path, append ? "a" : "w");
        if (!l->jsonl) nnrt_die("%s: cannot create the log file (%s)", jsonl_path, strerror(errno));
    }
    l->bar = !quiet && isatty(STDERR_FILENO);
    if (!quiet && !l->bar) {
        const char *s = getenv("NNRT_PROGRESS_SECONDS");
        l->plain = s && atof(s) > 0 ? atof(s) : 10.0;
    }
    l->t_epoch = nnrt_now();
}

void nnrt_log_step(nnrt_log *l, int64_t step, int64_t epoch, double loss, double lr) {
    if (!l->jsonl) return;
    fprintf(l->jsonl, "{\"step\":%lld,\"epoch\":%lld,\"loss\":", (long long)step, (long long)epoch);
    nnrt_json_number(l->jsonl, loss);
    fputs(",\"lr\":", l->jsonl);
    nnrt_json_number(l->jsonl, lr);
    fputs("}\n", l->jsonl);
    fflush(l->jsonl);
}

static void split_json(FILE *f, const char *name, nnrt_split_metrics s) {
    if (!s.has) return;
    fprintf(f, ",\"%s_loss\":", name);
    nnrt_json_number(f, s.loss);
    if (s.acc < 0) return;
    fprintf(f, ",\"%s_acc\":", name);
    nnrt_json_number(f, s.acc);
}

void nnrt_log_epoch(nnrt_log *l, int64_t epoch, double train_loss, nnrt_split_metrics val, nnrt_split_metrics test,
                    nnrt_split_metrics ema_val, nnrt_split_metrics ema_test, double seconds) {
    if (!l->jsonl) return;
    fprintf(l->jsonl, "{\"epoch\":%lld,\"train_loss\":", (long long)epoch);
    nnrt_json_number(l->jsonl, train_loss);
    split_json(l->jsonl, "val", val);
    split_json(l->jsonl, "test", test);
    split_json(l->jsonl, "ema_val", ema_val);
    split_json(l->jsonl, "ema_test", ema_test);
    fputs(",\"seconds\":", l->jsonl);
    nnrt_json_number(l->jsonl, seconds);
    fputs("}\n", l->jsonl);
    fflush(l->jsonl);
}

void nnrt_log_lr_reduced(nnrt_log *l, int64_t epoch, double lr) {
    if (!l->jsonl) return;
    fprintf(l->jsonl, "{\"lr_reduced\":{\"epoch\":%lld,\"lr\":", (long long)epoch);
    nnrt_json_number(l->jsonl, lr);
    fputs("}}\n", l->jsonl);
    fflush(l->jsonl);
}

void nnrt_log_early_stop(nnrt_log *l, int64_t epoch, const char *on, int64_t best_epoch, double best) {
    if (!l->jsonl) return;
    fprintf(l->jsonl, "{\"early_stop\":{\"epoch\":%lld,\"on\":\"%s\",\"best_epoch\":%lld,\"best\":", (long long)epoch, on,
            (long long)best_epoch);
    nnrt_json_number(l->jsonl, best);
    fputs("}}\n", l->jsonl);
    fflush(l->jsonl);
}

void nnrt_log_close(nnrt_log *l) {
    if (l->jsonl && fclose(l->jsonl) != 0) nnrt_die("cannot write the log file (%s)", strerror(errno));
    l->jsonl = NULL;
}

// ----------------------------------------------------------------------------
// progress bar

/* i of total steps done in this epoch; redrawn at most 10 times a second and at the end. */
/* A plain line for logs that are not a terminal, at most every l->plain seconds. */
static void plain_progress(nnrt_log *l, int64_t epoch, int64_t epochs, int64_t i, int64_t total, double loss) {
    double now = nnrt_now();
    if (i == 1) l->t_epoch = now;
    if (l->bar_last == 0) l->bar_last = now;
    if (now - l->bar_last < l->plain || i == total) return;
    l->bar_last = now;
    double elapsed = now - l->t_epoch, rate = elapsed > 0 ? (double)(i - 1) / elapsed : 0;
    char eta[32];
    nnrt_eta(eta, sizeof eta, rate, total - i);
    fprintf(stderr, "epoch %lld/%lld  step %lld/%lld  loss %.4f  %.0f steps/s  %.0fs elapsed, ETA %s\n", (long long)epoch,
            (long long)epochs, (long long)i, (long long)total, loss, rate, elapsed, eta);
    fflush(stderr);
}

/* The time left for `left` more steps at `rate` steps per second, as "42s" or "3m05s" ("?" before a rate). */
void nnrt_eta(char *buf, size_t cap, double rate, int64_t left) {
    if (!(rate > 0)) { snprintf(buf, cap, "?"); return; }
    double s = (double)left / rate;
    if (s < 60) snprintf(buf, cap, "%.0fs", s);
    else snprintf(buf, cap, "%lldm%02llds", (long long)(s / 60), (long long)s % 60);
}

void nnrt_log_bar(nnrt_log *l, int64_t epoch, int64_t epochs, int64_t i, int64_t total, double loss) {
    if (l->plain > 0) { plain_progress(l, epoch, epochs, i, total, loss); return; }
    if (!l->bar) return;
    double now = nnrt_now();
    if (i == 1) l->t_epoch = now;
    if (i != total && now - l->bar_last < 0.1) return;
    l->bar_last = now;
    enum { WIDTH = 30 };
    char bar[WIDTH + 1];
    int filled = total > 0 ? (int)(WIDTH * i / total) : WIDTH;
    for (int k = 0; k < WIDTH; k++) bar[k] = k < filled ? '#' : '.';
    bar[WIDTH] = 0;
    double elapsed = now - l->t_epoch;
    double rate = elapsed > 0 ? (double)(i - 1) / elapsed : 0;
    char eta[32];
    nnrt_eta(eta, sizeof eta, rate, total - i);
    fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld  loss %.4f  %.0f steps/s  %.0fs, ETA %s\033[K", (long long)epoch,
            (long long)epochs, bar, (long long)i, (long long)total, loss, rate, elapsed, eta);
    fflush(stderr);
}

void nnrt_log_bar_clear(nnrt_log *l) {
    if (!l->bar) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    l->bar_last = 0;
}
