/* report_chart.c — the report's text building: a growing buffer, HTML escaping, base64, and inline SVG line charts
 * (axes with a few round ticks, one polyline per series, a legend). No script, no external resource; inline in HTML,
 * so the <svg> needs no namespace. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_io.h"
#include "nnrt_report.h"

static void reserve(nnrt_text *t, size_t more) {
    if (t->len + more + 1 <= t->cap) return;
    t->cap = 2 * (t->len + more + 1);
    t->s = realloc(t->s, t->cap);
    if (!t->s) nnrt_die("report: out of memory");
}

void nnrt_text_printf(nnrt_text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    reserve(t, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void nnrt_text_html(nnrt_text *t, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': nnrt_text_printf(t, "&amp;"); break;
        case '<': nnrt_text_printf(t, "&lt;"); break;
        case '>': nnrt_text_printf(t, "&gt;"); break;
        case '"': nnrt_text_printf(t, "&quot;"); break;
        default: reserve(t, 1); t->s[t->len++] = *s; t->s[t->len] = 0;
        }
    }
}

void nnrt_text_base64(nnrt_text *t, const uint8_t *b, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    reserve(t, (n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)b[i] << 16 | (i + 1 < n ? (uint32_t)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        t->s[t->len++] = digits[v >> 18 & 63];
        t->s[t->len++] = digits[v >> 12 & 63];
        t->s[t->len++] = i + 1 < n ? digits[v >> 6 & 63] : '=';
        t->s[t->len++] = i + 2 < n ? digits[v & 63] : '=';
    }
    t->s[t->len] = 0;
}

void nnrt_series_add(nnrt_series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->x = realloc(s->x, (size_t)s->cap * sizeof(double));
        s->y = realloc(s->y, (size_t)s->cap * sizeof(double));
        if (!s->x || !s->y) nnrt_die("report: out of memory");
    }
    s->x[s->n] = x;
    s->y[s->n++] = y;
}

static const char *const COLORS[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                     "#bcbd22", "#17becf"};

/* A tick step for a span: 1, 2 or 5 times a power of ten, giving 4 to 10 ticks. */
static double nice_step(double span) {
    double p = pow(10, floor(log10(span / 4))), f = span / 4 / p;
    return (f < 2 ? 1 : f < 5 ? 2 : 5) * p;
}

static int drawn(double y, int logy) { return isfinite(y) && (!logy || y > 0); }

void nnrt_chart(nnrt_text *t, const char *title, const char *xlabel, const char *ylabel, const nnrt_series *all, int count,
                int logy) {
    const nnrt_series *s[64];  // the series with a point to draw, in order: each gets the next color
    int n = 0;
    for (int k = 0; k < count && n < 64; k++) {
        int any = 0;
        for (int i = 0; i < all[k].n && !any; i++) any = drawn(all[k].y[i], logy);
        if (any) s[n++] = &all[k];
    }
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < s[k]->n; i++) {
            if (!drawn(s[k]->y[i], logy)) continue;
            double y = logy ? log10(s[k]->y[i]) : s[k]->y[i];
            xlo = fmin(xlo, s[k]->x[i]); xhi = fmax(xhi, s[k]->x[i]);
            ylo = fmin(ylo, y); yhi = fmax(yhi, y);
        }
    if (!isfinite(xlo)) return;
    if (!(xhi > xlo)) { xlo -= 1; xhi += 1; }
    if (!(yhi > ylo)) { ylo -= logy ? 1 : fmax(fabs(ylo) * 0.1, 1e-3); yhi += logy ? 1 : fmax(fabs(yhi) * 0.1, 1e-3); }
    // Round ticks: a step of 1, 2 or 5 times a power of ten (whole decades on a log axis), the y range widened to
    // whole steps so that the frame starts and ends on a tick; the x range stays the data's (steps, epochs).
    double xstep = fmax(1, nice_step(xhi - xlo)), ystep = logy ? fmax(1, ceil((ceil(yhi) - floor(ylo)) / 6)) : nice_step(yhi - ylo);
    ylo = floor(ylo / ystep + 1e-9) * ystep;
    yhi = ceil(yhi / ystep - 1e-9) * ystep;
    const double W = 560, H = 320, L = 64, R = 16, T = 32, B = 44;
    double legend = n > 1 ? 16.0 * n + 8 : 0;
    nnrt_text_printf(t, "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                     "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\" role=\"img\">\n", W,
                     H + legend, W, H + legend);
    nnrt_text_printf(t, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/><text x=\"%.0f\" y=\"20\" text-anchor=\"middle\" "
                     "font-size=\"13\">", W / 2);
    nnrt_text_html(t, title);
    nnrt_text_printf(t, "</text>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n",
                     L, T, W - L - R, H - T - B);
#define PX(v) (L + ((v) - xlo) / (xhi - xlo) * (W - L - R))
#define PY(v) (T + (1 - ((v) - ylo) / (yhi - ylo)) * (H - T - B))
    for (double k = ceil(xlo / xstep - 1e-9); k * xstep <= xhi + 1e-9 * xstep; k++) {
        double xv = k * xstep;
        nnrt_text_printf(t, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#e3e3e3\"/>", PX(xv), T, PX(xv), H - B);
        nnrt_text_printf(t, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.6g</text>\n", PX(xv), H - B + 14,
                         fabs(xv) < 1e-9 * xstep ? 0.0 : xv);
    }
    for (double k = round(ylo / ystep); k * ystep <= yhi + 1e-9 * ystep; k++) {
        double yv = k * ystep;
        nnrt_text_printf(t, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>", L, PY(yv), W - R, PY(yv));
        if (logy) nnrt_text_printf(t, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", L - 4, PY(yv) + 4, (int)lround(yv));
        else nnrt_text_printf(t, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.6g</text>\n", L - 4, PY(yv) + 4,
                              fabs(yv) < 1e-9 * ystep ? 0.0 : yv);
    }
    nnrt_text_printf(t, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">", (L + W - R) / 2, H - 8);
    nnrt_text_html(t, xlabel);
    nnrt_text_printf(t, "</text><text transform=\"translate(14 %.0f) rotate(-90)\" text-anchor=\"middle\">", (T + H - B) / 2);
    nnrt_text_html(t, ylabel);
    nnrt_text_printf(t, "%s</text>\n", logy ? " (log scale)" : "");
    for (int k = 0; k < n; k++) {
        const char *color = COLORS[k % (int)(sizeof COLORS / sizeof *COLORS)];
        nnrt_text_printf(t, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
        for (int i = 0; i < s[k]->n; i++)
            if (drawn(s[k]->y[i], logy))
                nnrt_text_printf(t, "%.1f,%.1f ", PX(s[k]->x[i]), PY(logy ? log10(s[k]->y[i]) : s[k]->y[i]));
        nnrt_text_printf(t, "\"/>\n");
        if (n > 1) {
            double y = H + 12 + 16.0 * k;
            nnrt_text_printf(t, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" stroke-width=\"2\"/><text "
                             "x=\"%.0f\" y=\"%.0f\">", L, y - 4, L + 24, y - 4, color, L + 30, y);
            nnrt_text_html(t, s[k]->name);
            nnrt_text_printf(t, "</text>\n");
        }
    }
#undef PX
#undef PY
    nnrt_text_printf(t, "</svg>\n");
}
