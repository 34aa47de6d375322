/* doctor_lr.c — Smith's learning-rate range test ("Cyclical Learning Rates for Training Neural Networks", 2017, §3.3),
 * for the doctor: from the weights as they are, one training step per rate, the rate growing exponentially from
 * LR_LO to LR_HI over LR_STEPS steps; the loss smoothed by a bias-corrected moving average (β = 0.98, as fastai's
 * finder); stopped once the smoothed loss passes 4× its minimum. The suggestion is a tenth of the rate at the
 * smoothed minimum (the loss still falls fast there, and the average lags). It fails when the loss never fell by 10 %, or
 * when the configured --lr is past the minimum, where the loss was already rising. --lr-curve writes the curve. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnrt_doctor.h"
#include "nnrt_io.h"
#include "nnrt_model.h"

enum { LR_STEPS = 100 };
static const double LR_LO = 1e-7, LR_HI = 10, BETA = 0.98;

typedef struct {
    int k;                                   // steps taken
    double lr[LR_STEPS], loss[LR_STEPS], smooth[LR_STEPS];
    int best;                                // the step of the smallest smoothed loss
    double suggested, configured;
} lr_curve;

static void svg_printf(nnrt_atomic *a, const char *fmt, ...) NNRT_PRINTF(2, 3);
static void svg_printf(nnrt_atomic *a, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    nnrt_atomic_write(a, buf, (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

/* The curve as SVG: the raw and smoothed loss against the rate on a log axis, the suggestion and --lr marked. */
static void write_svg(const char *path, const lr_curve *c) {
    double W = 640, H = 400, L = 70, R = 20, T = 40, B = 50;
    double ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < c->k; i++) {
        if (isfinite(c->loss[i])) { ylo = fmin(ylo, c->loss[i]); yhi = fmax(yhi, c->loss[i]); }
    }
    yhi = fmin(yhi, 4 * c->smooth[c->best]);
    if (!(yhi > ylo)) yhi = ylo + 1;
    double x0 = log10(LR_LO), x1 = log10(LR_HI);
#define PX(lr) (L + (log10(lr) - x0) / (x1 - x0) * (W - L - R))
#define PY(v) (T + (1 - (fmin(fmax(v, ylo), yhi) - ylo) / (yhi - ylo)) * (H - T - B))
    nnrt_atomic *a = nnrt_atomic_open(path);
    svg_printf(a, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
               "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
               "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    svg_printf(a, "<text x=\"%.0f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Learning-rate range test: suggested "
               "%.2g</text>\n", W / 2, c->suggested);
    svg_printf(a, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", L, T,
               W - L - R, H - T - B);
    for (int e = (int)x0; e <= (int)x1; e++) {
        double x = PX(pow(10, e));
        svg_printf(a, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#e3e3e3\"/><text x=\"%.1f\" y=\"%.0f\" "
                   "text-anchor=\"middle\" font-size=\"11\">1e%d</text>\n", x, T, x, H - B, x, H - B + 16, e);
    }
    for (int t = 0; t <= 4; t++) {
        double v = ylo + (yhi - ylo) * t / 4;
        svg_printf(a, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%.3g</text>\n", L - 6, PY(v) + 4, v);
    }
    svg_printf(a, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">learning rate (log scale)</text>\n", (L + W - R) / 2, H - 12);
    svg_printf(a, "<text transform=\"translate(16 %.0f) rotate(-90)\" text-anchor=\"middle\">loss</text>\n", (T + H - B) / 2);
    for (int pass = 0; pass < 2; pass++) {
        const double *v = pass ? c->smooth : c->loss;
        svg_printf(a, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", pass ? "#1f77b4" : "#aec7e8",
                   pass ? "2" : "1");
        for (int i = 0; i < c->k; i++)
            if (isfinite(v[i])) svg_printf(a, "%.1f,%.1f ", PX(c->lr[i]), PY(v[i]));
        svg_printf(a, "\"/>\n");
    }
    const struct { double lr; const char *color, *label; } marks[] = {{c->suggested, "#2ca02c", "suggested"},
                                                                     {c->configured, "#d62728", "--lr"}};
    for (int i = 0; i < 2; i++) {
        if (!(marks[i].lr >= LR_LO && marks[i].lr <= LR_HI)) continue;
        double x = PX(marks[i].lr);
        svg_printf(a, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"%s\" stroke-dasharray=\"5 3\"/>"
                   "<text x=\"%.1f\" y=\"%.0f\" fill=\"%s\" font-size=\"11\">%s %.2g</text>\n", x, T, x, H - B,
                   marks[i].color, x + 4, T + 14 + 14 * i, marks[i].color, marks[i].label, marks[i].lr);
    }
    svg_printf(a, "</svg>\n");
    nnrt_atomic_commit(a);
#undef PX
#undef PY
}

void nnrt_doctor_lr_range(nnrt_doctor *d) {
    nnrt_ctx *ctx = d->ctx;
    if (ctx->lr_hparam < 0) {
        nnrt_doctor_verdict(d, "lr range test", NNRT_CHECK_SKIP, NULL, "the model has no learning rate hyperparameter (--lr)");
        return;
    }
    nnrt_doctor_reset(d);
    lr_curve c = {.configured = d->o->hp[ctx->lr_hparam]};
    double factor = pow(LR_HI / LR_LO, 1.0 / (LR_STEPS - 1)), avg = 0;
    int64_t at = 0;
    for (int i = 0; i < LR_STEPS; i++) {
        c.lr[i] = LR_LO * pow(factor, i);
        ctx->hp[ctx->lr_hparam] = c.lr[i];
        if (at + d->batch > d->n_train) at = 0;
        int n = (int)(d->n_train < d->batch ? d->n_train : d->batch);
        double loss = nnrt_doctor_step(d, d->order + d->held_out + at, n);
        at += n;
        if (!isfinite(loss)) break;
        avg = BETA * avg + (1 - BETA) * loss;
        c.loss[i] = loss;
        c.smooth[i] = avg / (1 - pow(BETA, i + 1));
        c.k = i + 1;
        if (c.smooth[i] < c.smooth[c.best]) c.best = i;
        if (i > 10 && c.smooth[i] > 4 * c.smooth[c.best]) break;
    }
    ctx->hp[ctx->lr_hparam] = c.configured;
    if (c.k < 2) {
        nnrt_doctor_verdict(d, "lr range test", NNRT_CHECK_FAIL, "a bug: the loss diverges even at a rate of 1e-7",
                            "the loss was not finite from the first step");
        return;
    }
    c.suggested = c.lr[c.best] / 10;
    if (d->o->lr_curve) write_svg(d->o->lr_curve, &c);
    int fell = c.best > 0 && c.smooth[c.best] < 0.9 * c.smooth[0];  // shuffled labels: about 7 % of noise (DoctorTests)
    int ok = fell && c.configured <= c.lr[c.best];
    char curve[1100] = "";
    if (d->o->lr_curve) snprintf(curve, sizeof curve, "; curve in %s", d->o->lr_curve);
    nnrt_doctor_verdict(d, "lr range test", ok, !fell ? "the model does not learn at any rate: labels that do not match "
                        "the inputs, or a bug" : "the learning rate is too high: past the minimum the loss already rises",
                        "suggests --lr %.2g (a tenth of %.2g, where the smoothed loss was lowest, %.4g from %.4g); --lr is "
                        "%.2g%s", c.suggested, c.lr[c.best], c.smooth[c.best], c.smooth[0], c.configured, curve);
}
