/* nnrt_log.h — logging (log.c): JSONL metrics, the progress bar, console summaries. */
#ifndef NNRT_LOG_H
#define NNRT_LOG_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *jsonl;        // NULL when --log was not given
    int bar;            // draw a progress bar on stderr (a TTY and not --quiet)
    double plain;       // not a TTY and not --quiet: seconds between plain progress lines on stderr, else 0
    double bar_last;    // when the bar (or a plain line) was last drawn
    double t_epoch;     // start of the epoch (for the rate)
} nnrt_log;

/* append: continue an existing file (a resumed run) instead of truncating it. */
void nnrt_log_open(nnrt_log *l, const char *jsonl_path, int quiet, int append);
void nnrt_log_step(nnrt_log *l, int64_t step, int64_t epoch, double loss, double lr);
/* One split's evaluation in an epoch's record: absent unless has; acc < 0: no accuracy (DENSE models). */
typedef struct { int has; double loss, acc; } nnrt_split_metrics;
/* ema_val and ema_test (the moving average's metrics, --ema) are left out when their `has` is 0. */
void nnrt_log_epoch(nnrt_log *l, int64_t epoch, double train_loss, nnrt_split_metrics val, nnrt_split_metrics test,
                    nnrt_split_metrics ema_val, nnrt_split_metrics ema_test,
                    double seconds);
/* {"lr_reduced":{"epoch":E,"lr":X}}: from the epoch after E on, the learning rate is X (--reduce-lr-on-plateau). */
void nnrt_log_lr_reduced(nnrt_log *l, int64_t epoch, double lr);
/* The time left for `left` more steps at `rate` steps per second, as "42s" or "3m05s" ("?" before a rate), for
   the progress bar's ETA. */
void nnrt_eta(char *buf, size_t cap, double rate, int64_t left);
/* {"early_stop":{"epoch":E,"on":"val_loss","best_epoch":B,"best":X}}: training stopped after epoch E. */
void nnrt_log_early_stop(nnrt_log *l, int64_t epoch, const char *on, int64_t best_epoch, double best);
void nnrt_log_bar(nnrt_log *l, int64_t epoch, int64_t epochs, int64_t i, int64_t total, double loss);
void nnrt_log_bar_clear(nnrt_log *l);
void nnrt_log_close(nnrt_log *l);
/* Prints a float to a JSON stream: %.9g, or null when it is not finite. */
void nnrt_json_number(FILE *f, double v);
/* Prints a JSON string literal (quotes, backslashes and control characters escaped). */
void nnrt_json_string(FILE *f, const char *s);

#endif
